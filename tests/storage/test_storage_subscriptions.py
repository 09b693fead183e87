"""SubscriptionStore against real databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.storage import (
    Database,
    DeliveryLedger,
    DeliveryState,
    Destination,
    FollowError,
    MessagePart,
    MessagesPayload,
    NewDelivery,
    SubscriptionStore,
)

Clock = Any
BERLIN = ZoneInfo("Europe/Berlin")
UTCZ = ZoneInfo("UTC")


async def test_subscribe_creates_and_schedules(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 1, 15, 6, 0, tzinfo=UTC))
    sub = await store.subscribe(Destination(10, 3), "supergroup", time(8), BERLIN, clock())
    assert sub.destination == Destination(10, 3)
    assert (sub.active, sub.paused, sub.mode, sub.follows) == (True, False, "daily", ())
    assert sub.next_due_at == datetime(2025, 1, 15, 7, 0, tzinfo=UTC)
    assert sub.created_at == clock()
    assert await store.get(Destination(10, 3)) == sub
    assert await store.get(Destination(10)) is None
    assert await store.get_by_id(sub.id) == sub


async def test_resubscribe_reactivates_and_keeps_follows(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    dest = Destination(1)
    sub = await store.subscribe(dest, "private", time(8), UTCZ, clock())
    await store.follow(dest, ["Harbour"], clock())
    assert await store.unsubscribe(dest, clock())
    assert not await store.unsubscribe(dest, clock())
    ended = await store.get(dest)
    assert ended is not None
    assert (ended.active, ended.ended_reason, ended.next_due_at) == (False, "unsubscribed", None)
    assert await store.set_time(dest, time(9), clock()) is None  # ended: no changes
    again = await store.subscribe(dest, "private", time(9, 30), BERLIN, clock())
    assert again.id == sub.id
    assert (again.active, again.ended_reason, again.ended_at) == (True, None, None)
    assert again.follows == ("harbour",)
    assert again.delivery_time == time(9, 30)
    assert again.timezone == BERLIN


async def test_concurrent_subscribe_makes_one_row(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    subs = await asyncio.gather(*[
        store.subscribe(Destination(77), "private", time(8), UTCZ, clock()) for _ in range(5)
    ])
    assert len({s.id for s in subs}) == 1


async def test_time_change_never_gives_a_second_briefing_that_day(
    db: Database, clock: Clock
) -> None:
    store = SubscriptionStore(db)
    dest = Destination(1)
    clock.set(datetime(2025, 1, 15, 6, 0, tzinfo=UTC))
    sub = await store.subscribe(dest, "private", time(7), UTCZ, clock())
    t = db.tables.subscriptions
    # pretend today's briefing was created at 07:00
    async with db.engine.begin() as conn:
        await conn.execute(update(t).where(t.c.id == sub.id).values(
            last_digest_date=date(2025, 1, 15)))
    clock.set(datetime(2025, 1, 15, 7, 5, tzinfo=UTC))
    later = await store.set_time(dest, time(20), clock())
    assert later is not None
    assert later.next_due_at == datetime(2025, 1, 16, 20, 0, tzinfo=UTC)
    # moving west (same wall time arrives later in UTC) must not repeat the 15th either
    west = await store.set_timezone(dest, ZoneInfo("America/New_York"), clock())
    assert west is not None
    assert west.next_due_at is not None
    assert west.next_due_at.astimezone(ZoneInfo("America/New_York")).date() == date(2025, 1, 16)


async def test_modes_pause_and_resume(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    dest = Destination(2)
    await store.subscribe(dest, "private", time(8), UTCZ, clock())
    instant = await store.set_mode(dest, "instant", clock())
    assert instant is not None
    assert (instant.mode, instant.next_due_at) == ("instant", None)
    daily = await store.set_mode(dest, "daily", clock())
    assert daily is not None
    assert daily.next_due_at is not None
    paused = await store.pause(dest, clock())
    assert paused is not None
    assert (paused.paused, paused.next_due_at) == (True, None)
    clock.advance(timedelta(days=3))
    resumed = await store.resume(dest, clock())
    assert resumed is not None
    assert resumed.next_due_at is not None
    assert resumed.next_due_at > clock()  # no burst of old briefings on resume
    with pytest.raises(ValueError, match="mode"):
        await store.set_mode(dest, "hourly", clock())  # type: ignore[arg-type]


async def test_follow_normalises_and_caps(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    dest = Destination(3)
    await store.subscribe(dest, "private", time(8), UTCZ, clock())
    sub = await store.follow(dest, ["Harbour, STRIKE", "harbour", "#Ferries!"], clock())
    assert sub is not None
    assert sub.follows == ("harbour", "strike", "ferries")
    sub = await store.unfollow(dest, ["STRIKE"], clock())
    assert sub is not None
    assert sub.follows == ("harbour", "ferries")
    with pytest.raises(FollowError, match="at most 20"):
        await store.follow(dest, [f"w{i}" for i in range(19)], clock())
    with pytest.raises(FollowError, match="longer than 64"):
        await store.follow(dest, ["x" * 65], clock())
    sub = await store.unfollow(dest, None, clock())
    assert sub is not None
    assert sub.follows == ()
    assert await store.follow(Destination(999), ["x"], clock()) is None


async def test_end_chat_ends_every_topic(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    for thread in (0, 5, 9):
        await store.subscribe(Destination(-100, thread), "supergroup", time(8), UTCZ, clock())
    assert await store.end_chat(-100, "bot was kicked", clock()) == 3
    sub = await store.get(Destination(-100, 5))
    assert sub is not None
    assert (sub.active, sub.ended_reason) == (False, "bot was kicked")


async def test_migrate_chat_moves_subscription_and_unsent_rows(
    db: Database, clock: Clock
) -> None:
    store = SubscriptionStore(db)
    ledger = DeliveryLedger(db)
    old, new = -555, -100555
    sub = await store.subscribe(Destination(old), "group", time(8), UTCZ, clock())
    body = MessagesPayload((MessagePart("hi"),))
    await ledger.add([
        NewDelivery("digest", "2025-03-09", Destination(old), body, sub.id),
        NewDelivery("digest", "2025-03-10", Destination(old), body, sub.id),
    ], clock())
    rows = await ledger.rows()
    await ledger.claim("w", 1, clock())
    await ledger.part_sent(rows[0].id, 1, True, clock())  # the 9th was already sent
    assert await store.migrate_chat(old, new, clock()) == 1
    assert await store.get(Destination(old)) is None
    moved = await store.get(Destination(new))
    assert moved is not None
    assert (moved.id, moved.chat_type) == (sub.id, "supergroup")
    after = {r.ref: r for r in await ledger.rows()}
    assert after["2025-03-09"].destination.chat_id == old  # history stays
    assert after["2025-03-10"].destination.chat_id == new
    assert after["2025-03-10"].state is DeliveryState.PENDING


async def test_migrate_chat_when_new_chat_already_subscribed(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    await store.subscribe(Destination(-1), "group", time(8), UTCZ, clock())
    keep = await store.subscribe(Destination(-1001), "supergroup", time(9), UTCZ, clock())
    assert await store.migrate_chat(-1, -1001, clock()) == 0
    old = await store.get(Destination(-1))
    assert old is not None
    assert not old.active
    assert old.ended_reason == "migrated to -1001"
    assert await store.get(Destination(-1001)) == keep


async def test_counts_and_batches(db: Database, clock: Clock) -> None:
    store = SubscriptionStore(db)
    for i in range(7):
        await store.subscribe(Destination(i + 1), "private", time(8), UTCZ, clock())
    await store.subscribe(Destination(-5), "group", time(8), BERLIN, clock())
    await store.subscribe(Destination(-6), "channel", time(8), BERLIN, clock())
    await store.unsubscribe(Destination(1), clock())
    assert await store.counts_by_chat_type() == {"channel": 1, "group": 1, "private": 6}
    assert await store.counts_by_zone() == {"Europe/Berlin": 2, "UTC": 6}
    batches = [b async for b in store.iter_active(batch_size=3)]
    assert [len(b) for b in batches] == [3, 3, 2]
    dests = [d async for batch in store.iter_active_destinations(batch_size=100)
             for _, d in batch]
    assert Destination(1) not in dests
    assert len(dests) == 8
