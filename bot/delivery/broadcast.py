"""Broadcast fan-out: one ledger row per destination in the audience.

Creating the rows is idempotent (the ledger is unique on kind, ref and destination), so
after a crash half-way the same call completes the set without duplicating any row, and
the sender resumes from what is still pending. A cancel during the fan-out stops it
between batches (the progress job cancels any row that slips in after that).
"""

from __future__ import annotations

from datetime import datetime

from bot.storage.broadcasts import BROADCAST, Audience, Broadcast, BroadcastStore
from bot.storage.database import Database
from bot.storage.ledger import DeliveryLedger, NewDelivery
from bot.storage.payloads import Payload
from bot.storage.subscriptions import Subscription, SubscriptionStore

__all__ = ["audience_size", "fan_out", "in_audience"]


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
