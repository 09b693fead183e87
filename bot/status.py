"""What the running process knows about its own health, for ``/healthz`` and the exit code.

Parts of the bot that can be unwell (the Telegram connection at start-up, a second poller,
the sender, the due scan) report *problems* by name and clear them when they recover;
``/healthz`` answers 503 while any is set. A part that cannot recover calls :meth:`fail`:
the process then stops and exits non-zero with that one line, so a supervisor restarts it
(the bot must never sit "up" with its delivery dead).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ProcessStatus"]


class ProcessStatus:
    """Problems by name, the one fatal reason that ends the process, and when the last
    due scan ended (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._problems: dict[str, str] = {}
        self.fatal: str | None = None
        self._on_fatal: list[Callable[[str], None]] = []
        self.started = clock()
        self.last_scan_ended: float | None = None

    def scan_finished(self) -> None:
        self.last_scan_ended = self._clock()

    def seconds_since_scan(self) -> float:
        """Since the last scan ended, or since start-up before the first one."""
        return self._clock() - (self.last_scan_ended or self.started)

    def set_problem(self, name: str, reason: str) -> None:
        self._problems[name] = reason

    def clear_problem(self, name: str) -> None:
        self._problems.pop(name, None)

    @property
    def problems(self) -> dict[str, str]:
        return dict(self._problems)

    def summary(self) -> str | None:
        """The problems in one line (stored with the heartbeat for ``health``)."""
        return "; ".join(self._problems.values()) or None

    def on_fatal(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` when :meth:`fail` is first called (e.g. stop the app)."""
        self._on_fatal.append(callback)

    def fail(self, reason: str) -> None:
        """Give up: record the reason (the first one wins) and ask the process to stop."""
        if self.fatal is not None:
            return
        self.fatal = reason
        self._problems["fatal"] = reason
        for callback in self._on_fatal:
            callback(reason)
