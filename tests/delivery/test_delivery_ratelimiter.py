"""LaneRateLimiter in virtual time: budget, lanes, per-chat/group budgets, 429 handling."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.delivery import BULK, LaneRateLimiter
from bot.sandbox.flood import FloodControl, FloodLimits
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


async def test_bulk_keeps_per_chat_spacing_and_a_short_reply_goes_at_once() -> None:
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

    start, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*[one(i) for i in range(600)])
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    await rl.shutdown()
    assert sent == 600
    assert elapsed >= 1.8  # never above the budget (600 at 300/s plus a small burst)
    # It keeps up: little CPU per call (the wall clock is the machine's, which other work
    # may slow; the benchmarks measure rates), and no long oversleep even so.
    assert cpu / 600 < 0.002
    assert 600 / elapsed >= 200


def telegram_refusals(log: Log) -> int:
    """How many of the logged calls Telegram's flood model (the sandbox's) would refuse."""
    flood = FloodControl(FloodLimits.telegram())
    for when, _, chat in sorted(log, key=lambda entry: entry[0]):
        # a call reaches Telegram a moment after it was granted (and float sums wobble)
        flood.check(when + 1e-6, chat, is_group=chat < 0)
    return flood.refused


async def test_replies_get_a_burst_of_three_then_one_a_second_per_chat() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0)
    log: Log = []

    async def story(chat: int, parts: int) -> None:
        for _ in range(parts):  # a handler sends the parts of a reply one after another
            await call(rl, vt, log, chat, bulk=False)

    await vt.run(asyncio.gather(story(42, 8), story(43, 2)))
    chat42 = [t for t, _, c in log if c == 42]
    assert chat42[2] < 0.05  # the first three at once
    assert chat42[3] == pytest.approx(1.0, abs=0.05)  # then one a second
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(chat42[3:]))
    assert max(t for t, _, c in log if c == 43) < 0.05  # another chat is not held back
    assert telegram_refusals(log) == 0


async def test_replies_keep_twenty_a_minute_per_group() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0)
    log: Log = []

    async def replies() -> None:
        for _ in range(22):
            await call(rl, vt, log, -100777, bulk=False)

    await vt.run(replies())
    times = [t for t, _, _ in log]
    assert max_in_window(times, 60.0) <= 20
    assert times[20] >= 60.0 - 1e-9
    assert telegram_refusals(log) == 0


async def test_bulk_and_replies_share_each_chats_budget() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0)
    log: Log = []

    async def reader(chat: int, parts: int, at: float) -> None:
        await vt.sleep(at)
        for _ in range(parts):
            await call(rl, vt, log, chat, bulk=False)

    async def fanout(chat: int, count: int) -> None:
        await asyncio.gather(*[call(rl, vt, log, chat, bulk=True) for _ in range(count)])

    await vt.run(asyncio.gather(reader(42, 3, 0.0), fanout(42, 2),
                                fanout(-1001, 3), reader(-1001, 4, 0.5)))
    bulk42 = [t for t, lane, c in log if c == 42 and lane == "bulk"]
    # the reader's burst of three used the chat's budget: bulk waits until it is whole again
    assert bulk42[0] >= 3.0 - 1e-9
    # in a group where briefings are going out, the reader's four parts are not held
    # behind them: two at once (a briefing used one of the burst), then one a second
    parts = [t for t, lane, c in log if c == -1001 and lane == "interactive"]
    assert parts[1] < 0.55 and parts[3] < 2.1
    briefings = [t for t, lane, c in log if c == -1001 and lane == "bulk"]
    assert briefings[0] < 0.05 and min(briefings[1:]) > parts[3]
    assert telegram_refusals(log) == 0


async def test_a_bulk_call_waiting_for_its_chat_does_not_hold_up_a_reply_there() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0)
    log: Log = []

    async def reply_at(at: float) -> None:
        await vt.sleep(at)
        await call(rl, vt, log, 42, bulk=False)

    await vt.run(asyncio.gather(*[call(rl, vt, log, 42, bulk=True) for _ in range(2)],
                                reply_at(0.5)))
    reply = [t for t, lane, _ in log if lane == "interactive"]
    assert reply == [pytest.approx(0.5, abs=0.02)]
    bulk = [t for t, lane, _ in log if lane == "bulk"]
    assert bulk[0] < 0.02 and bulk[1] >= 2.0 - 1e-9  # the reply took the slot at 1.0
    assert telegram_refusals(log) == 0


async def test_a_429_on_a_reply_holds_that_chat_only_and_never_pauses_bulk() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0, retry_margin=0.1)
    log: Log = []
    refusals = {"left": 1}

    async def flooded_reply() -> bool:
        log.append((vt.now, "interactive", 7))
        if refusals["left"]:
            refusals["left"] -= 1
            raise RetryAfter(2)
        return True

    async def meanwhile() -> None:
        await vt.sleep(0.5)
        await asyncio.gather(*[call(rl, vt, log, c, bulk=True) for c in range(10, 15)],
                             call(rl, vt, log, 8, bulk=False),  # another reader
                             call(rl, vt, log, 7, bulk=True))  # a briefing to the same chat

    async def first() -> Any:
        return await rl.process_request(flooded_reply, (), {}, "sendMessage",
                                        {"chat_id": 7}, None)

    result, _ = await vt.run(asyncio.gather(first(), meanwhile()))
    assert result is True
    assert rl.bulk_paused_until == float("-inf")
    assert rl.refused == {"interactive": 1, "bulk": 0}
    bulk_elsewhere = [t for t, lane, c in log if lane == "bulk" and c != 7]
    assert bulk_elsewhere and max(bulk_elsewhere) < 0.6  # bulk sending went on at once
    assert [t for t, _, c in log if c == 8] == [pytest.approx(0.5, abs=0.02)]
    to_seven = [(t, lane) for t, lane, c in log if c == 7]
    # the reply is resent after retry_after, and nothing reaches that chat before it
    assert to_seven[0] == (0.0, "interactive")
    assert to_seven[1][0] >= 2.1 - 1e-9 and to_seven[1][1] == "interactive"
    assert to_seven[2][0] >= to_seven[1][0] and to_seven[2][1] == "bulk"


async def test_a_429_on_bulk_pauses_bulk_but_not_replies() -> None:
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0, retry_margin=0.1, max_retries=0)  # then the sender's turn
    log: Log = []

    async def flooded() -> bool:
        raise RetryAfter(3)

    async def meanwhile() -> None:
        await vt.sleep(0.5)
        await asyncio.gather(call(rl, vt, log, 20, bulk=True), call(rl, vt, log, 21, bulk=False))

    async def first() -> None:
        with pytest.raises(RetryAfter):
            await rl.process_request(flooded, (), {}, "sendMessage", {"chat_id": 1}, BULK)

    await vt.run(asyncio.gather(first(), meanwhile()))
    assert rl.bulk_paused_until == pytest.approx(3.1)
    assert rl.refused == {"interactive": 0, "bulk": 1}
    assert [t for t, _, c in log if c == 20] == [pytest.approx(3.1, abs=0.02)]
    assert [t for t, _, c in log if c == 21] == [pytest.approx(0.5, abs=0.02)]


async def test_a_chat_is_charged_when_telegram_may_have_counted_the_call() -> None:
    # Telegram counts a call when it arrives, somewhere between our start and its answer.
    # A first reply that crawls there and a fourth that flies must still arrive a second
    # after the first three.
    vt = VirtualTime()
    rl = limiter(vt, rate=100.0)
    log: Log = []
    latencies = iter([0.4, 0.0, 0.0, 0.0, 0.0])

    async def reply() -> bool:
        await vt.sleep(next(latencies))
        log.append((vt.now, "interactive", 42))  # arrival at Telegram
        return True

    async def story() -> None:
        for _ in range(5):
            await rl.process_request(reply, (), {}, "sendMessage", {"chat_id": 42}, None)

    await vt.run(story())
    assert len(log) == 5
    assert telegram_refusals(log) == 0


async def test_a_token_a_briefing_could_not_use_goes_back_to_the_budget() -> None:
    # The second briefing to chat 42 gets its global token at 3.0, just as the reader's
    # reply (sent at 2.0) has moved that chat's budget on: it must give the token back,
    # not waste a whole second of the fan-out's budget.
    vt = VirtualTime()
    rl = limiter(vt, rate=1.0)
    log: Log = []

    async def at(when: float, chat: int, *, bulk: bool) -> None:
        await vt.sleep(when)
        await call(rl, vt, log, chat, bulk=bulk)

    await vt.run(asyncio.gather(at(0.0, 42, bulk=True), at(0.0, 42, bulk=True),
                                at(1.0, 9, bulk=True), at(1.1, 42, bulk=False),
                                at(3.5, 8, bulk=True)))
    times = sorted(t for t, _, _ in log)
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=0.01)  # one a second
    assert rl.granted == {"interactive": 1, "bulk": 4}
    assert telegram_refusals(log) == 0
