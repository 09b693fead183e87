"""Message bodies for the delivery ledger, stored once per distinct content.

A payload's id is the SHA-256 of its canonical JSON, so 10,000 subscribers who receive
the same briefing share one stored body, and storing it twice is a no-op. The body is
generic on purpose: the sender needs no knowledge of digests, alerts or broadcasts.

    {"type": "messages", "parts": [{"html": "...", "buttons": [[{"text": .., "callback_data": ..}
                                                                 | {"text": .., "url": ..}]]}]}
    {"type": "copy", "from_chat_id": N, "message_id": N}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import StorageError

__all__ = [
    "Button",
    "CopyPayload",
    "MessagePart",
    "MessagesPayload",
    "Payload",
    "canonical_json",
    "payload_from_json",
]

MAX_CALLBACK_DATA_BYTES = 64


@dataclass(frozen=True, slots=True)
class Button:
    """An inline keyboard button: exactly one of ``callback_data`` or ``url``."""

    text: str
    callback_data: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.callback_data is None) == (self.url is None):
            raise ValueError("a button needs exactly one of callback_data or url")
        if (
            self.callback_data is not None
            and len(self.callback_data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
        ):
            raise ValueError(f"callback_data longer than {MAX_CALLBACK_DATA_BYTES} bytes")

    def to_json(self) -> dict[str, str]:
        if self.callback_data is not None:
            return {"text": self.text, "callback_data": self.callback_data}
        return {"text": self.text, "url": self.url or ""}


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One Telegram message: HTML text and an optional inline keyboard (rows of buttons)."""

    html: str
    buttons: tuple[tuple[Button, ...], ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"html": self.html}
        if self.buttons:
            body["buttons"] = [[b.to_json() for b in row] for row in self.buttons]
        return body


@dataclass(frozen=True, slots=True)
class MessagesPayload:
    """One or more messages sent in order; the ledger counts parts already sent."""

    parts: tuple[MessagePart, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a messages payload needs at least one part")

    @property
    def part_count(self) -> int:
        return len(self.parts)

    def to_json(self) -> dict[str, Any]:
        return {"type": "messages", "parts": [p.to_json() for p in self.parts]}

    @property
    def id(self) -> str:
        return _digest(self.to_json())


@dataclass(frozen=True, slots=True)
class CopyPayload:
    """A copy of an existing message (broadcasts copy an admin's message)."""

    from_chat_id: int
    message_id: int

    @property
    def part_count(self) -> int:
        return 1

    def to_json(self) -> dict[str, Any]:
        return {"type": "copy", "from_chat_id": self.from_chat_id,
                "message_id": self.message_id}

    @property
    def id(self) -> str:
        return _digest(self.to_json())


Payload = MessagesPayload | CopyPayload


def canonical_json(body: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept: equal bodies give equal text and equal ids."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _button(data: Mapping[str, Any]) -> Button:
    return Button(text=str(data["text"]), callback_data=data.get("callback_data"),
                  url=data.get("url"))


def _rows(data: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(_button(b) for b in row) for row in data)


def payload_from_json(body: Mapping[str, Any]) -> Payload:
    """Parse a stored body; a malformed one is a :class:`StorageError`."""
    try:
        kind = body["type"]
        if kind == "messages":
            return MessagesPayload(
                tuple(
                    MessagePart(html=str(p["html"]), buttons=_rows(p.get("buttons", [])))
                    for p in body["parts"]
                )
            )
        if kind == "copy":
            return CopyPayload(int(body["from_chat_id"]), int(body["message_id"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"malformed payload body: {exc}") from exc
    raise StorageError(f"unknown payload type {kind!r}")
