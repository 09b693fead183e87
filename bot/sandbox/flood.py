"""Flood control like Telegram's: windows and per-chat budgets over sending and editing calls.

Paid broadcasts too: a call with ``allow_paid_broadcast`` counts against its own window
(Telegram: 1,000 a second) instead of the free one, and each such message above the free
30 of its second costs ``star_price`` from a Stars balance; when the balance cannot pay,
the call is refused with :class:`StarsExhausted` (the server answers ``400 Bad Request:
BALANCE_TOO_LOW``) and uses up nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["FloodControl", "FloodLimits", "StarsExhausted"]


class StarsExhausted(Exception):
    """A paid broadcast message the Stars balance cannot pay for."""


@dataclass(frozen=True)
class FloodLimits:
    """How many sending/editing calls Telegram lets through; None switches a limit off.

    ``per_second`` counts all chats in a sliding one-second window and
    ``per_group_per_minute`` one group (negative chat id) in a sixty-second window.
    ``per_chat_per_second`` limits one chat: without ``per_chat_burst`` in a one-second
    window; with it, as a budget of ``per_chat_burst`` messages that refills at
    ``per_chat_per_second`` (a reply of three parts goes at once, a fourth waits a
    second). Telegram's figures are 30, 1 after a burst of 3, and 20.

    ``paid_per_second`` counts calls with ``allow_paid_broadcast`` (Telegram: 1,000), which
    ``per_second`` then leaves alone; the per-chat and per-group limits count them as any
    other. ``stars_balance`` (None: unlimited) is what the bot has from the moment these
    limits are set: each paid message above the first ``free_per_second`` messages of its
    second (Telegram: 30; 0 makes every one cost) costs ``star_price``, and only if it is
    delivered.
    """

    per_second: int | None = None
    per_chat_per_second: int | None = None
    per_group_per_minute: int | None = None
    per_chat_burst: int | None = None
    paid_per_second: int | None = None
    stars_balance: float | None = None
    star_price: float = 0.1
    free_per_second: int = 30

    def __post_init__(self) -> None:
        if self.per_chat_burst is not None and self.per_chat_burst < 1:
            raise ValueError(f"per_chat_burst must be at least 1, got {self.per_chat_burst}")

    @classmethod
    def telegram(cls) -> FloodLimits:
        """Telegram's limits: 30/s overall, 1/s per chat after a burst of 3, 20/min per
        group, 1,000/s for paid broadcasts."""
        return cls(per_second=30, per_chat_per_second=1, per_group_per_minute=20,
                   per_chat_burst=3, paid_per_second=1000)

    @property
    def enabled(self) -> bool:
        """Whether any limit is set (a Stars balance is one)."""
        return any(
            x is not None
            for x in (self.per_second, self.per_chat_per_second, self.per_group_per_minute,
                      self.paid_per_second, self.stars_balance)
        )


@dataclass
class FloodControl:
    """Admits or refuses calls; a refused call does not use up any limit."""

    limits: FloodLimits = field(default_factory=FloodLimits)
    refused: int = 0
    paid_calls: int = 0  # paid broadcast messages admitted
    stars_spent: float = 0.0  # since the current limits were set
    stars_refusals: int = 0  # paid messages refused for want of Stars
    _all: deque[float] = field(default_factory=deque)
    _paid: deque[float] = field(default_factory=deque)
    _sent: deque[float] = field(default_factory=deque)  # every admitted call, last second
    _balance_of: FloodLimits | None = None  # the limits whose balance is being spent
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
        self._paid.clear()
        self._sent.clear()
        self.refused = self.paid_calls = self.stars_refusals = 0
        self.stars_spent = 0.0

    @property
    def stars_left(self) -> float | None:
        """The Stars balance left (None: unlimited)."""
        balance = self.limits.stars_balance
        if balance is None:
            return None
        spent = self.stars_spent if self._balance_of is self.limits else 0.0
        return max(0.0, round(balance - spent, 9))  # no 1e-15 Stars left over

    def refund(self, stars: float) -> None:
        """Give back what a paid message cost when it was not delivered after all."""
        self.stars_spent = max(0.0, self.stars_spent - stars)

    def check(self, now: float, chat_id: int | None, *, is_group: bool,
              paid: bool = False) -> int | None:
        """Admit a call at monotonic time ``now``: None, or the seconds to wait (429)."""
        return self.admit(now, chat_id, is_group=is_group, paid=paid)[0]

    def admit(self, now: float, chat_id: int | None, *, is_group: bool,
              paid: bool = False) -> tuple[int | None, float]:
        """(None or the seconds to wait, the Stars the call was charged). A paid call the
        balance cannot pay raises :class:`StarsExhausted`; a refused call uses up nothing."""
        limits = self.limits
        if not limits.enabled:
            return None, 0.0
        waits: list[float] = []
        windows: list[tuple[deque[float], int, float]] = []
        if paid:
            if limits.paid_per_second is not None:
                windows.append((self._paid, limits.paid_per_second, 1.0))
        elif limits.per_second is not None:
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
            return max(1, math.ceil(max(waits))), 0.0
        sent = self._sent
        while sent and sent[0] <= now - 1.0:
            sent.popleft()
        cost = self._charge(len(sent)) if paid else 0.0
        for window, _limit, _span in windows:
            window.append(now)
        sent.append(now)
        if budget:
            assert chat_id is not None
            interval, _ = self._chat_budget()
            self._due[chat_id] = max(self._due.get(chat_id, now), now) + interval
        return None, cost

    def _charge(self, sent_this_second: int) -> float:
        """What a paid message costs after ``sent_this_second`` others in the last second
        (free within the first ``free_per_second``); raises if the balance cannot pay it."""
        if self._balance_of is not self.limits:  # new limits: a new balance
            self._balance_of = self.limits
            self.stars_spent = 0.0
        free = sent_this_second < self.limits.free_per_second
        price = 0.0 if free else self.limits.star_price
        left = self.stars_left
        if price and left is not None and left < price - 1e-9:
            self.stars_refusals += 1
            raise StarsExhausted(f"{left:g} Stars left, a paid message costs {price:g}")
        self.stars_spent += price
        self.paid_calls += 1
        return price

    def _chat_budget(self) -> tuple[float, float]:
        """(seconds per message, how far ahead of that a burst may run) for one chat."""
        rate, burst = self.limits.per_chat_per_second, self.limits.per_chat_burst
        assert rate is not None and burst is not None
        interval = 1.0 / rate
        return interval, (burst - 1) * interval
