"""Broadcast fan-out: one ledger row per destination in the audience.

Creating the rows is idempotent (the ledger is unique on kind, ref and destination), so
after a crash half-way the same call completes the set without duplicating any row, and
the sender resumes from what is still pending. A cancel during the fan-out stops it
between batches (the progress job cancels any row that slips in after that).

A paid broadcast (Telegram's paid broadcasts) has the same rows; the sender sends them
with ``allow_paid_broadcast`` while the broadcast :attr:`~Broadcast.sends_paid`. What it
costs and how long it takes are estimated here, for the preview.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from html import escape

from telegram.constants import FloodLimit

from bot.config import DeliverySettings
from bot.operations import plural
from bot.storage.broadcasts import BROADCAST, Audience, Broadcast, BroadcastStore
from bot.storage.database import Database
from bot.storage.ledger import DeliveryLedger, NewDelivery
from bot.storage.payloads import Payload
from bot.storage.subscriptions import Subscription, SubscriptionStore

__all__ = ["FREE_PER_SECOND", "ExpectedRate", "PaidEstimate", "audience_size",
           "duration_text", "expected_rate", "fan_out", "in_audience", "paid_estimate",
           "paid_stopped_notice"]

#: Telegram's free broadcasting limit; a paid broadcast pays for the messages above it.
FREE_PER_SECOND = int(FloodLimit.MESSAGES_PER_SECOND)


def in_audience(subscription: Subscription, audience: Audience) -> bool:
    """Active, not paused, of a wanted chat type, following the word if one is given."""
    if not subscription.active or subscription.paused:
        return False
    if audience.chat_types and subscription.chat_type not in audience.chat_types:
        return False
    return audience.follow is None or audience.follow in subscription.follows


async def audience_size(db: Database, audience: Audience) -> int:
    """How many destinations a broadcast to ``audience`` would reach now."""
    total = 0
    async for batch in SubscriptionStore(db).iter_active(batch_size=2000):
        total += sum(1 for s in batch if in_audience(s, audience))
    return total


async def fan_out(db: Database, broadcast: Broadcast, payload: Payload, now: datetime, *,
                  batch_size: int = 1000) -> int:
    """Create the ledger rows of a started broadcast; returns how many were created
    (the audience size, unless the broadcast was cancelled on the way)."""
    ledger = DeliveryLedger(db)
    store = BroadcastStore(db)
    ref = str(broadcast.id)
    total = 0
    async for batch in SubscriptionStore(db).iter_active(batch_size=batch_size):
        if not await store.is_sending(broadcast.id):
            break
        members = [s for s in batch if in_audience(s, broadcast.audience)]
        total += len(members)
        await ledger.add([NewDelivery(BROADCAST, ref, s.destination, payload, s.id)
                          for s in members], now)
    await store.set_total(broadcast.id, total)
    return total


@dataclass(frozen=True, slots=True)
class ExpectedRate:
    """The rate a free broadcast is expected to go at, and where the figure comes from."""

    per_second: float
    measured: bool  # from recent broadcasts (else the configured limit)


async def expected_rate(db: Database, settings: DeliverySettings) -> ExpectedRate:
    """The measured rate of recent broadcasts (see :meth:`BroadcastStore.measured_rate`),
    never above ``rate_per_second``: the limiter keeps to that whatever was measured
    before a change of setting. Before anything was measured, the configured rate."""
    configured = settings.rate_per_second
    measured = await BroadcastStore(db).measured_rate()
    if measured is None:
        return ExpectedRate(configured, measured=False)
    if measured.per_second >= configured:
        return ExpectedRate(configured, measured=True)
    return ExpectedRate(measured.per_second, measured=True)


def duration_text(seconds: float) -> str:
    """``40 s``, ``12 min``, ``2.5 h``: how long a broadcast takes, for a person."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True, slots=True)
class PaidEstimate:
    """A paid broadcast of ``messages`` messages: how long, and at most how many Stars."""

    messages: int
    seconds: float
    charged: int  # messages above the free rate
    stars: float


def paid_estimate(messages: int, settings: DeliverySettings) -> PaidEstimate:
    """Telegram charges each message above the free 30 of every second. At the paid rate a
    broadcast takes ``messages / rate`` seconds, and each second, whole or begun, carries 30
    free ones: an upper bound, since undelivered messages (blocked chats) cost nothing."""
    rate = min(settings.paid_rate_per_second, float(FloodLimit.PAID_MESSAGES_PER_SECOND))
    seconds = messages / rate
    free = min(messages, FREE_PER_SECOND * max(1, math.ceil(seconds - 1e-9)))
    charged = messages - free
    return PaidEstimate(messages, seconds, charged,
                        math.ceil(charged * settings.paid_star_price * 10 - 1e-9) / 10)


def paid_stopped_notice(broadcast: Broadcast, reason: str, remaining: int,
                        free_rate: float) -> str:
    """The one message an admin gets when Telegram refuses paid sending midway."""
    rest = (f"The remaining {plural(remaining, 'message')} go at the free rate, "
            f"{free_rate:g}/s: about {duration_text(remaining / free_rate)}."
            if remaining else "Its remaining messages go at the free rate.")
    return (f"📣 <b>Broadcast #{broadcast.id}</b>: Telegram refused paid sending "
            f"({escape(reason)}); the bot's Stars balance has probably run out (top it up "
            f"in @BotFather). {rest} No message is lost.")
