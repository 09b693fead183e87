"""Per-user command throttling: a sliding one-minute window per user id."""

from __future__ import annotations

import time
from collections import deque
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
        self._seen: dict[int, deque[float]] = {}
        self._notified: dict[int, float] = {}

    def check(self, user_id: int) -> ThrottleVerdict:
        now = self._clock()
        times = self._seen.setdefault(user_id, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._notified.pop(user_id, None)
            return ThrottleVerdict.ALLOW
        if user_id in self._notified:
            return ThrottleVerdict.IGNORE
        self._notified[user_id] = now
        return ThrottleVerdict.NOTIFY

    def forget_idle(self) -> None:
        """Drop users whose window has passed, so memory follows active users only."""
        now = self._clock()
        for user_id in [u for u, t in self._seen.items() if not t or now - t[-1] >= self.window]:
            del self._seen[user_id]
            self._notified.pop(user_id, None)
