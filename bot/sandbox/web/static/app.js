// The sandbox web chat: a Telegram-like view of the sandbox, acting as one of its users.
//
// Every piece of text from the sandbox (messages, names, button labels, inline results) is
// put into the page as text: elements are built with createElement and filled with
// textContent or text nodes, never by assigning HTML. A message is rendered from its
// visible text and the entities the sandbox's own Telegram-HTML parser produced.
"use strict";

(() => {
  const PAGE = 200; // messages per page; older pages load on scroll
  const $ = (id) => document.getElementById(id);
  const ui = {
    user: $("acting-user"), role: $("acting-role"), chats: $("chat-list"),
    title: $("chat-title"), sub: $("chat-sub"), topics: $("topics"),
    messages: $("messages"), composer: $("composer"), text: $("text"), send: $("send"),
    popup: $("popup"), toast: $("toast"), alert: $("alert"), alertText: $("alert-text"),
    clockNow: $("clock-now"), clockInput: $("clock-input"), clockNote: $("clock-note"),
  };
  const view = {
    world: null, userId: null, chatId: null, thread: null,
    shown: new Map(), // message id -> element, for the open chat (and topic)
    oldest: null, newest: null, more: false, loadingOlder: false, generation: 0,
    clockAt: 0, clockBase: 0, unread: new Set(), commands: null, inlineTimer: null,
    inlineSeq: 0, popupItems: [], popupIndex: -1,
  };

  // -- helpers -------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok || !data || !data.ok) {
      throw new Error(data && data.error ? data.error : `${response.status} ${response.statusText}`);
    }
    return data.result;
  }

  function toast(text, ms) {
    ui.toast.textContent = text;
    ui.toast.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { ui.toast.hidden = true; }, ms || 2500);
  }

  function showAlert(text) {
    ui.alertText.textContent = text;
    ui.alert.hidden = false;
  }

  function timeOf(unix) {
    const d = new Date(unix * 1000);
    return d.toISOString().slice(11, 16);
  }

  function botUsername() { return view.world ? view.world.bot.username : ""; }

  // A link the page may follow: http(s), tg: and mailto: only (never javascript: & co).
  function safeUrl(raw) {
    try {
      const url = new URL(raw);
      return ["http:", "https:", "tg:", "mailto:"].includes(url.protocol) ? url : null;
    } catch (e) {
      return null;
    }
  }

  // t.me/<bot>?start=PAYLOAD (or tg://resolve?domain=<bot>&start=PAYLOAD): the payload.
  function deepLinkPayload(raw) {
    const url = safeUrl(raw);
    if (!url) return null;
    const bot = botUsername().toLowerCase();
    let name = null;
    if ((url.protocol === "https:" || url.protocol === "http:") &&
        ["t.me", "telegram.me"].includes(url.hostname)) {
      name = url.pathname.replace(/^\//, "");
    } else if (url.protocol === "tg:" && url.hostname === "resolve") {
      name = url.searchParams.get("domain");
    }
    if (!name || name.toLowerCase() !== bot) return null;
    const start = url.searchParams.get("start");
    if (start === null) return "";
    return /^[A-Za-z0-9_-]{1,64}$/.test(start) ? start : null;
  }

  // -- entities -> DOM -----------------------------------------------------------------
  function linkElement(href, text) {
    const payload = deepLinkPayload(href);
    if (payload !== null) {
      const a = el("a", "deeplink");
      a.href = safeUrl(href).href;
      a.dataset.start = payload;
      return a;
    }
    const url = safeUrl(href);
    if (!url) {
      const span = el("span", "link-refused");
      span.title = "link not followed: " + href;
      return span;
    }
    const a = el("a");
    a.href = url.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function entityElement(entity, covered) {
    switch (entity.type) {
      case "bold": return el("strong");
      case "italic": return el("em");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "spoiler": return el("span", "spoiler");
      case "code": return el("code");
      case "pre": {
        const pre = el("pre");
        if (entity.language) pre.dataset.language = entity.language;
        const code = el("code");
        pre.appendChild(code);
        return { outer: pre, inner: code };
      }
      case "text_link": return linkElement(entity.url || "", covered);
      case "url": return linkElement(covered, covered);
      case "blockquote": return el("blockquote");
      case "expandable_blockquote": return el("blockquote", "expandable collapsed");
      case "bot_command": {
        const span = el("span", "command");
        span.dataset.command = covered;
        return span;
      }
      case "mention": case "text_mention": return el("span", "mention");
      default: return el("span", "entity-" + String(entity.type).replace(/[^a-z_]/g, ""));
    }
  }

  // Plain text as Telegram's apps show it: /commands are tappable (outside code and links).
  const COMMAND_RE = /(^|[\s(])(\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?)(?=$|[\s.,;:!?)])/g;
  function appendPlain(parent, text) {
    const plainOnly = parent.closest ? !parent.closest("code, pre, a, .command") : true;
    if (!plainOnly) { parent.appendChild(document.createTextNode(text)); return; }
    let pos = 0;
    for (const match of text.matchAll(COMMAND_RE)) {
      const start = match.index + match[1].length;
      if (start > pos) parent.appendChild(document.createTextNode(text.slice(pos, start)));
      const span = el("span", "command", match[2]);
      span.dataset.command = match[2];
      parent.appendChild(span);
      pos = start + match[2].length;
    }
    if (pos < text.length) parent.appendChild(document.createTextNode(text.slice(pos)));
  }

  // Text plus (properly nested) entities with UTF-16 offsets: JavaScript strings are
  // UTF-16, so the offsets index them directly. An entity overlapping its parent's end is
  // cut there; one starting inside an earlier sibling is skipped.
  function renderEntities(container, text, entities) {
    const sorted = (entities || [])
      .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
    let i = 0;
    const build = (parent, start, end) => {
      let pos = start;
      while (i < sorted.length && sorted[i].offset < end) {
        const entity = sorted[i];
        i += 1;
        if (entity.offset < pos) continue;
        if (entity.offset > pos) appendPlain(parent, text.slice(pos, entity.offset));
        const stop = Math.min(entity.offset + entity.length, end);
        const made = entityElement(entity, text.slice(entity.offset, stop));
        parent.appendChild(made.outer || made); // attached first: closest() sees the chain
        build(made.inner || made, entity.offset, stop);
        pos = stop;
      }
      if (pos < end) appendPlain(parent, text.slice(pos, end));
    };
    build(container, 0, text.length);
  }

  // -- messages ------------------------------------------------------------------------
  function currentChat() {
    return view.world ? view.world.chats.find((c) => c.id === view.chatId) : null;
  }

  function inOpenChat(message) {
    if (message.chat_id !== view.chatId) return false;
    const chat = currentChat();
    if (chat && chat.is_forum) return (message.thread_id || 0) === (view.thread || 0);
    return true;
  }

  function renderKeyboard(message) {
    const box = el("div", "keyboard");
    for (const row of message.keyboard) {
      const line = el("div", "kb-row");
      for (const button of row) {
        let node;
        if (button.kind === "url") {
          node = linkElement(button.url, button.text);
          if (node.tagName !== "A") node = el("button");
          node.classList.add("kb-button");
          if (node.tagName === "A" && !node.classList.contains("deeplink")) node.classList.add("url");
          node.textContent = button.text;
          if (node.tagName === "BUTTON") node.disabled = true;
        } else {
          node = el("button", "kb-button", button.text);
          node.type = "button";
          node.dataset.kind = button.kind;
          if (button.query !== undefined) node.dataset.query = button.query;
          if (button.kind === "other") node.disabled = true;
        }
        node.dataset.number = String(button.number);
        line.appendChild(node);
      }
      box.appendChild(line);
    }
    return box;
  }

  function renderMessage(message) {
    const chat = currentChat();
    const mine = message.sender.kind === "user" && message.sender.id === view.userId;
    const root = el("div", "msg" + (mine ? " out" : "") + (message.service ? " service" : ""));
    root.dataset.id = String(message.id);
    root.dataset.revision = String(message.revision);
    const bubble = el("div", "bubble");
    root.appendChild(bubble);
    if (message.service) {
      bubble.textContent = message.service;
      return root;
    }
    const group = chat && chat.type !== "private" && chat.type !== "channel";
    if ((group && !mine) || message.via_bot) {
      const sender = el("div", "sender", message.sender.name);
      if (message.via_bot) sender.appendChild(el("span", "via", " via @" + message.via_bot));
      bubble.appendChild(sender);
    }
    if (message.reply_to) {
      const quote = el("div", "reply-to");
      quote.appendChild(el("div", "sender", message.reply_to.name));
      quote.appendChild(el("div", null, message.reply_to.text));
      bubble.appendChild(quote);
    }
    if (message.photo) bubble.appendChild(el("div", "photo", "photo"));
    const text = el("div", "text");
    renderEntities(text, message.text, message.entities);
    const meta = el("span", "meta");
    if (message.edited) meta.appendChild(el("span", "edited", "edited"));
    meta.appendChild(document.createTextNode(timeOf(message.date)));
    text.appendChild(meta);
    bubble.appendChild(text);
    if (message.keyboard && message.keyboard.length) root.appendChild(renderKeyboard(message));
    return root;
  }

  function nearBottom() {
    const box = ui.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() { ui.messages.scrollTop = ui.messages.scrollHeight; }

  // The chat list's last line follows what arrives.
  function notePreview(message) {
    const chat = view.world && view.world.chats.find((c) => c.id === message.chat_id);
    if (!chat || message.deleted) return false;
    if (chat.last && (chat.last.id > message.id || chat.last.revision >= message.revision)) return false;
    chat.last = { id: message.id, text: message.text.slice(0, 80), revision: message.revision };
    return true;
  }

  // A message arrived or changed (a push, or the answer to what we sent).
  function upsert(message) {
    if (notePreview(message)) renderChatList();
    if (!inOpenChat(message)) {
      if (message.chat_id !== view.chatId) markUnread(message.chat_id);
      return;
    }
    const existing = view.shown.get(message.id);
    if (existing) {
      if (Number(existing.dataset.revision) >= message.revision) return;
      if (message.deleted) {
        existing.remove();
        view.shown.delete(message.id);
        return;
      }
      const fresh = renderMessage(message);
      existing.replaceWith(fresh);
      view.shown.set(message.id, fresh);
      return;
    }
    if (message.deleted || (view.newest !== null && message.id < view.newest)) return;
    const stick = nearBottom();
    const node = renderMessage(message);
    ui.messages.appendChild(node);
    view.shown.set(message.id, node);
    view.newest = message.id;
    if (view.oldest === null) view.oldest = message.id;
    if (stick || (message.sender.kind === "user" && message.sender.id === view.userId)) scrollToBottom();
  }

  async function loadChat() {
    const generation = ++view.generation;
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (view.thread !== null) query.set("thread", String(view.thread));
    const page = await api(`/web/api/chats/${view.chatId}/messages?${query}`);
    if (generation !== view.generation) return;
    ui.messages.replaceChildren();
    view.shown.clear();
    const frag = document.createDocumentFragment();
    for (const message of page.messages) {
      const node = renderMessage(message);
      view.shown.set(message.id, node);
      frag.appendChild(node);
    }
    ui.messages.appendChild(frag);
    view.more = page.more;
    view.oldest = page.messages.length ? page.messages[0].id : null;
    view.newest = page.messages.length ? page.messages[page.messages.length - 1].id : null;
    scrollToBottom();
    ui.messages.dataset.loaded = String(view.chatId);
  }

  async function loadOlder() {
    if (!view.more || view.loadingOlder || view.oldest === null) return;
    view.loadingOlder = true;
    const generation = view.generation;
    const query = new URLSearchParams({ limit: String(PAGE), before: String(view.oldest) });
    if (view.thread !== null) query.set("thread", String(view.thread));
    try {
      const page = await api(`/web/api/chats/${view.chatId}/messages?${query}`);
      if (generation !== view.generation) return;
      const box = ui.messages;
      const fromBottom = box.scrollHeight - box.scrollTop;
      const frag = document.createDocumentFragment();
      for (const message of page.messages) {
        if (view.shown.has(message.id)) continue;
        const node = renderMessage(message);
        view.shown.set(message.id, node);
        frag.appendChild(node);
      }
      box.insertBefore(frag, box.firstChild);
      box.scrollTop = box.scrollHeight - fromBottom; // keep what was on screen in place
      view.more = page.more;
      if (page.messages.length) view.oldest = page.messages[0].id;
    } finally {
      view.loadingOlder = false;
    }
  }

  // -- chats, people, clock ------------------------------------------------------------
  function visibleChats() {
    const id = view.userId;
    return view.world.chats.filter((chat) => {
      if (chat.type === "private") return chat.id === id;
      const status = chat.members[String(id)];
      return status !== undefined && status !== "left" && status !== "kicked";
    });
  }

  function markUnread(chatId) {
    if (!view.world || !visibleChats().some((c) => c.id === chatId)) return;
    view.unread.add(chatId);
    renderChatList();
  }

  function renderChatList() {
    const items = [];
    for (const chat of visibleChats()) {
      const li = el("li");
      li.dataset.chatId = String(chat.id);
      if (chat.id === view.chatId) li.classList.add("active");
      li.appendChild(el("div", "avatar " + chat.type, chat.title.slice(0, 1).toUpperCase()));
      const body = el("div", "chat-item-text");
      body.appendChild(el("div", "chat-item-title", chat.title));
      const kind = chat.type === "private" ? "bot" : (chat.is_forum ? "forum" : chat.type);
      body.appendChild(el("div", "chat-item-last muted", chat.last ? chat.last.text : kind));
      li.appendChild(body);
      if (view.unread.has(chat.id) && chat.id !== view.chatId) li.appendChild(el("span", "unread"));
      items.push(li);
    }
    ui.chats.replaceChildren(...items);
  }

  function renderPeople() {
    const options = view.world.people.map((person) => {
      const option = el("option", null, person.name + (person.username ? ` (@${person.username})` : ""));
      option.value = String(person.id);
      return option;
    });
    ui.user.replaceChildren(...options);
    ui.user.value = String(view.userId);
    const me = view.world.people.find((p) => p.id === view.userId);
    ui.role.textContent = me ? me.role : "";
  }

  function renderHeader() {
    const chat = currentChat();
    if (!chat) return;
    ui.title.textContent = chat.title;
    const me = chat.members[String(view.userId)];
    let sub = chat.type === "private" ? "bot · @" + botUsername() : chat.type;
    if (chat.is_forum) sub = "forum";
    if (me && chat.type !== "private") sub += " · you are " + (me === "creator" ? "the owner" : me);
    ui.sub.textContent = sub;
    const buttons = [];
    if (chat.is_forum) {
      for (const topic of [{ id: 0, name: "General" }, ...chat.topics]) {
        const b = el("button", (view.thread || 0) === topic.id ? "active" : "", topic.name);
        b.type = "button";
        b.dataset.thread = String(topic.id);
        buttons.push(b);
      }
    }
    ui.topics.replaceChildren(...buttons);
  }

  function showClock() {
    if (!view.world) return;
    const now = new Date(view.clockBase + (performance.now() - view.clockAt));
    ui.clockNow.textContent = now.toISOString().slice(0, 19).replace("T", " ");
  }

  function takeWorld(world) {
    view.world = world;
    view.clockBase = Date.parse(world.clock.now);
    view.clockAt = performance.now();
    if (!world.people.some((p) => p.id === view.userId)) view.userId = world.people[0].id;
    renderPeople();
    renderChatList();
    renderHeader();
    showClock();
  }

  async function openChat(chatId, thread) {
    view.chatId = chatId;
    view.thread = thread === undefined ? null : thread;
    view.unread.delete(chatId);
    view.commands = null;
    hidePopup();
    renderChatList();
    renderHeader();
    saveHash();
    await loadChat();
  }

  function saveHash() {
    const parts = [`user=${view.userId}`, `chat=${view.chatId}`];
    if (view.thread) parts.push(`thread=${view.thread}`);
    history.replaceState(null, "", "#" + parts.join("&"));
  }

  // -- acting ---------------------------------------------------------------------------
  async function send(text) {
    const body = { chat_id: view.chatId, user_id: view.userId, text };
    if (view.thread) body.thread_id = view.thread;
    try {
      upsert(await api("/web/api/send", body));
    } catch (e) {
      toast(e.message, 4000);
      throw e;
    }
  }

  async function press(button, messageId) {
    button.classList.add("pressed");
    try {
      const result = await api("/web/api/press", {
        chat_id: view.chatId, message_id: messageId, button: Number(button.dataset.number),
        user_id: view.userId,
      });
      const answer = result.answer;
      if (answer && answer.text) {
        if (answer.show_alert) showAlert(answer.text); else toast(answer.text);
      } else if (!result.answered) {
        toast("The bot did not answer the button.");
      }
      if (answer && answer.url) {
        const payload = deepLinkPayload(answer.url);
        if (payload !== null) await followDeepLink(payload);
      }
    } catch (e) {
      toast(e.message, 4000);
    } finally {
      button.classList.remove("pressed");
    }
  }

  async function followDeepLink(payload) {
    await openChat(view.userId);
    await send(payload ? `/start ${payload}` : "/start");
  }

  // -- composer: command menu and inline mode ------------------------------------------
  function hidePopup() {
    ui.popup.hidden = true;
    ui.popup.replaceChildren();
    view.popupItems = [];
    view.popupIndex = -1;
  }

  function showPopup(items, note) {
    const nodes = [];
    if (note) nodes.push(el("div", "note", note));
    items.forEach((item, index) => {
      const row = el("div", "item");
      row.dataset.index = String(index);
      row.appendChild(el("div", "item-title", item.title));
      if (item.description) row.appendChild(el("div", "muted", item.description));
      nodes.push(row);
    });
    ui.popup.replaceChildren(...nodes);
    ui.popup.hidden = nodes.length === 0;
    view.popupItems = items;
    view.popupIndex = -1;
  }

  async function commandMenu(prefix) {
    if (view.commands === null) {
      const query = new URLSearchParams({ chat_id: String(view.chatId), user_id: String(view.userId) });
      view.commands = await api(`/web/api/commands?${query}`);
    }
    const typed = prefix.slice(1).toLowerCase();
    const items = view.commands
      .filter((c) => c.command.startsWith(typed))
      .map((c) => ({ title: "/" + c.command, description: c.description, pick: () => pickCommand(c.command) }));
    showPopup(items);
  }

  function pickCommand(command) {
    ui.text.value = "/" + command;
    hidePopup();
    ui.text.focus();
  }

  function inlineQueryOf(text) {
    const match = /^@(\w+)\s([\s\S]*)$/.exec(text);
    if (!match || match[1].toLowerCase() !== botUsername().toLowerCase()) return null;
    return match[2];
  }

  function runInline(query) {
    clearTimeout(view.inlineTimer);
    const seq = ++view.inlineSeq;
    view.inlineTimer = setTimeout(async () => {
      try {
        const answer = await api("/web/api/inline", { query, user_id: view.userId, chat_id: view.chatId });
        if (seq !== view.inlineSeq) return;
        if (!answer.answered) { showPopup([], "The bot did not answer the inline query."); return; }
        const items = answer.results.map((r) => ({
          title: r.title, description: r.description, pick: () => sendInline(answer.query_id, r.id),
        }));
        showPopup(items, items.length ? null : "No results.");
        ui.popup.dataset.query = query;
      } catch (e) {
        if (seq === view.inlineSeq) showPopup([], e.message);
      }
    }, 250);
  }

  async function sendInline(queryId, resultId) {
    hidePopup();
    ui.text.value = "";
    const body = { query_id: queryId, result_id: resultId, chat_id: view.chatId };
    if (view.thread) body.thread_id = view.thread;
    try {
      upsert(await api("/web/api/inline/send", body));
    } catch (e) {
      toast(e.message, 4000);
    }
  }

  function onComposerInput() {
    const text = ui.text.value;
    const inline = inlineQueryOf(text);
    if (inline !== null) { runInline(inline); return; }
    view.inlineSeq += 1;
    if (/^\/\w*$/.test(text)) { commandMenu(text).catch((e) => toast(e.message)); return; }
    hidePopup();
  }

  // -- live updates ---------------------------------------------------------------------
  function listen(since) {
    const source = new EventSource(`/web/api/events?since=${since}`);
    source.addEventListener("message", (event) => upsert(JSON.parse(event.data)));
    source.addEventListener("world", (event) => {
      const world = JSON.parse(event.data);
      const clockMoved = !view.world || world.clock.generation !== view.world.clock.generation;
      view.commands = null;
      takeWorld(world);
      if (clockMoved) ui.clockNote.textContent = "Time jumped to " + world.clock.now.slice(0, 19).replace("T", " ");
    });
    source.addEventListener("open", () => { document.body.dataset.live = "1"; });
    source.addEventListener("error", () => { document.body.dataset.live = "0"; });
  }

  // -- wiring -----------------------------------------------------------------------------
  function bind() {
    ui.user.addEventListener("change", () => {
      view.userId = Number(ui.user.value);
      const me = view.world.people.find((p) => p.id === view.userId);
      ui.role.textContent = me ? me.role : "";
      const stay = visibleChats().some((c) => c.id === view.chatId);
      openChat(stay ? view.chatId : view.userId, stay ? view.thread : null);
    });
    ui.chats.addEventListener("click", (event) => {
      const li = event.target.closest("li[data-chat-id]");
      if (li) openChat(Number(li.dataset.chatId));
    });
    ui.topics.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-thread]");
      if (b) openChat(view.chatId, Number(b.dataset.thread) || null);
    });
    ui.messages.addEventListener("click", (event) => {
      const target = event.target;
      const deep = target.closest("a.deeplink");
      if (deep) { event.preventDefault(); followDeepLink(deep.dataset.start); return; }
      const button = target.closest("button.kb-button");
      if (button) {
        const id = Number(button.closest(".msg").dataset.id);
        if (button.dataset.kind === "callback") press(button, id);
        else if (button.dataset.kind === "inline_here" || button.dataset.kind === "inline") {
          ui.text.value = `@${botUsername()} ${button.dataset.query || ""}`;
          ui.text.focus();
          onComposerInput();
        }
        return;
      }
      const spoiler = target.closest(".spoiler:not(.revealed)");
      if (spoiler) { spoiler.classList.add("revealed"); return; }
      const quote = target.closest("blockquote.expandable");
      if (quote) { quote.classList.toggle("collapsed"); return; }
      const command = target.closest(".command");
      if (command) send(command.dataset.command).catch(() => {});
    });
    ui.messages.addEventListener("scroll", () => {
      if (ui.messages.scrollTop < 300) loadOlder();
    });
    ui.composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = ui.text.value;
      if (!text.trim()) return;
      if (view.popupIndex >= 0) { view.popupItems[view.popupIndex].pick(); return; }
      if (inlineQueryOf(text) !== null) return; // pick a result instead
      ui.send.disabled = true;
      try {
        await send(text);
        ui.text.value = "";
        hidePopup();
      } catch (e) {
        /* told in a toast; the text stays for another try */
      } finally {
        ui.send.disabled = false;
        ui.text.focus();
      }
    });
    ui.text.addEventListener("input", onComposerInput);
    ui.text.addEventListener("keydown", (event) => {
      const items = view.popupItems;
      if (!ui.popup.hidden && items.length && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        view.popupIndex = (view.popupIndex + step + items.length) % items.length;
        ui.popup.querySelectorAll(".item").forEach((node, i) => node.classList.toggle("selected", i === view.popupIndex));
      } else if (event.key === "Escape") {
        hidePopup();
      } else if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        ui.composer.requestSubmit();
      }
    });
    ui.popup.addEventListener("click", (event) => {
      const row = event.target.closest(".item");
      if (row) view.popupItems[Number(row.dataset.index)].pick();
    });
    ui.alert.addEventListener("click", (event) => {
      if (event.target.id === "alert-ok") ui.alert.hidden = true;
    });
    $("clock-jump").addEventListener("click", async () => {
      if (!ui.clockInput.value) { ui.clockNote.textContent = "Choose a time first."; return; }
      const at = ui.clockInput.value.length === 16 ? ui.clockInput.value + ":00" : ui.clockInput.value;
      try {
        await api("/web/api/clock", { at: at + "+00:00" });
      } catch (e) {
        ui.clockNote.textContent = e.message;
      }
    });
    $("clock-before-briefing").addEventListener("click", async () => {
      const target = { chat_id: view.chatId };
      if (view.thread) target.thread_id = view.thread;
      try {
        await api("/web/api/clock", { before_briefing: target });
      } catch (e) {
        ui.clockNote.textContent = e.message;
      }
    });
    setInterval(showClock, 1000);
  }

  async function start() {
    bind();
    const hash = new URLSearchParams(location.hash.slice(1));
    const world = await api("/web/api/world");
    view.userId = Number(hash.get("user")) || world.people[0].id;
    takeWorld(world);
    listen(world.revision);
    const chatId = Number(hash.get("chat")) || view.userId;
    const thread = Number(hash.get("thread")) || null;
    await openChat(view.world.chats.some((c) => c.id === chatId) ? chatId : view.userId, thread);
    document.body.dataset.ready = "1";
  }

  // The renderer alone, for the property test that feeds it the parser's output.
  window.SandboxRender = Object.freeze({ renderEntities });
  start().catch((e) => toast("The sandbox did not answer: " + e.message, 10000));
})();
