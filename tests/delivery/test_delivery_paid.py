"""Paid broadcasts: their own budget in the limiter, the sandbox's paid model, the sender
sending them with allow_paid_broadcast and going on free when Telegram refuses."""

from __future__ import annotations

import asyncio
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.config import DeliverySettings
from bot.delivery import BULK, LaneRateLimiter, Sender
from bot.delivery.broadcast import fan_out, paid_estimate
from bot.delivery.outcome import Action, classify
from bot.sandbox import FloodLimits, SandboxServer
from bot.sandbox.flood import FloodControl, StarsExhausted
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
from bot.storage.broadcasts import Audience, BroadcastStore
from tests.delivery.helpers import VirtualTime, fast_settings, sandbox_idle

Clock = Any
BotFactory = Any
Log = list[tuple[float, str, Any]]
ADMIN = 900
NEWS = MessagesPayload((MessagePart("<b>Big</b> news"),))


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window + 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- the limiter: a budget of its own ---------------------------------------------------

async def request(rl: LaneRateLimiter, vt: VirtualTime, log: Log, chat: int, lane: str,
                  fail: list[Exception] | None = None) -> None:
    """One send through the limiter: ``lane`` is interactive, bulk or paid (a bulk send
    carrying allow_paid_broadcast, as the sender makes it)."""
    data: dict[str, Any] = {"chat_id": chat}
    if lane == "paid":
        data["allow_paid_broadcast"] = True

    async def callback() -> bool:
        if fail:
            raise fail.pop()
        log.append((vt.now, lane, chat))
        return True

    await rl.process_request(callback, (), {}, "sendMessage", data,
                             None if lane == "interactive" else BULK)


async def test_paid_sends_go_at_the_paid_rate_while_briefings_and_replies_stay_free() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(25.0, paid_rate_per_second=1000.0, clock=vt.clock, sleep=vt.sleep)
    log: Log = []

    async def reader_asks_at(when: float) -> None:
        await vt.sleep(when)
        await request(rl, vt, log, 77, "interactive")

    await vt.run(asyncio.gather(
        *(request(rl, vt, log, 100_000 + i, "paid") for i in range(1500)),
        *(request(rl, vt, log, 200_000 + i, "bulk") for i in range(50)),  # a briefing
        reader_asks_at(0.5)))
    paid = [t for t, lane, _ in log if lane == "paid"]
    bulk = [t for t, lane, _ in log if lane == "bulk"]
    [reply] = [t for t, lane, _ in log if lane == "interactive"]
    assert len(paid) == 1500
    # 2% under Telegram's 1,000/s, after a burst of 8 ms of that rate
    assert max(paid) == pytest.approx((1499 - 980 * 0.008) / 980, abs=0.01)
    assert max_in_window(paid) <= 980 + 980 * 0.008 + 1
    # the briefing kept its free 25/s: the paid sends neither took its budget nor sped it
    assert max(bulk) == pytest.approx(49 / 25, abs=0.05)
    assert max_in_window(bulk) <= 25 + 1
    # not queued behind 1,500 paid sends: at most one free token's wait (1/25 s)
    assert 0.5 <= reply <= 0.5 + 1 / 25 + 1e-6
    assert rl.granted == {"interactive": 1, "bulk": 50, "paid": 1500}
    # what Telegram's model (the sandbox's) makes of it: nothing to refuse
    flood = FloodControl(FloodLimits.telegram())
    for when, lane, chat in sorted(log, key=lambda entry: entry[0]):
        flood.check(when + 1e-6, chat, is_group=False, paid=lane == "paid")
    assert flood.refused == 0
    await rl.shutdown()


