"""A reader's reply refused with 429 waits ``retry_after`` before it is sent again: resent
at once, it would only draw another 429 (and Telegram lengthens the wait for that)."""

from __future__ import annotations

import asyncio

import pytest
from telegram.error import RetryAfter

from bot.delivery import LaneRateLimiter
from tests.delivery.helpers import VirtualTime


async def test_a_reader_reply_refused_with_429_is_resent_after_retry_after() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(100.0, per_chat_per_second=100.0, burst=1.0, retry_margin=0.1,
                         clock=vt.clock, sleep=vt.sleep)
    attempts: list[float] = []  # when each attempt of the refused reply reached "Telegram"
    other_chat: list[float] = []

    async def refused_once() -> bool:
        attempts.append(vt.now)
        if len(attempts) == 1:
            raise RetryAfter(2)
        return True

    async def another_reader() -> None:
        await vt.sleep(0.5)

        async def send() -> bool:
            other_chat.append(vt.now)
            return True

        await rl.process_request(send, (), {}, "sendMessage", {"chat_id": 8}, None)

    reply = rl.process_request(refused_once, (), {}, "sendMessage", {"chat_id": 7}, None)
    sent, _ = await vt.run(asyncio.gather(reply, another_reader()))
    assert sent is True
    assert len(attempts) == 2 and rl.retries == 1
    assert attempts[0] == 0.0
    assert attempts[1] == pytest.approx(2.1, abs=0.05)  # retry_after plus the margin
    assert other_chat == [pytest.approx(0.5, abs=0.05)]  # another chat is not held up
