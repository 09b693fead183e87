"""What the sandbox knows: users, chats, messages, the update queue, the webhook (if one is
set, with every attempt to post to it) and the call log.

Everything here is plain data plus the waiting primitives (long polling, "has the bot
answered yet"). The Bot API methods (:mod:`bot.sandbox.bot_api`) and the user side
(:mod:`bot.sandbox.user_api`) both work on one :class:`SandboxState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.sandbox.clock import SandboxClock
from bot.sandbox.faults import FaultBook
from bot.sandbox.flood import FloodControl
from bot.sandbox.options import SandboxOptions

__all__ = [
    "DEMO_USER_ID",
    "POLLING_METHODS",
    "REPLY_METHODS",
    "CallRecord",
    "ChatType",
    "MemberStatus",
    "MessageVersion",
    "PendingQuery",
    "SandboxChat",
    "SandboxState",
    "SandboxUser",
    "StoredMessage",
    "UpdateRecord",
    "Webhook",
    "WebhookAttempt",
]

DEMO_USER_ID = 100001
#: Calls that put or change a message in a chat: flood control and reply waits count these.
REPLY_METHODS = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "copymessage",
        "sendphoto",
    }
)
#: Calls that are the bot waiting, not the bot answering.
POLLING_METHODS = frozenset({"getupdates"})


class ChatType(StrEnum):
    """Telegram chat types."""

    PRIVATE = "private"
    GROUP = "group"
    SUPERGROUP = "supergroup"
    CHANNEL = "channel"


class MemberStatus(StrEnum):
    """``ChatMember.status`` values."""

    CREATOR = "creator"
    ADMINISTRATOR = "administrator"
    MEMBER = "member"
    RESTRICTED = "restricted"
    LEFT = "left"
    KICKED = "kicked"


@dataclass
class SandboxUser:
    """A human Telegram user."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    deactivated: bool = False

    def to_json(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass
class SandboxChat:
    """A chat the sandbox knows; ``members`` maps user id to status.

    ``blocked`` means the user of a private chat blocked the bot; ``bot_status`` is the
    bot's own membership; ``migrated_to`` is set once a group became a supergroup.
    """

    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    is_forum: bool = False
    members: dict[int, MemberStatus] = field(default_factory=dict)
    bot_status: MemberStatus = MemberStatus.MEMBER
    blocked: bool = False
    migrated_to: int | None = None
    topics: set[int] = field(default_factory=set)
    topic_names: dict[int, str] = field(default_factory=dict)  # forum topics' names

    @property
    def is_group(self) -> bool:
        """Groups, supergroups and channels (flood control's "group" limit)."""
        return self.type is not ChatType.PRIVATE

    def to_json(self) -> dict[str, Any]:
        """The Bot API ``Chat`` object."""
        data: dict[str, Any] = {"id": self.id, "type": str(self.type)}
        if self.title is not None:
            data["title"] = self.title
        if self.username is not None:
            data["username"] = self.username
        if self.first_name is not None:
            data["first_name"] = self.first_name
        if self.is_forum:
            data["is_forum"] = True
        return data

    def full_info(self) -> dict[str, Any]:
        """The Bot API ``ChatFullInfo`` object (``getChat``)."""
        data = self.to_json()
        data.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return data


@dataclass(frozen=True)
class MessageVersion:
    """An earlier version of a message, kept when the message is edited."""

    text: str
    html: str | None
    entities: tuple[dict[str, Any], ...]
    reply_markup: dict[str, Any] | None
    date: int


@dataclass
class StoredMessage:
    """A message as the user sees it.

    ``text`` is the visible text (the caption for a photo), ``html`` the source when it was
    sent with ``parse_mode=HTML``; ``edits`` holds the earlier versions, oldest first.
    """

    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    sender_id: int
    text: str = ""
    html: str | None = None
    entities: tuple[dict[str, Any], ...] = ()
    entity_count: int = 0
    reply_markup: dict[str, Any] | None = None
    thread_id: int | None = None
    photo_file_id: str | None = None
    reply_to_message_id: int | None = None
    disable_notification: bool = False
    link_preview_options: dict[str, Any] | None = None
    edits: list[MessageVersion] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    migrate_to_chat_id: int | None = None
    migrate_from_chat_id: int | None = None
    via_bot: bool = False  # a user sent the bot's inline result
    revision: int = 0  # SandboxState.revision when it last changed (set by ``touch``)

    @property
    def button_rows(self) -> list[list[dict[str, Any]]]:
        """The inline keyboard rows (empty without an inline keyboard)."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard")
        return [list(row) for row in rows] if isinstance(rows, list) else []

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """All inline buttons in keyboard order; button N (1-based) is ``buttons[N - 1]``."""
        return [button for row in self.button_rows for button in row]

    def version(self) -> MessageVersion:
        """The current content as a :class:`MessageVersion`."""
        return MessageVersion(
            text=self.text,
            html=self.html,
            entities=self.entities,
            reply_markup=self.reply_markup,
            date=self.edit_date or self.date,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the user-side HTTP API (not the Bot API ``Message``)."""
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "date": self.date,
            "from_bot": self.from_bot,
            "sender_id": self.sender_id,
            "text": self.text,
            "html": self.html,
            "entities": list(self.entities),
            "entity_count": self.entity_count,
            "reply_markup": self.reply_markup,
            "buttons": [{"number": n, **button} for n, button in enumerate(self.buttons, start=1)],
            "thread_id": self.thread_id,
            "photo_file_id": self.photo_file_id,
            "reply_to_message_id": self.reply_to_message_id,
            "disable_notification": self.disable_notification,
            "edits": [
                {"text": v.text, "html": v.html, "reply_markup": v.reply_markup, "date": v.date}
                for v in self.edits
            ],
            "edit_date": self.edit_date,
            "deleted": self.deleted,
        }


