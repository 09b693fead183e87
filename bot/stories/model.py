"""Domain values for stories: frozen, typed, timezone-aware."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Story", "latest_order_key"]


@dataclass(frozen=True, slots=True)
class Story:
    """One parsed story file. Times are aware datetimes in the story time zone."""

    id: str
    key: str
    seq: int | None
    title: str
    published: datetime
    updated: datetime
    highlights: tuple[str, ...]
    story: tuple[str, ...]
    opinions: tuple[str, ...]
    source: str

    def to_json(self) -> dict[str, Any]:
        """The parsed form of STORY_FORMAT.md, keys in the documented order."""
        return {
            "id": self.id,
            "key": self.key,
            "seq": self.seq,
            "title": self.title,
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat(),
            "highlights": list(self.highlights),
            "story": list(self.story),
            "opinions": list(self.opinions),
            "source": self.source,
        }


def latest_order_key(story: Story) -> tuple[float, int, int, str]:
    """Sort key for latest order: updated desc, seq desc (null last), key asc."""
    has_seq = 0 if story.seq is not None else 1
    return (-story.updated.timestamp(), has_seq, -(story.seq or 0), story.key)
