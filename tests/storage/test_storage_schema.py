"""Opening, versioning and upgrading the schema in place; datetime round-trips."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select, text, update

from bot.errors import StorageError
from bot.storage import MIGRATIONS, Database, Destination, Migration, SubscriptionStore
from bot.storage.migrations import current_version
from bot.storage.schema import SCHEMA_VERSION

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

Clock = Any
OpenDb = Any


async def test_fresh_database_is_current_version(db: Database) -> None:
    assert await current_version(db.engine) == SCHEMA_VERSION == len(MIGRATIONS)
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
    assert {"subscriptions", "deliveries", "payloads", "known_stories", "broadcasts",
            "schema_version"} <= names


async def test_a_version_1_database_upgrades_keeping_every_subscriber(
    open_db: OpenDb, clock: Clock
) -> None:
    old = await open_db(migrations=MIGRATIONS[:1])
    store = SubscriptionStore(old)
    kept = [await store.subscribe(Destination(n, n % 3), "private", time(7, n),
                                  ZoneInfo("Asia/Tokyo"), clock()) for n in range(1, 30)]
    assert await current_version(old.engine) == 1
    new = await open_db()
    assert await current_version(new.engine) == SCHEMA_VERSION
    for subscription in kept:
        again = await SubscriptionStore(new).get(subscription.destination)
        assert again == subscription


async def test_the_stored_version_1_fixture_upgrades_in_place(tmp_path: Path) -> None:
    """A SQLite file as version 1 of the bot left it (tests/fixtures/schema_v1.sql)."""
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as con:
        con.executescript((FIXTURES / "schema_v1.sql").read_text())
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        assert await current_version(db.engine) == SCHEMA_VERSION
        store = SubscriptionStore(db)
        berlin = await store.get(Destination(1001))
        topic = await store.get(Destination(-1002003004005, 42))
        ended = await store.get(Destination(1003))
        assert berlin is not None and topic is not None and ended is not None
        assert (berlin.delivery_time, berlin.timezone.key, berlin.follows) == (
            time(7, 30), "Europe/Berlin", ("harbour", "rail"))
        assert (topic.chat_type, topic.timezone.key, topic.active) == (
            "supergroup", "America/New_York", True)
        assert (ended.active, ended.ended_reason) == (False, "unsubscribed")
        assert await store.counts_by_chat_type() == {"private": 1, "supergroup": 1}
    finally:
        await db.close()


async def test_reopen_is_idempotent(open_db: OpenDb, clock: Clock) -> None:
    first = await open_db()
    store = SubscriptionStore(first)
    await store.subscribe(Destination(1), "private", time(8), ZoneInfo("UTC"), clock())
    await first.close()
    second = await open_db()
    assert await current_version(second.engine) == SCHEMA_VERSION
    assert await SubscriptionStore(second).get(Destination(1)) is not None


async def test_newer_database_is_refused_clearly(open_db: OpenDb) -> None:
    db = await open_db()
    table = db.tables.schema_version
    async with db.engine.begin() as conn:
        await conn.execute(update(table).values(version=99))
    with pytest.raises(StorageError, match=rf"version 99, newer than this bot understands "
                                           rf"\({SCHEMA_VERSION}\)"):
        await open_db()


async def test_upgrade_keeps_subscribers_and_runs_each_step_once(
    open_db: OpenDb, clock: Clock
) -> None:
    db = await open_db()
    sub = await SubscriptionStore(db).subscribe(
        Destination(42, 7), "supergroup", time(7, 15), ZoneInfo("Europe/Berlin"), clock()
    )
    runs: list[int] = []

    def next_step(conn: Connection) -> None:
        runs.append(SCHEMA_VERSION + 1)
        conn.execute(text("ALTER TABLE subscriptions ADD COLUMN language VARCHAR(8) "
                          "DEFAULT 'en' NOT NULL"))
        md = MetaData()
        Table("notes", md, Column("id", Integer, primary_key=True),
              Column("title", String(100)))
        md.create_all(conn)

    steps = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "language and notes", next_step))
    upgraded = await open_db(migrations=steps)
    again = await open_db(migrations=steps)
    assert runs == [SCHEMA_VERSION + 1]
    assert await current_version(again.engine) == SCHEMA_VERSION + 1
    kept = await SubscriptionStore(upgraded).get(Destination(42, 7))
    assert kept is not None
    assert (kept.id, kept.delivery_time, kept.timezone) == (sub.id, time(7, 15),
                                                             ZoneInfo("Europe/Berlin"))
    async with upgraded.engine.connect() as conn:
        language = (await conn.execute(text("SELECT language FROM subscriptions"))).scalar()
    assert language == "en"
    # the current code (knowing only the current version) now refuses the upgraded database
    with pytest.raises(StorageError, match="newer than this bot"):
        await open_db()


async def test_broken_step_leaves_previous_version(open_db: OpenDb) -> None:
    await open_db()

    def broken(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (id INTEGER)"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await open_db(migrations=(*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", broken)))
    db = await open_db()
    assert await current_version(db.engine) == SCHEMA_VERSION
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
    assert "half_done" not in names


async def test_misnumbered_steps_are_refused(open_db: OpenDb) -> None:
    with pytest.raises(StorageError, match=r"numbered 1\.\.n"):
        await open_db(migrations=(Migration(2, "x", lambda c: None),))


async def test_datetimes_round_trip_as_aware_utc(db: Database, clock: Clock) -> None:
    berlin_time = datetime(2025, 3, 30, 3, 30, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    store = SubscriptionStore(db)
    await store.subscribe(Destination(5), "private", time(8), ZoneInfo("UTC"), berlin_time)
    t = db.tables.subscriptions
    async with db.engine.connect() as conn:
        created = (await conn.execute(select(t.c.created_at))).scalar_one()
        later = (await conn.execute(
            select(t.c.id).where(t.c.created_at < berlin_time + timedelta(microseconds=1))
        )).all()
    assert created == berlin_time
    assert created.tzinfo is UTC
    assert created.microsecond == 123456
    assert len(later) == 1
    other_offset = datetime(2025, 3, 30, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=0)))
    assert created == other_offset


async def test_naive_datetimes_are_refused(db: Database) -> None:
    store = SubscriptionStore(db)
    with pytest.raises(Exception, match=r"naive datetime|timezone-aware"):
        await store.subscribe(Destination(5), "private", time(8), ZoneInfo("UTC"),
                              datetime(2025, 1, 1))  # noqa: DTZ001


async def test_sqlite_creates_parent_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "bot.sqlite3"
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        assert path.exists()
        async with db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
        assert mode == "wal"
        assert timeout and int(timeout) >= 1000
    finally:
        await db.close()


async def test_unsupported_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="unsupported database"):
        await Database.open("mysql+aiomysql://nobody@localhost/x")
    with pytest.raises(StorageError, match="invalid database URL"):
        await Database.open("not a url")
