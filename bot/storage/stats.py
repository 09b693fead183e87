"""Numbers for the operators: what was sent, what is waiting, who is subscribed.

Every report counts each ledger row (one message to one destination) once, by the state
it ended in, so the states add up to the messages: ``sent``, ``blocked``, ``failed``,
``cancelled``, ``uncertain`` (fate unknown and not resent) and ``waiting`` (pending or
sending: not settled yet). "May have arrived twice" is counted beside them, not as a state.

``blocked`` is a failure that means the destination is gone for good (blocked, kicked,
deactivated, chat or forum topic not found, no right to post), the failures for which the
sender ends the subscription. The ledger keeps no separate flag for it, so it is read from
the stored error, which the sender writes as ``"<exception class>: <Telegram's text>"``
(:func:`bot.delivery.outcome.classify`): every ``Forbidden`` (403), and the
``BadRequest`` texts the classifier treats as "chat gone" or "topic gone". The markers are
repeated here because storage must not import the delivery layer; a test checks that every
reason the classifier ends a subscription for is counted as blocked, and no other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.sql import Select

from bot.storage.database import Database
from bot.storage.ledger import DeliveryState

__all__ = ["GONE_MARKERS", "DeliveryStats", "DeliveryTally", "StatsQueries", "tally_query"]

# Lower-case BadRequest texts meaning the chat or topic cannot be reached any more
# (bot.delivery.outcome's _CHAT_GONE and _TOPIC_GONE).
GONE_MARKERS = ("chat not found", "user is deactivated", "bot was kicked", "not a member",
                "have no rights to send", "need administrator rights", "peer_id_invalid",
                "message thread not found", "topic_deleted")
BLOCKED = "blocked"
WAITING = "waiting"


@dataclass(frozen=True, slots=True)
class DeliveryTally:
    """Messages (ledger rows) counted once each by the state they are in."""

    sent: int = 0
    blocked: int = 0
    failed: int = 0
    cancelled: int = 0
    uncertain: int = 0  # fate unknown (timeout, crash) and not resent
    waiting: int = 0  # pending or sending
    twice: int = 0  # beside the states: an uncertain attempt, then sent again

    @property
    def total(self) -> int:
        return (self.sent + self.blocked + self.failed + self.cancelled + self.uncertain
                + self.waiting)

    @property
    def settled(self) -> int:
        return self.total - self.waiting

    @classmethod
    def from_counts(cls, counts: dict[str, int], twice: int = 0) -> DeliveryTally:
        """From row counts by bucket (see :func:`tally_query`)."""
        return cls(sent=counts.get(DeliveryState.SENT.value, 0),
                   blocked=counts.get(BLOCKED, 0),
                   failed=counts.get(DeliveryState.FAILED.value, 0),
                   cancelled=counts.get(DeliveryState.CANCELLED.value, 0),
                   uncertain=counts.get(DeliveryState.UNCERTAIN.value, 0),
                   waiting=counts.get(WAITING, 0), twice=twice)


def _gone(error: Any) -> ColumnElement[bool]:
    lowered = func.lower(error)
    return or_(error.like("Forbidden:%"),
               and_(error.like("BadRequest:%"),
                    or_(*(lowered.contains(m, autoescape=True) for m in GONE_MARKERS))))


def tally_query(db: Database, *conditions: ColumnElement[bool],
                by: tuple[str, ...] = ()) -> Select[Any]:
    """``SELECT <by columns>, bucket, rows, twice`` over the matching ledger rows.

    The bucket is computed in a subquery and grouped by name outside it: PostgreSQL does
    not see two renderings of one CASE with bound parameters as the same expression.
    """
    d = db.tables.deliveries
    state = d.c.state
    bucket = case(
        (and_(state == DeliveryState.FAILED.value, _gone(d.c.error)), literal(BLOCKED)),
        (state.in_((DeliveryState.PENDING.value, DeliveryState.SENDING.value)),
         literal(WAITING)),
        else_=state,
    )
    twice = case((and_(d.c.uncertain_count > 0,
                       or_(state == DeliveryState.SENT.value,
                           and_(state == DeliveryState.UNCERTAIN.value,
                                d.c.uncertain_count > 1))), 1), else_=0)
    rows = select(*(d.c[c] for c in by), bucket.label("bucket"),
                  twice.label("twice")).where(*conditions).subquery()
    keys = [rows.c[c] for c in by]
    return (select(*keys, rows.c.bucket, func.count(), func.sum(rows.c.twice))
            .group_by(*keys, rows.c.bucket))


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Ledger rows created in a window, counted by (kind, state); ``state`` is a tally
    bucket: a ledger state, ``blocked`` (failed, destination gone) or ``waiting``."""

    since: datetime
    counts: dict[tuple[str, str], int]
    twice: dict[str, int] = field(default_factory=dict)  # by kind

    def total(self, *, kind: str | None = None, state: str | None = None) -> int:
        return sum(n for (k, s), n in self.counts.items()
                   if (kind is None or k == kind) and (state is None or s == state))

    def tally(self, kind: str | None = None) -> DeliveryTally:
        counts: dict[str, int] = {}
        for (k, s), n in self.counts.items():
            if kind is None or k == kind:
                counts[s] = counts.get(s, 0) + n
        twice = sum(n for k, n in self.twice.items() if kind is None or k == kind)
        return DeliveryTally.from_counts(counts, twice)

    def kinds(self) -> dict[str, int]:
        """Messages per kind."""
        found: dict[str, int] = {}
        for (k, _), n in self.counts.items():
            found[k] = found.get(k, 0) + n
        return found


class StatsQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def deliveries_since(self, since: datetime) -> DeliveryStats:
        d = self._db.tables.deliveries
        stmt = tally_query(self._db, d.c.created_at >= since, by=("kind",))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        counts: dict[tuple[str, str], int] = {}
        twice: dict[str, int] = {}
        for kind, bucket, n, repeated in rows:
            counts[(str(kind), str(bucket))] = int(n)
            twice[str(kind)] = twice.get(str(kind), 0) + int(repeated or 0)
        return DeliveryStats(since, counts, twice)

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
