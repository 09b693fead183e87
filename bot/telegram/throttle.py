"""Per-user command throttling: a sliding one-minute window per user id.

Memory follows the users active in the last window, not every user ever seen: users are
kept in the order of their last allowed request, so each check forgets the idle ones at
the front of that order, in amortised constant time, with no caller having to prune.
"""

from __future__ import annotations

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

    def forget_idle(self) -> None:
        """Drop users whose window has passed; :meth:`check` already does this as it goes."""
        self._forget_idle(self._clock())

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
