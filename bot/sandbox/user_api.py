"""The user side of the sandbox: people writing, pressing buttons, blocking the bot.

:class:`UserSide` is the "other half" of Telegram. Every action queues the update a real
bot would receive and returns at once; ``wait_idle`` / ``wait_reply`` then wait for the
bot's answer. :class:`bot.sandbox.server.SandboxServer` inherits all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.sandbox.bot_api import migrate_chat
from bot.sandbox.faults import Fault
from bot.sandbox.flood import FloodLimits
from bot.sandbox.html import command_entities, parse_html, plain_text
from bot.sandbox.state import (
    DEMO_USER_ID,
    REPLY_METHODS,
    CallRecord,
    ChatType,
    MemberStatus,
    PendingQuery,
    SandboxChat,
    SandboxState,
    SandboxUser,
    StoredMessage,
)

__all__ = ["ButtonPress", "InlineRun", "RoundTrip", "UserPost", "UserSide"]


def _kind(chat: SandboxChat, update_type: str) -> str:
    """Posts in a channel reach the bot as ``channel_post`` / ``edited_channel_post``."""
    if chat.type is ChatType.CHANNEL:
        return update_type.replace("message", "channel_post")
    return update_type


@dataclass(frozen=True)
class UserPost:
    """A user's message (or edit) and the update that carries it to the bot."""

    update_id: int
    message: StoredMessage
    update: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {"update_id": self.update_id, "message": self.message.to_json()}


@dataclass(frozen=True)
class ButtonPress:
    """A pressed inline button; ``answer`` holds answerCallbackQuery's parameters, if any."""

    update_id: int
    query_id: str
    data: str
    answer: dict[str, Any] | None

    @property
    def answer_text(self) -> str | None:
        """The toast/alert text the bot answered with."""
        return self.answer.get("text") if self.answer else None

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {
            "update_id": self.update_id,
            "query_id": self.query_id,
            "data": self.data,
            "answered": self.answer is not None,
            "answer": self.answer,
        }


@dataclass(frozen=True)
class InlineRun:
    """An inline query; ``answer`` holds answerInlineQuery's parameters, if any."""

    update_id: int
    query_id: str
    query: str
    answer: dict[str, Any] | None

    @property
    def results(self) -> list[dict[str, Any]]:
        """The InlineQueryResult objects the bot answered with."""
        return list(self.answer["results"]) if self.answer else []

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {
            "update_id": self.update_id,
            "query_id": self.query_id,
            "query": self.query,
            "answered": self.answer is not None,
            "answer": self.answer,
        }


@dataclass(frozen=True)
class RoundTrip:
    """How the bot answered one update in one chat; times are ``time.monotonic()``.

    ``first_reply_at``/``last_reply_at`` are when the first/last matching call was answered.
    """

    update_id: int
    chat_id: int
    queued_at: float
    fetched_at: float | None
    calls: tuple[CallRecord, ...] = field(default_factory=tuple)
    complete: bool = False

    @property
    def first_reply_at(self) -> float | None:
        """When the first reply call was answered."""
        return self.calls[0].finished if self.calls else None

    @property
    def last_reply_at(self) -> float | None:
        """When the last reply call was answered."""
        return self.calls[-1].finished if self.calls else None

    @property
    def first_latency(self) -> float | None:
        """Seconds from queueing the update to the first reply."""
        first = self.first_reply_at
        return None if first is None else first - self.queued_at

    @property
    def last_latency(self) -> float | None:
        """Seconds from queueing the update to the last reply (the round trip)."""
        last = self.last_reply_at
        return None if last is None else last - self.queued_at

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {
            "update_id": self.update_id,
            "chat_id": self.chat_id,
            "queued_at": self.queued_at,
            "fetched_at": self.fetched_at,
            "first_reply_at": self.first_reply_at,
            "last_reply_at": self.last_reply_at,
            "first_latency": self.first_latency,
            "last_latency": self.last_latency,
            "complete": self.complete,
            "calls": [c.to_json() for c in self.calls],
        }


