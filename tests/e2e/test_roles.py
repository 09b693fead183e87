"""`run --role`: one `updates` and two `delivery` processes share a PostgreSQL database;
on SQLite only `all` is allowed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.sandbox.server import SandboxServer
from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
)
from bot.storage.workers import WorkerRegistry
from tests.database_fixtures import PG_ENV
from tests.e2e.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]
IDLE_POLL_SECONDS = 5.0  # the longest an idle sender waits before it looks at the ledger


async def _process(config: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "--config", str(config), *args, cwd=ROOT,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _delivery_workers(url: str, count: int) -> None:
    """Wait (at most 30 s) until ``count`` delivery processes have registered."""
    db = await Database.open(url)
    try:
        registry = WorkerRegistry(db)
        async with asyncio.timeout(30):
            # other processes register: there is no event here to await
            while sum(w.role == "delivery" for w in await registry.all()) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        await db.close()


async def _queue_ready_in(url: str, chats: list[int], seconds: float) -> None:
    """A briefing for each chat, ready ``seconds`` from now."""
    db = await Database.open(url)
    try:
        payload = MessagesPayload((MessagePart("<b>Morning briefing</b>"),))
        now = datetime.now(UTC)
        async with db.engine.begin() as conn:
            await DeliveryLedger(db).add_in(
                conn, [NewDelivery("digest", "2025-03-10", Destination(c), payload)
                       for c in chats], now, not_before=now + timedelta(seconds=seconds))
    finally:
        await db.close()


async def test_a_role_other_than_all_is_refused_on_sqlite(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'bot.db'}\n")
    for role in ("updates", "delivery"):
        process = await _process(config, "run", "--role", role)
        out, err = await process.communicate()
        assert process.returncode == 2 and out == b""
        [line] = err.decode().strip().splitlines()
        assert f"--role {role} needs PostgreSQL" in line


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A throw-away PostgreSQL database (several processes connect to it by URL)."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set")
    name = f"roles_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_one_updates_and_two_delivery_processes_share_the_work(
    tmp_path: Path, postgres_url: str
) -> None:
    chats = list(range(6001, 6061))
    async with SandboxServer() as server:
        for chat in chats:
            server.add_chat(chat, "private")
        config = tmp_path / "bot.yaml"
        config.write_text(f"telegram:\n  base_url: {server.base_url}\n"
                          f"database:\n  url: {postgres_url}\n"
                          "delivery:\n  concurrency: 4\n  rate_per_second: 200\n"
                          "  per_chat_per_second: 30\n  scan_seconds: 60\n"
                          "log_level: WARNING\n")
        processes = [await _process(config, "run", "--role", role)
                     for role in ("updates", "delivery", "delivery")]
        try:
            # Work queued before both senders run goes to whichever started first (60 rows
            # take it a fraction of a second); queued to be ready just after their idle
            # polls end, it finds both waiting and they take it together.
            await _delivery_workers(postgres_url, 2)
            await _queue_ready_in(postgres_url, chats, IDLE_POLL_SECONDS + 0.5)
            post = await server.user_message("/latest", user_id=77)
            assert (await server.wait_reply(post.update_id, 77, timeout=30)).complete
            async with asyncio.timeout(30):
                while sum(1 for c in chats if server.bot_messages(c)) < len(chats):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            health = await _process(config, "health")
            verdict = (await health.communicate())[0].decode()
            assert (health.returncode, verdict) == (0, "healthy\n")
            db = await Database.open(postgres_url)
            try:
                roles = sorted(w.role for w in await WorkerRegistry(db).all())
                async with db.read() as conn:
                    senders = set((await conn.execute(
                        text("SELECT DISTINCT claimed_by FROM deliveries"))).scalars())
            finally:
                await db.close()
        finally:
            for process in processes:
                process.send_signal(signal.SIGINT)
            results = [await asyncio.wait_for(p.communicate(), 30) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], results
        assert roles == ["delivery", "delivery", "updates"]
        assert len(senders) == 2  # both delivery processes sent; the updates one did not
        assert [len(server.bot_messages(c)) for c in chats] == [1] * len(chats)
        assert "Latest" in server.bot_messages(77)[0].text
