"""LaneRateLimiter in virtual time: budget, lanes, per-chat/group spacing, 429 pauses."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.delivery import BULK, LaneRateLimiter
from tests.delivery.helpers import VirtualTime

Log = list[tuple[float, str, Any]]


def limiter(vt: VirtualTime, rate: float = 10.0, **kwargs: Any) -> LaneRateLimiter:
    kwargs.setdefault("burst", 1.0)
    return LaneRateLimiter(rate, clock=vt.clock, sleep=vt.sleep, **kwargs)


async def call(rl: LaneRateLimiter, vt: VirtualTime, log: Log, chat: Any, *, bulk: bool,
               endpoint: str = "sendMessage") -> Any:
    lane = "bulk" if bulk else "interactive"

    async def callback() -> bool:
        log.append((vt.now, lane, chat))
        return True

    return await rl.process_request(callback, (), {}, endpoint, {"chat_id": chat},
                                    BULK if bulk else None)


def max_in_window(times: list[float], window: float) -> int:
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(1 for t in times[i:] if t < start + window - 1e-9))
    return best


async def test_global_budget_is_respected() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=10.0)
    log: Log = []
    await vt.run(asyncio.gather(*[call(rl, vt, log, i, bulk=i % 2 == 0) for i in range(1, 51)]))
    times = sorted(t for t, _, _ in log)
    assert len(times) == 50
    assert max_in_window(times, 1.0) <= 11  # rate + burst
    assert times[-1] == pytest.approx(4.9, abs=0.05)


async def test_interactive_calls_jump_the_bulk_queue() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=10.0)
    log: Log = []

    async def late_interactive() -> None:
        await vt.sleep(1.05)
        await asyncio.gather(*[call(rl, vt, log, 999, bulk=False) for _ in range(3)])

    await vt.run(asyncio.gather(late_interactive(),
                                *[call(rl, vt, log, i, bulk=True) for i in range(1, 41)]))
    interactive = [t for t, lane, _ in log if lane == "interactive"]
    assert len(interactive) == 3
    # three tokens at 10/s: the last reply is out 0.3 s after arrival, not after 40 bulk sends
    assert max(interactive) <= 1.05 + 0.31
    # no bulk call started while an interactive one waited
    first, last = min(interactive), max(interactive)
    assert not [t for t, lane, _ in log if lane == "bulk" and first < t < last]
    # an interactive reply of 3 parts to one chat is not per-chat throttled
    assert last - first < 1.0


async def test_bulk_keeps_per_chat_spacing_interactive_does_not() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0, per_chat_per_second=1.0)
    log: Log = []
    await vt.run(asyncio.gather(*[call(rl, vt, log, 42, bulk=True) for _ in range(4)],
                                *[call(rl, vt, log, 7, bulk=True) for _ in range(2)]))
    chat42 = [t for t, _, c in log if c == 42]
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(chat42))
    chat7 = [t for t, _, c in log if c == 7]
    assert chat7[0] < 0.1  # other chats are not held behind chat 42
    log.clear()
    start = vt.now
    await vt.run(asyncio.gather(*[call(rl, vt, log, 43, bulk=False) for _ in range(3)]))
    assert max(t for t, _, _ in log) - start < 0.05


async def test_bulk_keeps_group_window() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0, per_chat_per_second=1.0, per_group_per_minute=20)
    log: Log = []
    await vt.run(asyncio.gather(*[call(rl, vt, log, -100123, bulk=True) for _ in range(22)]))
    times = [t for t, _, _ in log]
    assert max_in_window(times, 60.0) <= 20
    assert times[20] >= 60.0 - 1e-9
    assert times[19] == pytest.approx(19.0, abs=0.05)


async def test_retry_after_pauses_all_bulk_and_resends() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0, per_chat_per_second=100.0, retry_margin=0.1)
    log: Log = []
    flooded = {"left": 1}

    async def flaky() -> bool:
        log.append((vt.now, "bulk", 1))
        if flooded["left"]:
            flooded["left"] -= 1
            raise RetryAfter(2)
        return True

    async def others() -> None:
        await vt.sleep(0.5)
        await asyncio.gather(*[call(rl, vt, log, c, bulk=True) for c in range(10, 15)],
                             call(rl, vt, log, 99, bulk=False))

    async def first() -> Any:
        return await rl.process_request(flaky, (), {}, "sendMessage", {"chat_id": 1}, BULK)

    result, _ = await vt.run(asyncio.gather(first(), others()))
    assert result is True
    assert rl.retries == 1
    bulk_after = [t for t, lane, c in log if lane == "bulk" and t > 0]
    assert bulk_after and min(bulk_after) >= 2.1 - 1e-9  # nothing bulk during the pause
    interactive = [t for t, lane, _ in log if lane == "interactive"]
    assert interactive == [pytest.approx(0.5, abs=0.05)]  # replies still go out


async def test_retries_are_bounded() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0, max_retries=2)

    async def always() -> bool:
        raise RetryAfter(1)

    with pytest.raises(RetryAfter):
        await vt.run(rl.process_request(always, (), {}, "sendMessage", {"chat_id": 5}, BULK))
    assert rl.retries == 2


async def test_reads_are_not_limited() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=1.0)
    log: Log = []
    await vt.run(asyncio.gather(*[call(rl, vt, log, None, bulk=True, endpoint="getMe")
                                  for _ in range(20)]))
    assert max(t for t, _, _ in log) == 0.0


async def test_holds_up_above_280_calls_per_second_in_real_time() -> None:
    rl = LaneRateLimiter(300.0, per_chat_per_second=1.0)
    sent = 0

    async def callback() -> bool:
        nonlocal sent
        sent += 1
        return True

    async def one(i: int) -> None:
        await rl.process_request(callback, (), {}, "sendMessage", {"chat_id": i + 1},
                                 BULK if i % 3 else None)

    start = time.monotonic()
    await asyncio.gather(*[one(i) for i in range(600)])
    elapsed = time.monotonic() - start
    await rl.shutdown()
    assert sent == 600
    assert 600 / elapsed >= 280
    assert elapsed >= 1.8  # and never above the budget (600 at 300/s plus a small burst)
