"""Flood control like Telegram's: sliding windows over the sending and editing calls."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["FloodControl", "FloodLimits"]


@dataclass(frozen=True)
class FloodLimits:
    """How many sending/editing calls Telegram lets through; None switches a limit off.

    ``per_second`` counts all chats in a sliding one-second window, ``per_chat_per_second``
    one chat in a one-second window and ``per_group_per_minute`` one group (negative chat id)
    in a sixty-second window. Telegram's published figures are 30, 1 and 20.
    """

    per_second: int | None = None
    per_chat_per_second: int | None = None
    per_group_per_minute: int | None = None

    @classmethod
    def telegram(cls) -> FloodLimits:
        """Telegram's documented limits: 30/s overall, 1/s per chat, 20/min per group."""
        return cls(per_second=30, per_chat_per_second=1, per_group_per_minute=20)

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return any(
            x is not None
            for x in (self.per_second, self.per_chat_per_second, self.per_group_per_minute)
        )


@dataclass
class FloodControl:
    """Admits or refuses calls; a refused call does not use up the window."""

    limits: FloodLimits = field(default_factory=FloodLimits)
    refused: int = 0
    _all: deque[float] = field(default_factory=deque)
    _chats: dict[int, deque[float]] = field(default_factory=dict)
    _groups: dict[int, deque[float]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget the windows and the refusal count."""
        self._all.clear()
        self._chats.clear()
        self._groups.clear()
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
        if chat_id is not None and limits.per_chat_per_second is not None:
            windows.append(
                (self._chats.setdefault(chat_id, deque()), limits.per_chat_per_second, 1.0)
            )
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
        if waits:
            self.refused += 1
            return max(1, math.ceil(max(waits)))
        for window, _limit, _span in windows:
            window.append(now)
        return None
