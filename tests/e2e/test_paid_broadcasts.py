"""Paid broadcasts end to end: /broadcast paid, its preview (duration, cost), sending with
allow_paid_broadcast above the free 30/s, and going on free when the Stars run out."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from bot.sandbox.flood import FloodLimits
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import CallRecord, StoredMessage
from bot.storage.broadcasts import BroadcastStore
from bot.storage.ledger import DeliveryLedger, DeliveryState
from bot.telegram.broadcasting import PAID_OFF
from tests.e2e.conftest import ADMIN
from tests.e2e.harness import FakeClock, Harness

SENDS = ("sendmessage", "copymessage")


async def started(server: SandboxServer, story_folder: Path, tmp_path: Path,
                  subscribers: list[int], **delivery: object) -> Harness:
    clock = FakeClock(datetime(2025, 4, 2, 6, 55, tzinfo=UTC))  # briefings at 7:00
    server.add_chat(ADMIN, "private")
    harness = Harness(server, story_folder, tmp_path, clock, **delivery)
    await harness.start()
    for chat_id in subscribers:
        await harness.subscribe(chat_id, time(7, 0))
    return harness


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        server.set_flood_limits(FloodLimits.telegram())  # 30/s free, 1,000/s paid
        yield server


def status(bot: Harness) -> StoredMessage:
    return next(m for m in reversed(bot.received(ADMIN)) if "Broadcast #" in m.text
                and "refused paid sending" not in m.text)


def done(bot: Harness) -> bool:
    return "done in" in status(bot).text


def is_paid(call: CallRecord) -> bool:
    return str(call.params.get("allow_paid_broadcast", "")).lower() == "true"


def sends_to(bot: Harness, chats: list[int], since: int = 0) -> list[CallRecord]:
    wanted = set(chats)
    return [c for c in bot.server.calls(since=since)
            if c.method.lower() in SENDS and c.chat_id in wanted]


def peak_per_second(calls: list[CallRecord]) -> int:
    times = sorted(c.started for c in calls)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def got(bot: Harness, chats: list[int], text: str) -> Counter[int]:
    return Counter(chat for chat in chats for m in bot.received(chat) if text in m.text)


async def test_paid_broadcast_without_paid_broadcast_enabled_is_refused(
        sandbox: SandboxServer, story_folder: Path, tmp_path: Path) -> None:
    subscribers = list(range(5001, 5006))
    bot = await started(sandbox, story_folder, tmp_path, subscribers)
    try:
        [refusal] = await bot.say("/broadcast paid The big sale starts now")
        assert refusal.text == PAID_OFF
        db = bot.services.require_database()
        assert await BroadcastStore(db).recent() == []  # no draft: nothing can be sent
        assert await DeliveryLedger(db).rows() == []
        assert got(bot, subscribers, "big sale") == Counter()
    finally:
        await bot.stop()


async def test_paid_broadcast_preview_then_sending_above_the_free_rate(
        sandbox: SandboxServer, story_folder: Path, tmp_path: Path) -> None:
    subscribers = list(range(6001, 6061))
    bot = await started(sandbox, story_folder, tmp_path, subscribers, paid_broadcast=True)
    try:
        *_, panel = await bot.say("/broadcast paid Fresh news")
        assert "(60 destinations)" in panel.text
        assert ("Paid broadcast: expected duration about 1 s at up to 1000 messages/s."
                in panel.text)
        assert ("Cost: at most 3 Stars — 0.1 for each message above Telegram's free 30/s "
                "(30 of 60); only messages delivered are charged." in panel.text)
        first = len(sandbox.calls())
        pressed = await bot.press(ADMIN, panel.message_id, text="📣 Send to 60 (paid)")
        assert pressed.answer is not None
        await bot.until(lambda: done(bot))
        assert got(bot, subscribers, "Fresh news") == Counter(dict.fromkeys(subscribers, 1))
        assert "60 destinations — 60 sent." in status(bot).text
        sends = sends_to(bot, subscribers, first)
        assert [(is_paid(c), c.status) for c in sends] == [(True, 200)] * 60
        assert peak_per_second(sends) > 30  # what only the paid budget allows
        assert sandbox.flood_refusals == 0
        admin = [c for c in sandbox.calls(since=first) if c.chat_id == ADMIN]
        assert admin and not any(is_paid(c) for c in admin)  # status edits stay free

        # The 7:00 briefings go on the free budget.
        mark = len(sandbox.calls())
        bot.clock.advance(minutes=6)
        await bot.until(lambda: len({c.chat_id for c in sends_to(bot, subscribers, mark)
                                     if c.status == 200}) == 60)
        assert not any(is_paid(c) for c in sends_to(bot, subscribers, mark))
    finally:
        await bot.stop()


async def test_stars_running_out_midway_goes_on_free_and_tells_the_admin_once(
        sandbox: SandboxServer, story_folder: Path, tmp_path: Path) -> None:
    subscribers = list(range(7001, 7041))
    # Every paid message costs 0.1 Star (no free ones here): 1 Star pays for ten.
    sandbox.set_flood_limits(dataclasses.replace(FloodLimits.telegram(), stars_balance=1.0,
                                                 free_per_second=0))
    bot = await started(sandbox, story_folder, tmp_path, subscribers, paid_broadcast=True)
    try:
        *_, panel = await bot.say("/broadcast paid Running out")
        first = len(sandbox.calls())
        await bot.press(ADMIN, panel.message_id, text="📣 Send to 40 (paid)")
        await bot.until(lambda: done(bot))
        assert got(bot, subscribers, "Running out") == Counter(dict.fromkeys(subscribers, 1))
        report = status(bot).text
        assert "40 destinations — 40 sent." in report  # no row failed for it
        assert "Paid sending stopped: Telegram refused it" in report
        notices = [m for m in bot.received(ADMIN) if "refused paid sending" in m.text]
        assert len(notices) == 1
        assert "go at the free rate" in notices[0].text
        sends = sends_to(bot, subscribers, first)
        assert sum(1 for c in sends if is_paid(c) and c.status == 200) == 10
        refused = [c for c in sends if c.status == 400]
        assert refused and all(is_paid(c) and c.description == "Bad Request: BALANCE_TOO_LOW"
                               for c in refused)
        assert sandbox.state.flood.stars_left == 0.0
        rows = await DeliveryLedger(bot.services.require_database()).rows()
        assert {r.state for r in rows} == {DeliveryState.SENT}
    finally:
        await bot.stop()
