"""The heartbeat of a process that sends no bulk messages (an ``updates`` process).

A delivery worker renews its lease in :class:`~bot.delivery.sender.Sender`, which also
settles dead workers' rows; an ``updates`` process holds no claims but still belongs in
the ``workers`` table, so ``health`` and the "live workers" figure see it, with the
problem it reports (waiting for Telegram, a second poller).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.config import DeliverySettings
from bot.storage.database import Database
from bot.storage.workers import WorkerRegistry

__all__ = ["WorkerHeartbeat"]


class WorkerHeartbeat:
    def __init__(self, db: Database, role: str, clock: Callable[[], datetime],
                 problems: Callable[[], str | None]) -> None:
        self.worker_id = f"{role}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._role = role
        self._registry = WorkerRegistry(db)
        self._clock = clock
        self._problems = problems

    @staticmethod
    def interval(settings: DeliverySettings) -> float:
        return settings.lease_seconds / 6

    async def beat(self) -> None:
        now = self._clock()
        if not await self._registry.heartbeat(self.worker_id, now, self._problems()):
            await self._registry.register(self.worker_id, self._role, now)

    async def job(self, _context: Any) -> None:
        await self.beat()
