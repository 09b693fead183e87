"""Guards of the sender that a review removed without any test noticing: each test here
fails when its guard is gone (flood requeue, deleted topics, migration clashes)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.delivery import LaneRateLimiter, Sender
from bot.sandbox import Fault, FaultKind, SandboxServer
from bot.storage import (
    Database,
    DeliveryLedger,
    DeliveryState,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
    SubscriptionStore,
)
from tests.delivery.helpers import fast_settings

Clock = Any
BotFactory = Any
UTCZ = ZoneInfo("UTC")
BRIEFING = MessagesPayload((MessagePart("<b>Briefing</b> for you"),))
ALERT = MessagesPayload((MessagePart("<b>Alert</b>: ferries run again"),))


async def subscribe(db: Database, clock: Clock, dest: Destination, chat_type: str) -> int:
    return (await SubscriptionStore(db).subscribe(dest, chat_type, time(8), UTCZ, clock())).id


def sends_to(sandbox: SandboxServer, chat_id: int, thread_id: int | None = None) -> list[Any]:
    """Every sendMessage the bot made to a chat (or one topic), answered or refused."""
    return [c for c in sandbox.calls("sendMessage") if c.chat_id == chat_id and (
        thread_id is None or str(c.params.get("message_thread_id")) == str(thread_id))]


async def test_a_flood_wait_that_outlasts_the_limiter_requeues_the_row_until_it_passes(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    """The limiter retries a 429 at most ``max_retries`` times; after that the row is not
    lost nor failed: it goes back to pending for ``retry_after`` and is sent then, once."""
    sandbox.add_chat(11, "private")
    await subscribe(db, clock, Destination(11), "private")
    await DeliveryLedger(db).add(
        [NewDelivery("digest", "2025-03-10", Destination(11), BRIEFING)], clock())
    flood = sandbox.inject(Fault(FaultKind.FLOOD, chat_id=11, method="sendMessage",
                                 retry_after=1, times=3))
    limiter = LaneRateLimiter(1000.0, per_chat_per_second=1000.0, max_retries=1,
                              retry_margin=0.0)
    sender = Sender(db, await make_bot(limiter=limiter), fast_settings(), clock=clock)

    await sender.drain()
    assert flood.hits == 2  # the first answer and one retry: then the limiter gave up
    assert limiter.retries == 1
    [row] = await DeliveryLedger(db).rows()
    assert row.state is DeliveryState.PENDING  # neither lost nor failed
    assert row.not_before == clock() + timedelta(seconds=1)  # Telegram's retry_after
    assert row.error is not None and "RetryAfter" in row.error
    assert sandbox.bot_messages(11) == []

    clock.advance(timedelta(seconds=0.5))
    assert await sender.drain() == 0  # not before retry_after has passed
    assert flood.hits == 2
    sandbox.clear_faults()
    clock.advance(timedelta(seconds=0.5))
    assert await sender.drain() == 1
    assert [m.text for m in sandbox.bot_messages(11)] == ["Briefing for you"]
    [row] = await DeliveryLedger(db).rows()
    assert row.state is DeliveryState.SENT


async def test_a_deleted_forum_topic_ends_that_topic_only(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    forum = -1003000
    sandbox.add_chat(forum, "supergroup", is_forum=True, topics=[7, 8])
    gone, kept = Destination(forum, 7), Destination(forum, 8)
    for dest in (gone, kept):
        await subscribe(db, clock, dest, "supergroup")
    subs = SubscriptionStore(db)
    ledger = DeliveryLedger(db)
    # Two messages wait for the topic that is about to be deleted, one for the other topic.
    await ledger.add([NewDelivery("digest", "2025-03-10", gone, BRIEFING),
                      NewDelivery("alert", "k@1", gone, ALERT),
                      NewDelivery("digest", "2025-03-10", kept, BRIEFING)], clock())
    sandbox.state.chats[forum].topics.discard(7)  # an admin deleted topic 7
    sender = Sender(db, await make_bot(), fast_settings(concurrency=1), clock=clock)

    await sender.drain()
    ended = await subs.get(gone)
    assert ended is not None and not ended.active
    assert "thread not found" in (ended.ended_reason or "")
    still = await subs.get(kept)
    assert still is not None and still.active  # the rest of the forum keeps its briefing
    assert [m.text for m in sandbox.bot_messages(forum, thread_id=8)] == ["Briefing for you"]
    states = {(r.kind, r.destination.thread_id): r.state for r in await ledger.rows()}
    assert states == {("digest", 7): DeliveryState.FAILED, ("alert", 7): DeliveryState.FAILED,
                      ("digest", 8): DeliveryState.SENT}
    assert len(sends_to(sandbox, forum, 7)) == 1  # the alert was dropped, not tried

    clock.advance(timedelta(days=1))
    assert await sender.drain() == 0  # nothing for the deleted topic is ever retried
    assert len(sends_to(sandbox, forum, 7)) == 1


async def test_a_migrated_group_whose_new_chat_has_the_message_gets_it_once(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    """The supergroup already received today's briefing (it was subscribed too); when the
    old group's copy is answered "migrated", that copy fails instead of being resent."""
    old, new = -5005, -1005005
    sandbox.add_chat(old, "group", members=[4242])
    sandbox.add_chat(new, "supergroup", members=[4242])
    await subscribe(db, clock, Destination(old), "group")
    await subscribe(db, clock, Destination(new), "supergroup")
    ledger = DeliveryLedger(db)
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock)
    await ledger.add([NewDelivery("digest", "2025-03-10", Destination(new), BRIEFING)],
                     clock())
    assert await sender.drain() == 1
    await ledger.add([NewDelivery("digest", "2025-03-10", Destination(old), BRIEFING)],
                     clock())
    sandbox.inject(Fault(FaultKind.MIGRATE, chat_id=old, migrate_to_chat_id=new))

    await sender.drain()
    assert [m.text for m in sandbox.bot_messages(new)] == ["Briefing for you"]  # not twice
    assert len(sends_to(sandbox, new)) == 1
    rows = {r.destination.chat_id: r for r in await ledger.rows()}
    assert rows[new].state is DeliveryState.SENT
    assert rows[old].state is DeliveryState.FAILED
    assert "already has this message" in (rows[old].error or "")
    clock.advance(timedelta(hours=1))
    assert await sender.drain() == 0
    assert len(sends_to(sandbox, new)) == 1
