"""One flood budget for a fleet of delivery processes on one PostgreSQL database.

Telegram's limits belong to the bot token, not to a process. Each live delivery worker
(``workers`` rows of role ``all``/``delivery`` with a fresh heartbeat) takes an equal
share of ``delivery.rate_per_second`` (:func:`fleet_share`); a 429 on a bulk send seen by
any of them is written to the ``fleet_state`` row, which every worker reads once a second
and obeys by pausing its own bulk sending; and claims keep the per-chat and per-group
limits across processes (:class:`~bot.storage.ledger.ChatSpacing`). Readers' replies keep
their priority inside each process; a 429 on a reply delays that chat only and is not
shared. No new server: the database the fleet already shares is the only coordinator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.config import DeliverySettings
from bot.delivery.ratelimiter import LaneRateLimiter
from bot.storage.database import Database
from bot.storage.fleet_state import FleetState
from bot.storage.retry import DatabaseRetry, describe

__all__ = ["FleetBudget", "fleet_share"]

_LOG = logging.getLogger(__name__)
POLL_SECONDS = 1.0


def fleet_share(rate: float, workers: int) -> float:
    """One worker's share of ``rate`` messages a second among ``workers``.

    Each worker's bucket may start a one-second window with a whole token, so N workers at
    ``rate / N`` each can put N × ⌈rate / N⌉ calls into one second: three at 28/s make 30,
    Telegram's cap exactly, and the network's jitter then draws a 429. Among several
    workers a share is therefore rounded down to whole messages a second (28/s over three:
    9 each, 27 together), giving up less than one message a second per worker.
    """
    share = rate / workers
    if workers == 1 or share < 1.0:
        return share
    return float(math.floor(share))


class FleetBudget:
    def __init__(self, db: Database, limiter: LaneRateLimiter, settings: DeliverySettings,
                 clock: Callable[[], datetime], retry: DatabaseRetry) -> None:
        self._state = FleetState(db)
        self._limiter = limiter
        self._settings = settings
        self._clock = clock
        self._retry = retry
        self._writes: set[asyncio.Task[None]] = set()
        self.workers = 1
        # A share is taken back from a worker that missed two heartbeats (a sixth of the
        # lease each), sooner than its rows are: a killed worker's budget should not idle
        # until its lease ends, and a live one that was late only costs a brief overlap.
        self._alive_for = timedelta(seconds=settings.lease_seconds) / 6 * 2.5
        limiter.on_bulk_pause = self._paused_here

    async def refresh(self) -> None:
        """Take this worker's share of the rate and obey the fleet's bulk pause."""
        now = self._clock()
        workers, until = await self._retry.run(
            lambda: self._state.read(now, now - self._alive_for))
        workers = max(1, workers)
        if workers != self.workers:
            _LOG.info("%d delivery workers share %g messages/s", workers,
                      self._settings.rate_per_second)
            self.workers = workers
        share = fleet_share(self._settings.rate_per_second, workers)
        if abs(share - self._limiter.rate) > 1e-9:
            self._limiter.set_rate(share)
        if until is not None and until > now:
            self._limiter.pause_bulk((until - now).total_seconds())

    def _paused_here(self, seconds: float) -> None:
        until = self._clock() + timedelta(seconds=seconds)
        task = asyncio.ensure_future(self._share_pause(until))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _share_pause(self, until: datetime) -> None:
        try:
            await self._retry.run(lambda: self._state.pause_bulk(until, self._clock()))
        except Exception as error:  # this process still pauses; the others may draw a 429
            _LOG.warning("could not share a flood pause with the fleet: %s", describe(error))

    async def shared(self) -> None:
        """Wait until the pauses seen here are written for the fleet."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
