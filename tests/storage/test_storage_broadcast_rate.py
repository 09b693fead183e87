"""The measured broadcast rate reads the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.storage import (
    Database,
    DeliveryLedger,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
)
from bot.storage.broadcasts import Audience, BroadcastStore
from tests.database_fixtures import Clock

BODY = MessagesPayload((MessagePart("Hello"),))


async def test_the_rate_of_a_finished_broadcast_is_measured(db: Database, clock: Clock) -> None:
    store, ledger = BroadcastStore(db), DeliveryLedger(db)
    assert await store.measured_rate() is None  # nothing sent yet
    broadcast = await store.create(1, 1, BODY, Audience(), clock())
    assert await store.start(broadcast.id, clock())
    await ledger.add([NewDelivery("broadcast", str(broadcast.id), Destination(c), BODY)
                      for c in range(1, 41)], clock())
    claimed = await ledger.claim("w", 40, clock())
    done_at = clock() + timedelta(seconds=20)
    await ledger.parts_sent([(c.delivery.id, c.delivery.claim_token or "", 1, True)
                             for c in claimed], done_at)
    assert await store.finish(broadcast.id, done_at)
    rate = await store.measured_rate()
    assert rate is not None and (rate.messages, rate.seconds) == (40, 20.0)
