"""Admin broadcasts: the draft an admin previews, its audience, and its figures.

A broadcast's messages are ordinary ledger rows (kind ``broadcast``, ref = broadcast id),
so they share the sender, the rate limiter and the error handling of every bulk message.
This table holds what the ledger does not: who asked, for whom, and how far it got.
State moves ``draft → sending → done``, or ``draft → cancelled``, or ``sending →
cancelling → cancelled``; each move is a conditional UPDATE, so two admins pressing "send"
(or one pressing twice) start it once. A cancel stops only the rows not claimed yet: the
ones in flight end as sent or failed, and the broadcast stays ``cancelling`` until they
have, so its final report counts them where they ended.

A paid broadcast (Telegram's paid broadcasts: up to 1,000 messages a second for Stars) is
one whose ``audience`` JSON also holds ``"paid": true``: how it is sent is stored with who
receives it, so no new column is needed and every worker of a fleet reads the same flag.
If Telegram refuses paid sending midway (the Stars balance ran out), ``paid_stopped``
records when and why, and the rest goes at the free rate. That change is made once, by a
compare-and-set on the stored JSON text, so exactly one worker tells the admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, cast, func, select, update

from bot.storage.database import Database
from bot.storage.ledger import DeliveryLedger
from bot.storage.payloads import Payload, payload_from_json
from bot.storage.stats import DeliveryTally, tally_query

__all__ = ["NOT_CHANNELS", "Audience", "Broadcast", "BroadcastStore", "MeasuredRate"]

BROADCAST = "broadcast"
NOT_CHANNELS = ("private", "group", "supergroup")  # the usual audience of a broadcast


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives a broadcast: every active subscription, optionally narrowed."""

    chat_types: tuple[str, ...] = ()  # empty: every chat type (commands pass NOT_CHANNELS)
    follow: str | None = None  # only destinations following this word

    def describe(self) -> str:
        parts = []
        if self.chat_types == ("private",):
            parts.append("private chats only")
        elif self.chat_types == ("channel",):
            parts.append("channels only")
        elif self.chat_types == NOT_CHANNELS:
            parts.append("all subscribers but channels")
        elif self.chat_types:
            parts.append("groups only")
        if self.follow:
            parts.append(f"following “{self.follow}”")
        return ", ".join(parts) or "all subscribers"

    def to_json(self) -> dict[str, Any]:
        return {"chat_types": list(self.chat_types), "follow": self.follow}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        return cls(tuple(data.get("chat_types") or ()), data.get("follow"))


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    admin_id: int
    admin_chat_id: int
    payload_id: str
    audience: Audience
    state: str
    status_chat_id: int | None
    status_message_id: int | None
    total: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    paid: bool = False  # asked for as a paid broadcast
    paid_stopped: str | None = None  # why Telegram refused paid sending, if it did
    paid_stopped_at: datetime | None = None

    @property
    def sends_paid(self) -> bool:
        """Its messages go with ``allow_paid_broadcast`` (paid, and not refused since)."""
        return self.paid and self.paid_stopped is None


@dataclass(frozen=True, slots=True)
class MeasuredRate:
    """How fast recent broadcasts actually went: ``messages`` sent in ``seconds``."""

    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


def _paid_fields(options: dict[str, Any]) -> dict[str, Any]:
    stopped = options.get("paid_stopped")
    if not isinstance(stopped, dict):
        return {"paid": bool(options.get("paid")), "paid_stopped": None,
                "paid_stopped_at": None}
    return {"paid": bool(options.get("paid")), "paid_stopped": str(stopped.get("reason")),
            "paid_stopped_at": datetime.fromisoformat(str(stopped.get("at")))}


