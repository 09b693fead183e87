"""The sender over real HTTP against the sandbox Bot API server, on real databases."""

from __future__ import annotations

import asyncio
import re
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.delivery import LaneRateLimiter, Sender
from bot.sandbox import Fault, FaultKind, SandboxServer
from bot.storage import (
    Button,
    Database,
    DeliveryLedger,
    DeliveryState,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
    SubscriptionStore,
)
from tests.delivery.helpers import fast_settings, sandbox_idle

Clock = Any
OpenDb = Any
BotFactory = Any
UTCZ = ZoneInfo("UTC")

ONE = MessagesPayload((MessagePart("<b>Briefing</b> for you"),))
TWO = MessagesPayload((
    MessagePart("<b>Part one</b>"),
    MessagePart("Part two", ((Button("Open", callback_data="open:k1"),),)),
))


async def subscribed(db: Database, clock: Clock, dest: Destination, chat_type: str = "private"
                     ) -> int:
    sub = await SubscriptionStore(db).subscribe(dest, chat_type, time(8), UTCZ, clock())
    return sub.id


async def queue(db: Database, clock: Clock, dests: list[Destination],
                payload: MessagesPayload = ONE, kind: str = "digest") -> None:
    subs = SubscriptionStore(db)
    items = []
    for dest in dests:
        sub = await subs.get(dest)
        items.append(NewDelivery(kind, "2025-03-10", dest, payload, sub.id if sub else None))
    await DeliveryLedger(db).add(items, clock())


async def test_sends_parts_topics_and_buttons(db: Database, clock: Clock,
                                              sandbox: SandboxServer,
                                              make_bot: BotFactory) -> None:
    sandbox.add_chat(1, "private")
    sandbox.add_chat(-100200, "supergroup", is_forum=True, topics=[7])
    await subscribed(db, clock, Destination(1))
    await subscribed(db, clock, Destination(-100200, 7), "supergroup")
    await queue(db, clock, [Destination(1), Destination(-100200, 7)], TWO)
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock)
    assert await sender.drain() == 2
    private = sandbox.bot_messages(1)
    assert [m.text for m in private] == ["Part one", "Part two"]
    assert private[0].html == "<b>Part one</b>"
    assert private[1].reply_markup == {
        "inline_keyboard": [[{"text": "Open", "callback_data": "open:k1"}]]}
    topic = sandbox.bot_messages(-100200, thread_id=7)
    assert len(topic) == 2
    rows = await DeliveryLedger(db).rows()
    assert {(r.state, r.parts_sent) for r in rows} == {(DeliveryState.SENT, 2)}
    assert await sender.drain() == 0


async def test_blocked_chat_ends_subscription_without_retry(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(2, "private")
    await subscribed(db, clock, Destination(2))
    sandbox.inject(Fault(FaultKind.FORBIDDEN, chat_id=2, times=None))
    await queue(db, clock, [Destination(2)])
    await DeliveryLedger(db).add([NewDelivery("alert", "k@1", Destination(2), ONE)], clock())
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock)
    await sender.drain()
    tried = len(sandbox.calls("sendMessage"))
    clock.advance(timedelta(hours=1))
    await sender.drain()
    sub = await SubscriptionStore(db).get(Destination(2))
    assert sub is not None
    assert not sub.active
    assert sub.ended_reason is not None and "blocked" in sub.ended_reason
    rows = await DeliveryLedger(db).rows()
    assert {r.state for r in rows} == {DeliveryState.FAILED}
    assert len(sandbox.calls("sendMessage")) == tried  # never retried


async def test_migrated_group_moves_subscription_and_message(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(-5, "group")
    await subscribed(db, clock, Destination(-5), "group")
    sandbox.inject(Fault(FaultKind.MIGRATE, chat_id=-5, migrate_to_chat_id=-1000005))
    await queue(db, clock, [Destination(-5)])
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock)
    await sender.drain()
    store = SubscriptionStore(db)
    assert await store.get(Destination(-5)) is None
    moved = await store.get(Destination(-1000005))
    assert moved is not None and moved.active
    assert [m.text for m in sandbox.bot_messages(-1000005)] == ["Briefing for you"]
    [row] = await DeliveryLedger(db).rows()
    assert (row.state, row.destination.chat_id) == (DeliveryState.SENT, -1000005)


async def test_bad_request_fails_and_is_never_retried(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(3, "private")
    sandbox.inject(Fault(FaultKind.BAD_REQUEST, chat_id=3,
                         description="Bad Request: can't parse entities"))
    await queue(db, clock, [Destination(3)])
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock)
    await sender.drain()
    clock.advance(timedelta(days=1))
    await sender.drain()
    [row] = await DeliveryLedger(db).rows()
    assert row.state is DeliveryState.FAILED
    assert row.error is not None and "can't parse entities" in row.error.lower()
    assert len(sandbox.calls("sendMessage")) == 1
    assert sandbox.bot_messages(3) == []


