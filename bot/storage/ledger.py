"""The delivery ledger: one row per bulk message (digest, alert, broadcast) and destination.

The row, not a scheduler or a queue in memory, is the truth about a message:
``pending -> sending -> sent | failed | uncertain`` (and ``cancelled`` for broadcasts),
each change committed the moment it happens. ``UNIQUE (kind, ref, chat_id, thread_id)``
makes "create this message" idempotent, which is what lets restarts, repeated scans and
several processes run without sending anything twice. ``parts_sent`` is committed after
every part of a multi-part message so a restart resumes at the next part.

Claiming is ``SELECT … [FOR UPDATE SKIP LOCKED]`` then ``UPDATE … RETURNING`` in one
transaction: on PostgreSQL the row locks let several workers claim disjoint rows without
waiting for each other; on SQLite the transaction holds the database write lock.

A claim is a lease: it holds while the claiming worker's heartbeat (``workers.last_seen``)
is fresh. Rows of a worker whose heartbeat expired are settled by whichever worker is
alive (:meth:`DeliveryLedger.recover_orphans`). Every claim stamps a fresh
``claim_token`` and every settling update requires it, so a worker that was frozen past
its lease and comes back cannot overwrite a row another worker has taken over.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, exists, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.database import Database
from bot.storage.payloads import Payload, canonical_json, payload_from_json
from bot.storage.subscriptions import Destination

__all__ = [
    "ChatSpacing",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryLedger",
    "DeliveryState",
    "NewDelivery",
]


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A message to create: idempotent on (kind, ref, destination)."""

    kind: str
    ref: str
    destination: Destination
    payload: Payload
    subscription_id: int | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One ledger row as a value."""

    id: int
    kind: str
    ref: str
    destination: Destination
    subscription_id: int | None
    payload_id: str
    state: DeliveryState
    parts_sent: int
    attempts: int
    uncertain_count: int
    not_before: datetime
    error: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    claim_token: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A row claimed by a worker, with its decoded body."""

    delivery: Delivery
    payload: Payload


def delivery_from_row(row: Row[Any]) -> Delivery:
    m = row._mapping
    return Delivery(
        id=int(m["id"]), kind=m["kind"], ref=m["ref"],
        destination=Destination(int(m["chat_id"]), int(m["thread_id"])),
        subscription_id=m["subscription_id"], payload_id=m["payload_id"],
        state=DeliveryState(m["state"]), parts_sent=int(m["parts_sent"]),
        attempts=int(m["attempts"]), uncertain_count=int(m["uncertain_count"]),
        not_before=m["not_before"], error=m["error"], claimed_by=m["claimed_by"],
        claimed_at=m["claimed_at"], created_at=m["created_at"],
        updated_at=m["updated_at"], sent_at=m["sent_at"], claim_token=m["claim_token"],
    )


_MAX_ERROR = 500


def _error(text: str | None) -> str | None:
    return None if text is None else text[:_MAX_ERROR]


@dataclass(frozen=True, slots=True)
class ChatSpacing:
    """Telegram's per-chat and per-group limits, kept by the ledger for a fleet.

    One process keeps them in its rate limiter; several processes sending for one token
    do not see each other's limiters, so each claim leaves out the chats that another
    message is being sent to, or was sent to less than ``chat_interval`` ago, and groups
    that had ``group_per_minute`` messages in the last minute.
    """

    chat_interval: timedelta
    group_per_minute: int

    def conditions(self, d: Table, now: datetime) -> list[ColumnElement[bool]]:
        other = d.alias("other")
        busy = exists().where(
            other.c.chat_id == d.c.chat_id,
            (other.c.state == DeliveryState.SENDING.value)
            | (other.c.sent_at > now - self.chat_interval))
        recent = (select(func.count()).where(other.c.chat_id == d.c.chat_id,
                                             other.c.sent_at > now - timedelta(minutes=1))
                  .scalar_subquery())
        return [~busy, (d.c.chat_id > 0) | (recent < self.group_per_minute)]