async def test_a_pump_that_wakes_late_still_sends_at_the_paid_rate() -> None:
    # A loaded machine: every sleep of the limiter ends 4 ms late. One token at a time, its
    # pump granted 200 paid calls a second; a burst of 8 ms of the rate keeps 980.
    vt = VirtualTime()

    async def late(seconds: float) -> None:
        await vt.sleep(seconds + 0.004)

    rl = LaneRateLimiter(25.0, paid_rate_per_second=1000.0, clock=vt.clock, sleep=late)
    log: Log = []
    await vt.run(asyncio.gather(*(request(rl, vt, log, 100_000 + i, "paid")
                                  for i in range(3000))))
    paid = sorted(t for t, _, _ in log)
    assert 2999 / max(paid) >= 950
    assert max_in_window(paid) <= 988
    flood = FloodControl(FloodLimits.telegram())  # Telegram's model: nothing to refuse
    for when, _, chat in sorted(log, key=lambda entry: entry[0]):
        flood.check(when + 1e-6, chat, is_group=False, paid=True)
    assert flood.refused == 0
    await rl.shutdown()


async def test_paid_sends_keep_the_per_chat_limit() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(25.0, paid_rate_per_second=1000.0, clock=vt.clock, sleep=vt.sleep)
    log: Log = []
    await vt.run(asyncio.gather(*(request(rl, vt, log, 5, "paid") for _ in range(3))))
    times = sorted(t for t, _, _ in log)
    assert times == pytest.approx([0.0, 1.0, 2.0], abs=0.01)


async def test_a_429_on_a_paid_send_pauses_paid_sending_only() -> None:
    vt = VirtualTime()
    rl = LaneRateLimiter(25.0, paid_rate_per_second=1000.0, clock=vt.clock, sleep=vt.sleep)
    log: Log = []
    refusal: list[Exception] = [RetryAfter(3)]

    async def later(chat: int, lane: str) -> None:
        await vt.sleep(0.5)
        await request(rl, vt, log, chat, lane)

    await vt.run(asyncio.gather(request(rl, vt, log, 1, "paid", fail=refusal),
                                later(2, "paid"), later(3, "bulk")))
    when = {chat: t for t, _, chat in log}
    assert when[1] == pytest.approx(3.1, abs=0.01)  # resent after retry_after (+ margin)
    assert when[2] >= 3.1 - 0.01  # paid sending to another chat waited for the pause
    assert when[3] == pytest.approx(0.5, abs=0.01)  # free bulk sending did not
    assert rl.refused == {"interactive": 0, "bulk": 0, "paid": 1}
    assert rl.bulk_paused_until == float("-inf")  # the free lanes were never paused
    await rl.shutdown()


def test_a_fleet_members_share_scales_the_paid_budget_too() -> None:
    rl = LaneRateLimiter(25.0, paid_rate_per_second=800.0)
    rl.set_rate(12.5)  # one of two workers
    assert (rl.rate, rl.paid_rate) == (12.5, 400.0)
    rl.set_rate(8.0, paid_rate=300.0)
    assert rl.paid_rate == 300.0
    fleet_member = LaneRateLimiter(25.0, paid_rate_per_second=1000.0)
    assert fleet_member.paid_rate == 980.0
    fleet_member.set_rate(12.5)  # two workers never exceed Telegram's 1,000/s together
    assert fleet_member.paid_rate == 490.0


# -- what a refusal means, what it costs ----------------------------------------------

@pytest.mark.parametrize(
    ("error", "action"),
    [
        (BadRequest("Bad Request: BALANCE_TOO_LOW"), Action.PAID_REFUSED),
        (BadRequest("Not enough Stars on the balance"), Action.PAID_REFUSED),
        (Forbidden("Forbidden: paid broadcasts are not enabled for the bot"),
         Action.PAID_REFUSED),  # a 403, yet the chat is fine: never "blocked"
        (BadRequest("Bad Request: chat not found"), Action.CHAT_GONE),
        (Forbidden("Forbidden: bot was blocked by the user"), Action.CHAT_GONE),
        (BadRequest("Bad Request: message is too long"), Action.REJECTED),
    ],
)
def test_a_refusal_of_paid_sending_is_told_apart(error: Exception, action: Action) -> None:
    assert isinstance(error, BadRequest | Forbidden)
    assert classify(error).action is action


