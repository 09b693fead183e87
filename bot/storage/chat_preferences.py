"""What a chat chose for itself whether or not it subscribes: the zone it reads times in.

A subscription carries the zone its briefing follows; a reader who never subscribed (or
has unsubscribed) still wants ``/latest`` and ``/story`` in their own time, so the zone
they set is kept here too, one row per destination (chat plus forum topic).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, delete, not_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.database import Database

if TYPE_CHECKING:  # subscriptions moves preferences with a migrating chat
    from bot.storage.subscriptions import Destination

__all__ = ["ChatPreferenceStore"]

log = logging.getLogger(__name__)


class ChatPreferenceStore:
    """Async reads and upserts of ``chat_preferences``; each call one short transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._t = db.tables.chat_preferences

    async def zone(self, dest: Destination) -> ZoneInfo | None:
        """The zone ``dest`` chose, or None if it never chose one (or it no longer loads)."""
        t = self._t
        async with self._db.read() as conn:
            key = (await conn.execute(
                select(t.c.timezone).where(t.c.chat_id == dest.chat_id,
                                           t.c.thread_id == dest.thread_id)
            )).scalar()
        if not key:
            return None
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):  # tzdata dropped a name: use the default
            log.warning("stored time zone %r no longer loads; using the default", key)
            return None

    async def set_zone(self, dest: Destination, zone: ZoneInfo, now: datetime) -> None:
        stmt = self._db.insert(self._t).values(
            chat_id=dest.chat_id, thread_id=dest.thread_id, timezone=zone.key, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["chat_id", "thread_id"],
            set_={"timezone": stmt.excluded.timezone, "updated_at": stmt.excluded.updated_at})
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    async def move_chat_in(self, conn: AsyncConnection, old_chat_id: int, new_chat_id: int,
                           now: datetime) -> None:
        """A group became a supergroup: its choices follow it, unless the new chat has its
        own for the same topic (those win, as for subscriptions)."""
        t = self._t
        other = t.alias("other")
        taken = select(other.c.chat_id).where(other.c.chat_id == new_chat_id,
                                              other.c.thread_id == t.c.thread_id).exists()
        await conn.execute(update(t).where(and_(t.c.chat_id == old_chat_id, not_(taken)))
                           .values(chat_id=new_chat_id, updated_at=now))
        await conn.execute(delete(t).where(t.c.chat_id == old_chat_id))
