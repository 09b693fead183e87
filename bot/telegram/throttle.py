"""Per-user throttling: a sliding one-minute window per user id, one budget per kind of
request (messages, button presses), so paging a list cannot use up the messages.

Memory follows the users active in the last window, not every user ever seen: users are
kept in the order of their last allowed request, so each check forgets the idle ones at
the front of that order, in amortised constant time, with no caller having to prune.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from enum import Enum

__all__ = ["ThrottleVerdict", "UserThrottle"]


class ThrottleVerdict(Enum):
    ALLOW = "allow"
    NOTIFY = "notify"  # first refused request in a window: tell the user once
    IGNORE = "ignore"


class UserThrottle:
    """Allows ``limit`` requests per ``window`` seconds per user; others are unaffected."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        # user -> times of their allowed requests in the window; the user whose last one is
        # oldest comes first. A refused request is not recorded, so it cannot extend a limit.
        self._seen: OrderedDict[int, deque[float]] = OrderedDict()
        self._notified: set[int] = set()
        self._budgets: dict[str, UserThrottle] = {}

    @property
    def tracked_users(self) -> int:
        """How many users are held in memory (those allowed a request within the window)."""
        return len(self._seen)

    def check(self, user_id: int) -> ThrottleVerdict:
        now = self._clock()
        self._forget_idle(now)
        times = self._seen.get(user_id)
        if times is None:
            times = self._seen[user_id] = deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._seen.move_to_end(user_id)
            self._notified.discard(user_id)
            return ThrottleVerdict.ALLOW
        if user_id in self._notified:
            return ThrottleVerdict.IGNORE
        self._notified.add(user_id)
        return ThrottleVerdict.NOTIFY

    def retry_after(self, user_id: int) -> int:
        """Whole seconds until ``user_id`` may make a request again (0: now), rounded up so
        a reader told "try again in N s" is never refused when they do."""
        times = self._seen.get(user_id)
        if times is None or len(times) < self.limit:
            return 0
        return max(0, math.ceil(times[0] + self.window - self._clock()))

    def budget(self, kind: str, limit: int) -> UserThrottle:
        """The separate budget of ``limit`` requests of ``kind`` (e.g. button presses) per
        window, with this throttle's window and clock: requests of one kind never use up,
        or are refused for, another's. Made on first use, from the limit the caller reads
        from the settings; made anew should that limit change."""
        budget = self._budgets.get(kind)
        if budget is None or budget.limit != limit:
            budget = self._budgets[kind] = UserThrottle(limit, self.window, self._clock)
        return budget

    def forget_idle(self) -> None:
        """Drop users whose window has passed; :meth:`check` already does this as it goes."""
        now = self._clock()
        self._forget_idle(now)
        for budget in self._budgets.values():
            budget._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        """Drop users whose every allowed request has left the window (the same test as in
        :meth:`check`), so forgetting them changes no verdict."""
        seen = self._seen
        while seen:
            user_id, times = next(iter(seen.items()))
            if times and now - times[-1] < self.window:
                return
            del seen[user_id]
            self._notified.discard(user_id)
