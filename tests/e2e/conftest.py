"""End-to-end fixtures: the real Application over real HTTP against the sandbox server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, StoriesSettings, TelegramSettings
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.telegram.app import build_application, start_bot, stop_bot
from bot.telegram.context import BotApplication, BotServices

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
        """Send ``text`` as a user; return the bot messages that arrived in that chat.

        With ``expect_reply`` it waits for the first reply and then for a quiet moment;
        without, it waits long enough for an unwanted reply to show up.
        """
        target = chat_id if chat_id is not None else user_id
        before = len(self.server.bot_messages(target, include_deleted=True))
        post = await self.server.user_message(text, user_id=user_id, chat_id=chat_id, **kwargs)
        if expect_reply:
            trip = await self.server.wait_reply(post.update_id, target, quiet=0.15, timeout=15)
            assert trip.complete, f"no reply to {text[:40]!r}"
        else:
            assert await self.server.wait_idle(post.update_id, quiet=0.5, timeout=15)
        return self.server.bot_messages(target, include_deleted=True)[before:]

    async def press(self, chat_id: int = USER, **kwargs: Any) -> dict[str, Any] | None:
        press = await self.server.press_button(chat_id, **kwargs)
        assert await self.server.wait_idle(press.update_id, quiet=0.3, timeout=15)
        return self.server.callback_answer(press.query_id)


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
