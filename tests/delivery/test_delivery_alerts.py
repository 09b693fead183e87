"""Instant alerts: matching follows, new vs updated, no re-alerts after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.delivery import Action, AlertPlanner, classify
from bot.storage import Database, DeliveryLedger, Destination, MessagesPayload, SubscriptionStore
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
