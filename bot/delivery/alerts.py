"""Instant alerts: one ledger row per (story version, matching instant subscriber).

The ref is ``key@updated``, so a story version is alerted once per destination however
often it is reported, and an update is a new version. ``known_stories`` remembers which
versions were already seen: the library's own "new/updated" report lives in memory and
a restart forgets it, so :meth:`AlertPlanner.catch_up` compares the library with that
table at start-up and alerts only what arrived while the bot was down. The table also
keeps a digest of each version's title, highlights and text, so an update's alert says
which of them changed, across restarts too.

An alert names its story the way every message does (``/story_<ref>``, addressed to the
bot in groups, a deep link in channels); given the library's ``reference`` it prints the
short reference, else the whole key. Under it: a button to read the story and the small
settings button every briefing has.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.delivery.digest import matches_follows, open_button, settings_button
from bot.render import COMMANDS, StoryLinks, key_reference, render_latest
from bot.storage.database import Database
from bot.storage.known_stories import KnownStoryStore, KnownVersion
from bot.storage.ledger import DeliveryLedger, NewDelivery
from bot.storage.payloads import MessagePart, MessagesPayload, Payload
from bot.storage.subscriptions import SubscriptionStore
from bot.stories.model import Story

__all__ = ["ALERT", "AlertPlanner", "StoryChange", "alert_ref", "known_version",
           "render_alert"]

_LOG = logging.getLogger(__name__)
ALERT = "alert"
NEW_HEADER = "🆕 New story"
UPDATED_HEADER = "🔄 Updated story"
_PARTS = ("title", "highlights", "story text")


def alert_ref(story: Story) -> str:
    return f"{story.key}@{story.updated.isoformat()}"


def _digest(*sections: Iterable[str]) -> str:
    """A digest of texts as a reader sees them: a line re-wrapped is no change."""
    digest = hashlib.blake2s(digest_size=12)
    for section in sections:
        for text in section:
            digest.update(" ".join(text.split()).encode())
            digest.update(b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


def known_version(story: Story) -> KnownVersion:
    """``story``'s version with digests of its title, highlights and text (paragraphs and
    opinions): what the next version's alert is compared with."""
    return KnownVersion(story.key, story.updated, _digest((story.title,)),
                        _digest(story.highlights), _digest(story.story, story.opinions))


@dataclass(frozen=True, slots=True)
class StoryChange:
    """What an alert announces: a new story, or an update and which parts it changed
    (``changed`` is None when the version before it is not known in detail)."""

    is_new: bool
    changed: tuple[str, ...] | None = None

    @classmethod
    def between(cls, before: KnownVersion | None, after: KnownVersion) -> StoryChange:
        """The update from ``before`` to ``after``, as far as their digests tell."""
        if before is None or not before.has_digests or not after.has_digests:
            return cls(is_new=False)
        pairs = zip(_PARTS, before[2:], after[2:], strict=True)
        return cls(is_new=False, changed=tuple(part for part, a, b in pairs if a != b))

    @property
    def header(self) -> str:
        """"🆕 New story", or "🔄 Updated story — title and highlights changed"."""
        if self.is_new:
            return NEW_HEADER
        if self.changed is None:
            return UPDATED_HEADER
        if not self.changed:
            return f"{UPDATED_HEADER} — new time, same text"
        *most, last = self.changed
        listed = f"{', '.join(most)} and {last}" if most else last
        return f"{UPDATED_HEADER} — {listed} changed"


NEW = StoryChange(is_new=True)


def render_alert(story: Story, zone: ZoneInfo, change: StoryChange,
                 links: StoryLinks = COMMANDS) -> Payload:
    """The alert message: a card headed by what happened (new, or what an update
    changed), not numbered (a number is a place in /latest), with a button to read the
    story in full (a deep link where ``links`` are links, else a callback) and the
    settings button beside it."""
    texts = render_latest([story], zone, header=change.header, links=links, numbered=False)
    link_via = links.bot_username if links.style == "link" else None
    button = open_button(story, "📖 Read the story", link_via=link_via)
    row = (settings_button(links),) if button is None else (button, settings_button(links))
    parts = [MessagePart(t) for t in texts]
    parts[-1] = MessagePart(parts[-1].html, (row,))
    return MessagesPayload(tuple(parts))


