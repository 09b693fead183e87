"""One shared send budget for the whole bot, with an interactive lane bulk cannot starve.

Telegram allows about 30 messages a second overall, one a second per chat (after a short
burst) and twenty a minute per group. A briefing fan-out can use all of that, and a reader
who types ``/story`` meanwhile must not wait behind 10,000 queued briefings. So:

* every call that sends or edits takes one token from a single global token bucket
  (``rate_per_second``, a small burst to absorb timer jitter);
* waiting calls are granted in lane order: *interactive* first (any call whose
  ``rate_limit_args`` is not ``{"lane": "bulk"}``), and a bulk call never starts while an
  interactive call waits for budget;
* both lanes share each chat's budget: a reader's reply may use a burst of
  ``per_chat_burst`` messages, then ``per_chat_per_second``; a bulk call waits until the
  chat's burst is whole again, which is the old one-per-second spacing when only bulk
  writes to the chat. Groups (negative chat ids) also keep ``per_group_per_minute``;
* one call per chat is in flight at a time, and a chat's budget is charged when the call
  *returns*: Telegram counted it on arrival, which is earlier, so network jitter can
  only make us more careful than Telegram, never draw a 429;
* a 429 on a bulk call pauses *all* bulk sending for ``retry_after``; a 429 on a reader's
  reply holds only that chat. Either way the call is resent after ``retry_after``
  (bounded by ``max_retries``);
* a call with ``allow_paid_broadcast`` (Telegram's paid broadcasts, up to 1,000 messages a
  second for Stars) takes its token from a budget of its own, ``paid_rate_per_second``,
  never from the free one, as python-telegram-bot's ``AIORateLimiter`` does: a paid
  broadcast at 1,000/s leaves readers' replies and briefings their whole free budget. The
  request's own flag decides, not the lane, because that is what Telegram counts. Per-chat
  and per-group limits still apply to it, and a 429 on it pauses only paid sending. The
  paid budget stays 2% under Telegram's 1,000/s: Telegram counts calls as they arrive,
  and at exactly its limit the network's jitter alone would draw 429s. Its burst is 8 ms
  of its rate (7.8 calls at 980/s; a fleet member's share, a share of it): one token at a
  time needs the pump to wake every millisecond, and a loaded machine wakes it late (a
  pump that woke 4 ms late each time granted 200 calls a second, not 980). A second then
  holds at most 988 paid calls, 1.2% under Telegram's limit for the network's jitter.

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

__all__ = ["BULK", "LaneRateLimiter", "is_limited_endpoint", "is_paid"]

_LOG = logging.getLogger(__name__)
BULK: dict[str, Any] = {"lane": "bulk"}
_GROUP_WINDOW = 60.0
_PRUNE_AT = 10_000
_EPSILON = 1e-9
_MIN_SLEEP = 1e-4
# A chat's next call waits this much longer than the limits strictly require: no clock is
# exact, and when ours and Telegram's disagree at the boundary, ours must be the late one.
_CHAT_MARGIN = 1e-3
_LIMITED_PREFIXES = ("send", "edit", "copy", "forward", "stopPoll")
# Telegram's paid broadcast limit, and the share of it the paid budget uses at most.
_PAID_LIMIT = 1000.0
_PAID_HEADROOM = 0.98
# The paid budget's burst, as seconds of its rate: how late its pump may wake without
# losing rate (see the module notes).
_PAID_BURST_SECONDS = 0.008


def is_limited_endpoint(endpoint: str) -> bool:
    """Calls that post or change messages count against the flood limits."""
    return endpoint.startswith(_LIMITED_PREFIXES)


def _is_bulk(rate_limit_args: Any) -> bool:
    return isinstance(rate_limit_args, dict) and rate_limit_args.get("lane") == "bulk"


def is_paid(data: dict[str, Any]) -> bool:
    """A paid-broadcast call: Telegram counts it against the paid limit, not the free one."""
    return bool(data.get("allow_paid_broadcast"))


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
    """One chat's share of the flood limits; ``users`` counts callers holding/awaiting it.

    ``due`` is the chat's theoretical arrival time (GCRA): the moment its burst allowance
    is whole again. A call may go ``burst - 1`` intervals before it; each sent call moves
    it one interval on.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    due: float = float("-inf")
    blocked_until: float = float("-inf")
    window: deque[float] = field(default_factory=deque)
    users: int = 0


