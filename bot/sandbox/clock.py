"""The sandbox's idea of "now" for message dates: real time, a fixed instant, or a pretended
time that runs on at the real pace from wherever it was set (the web chat's clock control)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["SandboxClock"]


@dataclass
class SandboxClock:
    """Real UTC time unless ``fixed`` is set or :meth:`run_from` moved it.

    A fixed clock only moves by :meth:`advance`; a clock set with :meth:`run_from` keeps
    running at the real pace from the instant given (monotonic time, so a change of the
    machine's clock does not move it).
    """

    fixed: datetime | None = None
    _start: datetime | None = field(default=None, init=False, repr=False)
    _began: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.fixed is not None and self.fixed.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")

    @property
    def pretended(self) -> bool:
        """Whether the clock is fixed or running from a set instant (not real time)."""
        return self.fixed is not None or self._start is not None

    def now(self) -> datetime:
        """The current sandbox time (timezone-aware)."""
        if self.fixed is not None:
            return self.fixed
        if self._start is not None:
            return self._start + timedelta(seconds=time.monotonic() - self._began)
        return datetime.now(UTC)

    def timestamp(self) -> int:
        """The current sandbox time as Unix seconds, as Telegram puts in ``date``."""
        return int(self.now().timestamp())

    def set(self, when: datetime | None) -> None:
        """Fix the clock at ``when`` (aware), or return to real time with None."""
        if when is not None and when.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")
        self.fixed = when
        self._start = None

    def run_from(self, when: datetime) -> None:
        """Jump to ``when`` (aware) and let time run on from there at the real pace."""
        if when.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")
        self.fixed = None
        self._start = when.astimezone(UTC)
        self._began = time.monotonic()

    def advance(self, seconds: float) -> None:
        """Move a fixed or running pretended clock forward (no effect on real time)."""
        if self.fixed is not None:
            self.fixed += timedelta(seconds=seconds)
        elif self._start is not None:
            self._start += timedelta(seconds=seconds)
