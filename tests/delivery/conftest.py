"""Fixtures for delivery tests: real databases (as in tests/storage), the sandbox Bot API
server, a PTB bot wired through the lane rate limiter, stories and a fake library.

Databases: a SQLite file, and PostgreSQL when configured.

Every test taking ``db`` runs twice. The PostgreSQL variant needs
``BOT_TEST_DATABASE_URL`` (a postgresql+asyncpg URL) and otherwise is skipped with a
visible reason. Each PostgreSQL test gets its own throw-away schema (``search_path``), so
tests never see each other's rows and can run while other suites use the same database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bot.delivery import LaneRateLimiter
from bot.sandbox import SandboxServer
from bot.storage import Database
from tests.delivery.helpers import TOKEN, FakeLibrary

PG_ENV = "BOT_TEST_DATABASE_URL"

OpenDb = Callable[..., Coroutine[Any, Any, Database]]


class Clock:
    """An injectable UTC clock that only moves when told to."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 10, 6, 0, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenDb]:
    """A factory opening (possibly several) Database handles on one fresh database."""
    opened: list[Database] = []
    cleanup: list[Callable[[], Coroutine[Any, Any, None]]] = []
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.sqlite3'}"
        connect_args: dict[str, Any] = {}
    else:
        base = os.environ.get(PG_ENV)
        if not base:
            pytest.skip(f"{PG_ENV} not set")
        url = base
        schema = f"t_{uuid.uuid4().hex[:16]}"
        admin = create_async_engine(base)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))

        async def drop() -> None:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()

        cleanup.append(drop)
        connect_args = {"server_settings": {"search_path": schema}}

    async def factory(**kwargs: Any) -> Database:
        db = await Database.open(url, connect_args=connect_args, **kwargs)
        opened.append(db)
        return db

    factory.url = url  # type: ignore[attr-defined]
    factory.connect_args = connect_args  # type: ignore[attr-defined]
    try:
        yield factory
    finally:
        for db in opened:
            await db.close()
        for step in cleanup:
            await step()


@pytest.fixture
async def db(open_db: OpenDb) -> Database:
    return await open_db()


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
        request = HTTPXRequest(connection_pool_size=64, read_timeout=read_timeout,
                               connect_timeout=5.0)
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
