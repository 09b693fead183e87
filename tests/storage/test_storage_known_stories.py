"""Known story versions keep digests of their parts (schema version 6), across restarts
and across the upgrade from version 5."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.storage import MIGRATIONS, Database, KnownStoryStore
from bot.storage.known_stories import KnownVersion
from bot.storage.migrations import current_version
from bot.storage.schema import SCHEMA_VERSION
from tests.database_fixtures import Clock, OpenDb


async def test_digests_are_kept_with_the_newest_version(open_db: OpenDb, clock: Clock) -> None:
    db = await open_db()
    t0 = clock()
    t1 = t0 + timedelta(hours=1)
    store = KnownStoryStore(db)
    await store.remember([KnownVersion("a", t0, "t0", "h0", "b0"), ("b", t0)], clock())
    await store.remember([KnownVersion("a", t1, "t1", "h1", "b1")], clock())
    # an older version, or the same one again with other digests, changes nothing
    await store.remember([KnownVersion("a", t0, "old", "old", "old"),
                          KnownVersion("a", t1, "x", "x", "x")], clock())
    await db.close()
    again = KnownStoryStore(await open_db())  # a restart: only the database remembers
    versions = await again.versions(["a", "b", "c"])
    assert versions == {"a": KnownVersion("a", t1, "t1", "h1", "b1"),
                        "b": KnownVersion("b", t0)}
    assert not versions["b"].has_digests and versions["a"].has_digests
    assert await again.known(["a", "b"]) == {"a": t1, "b": t0}


async def test_a_version_without_digests_gets_them_once(db: Database, clock: Clock) -> None:
    t0 = clock()
    store = KnownStoryStore(db)
    await store.remember([("a", t0)], clock())
    await store.remember([KnownVersion("a", t0, "t", "h", "b")], clock())
    await store.remember([KnownVersion("a", t0, "other", "other", "other")], clock())
    assert (await store.versions(["a"]))["a"] == KnownVersion("a", t0, "t", "h", "b")


async def test_a_version_5_database_upgrades_keeping_known_stories(
        open_db: OpenDb, clock: Clock) -> None:
    old = await open_db(migrations=MIGRATIONS[:5])
    assert await current_version(old.engine) == 5
    t = old.tables.known_stories
    async with old.engine.begin() as conn:  # only the columns version 5 has
        await conn.execute(t.insert().values(key="a", updated=clock(), seen_at=clock()))
    await old.close()
    new = await open_db()
    assert await current_version(new.engine) == SCHEMA_VERSION
    store = KnownStoryStore(new)
    assert await store.versions(["a"]) == {"a": KnownVersion("a", clock())}
    await store.remember([KnownVersion("a", clock(), "t", "h", "b")], clock())
    async with new.engine.connect() as conn:
        row = (await conn.execute(select(t.c.title_digest, t.c.body_digest))).one()
    assert tuple(row) == ("t", "b")
