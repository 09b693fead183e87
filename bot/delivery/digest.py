"""What goes into one subscriber's briefing, rendered once per distinct content.

10,000 subscribers in the same zone with no follows get the same briefing; rendering it
10,000 times would dominate the due scan. :class:`LibraryDigestBuilder` therefore memoises
payloads by (shown story versions, total, zone, local date), and the ledger stores the
identical body once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from bot.config import BriefingSettings
from bot.render import StoryLinks, deep_link, key_reference, render_digest
from bot.render.references import settings_link
from bot.storage.follows import words_of
from bot.storage.payloads import Button, MessagePart, MessagesPayload, Payload
from bot.storage.subscriptions import Subscription
from bot.stories.model import Story, latest_order_key

__all__ = [
    "DigestBuilder",
    "LibraryDigestBuilder",
    "ReferenceSource",
    "StorySource",
    "deep_link",
    "links_for",
    "matches_follows",
    "open_button",
    "references_of",
    "settings_button",
]

_BUTTON_TEXT = 40
SETTINGS_DATA = "st:s"
"""Opens a new /settings panel under the message (``bot.telegram.subscribers``): the
briefing itself stays as it is, and Unsubscribe is one tap further."""
_MemoKey = tuple[tuple[str, ...], int, str, date, str]
# One briefing's question: (library version, since, until, follows, chat type, zone, date).
_AskedKey = tuple[int, datetime, datetime, tuple[str, ...], str, str, date]
# Chats where an "open" button must not be a callback: in a channel the answer would be
# posted for every reader, so the button opens the story in a private chat with the bot.
_LINKED_CHAT_TYPES = frozenset({"channel"})


class StorySource(Protocol):
    """What the builders need from the story library (``StoryLibrary``, which reads them
    from its index: only the window's stories are ever loaded)."""

    def updated_between(self, since: datetime, until: datetime) -> Sequence[Story]:
        """Stories with ``since < updated <= until``, newest first."""
        ...


@runtime_checkable
class ReferenceSource(Protocol):
    """A library that gives stories short references (``StoryLibrary.reference``)."""

    def reference(self, story: Story) -> str: ...


@runtime_checkable
class VersionedSource(Protocol):
    """A library whose ``version`` changes whenever its stories do (``StoryLibrary``)."""

    @property
    def version(self) -> int: ...


class DigestBuilder(Protocol):
    """The content of one briefing (None: nothing to send, schedule still advances)."""

    def build(self, subscription: Subscription, since: datetime, until: datetime, *,
              local_date: date) -> Payload | None: ...


def matches_follows(story: Story, follows: Sequence[str]) -> bool:
    """No follows: everything. Otherwise any follow word in the title or highlights."""
    if not follows:
        return True
    words = words_of(" ".join((story.title, *story.highlights)))
    return any(f in words for f in follows)


def references_of(library: object) -> Callable[[Story], str]:
    """The library's short references, or whole keys from a source that has none."""
    return library.reference if isinstance(library, ReferenceSource) else key_reference


def links_for(chat_type: str, bot_username: str | None) -> str | None:
    """The bot username to build deep links with in ``chat_type``, or None for callbacks."""
    return bot_username if chat_type in _LINKED_CHAT_TYPES else None


def open_button(story: Story, label: str | None = None, *,
                link_via: str | None = None) -> Button | None:
    """A button opening ``story`` in full: a callback answered in the same chat, or with
    ``link_via`` (the bot's username) a deep link into a private chat with the bot. None
    if the key would not fit Telegram's 64 bytes."""
    data = f"open:{story.key}"
    if len(data.encode("utf-8")) > 64:
        return None
    text = label if label is not None else story.title
    if len(text) > _BUTTON_TEXT:
        text = text[: _BUTTON_TEXT - 1].rstrip() + "…"
    if link_via is not None:
        return Button(text, url=deep_link(link_via, story))
    return Button(text, callback_data=data)


def settings_button(links: StoryLinks) -> Button:
    """The small button under a briefing or an alert: "Settings" opens this chat's settings
    panel with its Unsubscribe (a callback, which only a group's administrators may use);
    in a channel, whose readers are not its subscribers, a deep link to the reader's own
    briefing settings in a private chat."""
    if links.style == "link":
        return Button("⚙️ Settings", url=settings_link(links.bot_username))
    return Button("⚙️ Settings", callback_data=SETTINGS_DATA)


class LibraryDigestBuilder:
    """Briefings from the story library, filtered by each subscriber's follows."""

    def __init__(self, library: StorySource, settings: BriefingSettings, *,
                 bot_username: str | None = None, memo_size: int = 512) -> None:
        self._library = library
        self._settings = settings
        self._bot_username = bot_username
        self._memo: OrderedDict[_MemoKey, Payload] = OrderedDict()
        self._asked: OrderedDict[_AskedKey, Payload | None] = OrderedDict()
        self._memo_size = memo_size
        self.renders = 0
        self.selections = 0  # how often the stories were walked (tests, benchmarks)

    def select(self, subscription: Subscription, since: datetime,
               until: datetime) -> list[Story]:
        """Stories updated in (since, until] that match the follows, newest first."""
        self.selections += 1
        chosen = [s for s in self._library.updated_between(since, until)
                  if since < s.updated <= until and matches_follows(s, subscription.follows)]
        chosen.sort(key=latest_order_key)
        return chosen

    def build(self, subscription: Subscription, since: datetime, until: datetime, *,
              local_date: date) -> Payload | None:
        """The briefing's payload. A million subscribers due in one minute ask a handful of
        distinct questions (same window, no follows, a few zones): while the library is
        unchanged, each question is answered once, without walking the stories again."""
        if not isinstance(self._library, VersionedSource):
            return self._build(subscription, since, until, local_date)
        asked: _AskedKey = (self._library.version, since, until, subscription.follows,
                            subscription.chat_type, subscription.timezone.key, local_date)
        if asked in self._asked:
            self._asked.move_to_end(asked)
            return self._asked[asked]
        payload = self._build(subscription, since, until, local_date)
        self._asked[asked] = payload
        if len(self._asked) > self._memo_size:
            self._asked.popitem(last=False)
        return payload

    def _build(self, subscription: Subscription, since: datetime, until: datetime,
               local_date: date) -> Payload | None:
        stories = self.select(subscription, since, until)
        if not stories and not self._settings.send_when_empty:
            return None
        shown = stories[: self._settings.top_n]
        zone = subscription.timezone
        links = StoryLinks.for_chat(subscription.chat_type, self._bot_username or "",
                                    references_of(self._library))
        key: _MemoKey = (  # a reference grows when a story sharing its prefix arrives
            tuple(f"{s.key}@{s.updated.isoformat()}/{links.reference(s)}" for s in shown),
            len(stories), zone.key, local_date, links.label,
        )
        cached = self._memo.get(key)
        if cached is not None:
            self._memo.move_to_end(key)
            return cached
        payload = self._render(shown, len(stories), zone, local_date, links)
        self._memo[key] = payload
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return payload

    def _render(self, shown: Sequence[Story], total: int, zone: ZoneInfo,
                local_date: date, links: StoryLinks) -> Payload:
        """Cards without numbers (a number means a place in /latest), each with its
        reference and a button titled like the story; the settings button last."""
        self.renders += 1
        texts = render_digest(shown, zone, local_date=local_date,
                              top_n=self._settings.top_n, total=total, links=links)
        link_via = links.bot_username if links.style == "link" else None
        rows = (*((button,) for story in shown
                  if (button := open_button(story, link_via=link_via)) is not None),
                (settings_button(links),))
        parts = [MessagePart(text) for text in texts]
        parts[-1] = MessagePart(parts[-1].html, rows)
        return MessagesPayload(tuple(parts))
