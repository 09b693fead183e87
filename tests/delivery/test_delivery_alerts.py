"""Instant alerts: matching follows, new vs updated (and what an update changed), no
re-alerts after a restart, and the buttons under each."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.delivery import Action, AlertPlanner, classify
from bot.render import visible_text
from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    KnownStoryStore,
    MessagesPayload,
    SubscriptionStore,
)
from bot.stories.model import Story, StoryBody
from tests.delivery.helpers import make_story

Clock = Any
UTCZ = ZoneInfo("UTC")


async def instant(db: Database, clock: Clock, chat: int, follows: list[str]) -> None:
    store = SubscriptionStore(db)
    dest = Destination(chat)
    await store.subscribe(dest, "private", time(8), UTCZ, clock())
    await store.set_mode(dest, "instant", clock())
    if follows:
        await store.follow(dest, follows, clock())


async def test_alerts_follow_words_and_mark_updates(db: Database, clock: Clock) -> None:
    await instant(db, clock, 1, [])
    await instant(db, clock, 2, ["harbour"])
    await instant(db, clock, 3, ["budget"])
    await SubscriptionStore(db).subscribe(Destination(4), "private", time(8), UTCZ, clock())
    await instant(db, clock, 5, [])
    await SubscriptionStore(db).pause(Destination(5), clock())
    t0 = datetime(2025, 3, 10, 5, 0, tzinfo=UTC)
    strike = make_story("k1", "Harbour strike", t0)
    planner = AlertPlanner(db)
    assert await planner.plan([strike], [], clock()) == 2  # chats 1 and 2
    assert await planner.plan([strike], [], clock()) == 0  # reported again: nothing new
    updated = make_story("k1", "Harbour strike", t0 + timedelta(hours=1))
    assert await planner.plan([], [updated], clock()) == 2
    ledger = DeliveryLedger(db)
    rows = await ledger.rows(kind="alert")
    assert sorted({r.destination.chat_id for r in rows}) == [1, 2]
    assert {r.ref for r in rows} == {f"k1@{t0.isoformat()}",
                                     f"k1@{(t0 + timedelta(hours=1)).isoformat()}"}
    texts = []
    for r in rows:
        payload = await ledger.payload(r.payload_id)
        assert isinstance(payload, MessagesPayload)
        texts.append(payload.parts[0].html)
    assert any("New story" in t for t in texts)
    assert any("Updated story" in t for t in texts)


async def test_restart_alerts_only_what_changed_while_down(db: Database, clock: Clock) -> None:
    await instant(db, clock, 1, [])
    t0 = datetime(2025, 3, 10, 5, 0, tzinfo=UTC)
    catalogue = [make_story(f"k{i}", f"Story {i}", t0 + timedelta(minutes=i)) for i in range(5)]
    planner = AlertPlanner(db)
    # first run ever: the back catalogue is recorded, not alerted
    assert await planner.catch_up(catalogue, clock()) == 0
    # restart with the same folder: nothing to alert
    assert await AlertPlanner(db).catch_up(catalogue, clock()) == 0
    # while down: one story updated, one added
    changed = [*catalogue[:4], make_story("k4", "Story 4", t0 + timedelta(hours=3)),
               make_story("k9", "Story 9", t0 + timedelta(hours=2))]
    assert await AlertPlanner(db).catch_up(changed, clock()) == 2


def test_outcome_classification() -> None:
    assert classify(RetryAfter(3)).action is Action.RETRY_AFTER
    assert classify(RetryAfter(3)).retry_after == 3.0
    assert classify(ChatMigrated(-100)).new_chat_id == -100
    assert classify(Forbidden("Forbidden: bot was blocked by the user")).action is Action.CHAT_GONE
    assert classify(BadRequest("Chat not found")).action is Action.CHAT_GONE
    assert classify(BadRequest("Message thread not found")).action is Action.TOPIC_GONE
    assert classify(BadRequest("Can't parse entities")).action is Action.REJECTED
    assert classify(TimedOut()).action is Action.UNCERTAIN
    assert classify(TimedOut("Pool timeout: all connections busy")).action is Action.TRANSIENT
    assert classify(NetworkError("Bad Gateway (502)")).action is Action.TRANSIENT


async def alert_headers(db: Database, chat: int) -> list[str]:
    """The first line of each alert ``chat`` got, in the order they were planned."""
    ledger = DeliveryLedger(db)
    headers = []
    for row in sorted(await ledger.rows(kind="alert"), key=lambda r: r.id):
        if row.destination.chat_id != chat:
            continue
        payload = await ledger.payload(row.payload_id)
        assert isinstance(payload, MessagesPayload)
        headers.append(visible_text(payload.parts[0].html).split("\n")[0])
    return headers


def version(title: str, updated: datetime, highlights: tuple[str, ...] = ("Boats run.",),
            body: tuple[str, ...] = ("Body.",)) -> Story:
    return Story(id="k1", key="k1", seq=None, title=title, published=T0, updated=updated,
                 body=StoryBody(highlights, body), source="k1.txt")


T0 = datetime(2025, 3, 10, 5, 0, tzinfo=UTC)


async def test_an_update_says_what_changed_even_after_a_restart(
        db: Database, clock: Clock) -> None:
    await instant(db, clock, 1, [])
    hour = timedelta(hours=1)
    await AlertPlanner(db).plan([version("Ferry resumes", T0)], [], clock())
    # each planner is a restart: what the last version was is read from the database
    await AlertPlanner(db).plan([], [version("Ferry resumes", T0 + hour, (
        "Boats run.", "More often."))], clock())
    await AlertPlanner(db).plan([], [version("Ferry  resumes\n", T0 + 2 * hour, (
        "Boats run.", "More often."), ("New body.",))], clock())  # re-wrapped title: same
    await AlertPlanner(db).plan([], [version("Ferry resumes at last", T0 + 3 * hour, (
        "Boats run daily.",), ("Newer body.",))], clock())
    await AlertPlanner(db).plan([], [version("Ferry resumes at last", T0 + 4 * hour, (
        "Boats run daily.",), ("Newer body.",))], clock())
    # and while the bot was down: found by the start-up catch-up
    assert await AlertPlanner(db).catch_up([version("Ferry resumes at last", T0 + 5 * hour, (
        "Boats run daily.",), ("Other body.",))], clock()) == 1
    assert await alert_headers(db, 1) == [
        "🆕 New story",
        "🔄 Updated story — highlights changed",
        "🔄 Updated story — story text changed",
        "🔄 Updated story — title, highlights and story text changed",
        "🔄 Updated story — new time, same text",
        "🔄 Updated story — story text changed",
    ]


async def test_a_version_seen_before_digests_were_kept(db: Database, clock: Clock) -> None:
    await instant(db, clock, 1, [])
    await KnownStoryStore(db).remember([("k1", T0)], clock())  # as schema version 5 left it
    hour = timedelta(hours=1)
    await AlertPlanner(db).plan([], [version("Ferry", T0 + hour)], clock())
    assert await alert_headers(db, 1) == ["🔄 Updated story"]  # no claim it cannot back
    # a start-up fills in the digests of the version it finds unchanged…
    await KnownStoryStore(db).remember([("k2", T0)], clock())
    two = Story(id="k2", key="k2", seq=None, title="Other", published=T0, updated=T0,
                body=StoryBody(("H.",), ("B.",)), source="k2.txt")
    assert await AlertPlanner(db).catch_up([two, version("Ferry", T0 + hour)], clock()) == 0
    assert (await KnownStoryStore(db).versions(["k2"]))["k2"].has_digests
    # …so the next update of it says what changed
    changed = replace(two, updated=T0 + hour, title="Other title")
    await AlertPlanner(db).plan([], [changed], clock())
    assert (await alert_headers(db, 1))[-1] == "🔄 Updated story — title changed"


async def test_an_alert_is_one_unnumbered_card_with_read_and_settings_buttons(
        db: Database, clock: Clock) -> None:
    await instant(db, clock, 1, [])
    await SubscriptionStore(db).subscribe(Destination(-100), "channel", time(8), UTCZ, clock())
    await SubscriptionStore(db).set_mode(Destination(-100), "instant", clock())
    planner = AlertPlanner(db, bot_username="story_bot")
    assert await planner.plan([version("1984 is back in print", T0)], [], clock()) == 2
    ledger = DeliveryLedger(db)
    sent = {}
    for row in await ledger.rows(kind="alert"):
        payload = await ledger.payload(row.payload_id)
        assert isinstance(payload, MessagesPayload) and len(payload.parts) == 1
        sent[row.destination.chat_id] = payload.parts[0]
    private, channel = sent[1], sent[-100]
    assert [line for line in visible_text(private.html).split("\n") if line][:3] == [
        "🆕 New story", "1984 is back in print", "Published 10 Mar 2025, 05:00 UTC"]
    assert [(b.text, b.callback_data) for row in private.buttons for b in row] == [
        ("📖 Read the story", "open:k1"), ("⚙️ Settings", "st:s")]
    assert [(b.text, b.url) for row in channel.buttons for b in row] == [
        ("📖 Read the story", "https://t.me/story_bot?start=story_k1"),
        ("⚙️ Settings", "https://t.me/story_bot?start=settings")]