class UserSide:
    """User actions and inspection, on top of a :class:`SandboxState`."""

    state: SandboxState

    # -- people and chats ---------------------------------------------------------------
    def add_user(
        self, user_id: int, first_name: str | None = None, username: str | None = None
    ) -> SandboxUser:
        """Register (or rename) a user."""
        return self.state.ensure_user(user_id, first_name, username)

    def add_chat(
        self,
        chat_id: int,
        chat_type: ChatType | str,
        *,
        title: str | None = None,
        username: str | None = None,
        is_forum: bool = False,
        members: Iterable[int] = (),
        admins: Iterable[int] = (),
        creator: int | None = None,
        topics: Iterable[int] = (),
        bot_status: MemberStatus | str = MemberStatus.MEMBER,
    ) -> SandboxChat:
        """Register a chat so the bot may send to it (private chats also appear on their own).

        ``members``, ``admins`` and ``creator`` are user ids (registered as users too);
        ``topics`` are forum topic ids (``message_thread_id``) that exist.
        """
        kind = ChatType(chat_type)
        if kind is ChatType.PRIVATE:
            user = self.state.ensure_user(chat_id)
            chat = SandboxChat(
                id=chat_id, type=kind, first_name=user.first_name, username=user.username
            )
        else:
            chat = SandboxChat(
                id=chat_id,
                type=kind,
                title=title or f"Chat {chat_id}",
                username=username,
                is_forum=is_forum,
                bot_status=MemberStatus(bot_status),
                topics=set(topics),
            )
            for uid in members:
                self.state.ensure_user(uid)
                chat.members[uid] = MemberStatus.MEMBER
            for uid in admins:
                self.state.ensure_user(uid)
                chat.members[uid] = MemberStatus.ADMINISTRATOR
            if creator is not None:
                self.state.ensure_user(creator)
                chat.members[creator] = MemberStatus.CREATOR
        self.state.chats[chat_id] = chat
        return chat

    def _chat_for_user(
        self, user: SandboxUser, chat_id: int | None, chat_type: ChatType | str | None
    ) -> SandboxChat:
        if chat_id is None or chat_id == user.id:
            chat = self.state.chats.get(user.id)
            if chat is None:
                chat = self.add_chat(user.id, ChatType.PRIVATE)
            chat.first_name = user.first_name
            chat.username = user.username
            chat.blocked = False  # writing to the bot again means it is not blocked
            return chat
        chat = self.state.chats.get(chat_id)
        if chat is None:
            kind = chat_type or (
                ChatType.SUPERGROUP if chat_id <= -1_000_000_000_000 else ChatType.GROUP
            )
            chat = self.add_chat(chat_id, kind)
        if chat.type is ChatType.CHANNEL:
            if chat.members.get(user.id) not in (MemberStatus.ADMINISTRATOR,
                                                 MemberStatus.CREATOR):
                raise ValueError(f"user {user.id} is not an administrator of channel "
                                 f"{chat.id}: only administrators post in a channel")
        elif user.id not in chat.members:
            chat.members[user.id] = MemberStatus.MEMBER
        return chat

    # -- messages from users ------------------------------------------------------------
    async def user_message(
        self,
        text: str,
        *,
        user_id: int = DEMO_USER_ID,
        chat_id: int | None = None,
        thread_id: int | None = None,
        chat_type: ChatType | str | None = None,
        first_name: str | None = None,
        username: str | None = None,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> UserPost:
        """A user writes ``text`` (a command gets its ``bot_command`` entity, like Telegram).

        Without ``chat_id`` it goes to the private chat with the bot; an unknown negative
        ``chat_id`` creates a group (``chat_type`` to choose). ``thread_id`` makes it a
        forum-topic message. In a channel only its administrators may post, and the post
        reaches the bot as a ``channel_post`` signed by the channel, as on Telegram.
        """
        if not text:
            raise ValueError("a user message needs text")
        state = self.state
        user = state.ensure_user(user_id, first_name, username)
        chat = self._chat_for_user(user, chat_id, chat_type)
        if thread_id is not None:
            chat.topics.add(thread_id)
        message = state.store(
            StoredMessage(
                chat_id=chat.id,
                message_id=state.next_message_id(chat.id),
                date=state.clock.timestamp(),
                from_bot=False,
                sender_id=user.id,
                text=text,
                entities=tuple(entities if entities is not None else command_entities(text)),
                thread_id=thread_id,
                reply_to_message_id=reply_to_message_id,
            )
        )
        message.entity_count = len(message.entities)
        record = state.queue_update(_kind(chat, "message"), state.message_json(message))
        return UserPost(record.update_id, message, record.payload)

    async def edit_user_message(self, chat_id: int, message_id: int, text: str) -> UserPost:
        """A user edits their message: the bot gets an ``edited_message`` update (in a
        channel, ``edited_channel_post``)."""
        state = self.state
        message = state.message(chat_id, message_id)
        if message is None or message.from_bot or message.deleted:
            raise LookupError(f"no user message {message_id} in chat {chat_id}")
        message.edits.append(message.version())
        message.text = text
        message.entities = tuple(command_entities(text))
        message.edit_date = state.clock.timestamp()
        state.touch(message)
        record = state.queue_update(_kind(state.chats[chat_id], "edited_message"),
                                    state.message_json(message))
        return UserPost(record.update_id, message, record.payload)

    async def user_photo(
        self,
        *,
        caption: str | None = None,
        user_id: int = DEMO_USER_ID,
        chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> UserPost:
        """A user sends a photo (a fake, known ``file_id``) with an optional caption."""
        state = self.state
        user = state.ensure_user(user_id)
        chat = self._chat_for_user(user, chat_id, None)
        message = state.store(
            StoredMessage(
                chat_id=chat.id,
                message_id=state.next_message_id(chat.id),
                date=state.clock.timestamp(),
                from_bot=False,
                sender_id=user.id,
                text=caption or "",
                thread_id=thread_id,
                photo_file_id=state.new_file_id(),
            )
        )
        record = state.queue_update(_kind(chat, "message"), state.message_json(message))
        return UserPost(record.update_id, message, record.payload)

    # -- buttons and inline queries -----------------------------------------------------
    def last_message_with_buttons(self, chat_id: int) -> StoredMessage | None:
        """The bot's latest visible message in ``chat_id`` that has inline buttons."""
        for message in reversed(self.state.chat_messages(chat_id)):
            if message.from_bot and not message.deleted and message.buttons:
                return message
        return None

    async def press_button(
        self,
        chat_id: int,
        message_id: int | None = None,
        *,
        button: int | None = None,
        data: str | None = None,
        text: str | None = None,
        user_id: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - part of the documented API
    ) -> ButtonPress:
        """Press an inline button of a bot message (default: the last one with buttons).

        Choose the button by ``button`` (1-based, across the keyboard), ``data`` or ``text``.
        With ``timeout`` it also waits that long for answerCallbackQuery.
        """
        state = self.state
        message = (
            self.last_message_with_buttons(chat_id)
            if message_id is None
            else state.message(chat_id, message_id)
        )
        if message is None or message.deleted or not message.from_bot:
            raise LookupError(f"no bot message with buttons in chat {chat_id}")
        buttons = message.buttons
        chosen: dict[str, Any] | None = None
        if button is not None:
            if not 1 <= button <= len(buttons):
                raise LookupError(f"the message has {len(buttons)} buttons, not {button}")
            chosen = buttons[button - 1]
        else:
            for candidate in buttons:
                if (data is not None and candidate.get("callback_data") == data) or (
                    text is not None and candidate.get("text") == text
                ):
                    chosen = candidate
                    break
        if chosen is None:
            raise LookupError("no such button")
        if "callback_data" not in chosen:
            raise LookupError(f"button {chosen.get('text')!r} is not a callback button")
        chat = state.chats[chat_id]
        presser_id = (
            user_id
            if user_id is not None
            else (chat_id if chat.type is ChatType.PRIVATE else DEMO_USER_ID)
        )
        presser = state.ensure_user(presser_id)
        query_id = state.new_query_id()
        body = {
            "id": query_id,
            "from": presser.to_json(),
            "message": state.message_json(message),
            "chat_instance": str(abs(chat_id) * 7 + 13),
            "data": chosen["callback_data"],
        }
        record = state.queue_update("callback_query", body)
        query = PendingQuery(query_id=query_id, update_id=record.update_id, user_id=presser_id)
        state.callback_queries[query_id] = query
        if timeout is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(query.answered.wait(), timeout)
        return ButtonPress(record.update_id, query_id, chosen["callback_data"], query.answer)

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The bot's answerCallbackQuery parameters for a press, once answered."""
        query = self.state.callback_queries.get(query_id)
        return query.answer if query else None

    async def inline_query(
        self,
        query: str,
        *,
        user_id: int = DEMO_USER_ID,
        offset: str = "",
        chat_type: str = "private",
        timeout: float | None = 10.0,  # noqa: ASYNC109 - part of the documented API
    ) -> InlineRun:
        """A user types ``@bot query``; with ``timeout`` waits for answerInlineQuery."""
        state = self.state
        user = state.ensure_user(user_id)
        query_id = state.new_query_id()
        body = {
            "id": query_id,
            "from": user.to_json(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        record = state.queue_update("inline_query", body)
        pending = PendingQuery(query_id=query_id, update_id=record.update_id, user_id=user_id)
        state.inline_queries[query_id] = pending
        if timeout is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.answered.wait(), timeout)
        return InlineRun(record.update_id, query_id, query, pending.answer)

    async def send_inline_result(
        self,
        query_id: str,
        result_id: str,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> UserPost:
        """The user picks result ``result_id`` of an answered inline query: its message
        (``input_message_content``, the result's keyboard) is posted in ``chat_id`` (default:
        the user's private chat with the bot) as the user's, "via @bot", and reaches the bot
        as a message update with ``via_bot``, as on Telegram. Only text results are sent."""
        state = self.state
        pending = state.inline_queries.get(query_id)
        if pending is None or pending.answer is None:
            raise LookupError(f"no answered inline query {query_id}")
        result = next((r for r in pending.answer["results"] if r.get("id") == result_id), None)
        if result is None:
            raise LookupError(f"the inline answer has no result {result_id!r}")
        content = result.get("input_message_content")
        if not isinstance(content, dict) or "message_text" not in content:
            raise ValueError("only results with a text message can be sent here")
        raw = str(content["message_text"])
        mode = str(content.get("parse_mode") or "").lower()
        parsed = parse_html(raw) if mode == "html" else plain_text(raw)
        user = state.ensure_user(pending.user_id)
        chat = self._chat_for_user(user, chat_id, None)
        markup = result.get("reply_markup")
        message = state.store(
            StoredMessage(
                chat_id=chat.id,
                message_id=state.next_message_id(chat.id),
                date=state.clock.timestamp(),
                from_bot=False,
                sender_id=user.id,
                text=parsed.text,
                html=raw if mode == "html" else None,
                entities=parsed.entities,
                entity_count=parsed.entity_count,
                reply_markup=markup if isinstance(markup, dict) else None,
                thread_id=thread_id,
                via_bot=True,
            )
        )
        record = state.queue_update(_kind(chat, "message"), state.message_json(message))
        return UserPost(record.update_id, message, record.payload)

    def command_menu(self, chat_id: int, user_id: int) -> list[dict[str, Any]]:
        """The commands Telegram's "/" menu offers ``user_id`` in ``chat_id``: the first
        scope that has commands, from the narrowest (that member in that chat) to default,
        in the user's language before the general list."""
        state = self.state
        chat = state.chats.get(chat_id)
        if chat is None:
            raise LookupError(f"unknown chat {chat_id}")
        private = chat.type is ChatType.PRIVATE
        admin = not private and chat.members.get(user_id) in (MemberStatus.ADMINISTRATOR,
                                                                MemberStatus.CREATOR)
        scopes: list[dict[str, Any]] = [{"type": "chat_member", "chat_id": chat_id,
                                         "user_id": user_id}]
        if admin:
            scopes.append({"type": "chat_administrators", "chat_id": chat_id})
        scopes.append({"type": "chat", "chat_id": chat_id})
        if admin:
            scopes.append({"type": "all_chat_administrators"})
        scopes.append({"type": "all_private_chats" if private else "all_group_chats"})
        scopes.append({"type": "default"})
        user = state.users.get(user_id)
        languages = [user.language_code] if user is not None and user.language_code else []
        for scope in scopes:
            key = json.dumps(scope, sort_keys=True)
            for language in [*languages, ""]:
                found = state.commands.get((key, language))
                if found:
                    return list(found)
        return []

    # -- membership ---------------------------------------------------------------------
    def _member_update(
        self, chat: SandboxChat, by_user: int, old: MemberStatus, new: MemberStatus
    ) -> int:
        state = self.state
        by = state.ensure_user(by_user)
        bot_user = state.options.bot.to_user()

        def member(status: MemberStatus) -> dict[str, Any]:
            data: dict[str, Any] = {"status": str(status), "user": bot_user}
            if status is MemberStatus.KICKED:
                data["until_date"] = 0
            if status is MemberStatus.ADMINISTRATOR:
                data.update(
                    {
                        "can_be_edited": False,
                        "is_anonymous": False,
                        "can_manage_chat": True,
                        "can_delete_messages": True,
                        "can_manage_video_chats": True,
                        "can_restrict_members": True,
                        "can_promote_members": False,
                        "can_change_info": True,
                        "can_invite_users": True,
                        "can_post_stories": True,
                        "can_edit_stories": True,
                        "can_delete_stories": True,
                    }
                )
            return data

        body = {
            "chat": chat.to_json(),
            "from": by.to_json(),
            "date": state.clock.timestamp(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return state.queue_update("my_chat_member", body).update_id

    async def bot_added(
        self, chat_id: int, *, by_user_id: int = DEMO_USER_ID, as_admin: bool = False
    ) -> int:
        """Someone adds the bot to a registered group/channel: a ``my_chat_member`` update."""
        chat = self.state.chats[chat_id]
        old = chat.bot_status
        chat.bot_status = MemberStatus.ADMINISTRATOR if as_admin else MemberStatus.MEMBER
        chat.members.setdefault(by_user_id, MemberStatus.MEMBER)
        return self._member_update(chat, by_user_id, old, chat.bot_status)

    async def bot_removed(
        self, chat_id: int, *, by_user_id: int = DEMO_USER_ID, kicked: bool = True
    ) -> int:
        """Someone removes the bot from a group; later sends there get 403."""
        chat = self.state.chats[chat_id]
        old = chat.bot_status
        chat.bot_status = MemberStatus.KICKED if kicked else MemberStatus.LEFT
        return self._member_update(chat, by_user_id, old, chat.bot_status)

    async def block_bot(self, user_id: int) -> int:
        """The user blocks the bot in private: a ``my_chat_member`` update, then 403s."""
        chat = self._chat_for_user(self.state.ensure_user(user_id), None, None)
        chat.blocked = True
        return self._member_update(chat, user_id, MemberStatus.MEMBER, MemberStatus.KICKED)

    async def unblock_bot(self, user_id: int) -> int:
        """The user unblocks the bot again."""
        chat = self._chat_for_user(self.state.ensure_user(user_id), None, None)
        return self._member_update(chat, user_id, MemberStatus.KICKED, MemberStatus.MEMBER)

    def deactivate_user(self, user_id: int) -> None:
        """The account is deleted: sends to it get "Forbidden: user is deactivated"."""
        self.state.ensure_user(user_id).deactivated = True

    def migrate_group(self, chat_id: int, new_chat_id: int | None = None) -> int:
        """The group becomes a supergroup; returns its new id."""
        return migrate_chat(self.state, self.state.chats[chat_id], new_chat_id).id

    # -- faults and options -------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        """Inject a fault (see :class:`bot.sandbox.faults.Fault`)."""
        return self.state.faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.state.faults.clear()

    def set_flood_limits(self, limits: FloodLimits) -> None:
        """Change flood control at runtime (``FloodLimits()`` switches it off)."""
        self.state.options.flood = limits
        self.state.flood.limits = limits

    def set_now(self, when: datetime | None) -> None:
        """Fix the clock used for message dates (aware datetime), or None for real time."""
        self.state.clock.set(when)
        self.state.options.now = when

    @property
    def flood_refusals(self) -> int:
        """How many 429 answers flood control gave."""
        return self.state.flood.refused

    # -- reading what happened ----------------------------------------------------------
    def messages(
        self, chat_id: int, *, include_deleted: bool = False, thread_id: int | None = None
    ) -> list[StoredMessage]:
        """All messages of a chat (user and bot), oldest first."""
        return [
            m
            for m in self.state.chat_messages(chat_id)
            if (include_deleted or not m.deleted)
            and (thread_id is None or m.thread_id == thread_id)
        ]

    def bot_messages(
        self, chat_id: int, *, include_deleted: bool = False, thread_id: int | None = None
    ) -> list[StoredMessage]:
        """What the bot sent to a chat, oldest first."""
        return [
            m
            for m in self.messages(chat_id, include_deleted=include_deleted, thread_id=thread_id)
            if m.from_bot
        ]

    def calls(self, method: str | None = None, *, since: int = 0) -> list[CallRecord]:
        """Recorded Bot API calls after call number ``since``, optionally of one method."""
        return [
            c
            for c in self.state.calls[since:]
            if method is None or c.method.lower() == method.lower()
        ]

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """The commands set for a scope (default scope when None)."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return list(self.state.commands.get((key, language_code), []))

    # -- waiting for the bot ------------------------------------------------------------
    async def wait_idle(
        self,
        update_id: int,
        quiet: float = 0.2,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the documented API
    ) -> bool:
        """Wait until the bot fetched ``update_id`` and then made no call for ``quiet`` s.

        Returns False if that did not happen within ``timeout`` seconds.
        """
        state = self.state
        record = state.updates.get(update_id)
        if record is None:
            raise LookupError(f"unknown update {update_id}")
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            if record.fetched_at is not None:
                last = record.fetched_at
                busy = False
                for call in state.bot_calls_since(record.calls_before):
                    if call.finished is None:
                        busy = True
                    else:
                        last = max(last, call.finished)
                idle_for = now - last
                if not busy and idle_for >= quiet:
                    return True
                wait = quiet - idle_for if not busy else deadline - now
                await state.wait_change(min(max(wait, 0.001), deadline - now))
            else:
                await state.wait_change(deadline - now)

    async def wait_reply(
        self,
        update_id: int,
        chat_id: int,
        *,
        count: int | None = None,
        quiet: float = 0.2,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the documented API
        methods: Iterable[str] | None = None,
    ) -> RoundTrip:
        """Wait for the bot's reply calls to ``chat_id`` after ``update_id``.

        Reply calls are successful message-producing calls (sendMessage, edits, sendPhoto,
        copyMessage; or ``methods``). Done after ``count`` of them (``count=1``: the first),
        or when ``quiet`` seconds passed after the last one; ``complete`` is False on timeout.
        """
        state = self.state
        record = state.updates.get(update_id)
        if record is None:
            raise LookupError(f"unknown update {update_id}")
        wanted = {m.lower() for m in methods} if methods is not None else REPLY_METHODS
        deadline = time.monotonic() + timeout

        def snapshot(complete: bool) -> RoundTrip:
            matched = tuple(
                c
                for c in state.calls[record.calls_before :]
                if c.chat_id == chat_id and c.method.lower() in wanted and c.status == 200
            )
            if count is not None:
                matched = matched[:count]
            return RoundTrip(
                update_id, chat_id, record.queued_at, record.fetched_at, matched, complete
            )

        while True:
            now = time.monotonic()
            current = snapshot(False)
            busy = any(c.finished is None for c in state.bot_calls_since(record.calls_before))
            if count is not None and len(current.calls) >= count:
                return snapshot(True)
            if count is None and current.calls and not busy:
                last = current.last_reply_at or now
                if now - last >= quiet:
                    return snapshot(True)
                await state.wait_change(min(quiet - (now - last), deadline - now))
                continue
            if now >= deadline:
                return current
            await state.wait_change(deadline - now)

    def reset(self) -> None:
        """Forget chats, users, messages, calls, faults and queued updates.

        Options stay, and update ids keep increasing.
        """
        state = self.state
        state.users.clear()
        state.chats.clear()
        state.messages.clear()
        state.pending.clear()
        state.calls.clear()
        state.updates.clear()
        state.callback_queries.clear()
        state.inline_queries.clear()
        state.commands.clear()
        state.faults.clear()
        state.flood.reset()
        state.notify()
