"""Helpers for delivery tests: stories, a fake library, settings, the sandbox bot token."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from bot.config import DeliverySettings
from bot.sandbox import SandboxServer
from bot.stories.model import Story, StoryBody, latest_order_key

T = TypeVar("T")
TOKEN = "123456:TEST-token-for-the-sandbox"

def make_story(key: str, title: str, updated: datetime, highlights: tuple[str, ...] = ()
               ) -> Story:
    return Story(
        id=key, key=key, seq=None, title=title, published=updated, updated=updated,
        body=StoryBody(highlights or (f"What happened in {title}.",), ("Body.",)),
        source=f"{key}.txt",
    )


class FakeLibrary:
    """What the delivery code reads from a StoryLibrary."""

    def __init__(self, stories: list[Story] | None = None) -> None:
        self.items: list[Story] = list(stories or [])

    @property
    def stories(self) -> tuple[Story, ...]:
        return tuple(sorted(self.items, key=latest_order_key))

    def updated_between(self, since: datetime, until: datetime) -> tuple[Story, ...]:
        return tuple(s for s in self.stories if since < s.updated <= until)



def fast_settings(**overrides: Any) -> DeliverySettings:
    values: dict[str, Any] = {"concurrency": 8, "backoff_seconds": 1.0,
                              "backoff_max_seconds": 8.0, "max_attempts": 3}
    values.update(overrides)
    return DeliverySettings(**values)


class VirtualTime:
    """Virtual monotonic time: sleepers wake in order and time jumps when all are idle."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.now + seconds, self._seq, fut))
        self._seq += 1
        await fut

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Drive ``awaitable`` to completion, advancing time whenever nothing can run."""
        task = asyncio.ensure_future(awaitable)
        idle = 0
        while not task.done():
            for _ in range(30):
                await asyncio.sleep(0)
                if task.done():
                    break
            if task.done():
                break
            while self._heap and self._heap[0][2].done():
                heapq.heappop(self._heap)
            if not self._heap:
                idle += 1
                if idle > 1000:
                    raise AssertionError("deadlock: nothing sleeps and nothing finishes")
                continue
            idle = 0
            when, _, fut = heapq.heappop(self._heap)
            self.now = max(self.now, when)
            fut.set_result(None)
        return task.result()


async def sandbox_idle(server: SandboxServer) -> None:
    """The barrier before counting what arrived: no Bot API call is still being answered
    (a slow answer the bot stopped waiting for has landed, or failed). At most 10 s."""
    state = server.state
    async with asyncio.timeout(10):
        while any(call.finished is None for call in state.bot_calls_since(0)):
            await state.wait_change(0.1)
