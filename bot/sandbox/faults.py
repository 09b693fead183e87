"""Failure answers: :class:`ApiError` (a Telegram error reply) and injected :class:`Fault`\\ s.

Tests and benchmarks inject faults to see how the bot copes with what Telegram does on a bad
day: flood waits, blocked users, group migration, gateway errors and slow answers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ApiError", "Fault", "FaultBook", "FaultKind"]


class ApiError(Exception):
    """A Bot API error reply: ``{"ok": false, "error_code": .., "description": ..}``."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def to_json(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body

    @classmethod
    def bad_request(cls, detail: str) -> ApiError:
        """A 400 answer; ``detail`` is the text after ``Bad Request:``."""
        return cls(400, f"Bad Request: {detail}")

    @classmethod
    def forbidden(cls, detail: str) -> ApiError:
        """A 403 answer; ``detail`` is the text after ``Forbidden:``."""
        return cls(403, f"Forbidden: {detail}")

    @classmethod
    def flood(cls, retry_after: int) -> ApiError:
        """A 429 answer carrying ``parameters.retry_after``."""
        retry_after = max(1, retry_after)
        return cls(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    @classmethod
    def stars_exhausted(cls) -> ApiError:
        """The sandbox's answer to a paid broadcast message the bot's Stars cannot pay for.

        Telegram documents no wording for it; this is the name of its error for a Stars
        balance that is too low, as the Bot API passes such names on ("Bad Request: NAME").
        """
        return cls.bad_request("BALANCE_TOO_LOW")

    @classmethod
    def migrated(cls, new_chat_id: int) -> ApiError:
        """A 400 answer telling the bot the group became a supergroup."""
        return cls(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
        )


class FaultKind(StrEnum):
    """What an injected fault does to a matching call."""

    FLOOD = "flood"  # 429 with retry_after
    FORBIDDEN = "forbidden"  # 403 with description (blocked by default)
    BAD_REQUEST = "bad_request"  # 400 with a custom description
    MIGRATE = "migrate"  # the group becomes a supergroup; 400 with migrate_to_chat_id
    SERVER_ERROR = "server_error"  # 5xx (502 Bad Gateway by default)
    SLOW = "slow"  # answer normally, but only after ``delay`` seconds


#: Calls a fault without ``method`` leaves alone: polling and start-up plumbing.
_PLUMBING = frozenset({"getupdates", "getme", "deletewebhook", "getwebhookinfo", "close", "logout"})
_DEFAULT_DESCRIPTIONS = {
    FaultKind.FORBIDDEN: "Forbidden: bot was blocked by the user",
    FaultKind.BAD_REQUEST: "Bad Request: chat not found",
    FaultKind.SERVER_ERROR: "Bad Gateway",
}


@dataclass
class Fault:
    """One injected fault.

    It matches calls whose method is ``method`` (Telegram names such as ``"sendMessage"``;
    None: any call but getUpdates/getMe/deleteWebhook/getWebhookInfo/close/logOut) and
    whose chat is ``chat_id`` (any if None), for the next ``times`` matching calls
    (forever if None).
    """

    kind: FaultKind
    method: str | None = None
    chat_id: int | None = None
    times: int | None = 1
    retry_after: int = 5
    description: str | None = None
    status: int = 502
    delay: float = 0.0
    migrate_to_chat_id: int | None = None
    id: int = 0
    hits: int = 0

    def matches(self, method: str, chat_id: int | None) -> bool:
        """Whether this fault applies to a call (and is not used up)."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is None:
            if method.lower() in _PLUMBING:
                return False
        elif self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> ApiError | None:
        """The error reply this fault produces (None for SLOW and MIGRATE)."""
        if self.kind is FaultKind.FLOOD:
            return ApiError.flood(self.retry_after)
        if self.kind is FaultKind.FORBIDDEN:
            return ApiError(403, self.description or _DEFAULT_DESCRIPTIONS[self.kind])
        if self.kind is FaultKind.BAD_REQUEST:
            return ApiError(400, self.description or _DEFAULT_DESCRIPTIONS[self.kind])
        if self.kind is FaultKind.SERVER_ERROR:
            return ApiError(self.status, self.description or _DEFAULT_DESCRIPTIONS[self.kind])
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the HTTP API."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "method": self.method,
            "chat_id": self.chat_id,
            "times": self.times,
            "hits": self.hits,
            "retry_after": self.retry_after,
            "description": self.description,
            "status": self.status,
            "delay": self.delay,
            "migrate_to_chat_id": self.migrate_to_chat_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from the HTTP API's JSON body (unknown keys are an error)."""
        allowed = {
            "kind",
            "method",
            "chat_id",
            "times",
            "retry_after",
            "description",
            "status",
            "delay",
            "migrate_to_chat_id",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        values = dict(data)
        values["kind"] = FaultKind(values.get("kind", ""))
        return cls(**values)


@dataclass
class FaultBook:
    """The injected faults, in injection order; the first matching one fires."""

    faults: list[Fault] = field(default_factory=list)
    _next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, fault: Fault) -> Fault:
        """Register ``fault`` and give it an id."""
        fault.id = next(self._next_id)
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> bool:
        """Drop one fault; False if there was none with that id."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear(self) -> None:
        """Drop every fault."""
        self.faults.clear()

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        """The first fault matching this call, counted as used once."""
        for fault in self.faults:
            if fault.matches(method, chat_id):
                fault.hits += 1
                return fault
        return None
