"""Typed services for handlers: a :class:`BotServices` reached as ``context.services``."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.stories.library import StoryLibrary
from bot.telegram.throttle import UserThrottle

__all__ = ["BotApplication", "BotContext", "BotData", "BotServices", "SearchSessions"]


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


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class BotServices:
    """Everything handlers use, built once at start-up and passed explicitly."""

    settings: Settings
    library: StoryLibrary
    throttle: UserThrottle
    searches: SearchSessions = field(default_factory=SearchSessions)
    clock: Callable[[], datetime] = _utc_now
    bot_username: str = ""

    def reader_zone(self) -> ZoneInfo:
        return self.settings.briefing.default_timezone


class BotData:
    """``application.bot_data``: holds the services (set before the application starts)."""

    def __init__(self) -> None:
        self.services: BotServices | None = None


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context handlers receive; ``context.services`` is typed."""

    @property
    def services(self) -> BotServices:
        services = self.bot_data.services
        if services is None:  # pragma: no cover - wiring error, not a runtime condition
            raise RuntimeError("bot services were not installed")
        return services


BotApplication = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any],
                             BotData, Any]
