"""What the running process knows about its own health, for ``/healthz`` and the exit code.

Parts of the bot that can be unwell (the Telegram connection at start-up, a second poller,
the sender, the due scan) report *problems* by name and clear them when they recover;
``/healthz`` answers 503 while any is set. A part that cannot recover calls :meth:`fail`:
the process then stops and exits non-zero with that one line, so a supervisor restarts it
(the bot must never sit "up" with its delivery dead).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProcessStatus"]


class ProcessStatus:
    """Problems by name, plus the one fatal reason that ends the process."""

    def __init__(self) -> None:
        self._problems: dict[str, str] = {}
        self.fatal: str | None = None
        self._on_fatal: list[Callable[[str], None]] = []

    def set_problem(self, name: str, reason: str) -> None:
        self._problems[name] = reason

    def clear_problem(self, name: str) -> None:
        self._problems.pop(name, None)

    @property
    def problems(self) -> dict[str, str]:
        return dict(self._problems)

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
