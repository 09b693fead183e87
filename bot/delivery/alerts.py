"""Instant alerts: one ledger row per (story version, matching instant subscriber).

The ref is ``key@updated``, so a story version is alerted once per destination however
often it is reported, and an update is a new version. ``known_stories`` remembers which
versions were already seen: the library's own "new/updated" report lives in memory and
a restart forgets it, so :meth:`AlertPlanner.catch_up` compares the library with that
table at start-up and alerts only what arrived while the bot was down.

An alert names its story the way every message does (``/story_<ref>``, addressed to the
bot in groups, a deep link in channels); given the library's ``reference`` it prints the
short reference, else the whole key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.delivery.digest import matches_follows, open_button
from bot.render import COMMANDS, StoryLinks, key_reference, render_latest
from bot.storage.database import Database
from bot.storage.known_stories import KnownStoryStore
from bot.storage.ledger import DeliveryLedger, NewDelivery
from bot.storage.payloads import MessagePart, MessagesPayload, Payload
from bot.storage.subscriptions import SubscriptionStore
from bot.stories.model import Story

__all__ = ["ALERT", "AlertPlanner", "alert_ref", "render_alert"]

_LOG = logging.getLogger(__name__)
ALERT = "alert"
NEW_HEADER = "🆕 New story"
UPDATED_HEADER = "🔄 Updated story"


def alert_ref(story: Story) -> str:
    return f"{story.key}@{story.updated.isoformat()}"


def render_alert(story: Story, zone: ZoneInfo, is_new: bool,
                 links: StoryLinks = COMMANDS) -> Payload:
    """The alert message: a marked card, not numbered (a number is a place in /latest), and
    a button to read the story in full (a deep link where ``links`` are links, else a
    callback)."""
    texts = render_latest([story], zone, header=NEW_HEADER if is_new else UPDATED_HEADER,
                          links=links, numbered=False)
    link_via = links.bot_username if links.style == "link" else None
    button = open_button(story, "Read the story", link_via=link_via)
    parts = [MessagePart(t) for t in texts]
    if button is not None:
        parts[-1] = MessagePart(parts[-1].html, ((button,),))
    return MessagesPayload(tuple(parts))


class AlertPlanner:
    def __init__(
        self,
        db: Database,
        *,
        renderer: Callable[[Story, ZoneInfo, bool, StoryLinks], Payload] = render_alert,
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
        installation must not alert its whole back catalogue.
        """
        if await self._known.is_empty():
            await self._known.remember([(s.key, s.updated) for s in stories], now)
            return 0
        known = await self._known.known(s.key for s in stories)
        fresh = [(s, s.key not in known) for s in stories
                 if s.key not in known or s.updated > known[s.key]]
        return await self._alert(fresh, now)

    async def _alert(self, fresh: Sequence[tuple[Story, bool]], now: datetime) -> int:
        created = 0
        if fresh:
            memo: dict[tuple[str, str, bool, str], Payload] = {}
            async for batch in self._subs.iter_active(mode="instant", batch_size=self._batch):
                items: list[NewDelivery] = []
                for sub in batch:
                    if sub.paused:
                        continue
                    for story, is_new in fresh:
                        if not matches_follows(story, sub.follows):
                            continue
                        links = StoryLinks.for_chat(sub.chat_type, self._bot_username or "",
                                                    self._references)
                        key = (alert_ref(story), sub.timezone.key, is_new, links.label)
                        if key not in memo:
                            memo[key] = self._render(story, sub.timezone, is_new, links)
                        items.append(NewDelivery(ALERT, alert_ref(story), sub.destination,
                                                 memo[key], sub.id))
                created += await self._ledger.add(items, now)
        async with self._db.engine.begin() as conn:
            await self._known.remember_in(conn, [(s.key, s.updated) for s, _ in fresh], now)
        if created:
            _LOG.info("alerts: %d messages for %d story versions", created, len(fresh))
            if self._on_created is not None:
                self._on_created()
        return created
