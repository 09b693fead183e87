"""The delivery engine as the running bot holds it: due scan, alerts and the sender."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram.ext import ExtBot

from bot.config import Settings
from bot.delivery.alerts import AlertPlanner
from bot.delivery.digest import LibraryDigestBuilder
from bot.delivery.due_scan import DueScan
from bot.delivery.fleet import FleetBudget
from bot.delivery.ratelimiter import LaneRateLimiter
from bot.delivery.sender import Sender
from bot.delivery.wiring import SenderService
from bot.status import ProcessStatus
from bot.storage.database import Database
from bot.storage.ledger import ChatSpacing
from bot.storage.retry import DatabaseRetry
from bot.stories.library import StoryLibrary

__all__ = ["DeliveryEngine"]


@dataclass(frozen=True, slots=True)
class DeliveryEngine:
    """Every bulk message (briefing, alert, broadcast) goes through these three."""

    scan: DueScan
    alerts: AlertPlanner
    sender: SenderService

    @classmethod
    def create(cls, db: Database, bot: ExtBot[Any], library: StoryLibrary, settings: Settings,
               clock: Callable[[], datetime], *, status: ProcessStatus | None = None,
               retry: DatabaseRetry | None = None, exclusive: bool = False,
               role: str = "all") -> DeliveryEngine:
        """``exclusive``: this process holds the SQLite file lock, so every other worker
        that ever claimed a row is dead and its rows are settled at once."""
        status = status or ProcessStatus()
        retry = retry or DatabaseRetry(settings.delivery.give_up_seconds, status)
        spacing, fleet = None, None
        limiter = bot.rate_limiter
        if db.is_postgresql and isinstance(limiter, LaneRateLimiter):  # maybe a fleet
            d = settings.delivery
            spacing = ChatSpacing(timedelta(seconds=1 / d.per_chat_per_second),
                                  d.per_group_per_minute)
            fleet = FleetBudget(db, limiter, d, clock, retry)
        sender = Sender(db, bot, settings.delivery, clock=clock, retry=retry,
                        exclusive=exclusive, problems=status.summary, role=role,
                        spacing=spacing, fleet=fleet)
        username = bot.username  # deep links in channel deliveries
        return cls(
            scan=DueScan(db, LibraryDigestBuilder(library, settings.briefing,
                                                  bot_username=username),
                         settings.briefing, on_created=sender.notify),
            alerts=AlertPlanner(db, bot_username=username, references=library.reference,
                                on_created=sender.notify),
            sender=SenderService(sender, status),
        )

    def wake(self) -> None:
        """New ledger rows exist: send them now rather than at the next poll."""
        self.sender.sender.notify()
