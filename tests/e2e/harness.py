"""A restartable bot for delivery tests: one sandbox server, one database, a fake clock.

``stop()`` and ``start()`` model a process restart: a new Application on the same
database file, so whatever must survive a restart has to be in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent

from bot.config import Settings
from bot.delivery.wiring import DUE_SCAN_JOB
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.sandbox.user_api import ButtonPress
from bot.storage.ledger import DeliveryLedger, DeliveryState
from bot.storage.subscriptions import Destination, SubscriptionStore
from bot.telegram.app import build_application, start_bot, stop_bot
from bot.telegram.context import BotApplication, BotServices
from tests.e2e.conftest import ADMIN, TOKEN, e2e_settings, handled, replied, until


class FakeClock:
    """Aware UTC time that moves only when a test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Harness:
    def __init__(self, server: SandboxServer, folder: Path, tmp_path: Path, clock: FakeClock,
                 **delivery: Any) -> None:
        base = e2e_settings(folder, server.base_url, tmp_path, rescan_seconds=3600,
                            admin_ids=frozenset({ADMIN}))
        self.settings: Settings = replace(
            base, delivery=replace(base.delivery, scan_seconds=0.2,
                                   progress_interval_seconds=0.5, **delivery))
        self.server = server
        self.clock = clock
        self.app: BotApplication | None = None

    @property
    def services(self) -> BotServices:
        assert self.app is not None and self.app.bot_data.services is not None
        return self.app.bot_data.services

    async def start(self) -> None:
        self.app = build_application(self.settings, TOKEN, clock=self.clock)
        await start_bot(self.app, poll_timeout=1)

    async def stop(self) -> None:
        if self.app is not None:
            await stop_bot(self.app)
            self.app = None

    async def subscribe(self, chat_id: int, at: time, zone: str = "UTC", *,
                        chat_type: str = "private", thread_id: int = 0) -> None:
        """A subscriber the sandbox knows, stored directly (faster than chatting)."""
        if chat_type == "private":
            self.server.add_chat(chat_id, "private")
        elif chat_id not in self.server.state.chats:  # a bot posts in a channel as its admin
            self.server.add_chat(chat_id, chat_type, bot_status="administrator"
                                 if chat_type == "channel" else "member")
        await SubscriptionStore(self.services.require_database()).subscribe(
            Destination(chat_id, thread_id), chat_type, at, ZoneInfo(zone), self.clock())

    def received(self, chat_id: int) -> list[StoredMessage]:
        return self.server.bot_messages(chat_id)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (at most 15 s) for something the bot's own jobs make true."""
        await until(condition)

    async def handled(self, update_id: int) -> None:
        """The bot has taken ``update_id`` and finished handling it (see ``handled``)."""
        assert self.app is not None, "the bot is not running"
        await handled(self.server, self.app, update_id)

    async def say(self, text: str, user_id: int = ADMIN, *, expect_reply: bool = True,
                  **kwargs: Any) -> list[StoredMessage]:
        """Send ``text`` as ``user_id`` in their private chat; the bot's messages that
        arrived there by the time it finished handling it."""
        before = len(self.received(user_id))
        post = await self.server.user_message(text, user_id=user_id, **kwargs)
        await self.handled(post.update_id)
        if expect_reply:
            assert replied(self.server, post.update_id, user_id), f"no reply to {text[:40]!r}"
        return self.received(user_id)[before:]

    async def press(self, chat_id: int, message_id: int | None = None,
                    **kwargs: Any) -> ButtonPress:
        """Press a button (see ``SandboxServer.press_button``); the press, with the bot's
        answer, once the bot has handled it."""
        pressed = await self.server.press_button(chat_id, message_id, **kwargs)
        await self.handled(pressed.update_id)
        return replace(pressed, answer=self.server.callback_answer(pressed.query_id))


async def scans_ran(bot: Harness, count: int = 2) -> None:
    """Wait until the bot's own due-scan job has finished ``count`` more runs. Runs never
    overlap, so the second of two started after this call: it saw the current clock."""
    assert bot.app is not None and bot.app.job_queue is not None
    jobs = bot.app.job_queue
    [job] = jobs.get_jobs_by_name(DUE_SCAN_JOB)
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    runs = 0

    def on_event(event: JobExecutionEvent) -> None:
        nonlocal runs
        if event.job_id == job.job.id:
            runs += 1
            if runs >= count:
                loop.call_soon_threadsafe(finished.set)

    jobs.scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    try:
        async with asyncio.timeout(15):
            await finished.wait()
    finally:
        jobs.scheduler.remove_listener(on_event)


async def quiet(bot: Harness, *, scans: int = 2) -> None:
    """The barrier before asserting that nothing more was sent: the due scan ran at the
    current clock (``scans=0`` skips that), no ledger row is ready or being sent, and the
    sandbox has no Bot API call in flight. Never a fixed sleep."""
    if scans:
        await scans_ran(bot, scans)
    ledger = DeliveryLedger(bot.services.require_database())
    state = bot.server.state
    async with asyncio.timeout(15):
        while True:
            now = bot.clock()
            busy = [r for r in await ledger.rows() if r.state is DeliveryState.SENDING or (
                r.state is DeliveryState.PENDING and r.not_before <= now)]
            in_flight = [c for c in state.bot_calls_since(0) if c.finished is None]
            if not busy and not in_flight:
                return
            await state.wait_change(0.05)  # every send shows in the sandbox's call log


@asynccontextmanager
async def admin_harness(story_folder: Path, tmp_path: Path, subscribers: list[int], *,
                        chats: tuple[int, ...] = ()) -> AsyncIterator[Harness]:
    """A bot at 12:00 UTC on 2 Apr 2025 whose admin has a private chat with it, with
    ``subscribers`` subscribed to a 07:00 briefing (``chats``: more private chats)."""
    clock = FakeClock(datetime(2025, 4, 2, 12, 0, tzinfo=UTC))
    async with SandboxServer() as server:
        for chat_id in (ADMIN, *chats):
            server.add_chat(chat_id, "private")
        harness = Harness(server, story_folder, tmp_path, clock)
        await harness.start()
        try:
            for chat_id in subscribers:
                await harness.subscribe(chat_id, time(7, 0))
            yield harness
        finally:
            await harness.stop()
