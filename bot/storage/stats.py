"""Numbers for the operators: what was sent, what is waiting, who is subscribed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.storage.database import Database
from bot.storage.ledger import DeliveryState

__all__ = ["DeliveryStats", "StatsQueries"]


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Ledger rows created in a window, counted by (kind, state)."""

    since: datetime
    counts: dict[tuple[str, str], int]

    def total(self, *, kind: str | None = None, state: str | None = None) -> int:
        return sum(n for (k, s), n in self.counts.items()
                   if (kind is None or k == kind) and (state is None or s == state))


class StatsQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def deliveries_since(self, since: datetime) -> DeliveryStats:
        d = self._db.tables.deliveries
        stmt = (select(d.c.kind, d.c.state, func.count())
                .where(d.c.created_at >= since).group_by(d.c.kind, d.c.state))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return DeliveryStats(since, {(str(k), str(s)): int(n) for k, s, n in rows})

    async def last_day(self, now: datetime) -> DeliveryStats:
        return await self.deliveries_since(now - timedelta(days=1))

    async def last_week(self, now: datetime) -> DeliveryStats:
        return await self.deliveries_since(now - timedelta(days=7))

    async def queue_depth(self) -> dict[str, int]:
        """Rows not yet settled: pending (waiting or backing off) and sending."""
        d = self._db.tables.deliveries
        states = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)
        stmt = (select(d.c.state, func.count()).where(d.c.state.in_(states))
                .group_by(d.c.state))
        async with self._db.read() as conn:
            found = {str(s): int(n) for s, n in (await conn.execute(stmt)).all()}
        return {s: found.get(s, 0) for s in states}

    async def subscriptions_by(self, column: str) -> dict[str, int]:
        """Active subscriptions grouped by ``chat_type``, ``timezone`` or ``mode``."""
        t = self._db.tables.subscriptions
        if column not in ("chat_type", "timezone", "mode"):
            raise ValueError(f"cannot group subscriptions by {column!r}")
        col = t.c[column]
        stmt = (select(col, func.count()).where(t.c.active.is_(True))
                .group_by(col).order_by(col))
        async with self._db.read() as conn:
            return {str(k): int(n) for k, n in (await conn.execute(stmt)).all()}
