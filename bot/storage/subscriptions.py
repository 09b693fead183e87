"""Subscriptions: who gets a briefing, where, when, in which zone, about what.

Every mutation recomputes ``next_due_at`` with :mod:`bot.storage.schedule`, so the due
scan is a plain indexed range query and never has to interpret schedules itself.
``next_due_at`` is NULL whenever no briefing should be scheduled (ended, paused, instant
mode). Changing time or zone never schedules a second briefing for a local date that
already has one, because the next instant must fall on a date after ``last_digest_date``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, not_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.chat_preferences import ChatPreferenceStore
from bot.storage.database import Database
from bot.storage.follows import normalise_follows
from bot.storage.schedule import first_due_after

__all__ = ["Destination", "Mode", "Subscription", "SubscriptionStore", "format_clock"]

Mode = Literal["daily", "instant"]
_MODES: frozenset[str] = frozenset({"daily", "instant"})
UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True, order=True)
class Destination:
    """Where a message goes: a chat plus, in forum groups, a topic (0 = no topic)."""

    chat_id: int
    thread_id: int = 0


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscription row as a value."""

    id: int
    destination: Destination
    chat_type: str
    delivery_time: time
    timezone: ZoneInfo
    mode: Mode
    follows: tuple[str, ...]
    paused: bool
    active: bool
    ended_reason: str | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_digest_date: date | None
    last_digest_at: datetime | None
    next_due_at: datetime | None