class _PaidBudget:
    """The token bucket of paid-broadcast calls: first come, first served, its own pump.

    Separate from the free budget's lanes on purpose: the two never wait for each other.
    """

    def __init__(self, rate: float, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._set(rate)
        self._tokens = self._capacity
        self._stamp = clock()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pump_task: asyncio.Task[None] | None = None
        self.resume_at = float("-inf")  # a 429 on a paid call holds paid sending until then
        self.last_used = float("-inf")

    def _set(self, rate: float) -> None:
        self.rate = min(rate, _PAID_LIMIT * _PAID_HEADROOM)
        self._capacity = max(1.0, self.rate * _PAID_BURST_SECONDS)

    def set_rate(self, rate: float) -> None:
        self._refill(self._clock())
        self._set(rate)
        self._tokens = min(self._tokens, self._capacity)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def _waiting(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    async def acquire(self) -> None:
        now = self._clock()
        self.last_used = now
        self._refill(now)
        if not self._waiting() and now >= self.resume_at and self._tokens >= 1.0 - _EPSILON:
            self._tokens -= 1.0
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())
        await fut

    def refund(self) -> None:
        self._tokens = min(self._capacity, self._tokens + 1.0)

    async def _pump(self) -> None:
        while True:
            now = self._clock()
            self._refill(now)
            while now >= self.resume_at and self._tokens >= 1.0 - _EPSILON and self._waiting():
                self._tokens -= 1.0
                self._waiters.popleft().set_result(None)
            if not self._waiting():
                return
            delay = max(_MIN_SLEEP, (1.0 - self._tokens) / self.rate, self.resume_at - now)
            await self._sleep(delay)

    async def shutdown(self) -> None:
        task, self._pump_task = self._pump_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in self._waiters:
            fut.cancel()
        self._waiters.clear()


class LaneRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """PTB rate limiter with interactive/bulk lanes, per-chat budgets and 429 handling."""

    def __init__(
        self,
        rate_per_second: float = 25.0,
        *,
        per_chat_per_second: float = 1.0,
        per_chat_burst: int = 3,
        per_group_per_minute: int = 20,
        burst: float | None = None,
        max_retries: int = 5,
        retry_margin: float = 0.1,
        paid_rate_per_second: float = 1000.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0 or paid_rate_per_second <= 0:
            raise ValueError("rate_per_second and paid_rate_per_second must be > 0")
        if per_chat_burst < 1:
            raise ValueError("per_chat_burst must be at least 1")
        self._rate = rate_per_second
        self._burst = burst
        self._capacity = burst if burst is not None else max(1.0, rate_per_second * 0.05)
        self._chat_interval = 1.0 / per_chat_per_second if per_chat_per_second > 0 else 0.0
        self._chat_slack = (per_chat_burst - 1) * self._chat_interval
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
        self._paid = _PaidBudget(paid_rate_per_second, clock, sleep)
        self._configured = (rate_per_second, self._paid.rate)  # what set_rate shares out
        # Calls granted and 429 answers, by lane ("paid" appears with the first paid call).
        self.granted = {"interactive": 0, "bulk": 0}
        self.refused = {"interactive": 0, "bulk": 0}
        self.retries = 0
        # Round trip of a bulk call once granted (EWMA), for sizing the sends in flight.
        self.bulk_latency: float | None = None
        # Told of every bulk pause a 429 caused here (a fleet shares it through its
        # database: bot/delivery/fleet.py).
        self.on_bulk_pause: Callable[[float], None] | None = None

    @classmethod
    def from_settings(cls, settings: DeliverySettings, **kwargs: Any) -> LaneRateLimiter:
        return cls(settings.rate_per_second, per_chat_per_second=settings.per_chat_per_second,
                   per_group_per_minute=settings.per_group_per_minute,
                   paid_rate_per_second=settings.paid_rate_per_second, **kwargs)

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
        await self._paid.shutdown()

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
        paid = is_paid(data)
        bulk = _is_bulk(rate_limit_args) or paid
        lane = "paid" if paid else "bulk" if bulk else "interactive"
        chat = _chat_key(data)
        state = self._enter(chat)
        attempt = 0
        try:
            while True:
                if paid:
                    await self._paid_turn(chat, state)
                elif bulk:
                    await self._bulk_turn(chat, state)
                else:
                    await self._interactive_turn(chat, state)
                began = self._clock()
                try:  # this call holds the chat and one token of its budget
                    result = await callback(*args, **kwargs)
                except RetryAfter as exc:
                    delay = retry_after_seconds(exc) + self._retry_margin
                    self.refused[lane] = self.refused.get(lane, 0) + 1
                    state.blocked_until = max(state.blocked_until, self._clock() + delay)
                    if paid:
                        self._paid.resume_at = max(self._paid.resume_at,
                                                   self._clock() + delay)
                    elif bulk:
                        self.pause_bulk(delay)
                        if self.on_bulk_pause is not None:
                            self.on_bulk_pause(delay)
                    if attempt >= self._max_retries:
                        _LOG.warning("flood limit still hit after %d retries (%s)", attempt,
                                     endpoint)
                        raise
                    attempt += 1
                    self.retries += 1
                    _LOG.info("flood limit: %s retried in %.1f s (%s)", endpoint, delay,
                              "paid sending paused" if paid else
                              "bulk sending paused" if bulk else "this chat only")
                except BaseException:
                    self._charge(chat, state)  # it may have reached Telegram
                    raise
                else:
                    self._charge(chat, state)
                    if bulk:
                        took = self._clock() - began
                        self.bulk_latency = took if self.bulk_latency is None else (
                            0.8 * self.bulk_latency + 0.2 * took)
                    return result
                finally:
                    state.lock.release()
        finally:
            self._leave(chat, state)

    async def _interactive_turn(self, chat: int | str | None, state: _ChatState) -> None:
        """Take the chat (in arrival order), wait for its budget, then a global token."""
        await state.lock.acquire()
        try:
            await self._wait_chat(chat, state, bulk=False)
            await self._acquire(bulk=False)
        except BaseException:
            state.lock.release()
            raise

    async def _bulk_turn(self, chat: int | str | None, state: _ChatState) -> None:
        """Like :meth:`_interactive_turn`, but never holding the chat while waiting.

        A bulk call waits for budget without the chat's lock, so a reader's reply to the
        same chat is not queued behind it; if a reader took the chat's budget meanwhile,
        the token goes back and the call waits again.
        """
        while True:
            await self._wait_bulk_pause()
            await self._wait_chat(chat, state, bulk=True)
            await self._acquire(bulk=True)
            try:
                await state.lock.acquire()  # free at once unless a call is in flight
            except BaseException:
                self._refund()
                raise
            now = self._clock()
            if self._chat_ready(chat, state, now, bulk=True) <= now + _EPSILON:
                return
            state.lock.release()
            self._refund()

    async def _paid_turn(self, chat: int | str | None, state: _ChatState) -> None:
        """Like :meth:`_bulk_turn`, with a token of the paid budget. Every paid call is
        granted (``granted["paid"]``) once, when it goes."""
        while True:
            await self._wait_chat(chat, state, bulk=True)
            await self._paid.acquire()
            try:
                await state.lock.acquire()
            except BaseException:
                self._paid.refund()
                raise
            now = self._clock()
            if self._chat_ready(chat, state, now, bulk=True) <= now + _EPSILON:
                self.granted["paid"] = self.granted.get("paid", 0) + 1
                return
            state.lock.release()
            self._paid.refund()

    # -- lanes -----------------------------------------------------------------------

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def paid_rate(self) -> float:
        return self._paid.rate

    @property
    def sending_rate(self) -> float:
        """The rate bulk sends can reach now: the free budget, plus the paid one while paid
        calls are being made (the sender sizes its sends in flight by it)."""
        if self._clock() - self._paid.last_used < 2.0:
            return self._rate + self._paid.rate
        return self._rate

    def set_rate(self, rate_per_second: float, *, paid_rate: float | None = None) -> None:
        """Change the global budget (a fleet member's share of the token's rate). The paid
        budget takes the same share of its configured rate unless ``paid_rate`` is given."""
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0")
        now = self._clock()
        self._refill(now)  # what accrued so far, at the old rate
        self._rate = rate_per_second
        if self._burst is None:
            self._capacity = max(1.0, rate_per_second * 0.05)
        self._tokens = min(self._tokens, self._capacity)
        free, paid = self._configured
        self._paid.set_rate(paid_rate if paid_rate is not None
                            else paid * rate_per_second / free)

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

    async def _wait_bulk_pause(self) -> None:
        while (now := self._clock()) < self._bulk_resume_at:
            await self._sleep(self._bulk_resume_at - now)

    # -- per-chat budgets ------------------------------------------------------------

    def _enter(self, chat: int | str | None) -> _ChatState:
        if chat is None:
            return _ChatState()  # nothing to share: a private state for this one call
        state = self._chats.get(chat)
        if state is None:
            if len(self._chats) >= _PRUNE_AT:
                self._prune()
            state = self._chats[chat] = _ChatState()
        state.users += 1
        return state

    def _leave(self, chat: int | str | None, state: _ChatState) -> None:
        if chat is not None:
            state.users -= 1

    async def _wait_chat(self, chat: int | str | None, state: _ChatState, *,
                         bulk: bool) -> None:
        while True:
            now = self._clock()
            ready = self._chat_ready(chat, state, now, bulk=bulk)
            if ready <= now + _EPSILON:
                return
            await self._sleep(ready - now)

    def _chat_ready(self, chat: int | str | None, state: _ChatState, now: float, *,
                    bulk: bool) -> float:
        ready = max(state.blocked_until,
                    _CHAT_MARGIN + (state.due if bulk else state.due - self._chat_slack))
        if chat is not None and _is_group(chat) and self._group_limit > 0:
            window = state.window
            while window and window[0] <= now - _GROUP_WINDOW:
                window.popleft()
            if len(window) >= self._group_limit:
                oldest = window[len(window) - self._group_limit]
                ready = max(ready, oldest + _GROUP_WINDOW + _CHAT_MARGIN)
        return ready

    def _charge(self, chat: int | str | None, state: _ChatState) -> None:
        """Count a finished call against its chat (at its end: see the module notes)."""
        now = self._clock()
        state.due = max(state.due, now) + self._chat_interval
        if chat is not None and _is_group(chat):
            state.window.append(now)

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._chats.items()
                    if s.users == 0 and s.due <= now and s.blocked_until <= now
                    and (not s.window or s.window[-1] <= now - _GROUP_WINDOW)]:
            del self._chats[key]

    # -- the global bucket -----------------------------------------------------------

    def _refund(self) -> None:
        """Give back a bulk token that could not be used (its chat became busy)."""
        self._tokens = min(self._capacity, self._tokens + 1.0)
        self.granted["bulk"] -= 1
        if self._interactive_waiting() or self._bulk_waiting():
            self._ensure_pump(self._clock(), urgent=True)

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
