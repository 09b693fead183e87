"""The due scan against real databases: catch-up, cut-off, DST days, races, zone changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from bot.config import BriefingSettings
from bot.delivery import DueScan, LibraryDigestBuilder
from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    MessagesPayload,
    SubscriptionStore,
)
from tests.delivery.helpers import FakeLibrary, make_story

Clock = Any
OpenDb = Any
BERLIN = ZoneInfo("Europe/Berlin")
UTCZ = ZoneInfo("UTC")
ALWAYS = BriefingSettings(send_when_empty=True, catch_up_hours=12.0, top_n=3)


def scan_for(db: Database, library: FakeLibrary, settings: BriefingSettings = ALWAYS) -> DueScan:
    return DueScan(db, LibraryDigestBuilder(library, settings), settings, batch_size=2)


async def digest_refs(db: Database, dest: Destination | None = None) -> list[str]:
    rows = await DeliveryLedger(db).rows(kind="digest")
    return [r.ref for r in rows if dest is None or r.destination == dest]


async def test_due_briefing_created_once(db: Database, clock: Clock,
                                         library: FakeLibrary) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 6, 0, tzinfo=UTC))
    library.items.append(make_story("a1", "Harbour strike", clock() - timedelta(hours=2)))
    for i in range(5):
        await store.subscribe(Destination(i + 1), "private", time(8), UTCZ, clock())
    scan = scan_for(db, library)
    assert (await scan.run(clock())).due == 0
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    report = await scan.run(clock())
    assert (report.due, report.created) == (5, 5)
    assert (await scan.run(clock())).due == 0
    assert await digest_refs(db) == ["2025-03-10"] * 5
    sub = await store.get(Destination(1))
    assert sub is not None
    assert sub.last_digest_date == date(2025, 3, 10)
    assert sub.last_digest_at == datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    assert sub.next_due_at == datetime(2025, 3, 11, 8, 0, tzinfo=UTC)
    # 5 identical briefings: one stored body
    async with db.engine.connect() as conn:
        bodies = (await conn.execute(select(func.count()).select_from(db.tables.payloads))
                  ).scalar()
    assert bodies == 1


async def test_downtime_gives_one_catch_up_and_none_past_the_cut_off(
    db: Database, clock: Clock, library: FakeLibrary
) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 0, 0, tzinfo=UTC))
    recent = await store.subscribe(Destination(1), "private", time(6), UTCZ, clock())
    old = await store.subscribe(Destination(2), "private", time(1), BERLIN, clock())
    # the bot was down from 00:00 on the 10th until 15:00 on the 12th
    clock.set(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))
    report = await scan_for(db, library).run(clock())
    # 06:00 UTC on the 12th is 9 h late (<= 12 h): exactly one catch-up, for the 12th
    assert await digest_refs(db, recent.destination) == ["2025-03-12"]
    # 01:00 Berlin on the 12th (00:00 UTC) is 15 h late: past the cut-off, none
    assert await digest_refs(db, old.destination) == []
    assert report.skipped_late == 1
    for dest in (recent.destination, old.destination):
        sub = await store.get(dest)
        assert sub is not None
        assert sub.next_due_at is not None
        assert sub.next_due_at > clock()


async def test_catch_up_covers_the_due_day_only_once(db: Database, clock: Clock,
                                                     library: FakeLibrary) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 7, 0, tzinfo=UTC))
    sub = await store.subscribe(Destination(1), "private", time(8), UTCZ, clock())
    clock.set(datetime(2025, 3, 10, 18, 0, tzinfo=UTC))  # 10 h late: still sent
    await scan_for(db, library).run(clock())
    assert await digest_refs(db, sub.destination) == ["2025-03-10"]
    fresh = await store.get(sub.destination)
    assert fresh is not None
    assert fresh.next_due_at == datetime(2025, 3, 11, 8, 0, tzinfo=UTC)


async def run_every_minute(scan: DueScan, clock: Clock, start: datetime, end: datetime,
                           *, dense: tuple[tuple[datetime, datetime], ...] = ()) -> None:
    """Scan each minute (only inside ``dense`` windows if given, every 10 min elsewhere)."""
    clock.set(start)
    while clock() <= end:
        await scan.run(clock())
        inside = not dense or any(a <= clock() < b for a, b in dense)
        clock.advance(timedelta(minutes=1 if inside else 10))


def around(*instants: datetime) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((i - timedelta(hours=2), i + timedelta(hours=2)) for i in instants)


async def test_spring_forward_day_has_exactly_one_briefing(
    db: Database, clock: Clock, library: FakeLibrary
) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 29, 12, 0, tzinfo=UTC))
    sub = await store.subscribe(Destination(1), "private", time(2, 30), BERLIN, clock())
    assert sub.next_due_at == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # 03:30 CEST
    await run_every_minute(scan_for(db, library), clock,
                           datetime(2025, 3, 29, 22, 0, tzinfo=UTC),
                           datetime(2025, 3, 31, 2, 0, tzinfo=UTC),
                           dense=around(datetime(2025, 3, 30, 1, 0, tzinfo=UTC),
                                        datetime(2025, 3, 31, 0, 30, tzinfo=UTC)))
    rows = await DeliveryLedger(db).rows(kind="digest")
    assert [r.ref for r in rows] == ["2025-03-30", "2025-03-31"]
    assert rows[0].created_at == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert rows[1].created_at == datetime(2025, 3, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST


async def test_fall_back_day_has_exactly_one_briefing(
    db: Database, clock: Clock, library: FakeLibrary
) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 10, 25, 12, 0, tzinfo=UTC))
    await store.subscribe(Destination(1), "private", time(2, 30), BERLIN, clock())
    await run_every_minute(scan_for(db, library), clock,
                           datetime(2025, 10, 25, 22, 0, tzinfo=UTC),
                           datetime(2025, 10, 27, 3, 0, tzinfo=UTC),
                           dense=around(datetime(2025, 10, 26, 1, 0, tzinfo=UTC),
                                        datetime(2025, 10, 27, 1, 30, tzinfo=UTC)))
    rows = await DeliveryLedger(db).rows(kind="digest")
    assert [r.ref for r in rows] == ["2025-10-26", "2025-10-27"]
    # the first 02:30 (CEST) of the repeated hour, not the second (CET)
    assert rows[0].created_at == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert rows[1].created_at == datetime(2025, 10, 27, 1, 30, tzinfo=UTC)


async def test_two_concurrent_scans_make_one_row_each(
    open_db: OpenDb, clock: Clock, library: FakeLibrary
) -> None:
    first, second = await open_db(), await open_db()
    store = SubscriptionStore(first)
    clock.set(datetime(2025, 3, 10, 7, 0, tzinfo=UTC))
    for i in range(30):
        await store.subscribe(Destination(i + 1), "private", time(8), UTCZ, clock())
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    reports = await asyncio.gather(scan_for(first, library).run(clock()),
                                   scan_for(second, library).run(clock()),
                                   scan_for(first, library).run(clock()))
    assert sum(r.created for r in reports) == 30
    refs = await digest_refs(first)
    assert len(refs) == 30


async def test_changed_zone_never_yields_a_second_briefing_for_a_date(
    db: Database, clock: Clock, library: FakeLibrary
) -> None:
    store = SubscriptionStore(db)
    dest = Destination(1)
    clock.set(datetime(2025, 3, 10, 5, 0, tzinfo=UTC))
    await store.subscribe(dest, "private", time(8), BERLIN, clock())  # 07:00 UTC
    scan = scan_for(db, library)
    await run_every_minute(scan, clock, datetime(2025, 3, 10, 6, 50, tzinfo=UTC),
                           datetime(2025, 3, 10, 7, 10, tzinfo=UTC))
    # now move west: 08:00 in New York on the 10th is still ahead, but the 10th is done
    await store.set_timezone(dest, ZoneInfo("America/New_York"), clock())
    await store.set_time(dest, time(9), clock())
    await run_every_minute(scan, clock, datetime(2025, 3, 10, 7, 10, tzinfo=UTC),
                           datetime(2025, 3, 11, 14, 0, tzinfo=UTC),
                           dense=around(datetime(2025, 3, 10, 13, 0, tzinfo=UTC),
                                        datetime(2025, 3, 11, 13, 0, tzinfo=UTC)))
    assert await digest_refs(db, dest) == ["2025-03-10", "2025-03-11"]


async def test_empty_briefing_advances_without_a_row(db: Database, clock: Clock,
                                                     library: FakeLibrary) -> None:
    quiet = BriefingSettings(send_when_empty=False)
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 7, 0, tzinfo=UTC))
    await store.subscribe(Destination(1), "private", time(8), UTCZ, clock())
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    report = await scan_for(db, library, quiet).run(clock())
    assert (report.created, report.empty) == (0, 1)
    sub = await store.get(Destination(1))
    assert sub is not None
    assert sub.last_digest_date == date(2025, 3, 10)
    assert sub.next_due_at == datetime(2025, 3, 11, 8, 0, tzinfo=UTC)


async def test_briefing_content_follows_and_window(db: Database, clock: Clock,
                                                   library: FakeLibrary) -> None:
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 7, 0, tzinfo=UTC))
    t0 = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    library.items += [
        make_story("k1", "Harbour strike ends", t0),
        make_story("k2", "Ferry timetable", t0 + timedelta(hours=1),
                   ("The harbour ferries run again.",)),
        make_story("k3", "Council budget", t0 + timedelta(hours=2)),
        make_story("k0", "Too old", t0 - timedelta(days=2)),
    ]
    everything = await store.subscribe(Destination(1), "private", time(8), UTCZ, clock())
    harbour = await store.subscribe(Destination(2), "private", time(8), UTCZ, clock())
    await store.follow(harbour.destination, ["HARBOUR"], clock())
    builder = LibraryDigestBuilder(library, BriefingSettings(top_n=2))
    scan = DueScan(db, builder, BriefingSettings(top_n=2))
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    await scan.run(clock())
    ledger = DeliveryLedger(db)
    bodies = {}
    for sub in (everything, harbour):
        row = await ledger.find("digest", "2025-03-10", sub.destination)
        assert row is not None
        payload = await ledger.payload(row.payload_id)
        assert isinstance(payload, MessagesPayload)
        bodies[sub.destination.chat_id] = payload
    all_html = "".join(p.html for p in bodies[1].parts)
    assert "Council budget" in all_html
    assert "Ferry timetable" in all_html
    assert "Too old" not in all_html
    assert "1 more" in all_html  # three new stories, top 2 shown
    buttons = [b.callback_data for p in bodies[1].parts for row in p.buttons for b in row]
    assert buttons == ["open:k3", "open:k2", "st:s"]
    harbour_html = "".join(p.html for p in bodies[2].parts)
    assert "Council budget" not in harbour_html
    assert "Ferry timetable" in harbour_html and "Harbour strike ends" in harbour_html
    # the next briefing covers only what changed after this one
    library.items.append(make_story("k4", "Late news", datetime(2025, 3, 10, 9, 0, tzinfo=UTC)))
    clock.set(datetime(2025, 3, 11, 8, 0, tzinfo=UTC))
    await scan.run(clock())
    row = await ledger.find("digest", "2025-03-11", everything.destination)
    assert row is not None
    payload = await ledger.payload(row.payload_id)
    assert isinstance(payload, MessagesPayload)
    html = "".join(p.html for p in payload.parts)
    assert "Late news" in html and "Council budget" not in html


def test_rendering_is_memoised_per_zone_and_date(library: FakeLibrary) -> None:
    from bot.storage import Subscription

    t0 = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    library.items.append(make_story("k1", "Harbour", t0))
    builder = LibraryDigestBuilder(library, BriefingSettings())

    def sub(i: int, zone: ZoneInfo) -> Subscription:
        return Subscription(i, Destination(i), "private", time(8), zone, "daily", (), False,
                            True, None, None, t0, t0, None, None, None)

    until = t0 + timedelta(days=1)
    for i in range(1000):
        builder.build(sub(i, UTCZ), t0 - timedelta(days=1), until, local_date=date(2025, 3, 10))
    builder.build(sub(1, BERLIN), t0 - timedelta(days=1), until, local_date=date(2025, 3, 10))
    assert builder.renders == 2


async def test_a_long_scan_hands_briefings_to_the_sender_as_each_batch_commits(
    db: Database, clock: Clock, library: FakeLibrary
) -> None:
    """With thousands due at once, the first briefings go out while the scan goes on."""
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 6, 0, tzinfo=UTC))
    library.items.append(make_story("a1", "Harbour strike", clock() - timedelta(hours=2)))
    for i in range(250):
        await store.subscribe(Destination(i + 1), "private", time(8), UTCZ, clock())
    ledger = DeliveryLedger(db)
    woken = asyncio.Event()
    scan_finished = False
    seen: list[tuple[int, bool]] = []  # (briefings ready, scan finished) at each wake-up

    async def sender() -> None:
        while True:
            await woken.wait()
            woken.clear()
            finished = scan_finished  # as it was when woken, not after the query
            seen.append((len(await ledger.rows(kind="digest")), finished))

    watcher = asyncio.ensure_future(sender())
    scan = DueScan(db, LibraryDigestBuilder(library, ALWAYS), ALWAYS, batch_size=100,
                   on_created=woken.set)  # three batches
    clock.set(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    report = await scan.run(clock())
    scan_finished = True
    await asyncio.sleep(0.1)
    watcher.cancel()
    assert report.created == 250
    ready, finished = seen[0]
    assert not finished and ready >= 100  # the first batch was committed and announced


async def test_a_batch_of_only_late_briefings_is_skipped_and_the_scan_goes_on(
    db: Database, clock: Clock, library: FakeLibrary
) -> None:
    """After a long outage the oldest (first scanned) subscriptions are all past the
    cut-off: they are moved on without a briefing, and the ones behind them still get
    theirs."""
    store = SubscriptionStore(db)
    clock.set(datetime(2025, 3, 10, 0, 0, tzinfo=UTC))
    library.items.append(make_story("a1", "Harbour strike", clock()))
    late = [await store.subscribe(Destination(i + 1), "private", time(1), UTCZ, clock())
            for i in range(3)]
    recent = await store.subscribe(Destination(99), "private", time(14), UTCZ, clock())
    clock.set(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))  # down for two and a half days
    report = await scan_for(db, library).run(clock())  # batches of 2: the first all late
    assert (report.skipped_late, report.created) == (3, 1)
    assert await digest_refs(db, recent.destination) == ["2025-03-12"]
    for sub in late:
        moved = await store.get(sub.destination)
        assert moved is not None and moved.last_digest_date is None
        assert moved.next_due_at == datetime(2025, 3, 13, 1, 0, tzinfo=UTC)


def test_a_briefing_question_is_answered_once_until_the_library_changes(
        tmp_path: Path) -> None:
    """A million subscribers due in one minute ask the same few questions: the stories are
    walked once per question, and a story that arrives afterwards is in the next answer."""
    from bot.storage import Subscription
    from bot.stories.library import StoryLibrary

    folder = tmp_path / "stories"
    folder.mkdir()

    def write(name: str, title: str, stamp: str) -> None:
        (folder / name).write_text(f"{stamp}\n\n{title}\n\nHighlights\n• About {title}\n"
                                   f"Story\n\nBody of {title}.\n")

    write("a.txt", "Harbour strike ends", "Mar 10, 2025, 6:00 AM")
    library = StoryLibrary(folder, UTCZ)
    library.rescan()
    builder = LibraryDigestBuilder(library, BriefingSettings())
    since, until = datetime(2025, 3, 9, 8, tzinfo=UTC), datetime(2025, 3, 10, 8, tzinfo=UTC)
    t0 = since

    def briefing(i: int) -> str:
        sub = Subscription(i, Destination(i), "private", time(8), UTCZ, "daily", (), False,
                           True, None, None, t0, t0, None, None, None)
        payload = builder.build(sub, since, until, local_date=date(2025, 3, 10))
        assert isinstance(payload, MessagesPayload)
        return "".join(part.html for part in payload.parts)

    first = [briefing(i) for i in range(1, 501)]
    assert builder.selections == 1
    assert len(set(first)) == 1 and "Harbour strike ends" in first[0]
    write("b.txt", "Ferry timetable", "Mar 10, 2025, 7:00 AM")
    library.rescan()
    after = briefing(501)
    assert "Ferry timetable" in after and "Harbour strike ends" in after
    assert builder.selections == 2


async def test_the_due_scan_reads_its_own_index_even_right_after_a_bulk_import(
        db: Database, clock: Clock, library: FakeLibrary) -> None:
    """Thousands of subscriptions imported at once, before the database's statistics know
    them: the scan still looks up only the due rows, in order, through its partial index
    (PostgreSQL had chosen the (mode, active) index and read every row for each batch)."""
    if not db.is_postgresql:
        pytest.skip("SQLite's planner, without statistics, still prefers the (mode, active) "
                    "index; a known limit for very large SQLite audiences")
    now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    t = db.tables.subscriptions
    async with db.engine.begin() as conn:
        await conn.execute(t.insert(), [{
            "chat_id": n, "thread_id": 0, "chat_type": "private", "delivery_time": "08:00",
            "timezone": "UTC", "mode": "daily", "follows": [], "paused": False,
            "active": True, "created_at": now, "updated_at": now, "next_due_at": now,
        } for n in range(1, 3001)])
    query = scan_for(db, library)._due(now).order_by(t.c.next_due_at).limit(500)
    compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    explain = "EXPLAIN QUERY PLAN " if not db.is_postgresql else "EXPLAIN "
    async with db.engine.connect() as conn:
        plan = " ".join(str(row) for row in await conn.execute(text(explain + str(compiled))))
    assert "ix_subscriptions_due" in plan, plan