def format_clock(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def _parse_clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _mode(value: str) -> Mode:
    if value == "instant":
        return "instant"
    return "daily"


def subscription_from_row(row: Row[Any] | Mapping[str, Any]) -> Subscription:
    m: Mapping[str, Any] = row._mapping if isinstance(row, Row) else row  # type: ignore[assignment]
    return Subscription(
        id=int(m["id"]),
        destination=Destination(int(m["chat_id"]), int(m["thread_id"])),
        chat_type=str(m["chat_type"]),
        delivery_time=_parse_clock(m["delivery_time"]),
        timezone=ZoneInfo(m["timezone"]),
        mode=_mode(m["mode"]),
        follows=tuple(m["follows"] or ()),
        paused=bool(m["paused"]),
        active=bool(m["active"]),
        ended_reason=m["ended_reason"],
        ended_at=m["ended_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        last_digest_date=m["last_digest_date"],
        last_digest_at=m["last_digest_at"],
        next_due_at=m["next_due_at"],
    )


def next_due_for(
    *,
    active: bool,
    paused: bool,
    mode: str,
    at: time,
    zone: ZoneInfo,
    last_digest_date: date | None,
    now: datetime,
) -> datetime | None:
    """The ``next_due_at`` a row with these values should have (NULL if none)."""
    if not active or paused or mode != "daily":
        return None
    return first_due_after(now, at, zone, last_digest_date)


class SubscriptionStore:
    """Async operations on subscriptions; each call is one short transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._t = db.tables.subscriptions

    # -- reading ---------------------------------------------------------------------

    async def get(self, dest: Destination) -> Subscription | None:
        async with self._db.read() as conn:
            return await self._get(conn, dest)

    async def get_by_id(self, subscription_id: int) -> Subscription | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(self._t).where(self._t.c.id == subscription_id))
                   ).first()
            return subscription_from_row(row) if row else None

    async def _get(self, conn: AsyncConnection, dest: Destination,
                   *, lock: bool = False) -> Subscription | None:
        t = self._t
        stmt = select(t).where(t.c.chat_id == dest.chat_id, t.c.thread_id == dest.thread_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).first()
        return subscription_from_row(row) if row else None

    async def iter_active(
        self, *, mode: Mode | None = None, batch_size: int = 500
    ) -> AsyncIterator[list[Subscription]]:
        """Active subscriptions in id order, ``batch_size`` at a time (bounded memory)."""
        t = self._t
        last_id = 0
        while True:
            stmt = select(t).where(t.c.active.is_(True), t.c.id > last_id)
            if mode is not None:
                stmt = stmt.where(t.c.mode == mode)
            stmt = stmt.order_by(t.c.id).limit(batch_size)
            async with self._db.read() as conn:
                rows = (await conn.execute(stmt)).all()
            if not rows:
                return
            batch = [subscription_from_row(r) for r in rows]
            last_id = batch[-1].id
            yield batch

    async def iter_active_destinations(
        self, *, batch_size: int = 500
    ) -> AsyncIterator[list[tuple[int, Destination]]]:
        """(subscription id, destination) of active subscriptions, in batches."""
        async for batch in self.iter_active(batch_size=batch_size):
            yield [(s.id, s.destination) for s in batch]

    async def counts_by_chat_type(self) -> dict[str, int]:
        return await self._count_by(self._t.c.chat_type)

    async def counts_by_zone(self) -> dict[str, int]:
        return await self._count_by(self._t.c.timezone)

    async def counts_by_mode(self) -> dict[str, int]:
        return await self._count_by(self._t.c.mode)

    async def _count_by(self, column: Any) -> dict[str, int]:
        t = self._t
        stmt = (select(column, func.count()).where(t.c.active.is_(True))
                .group_by(column).order_by(column))
        async with self._db.read() as conn:
            return {str(k): int(n) for k, n in (await conn.execute(stmt)).all()}

    # -- creating and ending ---------------------------------------------------------

    async def subscribe(self, dest: Destination, chat_type: str, at: time, zone: ZoneInfo,
                        now: datetime) -> Subscription:
        """Create, or re-activate/update, the subscription of ``dest``.

        An existing row keeps its follows, mode and ``last_digest_date`` (so re-subscribing
        on the day of a briefing does not bring a second one that day).
        """
        t = self._t
        async with self._db.engine.begin() as conn:
            current = await self._get(conn, dest, lock=True)
            if current is None:
                values: dict[str, Any] = {
                    "chat_id": dest.chat_id, "thread_id": dest.thread_id,
                    "chat_type": chat_type, "delivery_time": format_clock(at),
                    "timezone": zone.key, "mode": "daily", "follows": [],
                    "paused": False, "active": True, "created_at": now, "updated_at": now,
                    "next_due_at": first_due_after(now, at, zone, None),
                }
                inserted = await self._db.insert_ignore(conn, t, values,
                                                        ("chat_id", "thread_id"))
                if inserted:
                    created = await self._get(conn, dest)
                    assert created is not None
                    return created
                current = await self._get(conn, dest, lock=True)
                assert current is not None
            due = next_due_for(active=True, paused=False, mode=current.mode, at=at, zone=zone,
                               last_digest_date=current.last_digest_date, now=now)
            await conn.execute(
                update(t).where(t.c.id == current.id).values(
                    chat_type=chat_type, delivery_time=format_clock(at), timezone=zone.key,
                    active=True, paused=False, ended_reason=None, ended_at=None,
                    updated_at=now, next_due_at=due,
                )
            )
            fresh = await self._get(conn, dest)
            assert fresh is not None
            return fresh

    async def end(self, dest: Destination, reason: str, now: datetime) -> bool:
        """End one subscription (kept as a row for statistics); False if none active."""
        t = self._t
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(t)
                .where(t.c.chat_id == dest.chat_id, t.c.thread_id == dest.thread_id,
                       t.c.active.is_(True))
                .values(active=False, ended_reason=reason[:200], ended_at=now,
                        updated_at=now, next_due_at=None)
            )
            return bool(result.rowcount)

    async def unsubscribe(self, dest: Destination, now: datetime) -> bool:
        return await self.end(dest, UNSUBSCRIBED, now)

    async def end_chat(self, chat_id: int, reason: str, now: datetime,
                       conn: AsyncConnection | None = None) -> int:
        """End every subscription of a chat (all topics): the bot cannot reach it."""
        t = self._t
        stmt = (update(t).where(t.c.chat_id == chat_id, t.c.active.is_(True))
                .values(active=False, ended_reason=reason[:200], ended_at=now,
                        updated_at=now, next_due_at=None))
        if conn is not None:
            return int((await conn.execute(stmt)).rowcount or 0)
        async with self._db.engine.begin() as own:
            return int((await own.execute(stmt)).rowcount or 0)

    # -- changing settings -----------------------------------------------------------

    async def _change(self, dest: Destination, now: datetime,
                      **changes: Any) -> Subscription | None:
        """Apply ``changes`` to an active subscription and recompute ``next_due_at``."""
        t = self._t
        async with self._db.engine.begin() as conn:
            current = await self._get(conn, dest, lock=True)
            if current is None or not current.active:
                return None
            merged: dict[str, Any] = {
                "paused": current.paused, "mode": current.mode,
                "delivery_time": format_clock(current.delivery_time),
                "timezone": current.timezone.key, "follows": list(current.follows),
            }
            merged.update(changes)
            at = _parse_clock(merged["delivery_time"])
            zone = ZoneInfo(merged["timezone"])
            schedule_changed = any(k in changes for k in ("paused", "mode", "delivery_time",
                                                           "timezone"))
            due = current.next_due_at
            if schedule_changed:
                due = next_due_for(active=True, paused=merged["paused"], mode=merged["mode"],
                                   at=at, zone=zone,
                                   last_digest_date=current.last_digest_date, now=now)
            await conn.execute(
                update(t).where(t.c.id == current.id)
                .values(**changes, updated_at=now, next_due_at=due)
            )
            return await self._get(conn, dest)

    async def set_time(self, dest: Destination, at: time,
                       now: datetime) -> Subscription | None:
        return await self._change(dest, now, delivery_time=format_clock(at))

    async def set_timezone(self, dest: Destination, zone: ZoneInfo,
                           now: datetime) -> Subscription | None:
        return await self._change(dest, now, timezone=zone.key)

    async def set_mode(self, dest: Destination, mode: Mode,
                       now: datetime) -> Subscription | None:
        if mode not in _MODES:
            raise ValueError(f"mode must be 'daily' or 'instant', not {mode!r}")
        return await self._change(dest, now, mode=mode)

    async def pause(self, dest: Destination, now: datetime) -> Subscription | None:
        return await self._change(dest, now, paused=True)

    async def resume(self, dest: Destination, now: datetime) -> Subscription | None:
        return await self._change(dest, now, paused=False)

    async def follow(self, dest: Destination, words: Iterable[str],
                     now: datetime) -> Subscription | None:
        """Add follow words; raises :class:`~bot.storage.follows.FollowError` on limits."""
        current = await self.get(dest)
        if current is None or not current.active:
            return None
        follows = normalise_follows(current.follows, words)
        return await self._change(dest, now, follows=list(follows))

    async def unfollow(self, dest: Destination, words: Iterable[str] | None,
                       now: datetime) -> Subscription | None:
        """Remove follow words; ``None`` removes all of them."""
        current = await self.get(dest)
        if current is None or not current.active:
            return None
        if words is None:
            remaining: tuple[str, ...] = ()
        else:
            drop = set(normalise_follows((), words))
            remaining = tuple(w for w in current.follows if w not in drop)
        return await self._change(dest, now, follows=list(remaining))

    # -- migration -------------------------------------------------------------------

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int, now: datetime) -> int:
        """A group became a supergroup: move its subscriptions and unsent ledger rows.

        Returns the number of subscriptions moved. A subscription that already exists for
        the new chat wins; the old one then ends with reason ``migrated``.
        """
        t = self._t
        d = self._db.tables.deliveries
        if old_chat_id == new_chat_id:
            return 0
        moved = 0
        async with self._db.engine.begin() as conn:
            rows = (await conn.execute(
                select(t.c.id, t.c.thread_id).where(t.c.chat_id == old_chat_id)
                .with_for_update()
            )).all()
            for sub_id, thread_id in rows:
                clash = (await conn.execute(
                    select(t.c.id).where(t.c.chat_id == new_chat_id, t.c.thread_id == thread_id)
                )).first()
                if clash is None:
                    await conn.execute(update(t).where(t.c.id == sub_id).values(
                        chat_id=new_chat_id, chat_type="supergroup", updated_at=now))
                    moved += 1
                else:
                    await conn.execute(
                        update(t).where(t.c.id == sub_id, t.c.active.is_(True)).values(
                            active=False, ended_reason=f"migrated to {new_chat_id}",
                            ended_at=now, updated_at=now, next_due_at=None))
            other = d.alias("other")
            clash_exists = (
                select(other.c.id).where(
                    other.c.kind == d.c.kind, other.c.ref == d.c.ref,
                    other.c.chat_id == new_chat_id, other.c.thread_id == d.c.thread_id,
                ).exists()
            )
            movable = and_(d.c.chat_id == old_chat_id,
                           d.c.state.in_(("pending", "sending", "uncertain")))
            await conn.execute(
                update(d).where(movable, not_(clash_exists))
                .values(chat_id=new_chat_id, updated_at=now)
            )
            await conn.execute(
                update(d).where(movable, d.c.state != "sending")
                .values(state="failed", error=f"chat migrated to {new_chat_id}; "
                        "the new chat already has this message", updated_at=now)
            )
            await ChatPreferenceStore(self._db).move_chat_in(conn, old_chat_id, new_chat_id,
                                                             now)
        return moved
