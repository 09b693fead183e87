"""Broadcast figures and operator stats add up: each destination once, by its final state."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut

from bot.delivery import outcome
from bot.delivery.broadcast import fan_out
from bot.delivery.outcome import Action, classify
from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    MessagesPayload,
    NewDelivery,
    SubscriptionStore,
)
from bot.storage.broadcasts import BROADCAST, Audience, BroadcastStore
from bot.storage.ledger import ClaimedDelivery
from bot.storage.payloads import MessagePart
from bot.storage.stats import GONE_MARKERS, DeliveryTally, StatsQueries
from tests.database_fixtures import Clock

BODY = MessagesPayload((MessagePart("Hello"),))


async def add(db: Database, ref: str, chats: range, clock: Clock, kind: str = BROADCAST) -> None:
    await DeliveryLedger(db).add([NewDelivery(kind, ref, Destination(c), BODY) for c in chats],
                                 clock())


async def claim(db: Database, clock: Clock, count: int = 1) -> list[ClaimedDelivery]:
    claimed = await DeliveryLedger(db).claim("w", count, clock())
    assert len(claimed) == count
    return claimed


async def sent(db: Database, row: ClaimedDelivery, clock: Clock) -> None:
    d = row.delivery
    assert await DeliveryLedger(db).part_sent(d.id, 1, True, clock(), token=d.claim_token)


async def failed(db: Database, row: ClaimedDelivery, reason: str, clock: Clock) -> None:
    d = row.delivery
    assert await DeliveryLedger(db).fail(d.id, reason, clock(), token=d.claim_token)


async def uncertain(db: Database, row: ClaimedDelivery, clock: Clock, *, resend: bool) -> None:
    d = row.delivery
    assert await DeliveryLedger(db).mark_uncertain(
        d.id, "TimedOut: Timed out", clock(), resend=resend,
        uncertain_count=d.uncertain_count, token=d.claim_token)


def test_the_blocked_markers_are_the_classifiers() -> None:
    assert set(GONE_MARKERS) == {*outcome._CHAT_GONE, *outcome._TOPIC_GONE}


FAILURES: list[TelegramError] = [
    Forbidden("Forbidden: bot was blocked by the user"),
    Forbidden("Forbidden: user is deactivated"),
    Forbidden("Forbidden: bot was kicked from the supergroup chat"),
    *(BadRequest(f"Bad Request: {marker}") for marker in
      (*outcome._CHAT_GONE, *outcome._TOPIC_GONE)),
    BadRequest("Bad Request: can't parse entities: unsupported start tag"),
    BadRequest("Bad Request: message is too long"),
    BadRequest("Bad Request: chat_id is empty"),  # mentions the chat, but it is not gone
    NetworkError("Bad Gateway"),
    TimedOut("Timed out"),
]


@pytest.mark.parametrize("error", FAILURES, ids=lambda e: f"{type(e).__name__}:{e.message}")
async def test_a_failure_is_blocked_exactly_when_the_sender_ends_the_subscription(
        db: Database, clock: Clock, error: TelegramError) -> None:
    verdict = classify(error)
    await add(db, "7", range(1, 2), clock)
    [row] = await claim(db, clock)
    await failed(db, row, verdict.reason, clock)
    figures = await BroadcastStore(db).figures(7)
    gone = verdict.action in (Action.CHAT_GONE, Action.TOPIC_GONE)
    assert (figures.blocked, figures.failed) == ((1, 0) if gone else (0, 1))


@pytest.mark.parametrize("reason", ["internal error: ValueError('x')",
                                    "chat migrated to -1005, which already has this message",
                                    "worker stopped while sending; fate unknown"])
async def test_other_stored_reasons_are_failures(db: Database, clock: Clock,
                                                 reason: str) -> None:
    await add(db, "7", range(1, 2), clock)
    [row] = await claim(db, clock)
    await failed(db, row, reason, clock)
    assert await BroadcastStore(db).figures(7) == DeliveryTally(failed=1)


async def test_each_destination_counts_once_and_twice_is_counted_beside(
        db: Database, clock: Clock) -> None:
    store = BroadcastStore(db)
    await add(db, "3", range(1, 9), clock)
    a, b, c, d, e, f, g, h = await claim(db, clock, 8)
    await sent(db, a, clock)
    await uncertain(db, b, clock, resend=True)  # resent, then sent: may have it twice
    await uncertain(db, c, clock, resend=False)  # left uncertain: once at most
    await uncertain(db, d, clock, resend=True)  # resent, then uncertain again
    await failed(db, e, "Forbidden: Forbidden: bot was blocked by the user", clock)
    await failed(db, f, "BadRequest: Message is too long", clock)
    assert await store.figures(3) == DeliveryTally(sent=1, blocked=1, failed=1, uncertain=1,
                                                   waiting=4)
    again_b, again_d = await claim(db, clock, 2)
    await sent(db, again_b, clock)
    await uncertain(db, again_d, clock, resend=True)  # a row is resent once only
    await sent(db, g, clock)
    await sent(db, h, clock)
    figures = await store.figures(3)
    assert figures == DeliveryTally(sent=4, blocked=1, failed=1, uncertain=2, twice=2)
    assert figures.total == 8 and figures.settled == 8


async def test_a_cancel_takes_back_only_what_is_not_claimed(db: Database,
                                                           clock: Clock) -> None:
    store = BroadcastStore(db)
    broadcast = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.start(broadcast.id, clock())
    await add(db, str(broadcast.id), range(1, 11), clock)
    first, second = await claim(db, clock, 2)
    await sent(db, first, clock)
    in_flight, = await claim(db, clock)
    assert await store.cancel(broadcast.id, clock())
    assert not await store.cancel(broadcast.id, clock())  # once
    now_state = await store.get(broadcast.id)
    assert now_state is not None and now_state.state == "cancelling"
    assert await store.figures(broadcast.id) == DeliveryTally(sent=1, cancelled=7, waiting=2)
    await sent(db, second, clock)
    await failed(db, in_flight, "Forbidden: Forbidden: bot was blocked by the user", clock)
    figures = await store.figures(broadcast.id)
    assert figures == DeliveryTally(sent=2, blocked=1, cancelled=7)
    assert figures.total == 10
    assert await store.settle_cancel(broadcast.id, clock())
    assert not await store.settle_cancel(broadcast.id, clock())  # one report only
    ended = await store.get(broadcast.id)
    assert ended is not None and ended.state == "cancelled" and ended.finished_at is not None


async def test_a_row_put_back_after_the_cancel_is_cancelled_by_a_second_sweep(
        db: Database, clock: Clock) -> None:
    store = BroadcastStore(db)
    broadcast = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.start(broadcast.id, clock())
    await add(db, str(broadcast.id), range(1, 4), clock)
    [row] = await claim(db, clock)
    assert await store.cancel(broadcast.id, clock())
    await uncertain(db, row, clock, resend=True)  # a timeout puts it back to pending
    assert await store.figures(broadcast.id) == DeliveryTally(cancelled=2, waiting=1)
    assert await store.cancel_unsent(broadcast.id, clock()) == 1
    assert await store.figures(broadcast.id) == DeliveryTally(cancelled=3)


async def test_cancelling_a_draft_or_a_finished_broadcast(db: Database, clock: Clock) -> None:
    store = BroadcastStore(db)
    draft = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.cancel(draft.id, clock())
    cancelled = await store.get(draft.id)
    assert cancelled is not None and cancelled.state == "cancelled"
    assert not await store.start(draft.id, clock())
    done = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.start(done.id, clock())
    assert await store.finish(done.id, clock())
    assert not await store.cancel(done.id, clock())
    assert [b.id for b in await store.in_state("sending", "cancelling")] == []


async def test_operator_stats_count_each_message_once_by_kind(db: Database,
                                                              clock: Clock) -> None:
    await add(db, "old", range(1, 3), clock, kind="digest")
    await claim(db, clock, 2)
    clock.advance(timedelta(days=2))
    await add(db, "2025-03-12", range(1, 5), clock, kind="digest")
    await add(db, "9", range(1, 4), clock)
    digest_a, digest_b, digest_c, _, bc_a, bc_b = await claim(db, clock, 6)
    await sent(db, digest_a, clock)
    await uncertain(db, digest_b, clock, resend=True)
    [digest_b] = await claim(db, clock)
    await sent(db, digest_b, clock)
    await failed(db, digest_c, "Forbidden: Forbidden: bot was blocked by the user", clock)
    await sent(db, bc_a, clock)
    await failed(db, bc_b, "BadRequest: Message is too long", clock)
    await DeliveryLedger(db).cancel(BROADCAST, "9", clock())
    day = await StatsQueries(db).last_day(clock())
    assert day.tally("digest") == DeliveryTally(sent=2, blocked=1, waiting=1, twice=1)
    assert day.tally(BROADCAST) == DeliveryTally(sent=1, failed=1, cancelled=1)
    assert day.tally() == DeliveryTally(sent=3, blocked=1, failed=1, cancelled=1, waiting=1,
                                        twice=1)
    assert day.kinds() == {"digest": 4, BROADCAST: 3}
    week = await StatsQueries(db).last_week(clock())
    assert week.tally("digest").total == 6  # the old rows, still in flight, count once


async def test_a_fan_out_stops_once_the_broadcast_is_cancelled(db: Database,
                                                               clock: Clock) -> None:
    subscriptions = SubscriptionStore(db)
    for chat in range(1, 6):
        await subscriptions.subscribe(Destination(chat), "private", time(7), ZoneInfo("UTC"),
                                      clock())
    store = BroadcastStore(db)
    running = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.start(running.id, clock())
    assert await fan_out(db, running, BODY, clock(), batch_size=2) == 5
    stopped = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.start(stopped.id, clock())
    assert await store.cancel(stopped.id, clock())  # pressed before the rows were made
    assert await fan_out(db, stopped, BODY, clock(), batch_size=2) == 0
    assert await store.figures(stopped.id) == DeliveryTally()
    assert (await store.figures(running.id)).waiting == 5
