"""Typed services for handlers: a :class:`BotServices` reached as ``context.services``."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardMarkup
from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.status import ProcessStatus
from bot.storage.chat_preferences import ChatPreferenceStore
from bot.storage.database import Database
from bot.storage.subscriptions import Destination, SubscriptionStore
from bot.stories.library import StoryLibrary
from bot.stories.model import Story
from bot.telegram.search_pool import SearchPool
from bot.telegram.throttle import UserThrottle

if TYPE_CHECKING:
    from bot.monitoring import MonitoringServer
    from bot.storage.owner_lock import DatabaseOwnerLock
    from bot.storage.retry import DatabaseRetry
    from bot.telegram.engine import DeliveryEngine

__all__ = ["BotApplication", "BotContext", "BotData", "BotServices", "SearchSessions",
           "TtlCache"]


class SearchSessions:
    """Recent search queries behind short ids, so result pages fit in callback data.

    Kept in memory on purpose: a search is cheap to repeat, and a button from before a
    restart gets a polite "search again" instead of an error.
    """

    def __init__(self, capacity: int = 2000) -> None:
        self._capacity = capacity
        self._queries: OrderedDict[str, str] = OrderedDict()

    def remember(self, query: str) -> str:
        session = secrets.token_hex(4)
        self._queries[session] = query
        while len(self._queries) > self._capacity:
            self._queries.popitem(last=False)
        return session

    def recall(self, session: str) -> str | None:
        return self._queries.get(session)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A small bounded cache whose entries expire (group admin answers, reader zones)."""

    def __init__(self, ttl: float, capacity: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None or item[0] < self._clock():
            self._items.pop(key, None)
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        self._items[key] = (self._clock() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class BotServices:
    """Everything handlers use, built once at start-up and passed explicitly."""

    settings: Settings
    library: StoryLibrary
    throttle: UserThrottle
    searches: SearchSessions = field(default_factory=SearchSessions)
    search_pool: SearchPool = field(default_factory=SearchPool)  # slow searches queue here
    status: ProcessStatus = field(default_factory=ProcessStatus)
    role: str = "all"  # all | updates | delivery (bot/telegram/app.py)
    clock: Callable[[], datetime] = _utc_now
    bot_username: str = ""
    database: Database | None = None
    admins: TtlCache[tuple[int, int], bool] = field(default_factory=lambda: TtlCache(60.0))
    zones: TtlCache[Destination, ZoneInfo] = field(default_factory=lambda: TtlCache(300.0))
    engine: DeliveryEngine | None = None
    owner_lock: DatabaseOwnerLock | None = None  # SQLite: this process owns the file
    db_retry: DatabaseRetry | None = None
    monitor: MonitoringServer | None = None  # /healthz and /metrics, if configured
    wake_sender: Callable[[], None] = lambda: None
    progress_edits: dict[int, float] = field(default_factory=dict)
    # Renderings are pure functions of immutable stories: reuse them while they are current.
    story_parts: TtlCache[tuple[Story, str], list[str]] = field(
        default_factory=lambda: TtlCache(600.0, capacity=500))
    latest_pages: TtlCache[tuple[int, int, int, str], tuple[str, InlineKeyboardMarkup]] = (
        field(default_factory=lambda: TtlCache(600.0, capacity=500)))

    def require_database(self) -> Database:
        if self.database is None:  # pragma: no cover - wiring error
            raise RuntimeError("the database is not open yet")
        return self.database

    @property
    def subscriptions(self) -> SubscriptionStore:
        return SubscriptionStore(self.require_database())

    @property
    def chat_preferences(self) -> ChatPreferenceStore:
        return ChatPreferenceStore(self.require_database())

    async def reader_zone(self, dest: Destination | None = None, *,
                          fresh: bool = False) -> ZoneInfo:
        """The zone a reader sees times in: their briefing's while they subscribe (the zone
        the briefing keeps to), else the one they set with /timezone, else their ended
        briefing's, else the default. ``fresh`` re-reads it after a change."""
        default = self.settings.briefing.default_timezone
        if dest is None or self.database is None:
            return default
        zone = None if fresh else self.zones.get(dest)
        if zone is None:
            subscription = await self.subscriptions.get(dest)
            if subscription is not None and subscription.active:
                zone = subscription.timezone
            else:
                zone = (await self.chat_preferences.zone(dest)
                        or (subscription.timezone if subscription else default))
            self.zones.put(dest, zone)
        return zone


class BotData:
    """``application.bot_data``: holds the services (set before the application starts)."""

    def __init__(self) -> None:
        self.services: BotServices | None = None


class BotContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context handlers receive; ``context.services`` is typed."""

    @property
    def services(self) -> BotServices:
        services = self.bot_data.services
        if services is None:  # pragma: no cover - wiring error, not a runtime condition
            raise RuntimeError("bot services were not installed")
        return services


BotApplication = Application[ExtBot[Any], BotContext, dict[Any, Any], dict[Any, Any],
                             BotData, Any]
