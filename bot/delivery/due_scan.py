"""The due scan: the database decides which briefings are due, one row per local date.

Run every ``scan_seconds`` by PTB's JobQueue (and once at start-up, which is the whole
catch-up logic). It walks subscriptions with ``next_due_at <= now`` through the index,
in batches, and for each batch — in a single transaction — advances the schedules with one
conditional UPDATE (each row ``… WHERE id = ? AND next_due_at = <the value read>``) and
inserts the ledger rows ``('digest', local date)`` of those it advanced. Two scans racing
(two processes, or a slow scan overlapped by the next tick) cannot both win a row, and the
ledger's unique key would refuse a second row anyway. On PostgreSQL each transaction
claims its batch (``FOR UPDATE SKIP LOCKED``), so the scans of a fleet's processes share
the due rows instead of racing for the same ones. After downtime each subscription
gets exactly one catch-up (its next instant is computed from *now*), and none at all if it
is more than ``catch_up_hours`` late.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Case, Column, Select, and_, case, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.config import BriefingSettings
from bot.delivery.digest import DigestBuilder
from bot.storage.database import Database
from bot.storage.ledger import DeliveryLedger, NewDelivery
from bot.storage.schedule import first_due_after, latest_due_at_or_before, local_date_of
from bot.storage.schema import may_be_due
from bot.storage.subscriptions import Subscription, subscription_from_row

__all__ = ["DIGEST", "DueScan", "ScanReport"]

_LOG = logging.getLogger(__name__)
DIGEST = "digest"
FIRST_BRIEFING_WINDOW = timedelta(hours=24)
# Subscriptions advanced per transaction (and per UPDATE statement): few enough that the
# write lock is held briefly. The UPDATE takes about 9 parameters a row: 100 rows stay
# below the 999 of old SQLite builds and far below PostgreSQL's 32767.
_TRANSACTION_ROWS = 100
# PostgreSQL: the same advance with the per-row values as arrays (see _advance_postgresql).
_ADVANCE_POSTGRESQL = text("""
UPDATE subscriptions AS s
SET next_due_at = v.following, updated_at = :now,
    last_digest_date = COALESCE(v.day, s.last_digest_date),
    last_digest_at = COALESCE(v.due, s.last_digest_at)
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:read AS TIMESTAMPTZ[]),
            CAST(:following AS TIMESTAMPTZ[]), CAST(:day AS DATE[]),
            CAST(:due AS TIMESTAMPTZ[])) AS v(id, read, following, day, due)