@pytest.mark.parametrize(
    ("messages", "rate", "price", "seconds", "charged", "stars"),
    [
        (20_000, 1000.0, 0.1, 20.0, 19_400, 1940.0),  # 30 free in each of 20 seconds
        (10, 1000.0, 0.1, 0.01, 0, 0.0),  # all within the free 30 of one second
        (1030, 1000.0, 0.1, 1.03, 970, 97.0),  # two seconds begun: 60 free
        (20_000, 500.0, 0.1, 40.0, 18_800, 1880.0),
        (45, 1000.0, 0.25, 0.045, 15, 3.8),  # rounded up to a tenth of a Star
    ],
)
def test_paid_estimate(messages: int, rate: float, price: float, seconds: float,
                       charged: int, stars: float) -> None:
    settings = DeliverySettings(paid_broadcast=True, paid_rate_per_second=rate,
                                paid_star_price=price)
    estimate = paid_estimate(messages, settings)
    assert estimate.seconds == pytest.approx(seconds)
    assert (estimate.charged, estimate.stars) == (charged, stars)


# -- the sandbox's paid model ---------------------------------------------------------

def test_sandbox_paid_calls_have_their_own_limit_and_cost_stars_above_the_free_30() -> None:
    flood = FloodControl(FloodLimits(per_second=30, paid_per_second=1000, stars_balance=5.0))
    # 30 free messages fill the free window: a 31st free one waits, paid ones go on
    assert [flood.check(0.0, i, is_group=False) for i in range(30)] == [None] * 30
    assert flood.check(0.0, 99, is_group=False) == 1
    waits = [flood.admit(0.0, 1000 + i, is_group=False, paid=True) for i in range(50)]
    assert {wait for wait, _ in waits} == {None}
    assert sum(cost for _, cost in waits) == pytest.approx(5.0)  # all above the free 30
    with pytest.raises(StarsExhausted):  # 5 Stars were 50 messages
        flood.admit(0.0, 2000, is_group=False, paid=True)
    assert (flood.stars_left, flood.stars_refusals) == (0.0, 1)
    flood.refund(0.1)  # one was not delivered after all
    wait, cost = flood.admit(0.0, 2001, is_group=False, paid=True)
    assert wait is None
    assert cost == pytest.approx(0.1)
    # a new second: its first 30 messages are free again
    assert flood.admit(1.5, 3000, is_group=False, paid=True) == (None, 0.0)


def test_sandbox_caps_paid_calls_at_their_limit() -> None:
    flood = FloodControl(FloodLimits.telegram())
    admitted = [flood.check(0.5, i, is_group=False, paid=True) for i in range(1001)]
    assert admitted[:1000] == [None] * 1000
    assert admitted[1000] == 1  # the 1,001st within a second: 429
    assert flood.stars_spent == pytest.approx(97.0)  # 970 above the free 30, no limit set


async def test_sandbox_charges_only_paid_messages_delivered(sandbox: SandboxServer,
                                                             make_bot: BotFactory) -> None:
    sandbox.add_chat(51, "private")
    sandbox.add_chat(52, "private")
    await sandbox.block_bot(52)
    sandbox.set_flood_limits(FloodLimits(stars_balance=1.0, free_per_second=0))
    bot = await make_bot()
    with pytest.raises(Forbidden):
        await bot.send_message(52, "to a chat that blocked the bot", allow_paid_broadcast=True)
    assert sandbox.state.flood.stars_left == 1.0  # not delivered: not charged
    await bot.send_message(51, "delivered", allow_paid_broadcast=True)
    await bot.send_message(51, "free", rate_limit_args=BULK)
    assert sandbox.state.flood.stars_left == 0.9
    assert sandbox.state.flood.paid_calls == 2  # admitted; the first one then refused


# -- the sender --------------------------------------------------------------------------

async def paid_broadcast(db: Database, clock: Clock, sandbox: SandboxServer, chats: list[int],
                         *, paid: bool = True) -> int:
    """A started broadcast to ``chats`` (private subscribers), fanned out; its id."""
    subs = SubscriptionStore(db)
    for chat in chats:
        sandbox.add_chat(chat, "private")
        await subs.subscribe(Destination(chat), "private", time(8), ZoneInfo("UTC"), clock())
    store = BroadcastStore(db)
    broadcast = await store.create(ADMIN, ADMIN, NEWS, Audience(("private",)), clock(),
                                   paid=paid)
    assert await store.start(broadcast.id, clock())
    await fan_out(db, broadcast, NEWS, clock())
    return broadcast.id


