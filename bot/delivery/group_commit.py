"""Group commit for delivery progress: one transaction for what finished together.

Every sent part must be committed before its delivery moves on (so a crash can only
leave the messages that were in flight uncertain). Committing each one alone costs a
transaction per message, which dominates a fan-out. Deliveries that finish while a commit
is running simply join the next one: nobody waits for a timer, each still waits for its
own commit, and under load dozens share one transaction.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.storage.ledger import DeliveryLedger
from bot.storage.retry import DatabaseRetry

__all__ = ["ProgressCommitter"]


class ProgressCommitter:
    """Joins concurrent progress commits; ``retry`` rides out database outages."""

    def __init__(self, ledger: DeliveryLedger, retry: DatabaseRetry | None = None) -> None:
        self._ledger = ledger
        self._retry = retry
        self._waiting: list[tuple[int, str, int, bool, datetime, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0

    async def part_sent(self, delivery_id: int, token: str, parts_sent: int, done: bool,
                        now: datetime) -> None:
        """Return once this progress (and whatever joined it) is committed. A row no
        longer under ``token`` (another worker took it over) is left unchanged."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery_id, token, parts_sent, done, now, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await future

    async def _commit(self, progress: list[tuple[int, str, int, bool]], now: datetime) -> None:
        if self._retry is None:
            await self._ledger.parts_sent(progress, now)
        else:
            await self._retry.run(lambda: self._ledger.parts_sent(progress, now))

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            progress = [(i, t, n, done) for i, t, n, done, _, _ in batch]
            now = max(item[4] for item in batch)
            try:
                await self._commit(progress, now)
            except Exception as error:  # every waiter sees the failure of its commit
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.commits += 1
            for *_, future in batch:
                if not future.done():
                    future.set_result(None)
