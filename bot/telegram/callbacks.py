"""Callback data for inline buttons: short, typed, and safe to receive from anyone.

Buttons carry story *keys*, never positions, so they keep working when new stories arrive.
Everything that comes back is untrusted: :func:`parse_callback` returns None for anything
malformed, and handlers treat a key that no longer exists as a stale button.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LatestPage", "OpenStory", "SearchPage", "parse_callback"]

MAX_CALLBACK_BYTES = 64
_KEY = r"[a-z0-9-]{1,40}"
_OPEN = re.compile(rf"^(?:o|open):({_KEY})$")  # briefings use "open:"
_LATEST = re.compile(rf"^l:([0-9]{{1,2}}):([on]):({_KEY})$")
_SEARCH = re.compile(r"^s:([0-9a-z]{1,12}):([0-9]{1,4})$")


@dataclass(frozen=True, slots=True)
class OpenStory:
    key: str

    def encode(self) -> str:
        return f"o:{self.key}"


@dataclass(frozen=True, slots=True)
class LatestPage:
    """A page of ``size`` stories older (``o``) or newer (``n``) than the story ``anchor``."""

    size: int
    direction: str
    anchor: str

    def encode(self) -> str:
        return f"l:{self.size}:{self.direction}:{self.anchor}"


@dataclass(frozen=True, slots=True)
class SearchPage:
    session: str
    page: int

    def encode(self) -> str:
        return f"s:{self.session}:{self.page}"


Callback = OpenStory | LatestPage | SearchPage


def parse_callback(data: str | None) -> Callback | None:
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES:
        return None
    if match := _OPEN.match(data):
        return OpenStory(match.group(1))
    if match := _LATEST.match(data):
        size = int(match.group(1))
        return LatestPage(size, match.group(2), match.group(3)) if 1 <= size <= 20 else None
    if match := _SEARCH.match(data):
        return SearchPage(match.group(1), int(match.group(2)))
    return None
