"""Story keys from file names (STORY_FORMAT.md, "Files in the folder")."""

from __future__ import annotations

import re

from bot.errors import StoryError

__all__ = ["is_story_file_name", "key_from_name"]

_SEQUENCED = re.compile(r"^([0-9]+)_([0-9a-f]{8,32})\.txt$")
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_MAX_KEY = 40


def is_story_file_name(name: str) -> bool:
    """Only visible ``.txt`` names count as stories."""
    return name.endswith(".txt") and not name.startswith(".")


def key_from_name(name: str) -> tuple[str, str, int | None]:
    """``(id, key, seq)`` for a story file name, or a line-1 :class:`StoryError`."""
    stem = name[: -len(".txt")]
    match = _SEQUENCED.match(name)
    if match:
        return stem, match.group(2), int(match.group(1))
    key = _NOT_KEY.sub("-", stem.lower()).strip("-")[:_MAX_KEY].rstrip("-")
    if not key:
        raise StoryError("the file name gives no usable key", 1)
    return stem, key, None
