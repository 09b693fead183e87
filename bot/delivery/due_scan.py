"""The due scan: the database decides which briefings are due, one row per local date.

Run every ``scan_seconds`` by PTB's JobQueue (and once at start-up, which is the whole
catch-up logic). It walks subscriptions with ``next_due_at <= now`` through the index,
in batches, and for each one — in a single transaction — advances the schedule with a
conditional UPDATE (``… WHERE id = ? AND next_due_at = <the value read>``) and inserts
the ledger row ``('digest', local date)``. Two scans racing (two processes, or a slow scan
overlapped by the next tick) cannot both win the UPDATE, and the ledger's unique key
would refuse a second row anyway. After downtime each subscription gets exactly one
catch-up (its next instant is computed from *now*), and none at all if it is more than
``catch_up_hours`` late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from bot.config import BriefingSettings
from bot.delivery.digest import DigestBuilder
from bot.storage.database import Database
from bot.storage.ledger import DeliveryLedger, NewDelivery
from bot.storage.schedule import first_due_after, latest_due_at_or_before, local_date_of
from bot.storage.subscriptions import Subscription, subscription_from_row

__all__ = ["DIGEST", "DueScan", "ScanReport"]

_LOG = logging.getLogger(__name__)
DIGEST = "digest"
FIRST_BRIEFING_WINDOW = timedelta(hours=24)
# Subscriptions advanced per transaction: few enough that the write lock is held briefly.
_TRANSACTION_ROWS = 100


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan did (for logs and tests)."""

    due: int = 0
    created: int = 0
    empty: int = 0
    skipped_late: int = 0
    lost_race: int = 0


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
        t = self._db.tables.subscriptions
        counts = {"due": 0, "created": 0, "empty": 0, "skipped_late": 0, "lost_race": 0}
        after: tuple[datetime, int] | None = None
        while True:
            stmt = select(t).where(
                t.c.next_due_at <= now, t.c.active.is_(True), t.c.paused.is_(False),
                t.c.mode == "daily",
            )
            if after is not None:
                stmt = stmt.where(or_(t.c.next_due_at > after[0],
                                      and_(t.c.next_due_at == after[0], t.c.id > after[1])))
            stmt = stmt.order_by(t.c.next_due_at, t.c.id).limit(self._batch)
            async with self._db.read() as conn:
                batch = [subscription_from_row(r) for r in (await conn.execute(stmt)).all()]
            if not batch:
                break
            for chunk_start in range(0, len(batch), _TRANSACTION_ROWS):
                chunk = batch[chunk_start:chunk_start + _TRANSACTION_ROWS]
                counts["due"] += len(chunk)
                outcomes = await self._chunk(chunk, now)
                for outcome in outcomes:
                    counts[outcome] += 1
                if "created" in outcomes and self._on_created is not None:
                    self._on_created()  # committed: the sender may start while we go on
            last = batch[-1]
            assert last.next_due_at is not None
            after = (last.next_due_at, last.id)
        report = ScanReport(**counts)
        if report.due:
            _LOG.info("due scan: %s", report)
        return report

    async def _chunk(self, subs: list[Subscription], now: datetime) -> list[str]:
        """Advance a few subscriptions in ONE transaction (a commit per subscription would
        dominate a fan-out of thousands); each advance stays conditional, so a concurrent
        scan or a settings change wins or loses row by row, and the ledger's unique key
        refuses a second row for the same local date in any case."""
        t = self._db.tables.subscriptions
        outcomes: list[str] = []
        deliveries: list[NewDelivery] = []
        async with self._db.engine.begin() as conn:
            for sub in subs:
                scheduled = sub.next_due_at
                assert scheduled is not None
                zone = sub.timezone
                claim = update(t).where(t.c.id == sub.id, t.c.next_due_at == scheduled)
                # After downtime several instants may have passed: only the most recent one
                # is a candidate for the (single) catch-up; older ones are simply skipped.
                due = max(scheduled, latest_due_at_or_before(now, sub.delivery_time, zone))
                day = local_date_of(due, zone)
                following = first_due_after(now, sub.delivery_time, zone, day)
                late = now - due
                if late > timedelta(hours=self._settings.catch_up_hours):
                    won = (await conn.execute(
                        claim.values(next_due_at=following, updated_at=now))).rowcount
                    if won:
                        _LOG.info("briefing for %s on %s skipped: %s late (catch_up_hours=%g)",
                                  sub.destination, day, late, self._settings.catch_up_hours)
                    outcomes.append("skipped_late" if won else "lost_race")
                    continue
                won = (await conn.execute(claim.values(
                    next_due_at=following, last_digest_date=day, last_digest_at=due,
                    updated_at=now))).rowcount
                if not won:
                    outcomes.append("lost_race")
                    continue
                since = sub.last_digest_at or (due - FIRST_BRIEFING_WINDOW)
                payload = self._builder.build(sub, since, due, local_date=day)
                if payload is None:
                    outcomes.append("empty")
                    continue
                deliveries.append(NewDelivery(DIGEST, day.isoformat(), sub.destination,
                                              payload, sub.id))
                outcomes.append("created")
            await self._ledger.add_in(conn, deliveries, now)
        return outcomes
