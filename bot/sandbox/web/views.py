"""What the web chat's page is sent: JSON views of the sandbox's people, chats and messages.

A message goes to the page as its visible text plus the entities the sandbox's own
Telegram-HTML parser produced (:mod:`bot.sandbox.html`), never as the HTML the bot sent:
the page builds its DOM from these, so story text cannot become markup there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.sandbox.state import ChatType, MemberStatus, SandboxChat, SandboxState, StoredMessage

__all__ = ["PAGE_SIZE", "chat_view", "message_page", "message_view", "visible_to"]

#: Messages per page: a chat opens with its newest PAGE_SIZE, older ones load on scroll.
PAGE_SIZE = 200
_SNIPPET = 80
_GONE = (MemberStatus.LEFT, MemberStatus.KICKED)


def _sender(state: SandboxState, message: StoredMessage, chat: SandboxChat) -> dict[str, Any]:
    if message.from_bot:
        bot = state.options.bot
        return {"kind": "bot", "id": bot.id, "name": bot.first_name}
    if chat.type is ChatType.CHANNEL:
        return {"kind": "channel", "id": chat.id, "name": chat.title or ""}
    user = state.users.get(message.sender_id)
    return {"kind": "user", "id": message.sender_id,
            "name": user.first_name if user else f"User {message.sender_id}"}


def _keyboard(message: StoredMessage) -> list[list[dict[str, Any]]]:
    rows: list[list[dict[str, Any]]] = []
    number = 0
    for row in message.button_rows:
        shown: list[dict[str, Any]] = []
        for button in row:
            number += 1
            view: dict[str, Any] = {"number": number, "text": str(button.get("text", ""))}
            if "callback_data" in button:
                view["kind"] = "callback"
            elif "url" in button:
                view["kind"] = "url"
                view["url"] = str(button["url"])
            elif "switch_inline_query_current_chat" in button:
                view["kind"] = "inline_here"
                view["query"] = str(button["switch_inline_query_current_chat"])
            elif "switch_inline_query" in button:
                view["kind"] = "inline"
                view["query"] = str(button["switch_inline_query"])
            else:
                view["kind"] = "other"
            shown.append(view)
        rows.append(shown)
    return rows


def _service_text(state: SandboxState, message: StoredMessage) -> str | None:
    if message.migrate_to_chat_id is not None:
        return "The group was upgraded to a supergroup"
    if message.migrate_from_chat_id is not None:
        return "The group was upgraded from a basic group"
    return None


def message_view(state: SandboxState, message: StoredMessage) -> dict[str, Any]:
    """One message as the page renders it (text and entities; never HTML)."""
    chat = state.chats[message.chat_id]
    reply_to = None
    if message.reply_to_message_id is not None:
        replied = state.message(message.chat_id, message.reply_to_message_id)
        if replied is not None and not replied.deleted:
            reply_to = {"id": replied.message_id,
                        "name": _sender(state, replied, chat)["name"],
                        "text": replied.text[:_SNIPPET]}
    return {
        "chat_id": message.chat_id,
        "id": message.message_id,
        "thread_id": message.thread_id,
        "revision": message.revision,
        "date": message.date,
        "edited": message.edit_date is not None,
        "deleted": message.deleted,
        "sender": _sender(state, message, chat),
        "via_bot": state.options.bot.username if message.via_bot else None,
        "text": message.text,
        "entities": list(message.entities),
        "photo": message.photo_file_id is not None,
        "service": _service_text(state, message),
        "reply_to": reply_to,
        "keyboard": _keyboard(message),
    }


def _in_thread(message: StoredMessage, chat: SandboxChat, thread: int | None) -> bool:
    """A forum's "General" (thread None/0) holds messages without a topic."""
    if not chat.is_forum:
        return True
    return (message.thread_id or 0) == (thread or 0)


def message_page(state: SandboxState, chat_id: int, *, thread: int | None = None,
                 before: int | None = None, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """The newest ``limit`` visible messages of a chat (or of one forum topic) older than
    message ``before``, oldest first, and whether there are older ones."""
    chat = state.chats.get(chat_id)
    if chat is None:
        raise LookupError(f"unknown chat {chat_id}")
    shown = [m for m in state.chat_messages(chat_id)
             if not m.deleted and _in_thread(m, chat, thread)
             and (before is None or m.message_id < before)]
    page = shown[-limit:] if limit > 0 else []
    return {"messages": [message_view(state, m) for m in page],
            "more": len(shown) > len(page), "revision": state.revision}


def visible_to(chat: SandboxChat, user_id: int) -> bool:
    """Whether the user has this chat in their list: their own chat with the bot, or a
    group or channel they belong to."""
    if chat.type is ChatType.PRIVATE:
        return chat.id == user_id
    status = chat.members.get(user_id)
    return status is not None and status not in _GONE and chat.migrated_to is None


def chat_view(state: SandboxState, chat: SandboxChat) -> dict[str, Any]:
    """A chat for the chat list and the chat's header."""
    if chat.type is ChatType.PRIVATE:
        title = state.options.bot.first_name
    else:
        title = chat.title or f"Chat {chat.id}"
    last = next((m for m in reversed(state.chat_messages(chat.id)) if not m.deleted), None)
    topics = [{"id": t, "name": chat.topic_names.get(t, f"Topic {t}")}
              for t in sorted(chat.topics)]
    return {
        "id": chat.id,
        "type": str(chat.type),
        "title": title,
        "username": chat.username,
        "is_forum": chat.is_forum,
        "topics": topics,
        "members": {str(uid): str(status) for uid, status in chat.members.items()},
        "bot_status": str(chat.bot_status),
        "last": None if last is None else {"id": last.message_id, "text": last.text[:_SNIPPET],
                                           "revision": last.revision},
    }


def people_view(state: SandboxState, roles: Mapping[int, str]) -> list[dict[str, Any]]:
    """The people the page can act as: those with a role first, then anyone else known."""
    ordered: Iterable[int] = [*roles, *(u for u in state.users if u not in roles)]
    return [{"id": uid, "name": state.users[uid].first_name,
             "username": state.users[uid].username, "role": roles.get(uid, "")}
            for uid in ordered if uid in state.users]
