"""Which story versions the bot has already seen, so a restart does not re-alert them.

The library reports "new" and "updated" relative to its own memory, which a restart
wipes. This table is the durable memory: a story version (key, updated) is alerted only
if the table holds no version of that key at least as recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.database import Database

__all__ = ["KnownStoryStore"]

_CHUNK = 500


class KnownStoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._t = db.tables.known_stories

    async def is_empty(self) -> bool:
        async with self._db.read() as conn:
            return not (await conn.execute(select(func.count()).select_from(self._t))).scalar()

    async def known(self, keys: Iterable[str]) -> dict[str, datetime]:
        """The latest known ``updated`` per key (missing keys are absent)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, datetime] = {}
        async with self._db.read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                rows = (await conn.execute(
                    select(self._t.c.key, self._t.c.updated).where(self._t.c.key.in_(chunk))
                )).all()
                found.update({k: u for k, u in rows})
        return found

    async def unseen(self, versions: Sequence[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
        """The (key, updated) versions newer than anything recorded for their key."""
        known = await self.known(k for k, _ in versions)
        return [(k, u) for k, u in versions if k not in known or u > known[k]]

    async def remember_in(self, conn: AsyncConnection,
                          versions: Sequence[tuple[str, datetime]], now: datetime) -> None:
        """Record versions (keeping the newest ``updated`` per key)."""
        if not versions:
            return
        newest: dict[str, datetime] = {}
        for key, updated in versions:
            if key not in newest or updated > newest[key]:
                newest[key] = updated
        stmt = self._db.insert(self._t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"updated": stmt.excluded.updated, "seen_at": stmt.excluded.seen_at},
            where=self._t.c.updated < stmt.excluded.updated,
        )
        await conn.execute(stmt, [{"key": k, "updated": u, "seen_at": now}
                                  for k, u in newest.items()])

    async def remember(self, versions: Sequence[tuple[str, datetime]], now: datetime) -> None:
        async with self._db.engine.begin() as conn:
            await self.remember_in(conn, versions, now)
