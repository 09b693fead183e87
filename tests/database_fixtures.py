"""Real databases for storage and delivery tests: a SQLite file, and PostgreSQL when
configured. Imported by the conftest of each suite that needs them.

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

from bot.storage import Database

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
        # The application name lets outage tests find (and terminate) this test's backends.
        connect_args = {"server_settings": {"search_path": schema,
                                            "application_name": schema}}

    async def factory(**kwargs: Any) -> Database:
        db = await Database.open(url, connect_args=connect_args, **kwargs)
        opened.append(db)
        return db

    factory.url = url  # type: ignore[attr-defined]
    factory.application_name = (  # type: ignore[attr-defined]
        connect_args.get("server_settings", {}).get("application_name"))
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
