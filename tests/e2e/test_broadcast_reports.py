"""Broadcast reports add up to the audience and match what the chats received.

Each destination is counted once, by where its message ended (sent, blocked, failed,
cancelled); "may have received it twice" is said beside the states. The progress job does
not re-send a status text that did not change.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.faults import Fault, FaultKind
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from tests.e2e.conftest import ADMIN
from tests.e2e.harness import FakeClock, Harness

SUBSCRIBERS = list(range(5001, 5013))
READ_TIMEOUT = 5.0  # the bot's HTTP read timeout: a slower answer is "uncertain"


async def _harness(story_folder: Path, tmp_path: Path, **delivery: Any) -> Harness:
    server = SandboxServer()
    await server.start()
    server.add_chat(ADMIN, "private")
    harness = Harness(server, story_folder, tmp_path,
                      FakeClock(datetime(2025, 4, 2, 12, 0, tzinfo=UTC)), **delivery)
    await harness.start()
    for chat_id in SUBSCRIBERS:
        await harness.subscribe(chat_id, time(7, 0))
    return harness


@pytest.fixture
async def bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await _harness(story_folder, tmp_path)
    try:
        yield harness
    finally:
        await harness.stop()
        await harness.server.stop()


@pytest.fixture
async def slow_bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    """4 bulk messages a second, at most 2 in flight: a cancel can catch some mid-air."""
    harness = await _harness(story_folder, tmp_path, rate_per_second=4.0, concurrency=2)
    try:
        yield harness
    finally:
        await harness.stop()
        await harness.server.stop()


async def say(bot: Harness, text: str) -> StoredMessage:
    """The admin's last message from the bot once it has handled ``text``."""
    return (await bot.say(text))[-1]


def status(bot: Harness) -> StoredMessage | None:
    return next((m for m in reversed(bot.received(ADMIN)) if "Broadcast #" in m.text), None)


def status_text(bot: Harness) -> str:
    message = status(bot)
    return message.text if message is not None else ""


async def start(bot: Harness, text: str) -> None:
    """Draft a broadcast, wait for its panel, press "Send"."""
    await say(bot, f"/broadcast {text}")
    await bot.until(lambda: "Nothing is sent" in status_text(bot))
    panel = status(bot)
    assert panel is not None
    pressed = await bot.server.press_button(ADMIN, panel.message_id,
                                            text=f"📣 Send to {len(SUBSCRIBERS)}",
                                            user_id=ADMIN, timeout=10)
    assert pressed.answer is not None


async def final_report(bot: Harness) -> str:
    await bot.until(lambda: re.search(r"done in|cancelled by the admin after",
                                      status_text(bot)) is not None)
    return status_text(bot)


def got(bot: Harness, text: str) -> Counter[int]:
    return Counter(chat for chat in SUBSCRIBERS for m in bot.received(chat) if m.text == text)


def states(report: str) -> dict[str, int]:
    """``12 destinations — 7 sent, 4 blocked, 1 failed`` as numbers, checked to add up."""
    found = re.search(r"(\d+) destinations? — ([^.\n]+)", report)
    assert found is not None, report
    counts = {label.split()[0]: int(n)
              for n, label in (part.split(" ", 1) for part in found.group(2).split(", "))}
    assert sum(counts.values()) == int(found.group(1)), report
    return counts


def edits_of_status(bot: Harness, since: int = 0) -> list[Any]:
    return [c for c in bot.server.calls("editMessageText", since=since) if c.chat_id == ADMIN]