class DeliveryLedger:
    """Creating, claiming and settling ledger rows."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._d = db.tables.deliveries
        self._p = db.tables.payloads

    # -- creating --------------------------------------------------------------------

    async def store_payload(self, conn: AsyncConnection, payload: Payload,
                            now: datetime) -> str:
        """Store a body once (content-addressed); return its id."""
        body = payload.to_json()
        payload_id = payload.id
        await self._db.insert_ignore(
            conn, self._p, {"id": payload_id, "body": body, "created_at": now}, ("id",)
        )
        return payload_id

    async def add_in(self, conn: AsyncConnection, items: Sequence[NewDelivery],
                     now: datetime, *, not_before: datetime | None = None) -> int:
        """Insert rows inside ``conn``'s transaction; existing ones are left alone."""
        if not items:
            return 0
        stored: dict[str, str] = {}
        # A fan-out hands the same payload object to every row: serialise it once.
        by_object: dict[int, str] = {}
        rows: list[dict[str, Any]] = []
        for item in items:
            payload_id = by_object.get(id(item.payload))
            if payload_id is None:
                key = canonical_json(item.payload.to_json())
                if key not in stored:
                    stored[key] = await self.store_payload(conn, item.payload, now)
                payload_id = by_object[id(item.payload)] = stored[key]
            rows.append({
                "kind": item.kind, "ref": item.ref,
                "chat_id": item.destination.chat_id, "thread_id": item.destination.thread_id,
                "subscription_id": item.subscription_id, "payload_id": payload_id,
                "state": DeliveryState.PENDING.value, "parts_sent": 0, "attempts": 0,
                "uncertain_count": 0, "not_before": not_before or now,
                "created_at": now, "updated_at": now,
            })
        return await self._db.insert_ignore(conn, self._d, rows,
                                            ("kind", "ref", "chat_id", "thread_id"))

    async def add(self, items: Sequence[NewDelivery], now: datetime) -> int:
        """Insert rows in their own transaction; returns how many were new."""
        async with self._db.engine.begin() as conn:
            return await self.add_in(conn, items, now)

    # -- reading ---------------------------------------------------------------------

    async def get(self, delivery_id: int) -> Delivery | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(self._d).where(self._d.c.id == delivery_id))
                   ).first()
        return delivery_from_row(row) if row else None

    async def find(self, kind: str, ref: str, dest: Destination) -> Delivery | None:
        d = self._d
        async with self._db.read() as conn:
            row = (await conn.execute(select(d).where(
                d.c.kind == kind, d.c.ref == ref, d.c.chat_id == dest.chat_id,
                d.c.thread_id == dest.thread_id))).first()
        return delivery_from_row(row) if row else None

    async def rows(self, *, kind: str | None = None,
                   state: DeliveryState | None = None) -> list[Delivery]:
        """Every matching row (for tests and small reports, not for fan-outs)."""
        d = self._d
        stmt = select(d).order_by(d.c.id)
        if kind is not None:
            stmt = stmt.where(d.c.kind == kind)
        if state is not None:
            stmt = stmt.where(d.c.state == state.value)
        async with self._db.read() as conn:
            return [delivery_from_row(r) for r in (await conn.execute(stmt)).all()]

    async def payload(self, payload_id: str) -> Payload | None:
        async with self._db.read() as conn:
            body = (await conn.execute(select(self._p.c.body)
                                       .where(self._p.c.id == payload_id))).scalar()
        return payload_from_json(body) if body is not None else None

    async def has_ready(self, now: datetime) -> bool:
        """Is any pending row ready to send (``not_before`` reached)?"""
        d = self._d
        stmt = select(d.c.id).where(d.c.state == DeliveryState.PENDING.value,
                                    d.c.not_before <= now).limit(1)
        async with self._db.read() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def next_not_before(self) -> datetime | None:
        """When the earliest pending row becomes ready (None: nothing pending)."""
        d = self._d
        stmt = select(func.min(d.c.not_before)).where(d.c.state == DeliveryState.PENDING.value)
        async with self._db.read() as conn:
            value: datetime | None = (await conn.execute(stmt)).scalar()
        return value

    # -- claiming --------------------------------------------------------------------

    async def claim(self, worker: str, limit: int, now: datetime,
                    payload_cache: dict[str, Payload] | None = None, *,
                    token: str | None = None,
                    spacing: ChatSpacing | None = None) -> list[ClaimedDelivery]:
        """Atomically move up to ``limit`` ready rows to ``sending`` for ``worker``, under a
        fresh claim token (``delivery.claim_token``) that settling them requires."""
        if limit <= 0:
            return []
        d = self._d
        token = token or uuid.uuid4().hex
        # Two statements in one transaction, not UPDATE … WHERE id IN (SELECT … LIMIT n
        # SKIP LOCKED): PostgreSQL may re-run such a subquery and claim more than n rows.
        ready = (
            select(d.c.id)
            .where(d.c.state == DeliveryState.PENDING.value, d.c.not_before <= now)
            .order_by(d.c.not_before, d.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if spacing is not None:
            ready = ready.where(*spacing.conditions(d, now))
        async with self._db.engine.begin() as conn:
            ids = list((await conn.execute(ready)).scalars())
            if not ids:
                return []
            stmt = (
                update(d)
                .where(d.c.id.in_(ids), d.c.state == DeliveryState.PENDING.value)
                .values(state=DeliveryState.SENDING.value, claimed_by=worker,
                        claimed_at=now, updated_at=now, claim_token=token)
                .returning(*d.c)
            )
            rows = [delivery_from_row(r) for r in (await conn.execute(stmt)).all()]
            cache = payload_cache if payload_cache is not None else {}
            missing = {r.payload_id for r in rows} - cache.keys()
            if missing:
                bodies = (await conn.execute(
                    select(self._p.c.id, self._p.c.body).where(self._p.c.id.in_(missing))
                )).all()
                for pid, body in bodies:
                    cache[pid] = payload_from_json(body)
        rows.sort(key=lambda r: (r.not_before, r.id))
        return [ClaimedDelivery(r, cache[r.payload_id]) for r in rows]

    # -- settling (each one its own committed transaction) ---------------------------

    async def _set(self, delivery_id: int, now: datetime, *, token: str | None,
                   **values: Any) -> bool:
        """Change a claimed row; False (nothing changed) unless the row is still
        ``sending`` and, when ``token`` is given, still under that claim."""
        d = self._d
        stmt = update(d).where(d.c.id == delivery_id, d.c.state == DeliveryState.SENDING.value)
        if token is not None:
            stmt = stmt.where(d.c.claim_token == token)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(stmt.values(**values, updated_at=now))
        return bool(result.rowcount)

    async def part_sent(self, delivery_id: int, parts_sent: int, done: bool,
                        now: datetime, *, token: str | None = None) -> bool:
        """Record one more part sent; the last part makes the row ``sent``."""
        values: dict[str, Any] = {"parts_sent": parts_sent}
        if done:
            values.update(state=DeliveryState.SENT.value, sent_at=now, error=None)
        return await self._set(delivery_id, now, token=token, **values)

    async def parts_sent(self, progress: Sequence[tuple[int, str, int, bool]],
                         now: datetime) -> None:
        """Record progress of several rows in one transaction (group commit).

        ``progress`` holds ``(delivery id, claim token, parts sent, done)``; each update is
        still conditional on the row being ``sending`` under that claim, exactly as
        :meth:`part_sent`.
        """
        d = self._d
        base = update(d).where(d.c.id == bindparam("row_id"), d.c.claim_token == bindparam("token"),
                               d.c.state == DeliveryState.SENDING.value)
        finished = [{"row_id": i, "token": t, "parts": n} for i, t, n, done in progress
                    if done]
        ongoing = [{"row_id": i, "token": t, "parts": n} for i, t, n, done in progress
                   if not done]
        async with self._db.engine.begin() as conn:
            if finished:
                await conn.execute(base.values(
                    parts_sent=bindparam("parts"), state=DeliveryState.SENT.value,
                    sent_at=now, error=None, updated_at=now), finished)
            if ongoing:
                await conn.execute(base.values(parts_sent=bindparam("parts"),
                                               updated_at=now), ongoing)

    async def fail(self, delivery_id: int, error: str, now: datetime, *,
                   attempts: int | None = None, token: str | None = None) -> bool:
        values: dict[str, Any] = {"state": DeliveryState.FAILED.value, "error": _error(error)}
        if attempts is not None:
            values["attempts"] = attempts
        return await self._set(delivery_id, now, token=token, **values)

    async def requeue(self, delivery_id: int, not_before: datetime, now: datetime, *,
                      error: str | None = None, attempts: int | None = None,
                      token: str | None = None) -> bool:
        """Back to ``pending`` to be claimed again at ``not_before``."""
        values: dict[str, Any] = {"state": DeliveryState.PENDING.value,
                                  "not_before": not_before, "error": _error(error),
                                  "claimed_by": None, "claimed_at": None,
                                  "claim_token": None}
        if attempts is not None:
            values["attempts"] = attempts
        return await self._set(delivery_id, now, token=token, **values)

    async def mark_uncertain(self, delivery_id: int, error: str, now: datetime, *,
                             resend: bool, uncertain_count: int,
                             token: str | None = None) -> bool:
        """The fate of the current part is unknown (read timeout, crash).

        With ``resend`` the row goes back to ``pending`` (counted in ``uncertain_count``,
        at most once per row) and is resent from the uncertain part; otherwise it stays
        ``uncertain`` for the operators' reports.
        """
        if resend and uncertain_count < 1:
            return await self._set(
                delivery_id, now, token=token, state=DeliveryState.PENDING.value,
                not_before=now, uncertain_count=uncertain_count + 1, error=_error(error),
                claimed_by=None, claimed_at=None, claim_token=None,
            )
        return await self._set(delivery_id, now, token=token,
                               state=DeliveryState.UNCERTAIN.value,
                               uncertain_count=uncertain_count + 1, error=_error(error))

    async def retarget(self, delivery_id: int, new_chat_id: int, now: datetime, *,
                       token: str | None = None) -> bool:
        """Point a row at a migrated chat (False if that chat already has this message,
        or the row is no longer under this claim)."""
        d = self._d
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(select(d).where(d.c.id == delivery_id))).first()
            if row is None:
                return False
            if token is not None and row._mapping["claim_token"] != token:
                return False
            current = delivery_from_row(row)
            if current.destination.chat_id == new_chat_id:
                return True
            clash = (await conn.execute(select(d.c.id).where(
                d.c.kind == current.kind, d.c.ref == current.ref, d.c.chat_id == new_chat_id,
                d.c.thread_id == current.destination.thread_id))).first()
            if clash is not None:
                return False
            await conn.execute(update(d).where(d.c.id == delivery_id)
                               .values(chat_id=new_chat_id, updated_at=now))
            return True

    async def fail_unsent_for_chat(self, chat_id: int, error: str, now: datetime, *,
                                   thread_id: int | None = None) -> int:
        """A chat (or topic) is unreachable: fail its other pending rows, do not try them."""
        d = self._d
        stmt = update(d).where(d.c.chat_id == chat_id,
                               d.c.state == DeliveryState.PENDING.value)
        if thread_id is not None:
            stmt = stmt.where(d.c.thread_id == thread_id)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(stmt.values(state=DeliveryState.FAILED.value,
                                                    error=_error(error), updated_at=now))
        return int(result.rowcount or 0)

    async def recover_orphans(self, worker: str, now: datetime, *, resend: bool,
                              live_since: datetime | None,
                              held: Callable[[], Collection[str]] = tuple) -> int:
        """Settle rows left in ``sending`` by workers that are gone.

        With ``live_since`` the rows of workers whose last heartbeat is older than that
        instant (or that have no heartbeat row, or stopped) are taken; with None every
        other worker's rows are (a SQLite bot holding the file lock knows it is alone).
        ``worker``'s own rows are taken only if their claim token is not in ``held()``: a
        claim whose commit was lost with its connection is not being sent by anyone.
        ``held()`` is read inside the transaction, once it holds SQLite's write lock: a
        claim that committed while this waited for the lock is then in it.
        Such a row may or may not have reached Telegram: with ``resend`` it goes back to
        ``pending`` once (like a read timeout), otherwise it becomes ``uncertain``.
        """
        d, w = self._d, self._db.tables.workers
        others = d.c.claimed_by.is_(None) | (d.c.claimed_by != worker)
        if live_since is not None:
            live = select(w.c.id).where(w.c.last_seen >= live_since, w.c.stopped_at.is_(None))
            others = d.c.claimed_by.is_(None) | (
                (d.c.claimed_by != worker) & d.c.claimed_by.not_in(live))
        note = "worker stopped while sending; fate unknown"
        async with self._db.engine.begin() as conn:
            mine_unheld = (d.c.claimed_by == worker) & (
                d.c.claim_token.is_(None) | d.c.claim_token.not_in(list(held())))
            orphan = (d.c.state == DeliveryState.SENDING.value) & (others | mine_unheld)
            count = 0
            if resend:
                result = await conn.execute(
                    update(d).where(orphan, d.c.uncertain_count < 1).values(
                        state=DeliveryState.PENDING.value, not_before=now, error=note,
                        uncertain_count=d.c.uncertain_count + 1, claimed_by=None,
                        claimed_at=None, claim_token=None, updated_at=now))
                count += int(result.rowcount or 0)
            result = await conn.execute(
                update(d).where(orphan).values(
                    state=DeliveryState.UNCERTAIN.value, error=note, claim_token=None,
                    uncertain_count=d.c.uncertain_count + 1, updated_at=now))
            count += int(result.rowcount or 0)
        return count

    async def cancel(self, kind: str, ref: str, now: datetime) -> int:
        """Cancel the unsent rows of one bulk message (broadcasts)."""
        d = self._d
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(d).where(d.c.kind == kind, d.c.ref == ref,
                                d.c.state == DeliveryState.PENDING.value)
                .values(state=DeliveryState.CANCELLED.value, updated_at=now))
        return int(result.rowcount or 0)

    async def counts(self, *, kind: str | None = None,
                     ref: str | None = None) -> Mapping[str, int]:
        """Rows per state (optionally of one kind/ref): progress of a fan-out."""
        d = self._d
        stmt = select(d.c.state, func.count()).group_by(d.c.state)
        if kind is not None:
            stmt = stmt.where(d.c.kind == kind)
        if ref is not None:
            stmt = stmt.where(d.c.ref == ref)
        async with self._db.read() as conn:
            return {str(s): int(n) for s, n in (await conn.execute(stmt)).all()}