@dataclass
class CallRecord:
    """One Bot API call, in arrival order; ``status`` is None while it is being answered."""

    seq: int
    method: str
    params: dict[str, Any]
    chat_id: int | None
    started: float  # time.monotonic()
    wall: datetime
    finished: float | None = None
    status: int | None = None
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {
            "seq": self.seq,
            "method": self.method,
            "params": self.params,
            "chat_id": self.chat_id,
            "started": self.started,
            "finished": self.finished,
            "wall": self.wall.isoformat(),
            "status": self.status,
            "description": self.description,
        }


@dataclass
class UpdateRecord:
    """An update handed to the bot; ``calls_before`` is the call count when it was queued.

    ``fetched_at`` is when the bot took it: a getUpdates answer held it, or the webhook
    answered its post with 2xx.
    """

    update_id: int
    payload: dict[str, Any]
    queued_at: float
    calls_before: int
    fetched_at: float | None = None

    @property
    def kind(self) -> str:
        """The update type, e.g. ``"message"`` or ``"callback_query"``."""
        return next(k for k in self.payload if k != "update_id")


@dataclass
class Webhook:
    """The webhook set with ``setWebhook``: while it is set, updates are posted to ``url``
    (see :class:`~bot.sandbox.server.WebhookDelivery`) and getUpdates answers 409."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending_update_count: int) -> dict[str, Any]:
        """The Bot API ``WebhookInfo`` object (never the secret: Telegram does not tell it)."""
        data: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": self.has_custom_certificate,
            "pending_update_count": pending_update_count,
            "max_connections": self.max_connections,
        }
        if self.ip_address is not None:
            data["ip_address"] = self.ip_address
        if self.last_error_date is not None:
            data["last_error_date"] = self.last_error_date
            data["last_error_message"] = self.last_error_message or ""
        return data


@dataclass(frozen=True)
class WebhookAttempt:
    """One post of an update to the webhook; ``status`` None: no HTTP answer (connection
    refused, timed out), said in ``error``."""

    update_id: int
    url: str
    status: int | None
    error: str | None
    started: float  # time.monotonic()
    finished: float

    @property
    def accepted(self) -> bool:
        """Whether the bot took the update (a 2xx answer)."""
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {
            "update_id": self.update_id,
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "started": self.started,
            "finished": self.finished,
        }


@dataclass
class PendingQuery:
    """A callback or inline query the user made; ``answer`` is the bot's answer params."""

    query_id: str
    update_id: int
    user_id: int
    answer: dict[str, Any] | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)


