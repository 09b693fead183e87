"""End-to-end fixtures: the real Application over real HTTP against the sandbox server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.config import Settings, StoriesSettings, TelegramSettings
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import REPLY_METHODS, StoredMessage
from bot.telegram.app import build_application, start_bot, stop_bot
from bot.telegram.context import BotApplication, BotServices

if TYPE_CHECKING:
    from tests.e2e.harness import Harness

TOKEN = "123456789:AAHsecretSECRETsecret0123456789abcdef"
USER = 4242


@dataclass
class Chat:
    """A running bot plus helpers to talk to it as a user."""

    server: SandboxServer
    app: BotApplication
    folder: Path

    @property
    def services(self) -> BotServices:
        services = self.app.bot_data.services
        assert services is not None
        return services

    async def say(self, text: str, *, user_id: int = USER, chat_id: int | None = None,
                  expect_reply: bool = True, **kwargs: Any) -> list[StoredMessage]:
        """Send ``text`` as a user; return the bot messages that arrived in that chat once
        the bot has handled it (``expect_reply``: at least one reply was sent there)."""
        target = chat_id if chat_id is not None else user_id
        before = len(self.server.bot_messages(target, include_deleted=True))
        post = await self.server.user_message(text, user_id=user_id, chat_id=chat_id, **kwargs)
        await handled(self.server, self.app, post.update_id)
        if expect_reply:
            assert replied(self.server, post.update_id, target), f"no reply to {text[:40]!r}"
        return self.server.bot_messages(target, include_deleted=True)[before:]

    async def press(self, chat_id: int = USER, **kwargs: Any) -> dict[str, Any] | None:
        """Press a button (see ``SandboxServer.press_button``); the bot's answer to the
        press once it has handled it, or None if it left the press unanswered."""
        press = await self.server.press_button(chat_id, **kwargs)
        await handled(self.server, self.app, press.update_id)
        return self.server.callback_answer(press.query_id)


async def handled(server: SandboxServer, app: BotApplication, update_id: int) -> None:
    """The barrier before looking at what the bot did about an update: it has taken
    ``update_id`` (and every update before it) from the sandbox, and every handler has
    finished, replies included. A quiet period is no barrier: the per-chat flood limit
    can hold a reply back for longer than any quiet period worth waiting."""
    state = server.state
    record = state.updates[update_id]

    def taken() -> bool:  # confirmed by asking for the updates after it
        return any(c.method == "getUpdates" and int(c.params.get("offset") or 0) > update_id
                   for c in state.calls[record.calls_before:])

    async with asyncio.timeout(30):
        while not taken():
            await state.wait_change(1.0)
        await app.update_queue.join()  # PTB marks an update done once its handlers return


def replied(server: SandboxServer, update_id: int, chat_id: int) -> bool:
    """Whether the bot posted or edited a message in ``chat_id`` since ``update_id``."""
    record = server.state.updates[update_id]
    return any(c.chat_id == chat_id and c.method.lower() in REPLY_METHODS and c.status == 200
               for c in server.state.calls[record.calls_before:])


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 15 s) for something the bot does by itself (a rescan, a job, the
    sender): those have no event a test could await."""
    async with asyncio.timeout(15):
        while not condition():  # noqa: ASYNC110 - no event to await: the bot acts alone
            await asyncio.sleep(0.05)


_FOOTER = re.compile(r"\((\d+)/(\d+)\)\s*$")


def footer(message: StoredMessage) -> tuple[int, int]:
    """(i, n) from the "(i/n)" footer of a part of a long story."""
    found = _FOOTER.search(message.text)
    assert found is not None, f"no part footer in {message.text[-40:]!r}"
    return int(found.group(1)), int(found.group(2))


StartBot = Callable[..., "AsyncIterator[Chat]"]


def e2e_settings(folder: Path, base_url: str, tmp_path: Path, *, rescan_seconds: float = 0.2,
                 **telegram: Any) -> Settings:
    settings = Settings()
    return replace(
        settings,
        telegram=replace(TelegramSettings(), base_url=base_url, **telegram),
        stories=replace(StoriesSettings(), folder=folder, rescan_seconds=rescan_seconds),
        database=replace(settings.database, url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"),
    )


@asynccontextmanager
async def running_bot(server: SandboxServer, settings: Settings,
                      folder: Path) -> AsyncIterator[Chat]:
    """The real bot polling ``server`` for as long as the block runs."""
    app = build_application(settings, TOKEN)
    await start_bot(app, poll_timeout=1)
    try:
        yield Chat(server, app, folder)
    finally:
        await stop_bot(app)


@pytest.fixture
async def chat(story_folder: Path, tmp_path: Path) -> AsyncIterator[Chat]:
    async with SandboxServer() as server:
        settings = e2e_settings(story_folder, server.base_url, tmp_path)
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


@pytest.fixture(params=["aiohttp", "httpx"])
async def chat_each_client(request: pytest.FixtureRequest, story_folder: Path,
                           tmp_path: Path) -> AsyncIterator[Chat]:
    """The ``chat`` bot once over each HTTP client python-telegram-bot can use here."""
    async with SandboxServer() as server:
        settings = e2e_settings(story_folder, server.base_url, tmp_path,
                                http_client=request.param)
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


ADMIN = 1001


@pytest.fixture
async def admin_chat(story_folder: Path, tmp_path: Path) -> AsyncIterator[Chat]:
    """A bot whose only admin is user ``ADMIN`` (who has opened a chat with it)."""
    async with SandboxServer() as server:
        server.add_chat(ADMIN, "private")
        settings = e2e_settings(story_folder, server.base_url, tmp_path,
                                rescan_seconds=3600, admin_ids=frozenset({ADMIN}))
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


@pytest.fixture
async def strict_chat(story_folder: Path, tmp_path: Path) -> AsyncIterator[Chat]:
    """A bot that allows only 3 commands per minute per user."""
    async with SandboxServer() as server:
        settings = e2e_settings(story_folder, server.base_url, tmp_path, commands_per_minute=3)
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


@pytest.fixture
async def bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    """A restartable bot on a fake clock at 06:58 UTC on 2 Apr 2025 (briefings, alerts)."""
    from tests.e2e.harness import FakeClock, Harness

    clock = FakeClock(datetime(2025, 4, 2, 6, 58, tzinfo=UTC))
    async with SandboxServer() as server:
        harness = Harness(server, story_folder, tmp_path, clock)
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()
