"""Riding out database outages: which errors are worth retrying, and for how long.

A locked SQLite file, a full or read-only disk, a PostgreSQL backend terminated by an
operator, a server restart: the bot's background work (sender, due scan, alerts) retries
such errors with a capped backoff and resumes by itself when the database answers again.
The outage is logged once when it starts and once when it ends, and reported as a
problem of the process while it lasts (``/healthz`` answers 503). An outage longer than
``give_up_seconds`` raises :class:`DatabaseUnavailable`: the process then stops with a
non-zero exit so its supervisor restarts it, rather than sitting "up" with delivery dead.
Errors that a retry cannot fix (a constraint violation, a bug) are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy import exc as sa

from bot.errors import StorageError
from bot.status import ProcessStatus

__all__ = ["DatabaseRetry", "DatabaseUnavailable", "is_transient"]

_LOG = logging.getLogger(__name__)
T = TypeVar("T")
PROBLEM = "database"
# SQLSTATE classes that describe the server or the connection, not the statement:
# 08 connection exception, 40 transaction rollback (serialization, deadlock), 53
# insufficient resources, 57 operator intervention (pg_terminate_backend, shutdown).
_TRANSIENT_SQLSTATE = ("08", "40", "53", "57")


class DatabaseUnavailable(StorageError):
    """The database has not answered for longer than the configured give-up time."""


def _sqlstate(error: BaseException | None) -> str:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(code, str):
        return code
    cause = getattr(error, "__cause__", None)
    return _sqlstate(cause) if cause is not None and cause is not error else ""


def is_transient(error: BaseException) -> bool:
    """Would the same statement likely succeed once the database is back?"""
    if isinstance(error, (sa.IntegrityError, sa.ProgrammingError, sa.DataError)):
        return False
    if isinstance(error, (OSError, TimeoutError, sa.TimeoutError, sa.DisconnectionError,
                          asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
        return True
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated or isinstance(
                error, (sa.OperationalError, sa.InterfaceError, sa.InternalError)):
            return True
        return _sqlstate(error.orig).startswith(_TRANSIENT_SQLSTATE)
    if isinstance(error, asyncpg.PostgresError):
        return _sqlstate(error).startswith(_TRANSIENT_SQLSTATE)
    return False


def describe(error: BaseException) -> str:
    """One line for logs and ``/healthz`` (SQLAlchemy appends SQL and a link)."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


class DatabaseRetry:
    """Runs database operations, retrying transient errors; one per process, shared, so
    every caller sees the same outage and its start."""

    def __init__(self, give_up_seconds: float, status: ProcessStatus | None = None, *,
                 first_delay: float = 0.25, max_delay: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.give_up_seconds = give_up_seconds
        self._status = status
        self._first = first_delay
        self._max = max_delay
        self._clock = clock
        self._sleep = sleep
        self.outage_started: float | None = None
        self.retries = 0
        self.outages = 0

    async def run(self, op: Callable[[], Awaitable[T]]) -> T:
        """``await op()``, again after a pause for as long as it fails transiently."""
        delay = self._first
        while True:
            try:
                result = await op()
            except Exception as error:
                if not is_transient(error):
                    raise
                self._failed(error)
                await self._sleep(delay)
                delay = min(delay * 2, self._max)
                continue
            self._answered()
            return result

    def _failed(self, error: BaseException) -> None:
        now = self._clock()
        self.retries += 1
        if self.outage_started is None:
            self.outage_started = now
            self.outages += 1
            _LOG.error("the database is not answering (%s); retrying, giving up after %gs",
                       describe(error), self.give_up_seconds)
            if self._status is not None:
                self._status.set_problem(PROBLEM, f"database not answering: {describe(error)}")
        elif now - self.outage_started > self.give_up_seconds:
            raise DatabaseUnavailable(
                f"the database has not answered for {now - self.outage_started:.0f}s "
                f"(delivery.give_up_seconds={self.give_up_seconds:g}): {describe(error)}"
            ) from error

    def _answered(self) -> None:
        if self.outage_started is None:
            return
        _LOG.warning("the database answers again after %.1fs", self._clock() -
                     self.outage_started)
        self.outage_started = None
        if self._status is not None:
            self._status.clear_problem(PROBLEM)
