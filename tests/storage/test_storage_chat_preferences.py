"""A chat's own time zone, kept whether or not it subscribes (schema version 4)."""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.storage import MIGRATIONS, ChatPreferenceStore, Database, Destination, SubscriptionStore
from bot.storage.migrations import current_version
from bot.storage.schema import SCHEMA_VERSION

Clock = Any
OpenDb = Any
TOKYO, BERLIN = ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/Berlin")


async def test_a_chosen_zone_is_kept_per_chat_and_topic(db: Database, clock: Clock) -> None:
    prefs = ChatPreferenceStore(db)
    assert await prefs.zone(Destination(7)) is None
    await prefs.set_zone(Destination(7), TOKYO, clock())
    await prefs.set_zone(Destination(-100, 3), BERLIN, clock())
    assert await prefs.zone(Destination(7)) == TOKYO
    assert await prefs.zone(Destination(-100, 3)) == BERLIN
    assert await prefs.zone(Destination(-100)) is None  # another topic chose nothing
    await prefs.set_zone(Destination(7), ZoneInfo("Etc/GMT-2"), clock())
    again = await prefs.zone(Destination(7))
    assert again is not None and again.key == "Etc/GMT-2"


async def test_a_stored_zone_that_no_longer_loads_falls_back(db: Database, clock: Clock) -> None:
    prefs = ChatPreferenceStore(db)
    await prefs.set_zone(Destination(8), TOKYO, clock())
    table = db.tables.chat_preferences
    async with db.engine.begin() as conn:  # as if tzdata had dropped the name
        await conn.execute(update(table).values(timezone="Gone/Away"))
    assert await prefs.zone(Destination(8)) is None


async def test_a_version_3_database_upgrades_keeping_subscribers_and_gains_preferences(
        open_db: OpenDb, clock: Clock) -> None:
    old = await open_db(migrations=MIGRATIONS[:3])
    kept = [await SubscriptionStore(old).subscribe(Destination(n, n % 2), "private",
                                                   time(7, n), TOKYO, clock())
            for n in range(1, 12)]
    async with old.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
    assert await current_version(old.engine) == 3 and "chat_preferences" not in names
    new = await open_db()
    assert await current_version(new.engine) == SCHEMA_VERSION >= 4
    for subscription in kept:
        assert await SubscriptionStore(new).get(subscription.destination) == subscription
    prefs = ChatPreferenceStore(new)
    await prefs.set_zone(Destination(1), BERLIN, clock())
    assert await prefs.zone(Destination(1)) == BERLIN


async def test_a_migrating_group_takes_its_zone_along(db: Database, clock: Clock) -> None:
    prefs = ChatPreferenceStore(db)
    await prefs.set_zone(Destination(-55), TOKYO, clock())
    await prefs.set_zone(Destination(-55, 4), BERLIN, clock())
    await SubscriptionStore(db).migrate_chat(-55, -10055, clock())
    assert await prefs.zone(Destination(-10055)) == TOKYO
    assert await prefs.zone(Destination(-10055, 4)) == BERLIN
    assert await prefs.zone(Destination(-55)) is None


async def test_a_migrating_group_keeps_what_the_new_chat_chose(db: Database, clock: Clock) -> None:
    prefs = ChatPreferenceStore(db)
    await prefs.set_zone(Destination(-66), TOKYO, clock())
    await prefs.set_zone(Destination(-10066), BERLIN, clock())
    await SubscriptionStore(db).migrate_chat(-66, -10066, clock())
    assert await prefs.zone(Destination(-10066)) == BERLIN
    assert await prefs.zone(Destination(-66)) is None
