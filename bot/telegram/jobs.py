"""Periodic jobs that never fail silently: each failure is reported, the next run retries.

PTB's JobQueue would log a failing job's traceback on every tick and otherwise carry on,
so a due scan or a broadcast progress job broken for hours looks like a healthy bot.
:func:`supervised` wraps a job: the first failure is logged with its traceback and set as
a problem of the process (``/healthz`` answers 503), repeats are one line each, success
clears it, and a job still failing after ``delivery.give_up_seconds`` — or a database
outage the retry gave up on — fails the process so its supervisor restarts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.storage.retry import DatabaseUnavailable, describe
from bot.telegram.context import BotContext

__all__ = ["supervised"]

log = logging.getLogger(__name__)
JobCallback = Callable[[BotContext], Coroutine[Any, Any, None]]


def supervised(name: str, callback: JobCallback, *,
               clock: Callable[[], float] = time.monotonic) -> JobCallback:
    failing_since: float | None = None

    async def run(context: BotContext) -> None:
        nonlocal failing_since
        status = context.services.status
        try:
            await callback(context)
        except DatabaseUnavailable as error:
            status.fail(f"{name}: {error}")
            return
        except Exception as error:
            now = clock()
            give_up = context.services.settings.delivery.give_up_seconds
            if failing_since is None:
                failing_since = now
                log.exception("%s failed; it runs again on its next tick", name)
                status.set_problem(name, f"{name} failing: {describe(error)}")
            elif now - failing_since > give_up:
                status.fail(f"{name} has failed for {now - failing_since:.0f}s: "
                            f"{describe(error)}")
            else:
                log.warning("%s failed again: %s", name, describe(error))
            return
        if failing_since is not None:
            log.warning("%s works again after %.0fs", name, clock() - failing_since)
            failing_since = None
            status.clear_problem(name)

    return run