def paid_flags(sandbox: SandboxServer) -> dict[int, list[tuple[bool, int | None]]]:
    """Per chat, each sendMessage: (sent with allow_paid_broadcast, HTTP status)."""
    seen: dict[int, list[tuple[bool, int | None]]] = {}
    for call in sandbox.calls("sendMessage"):
        flag = str(call.params.get("allow_paid_broadcast", "")).lower() == "true"
        seen.setdefault(call.chat_id or 0, []).append((flag, call.status))
    return seen


async def test_paid_broadcast_rows_carry_the_flag_and_briefings_do_not(
        db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory) -> None:
    chats = [11, 12, 13]
    await paid_broadcast(db, clock, sandbox, chats)
    sandbox.add_chat(20, "private")
    await DeliveryLedger(db).add([NewDelivery("digest", "2025-03-10", Destination(20), NEWS)],
                                 clock())
    sender = Sender(db, await make_bot(), fast_settings(paid_broadcast=True), clock=clock)
    assert await sender.drain() == 4
    flags = paid_flags(sandbox)
    assert {chat: flags[chat] for chat in chats} == {chat: [(True, 200)] for chat in chats}
    assert flags[20] == [(False, 200)]


async def test_with_paid_broadcast_off_a_paid_broadcast_goes_free(
        db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory) -> None:
    await paid_broadcast(db, clock, sandbox, [11, 12])
    sender = Sender(db, await make_bot(), fast_settings(paid_broadcast=False), clock=clock)
    assert await sender.drain() == 2
    assert paid_flags(sandbox) == {11: [(False, 200)], 12: [(False, 200)]}


async def test_stars_running_out_requeues_the_refused_rows_and_tells_the_admin_once(
        db: Database, clock: Clock, sandbox: SandboxServer, make_bot: BotFactory) -> None:
    chats = list(range(31, 39))
    sandbox.add_chat(ADMIN, "private")
    # Every paid message costs 0.1 Star (no free ones): 0.3 Stars pay for three.
    sandbox.set_flood_limits(FloodLimits(stars_balance=0.3, free_per_second=0))
    broadcast_id = await paid_broadcast(db, clock, sandbox, chats)
    sender = Sender(db, await make_bot(), fast_settings(paid_broadcast=True), clock=clock)
    await sender.drain()
    await sandbox_idle(sandbox)
    rows = await DeliveryLedger(db).rows()
    assert {r.state for r in rows} == {DeliveryState.SENT}  # none failed, none left
    assert all(len(sandbox.bot_messages(chat)) == 1 for chat in chats)  # once each
    flags = [f for chat in chats for f in paid_flags(sandbox)[chat]]
    assert flags.count((True, 200)) == 3  # what the Stars paid for
    assert flags.count((False, 200)) == 5  # the rest went free, after a refusal each
    assert flags.count((True, 400)) == 5
    [notice] = sandbox.bot_messages(ADMIN)
    assert "Broadcast #" in notice.text and "refused paid sending" in notice.text
    assert "balance_too_low" in notice.text.lower() and "No message is lost" in notice.text
    stored = await BroadcastStore(db).get(broadcast_id)
    assert stored is not None and not stored.sends_paid
    assert stored.paid_stopped is not None and "balance_too_low" in stored.paid_stopped.lower()
    assert sandbox.state.flood.stars_left == 0.0


async def test_only_one_caller_records_that_paid_sending_stopped(
        db: Database, clock: Clock, sandbox: SandboxServer) -> None:
    paid = await paid_broadcast(db, clock, sandbox, [41])
    free = await paid_broadcast(db, clock, sandbox, [42], paid=False)
    store = BroadcastStore(db)
    won = await asyncio.gather(*(store.stop_paid(paid, f"refusal {i}", clock())
                                 for i in range(4)))
    assert sorted(won) == [False, False, False, True]
    assert not await store.stop_paid(free, "refusal", clock())  # not paid: nothing to stop
    stored = await store.get(paid)
    assert stored is not None and stored.paid and stored.paid_stopped_at == clock()
    assert stored.audience == Audience(("private",))  # who receives it is untouched
    assert not await store.sends_paid(paid)
