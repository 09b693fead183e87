"""The Bot API methods, with Telegram's validations and error wording.

:class:`BotApi` turns one call (method name + :class:`Params`) into a result or an
:class:`ApiError`; the HTTP layer (:mod:`bot.sandbox.server`) only encodes and decodes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from bot.sandbox.faults import ApiError, FaultKind
from bot.sandbox.flood import StarsExhausted
from bot.sandbox.html import HtmlParseError, ParsedText, parse_html, plain_text, utf16_len
from bot.sandbox.params import Params, UploadedFile
from bot.sandbox.state import (
    REPLY_METHODS,
    ChatType,
    MemberStatus,
    SandboxChat,
    SandboxState,
    StoredMessage,
    Webhook,
)

__all__ = ["CAPTION_LIMIT", "TEXT_LIMIT", "BotApi", "is_loopback_url", "migrate_chat"]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ENTITY_DISPLAY_LIMIT = 100
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
# The sending methods that take allow_paid_broadcast (Telegram's paid broadcasts): flood
# control counts such a call against the paid limit and charges it Stars (bot/sandbox/flood.py).
_PAID_METHODS = frozenset({"sendmessage", "sendphoto", "copymessage"})
_WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]*")
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
_BUTTON_ACTIONS = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_INLINE_RESULT_TYPES = frozenset(
    {
        "article",
        "photo",
        "gif",
        "mpeg4_gif",
        "video",
        "audio",
        "voice",
        "document",
        "location",
        "venue",
        "contact",
        "game",
        "sticker",
    }
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)

Handler = Callable[[Params], Awaitable[Any]]


def migrate_chat(state: SandboxState, chat: SandboxChat, new_chat_id: int | None) -> SandboxChat:
    """Turn a group into a supergroup the way Telegram does; returns the supergroup.

    The old chat keeps ``migrated_to`` (every later call to it is answered with
    ``migrate_to_chat_id``) and both chats get the service messages a bot would see.
    """
    if chat.migrated_to is not None:
        return state.chats[chat.migrated_to]
    new_id = new_chat_id if new_chat_id is not None else -1_000_000_000_000 + chat.id
    new_chat = SandboxChat(
        id=new_id,
        type=ChatType.SUPERGROUP,
        title=chat.title,
        members=dict(chat.members),
        bot_status=chat.bot_status,
    )
    state.chats[new_id] = new_chat
    chat.migrated_to = new_id
    sender = next(iter(chat.members), None)
    if sender is not None:
        state.ensure_user(sender)
        now = state.clock.timestamp()
        old_note = state.store(
            StoredMessage(
                chat_id=chat.id,
                message_id=state.next_message_id(chat.id),
                date=now,
                from_bot=False,
                sender_id=sender,
                migrate_to_chat_id=new_id,
            )
        )
        state.queue_update("message", state.message_json(old_note))
        new_note = state.store(
            StoredMessage(
                chat_id=new_id,
                message_id=state.next_message_id(new_id),
                date=now,
                from_bot=False,
                sender_id=sender,
                migrate_from_chat_id=chat.id,
            )
        )
        state.queue_update("message", state.message_json(new_note))
    return new_chat


class BotApi:
    """Answers Bot API calls against a :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._handlers: dict[str, Handler] = {
            "getme": self.get_me,
            "logout": self.trivial,
            "close": self.trivial,
            "deletewebhook": self.delete_webhook,
            "setwebhook": self.set_webhook,
            "getwebhookinfo": self.get_webhook_info,
            "getupdates": self.get_updates,
            "sendmessage": self.send_message,
            "editmessagetext": self.edit_message_text,
            "editmessagereplymarkup": self.edit_message_reply_markup,
            "editmessagecaption": self.edit_message_caption,
            "answercallbackquery": self.answer_callback_query,
            "answerinlinequery": self.answer_inline_query,
            "sendchataction": self.send_chat_action,
            "setmycommands": self.set_my_commands,
            "getmycommands": self.get_my_commands,
            "deletemycommands": self.delete_my_commands,
            "deletemessage": self.delete_message,
            "copymessage": self.copy_message,
            "sendphoto": self.send_photo,
            "getchat": self.get_chat,
            "getchatmember": self.get_chat_member,
            "getchatadministrators": self.get_chat_administrators,
            "getchatmembercount": self.get_chat_member_count,
        }

    def knows(self, method: str) -> bool:
        """Whether ``method`` (case-insensitive) is implemented."""
        return method.lower() in self._handlers

    async def call(self, method: str, params: Params) -> Any:
        """Run one call: injected faults, flood control, then the method itself."""
        state = self.state
        key = method.lower()
        handler = self._handlers.get(key)
        if handler is None:
            raise ApiError(404, "Not Found")
        chat_ref = params.raw.get("chat_id")
        chat_id = _int_or_none(chat_ref)
        fault = state.faults.take(method, chat_id)
        if fault is not None:
            if fault.kind is FaultKind.SLOW:
                await asyncio.sleep(fault.delay)
            elif fault.kind is FaultKind.MIGRATE:
                chat = state.chats.get(chat_id) if chat_id is not None else None
                if chat is not None:
                    new_id = migrate_chat(state, chat, fault.migrate_to_chat_id).id
                else:
                    new_id = fault.migrate_to_chat_id or -1_000_000_000_000
                raise ApiError.migrated(new_id)
            else:
                error = fault.error()
                if error is not None:
                    raise error
        cost = 0.0
        if key in REPLY_METHODS and state.options.flood.enabled:
            chat = state.chats.get(chat_id) if chat_id is not None else None
            is_group = chat.is_group if chat is not None else (chat_id or 0) < 0
            paid = key in _PAID_METHODS and params.get_bool("allow_paid_broadcast")
            try:
                wait, cost = state.flood.admit(time.monotonic(), chat_id, is_group=is_group,
                                               paid=paid)
            except StarsExhausted:
                raise ApiError.stars_exhausted() from None
            if wait is not None:
                raise ApiError.flood(wait)
        try:
            return await handler(params)
        except BaseException:
            state.flood.refund(cost)  # Telegram charges only messages delivered
            raise

    # -- helpers ------------------------------------------------------------------------
    def _chat(self, params: Params, name: str = "chat_id") -> SandboxChat:
        ref = params.chat_ref(name)
        assert ref is not None
        chat = self.state.find_chat(ref)
        if chat is None:
            raise ApiError.bad_request("chat not found")
        return chat

    def _chat_for_send(self, params: Params) -> SandboxChat:
        """The target chat of a sending call, refusing what Telegram refuses."""
        chat = self._chat(params)
        if chat.migrated_to is not None:
            raise ApiError.migrated(chat.migrated_to)
        if chat.type is ChatType.PRIVATE:
            user = self.state.users.get(chat.id)
            if user is not None and user.deactivated:
                raise ApiError.forbidden("user is deactivated")
            if chat.blocked:
                raise ApiError.forbidden("bot was blocked by the user")
        elif chat.bot_status is MemberStatus.KICKED:
            raise ApiError.forbidden(f"bot was kicked from the {_chat_word(chat)} chat")
        elif chat.bot_status is MemberStatus.LEFT:
            raise ApiError.forbidden(f"bot is not a member of the {_chat_word(chat)} chat")
        elif chat.type is ChatType.CHANNEL and chat.bot_status not in (
                MemberStatus.ADMINISTRATOR, MemberStatus.CREATOR):
            raise ApiError.bad_request("need administrator rights in the channel chat")
        return chat

    def _thread(self, chat: SandboxChat, params: Params) -> int | None:
        thread_id = params.get_int("message_thread_id")
        if thread_id is None or not chat.is_forum:
            return thread_id if chat.is_forum else None
        if thread_id != 1 and thread_id not in chat.topics:
            raise ApiError.bad_request("message thread not found")
        return thread_id

    def _text(self, raw: str | None, params: Params, *, caption: bool) -> ParsedText:
        """Parse text or a caption and check Telegram's limits."""
        prefix = "caption_" if caption else ""
        mode = (params.get_str("parse_mode") or "").strip()
        text = raw or ""
        if mode.lower() == "html":
            try:
                parsed = parse_html(text)
            except HtmlParseError as err:
                raise ApiError.bad_request(str(err)) from None
        elif mode == "":
            parsed = plain_text(text)
            entities = params.get_json(prefix + "entities" if caption else "entities")
            if isinstance(entities, list):
                parsed = ParsedText(text=text, entities=tuple(entities), entity_count=len(entities))
        elif mode.lower() in ("markdown", "markdownv2"):
            raise ApiError.bad_request(
                f"unsupported parse_mode {mode!r}: the sandbox implements only HTML"
            )
        else:
            raise ApiError.bad_request(f"unsupported parse_mode {mode!r}")
        if caption:
            if parsed.length > CAPTION_LIMIT:
                raise ApiError.bad_request("message caption is too long")
        else:
            if not parsed.text.strip():
                raise ApiError.bad_request("message text is empty")
            if parsed.length > TEXT_LIMIT:
                raise ApiError.bad_request("message is too long")
        if len(parsed.entities) > ENTITY_DISPLAY_LIMIT:
            parsed = ParsedText(
                text=parsed.text,
                entities=parsed.entities[:ENTITY_DISPLAY_LIMIT],
                entity_count=parsed.entity_count,
            )
        return parsed

    def _markup(self, params: Params) -> dict[str, Any] | None:
        markup = params.get_json("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError.bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
                return markup
            raise ApiError.bad_request("can't parse reply keyboard markup JSON object")
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError.bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        count = 0
        for row in rows:
            for button in row:
                count += 1
                _check_button(button)
        if count > 100:
            raise ApiError.bad_request("REPLY_MARKUP_TOO_LONG")
        if count == 0:
            return None
        return {"inline_keyboard": rows}

    def _target_message(self, params: Params, *, verb: str) -> StoredMessage:
        if params.has("inline_message_id"):
            raise ApiError.bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(params)
        if chat.migrated_to is not None:
            raise ApiError.migrated(chat.migrated_to)
        message_id = params.get_int("message_id", required=True)
        assert message_id is not None
        message = self.state.message(chat.id, message_id)
        if message is None or message.deleted:
            raise ApiError.bad_request(f"message to {verb} not found")
        if not message.from_bot:
            raise ApiError.bad_request("message can't be edited")
        return message

    def _new_message(
        self,
        chat: SandboxChat,
        params: Params,
        parsed: ParsedText,
        *,
        html: str | None,
        photo: str | None = None,
    ) -> StoredMessage:
        state = self.state
        reply_to = self._reply_to(chat, params)
        preview = params.get_json("link_preview_options")
        message = StoredMessage(
            chat_id=chat.id,
            message_id=state.next_message_id(chat.id),
            date=state.clock.timestamp(),
            from_bot=True,
            sender_id=state.options.bot.id,
            text=parsed.text,
            html=html,
            entities=parsed.entities,
            entity_count=parsed.entity_count,
            reply_markup=self._markup(params),
            thread_id=self._thread(chat, params),
            photo_file_id=photo,
            reply_to_message_id=reply_to,
            disable_notification=params.get_bool("disable_notification"),
            link_preview_options=preview if isinstance(preview, dict) else None,
        )
        return state.store(message)

    def _reply_to(self, chat: SandboxChat, params: Params) -> int | None:
        reply = params.get_json("reply_parameters")
        message_id: int | None
        allow = params.get_bool("allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = _int_or_none(reply.get("message_id"))
            allow = bool(reply.get("allow_sending_without_reply", allow))
        else:
            message_id = params.get_int("reply_to_message_id")
        if message_id is None:
            return None
        target = self.state.message(chat.id, message_id)
        if target is None or target.deleted:
            if allow:
                return None
            raise ApiError.bad_request("message to be replied not found")
        return message_id

    def _html_or_none(self, raw: str | None, params: Params) -> str | None:
        mode = (params.get_str("parse_mode") or "").strip().lower()
        return raw if mode == "html" else None

    # -- methods ------------------------------------------------------------------------
    async def trivial(self, params: Params) -> Any:
        """``close`` and ``logOut``."""
        return True

    async def get_me(self, params: Params) -> Any:
        """``getMe``."""
        identity = self.state.options.bot
        user = identity.to_user()
        user.update(
            {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": identity.supports_inline_queries,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        )
        return user

    async def delete_webhook(self, params: Params) -> Any:
        """``deleteWebhook``: updates wait for getUpdates again; ``drop_pending_updates``
        forgets the queue."""
        if params.get_bool("drop_pending_updates"):
            self.state.pending.clear()
        self.state.webhook = None
        self.state.webhook_work.set()
        self.state.notify()
        return True

    async def set_webhook(self, params: Params) -> Any:
        """``setWebhook`` with Telegram's checks (HTTPS, ports 443/80/88/8443, the secret's
        alphabet); an empty ``url`` removes the webhook. Updates are then posted to it by
        :class:`~bot.sandbox.server.WebhookDelivery`, which posts only to a loopback host:
        there the sandbox also takes plain http and any port, as the bot under test listens
        on one."""
        state = self.state
        url = (params.get_str("url") or "").strip()
        secret = params.get_str("secret_token")
        if secret is not None and len(secret) > 256:
            raise ApiError.bad_request("secret token is too long")
        if secret is not None and not _SECRET_TOKEN_RE.fullmatch(secret):
            raise ApiError.bad_request("secret token contains unallowed characters")
        if params.get_bool("drop_pending_updates"):
            state.pending.clear()
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            state.allowed_updates = [str(a) for a in allowed]
        if not url:
            state.webhook = None
            state.webhook_work.set()
            state.notify()
            return True
        _check_webhook_url(url)
        max_connections = params.get_int("max_connections") or 40
        state.webhook = Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=max(1, min(max_connections, 100)),
            ip_address=params.get_str("ip_address"),
            has_custom_certificate=params.has("certificate"),
        )
        state.webhook_work.set()
        state.notify()
        return True

    async def get_webhook_info(self, params: Params) -> Any:
        """``getWebhookInfo``: the URL, pending updates and the last delivery error."""
        state = self.state
        if state.webhook is None:
            return {"url": "", "has_custom_certificate": False,
                    "pending_update_count": len(state.pending)}
        return state.webhook.info(len(state.pending))

    async def get_updates(self, params: Params) -> Any:
        """``getUpdates`` with real long polling; a newer poll ends an older one (409), and
        so does a webhook, as long as one is set."""
        state = self.state
        if state.webhook is not None:
            raise ApiError(409, _WEBHOOK_ACTIVE)
        offset = params.get_int("offset")
        limit = params.get_int("limit") or 100
        if not 1 <= limit <= 100:
            limit = max(1, min(limit, 100))
        timeout = max(0.0, params.get_float("timeout") or 0.0)
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            state.allowed_updates = [str(a) for a in allowed]
        if offset is not None:
            state.confirm_updates(offset)
        state.poll_generation += 1
        generation = state.poll_generation
        deadline = time.monotonic() + min(timeout, state.options.long_poll_max)
        while True:
            ready = state.deliverable()
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or state.closing:
                break
            await state.wait_change(remaining)
            if state.webhook is not None:
                raise ApiError(409, _WEBHOOK_ACTIVE)
            if state.poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
        batch = ready[:limit]
        now = time.monotonic()
        for record in batch:
            if record.fetched_at is None:
                record.fetched_at = now
        if batch:
            state.notify()
        return [record.payload for record in batch]

    async def send_message(self, params: Params) -> Any:
        """``sendMessage``."""
        chat = self._chat_for_send(params)
        raw = params.get_str("text")
        parsed = self._text(raw, params, caption=False)
        message = self._new_message(chat, params, parsed, html=self._html_or_none(raw, params))
        return self.state.message_json(message)

    async def send_photo(self, params: Params) -> Any:
        """``sendPhoto`` with a known file id, a URL or an upload."""
        chat = self._chat_for_send(params)
        photo = params.file("photo")
        if photo is None or photo == "":
            raise ApiError.bad_request("there is no photo in the request")
        if isinstance(photo, UploadedFile):
            if photo.size == 0:
                raise ApiError.bad_request("IMAGE_PROCESS_FAILED")
            file_id = self.state.new_file_id()
        elif photo.startswith(("http://", "https://")):
            file_id = self.state.new_file_id()
        elif photo in self.state.file_ids:
            file_id = photo
        else:
            raise ApiError.bad_request("wrong file identifier/HTTP URL specified")
        raw = params.get_str("caption")
        parsed = self._text(raw, params, caption=True)
        message = self._new_message(
            chat, params, parsed, html=self._html_or_none(raw, params), photo=file_id
        )
        return self.state.message_json(message)

    async def copy_message(self, params: Params) -> Any:
        """``copyMessage``: a text or photo message the sandbox knows, to another chat."""
        source_chat = self._chat(params, "from_chat_id")
        message_id = params.get_int("message_id", required=True)
        assert message_id is not None
        source = self.state.message(source_chat.id, message_id)
        if source is None or source.deleted or source.migrate_to_chat_id is not None:
            raise ApiError.bad_request("message to copy not found")
        chat = self._chat_for_send(params)
        html = source.html
        parsed = ParsedText(source.text, source.entities, source.entity_count)
        if params.raw.get("caption") is not None and source.photo_file_id is not None:
            raw = params.get_str("caption")
            parsed = self._text(raw, params, caption=True)
            html = self._html_or_none(raw, params)
        message = self._new_message(chat, params, parsed, html=html, photo=source.photo_file_id)
        return {"message_id": message.message_id}

    async def edit_message_text(self, params: Params) -> Any:
        """``editMessageText``; without ``reply_markup`` the inline keyboard goes away."""
        message = self._target_message(params, verb="edit")
        if message.photo_file_id is not None:
            raise ApiError.bad_request("there is no text in the message to edit")
        raw = params.get_str("text")
        parsed = self._text(raw, params, caption=False)
        markup = self._markup(params)
        return self._apply_edit(message, parsed, self._html_or_none(raw, params), markup)

    async def edit_message_caption(self, params: Params) -> Any:
        """``editMessageCaption``."""
        message = self._target_message(params, verb="edit")
        if message.photo_file_id is None:
            raise ApiError.bad_request("there is no caption in the message to edit")
        raw = params.get_str("caption")
        parsed = self._text(raw, params, caption=True)
        markup = self._markup(params)
        return self._apply_edit(message, parsed, self._html_or_none(raw, params), markup)

    async def edit_message_reply_markup(self, params: Params) -> Any:
        """``editMessageReplyMarkup``."""
        message = self._target_message(params, verb="edit")
        parsed = ParsedText(message.text, message.entities, message.entity_count)
        return self._apply_edit(message, parsed, message.html, self._markup(params))

    def _apply_edit(
        self,
        message: StoredMessage,
        parsed: ParsedText,
        html: str | None,
        markup: dict[str, Any] | None,
    ) -> Any:
        if (
            parsed.text == message.text
            and tuple(parsed.entities) == tuple(message.entities)
            and markup == message.reply_markup
        ):
            raise ApiError.bad_request(_NOT_MODIFIED)
        message.edits.append(message.version())
        message.text = parsed.text
        message.entities = parsed.entities
        message.entity_count = parsed.entity_count
        message.html = html
        message.reply_markup = markup
        message.edit_date = self.state.clock.timestamp()
        self.state.touch(message)
        return self.state.message_json(message)

    async def delete_message(self, params: Params) -> Any:
        """``deleteMessage``."""
        chat = self._chat(params)
        message_id = params.get_int("message_id", required=True)
        assert message_id is not None
        message = self.state.message(chat.id, message_id)
        if message is None or message.deleted:
            raise ApiError.bad_request("message to delete not found")
        can_delete = (
            message.from_bot
            or chat.type is ChatType.PRIVATE
            or chat.bot_status in (MemberStatus.ADMINISTRATOR, MemberStatus.CREATOR)
        )
        if not can_delete:
            raise ApiError.bad_request("message can't be deleted")
        message.deleted = True
        self.state.touch(message)
        return True

    async def answer_callback_query(self, params: Params) -> Any:
        """``answerCallbackQuery``: the answer is kept for :meth:`press_button`."""
        query_id = params.get_str("callback_query_id", required=True) or ""
        query = self.state.callback_queries.get(query_id)
        if query is None or query.answer is not None:
            raise ApiError.bad_request(_QUERY_INVALID)
        text = params.get_str("text")
        if text is not None and len(text) > 200:
            raise ApiError.bad_request("MESSAGE_TOO_LONG")
        query.answer = {
            "text": text,
            "show_alert": params.get_bool("show_alert"),
            "url": params.get_str("url"),
            "cache_time": params.get_int("cache_time") or 0,
        }
        query.answered.set()
        return True

    async def answer_inline_query(self, params: Params) -> Any:
        """``answerInlineQuery``: at most 50 results with unique ids."""
        query_id = params.get_str("inline_query_id", required=True) or ""
        query = self.state.inline_queries.get(query_id)
        if query is None or query.answer is not None:
            raise ApiError.bad_request(_QUERY_INVALID)
        results = params.get_json("results")
        if not isinstance(results, list):
            raise ApiError.bad_request("can't parse inline query results JSON object")
        if len(results) > 50:
            raise ApiError.bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            _check_inline_result(result, seen)
        next_offset = params.get_str("next_offset") or ""
        if len(next_offset.encode()) > 64:
            raise ApiError.bad_request("NEXT_OFFSET_INVALID")
        query.answer = {
            "results": results,
            "next_offset": next_offset,
            "cache_time": params.get_int("cache_time"),
            "is_personal": params.get_bool("is_personal"),
            "button": params.get_json("button"),
        }
        query.answered.set()
        return True

    async def send_chat_action(self, params: Params) -> Any:
        """``sendChatAction``."""
        chat = self._chat_for_send(params)
        self._thread(chat, params)
        action = params.get_str("action", required=True)
        if action not in _CHAT_ACTIONS:
            raise ApiError.bad_request("wrong parameter action in request")
        return True

    def _scope_key(self, params: Params) -> tuple[str, str]:
        scope = params.get_json("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise ApiError.bad_request("can't parse BotCommandScope JSON object")
        scope = dict(scope)
        if scope["type"] in ("chat", "chat_administrators", "chat_member"):
            ref = scope.get("chat_id")
            chat_ref = ref if isinstance(ref, str) else _int_or_none(ref)
            chat = self.state.find_chat(chat_ref) if chat_ref is not None else None
            if chat is None:
                raise ApiError.bad_request("chat not found")
            scope["chat_id"] = chat.id
            if scope["type"] == "chat_member":
                user_id = _int_or_none(scope.get("user_id"))
                if user_id is None or user_id not in self.state.users:
                    raise ApiError.bad_request("user not found")
                scope["user_id"] = user_id
        language = params.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError.bad_request("invalid language code specified")
        return json.dumps(scope, sort_keys=True), language

    async def set_my_commands(self, params: Params) -> Any:
        """``setMyCommands``, stored per scope and language."""
        commands = params.get_json("commands")
        if not isinstance(commands, list):
            raise ApiError.bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError.bad_request("too many commands specified")
        clean: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise ApiError.bad_request("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise ApiError.bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise ApiError.bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        key = self._scope_key(params)
        if clean:
            self.state.commands[key] = clean
        else:
            self.state.commands.pop(key, None)
        return True

    async def get_my_commands(self, params: Params) -> Any:
        """``getMyCommands`` for exactly the given scope and language."""
        return list(self.state.commands.get(self._scope_key(params), []))

    async def delete_my_commands(self, params: Params) -> Any:
        """``deleteMyCommands``."""
        self.state.commands.pop(self._scope_key(params), None)
        return True

    async def get_chat(self, params: Params) -> Any:
        """``getChat``."""
        return self._chat(params).full_info()

    def _member_json(self, chat: SandboxChat, user_id: int) -> dict[str, Any]:
        state = self.state
        if user_id == state.options.bot.id:
            status = chat.bot_status
            user = state.options.bot.to_user()
        else:
            known = state.users.get(user_id)
            if known is None:
                raise ApiError.bad_request("user not found")
            user = known.to_json()
            if chat.type is ChatType.PRIVATE:
                status = MemberStatus.MEMBER if user_id == chat.id else MemberStatus.LEFT
            else:
                status = chat.members.get(user_id, MemberStatus.LEFT)
        data: dict[str, Any] = {"status": str(status), "user": user}
        if status is MemberStatus.CREATOR:
            data["is_anonymous"] = False
        elif status is MemberStatus.ADMINISTRATOR:
            data.update(
                {right: right not in ("can_be_edited", "is_anonymous") for right in _ADMIN_RIGHTS}
            )
        elif status is MemberStatus.KICKED:
            data["until_date"] = 0
        elif status is MemberStatus.RESTRICTED:
            data["status"] = str(MemberStatus.MEMBER)
        return data

    async def get_chat_member(self, params: Params) -> Any:
        """``getChatMember``: creator / administrator / member / left / kicked."""
        chat = self._chat(params)
        user_id = params.get_int("user_id", required=True)
        assert user_id is not None
        return self._member_json(chat, user_id)

    async def get_chat_administrators(self, params: Params) -> Any:
        """``getChatAdministrators``."""
        chat = self._chat(params)
        if chat.type is ChatType.PRIVATE:
            raise ApiError.bad_request("there are no administrators in the private chat")
        admins = (MemberStatus.CREATOR, MemberStatus.ADMINISTRATOR)
        result = [self._member_json(chat, uid) for uid, s in chat.members.items() if s in admins]
        if chat.bot_status in admins:
            result.append(self._member_json(chat, self.state.options.bot.id))
        return result

    async def get_chat_member_count(self, params: Params) -> Any:
        """``getChatMemberCount``."""
        chat = self._chat(params)
        if chat.type is ChatType.PRIVATE:
            return 2
        present = (MemberStatus.CREATOR, MemberStatus.ADMINISTRATOR, MemberStatus.MEMBER)
        bot_in = 1 if chat.bot_status in present else 0
        return sum(1 for s in chat.members.values() if s in present) + bot_in


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_webhook_url(url: str) -> None:
    """Refuse what Telegram refuses; and, unlike Telegram, any host but this machine."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ApiError.bad_request("bad webhook: invalid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError.bad_request("bad webhook: invalid URL")
    if is_loopback_url(url):
        return
    if parts.scheme != "https":
        raise ApiError.bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if (port or 443) not in _WEBHOOK_PORTS:
        raise ApiError.bad_request(
            "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
        )
    raise ApiError.bad_request(
        "bad webhook: the sandbox posts updates only to this machine (127.0.0.1, ::1 or "
        "localhost)"
    )


def _chat_word(chat: SandboxChat) -> str:
    return "channel" if chat.type is ChatType.CHANNEL else str(chat.type)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError.bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    actions = [k for k in button if k in _BUTTON_ACTIONS]
    if len(actions) != 1:
        raise ApiError.bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise ApiError.bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"(https?|tg)://\S+$", url):
            raise ApiError.bad_request("BUTTON_URL_INVALID")


def _check_inline_result(result: Any, seen: set[str]) -> None:
    if not isinstance(result, dict) or result.get("type") not in _INLINE_RESULT_TYPES:
        raise ApiError.bad_request("RESULT_TYPE_INVALID")
    result_id = result.get("id")
    if not isinstance(result_id, str) or not 1 <= len(result_id.encode("utf-8")) <= 64:
        raise ApiError.bad_request("RESULT_ID_INVALID")
    if result_id in seen:
        raise ApiError.bad_request("RESULT_ID_DUPLICATE")
    seen.add(result_id)
    content = result.get("input_message_content")
    if result["type"] == "article":
        if not isinstance(result.get("title"), str) or not result["title"]:
            raise ApiError.bad_request("RESULT_TITLE_EMPTY")
        if not isinstance(content, dict):
            raise ApiError.bad_request("MESSAGE_EMPTY")
    if isinstance(content, dict) and "message_text" in content:
        text = content["message_text"]
        if not isinstance(text, str) or not text.strip():
            raise ApiError.bad_request("MESSAGE_EMPTY")
        mode = str(content.get("parse_mode") or "").lower()
        parsed = plain_text(text)
        if mode == "html":
            try:
                parsed = parse_html(text)
            except HtmlParseError as err:
                raise ApiError.bad_request(str(err)) from None
        if utf16_len(parsed.text) > TEXT_LIMIT:
            raise ApiError.bad_request("MESSAGE_TOO_LONG")
    if "reply_markup" in result:
        markup = result["reply_markup"]
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list):
            raise ApiError.bad_request("can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row if isinstance(row, list) else [row]:
                _check_button(button)
