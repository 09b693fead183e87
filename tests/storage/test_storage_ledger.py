"""The delivery ledger: idempotent creation, deduplicated bodies, atomic claims."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.errors import StorageError
from bot.storage import (
    Button,
    CopyPayload,
    Database,
    DeliveryLedger,
    DeliveryState,
    Destination,
    KnownStoryStore,
    MessagePart,
    MessagesPayload,
    NewDelivery,
    StatsQueries,
)
from bot.storage.payloads import payload_from_json
from bot.storage.workers import WorkerRegistry

Clock = Any
OpenDb = Any

BODY = MessagesPayload((
    MessagePart("<b>Morning</b> &amp; news",
                ((Button("Open", callback_data="open:abc"), Button("Web", url="https://x.test")),)),
    MessagePart("part two"),
))


def test_payload_json_round_trip() -> None:
    assert payload_from_json(BODY.to_json()) == BODY
    copy = CopyPayload(-100, 7)
    assert payload_from_json(copy.to_json()) == copy
    assert BODY.id == MessagesPayload(BODY.parts).id
    assert BODY.id != copy.id
    with pytest.raises(StorageError):
        payload_from_json({"type": "video"})
    with pytest.raises(ValueError, match="64 bytes"):
        Button("x", callback_data="é" * 40)
    with pytest.raises(ValueError, match="exactly one"):
        Button("x")


async def test_rows_are_idempotent_and_bodies_shared(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    items = [NewDelivery("digest", "2025-03-10", Destination(i), BODY) for i in range(1, 51)]
    assert await ledger.add(items, clock()) == 50
    assert await ledger.add(items, clock()) == 0
    async with db.engine.connect() as conn:
        from sqlalchemy import func, select
        payloads = (await conn.execute(select(func.count()).select_from(db.tables.payloads))
                    ).scalar()
    assert payloads == 1
    row = await ledger.find("digest", "2025-03-10", Destination(7))
    assert row is not None
    assert row.state is DeliveryState.PENDING
    assert await ledger.payload(row.payload_id) == BODY


async def test_claim_is_atomic_and_ordered(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    await ledger.add([NewDelivery("alert", f"k{i}", Destination(i), BODY) for i in range(1, 21)],
                     clock())
    batches = await asyncio.gather(*[ledger.claim(f"w{i}", 5, clock()) for i in range(6)])
    # SKIP LOCKED may leave rows for a later claim; nothing is ever claimed twice
    while more := await ledger.claim("sweeper", 5, clock()):
        batches.append(more)
    ids = [c.delivery.id for b in batches for c in b]
    assert len(ids) == 20
    assert len(set(ids)) == 20
    first = next(c for b in batches for c in b)
    assert first.delivery.state is DeliveryState.SENDING
    assert first.delivery.claimed_by is not None
    assert first.payload == BODY
    assert await ledger.claim("late", 5, clock()) == []


async def test_not_before_is_respected(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    await ledger.add([NewDelivery("alert", "k", Destination(1), BODY)], clock())
    [claimed] = await ledger.claim("w", 10, clock())
    later = clock() + timedelta(seconds=30)
    assert await ledger.requeue(claimed.delivery.id, later, clock(), error="5xx", attempts=1)
    assert await ledger.claim("w", 10, clock()) == []
    assert not await ledger.has_ready(clock())
    assert await ledger.next_not_before() == later
    clock.advance(timedelta(seconds=30))
    [again] = await ledger.claim("w", 10, clock())
    assert again.delivery.attempts == 1


async def test_parts_and_settling(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    await ledger.add([NewDelivery("digest", "d", Destination(1), BODY)], clock())
    [c] = await ledger.claim("w", 1, clock())
    assert await ledger.part_sent(c.delivery.id, 1, False, clock())
    mid = await ledger.get(c.delivery.id)
    assert mid is not None
    assert (mid.state, mid.parts_sent) == (DeliveryState.SENDING, 1)
    assert await ledger.part_sent(c.delivery.id, 2, True, clock())
    done = await ledger.get(c.delivery.id)
    assert done is not None
    assert (done.state, done.parts_sent, done.sent_at) == (DeliveryState.SENT, 2, clock())
    # settling a row that is no longer 'sending' is refused (no double accounting)
    assert not await ledger.fail(c.delivery.id, "late", clock())


async def test_uncertain_is_resent_at_most_once(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    await ledger.add([NewDelivery("digest", "d", Destination(1), BODY)], clock())
    [c] = await ledger.claim("w", 1, clock())
    await ledger.mark_uncertain(c.delivery.id, "timed out", clock(), resend=True,
                                uncertain_count=c.delivery.uncertain_count)
    [c2] = await ledger.claim("w", 1, clock())
    assert c2.delivery.uncertain_count == 1
    await ledger.mark_uncertain(c2.delivery.id, "timed out", clock(), resend=True,
                                uncertain_count=c2.delivery.uncertain_count)
    final = await ledger.get(c.delivery.id)
    assert final is not None
    assert final.state is DeliveryState.UNCERTAIN


@pytest.mark.parametrize("resend", [True, False])
async def test_claims_of_a_worker_whose_heartbeat_expired_are_settled(
    db: Database, clock: Clock, resend: bool
) -> None:
    ledger, workers = DeliveryLedger(db), WorkerRegistry(db)
    lease = timedelta(seconds=30)
    await ledger.add([NewDelivery("digest", "d", Destination(i), BODY) for i in (1, 2)], clock())
    await workers.register("crashed", "all", clock())
    await ledger.claim("crashed", 1, clock())
    clock.advance(timedelta(seconds=29))  # its heartbeat is still fresh: hands off
    assert await ledger.recover_orphans("sweeper", clock(), resend=resend,
                                        live_since=clock() - lease) == 0
    clock.advance(timedelta(seconds=2))
    assert await ledger.recover_orphans("sweeper", clock(), resend=resend,
                                        live_since=clock() - lease) == 1
    counts = await ledger.counts()
    if resend:
        assert counts == {"pending": 2}
    else:
        assert counts == {"pending": 1, "uncertain": 1}


async def test_a_worker_keeps_the_claims_it_holds_and_a_stopped_one_is_dead_at_once(
    db: Database, clock: Clock
) -> None:
    ledger, workers = DeliveryLedger(db), WorkerRegistry(db)
    await ledger.add([NewDelivery("digest", "d", Destination(i), BODY) for i in (1, 2, 3)],
                     clock())
    await workers.register("me", "all", clock())
    await workers.register("left", "all", clock())
    [held] = await ledger.claim("me", 1, clock())
    await ledger.claim("left", 1, clock())
    clock.advance(timedelta(hours=1))  # every heartbeat long expired, mine included
    await workers.stopped("left", clock())
    tokens = {held.delivery.claim_token or ""}
    assert await ledger.recover_orphans("me", clock(), resend=True, held=lambda: tokens,
                                        live_since=clock() - timedelta(hours=2)) == 1
    states = {r.destination.chat_id: (r.state, r.claimed_by) for r in await ledger.rows()}
    assert states == {1: (DeliveryState.SENDING, "me"), 2: (DeliveryState.PENDING, None),
                      3: (DeliveryState.PENDING, None)}
    # A claim whose commit the worker never heard of (its connection died) is held by
    # nobody: the worker's own next recovery settles it.
    await ledger.claim("me", 1, clock(), token="lost-with-the-connection")
    assert await ledger.recover_orphans("me", clock(), resend=True, held=lambda: tokens,
                                        live_since=clock() - timedelta(hours=2)) == 1
    assert (await ledger.counts()) == {"sending": 1, "pending": 2}


async def test_an_exclusive_owner_settles_every_other_workers_claims_at_once(
    db: Database, clock: Clock
) -> None:
    """SQLite: the process holding the file lock knows every other worker is dead."""
    ledger, workers = DeliveryLedger(db), WorkerRegistry(db)
    await ledger.add([NewDelivery("digest", "d", Destination(i), BODY) for i in (1, 2)], clock())
    await workers.register("killed", "all", clock())
    await ledger.claim("killed", 2, clock())
    assert await ledger.recover_orphans("restarted", clock(), resend=False,
                                        live_since=None) == 2
    assert await ledger.counts() == {"uncertain": 2}


async def test_a_worker_frozen_past_its_lease_cannot_settle_a_row_taken_over(
    db: Database, clock: Clock
) -> None:
    ledger, workers = DeliveryLedger(db), WorkerRegistry(db)
    await ledger.add([NewDelivery("digest", "d", Destination(1), BODY)], clock())
    await workers.register("frozen", "all", clock())
    [old] = await ledger.claim("frozen", 1, clock())
    clock.advance(timedelta(minutes=2))
    await workers.register("alive", "all", clock())
    assert await ledger.recover_orphans("alive", clock(), resend=True,
                                        live_since=clock() - timedelta(seconds=30)) == 1
    [new] = await ledger.claim("alive", 1, clock())
    assert new.delivery.claim_token != old.delivery.claim_token
    # The frozen worker wakes up and tries every way of settling its old claim.
    stale = old.delivery.claim_token
    assert not await ledger.fail(old.delivery.id, "late", clock(), token=stale)
    assert not await ledger.requeue(old.delivery.id, clock(), clock(), token=stale)
    assert not await ledger.mark_uncertain(old.delivery.id, "t", clock(), resend=True,
                                           uncertain_count=0, token=stale)
    assert not await ledger.part_sent(old.delivery.id, 1, True, clock(), token=stale)
    assert not await ledger.retarget(old.delivery.id, 99, clock(), token=stale)
    await ledger.parts_sent([(old.delivery.id, stale or "", 1, True)], clock())
    row = await ledger.get(old.delivery.id)
    assert row is not None
    assert (row.state, row.claimed_by, row.destination.chat_id) == (
        DeliveryState.SENDING, "alive", 1)
    # The worker that took it over settles it normally.
    await ledger.parts_sent([(new.delivery.id, new.delivery.claim_token or "", 1, True)],
                            clock())
    row = await ledger.get(old.delivery.id)
    assert row is not None and row.state is DeliveryState.SENT


async def test_fail_unsent_for_chat_and_cancel(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    await ledger.add([NewDelivery("alert", f"k{i}", Destination(5), BODY) for i in range(3)]
                     + [NewDelivery("broadcast", "b1", Destination(i), CopyPayload(1, 2))
                        for i in (6, 7)], clock())
    assert await ledger.fail_unsent_for_chat(5, "blocked", clock()) == 3
    assert await ledger.cancel("broadcast", "b1", clock()) == 2
    assert await ledger.counts(kind="broadcast") == {"cancelled": 2}


async def test_two_databases_handles_claim_disjoint_rows(open_db: OpenDb, clock: Clock) -> None:
    """Two processes (two engines) claiming from one database never share a row."""
    first, second = await open_db(), await open_db()
    await DeliveryLedger(first).add(
        [NewDelivery("digest", "d", Destination(i), BODY) for i in range(1, 201)], clock())
    one, two = DeliveryLedger(first), DeliveryLedger(second)
    got: list[int] = []

    async def worker(ledger: DeliveryLedger, name: str) -> None:
        while batch := await ledger.claim(name, 7, clock()):
            got.extend(c.delivery.id for c in batch)
            await asyncio.sleep(0)

    await asyncio.gather(worker(one, "a"), worker(two, "b"), worker(one, "c"),
                         worker(two, "d"))
    assert len(got) == 200
    assert len(set(got)) == 200


async def test_stats(db: Database, clock: Clock) -> None:
    ledger = DeliveryLedger(db)
    stats = StatsQueries(db)
    old = clock()
    await ledger.add([NewDelivery("digest", "old", Destination(1), BODY)], old)
    [stale] = await ledger.claim("w", 1, old)
    await ledger.fail(stale.delivery.id, "400", old)
    clock.advance(timedelta(days=3))
    await ledger.add([NewDelivery("digest", "new", Destination(i), BODY) for i in (1, 2, 3)]
                     + [NewDelivery("alert", "a", Destination(1), BODY)], clock())
    [c] = await ledger.claim("w", 1, clock())
    await ledger.part_sent(c.delivery.id, 2, True, clock())
    day = await stats.last_day(clock())
    week = await stats.last_week(clock())
    assert day.total() == 4
    assert week.total() == 5
    assert week.total(kind="digest") == 4
    assert day.total(state="sent") == 1
    assert await stats.queue_depth() == {"pending": 3, "sending": 0}


async def test_known_stories(db: Database, clock: Clock) -> None:
    known = KnownStoryStore(db)
    t0 = clock()
    assert await known.is_empty()
    await known.remember([("a", t0), ("b", t0)], clock())
    assert not await known.is_empty()
    t1 = t0 + timedelta(hours=1)
    assert await known.unseen([("a", t0), ("a", t1), ("c", t0)]) == [("a", t1), ("c", t0)]
    await known.remember([("a", t1), ("b", t0 - timedelta(hours=1))], clock())
    assert await known.known(["a", "b"]) == {"a": t1, "b": t0}
