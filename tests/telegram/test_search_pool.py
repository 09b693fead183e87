"""Slow searches queue in their own pool: other replies' queries do not wait behind them."""

from __future__ import annotations

import asyncio
import threading

from bot.telegram.search_pool import SEARCH_THREADS, SearchPool


async def test_slow_searches_hold_only_their_own_threads() -> None:
    pool = SearchPool()
    release, busy = threading.Event(), threading.Event()
    started: list[int] = []

    def slow_search(number: int) -> int:
        started.append(number)
        if len(started) == SEARCH_THREADS:
            busy.set()
        release.wait(10)
        return number

    searches = [asyncio.ensure_future(pool.run(slow_search, n))
                for n in range(SEARCH_THREADS + 3)]
    try:
        assert await asyncio.to_thread(busy.wait, 10)  # every search thread is busy
        # Another reply's query (asyncio's default pool) is answered meanwhile ...
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "latest"), 2) == "latest"
        # ... and no more than SEARCH_THREADS searches ran at once.
        assert len(started) == SEARCH_THREADS
    finally:
        release.set()
    assert await asyncio.gather(*searches) == list(range(SEARCH_THREADS + 3))
    pool.close()