async def test_blocked_and_failed_chats_add_up_to_the_audience(bot: Harness) -> None:
    gone = {5001: Fault(FaultKind.FORBIDDEN), 5002: Fault(FaultKind.FORBIDDEN),
            5003: Fault(FaultKind.BAD_REQUEST),  # chat not found
            5004: Fault(FaultKind.FORBIDDEN, description="Forbidden: user is deactivated")}
    for chat_id, fault in gone.items():
        fault.chat_id, fault.method, fault.times = chat_id, "sendMessage", None
        bot.server.inject(fault)
    bot.server.inject(Fault(FaultKind.BAD_REQUEST, method="sendMessage", chat_id=5005,
                            description="Bad Request: message is too long", times=None))
    await start(bot, "Counted once")
    report = await final_report(bot)
    assert "12 destinations — 7 sent, 4 blocked, 1 failed." in report
    assert states(report) == {"sent": 7, "blocked": 4, "failed": 1}
    assert "twice" not in report
    assert got(bot, "Counted once") == Counter({c: 1 for c in SUBSCRIBERS[5:]})
    for chat_id in SUBSCRIBERS[:5]:
        subscription = await bot.services.subscriptions.get(Destination(chat_id))
        assert subscription is not None and subscription.active == (chat_id not in gone)

    listing = await say(bot, "/broadcasts")
    assert "#1 done" in listing.text
    assert states(listing.text) == {"sent": 7, "blocked": 4, "failed": 1}
    figures = await say(bot, "/stats")
    assert ("Last 24 h: 12 messages (12 broadcast messages) — 7 sent, 4 blocked, 1 failed. "
            "Subscriptions lost (blocked/removed): 4.") in figures.text


async def test_a_timeout_then_resend_is_reported_as_possibly_twice(bot: Harness) -> None:
    # Answered after the bot stopped waiting: the message is stored, the bot resends it.
    bot.server.inject(Fault(FaultKind.SLOW, method="sendMessage", chat_id=5006,
                            delay=READ_TIMEOUT + 0.5))
    await start(bot, "Maybe twice")
    report = await final_report(bot)
    await bot.until(lambda: got(bot, "Maybe twice")[5006] == 2)
    assert got(bot, "Maybe twice") == Counter({c: 2 if c == 5006 else 1 for c in SUBSCRIBERS})
    assert states(report) == {"sent": 12}
    assert "\n1 may have received it twice (delivery uncertain, resent)." in report
    listing = await say(bot, "/broadcasts")
    assert "1 may have received it twice" in listing.text
    figures = await say(bot, "/stats")
    assert "1 may have arrived twice (delivery uncertain, resent)" in figures.text


async def test_a_cancel_counts_the_messages_in_flight_where_they_end(slow_bot: Harness) -> None:
    bot = slow_bot
    in_flight = {5003, 5004}
    for chat_id in in_flight:
        bot.server.inject(Fault(FaultKind.SLOW, method="sendMessage", chat_id=chat_id,
                                delay=3.0))
    await start(bot, "Stopped halfway")
    await bot.until(lambda: in_flight <= {c.chat_id for c in bot.server.calls("sendMessage")
                                          if c.status is None})
    before_cancel = len(bot.server.calls())
    panel = status(bot)
    assert panel is not None
    pressed = await bot.server.press_button(ADMIN, panel.message_id, text="Cancel the rest",
                                            user_id=ADMIN, timeout=10)
    assert pressed.answer is not None
    report = await final_report(bot)

    received = got(bot, "Stopped halfway")
    assert received == Counter({5001: 1, 5002: 1, 5003: 1, 5004: 1})
    assert states(report) == {"sent": 4, "cancelled": 8}
    [cancel_note] = [c.params["text"] for c in edits_of_status(bot, before_cancel)
                     if "will not be sent" in c.params["text"]]
    assert "8 will not be sent. Already in flight: 2 messages" in cancel_note
    assert "still to send" not in report


async def test_the_progress_job_does_not_repeat_an_unchanged_text(slow_bot: Harness) -> None:
    bot = slow_bot
    stalled = {5001, 5002}  # both sending slots held: the figures stop moving
    for chat_id in stalled:
        bot.server.inject(Fault(FaultKind.SLOW, method="sendMessage", chat_id=chat_id,
                                delay=4.0))
    first_call = len(bot.server.calls())
    await start(bot, "Progress please")
    await final_report(bot)
    slow = [c for c in bot.server.calls("sendMessage", since=first_call)
            if c.chat_id in stalled]
    assert len(slow) == 2 and all(c.finished is not None for c in slow)
    edits = edits_of_status(bot, first_call)
    assert [c.status for c in edits] == [200] * len(edits)  # never "message is not modified"
    assert all(a.params["text"] != b.params["text"] for a, b in pairwise(edits))
    # The job ticks every 0.5 s; in the stall's last two seconds nothing changed.
    quiet_from = max(c.started for c in slow) + 2.0
    quiet_to = min(c.finished or 0.0 for c in slow)
    assert [c for c in edits if quiet_from <= c.started <= quiet_to] == []
    assert len(edits) >= 3  # the start, progress along the way, and the report
