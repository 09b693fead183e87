"""Sends in flight follow the rate, the measured round trip and what a row spends around it
(its commit); a fleet member's share of the rate can change; a bulk 429 is reported for
the fleet to share."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram.error import RetryAfter

from bot.delivery import BULK, LaneRateLimiter, Sender
from bot.delivery.group_commit import ProgressCommitter
from bot.sandbox import SandboxServer
from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
    SubscriptionStore,
)
from tests.delivery.helpers import VirtualTime, fast_settings

ONE = MessagesPayload((MessagePart("<b>Briefing</b> for you"),))


async def _bulk(rl: LaneRateLimiter, vt: VirtualTime, chat: int, log: list[float],
                took: float = 0.0) -> None:
    async def callback() -> bool:
        await vt.sleep(took)
        log.append(vt.now)
        return True

    await rl.process_request(callback, (), {}, "sendMessage", {"chat_id": chat}, BULK)


async def test_the_limiter_measures_the_round_trip_of_bulk_calls() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(50.0, clock=vt.clock, sleep=vt.sleep)
    log: list[float] = []
    await vt.run(asyncio.gather(*[_bulk(rl, vt, c, log, took=0.12) for c in range(40)]))
    assert rl.bulk_latency == pytest.approx(0.12, abs=1e-6)


async def test_a_new_share_of_the_rate_takes_effect_at_once() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(20.0, clock=vt.clock, sleep=vt.sleep, burst=1.0)
    log: list[float] = []
    await vt.run(asyncio.gather(*[_bulk(rl, vt, c, log) for c in range(40)]))
    assert log[-1] == pytest.approx(1.95, abs=0.06)  # 40 at 20/s
    rl.set_rate(10.0)  # a second worker joined: half each
    log.clear()
    start = vt.now
    await vt.run(asyncio.gather(*[_bulk(rl, vt, c, log) for c in range(100, 140)]))
    assert log[-1] - start == pytest.approx(3.95, abs=0.11)  # 40 at 10/s


async def test_only_a_bulk_429_is_reported_for_the_fleet() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(100.0, clock=vt.clock, sleep=vt.sleep)
    pauses: list[float] = []
    rl.on_bulk_pause = pauses.append
    refused = {"bulk": True, "interactive": True}

    async def once(lane: str) -> None:
        async def callback() -> bool:
            if refused[lane]:
                refused[lane] = False
                raise RetryAfter(2)
            return True

        await rl.process_request(callback, (), {}, "sendMessage", {"chat_id": 5},
                                 BULK if lane == "bulk" else None)

    await vt.run(once("interactive"))
    assert pauses == []
    await vt.run(once("bulk"))
    assert pauses == [pytest.approx(2.1)]


@dataclass
class _Limiter:
    rate: float
    bulk_latency: float | None


@dataclass
class _Bot:
    rate_limiter: _Limiter


@pytest.mark.parametrize(("rate", "latency", "cap", "expected"), [
    (25.0, 0.1, 200, 9),  # a few: more would only hold claims
    (1000.0, 0.15, 200, 377),  # the cap decides
    (1000.0, 0.1, 500, 252),  # enough for 1,000/s 100 ms away, slots refilled in batches
    (1000.0, None, 500, 377),  # before a measurement: assume 150 ms
    (28.0, 0.5, 4, 4),
])
async def test_sends_in_flight_follow_rate_and_round_trip(
    tmp_path: Path, rate: float, latency: float | None, cap: int, expected: int
) -> None:
    bot: Any = _Bot(_Limiter(rate, latency))
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    sender = Sender(db, bot, fast_settings(concurrency=cap))
    await db.close()
    assert sender.inflight_target() == min(cap, expected)


async def test_a_rows_commit_counts_in_how_many_sends_are_kept_in_flight(
        db: Database, clock: Any, sandbox: SandboxServer, make_bot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Each sent row waits 50 ms for its commit, holding its slot: at 1,000/s the sender
    # must keep about 1,000 x 50 ms more sends in flight than the round trip alone needs,
    # or the commits, not the rate, would set the pace.
    subs = SubscriptionStore(db)
    items = []
    for chat in range(9001, 9021):
        sandbox.add_chat(chat, "private")
        sub = await subs.subscribe(Destination(chat), "private", time(8), ZoneInfo("UTC"),
                                   clock())
        items.append(NewDelivery("digest", "2025-03-10", Destination(chat), ONE, sub.id))
    await DeliveryLedger(db).add(items, clock())
    commit = ProgressCommitter._commit

    async def slow_commit(self: ProgressCommitter, *args: Any) -> None:
        await asyncio.sleep(0.05)
        await commit(self, *args)

    monkeypatch.setattr(ProgressCommitter, "_commit", slow_commit)
    bot = await make_bot()
    sender = Sender(db, bot, fast_settings(concurrency=1000), clock=clock)
    assert await sender.drain() == 20
    assert sender.row_overhead is not None and sender.row_overhead >= 0.05
    # the round trip to the local sandbox is a few ms: alone it asks for a few dozen
    round_trip = bot.rate_limiter.bulk_latency
    assert sender.inflight_target() >= min(1000, math.ceil(1000 * (round_trip + 0.05) * 2.5))
