"""Settings of one sandbox server: the bot it pretends to be, flood limits, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.sandbox.flood import FloodLimits

__all__ = ["BotIdentity", "SandboxOptions"]


@dataclass(frozen=True)
class BotIdentity:
    """What ``getMe`` answers; any token is accepted and served as this bot."""

    id: int = 7000000001
    username: str = "story_bot"
    first_name: str = "Story Bot"
    supports_inline_queries: bool = True

    def to_user(self) -> dict[str, Any]:
        """The bot as a Bot API ``User``."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }


@dataclass
class SandboxOptions:
    """Everything configurable; the same fields can be changed at runtime on the server.

    ``now`` fixes the clock used for message dates (None: real time). ``host`` and ``port``
    say where to listen (port 0: a free random port).
    """

    bot: BotIdentity = field(default_factory=BotIdentity)
    flood: FloodLimits = field(default_factory=FloodLimits)
    now: datetime | None = None
    host: str = "127.0.0.1"
    port: int = 0
    long_poll_max: float = 50.0  # getUpdates never waits longer than this
