"""The sandbox's idea of "now" for message dates: real time, or a fixed, adjustable instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["SandboxClock"]


@dataclass
class SandboxClock:
    """Real UTC time unless ``fixed`` is set; a fixed clock only moves by :meth:`advance`."""

    fixed: datetime | None = None

    def __post_init__(self) -> None:
        if self.fixed is not None and self.fixed.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")

    def now(self) -> datetime:
        """The current sandbox time (timezone-aware)."""
        return self.fixed if self.fixed is not None else datetime.now(UTC)

    def timestamp(self) -> int:
        """The current sandbox time as Unix seconds, as Telegram puts in ``date``."""
        return int(self.now().timestamp())

    def set(self, when: datetime | None) -> None:
        """Fix the clock at ``when`` (aware), or return to real time with None."""
        if when is not None and when.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")
        self.fixed = when

    def advance(self, seconds: float) -> None:
        """Move a fixed clock forward (no effect on real time)."""
        if self.fixed is not None:
            self.fixed += timedelta(seconds=seconds)
