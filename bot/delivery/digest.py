"""What goes into one subscriber's briefing, rendered once per distinct content.

10,000 subscribers in the same zone with no follows get the same briefing; rendering it
10,000 times would dominate the due scan. :class:`LibraryDigestBuilder` therefore memoises
payloads by (shown story versions, total, zone, local date), and the ledger stores the
identical body once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.config import BriefingSettings
from bot.render import render_digest
from bot.storage.follows import words_of
from bot.storage.payloads import Button, MessagePart, MessagesPayload, Payload
from bot.storage.subscriptions import Subscription
from bot.stories.model import Story, latest_order_key

__all__ = [
    "DigestBuilder",
    "LibraryDigestBuilder",
    "StorySource",
    "deep_link",
    "links_for",
    "matches_follows",
    "open_button",
]

_BUTTON_TEXT = 40
_MemoKey = tuple[tuple[str, ...], int, str, date, str | None]
# Chats where an "open" button must not be a callback: in a channel the answer would be
# posted for every reader, so the button opens the story in a private chat with the bot.
_LINKED_CHAT_TYPES = frozenset({"channel"})


class StorySource(Protocol):
    """What the builders need from the story library."""

    @property
    def stories(self) -> tuple[Story, ...]: ...


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


def deep_link(bot_username: str, story: Story) -> str:
    """``t.me`` link whose ``/start`` payload (``story_<key>``) opens the story."""
    return f"https://t.me/{bot_username}?start=story_{story.key}"


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


class LibraryDigestBuilder:
    """Briefings from an in-memory story library, filtered by each subscriber's follows."""

    def __init__(self, library: StorySource, settings: BriefingSettings, *,
                 bot_username: str | None = None, memo_size: int = 512) -> None:
        self._library = library
        self._settings = settings
        self._bot_username = bot_username
        self._memo: OrderedDict[_MemoKey, Payload] = OrderedDict()
        self._memo_size = memo_size
        self.renders = 0

    def select(self, subscription: Subscription, since: datetime,
               until: datetime) -> list[Story]:
        """Stories updated in (since, until] that match the follows, newest first."""
        chosen = [s for s in self._library.stories
                  if since < s.updated <= until and matches_follows(s, subscription.follows)]
        chosen.sort(key=latest_order_key)
        return chosen

    def build(self, subscription: Subscription, since: datetime, until: datetime, *,
              local_date: date) -> Payload | None:
        stories = self.select(subscription, since, until)
        if not stories and not self._settings.send_when_empty:
            return None
        shown = stories[: self._settings.top_n]
        zone = subscription.timezone
        link_via = links_for(subscription.chat_type, self._bot_username)
        key: _MemoKey = (
            tuple(f"{s.key}@{s.updated.isoformat()}" for s in shown),
            len(stories), zone.key, local_date, link_via,
        )
        cached = self._memo.get(key)
        if cached is not None:
            self._memo.move_to_end(key)
            return cached
        payload = self._render(shown, len(stories), zone, local_date, link_via)
        self._memo[key] = payload
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return payload

    def _render(self, shown: Sequence[Story], total: int, zone: ZoneInfo,
                local_date: date, link_via: str | None) -> Payload:
        self.renders += 1
        texts = render_digest(shown, zone, local_date=local_date,
                              top_n=self._settings.top_n, total=total)
        rows = tuple(
            (button,) for number, story in enumerate(shown, 1)
            if (button := open_button(story, f"{number}. {story.title}", link_via=link_via))
            is not None
        )
        parts = [MessagePart(text) for text in texts]
        parts[-1] = MessagePart(parts[-1].html, rows)
        return MessagesPayload(tuple(parts))
