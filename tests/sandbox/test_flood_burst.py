"""The sandbox's Telegram flood model: a per-chat burst of three, then one a second."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram import Bot
from telegram.error import RetryAfter

from bot.sandbox import FloodLimits, SandboxServer
from bot.sandbox.flood import FloodControl

USER = 777


def admitted(flood: FloodControl, times: list[float], chat: int = 42, *,
             is_group: bool = False) -> list[int | None]:
    """What the model answers at each of ``times``: None (sent) or the seconds to wait."""
    return [flood.check(t, chat, is_group=is_group) for t in times]


def test_telegram_model_lets_three_through_then_one_a_second() -> None:
    flood = FloodControl(FloodLimits.telegram())
    assert admitted(flood, [0.0, 0.1, 0.2]) == [None, None, None]
    assert admitted(flood, [0.3]) == [1]  # the fourth at once is refused
    assert admitted(flood, [1.0, 1.5, 2.0]) == [None, 1, None]  # then one a second
    assert flood.refused == 2
    assert admitted(flood, [0.3], chat=43) == [None]  # other chats have their own budget


def test_the_burst_comes_back_after_a_quiet_spell_but_never_grows() -> None:
    flood = FloodControl(FloodLimits.telegram())
    assert admitted(flood, [0.0, 0.0, 0.0]) == [None, None, None]
    # three quiet seconds refill three messages, and thirty seconds no more than that
    assert admitted(flood, [3.0, 3.0, 3.0, 3.0]) == [None, None, None, 1]
    assert admitted(flood, [40.0, 40.0, 40.0, 40.0]) == [None, None, None, 1]


def test_a_refused_call_uses_up_nothing() -> None:
    flood = FloodControl(FloodLimits.telegram())
    admitted(flood, [0.0, 0.0, 0.0])
    assert admitted(flood, [0.5] * 5) == [1] * 5
    assert admitted(flood, [1.0]) == [None]


def test_a_group_keeps_twenty_a_minute_as_well() -> None:
    flood = FloodControl(FloodLimits.telegram())
    times = [0.0, 0.0, 0.0] + [float(s) for s in range(1, 18)]  # twenty, within the budget
    assert admitted(flood, times, chat=-100, is_group=True) == [None] * 20
    wait = flood.check(30.0, -100, is_group=True)
    assert wait is not None and 29 <= wait <= 30
    assert flood.check(60.0, -100, is_group=True) is None


def test_without_a_burst_the_per_chat_limit_is_a_one_second_window() -> None:
    flood = FloodControl(FloodLimits(per_chat_per_second=2))
    # the window slides: at 1.05 the call at 0.1 still counts, at 1.1 it no longer does
    assert admitted(flood, [0.0, 0.1, 0.2, 1.0, 1.05, 1.1]) == [None, None, 1, None, 1, None]


def test_a_burst_below_one_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="per_chat_burst must be at least 1"):
        FloodLimits(per_chat_per_second=1, per_chat_burst=0)


async def test_the_server_answers_429_on_the_fourth_message_in_a_second(
    bot: Bot, server: SandboxServer
) -> None:
    await server.user_message("hello", user_id=USER)
    server.set_flood_limits(FloodLimits.telegram())
    for text in ("one", "two", "three"):
        await bot.send_message(USER, text)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(USER, "four")
    assert info.value.retry_after == timedelta(seconds=1)
    assert [m.text for m in server.bot_messages(USER)] == ["one", "two", "three"]
    assert server.flood_refusals == 1
