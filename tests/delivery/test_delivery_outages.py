"""Database outages during a fan-out: a SQLite file locked by another process past the
busy timeout, PostgreSQL backends terminated by an operator. Sending rides them out and
resumes by itself; an outage longer than ``give_up_seconds`` stops the sender with one
line for the supervisor; nothing is lost or sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.delivery import Sender, SenderService
from bot.sandbox import Fault, FaultKind, SandboxServer
from bot.status import ProcessStatus
from bot.storage import Database, DeliveryLedger, DeliveryState, Destination
from bot.storage.retry import DatabaseRetry
from tests.delivery.helpers import fast_settings
from tests.delivery.test_delivery_sender import queue

Clock = Any
OpenDb = Any
BotFactory = Any

_LOCKER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


@contextlib.asynccontextmanager
async def outage(open_db: OpenDb, db: Database, seconds: float) -> AsyncIterator[list[int]]:
    """Make the database unusable for ``seconds`` the way production does: enters once the
    outage has begun and leaves when the database answers again. Yields a list that
    collects the PostgreSQL backends terminated (empty on SQLite)."""
    terminated: list[int] = []
    if not db.is_postgresql:
        path = Path(db.engine.url.database or "")
        locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _LOCKER, str(path), str(seconds),
            stdout=asyncio.subprocess.PIPE)
        assert locker.stdout is not None
        assert await locker.stdout.readline() == b"locked\n"
        yield terminated
        await locker.wait()
        return
    admin = create_async_engine(open_db.url)
    name = open_db.application_name

    async def terminate_every_fifth_of_a_second() -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            async with admin.begin() as conn:
                # Two statements: PostgreSQL may evaluate a WHERE clause's calls in any
                # order, and pg_terminate_backend must never see another backend.
                pids = list((await conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                    "AND pid <> pg_backend_pid()"), {"name": name})).scalars())
                for pid in pids:
                    if (await conn.execute(text("SELECT pg_terminate_backend(:pid)"),
                                           {"pid": pid})).scalar():
                        terminated.append(pid)
            await asyncio.sleep(0.2)

    killer = asyncio.ensure_future(terminate_every_fifth_of_a_second())
    await asyncio.sleep(0.3)
    try:
        yield terminated
        await killer
    finally:
        killer.cancel()
        await admin.dispose()


async def test_an_outage_is_ridden_out_and_sending_resumes_by_itself(
    open_db: OpenDb, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    db = await open_db(busy_timeout_ms=100)
    chats = list(range(400, 480))
    for chat in chats:
        sandbox.add_chat(chat, "private")
    sandbox.inject(Fault(FaultKind.SLOW, method="sendMessage", times=None, delay=0.1))
    await queue(db, clock, [Destination(c) for c in chats])
    status = ProcessStatus()
    retry = DatabaseRetry(60.0, status)
    service = SenderService(Sender(db, await make_bot(), fast_settings(concurrency=4),
                                   clock=clock, retry=retry), status)

    def delivered() -> int:
        return sum(1 for c in chats if sandbox.bot_messages(c))

    await service.start()
    async with asyncio.timeout(20):
        while delivered() < 5:  # noqa: ASYNC110 - the sender has no event to await
            await asyncio.sleep(0.01)
    async with outage(open_db, db, 1.5) as terminated:
        if not db.is_postgresql:
            async with asyncio.timeout(10):  # the sender meets the lock and reports it
                while "database" not in status.problems:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        assert service.running
    # PostgreSQL: the bot's connections died under it (a dead idle one is replaced by the
    # pool's pre-ping unseen; one killed mid-statement is retried).
    assert terminated if db.is_postgresql else retry.outages
    answered = asyncio.get_running_loop().time()
    before = delivered()
    assert before < len(chats)  # the outage hit the middle of the fan-out
    async with asyncio.timeout(20):
        while delivered() == before:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert asyncio.get_running_loop().time() - answered < 5  # resumed within 5 s
    async with asyncio.timeout(30):
        while delivered() < len(chats):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert service.running and status.fatal is None
    assert "database" not in status.problems  # cleared once the database answered
    await service.stop()
    # Nothing lost, nothing twice: no send failed, only database calls were retried.
    assert [len(sandbox.bot_messages(c)) for c in chats] == [1] * len(chats)
    assert set(await DeliveryLedger(db).counts()) == {DeliveryState.SENT.value}


async def test_an_outage_longer_than_give_up_seconds_stops_the_sender_with_one_line(
    open_db: OpenDb, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    db = await open_db(busy_timeout_ms=100)
    if db.is_postgresql:
        pytest.skip("a PostgreSQL server cannot be made unreachable for one test; the "
                    "give-up path is the same code on both databases")
    chats = list(range(500, 530))
    for chat in chats:
        sandbox.add_chat(chat, "private")
    sandbox.inject(Fault(FaultKind.SLOW, method="sendMessage", times=None, delay=0.05))
    await queue(db, clock, [Destination(c) for c in chats])
    status = ProcessStatus()
    stopped: list[str] = []
    status.on_fatal(stopped.append)  # production: the application stops, exit code 1
    settings = fast_settings(concurrency=4, give_up_seconds=0.5)
    service = SenderService(Sender(db, await make_bot(), settings, clock=clock,
                                   retry=DatabaseRetry(0.5, status), worker_id="gave-up"),
                            status)
    await service.start()
    async with asyncio.timeout(20):
        while not any(sandbox.bot_messages(c) for c in chats):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    async with outage(open_db, db, 2.5):
        async with asyncio.timeout(10):
            while service.running:  # noqa: ASYNC110 - waiting for the sender to give up
                await asyncio.sleep(0.01)
    assert len(stopped) == 1 and "has not answered for" in stopped[0]
    assert "give_up_seconds=0.5" in stopped[0] and "\n" not in stopped[0]
    await service.stop()
    # The restarted process (exclusive: it holds the SQLite lock) delivers the rest; rows
    # in flight at the stop may arrive twice, nothing is lost.
    in_flight = (await DeliveryLedger(db).counts()).get("sending", 0)
    again = Sender(db, await make_bot(), fast_settings(), clock=clock, worker_id="restarted",
                   exclusive=True)
    await again.recover()
    await again.drain()
    copies = [len(sandbox.bot_messages(c)) for c in chats]
    assert min(copies) == 1 and sum(copies) - len(chats) <= in_flight
