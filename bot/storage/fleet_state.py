"""The fleet's shared flood state: live delivery workers and the bulk pause, in one read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from bot.storage.database import Database

__all__ = ["FleetState"]


class FleetState:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._f = db.tables.fleet_state
        self._w = db.tables.workers

    async def read(self, now: datetime, alive_since: datetime) -> tuple[int, datetime | None]:
        """(live delivery workers, the bulk pause's end or None)."""
        w, f = self._w, self._f
        live = (select(func.count()).where(w.c.last_seen >= alive_since,
                                           w.c.stopped_at.is_(None),
                                           w.c.role.in_(("all", "delivery")))
                .scalar_subquery())
        paused = select(f.c.bulk_paused_until).where(f.c.id == 1).scalar_subquery()
        async with self._db.read() as conn:
            row = (await conn.execute(select(live, paused))).one()
        return int(row[0]), row[1]

    async def pause_bulk(self, until: datetime, now: datetime) -> None:
        """Extend (never shorten) the fleet's bulk pause to ``until``."""
        f = self._f
        async with self._db.engine.begin() as conn:
            await self._db.insert_ignore(conn, f, {"id": 1, "bulk_paused_until": until,
                                                   "updated_at": now}, ("id",))
            await conn.execute(update(f).where(
                f.c.id == 1, (f.c.bulk_paused_until.is_(None)) |
                (f.c.bulk_paused_until < until)).values(bulk_paused_until=until,
                                                          updated_at=now))