class SandboxState:
    """All mutable sandbox data, owned by one server on one event loop."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.clock = SandboxClock(options.now)
        self.flood = FloodControl(options.flood)
        self.faults = FaultBook()
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, SandboxChat] = {}
        self.messages: dict[int, dict[int, StoredMessage]] = {}
        self.updates: dict[int, UpdateRecord] = {}
        self.pending: list[int] = []  # update ids not yet confirmed by getUpdates' offset
        self.calls: list[CallRecord] = []
        self.callback_queries: dict[str, PendingQuery] = {}
        self.inline_queries: dict[str, PendingQuery] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.file_ids: set[str] = set()
        self.allowed_updates: list[str] = []
        self.webhook: Webhook | None = None
        self.webhook_attempts: list[WebhookAttempt] = []
        # Set when there may be something new to post: an update, a webhook set or changed.
        # Only these wake the webhook's delivery, not every change notify() reports.
        self.webhook_work = asyncio.Event()
        # Every change to a message, in order: revision N (1-based) is journal[N - 1], as
        # (chat id, message id). The web chat pushes changes from it (bot/sandbox/web/).
        self.journal: list[tuple[int, int]] = []
        self.closing = False
        self.poll_generation = 0
        self._next_update_id = 1
        self._next_query_id = 1
        self._next_file = 1
        self._changed = asyncio.Event()

    # -- waiting ------------------------------------------------------------------------
    def notify(self) -> None:
        """Wake everything waiting for a change (long polls, idle waits)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, within: float) -> None:
        """Wait until :meth:`notify` is called or ``within`` seconds pass."""
        if within <= 0:
            return
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), within)

    # -- identifiers --------------------------------------------------------------------
    def next_message_id(self, chat_id: int) -> int:
        """Message ids count up per chat, from 1."""
        chat_messages = self.messages.setdefault(chat_id, {})
        return max(chat_messages, default=0) + 1

    def new_query_id(self) -> str:
        """A fresh callback/inline query id."""
        query_id = str(4_000_000_000_000 + self._next_query_id)
        self._next_query_id += 1
        return query_id

    def new_file_id(self, kind: str = "photo") -> str:
        """A fresh, known file id."""
        file_id = f"sandbox-{kind}-{self._next_file:06d}"
        self._next_file += 1
        self.file_ids.add(file_id)
        return file_id

    # -- users and chats ----------------------------------------------------------------
    def ensure_user(
        self, user_id: int, first_name: str | None = None, username: str | None = None
    ) -> SandboxUser:
        """The user with this id, created (named "User <id>") when new."""
        user = self.users.get(user_id)
        if user is None:
            user = SandboxUser(id=user_id, first_name=first_name or f"User {user_id}")
            self.users[user_id] = user
        if first_name:
            user.first_name = first_name
        if username:
            user.username = username
        return user

    def find_chat(self, ref: int | str) -> SandboxChat | None:
        """A chat by id or ``@username``."""
        if isinstance(ref, str):
            name = ref.removeprefix("@").lower()
            return next(
                (c for c in self.chats.values() if c.username and c.username.lower() == name),
                None,
            )
        return self.chats.get(ref)

    # -- messages -----------------------------------------------------------------------
    def store(self, message: StoredMessage) -> StoredMessage:
        """Keep a message."""
        self.messages.setdefault(message.chat_id, {})[message.message_id] = message
        self.touch(message)
        return message

    @property
    def revision(self) -> int:
        """How many message changes there have been (the newest journal entry's number)."""
        return len(self.journal)

    def touch(self, message: StoredMessage) -> None:
        """Record that ``message`` was stored or changed (sent, edited, deleted)."""
        self.journal.append((message.chat_id, message.message_id))
        message.revision = len(self.journal)
        self.notify()

    def changed_since(self, revision: int) -> list[StoredMessage]:
        """Messages changed after ``revision``, each once, in the order of their last
        change (a message reset away is left out)."""
        latest: dict[tuple[int, int], None] = {}
        for key in self.journal[max(revision, 0):]:
            latest.pop(key, None)
            latest[key] = None
        found = (self.message(chat_id, message_id) for chat_id, message_id in latest)
        return sorted((m for m in found if m is not None and m.revision > revision),
                      key=lambda m: m.revision)

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """A stored message, deleted or not."""
        return self.messages.get(chat_id, {}).get(message_id)

    def chat_messages(self, chat_id: int) -> list[StoredMessage]:
        """Every message of a chat in id order, deleted ones included."""
        return sorted(self.messages.get(chat_id, {}).values(), key=lambda m: m.message_id)

    def message_json(self, message: StoredMessage, *, with_reply: bool = True) -> dict[str, Any]:
        """The Bot API ``Message`` object."""
        chat = self.chats[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": chat.to_json(),
        }
        if chat.type is ChatType.CHANNEL:  # a channel post is signed by the channel
            data["sender_chat"] = chat.to_json()
        elif message.from_bot:
            data["from"] = self.options.bot.to_user()
        else:
            data["from"] = self.users[message.sender_id].to_json()
        if message.thread_id is not None:
            data["message_thread_id"] = message.thread_id
            if chat.is_forum:
                data["is_topic_message"] = True
        if message.photo_file_id is not None:
            data["photo"] = [
                {
                    "file_id": message.photo_file_id,
                    "file_unique_id": "u" + message.photo_file_id[-12:],
                    "width": 800,
                    "height": 600,
                    "file_size": 50_000,
                }
            ]
            if message.text:
                data["caption"] = message.text
                if message.entities:
                    data["caption_entities"] = list(message.entities)
        elif message.migrate_to_chat_id is not None:
            data["migrate_to_chat_id"] = message.migrate_to_chat_id
        elif message.migrate_from_chat_id is not None:
            data["migrate_from_chat_id"] = message.migrate_from_chat_id
        else:
            data["text"] = message.text
            if message.entities:
                data["entities"] = list(message.entities)
        if message.via_bot:
            data["via_bot"] = self.options.bot.to_user()
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if with_reply and message.reply_to_message_id is not None:
            replied = self.message(message.chat_id, message.reply_to_message_id)
            if replied is not None and not replied.deleted:
                data["reply_to_message"] = self.message_json(replied, with_reply=False)
        return data

    # -- updates ------------------------------------------------------------------------
    def queue_update(self, kind: str, body: dict[str, Any]) -> UpdateRecord:
        """Queue an update for getUpdates; ids only ever increase."""
        update_id = self._next_update_id
        self._next_update_id += 1
        record = UpdateRecord(
            update_id=update_id,
            payload={"update_id": update_id, kind: body},
            queued_at=time.monotonic(),
            calls_before=len(self.calls),
        )
        self.updates[update_id] = record
        self.pending.append(update_id)
        self.webhook_work.set()
        self.notify()
        return record

    def confirm_updates(self, offset: int) -> None:
        """getUpdates' ``offset``: updates with a smaller id are confirmed and forgotten."""
        if offset < 0:
            self.pending = self.pending[offset:]
        else:
            self.pending = [u for u in self.pending if u >= offset]

    def webhook_accepted(self, update_id: int) -> None:
        """The webhook answered 2xx: the update is delivered and forgotten, as an offset
        past it would confirm it."""
        if update_id in self.pending:
            self.pending.remove(update_id)
        record = self.updates.get(update_id)
        if record is not None and record.fetched_at is None:
            record.fetched_at = time.monotonic()
        self.notify()

    def deliverable(self) -> list[UpdateRecord]:
        """Pending updates of an allowed type (others are dropped, as Telegram does)."""
        if self.allowed_updates:
            allowed = set(self.allowed_updates)
            self.pending = [u for u in self.pending if self.updates[u].kind in allowed]
        return [self.updates[u] for u in self.pending]

    # -- call log -----------------------------------------------------------------------
    def start_call(self, method: str, params: dict[str, Any], chat_id: int | None) -> CallRecord:
        """Log a call as it arrives."""
        record = CallRecord(
            seq=len(self.calls) + 1,
            method=method,
            params=params,
            chat_id=chat_id,
            started=time.monotonic(),
            wall=datetime.now(UTC),
        )
        self.calls.append(record)
        self.notify()
        return record

    def finish_call(self, record: CallRecord, status: int, description: str | None) -> None:
        """Log how a call was answered."""
        record.finished = time.monotonic()
        record.status = status
        record.description = description
        self.notify()

    def bot_calls_since(self, seq: int) -> Iterable[CallRecord]:
        """Calls after call number ``seq`` that are the bot acting, not polling."""
        return (c for c in self.calls[seq:] if c.method.lower() not in POLLING_METHODS)
