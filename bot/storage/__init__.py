"""Storage: SQLAlchemy Core (async) on SQLite or PostgreSQL, same code, versioned schema.

Subscriptions, the delivery ledger with content-addressed payloads, the memory of known
story versions, and what each chat chose for itself (its time zone). Nothing here talks
to Telegram.
"""

from bot.storage.chat_preferences import ChatPreferenceStore
from bot.storage.database import Database, Tables
from bot.storage.follows import MAX_FOLLOW_CHARS, MAX_FOLLOWS, FollowError
from bot.storage.known_stories import KnownStoryStore
from bot.storage.ledger import (
    ClaimedDelivery,
    Delivery,
    DeliveryLedger,
    DeliveryState,
    NewDelivery,
)
from bot.storage.migrations import MIGRATIONS, Migration
from bot.storage.payloads import Button, CopyPayload, MessagePart, MessagesPayload, Payload
from bot.storage.schedule import first_due_after, scheduled_instant
from bot.storage.stats import DeliveryStats, StatsQueries
from bot.storage.subscriptions import Destination, Mode, Subscription, SubscriptionStore

__all__ = [
    "MAX_FOLLOWS",
    "MAX_FOLLOW_CHARS",
    "MIGRATIONS",
    "Button",
    "ChatPreferenceStore",
    "ClaimedDelivery",
    "CopyPayload",
    "Database",
    "Delivery",
    "DeliveryLedger",
    "DeliveryState",
    "DeliveryStats",
    "Destination",
    "FollowError",
    "KnownStoryStore",
    "MessagePart",
    "MessagesPayload",
    "Migration",
    "Mode",
    "NewDelivery",
    "Payload",
    "StatsQueries",
    "Subscription",
    "SubscriptionStore",
    "Tables",
    "first_due_after",
    "scheduled_instant",
]
