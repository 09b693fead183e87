"""Reading Bot API parameters the way Telegram does.

PTB sends form fields (every value a string, nested objects JSON-encoded) or multipart
bodies with uploads; other clients send a JSON object. :class:`Params` hides the
difference and turns wrong types into Telegram's 400 answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.sandbox.faults import ApiError

__all__ = ["Params", "UploadedFile"]


@dataclass(frozen=True)
class UploadedFile:
    """A file sent in a multipart body (only its name and size are kept)."""

    filename: str
    size: int


class Params:
    """Typed access to one call's parameters."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def to_json(self) -> dict[str, Any]:
        """The parameters for the call log (uploads shown by name and size)."""
        return {
            key: (
                {"upload": value.filename, "size": value.size}
                if isinstance(value, UploadedFile)
                else value
            )
            for key, value in self.raw.items()
        }

    def has(self, name: str) -> bool:
        """Whether the parameter was sent (and is not empty)."""
        return self.raw.get(name) not in (None, "")

    def get_str(self, name: str, *, required: bool = False) -> str | None:
        """A string parameter."""
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise ApiError.bad_request(f"{name} is empty")
            return None if value is None else ""
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise ApiError.bad_request(f'field "{name}" must be of type String')

    def get_int(self, name: str, *, required: bool = False) -> int | None:
        """An integer parameter."""
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise ApiError.bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise ApiError.bad_request(f'field "{name}" must be of type Integer')
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise ApiError.bad_request(f'field "{name}" must be of type Integer') from None

    def get_float(self, name: str) -> float | None:
        """A number parameter."""
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ApiError.bad_request(f'field "{name}" must be of type Number') from None

    def get_bool(self, name: str) -> bool:
        """A boolean parameter (absent is False)."""
        value = self.raw.get(name)
        if isinstance(value, bool):
            return value
        if value is None or value == "":
            return False
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ApiError.bad_request(f'field "{name}" must be of type Boolean')

    def get_json(self, name: str) -> Any:
        """A JSON-serialized object or array parameter (None when absent)."""
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ApiError.bad_request(f"can't parse {name} JSON object") from None
        return value

    def chat_ref(self, name: str = "chat_id", *, required: bool = True) -> int | str | None:
        """A chat id or ``@channelusername``."""
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise ApiError.bad_request(f"{name} is empty")
            return None
        if isinstance(value, str) and value.startswith("@"):
            return value
        number = self.get_int(name)
        if number is None:  # pragma: no cover - handled above
            raise ApiError.bad_request(f"{name} is empty")
        return number

    def file(self, name: str) -> UploadedFile | str | None:
        """A file parameter: an upload or a file id / URL string."""
        value = self.raw.get(name)
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str) and value.startswith("attach://"):
            attached = self.raw.get(value.removeprefix("attach://"))
            if isinstance(attached, UploadedFile):
                return attached
        return self.get_str(name)