WHERE s.id = v.id AND s.next_due_at = v.read
RETURNING s.id
""")
_BATCH_PLANNING = (text("SET LOCAL plan_cache_mode = force_custom_plan"),
                   text("SET LOCAL enable_bitmapscan = off"))


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where one due subscription goes: the briefing instant and local date it is due for,
    its next instant, and whether it is past the cut-off."""

    sub: Subscription
    due: datetime
    day: date
    following: datetime
    late: bool


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan did (for logs and tests)."""

    due: int = 0
    created: int = 0
    empty: int = 0
    skipped_late: int = 0
    lost_race: int = 0
    lag_seconds: float = 0.0  # how late the most overdue briefing of this scan was found


class DueScan:
    def __init__(
        self,
        db: Database,
        builder: DigestBuilder,
        settings: BriefingSettings,
        *,
        batch_size: int = 500,
        on_created: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._ledger = DeliveryLedger(db)
        self._builder = builder
        self._settings = settings
        self._batch = batch_size
        self._on_created = on_created

    async def run(self, now: datetime) -> ScanReport:
        """Create every briefing due at ``now``; safe to run concurrently and repeatedly."""
        counts = {"due": 0, "created": 0, "empty": 0, "skipped_late": 0, "lost_race": 0}
        lag: float | None = None
        chunks = (self._claimed_chunks(now) if self._db.is_postgresql
                  else self._read_chunks(now))
        async for oldest, outcomes in chunks:
            if lag is None and oldest is not None:  # each batch is ordered: its oldest first
                lag = max(0.0, (now - oldest).total_seconds())
            counts["due"] += len(outcomes)
            for outcome in outcomes:
                counts[outcome] += 1
            if "created" in outcomes and self._on_created is not None:
                self._on_created()  # committed: the sender may start while we go on
        lag = lag or 0.0
        report = ScanReport(**counts, lag_seconds=lag)
        if report.due:
            _LOG.info("due scan: %s", report)
        return report

    def _due(self, now: datetime) -> Select[Any]:
        t = self._db.tables.subscriptions
        return select(t).where(t.c.next_due_at <= now, may_be_due(t))

    async def _read_chunks(self, now: datetime) -> AsyncIterator[tuple[datetime | None,
                                                                         list[str]]]:
        """SQLite: read a batch, then settle it a few rows per transaction (the write lock
        is the whole database's, so it is held briefly); (oldest due, outcomes) each."""
        t = self._db.tables.subscriptions
        after: tuple[datetime, int] | None = None
        while True:
            stmt = self._due(now).order_by(t.c.next_due_at, t.c.id)
            if after is not None:
                stmt = stmt.where(or_(t.c.next_due_at > after[0],
                                      and_(t.c.next_due_at == after[0], t.c.id > after[1])))
            async with self._db.read() as conn:
                batch = [subscription_from_row(r)
                         for r in (await conn.execute(stmt.limit(self._batch))).all()]
            if not batch:
                return
            for start in range(0, len(batch), _TRANSACTION_ROWS):
                chunk = batch[start:start + _TRANSACTION_ROWS]
                async with self._db.engine.begin() as conn:
                    outcomes = await self._settle(conn, chunk, now)
                yield chunk[0].next_due_at, outcomes
            last = batch[-1]
            assert last.next_due_at is not None
            after = (last.next_due_at, last.id)

    async def _claimed_chunks(self, now: datetime) -> AsyncIterator[tuple[datetime | None,
                                                                            list[str]]]:
        """PostgreSQL: each transaction locks the next batch of due rows that no other scan
        holds (``FOR UPDATE SKIP LOCKED``) and settles it, so scans in several processes
        share the work batch by batch instead of reading the same rows and racing for
        them. A settled row is no longer due: the next claim finds the rest."""
        t = self._db.tables.subscriptions
        while True:
            async with self._db.engine.begin() as conn:
                # After five runs PostgreSQL may switch a prepared statement to a generic
                # plan, blind to how many rows are due or how few the arrays hold: a whole
                # table's scan (40 ms instead of 3 ms a batch at 200,000 subscriptions).
                # Each batch is planned for its own values. And statistics older than a
                # bulk import make a bitmap scan of every due row, then a sort, look
                # cheaper than reading the due index in order up to the batch's size
                # (0.8 s instead of milliseconds a batch at 1,000,000): not that.
                for setting in _BATCH_PLANNING:
                    await conn.execute(setting)
                # Oldest first, ties in index order: ordering by id as well would sort
                # every due row for each batch of a million.
                rows = (await conn.execute(
                    self._due(now).order_by(t.c.next_due_at).limit(self._batch)
                    .with_for_update(skip_locked=True))).all()
                if not rows:
                    return
                batch = [subscription_from_row(r) for r in rows]
                outcomes = await self._settle(conn, batch, now)
            yield batch[0].next_due_at, outcomes

    def _plan(self, sub: Subscription, now: datetime) -> _Plan:
        scheduled = sub.next_due_at
        assert scheduled is not None
        zone = sub.timezone
        # After downtime several instants may have passed: only the most recent one is a
        # candidate for the (single) catch-up; older ones are simply skipped.
        due = max(scheduled, latest_due_at_or_before(now, sub.delivery_time, zone))
        day = local_date_of(due, zone)
        late = now - due > timedelta(hours=self._settings.catch_up_hours)
        return _Plan(sub, due, day, first_due_after(now, sub.delivery_time, zone, day), late)

    async def _advance(self, conn: AsyncConnection, plans: list[_Plan],
                       now: datetime) -> set[int]:
        """Move every planned subscription to its next instant in ONE statement; the ids of
        those still at the instant this scan read (the others were taken by a concurrent
        scan or changed by their owner in the meantime)."""
        t = self._db.tables.subscriptions

        def per_row(column: Column[Any], values: dict[int, Any],
                    otherwise: Column[Any] | None = None) -> Case[Any]:
            whens = {sub_id: literal(value, column.type) for sub_id, value in values.items()}
            return case(whens, value=t.c.id, else_=otherwise)

        values: dict[str, Any] = {
            "next_due_at": per_row(t.c.next_due_at, {p.sub.id: p.following for p in plans}),
            "updated_at": now,
        }
        briefed = [p for p in plans if not p.late]
        if briefed:  # late ones keep their last briefing (and a CASE needs one WHEN)
            values["last_digest_date"] = per_row(
                t.c.last_digest_date, {p.sub.id: p.day for p in briefed}, t.c.last_digest_date)
            values["last_digest_at"] = per_row(
                t.c.last_digest_at, {p.sub.id: p.due for p in briefed}, t.c.last_digest_at)
        stmt = (
            update(t)
            .where(t.c.id.in_([p.sub.id for p in plans]),
                   t.c.next_due_at == per_row(t.c.next_due_at,
                                              {p.sub.id: p.sub.next_due_at for p in plans}))
            .values(values)
            .returning(t.c.id)
        )
        return set((await conn.execute(stmt)).scalars())

    async def _advance_postgresql(self, conn: AsyncConnection, plans: list[_Plan],
                                  now: datetime) -> set[int]:
        """:meth:`_advance` in one statement whose text is the same for every batch: the
        per-row values travel as arrays (``unnest``), so nothing is built per row."""
        t = self._db.tables.subscriptions
        briefed = [None if p.late else p for p in plans]
        result = await conn.execute(_ADVANCE_POSTGRESQL.bindparams(
            ids=[p.sub.id for p in plans], read=[p.sub.next_due_at for p in plans],
            following=[p.following for p in plans],
            day=[b.day if b else None for b in briefed],
            due=[b.due if b else None for b in briefed], now=now,
        ).columns(t.c.id))
        return set(result.scalars())

    async def _settle(self, conn: AsyncConnection, subs: list[Subscription],
                      now: datetime) -> list[str]:
        """Advance subscriptions in ``conn``'s transaction by ONE conditional UPDATE (a
        statement per subscription would dominate a fan-out of thousands) and add their
        briefings; each row still advances only from the instant this scan read, so a
        concurrent scan or a settings change wins or loses row by row, and the ledger's
        unique key refuses a second row for the same local date in any case."""
        outcomes: list[str] = []
        deliveries: list[NewDelivery] = []
        plans = [self._plan(sub, now) for sub in subs]
        if self._db.is_postgresql:
            won = await self._advance_postgresql(conn, plans, now)
        else:
            won = await self._advance(conn, plans, now)
        for plan in plans:
            sub, day = plan.sub, plan.day
            if sub.id not in won:
                outcomes.append("lost_race")
            elif plan.late:
                _LOG.info("briefing for %s on %s skipped: %s late (catch_up_hours=%g)",
                          sub.destination, day, now - plan.due,
                          self._settings.catch_up_hours)
                outcomes.append("skipped_late")
            else:
                since = sub.last_digest_at or (plan.due - FIRST_BRIEFING_WINDOW)
                payload = self._builder.build(sub, since, plan.due, local_date=day)
                if payload is None:
                    outcomes.append("empty")
                    continue
                deliveries.append(NewDelivery(DIGEST, day.isoformat(), sub.destination,
                                              payload, sub.id))
                outcomes.append("created")
        await self._ledger.add_in(conn, deliveries, now)
        return outcomes
