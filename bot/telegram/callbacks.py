"""Callback data for inline buttons: short, typed, and safe to receive from anyone.

Buttons carry story *keys*, never positions, so they keep working when new stories arrive.
Everything that comes back is untrusted: :func:`parse_callback` returns None for anything
malformed, and handlers treat a key that no longer exists as a stale button.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LatestPage", "MoreParts", "OpenStory", "SearchPage", "parse_callback", "parts_tag"]

MAX_CALLBACK_BYTES = 64
_KEY = r"[a-z0-9-]{1,40}"
_OPEN = re.compile(rf"^(?:o|open):({_KEY})$")  # briefings use "open:"
_LATEST = re.compile(rf"^l:([0-9]{{1,2}}):([on]):({_KEY})$")
_SEARCH = re.compile(r"^s:([0-9a-z]{1,12}):([0-9]{1,4})$")
_MORE = re.compile(rf"^more:({_KEY}):([0-9]{{1,5}}):([0-9a-f]{{8}})$")


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


@dataclass(frozen=True, slots=True)
class MoreParts:
    """The next batch of a long story from part ``start`` (0-based) on.

    ``tag`` names the rendering the button was made for, so a button under a story that
    has changed since (new text, another length) is told apart from a current one.
    """

    key: str
    start: int
    tag: str

    def encode(self) -> str:
        return f"more:{self.key}:{self.start}:{self.tag}"  # at most 60 bytes


def parts_tag(parts: Sequence[str]) -> str:
    """A short fingerprint of a story's rendered parts, the same in every process."""
    digest = hashlib.blake2s(digest_size=4)
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


Callback = OpenStory | LatestPage | SearchPage | MoreParts


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
    if match := _MORE.match(data):
        return MoreParts(match.group(1), int(match.group(2)), match.group(3))
    return None