def _broadcast(row: Any) -> Broadcast:
    m = row._mapping
    return Broadcast(
        id=int(m["id"]), admin_id=int(m["admin_id"]), admin_chat_id=int(m["admin_chat_id"]),
        payload_id=m["payload_id"], audience=Audience.from_json(m["audience"]),
        state=m["state"], status_chat_id=m["status_chat_id"],
        status_message_id=m["status_message_id"], total=int(m["total"]),
        created_at=m["created_at"], started_at=m["started_at"], finished_at=m["finished_at"],
        **_paid_fields(m["audience"]),
    )


FANNING_OUT = -1  # ``broadcasts.total`` while its rows are being created


class BroadcastStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._b = db.tables.broadcasts
        self._d = db.tables.deliveries

    async def create(self, admin_id: int, admin_chat_id: int, payload: Payload,
                     audience: Audience, now: datetime, *, paid: bool = False) -> Broadcast:
        options = audience.to_json()
        if paid:
            options["paid"] = True
        async with self._db.engine.begin() as conn:
            payload_id = await DeliveryLedger(self._db).store_payload(conn, payload, now)
            result = await conn.execute(
                self._b.insert().values(
                    admin_id=admin_id, admin_chat_id=admin_chat_id, payload_id=payload_id,
                    audience=options, state="draft", total=0, created_at=now,
                ).returning(self._b.c.id))
            broadcast_id = int(result.scalar_one())
        found = await self.get(broadcast_id)
        assert found is not None
        return found

    async def get(self, broadcast_id: int) -> Broadcast | None:
        async with self._db.read() as conn:
            row = (await conn.execute(
                select(self._b).where(self._b.c.id == broadcast_id))).first()
        return _broadcast(row) if row is not None else None

    async def payload(self, broadcast: Broadcast) -> Payload:
        p = self._db.tables.payloads
        async with self._db.read() as conn:
            body = (await conn.execute(
                select(p.c.body).where(p.c.id == broadcast.payload_id))).scalar_one()
        return payload_from_json(body)

    async def recent(self, limit: int = 10) -> list[Broadcast]:
        async with self._db.read() as conn:
            rows = (await conn.execute(
                select(self._b).order_by(self._b.c.id.desc()).limit(limit))).all()
        return [_broadcast(r) for r in rows]

    async def measured_rate(self, *, broadcasts: int = 3,
                            min_messages: int = 20) -> MeasuredRate | None:
        """The rate of the last few finished free broadcasts of at least ``min_messages``
        messages: messages sent over the time from "send" to the last ``sent_at``. A
        broadcast's rows are all due at once, so the sender was busy for all that time: the
        figure is what the limiter, Telegram and the network really allowed. None until
        such a broadcast has been sent (paid ones go at another rate and do not count)."""
        b, d = self._b, self._d
        stmt = (select(b.c.audience, b.c.started_at, func.count(d.c.id).label("sent"),
                       func.max(d.c.sent_at).label("last"))
                .join(d, (d.c.kind == BROADCAST) & (d.c.ref == cast(b.c.id, String)))
                .where(b.c.state == "done", b.c.started_at.is_not(None),
                       d.c.state == "sent")
                .group_by(b.c.id)  # the key: audience (JSON, no equality in PostgreSQL) follows
                .order_by(b.c.id.desc()).limit(broadcasts * 4))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        messages, seconds = 0, 0.0
        used = 0
        for row in rows:
            if used == broadcasts:
                break
            span = (row.last - row.started_at).total_seconds() if row.last else 0.0
            if _paid_fields(row.audience)["paid"] or row.sent < min_messages or span <= 0:
                continue
            messages += int(row.sent)
            seconds += span
            used += 1
        return MeasuredRate(messages, seconds) if used else None

    async def in_state(self, *states: str) -> list[Broadcast]:
        async with self._db.read() as conn:
            rows = (await conn.execute(
                select(self._b).where(self._b.c.state.in_(states))
                .order_by(self._b.c.id))).all()
        return [_broadcast(r) for r in rows]

    async def _move(self, broadcast_id: int, from_states: tuple[str, ...],
                    **values: Any) -> bool:
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(self._b).where(self._b.c.id == broadcast_id,
                                      self._b.c.state.in_(from_states)).values(**values))
        return bool(result.rowcount)

    async def start(self, broadcast_id: int, now: datetime) -> bool:
        """draft → sending; False if it was already started, cancelled or unknown. The
        total stays ``FANNING_OUT`` until the fan-out has created every row and set it, so
        nothing finishes the broadcast in between."""
        return await self._move(broadcast_id, ("draft",), state="sending", started_at=now,
                                total=FANNING_OUT)

    async def cancel(self, broadcast_id: int, now: datetime) -> bool:
        """Stop what is not sent yet: a draft ends ``cancelled``, a broadcast being sent
        becomes ``cancelling`` (see :meth:`settle_cancel`); False if it was not running."""
        if await self._move(broadcast_id, ("draft",), state="cancelled", finished_at=now):
            return True
        if not await self._move(broadcast_id, ("sending",), state="cancelling"):
            return False
        await self.cancel_unsent(broadcast_id, now)
        return True

    async def cancel_unsent(self, broadcast_id: int, now: datetime) -> int:
        """Cancel the rows of a cancelled broadcast that are waiting to be claimed (and
        only those: a row in flight is not taken back); returns how many."""
        return await DeliveryLedger(self._db).cancel(BROADCAST, str(broadcast_id), now)

    async def settle_cancel(self, broadcast_id: int, now: datetime) -> bool:
        """cancelling → cancelled, once its rows in flight have ended; True for the one
        caller that made the move (and so writes the final report)."""
        return await self._move(broadcast_id, ("cancelling",), state="cancelled",
                                finished_at=now)

    async def finish(self, broadcast_id: int, now: datetime) -> bool:
        return await self._move(broadcast_id, ("sending",), state="done", finished_at=now)

    async def sends_paid(self, broadcast_id: int) -> bool:
        """Whether the broadcast's messages go as paid ones now (see the module notes)."""
        found = await self.get(broadcast_id)
        return found is not None and found.sends_paid

    async def stop_paid(self, broadcast_id: int, reason: str, now: datetime) -> bool:
        """Record that Telegram refused paid sending; True for the one caller that made
        the change (and so tells the admin), False if it was already made or the broadcast
        is not paid.

        A compare-and-set on the JSON's text, which both SQLite and PostgreSQL keep as
        written: the UPDATE only applies if nobody changed the options since they were read.
        """
        b = self._b
        text = cast(b.c.audience, Text)
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(select(b.c.audience, text.label("raw"))
                                      .where(b.c.id == broadcast_id))).first()
            if row is None:
                return False
            options = dict(row.audience)
            if not options.get("paid") or isinstance(options.get("paid_stopped"), dict):
                return False
            options["paid_stopped"] = {"at": now.isoformat(), "reason": reason[:500]}
            result = await conn.execute(update(b).where(b.c.id == broadcast_id,
                                                        text == row.raw)
                                        .values(audience=options))
        return bool(result.rowcount)

    async def is_sending(self, broadcast_id: int) -> bool:
        async with self._db.read() as conn:
            state = (await conn.execute(select(self._b.c.state)
                                        .where(self._b.c.id == broadcast_id))).scalar()
        return state == "sending"

    async def set_total(self, broadcast_id: int, total: int) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(update(self._b).where(self._b.c.id == broadcast_id)
                               .values(total=total))

    async def set_status_message(self, broadcast_id: int, chat_id: int,
                                 message_id: int) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(update(self._b).where(self._b.c.id == broadcast_id)
                               .values(status_chat_id=chat_id, status_message_id=message_id))

    async def figures(self, broadcast_id: int) -> DeliveryTally:
        """The broadcast's destinations, each counted once by where its row stands."""
        d = self._d
        stmt = tally_query(self._db, d.c.kind == BROADCAST, d.c.ref == str(broadcast_id))
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return DeliveryTally.from_counts({str(b): int(n) for b, n, _ in rows},
                                         sum(int(t or 0) for _, _, t in rows))
