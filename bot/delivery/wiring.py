"""Hooking the back-end into a PTB Application: the due scan job and the sender task.

The JobQueue only *triggers* the scan; the database decides what is due, so a missed or
doubled tick changes nothing. A scan rides out database outages through the process's
:class:`DatabaseRetry` (it is idempotent, so running it again from the start is safe).

The sender runs as one long-lived task started after the
application initialises and stopped before it shuts down, so the bot is still usable while
the last rows settle: sends in flight get a grace period, then their Bot API calls (never
a database write) are abandoned and the next start settles those rows as uncertain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from telegram.ext import Application, CallbackContext, Job, JobQueue

from bot.config import DeliverySettings
from bot.delivery.due_scan import DueScan, ScanReport
from bot.delivery.sender import Sender, utc_now
from bot.status import ProcessStatus
from bot.storage.retry import DatabaseRetry, describe

__all__ = ["SenderService", "attach_sender", "register_due_scan"]

_LOG = logging.getLogger(__name__)
DUE_SCAN_JOB = "due-scan"
JobCallback = Callable[[Any], Coroutine[Any, Any, None]]


def register_due_scan(
    job_queue: JobQueue[Any],
    scan: DueScan,
    settings: DeliverySettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    name: str = DUE_SCAN_JOB,
    retry: DatabaseRetry | None = None,
    on_finished: Callable[[ScanReport, float], Awaitable[None]] | None = None,
    supervise: Callable[[str, JobCallback], JobCallback] | None = None,
) -> Job[Any]:
    """Run ``scan`` every ``scan_seconds`` (first run at once: that is the catch-up);
    ``on_finished(report, seconds)`` hears of each completed scan (health, metrics);
    ``supervise`` wraps the job so that its failures are reported."""

    async def due_scan_job(_context: CallbackContext[Any, Any, Any, Any]) -> None:
        began = time.perf_counter()
        report = await (retry.run(lambda: scan.run(clock())) if retry is not None
                        else scan.run(clock()))
        if on_finished is not None:
            await on_finished(report, time.perf_counter() - began)

    callback: JobCallback = due_scan_job
    if supervise is not None:
        callback = supervise(name, callback)

    # The catch-up scan as a job of its own: a repeating job whose first run is "now" at
    # registration is skipped (to one interval later) by APScheduler when the scheduler
    # starts a moment after it was added, as it does after post_init.
    job_queue.run_once(callback, when=0, name=f"{name}-at-start")
    return job_queue.run_repeating(
        callback, interval=settings.scan_seconds, first=settings.scan_seconds, name=name,
        job_kwargs={"max_instances": 1, "coalesce": True},
    )


class SenderService:
    """Owns the sender's task: ``start()`` once, ``stop()`` once. If the sender ends with
    an error (an outage past ``give_up_seconds``, a bug), the process status is failed
    with one line, so the process stops and its supervisor restarts it."""

    def __init__(self, sender: Sender, status: ProcessStatus | None = None) -> None:
        self.sender = sender
        self.status = status
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sender")

    async def _run(self) -> None:
        try:
            await self.sender.run(self._stop)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _LOG.exception("the delivery sender stopped unexpectedly")
            if self.status is not None:
                self.status.fail(f"the delivery sender stopped: {describe(error)}")
            raise

    async def stop(self, grace_seconds: float = 30.0, settle_seconds: float = 10.0) -> None:
        """Stop claiming, let the sends in flight finish for ``grace_seconds``, then abandon
        the Bot API calls still running and give the database writes ``settle_seconds``.
        Only then is the task cancelled, which could interrupt a transaction."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        try:
            if not await self._finished(task, grace_seconds):
                abandoned = self.sender.abandon_requests()
                _LOG.warning("%d sends still in flight after %gs were abandoned; the next "
                             "start settles them as uncertain", abandoned, grace_seconds)
                if not await self._finished(task, settle_seconds):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        except Exception:  # already logged by _run
            _LOG.debug("sender ended with an error", exc_info=True)

    @staticmethod
    async def _finished(task: asyncio.Task[None], seconds: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(task), seconds)
        except TimeoutError:
            return False
        return True


Hook = Callable[[Any], Awaitable[None]]


def attach_sender(application: Application[Any, Any, Any, Any, Any, Any],
                  service: SenderService) -> None:
    """Start the sender after ``post_init`` and stop it in ``post_stop`` (chained)."""
    previous_init: Hook | None = application.post_init
    previous_stop: Hook | None = application.post_stop

    async def post_init(app: Any) -> None:
        if previous_init is not None:
            await previous_init(app)
        await service.start()

    async def post_stop(app: Any) -> None:
        await service.stop()
        if previous_stop is not None:
            await previous_stop(app)

    application.post_init = post_init
    application.post_stop = post_stop
