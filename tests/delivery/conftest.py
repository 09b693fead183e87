"""Fixtures for delivery tests: real databases (tests/database_fixtures.py), the sandbox Bot API
server, a PTB bot wired through the lane rate limiter, stories and a fake library.

Databases: a SQLite file, and PostgreSQL when configured.

Every test taking ``db`` runs twice. The PostgreSQL variant needs
``BOT_TEST_DATABASE_URL`` (a postgresql+asyncpg URL) and otherwise is skipped with a
visible reason. Each PostgreSQL test gets its own throw-away schema (``search_path``), so
tests never see each other's rows and can run while other suites use the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from telegram.ext import ExtBot

from bot.delivery import LaneRateLimiter
from bot.sandbox import SandboxServer
from bot.telegram.transport import AiohttpRequest
from tests.database_fixtures import Clock, OpenDb, clock, db, open_db
from tests.delivery.helpers import TOKEN, FakeLibrary

__all__ = ["Clock", "OpenDb", "clock", "db", "open_db"]


@pytest.fixture
def library() -> FakeLibrary:
    return FakeLibrary()


# -- the sandbox and a bot talking to it ---------------------------------------------

@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        yield server


BotFactory = Callable[..., Coroutine[Any, Any, ExtBot[Any]]]


@pytest.fixture
async def make_bot(sandbox: SandboxServer) -> AsyncIterator[BotFactory]:
    """Bots for the sandbox, each sending through a LaneRateLimiter."""
    bots: list[ExtBot[Any]] = []

    async def factory(*, limiter: LaneRateLimiter | None = None,
                      read_timeout: float = 5.0) -> ExtBot[Any]:
        request = AiohttpRequest(connection_pool_size=64, read_timeout=read_timeout,
                                 connect_timeout=5.0)  # the bot's own HTTP client
        bot: ExtBot[Any] = ExtBot(
            TOKEN, base_url=sandbox.base_url, request=request,
            rate_limiter=limiter or LaneRateLimiter(1000.0, per_chat_per_second=1000.0,
                                                    per_group_per_minute=10_000),
        )
        await bot.initialize()
        bots.append(bot)
        return bot

    yield factory
    for bot in bots:
        await bot.shutdown()