class AlertPlanner:
    def __init__(
        self,
        db: Database,
        *,
        renderer: Callable[[Story, ZoneInfo, StoryChange, StoryLinks], Payload] = render_alert,
        bot_username: str | None = None,
        references: Callable[[Story], str] = key_reference,
        batch_size: int = 500,
        on_created: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._ledger = DeliveryLedger(db)
        self._subs = SubscriptionStore(db)
        self._known = KnownStoryStore(db)
        self._render = renderer
        self._bot_username = bot_username
        self._references = references
        self._batch = batch_size
        self._on_created = on_created

    async def plan(self, report_new: Sequence[Story], report_updated: Sequence[Story],
                   now: datetime) -> int:
        """Alert the reported stories that are not already known; returns rows created."""
        versions = [(s, True) for s in report_new] + [(s, False) for s in report_updated]
        unseen = set(await self._known.unseen([(s.key, s.updated) for s, _ in versions]))
        fresh = [(s, is_new) for s, is_new in versions if (s.key, s.updated) in unseen]
        return await self._alert(fresh, now)

    async def catch_up(self, stories: Sequence[Story], now: datetime) -> int:
        """At start-up: alert versions that appeared while the bot was not running.

        On the very first run the table is empty and everything is only recorded: a new
        installation must not alert its whole back catalogue. Versions recorded before
        digests were kept get them now, so their next update says what changed.
        """
        if await self._known.is_empty():
            await self._known.remember(await _versions_of(stories), now)
            return 0
        known = await self._known.versions(s.key for s in stories)
        undigested = [s for s in stories if s.key in known
                      and s.updated == known[s.key].updated and not known[s.key].has_digests]
        if undigested:
            await self._known.remember(await _versions_of(undigested), now)
        fresh = [(s, s.key not in known) for s in stories
                 if s.key not in known or s.updated > known[s.key].updated]
        return await self._alert(fresh, now, known)

    async def _alert(self, fresh: Sequence[tuple[Story, bool]], now: datetime,
                     known: dict[str, KnownVersion] | None = None) -> int:
        if not fresh:
            return 0
        created = 0
        versions = await _versions_of([s for s, _ in fresh])
        if known is None:  # what each update is compared with: the version last seen
            known = await self._known.versions(s.key for s, is_new in fresh if not is_new)
        changes = [NEW if is_new else StoryChange.between(known.get(story.key), version)
                   for (story, is_new), version in zip(fresh, versions, strict=True)]
        memo: dict[tuple[str, str, StoryChange, str], Payload] = {}
        async for batch in self._subs.iter_active(mode="instant", batch_size=self._batch):
            items: list[NewDelivery] = []
            for sub in batch:
                if sub.paused:
                    continue
                for (story, _), change in zip(fresh, changes, strict=True):
                    if not matches_follows(story, sub.follows):
                        continue
                    links = StoryLinks.for_chat(sub.chat_type, self._bot_username or "",
                                                self._references)
                    key = (alert_ref(story), sub.timezone.key, change, links.label)
                    if key not in memo:
                        memo[key] = self._render(story, sub.timezone, change, links)
                    items.append(NewDelivery(ALERT, alert_ref(story), sub.destination,
                                             memo[key], sub.id))
            created += await self._ledger.add(items, now)
        async with self._db.engine.begin() as conn:
            await self._known.remember_in(conn, versions, now)
        if created:
            _LOG.info("alerts: %d messages for %d story versions", created, len(fresh))
            if self._on_created is not None:
                self._on_created()
        return created


async def _versions_of(stories: Sequence[Story]) -> list[KnownVersion]:
    """Versions with digests, worked out in a thread when there are many: reading a
    story's text may normalise it for the first time, and a first start has thousands."""
    if len(stories) <= 20:
        return [known_version(s) for s in stories]
    return await asyncio.to_thread(lambda: [known_version(s) for s in stories])