async def test_server_errors_back_off_then_succeed_or_fail(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(4, "private")
    sandbox.add_chat(5, "private")
    sandbox.inject(Fault(FaultKind.SERVER_ERROR, chat_id=4, times=2))
    sandbox.inject(Fault(FaultKind.SERVER_ERROR, chat_id=5, times=None, status=500,
                         description="Internal Server Error"))
    await queue(db, clock, [Destination(4), Destination(5)])
    settings = fast_settings(max_attempts=3, backoff_seconds=10.0, backoff_max_seconds=60.0)
    sender = Sender(db, await make_bot(), settings, clock=clock)
    ledger = DeliveryLedger(db)
    await sender.drain()
    row = await ledger.find("digest", "2025-03-10", Destination(4))
    assert row is not None
    assert (row.state, row.attempts) == (DeliveryState.PENDING, 1)
    assert row.not_before == clock() + timedelta(seconds=10)
    clock.advance(timedelta(seconds=9))
    assert await sender.drain() == 0  # still backing off
    clock.advance(timedelta(seconds=1))
    await sender.drain()
    row = await ledger.find("digest", "2025-03-10", Destination(4))
    assert row is not None
    assert row.not_before == clock() + timedelta(seconds=20)  # exponential
    clock.advance(timedelta(seconds=20))
    await sender.drain()
    ok = await ledger.find("digest", "2025-03-10", Destination(4))
    bad = await ledger.find("digest", "2025-03-10", Destination(5))
    assert ok is not None and bad is not None
    assert ok.state is DeliveryState.SENT
    assert (bad.state, bad.attempts) == (DeliveryState.FAILED, 3)
    assert len(sandbox.bot_messages(4)) == 1


async def test_read_timeout_is_uncertain_and_resent_once_by_default(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(6, "private")
    sandbox.inject(Fault(FaultKind.SLOW, chat_id=6, delay=0.6))
    await queue(db, clock, [Destination(6)])
    sender = Sender(db, await make_bot(read_timeout=0.2), fast_settings(), clock=clock)
    await sender.drain()
    [row] = await DeliveryLedger(db).rows()
    assert (row.state, row.uncertain_count) == (DeliveryState.SENT, 1)
    await sandbox_idle(sandbox)  # the slow first answer has landed in the sandbox
    assert len(sandbox.bot_messages(6)) == 2  # the counted duplicate
    assert sender.stats["uncertain_resent"] == 1


async def test_read_timeout_left_uncertain_when_resend_is_off(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(6, "private")
    sandbox.inject(Fault(FaultKind.SLOW, chat_id=6, delay=0.6))
    await queue(db, clock, [Destination(6)])
    sender = Sender(db, await make_bot(read_timeout=0.2),
                    fast_settings(resend_uncertain=False), clock=clock)
    await sender.drain()
    [row] = await DeliveryLedger(db).rows()
    assert row.state is DeliveryState.UNCERTAIN
    await sandbox_idle(sandbox)  # the slow answer has landed: the only copy
    assert len(sandbox.bot_messages(6)) == 1


async def test_flood_storm_pauses_bulk_and_everything_arrives(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    chats = list(range(10, 22))
    for chat in chats:
        sandbox.add_chat(chat, "private")
    sandbox.inject(Fault(FaultKind.FLOOD, method="sendMessage", retry_after=1, times=3))
    await queue(db, clock, [Destination(c) for c in chats])
    limiter = LaneRateLimiter(100.0, per_chat_per_second=100.0, retry_margin=0.05)
    sender = Sender(db, await make_bot(limiter=limiter), fast_settings(concurrency=4),
                    clock=clock)
    await sender.drain()
    assert all(len(sandbox.bot_messages(c)) == 1 for c in chats)
    calls = sandbox.calls("sendMessage")
    floods = [c for c in calls if c.status == 429]
    assert 1 <= len(floods) <= 3
    for flood in floods:
        assert flood.finished is not None
        retry = int(re.findall(r"\d+", flood.description or "1")[-1])
        # A call already granted when the 429 came back may still reach the server a
        # little later on a loaded machine: the window starts 0.3 s after the answer.
        during = [c for c in calls
                  if flood.finished + 0.3 < c.started < flood.finished + retry - 0.05]
        assert during == [], "a call was made before retry_after had passed"
    assert limiter.retries >= 1


async def test_crash_after_k_sends_then_restart(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    chats = list(range(30, 40))
    for chat in chats:
        sandbox.add_chat(chat, "private")
    await queue(db, clock, [Destination(c) for c in chats])
    # The 5th answer is slow, so the crash surely hits while that send is in flight:
    # after its row was claimed and committed, before its answer. (A cancel inside a
    # database transaction would leave SQLite locked for this test process, which a real
    # crash, freeing the lock with the process, does not.)
    sandbox.inject(Fault(FaultKind.SLOW, chat_id=chats[4], delay=0.5))
    settings = fast_settings(concurrency=1)
    first = Sender(db, await make_bot(), settings, clock=clock, worker_id="first")
    stop = asyncio.Event()
    task = asyncio.ensure_future(first.run(stop))
    ledger = DeliveryLedger(db)
    while not any(  # noqa: ASYNC110 - the sender has no event to await
            r.state is DeliveryState.SENDING and r.destination.chat_id == chats[4]
            for r in await ledger.rows()):
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)  # the request is on its way
    # A crash: no clean shutdown. The second cancel also abandons the send in flight,
    # which the graceful part of `run` would otherwise wait for.
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(5):  # the abandoned message still lands, after its delay
        while sum(len(sandbox.bot_messages(c)) for c in chats) < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert sum(len(sandbox.bot_messages(c)) for c in chats) == 5
    before = {c: len(sandbox.bot_messages(c)) for c in chats}
    clock.advance(timedelta(minutes=10))  # past the lease
    second = Sender(db, await make_bot(), settings, clock=clock, worker_id="second")
    await second.recover()
    await second.drain()
    after = {c: len(sandbox.bot_messages(c)) for c in chats}
    assert all(n >= 1 for n in after.values())  # nothing lost
    resent = [c for c in chats if before[c] and after[c] > before[c]]
    assert resent == [chats[4]]  # only the one in flight, resent as uncertain (default)
    assert sum(after.values()) == len(chats) + 1
    rows = await DeliveryLedger(db).rows()
    assert {r.state for r in rows} == {DeliveryState.SENT}


async def test_two_workers_send_every_row_exactly_once(
    open_db: OpenDb, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    one, two = await open_db(), await open_db()
    chats = list(range(100, 160))
    for chat in chats:
        sandbox.add_chat(chat, "private")
    await queue(one, clock, [Destination(c) for c in chats])
    settings = fast_settings(concurrency=5)
    a = Sender(one, await make_bot(), settings, clock=clock, worker_id="a")
    b = Sender(two, await make_bot(), settings, clock=clock, worker_id="b")
    await asyncio.gather(a.drain(), b.drain())
    assert [len(sandbox.bot_messages(c)) for c in chats] == [1] * len(chats)
    assert a.stats["sent"] > 0 and b.stats["sent"] > 0
    assert a.stats["sent"] + b.stats["sent"] == len(chats)


async def test_run_loop_wakes_on_notify_and_stops_cleanly(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    from bot.delivery import SenderService

    sandbox.add_chat(50, "private")
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock, poll_seconds=30.0)
    service = SenderService(sender)
    await service.start()
    await asyncio.sleep(0.05)
    await queue(db, clock, [Destination(50)])
    sender.notify()
    for _ in range(200):
        if sandbox.bot_messages(50):
            break
        await asyncio.sleep(0.01)
    assert len(sandbox.bot_messages(50)) == 1
    await service.stop()
    assert not service.running


async def test_stop_after_the_grace_period_abandons_calls_but_never_a_transaction(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    from bot.delivery import SenderService

    chats = [60, 61, 62]
    for chat in chats:
        sandbox.add_chat(chat, "private")
    sandbox.inject(Fault(FaultKind.SLOW, chat_id=60, delay=5.0))  # hangs past the grace
    await queue(db, clock, [Destination(c) for c in chats])
    service = SenderService(Sender(db, await make_bot(), fast_settings(concurrency=1),
                                   clock=clock, worker_id="first"))
    await service.start()
    ledger = DeliveryLedger(db)
    while not any(  # noqa: ASYNC110 - the sender has no event to await
            r.state is DeliveryState.SENDING for r in await ledger.rows()):
        await asyncio.sleep(0.005)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await service.stop(grace_seconds=0.3)
    assert loop.time() - began < 2.0  # it did not wait for the hung call
    states = {r.destination.chat_id: r.state for r in await ledger.rows()}
    assert states == {60: DeliveryState.SENDING,  # left for the next start to settle
                      61: DeliveryState.PENDING, 62: DeliveryState.PENDING}
    # No transaction was cut short: another worker gets the database at once.
    second = Sender(db, await make_bot(), fast_settings(), clock=clock, worker_id="second")
    async with asyncio.timeout(5):
        assert await second.drain() == 2
    assert [len(sandbox.bot_messages(c)) for c in (61, 62)] == [1, 1]


async def test_a_worker_that_abandons_sends_nothing_more_and_returns_its_claims(
    db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    sandbox.add_chat(70, "private")
    await queue(db, clock, [Destination(70)])
    sender = Sender(db, await make_bot(), fast_settings(), clock=clock, worker_id="first")
    assert sender.abandon_requests() == 0  # nothing in flight yet
    assert await sender.run_once() == 1  # claimed, then handed back unsent
    [row] = await DeliveryLedger(db).rows()
    assert row.state is DeliveryState.PENDING and row.parts_sent == 0
    assert sandbox.bot_messages(70) == []
    # Run again (a restarted service), the same sender sends as usual.
    from bot.delivery import SenderService

    service = SenderService(sender)
    await service.start()
    async with asyncio.timeout(5):
        while not sandbox.bot_messages(70):  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.01)
    await service.stop()
    assert len(sandbox.bot_messages(70)) == 1


async def test_a_worker_frozen_past_its_lease_cannot_undo_the_worker_that_took_over(
    open_db: OpenDb, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    """Worker A's send hangs past its lease; B takes the row over and is itself still
    sending when A's call finally times out. A's claim token no longer matches, so A
    settles nothing: the row ends as B sends it, and no third copy goes out."""
    one, two = await open_db(), await open_db()
    sandbox.add_chat(90, "private")
    await queue(one, clock, [Destination(90)])
    sandbox.inject(Fault(FaultKind.SLOW, chat_id=90, delay=2.0, times=2))
    a = Sender(one, await make_bot(read_timeout=1.0), fast_settings(), clock=clock,
               worker_id="a")
    frozen = asyncio.ensure_future(a.run_once())
    ledger = DeliveryLedger(one)
    while not any(r.claimed_by == "a" for r in await ledger.rows()):  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    clock.advance(timedelta(minutes=1))  # A's heartbeat is long stale: B takes over
    b = Sender(two, await make_bot(read_timeout=5.0), fast_settings(), clock=clock,
               worker_id="b")
    await b.heartbeat()
    taking_over = asyncio.ensure_future(b.drain())
    await frozen  # A's call timed out while B's own send of the row is in flight
    assert a.stats["fenced"] == 1
    [row] = await ledger.rows()
    assert (row.state, row.claimed_by) == (DeliveryState.SENDING, "b")
    assert await taking_over == 1
    assert await b.drain() == 0  # nothing was put back for a third send
    [row] = await ledger.rows()
    assert (row.state, row.claimed_by) == (DeliveryState.SENT, "b")
    async with asyncio.timeout(5):  # A's late copy and B's: the in-flight duplicate only
        while len(sandbox.bot_messages(90)) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert len(sandbox.bot_messages(90)) == 2


async def test_a_dead_workers_rows_are_taken_over_by_a_live_one_within_the_lease(
    open_db: OpenDb, sandbox: SandboxServer, make_bot: BotFactory
) -> None:
    """Two workers on one database in real time; one dies mid-fan-out (its task is torn
    down without a word, like SIGKILL); the other delivers everything it left."""
    from bot.delivery import SenderService
    from bot.delivery.sender import utc_now

    one, two = await open_db(), await open_db()
    chats = list(range(700, 730))
    for chat in chats:
        sandbox.add_chat(chat, "private")
    sandbox.inject(Fault(FaultKind.SLOW, method="sendMessage", times=None, delay=0.3))
    await queue(one, utc_now, [Destination(c) for c in chats])
    settings = fast_settings(concurrency=4, lease_seconds=1.2)
    dying = Sender(one, await make_bot(), settings, worker_id="dying")
    stop = asyncio.Event()
    killed = asyncio.ensure_future(dying.run(stop))
    ledger = DeliveryLedger(one)
    while not any(r.claimed_by == "dying" for r in await ledger.rows()):  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    killed.cancel()  # mid-send: its rows stay `sending`, its heartbeat stops
    await asyncio.sleep(0)
    killed.cancel()
    await asyncio.gather(killed, return_exceptions=True)
    died = asyncio.get_running_loop().time()
    left = [r for r in await ledger.rows() if r.state is DeliveryState.SENDING]
    assert left and all(r.claimed_by == "dying" for r in left)
    survivor = SenderService(Sender(two, await make_bot(), settings, worker_id="survivor"))
    await survivor.start()
    try:
        async with asyncio.timeout(20):
            while any(r.state is not DeliveryState.SENT  # noqa: ASYNC110
                      for r in await ledger.rows()):
                await asyncio.sleep(0.05)
    finally:
        await survivor.stop()
    # Within the lease plus the sends themselves (with room for a loaded machine), not at
    # some later restart: without a live worker's recovery nothing would come at all.
    assert asyncio.get_running_loop().time() - died < 1.2 + len(chats) * 0.3 / 4 + 8
    copies = [len(sandbox.bot_messages(c)) for c in chats]
    assert min(copies) == 1 and sum(copies) - len(chats) <= len(left)
    taken_over = {r.id for r in left}
    assert {r.claimed_by for r in await ledger.rows() if r.id in taken_over} == {"survivor"}
