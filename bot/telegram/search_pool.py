"""Searches in a thread pool of their own.

At a million stories a search on common words can take hundreds of milliseconds of
SQLite. In asyncio's default pool a burst of them queued in front of every other reply's
query (``/latest`` p95 went from 16 ms to seconds at 20 searches a second) and each of the
pool's threads held a search connection with its cache filled. Here at most
:data:`SEARCH_THREADS` searches run at once; others wait their turn behind them, and the
rest of the bot's queries keep the default pool.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["SEARCH_THREADS", "SearchPool"]

SEARCH_THREADS = 2
_P = ParamSpec("_P")
_T = TypeVar("_T")


class SearchPool:
    """Runs search calls off the event loop, at most :data:`SEARCH_THREADS` at a time."""

    def __init__(self, threads: int = SEARCH_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="search")  # lazy threads

    async def run(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))

    def close(self) -> None:
        """Searches not started are dropped; the bot is stopping."""
        self._pool.shutdown(wait=False, cancel_futures=True)
