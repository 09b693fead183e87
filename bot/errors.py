"""One small exception hierarchy for everything the bot raises on purpose.

Every error here carries a message a person can act on; the CLI and the handlers show
``str(error)`` and never a traceback.
"""

from __future__ import annotations

__all__ = ["BotError", "ConfigError", "StorageError", "StoryError", "UsageError"]


class BotError(Exception):
    """Base of every error the bot raises deliberately."""


class ConfigError(BotError):
    """A setting is missing or invalid; the message names the key path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class UsageError(BotError):
    """A command line or command argument was wrong; the message says how to fix it."""


class StoryError(BotError):
    """A story file cannot be used; ``line`` is 1-based, ``path`` relative to the folder."""

    def __init__(self, message: str, line: int = 1, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path

    def with_path(self, path: str) -> StoryError:
        return StoryError(self.message, self.line, path)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.path else self.message


class StorageError(BotError):
    """The database cannot be reached or its schema is unusable."""
