"""One shared send budget for the whole bot, with an interactive lane bulk cannot starve.

Telegram allows about 30 messages a second overall, one a second per chat and twenty a
minute per group. A briefing fan-out can use all of that, and a reader who types
``/story`` meanwhile must not wait behind 10,000 queued briefings. So:

* every call that sends or edits takes one token from a single global token bucket
  (``rate_per_second``, a small burst to absorb timer jitter);
* waiting calls are granted in lane order: *interactive* first (any call whose
  ``rate_limit_args`` is not ``{"lane": "bulk"}``), and a bulk call never starts while an
  interactive call waits for budget;
* bulk calls also keep per-chat spacing (``per_chat_per_second``) and per-group windows
  (``per_group_per_minute`` for negative chat ids); interactive calls are not per-chat
  throttled, so a three-part reply goes out at once;
* a 429 pauses *all* bulk sending for ``retry_after`` seconds and the call is resent
  (bounded by ``max_retries``).

Efficiency: no polling. Waiters park on futures; one pump task sleeps exactly until the
next token (or the end of a pause) and grants as many waiters as the bucket allows. The
clock and sleep are injectable so tests run in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.config import DeliverySettings
from bot.delivery.outcome import retry_after_seconds

__all__ = ["BULK", "LaneRateLimiter", "is_limited_endpoint"]

_LOG = logging.getLogger(__name__)
BULK: dict[str, Any] = {"lane": "bulk"}
_GROUP_WINDOW = 60.0
_PRUNE_AT = 10_000
_EPSILON = 1e-9
_MIN_SLEEP = 1e-4
_LIMITED_PREFIXES = ("send", "edit", "copy", "forward", "stopPoll")


def is_limited_endpoint(endpoint: str) -> bool:
    """Calls that post or change messages count against the flood limits."""
    return endpoint.startswith(_LIMITED_PREFIXES)


def _is_bulk(rate_limit_args: Any) -> bool:
    return isinstance(rate_limit_args, dict) and rate_limit_args.get("lane") == "bulk"


def _chat_key(data: dict[str, Any]) -> int | str | None:
    chat_id = data.get("chat_id")
    if chat_id is None:
        return None
    if isinstance(chat_id, int):
        return chat_id
    try:
        return int(str(chat_id))
    except ValueError:
        return str(chat_id)  # @channelusername


def _is_group(chat: int | str) -> bool:
    return isinstance(chat, str) or chat < 0


@dataclass
class _ChatState:
    """Per-chat bookkeeping for bulk spacing; ``users`` counts callers holding/awaiting it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: float = float("-inf")
    window: deque[float] = field(default_factory=deque)
    users: int = 0


class LaneRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """PTB rate limiter with interactive/bulk lanes, per-chat spacing and 429 pauses."""

    def __init__(
        self,
        rate_per_second: float = 25.0,
        *,
        per_chat_per_second: float = 1.0,
        per_group_per_minute: int = 20,
        burst: float | None = None,
        max_retries: int = 5,
        retry_margin: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0")
        self._rate = rate_per_second
        self._capacity = burst if burst is not None else max(1.0, rate_per_second * 0.05)
        self._chat_interval = 1.0 / per_chat_per_second if per_chat_per_second > 0 else 0.0
        self._group_limit = per_group_per_minute
        self._max_retries = max_retries
        self._retry_margin = retry_margin
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._capacity
        self._stamp = clock()
        self._interactive: deque[asyncio.Future[None]] = deque()
        self._bulk: deque[asyncio.Future[None]] = deque()
        self._bulk_resume_at = float("-inf")
        self._pump_task: asyncio.Task[None] | None = None
        self._pump_wake_at = float("-inf")
        self._chats: dict[int | str, _ChatState] = {}
        self.granted = {"interactive": 0, "bulk": 0}
        self.retries = 0

    @classmethod
    def from_settings(cls, settings: DeliverySettings, **kwargs: Any) -> LaneRateLimiter:
        return cls(settings.rate_per_second, per_chat_per_second=settings.per_chat_per_second,
                   per_group_per_minute=settings.per_group_per_minute, **kwargs)

    # -- BaseRateLimiter -------------------------------------------------------------

    async def initialize(self) -> None:
        """Nothing to set up: the pump starts on demand."""

    async def shutdown(self) -> None:
        task, self._pump_task = self._pump_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in (*self._interactive, *self._bulk):
            fut.cancel()
        self._interactive.clear()
        self._bulk.clear()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if not is_limited_endpoint(endpoint):
            return await callback(*args, **kwargs)
        bulk = _is_bulk(rate_limit_args)
        chat = _chat_key(data)
        attempt = 0
        while True:
            if bulk:
                await self._acquire_bulk(chat)
            else:
                await self._acquire(bulk=False)
                self._record(chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                delay = retry_after_seconds(exc) + self._retry_margin
                self.pause_bulk(delay)
                if attempt >= self._max_retries:
                    _LOG.warning("flood limit still hit after %d retries (%s)", attempt,
                                 endpoint)
                    raise
                attempt += 1
                self.retries += 1
                _LOG.info("flood limit: %s paused bulk sending for %.1f s", endpoint, delay)
                if not bulk:
                    await self._sleep(delay)
                # bulk: _acquire_bulk waits for the pause to end

    # -- lanes -----------------------------------------------------------------------

    def pause_bulk(self, seconds: float) -> None:
        """Hold every bulk call for ``seconds`` from now (extends, never shortens)."""
        self._bulk_resume_at = max(self._bulk_resume_at, self._clock() + seconds)

    @property
    def bulk_paused_until(self) -> float:
        return self._bulk_resume_at

    @property
    def waiting(self) -> tuple[int, int]:
        """(interactive, bulk) calls waiting for budget."""
        return (sum(not f.done() for f in self._interactive),
                sum(not f.done() for f in self._bulk))

    async def _acquire_bulk(self, chat: int | str | None) -> None:
        if chat is None:
            await self._acquire(bulk=True)
            return
        state = self._chats.get(chat)
        if state is None:
            state = self._chats[chat] = _ChatState()
        state.users += 1
        try:
            async with state.lock:
                while True:
                    ready = self._chat_ready(chat, state)
                    now = self._clock()
                    if ready <= now:
                        break
                    await self._sleep(ready - now)
                await self._acquire(bulk=True)
                self._stamp_chat(chat, state, self._clock())
        finally:
            state.users -= 1
            if state.users == 0 and len(self._chats) > _PRUNE_AT:
                self._prune()

    def _chat_ready(self, chat: int | str, state: _ChatState) -> float:
        ready = state.last + self._chat_interval
        if _is_group(chat) and self._group_limit > 0:
            window = state.window
            now = self._clock()
            while window and window[0] <= now - _GROUP_WINDOW:
                window.popleft()
            if len(window) >= self._group_limit:
                ready = max(ready, window[0] + _GROUP_WINDOW)
        return ready

    def _stamp_chat(self, chat: int | str, state: _ChatState, now: float) -> None:
        state.last = now
        if _is_group(chat):
            state.window.append(now)

    def _record(self, chat: int | str | None) -> None:
        """Interactive sends count towards the chat's spacing for later bulk sends."""
        if chat is None:
            return
        state = self._chats.get(chat)
        if state is None:
            if len(self._chats) > _PRUNE_AT:
                self._prune()
            state = self._chats[chat] = _ChatState()
        self._stamp_chat(chat, state, self._clock())

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._chats.items()
                    if s.users == 0 and s.last + self._chat_interval <= now
                    and (not s.window or s.window[-1] <= now - _GROUP_WINDOW)]:
            del self._chats[key]

    # -- the global bucket -----------------------------------------------------------

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def _interactive_waiting(self) -> bool:
        while self._interactive and self._interactive[0].done():
            self._interactive.popleft()
        return bool(self._interactive)

    def _bulk_waiting(self) -> bool:
        while self._bulk and self._bulk[0].done():
            self._bulk.popleft()
        return bool(self._bulk)

    async def _acquire(self, *, bulk: bool) -> None:
        now = self._clock()
        self._refill(now)
        if bulk:
            may_go = (not self._interactive_waiting() and not self._bulk_waiting()
                      and now >= self._bulk_resume_at)
        else:
            may_go = not self._interactive_waiting()
        if may_go and self._tokens >= 1.0 - _EPSILON:
            self._tokens -= 1.0
            self.granted["bulk" if bulk else "interactive"] += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._bulk if bulk else self._interactive).append(fut)
        self._ensure_pump(now, urgent=not bulk)
        await fut

    def _ensure_pump(self, now: float, *, urgent: bool) -> None:
        task = self._pump_task
        if task is not None and not task.done():
            if not urgent or self._pump_wake_at <= now + (1.0 - self._tokens) / self._rate:
                return
            # The pump sleeps through a bulk pause; an interactive call must not wait.
            task.cancel()
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        """Grant waiting calls as tokens accrue; exits when nobody waits."""
        while True:
            now = self._clock()
            self._refill(now)
            while self._tokens >= 1.0 - _EPSILON:
                if self._interactive_waiting():
                    fut = self._interactive.popleft()
                    self.granted["interactive"] += 1
                elif self._bulk_waiting() and now >= self._bulk_resume_at:
                    fut = self._bulk.popleft()
                    self.granted["bulk"] += 1
                else:
                    break
                self._tokens -= 1.0
                fut.set_result(None)
            interactive = self._interactive_waiting()
            bulk = self._bulk_waiting()
            if not interactive and not bulk:
                return
            # never a sleep too short to move the clock (float rounding would spin)
            delay = max(_MIN_SLEEP, (1.0 - self._tokens) / self._rate)
            if not interactive and now < self._bulk_resume_at:
                delay = max(delay, self._bulk_resume_at - now)
            self._pump_wake_at = now + delay
            await self._sleep(delay)
