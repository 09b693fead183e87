"""Flood control like Telegram's: windows and per-chat budgets over sending and editing calls."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["FloodControl", "FloodLimits"]


@dataclass(frozen=True)
class FloodLimits:
    """How many sending/editing calls Telegram lets through; None switches a limit off.

    ``per_second`` counts all chats in a sliding one-second window and
    ``per_group_per_minute`` one group (negative chat id) in a sixty-second window.
    ``per_chat_per_second`` limits one chat: without ``per_chat_burst`` in a one-second
    window; with it, as a budget of ``per_chat_burst`` messages that refills at
    ``per_chat_per_second`` (a reply of three parts goes at once, a fourth waits a
    second). Telegram's figures are 30, 1 after a burst of 3, and 20.
    """

    per_second: int | None = None
    per_chat_per_second: int | None = None
    per_group_per_minute: int | None = None
    per_chat_burst: int | None = None

    def __post_init__(self) -> None:
        if self.per_chat_burst is not None and self.per_chat_burst < 1:
            raise ValueError(f"per_chat_burst must be at least 1, got {self.per_chat_burst}")

    @classmethod
    def telegram(cls) -> FloodLimits:
        """Telegram's limits: 30/s overall, 1/s per chat after a burst of 3, 20/min per group."""
        return cls(per_second=30, per_chat_per_second=1, per_group_per_minute=20,
                   per_chat_burst=3)

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return any(
            x is not None
            for x in (self.per_second, self.per_chat_per_second, self.per_group_per_minute)
        )


@dataclass
class FloodControl:
    """Admits or refuses calls; a refused call does not use up any limit."""

    limits: FloodLimits = field(default_factory=FloodLimits)
    refused: int = 0
    _all: deque[float] = field(default_factory=deque)
    _chats: dict[int, deque[float]] = field(default_factory=dict)
    _groups: dict[int, deque[float]] = field(default_factory=dict)
    # per-chat budgets (GCRA): when each chat's burst is whole again
    _due: dict[int, float] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget the windows, the budgets and the refusal count."""
        self._all.clear()
        self._chats.clear()
        self._groups.clear()
        self._due.clear()
        self.refused = 0

    def check(self, now: float, chat_id: int | None, *, is_group: bool) -> int | None:
        """Admit a call at monotonic time ``now``: None, or the seconds to wait (429)."""
        limits = self.limits
        if not limits.enabled:
            return None
        waits: list[float] = []
        windows: list[tuple[deque[float], int, float]] = []
        if limits.per_second is not None:
            windows.append((self._all, limits.per_second, 1.0))
        budget = chat_id is not None and limits.per_chat_per_second is not None
        if budget and limits.per_chat_burst is None:
            assert chat_id is not None and limits.per_chat_per_second is not None
            windows.append(
                (self._chats.setdefault(chat_id, deque()), limits.per_chat_per_second, 1.0)
            )
            budget = False
        if chat_id is not None and is_group and limits.per_group_per_minute is not None:
            windows.append(
                (self._groups.setdefault(chat_id, deque()), limits.per_group_per_minute, 60.0)
            )
        for window, limit, span in windows:
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= limit:
                index = len(window) - limit
                waits.append(window[index] + span - now)
        if budget:
            assert chat_id is not None
            interval, slack = self._chat_budget()
            due = self._due.get(chat_id, now)
            if due - slack > now:
                waits.append(due - slack - now)
        if waits:
            self.refused += 1
            return max(1, math.ceil(max(waits)))
        for window, _limit, _span in windows:
            window.append(now)
        if budget:
            assert chat_id is not None
            interval, _ = self._chat_budget()
            self._due[chat_id] = max(self._due.get(chat_id, now), now) + interval
        return None

    def _chat_budget(self) -> tuple[float, float]:
        """(seconds per message, how far ahead of that a burst may run) for one chat."""
        rate, burst = self.limits.per_chat_per_second, self.limits.per_chat_burst
        assert rate is not None and burst is not None
        interval = 1.0 / rate
        return interval, (burst - 1) * interval
