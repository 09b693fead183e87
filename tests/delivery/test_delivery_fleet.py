"""A fleet on one database keeps one flood budget: rate shares, a shared bulk pause, and
per-chat / per-group spacing across processes."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import DeliverySettings
from bot.delivery import LaneRateLimiter
from bot.delivery.fleet import FleetBudget, fleet_share
from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
)
from bot.storage.ledger import ChatSpacing
from bot.storage.retry import DatabaseRetry
from bot.storage.workers import WorkerRegistry
from tests.database_fixtures import Clock

BODY = MessagesPayload((MessagePart("<b>Hi</b>"),))
SPACING = ChatSpacing(timedelta(seconds=1), 20)


async def test_each_live_delivery_worker_takes_its_share_and_a_pause_reaches_all(
    db: Database, clock: Clock
) -> None:
    workers = WorkerRegistry(db)
    for name, role in (("a", "delivery"), ("b", "delivery"), ("c", "all"), ("u", "updates")):
        await workers.register(name, role, clock())
    await workers.register("dead", "delivery", clock() - timedelta(minutes=5))
    # killed 20 s ago: its rows wait for the lease (30 s), its share of the rate does not
    await workers.register("killed", "delivery", clock() - timedelta(seconds=20))
    settings = DeliverySettings(rate_per_second=27.0)
    mine, theirs = LaneRateLimiter(27.0), LaneRateLimiter(27.0)
    here = FleetBudget(db, mine, settings, clock, DatabaseRetry(10))
    there = FleetBudget(db, theirs, settings, clock, DatabaseRetry(10))
    await here.refresh()
    assert here.workers == 3 and mine.rate == pytest.approx(9.0)  # updates, dead: no share
    # A 429 on a bulk send here pauses bulk sending there at its next refresh.
    mine.pause_bulk(5.0)
    assert mine.on_bulk_pause is not None
    mine.on_bulk_pause(5.0)
    await here.shared()  # the pause is written
    await there.refresh()
    assert theirs.bulk_paused_until - time.monotonic() == pytest.approx(5.0, abs=0.5)


@given(rate=st.floats(1.0, 30.0), workers=st.integers(2, 12))
def test_a_fleets_shares_never_fill_a_second_beyond_the_rate_and_one_message(
        rate: float, workers: int) -> None:
    """Each worker may start a second with a whole token: the most calls the fleet can put
    into one second is workers × ⌈share⌉, which must leave Telegram's cap (the configured
    rate is set below it) a message of room for the network's jitter."""
    share = fleet_share(rate, workers)
    assert 0 < share <= rate / workers
    if share >= 1:
        assert workers * math.ceil(share) <= rate + 1e-9
        assert workers * share > rate - workers  # gives up less than 1/s per worker


def test_three_workers_at_28_per_second_cannot_reach_telegrams_30() -> None:
    assert fleet_share(28.0, 1) == 28.0
    assert fleet_share(28.0, 3) == 9.0  # 27 together; at 28/3 a second could hold 30


async def test_a_chat_gets_one_message_at_a_time_across_the_fleet(
    db: Database, clock: Clock
) -> None:
    ledger = DeliveryLedger(db)
    now = clock()
    await ledger.add([NewDelivery("digest", "d", Destination(1), BODY),
                      NewDelivery("alert", "k", Destination(1), BODY),
                      NewDelivery("digest", "d", Destination(2), BODY)], now)
    first = await ledger.claim("a", 10, now, spacing=SPACING)
    # One row per chat per claim is not promised, but another worker never gets chat 1
    # while a message to it is in flight, nor within the per-chat interval after it.
    taken = {c.delivery.id for c in first}
    second = await ledger.claim("b", 10, now, spacing=SPACING)
    assert not {c.delivery.destination.chat_id for c in second} & {
        c.delivery.destination.chat_id for c in first}
    for c in first:
        await ledger.part_sent(c.delivery.id, 1, True, now, token=c.delivery.claim_token)
    left = [r for r in await ledger.rows() if r.id not in taken and r.state.value == "pending"]
    if left:  # the second message to chat 1 waits out the interval
        assert await ledger.claim("b", 10, now + timedelta(seconds=0.5), spacing=SPACING) == []
        later = await ledger.claim("b", 10, now + timedelta(seconds=1.5), spacing=SPACING)
        assert [c.delivery.id for c in later] == [r.id for r in left]


async def test_a_group_that_had_its_twenty_messages_this_minute_waits(
    db: Database, clock: Clock
) -> None:
    ledger = DeliveryLedger(db)
    now = clock()
    group = -100500
    await ledger.add([NewDelivery("digest", "d", Destination(group, topic), BODY)
                      for topic in range(1, 22)], now)
    for step in range(20):
        at = now + timedelta(seconds=1.1 * step)
        [claimed] = await ledger.claim("a", 1, at, spacing=SPACING)
        await ledger.part_sent(claimed.delivery.id, 1, True, at,
                               token=claimed.delivery.claim_token)
    at = now + timedelta(seconds=1.1 * 20)
    assert await ledger.claim("b", 1, at, spacing=SPACING) == []  # 20 in the last minute
    assert len(await ledger.claim("b", 1, now + timedelta(seconds=61), spacing=SPACING)) == 1
