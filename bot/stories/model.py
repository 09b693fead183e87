"""Domain values for stories: frozen, typed, timezone-aware."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

__all__ = ["Story", "StoryBody", "latest_order_key", "sorted_latest"]


_Texts = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class StoryBody:
    """A story's highlights, paragraphs and opinions.

    The parser may hand over a validated file's raw sections with the function that
    normalises them: that runs on first use and its result is kept, so loading a folder of
    thousands does not normalise the text of stories nobody opens. Bodies compare and hash
    by their normalised text.
    """

    __slots__ = ("_build", "_texts")

    def __init__(self, highlights: tuple[str, ...] = (), paragraphs: tuple[str, ...] = (),
                 opinions: tuple[str, ...] = ()) -> None:
        self._texts: _Texts | None = (highlights, paragraphs, opinions)
        self._build: Callable[[], _Texts] | None = None

    @classmethod
    def deferred(cls, build: Callable[[], _Texts]) -> StoryBody:
        """A body whose texts ``build`` returns when they are first needed."""
        body = cls.__new__(cls)
        body._texts, body._build = None, build
        return body

    def _get(self) -> _Texts:
        texts = self._texts
        if texts is None:
            build = self._build
            if build is not None:
                self._texts = texts = build()
                self._build = None
            else:  # another thread built it between the two reads
                texts = self._texts
                assert texts is not None
        return texts

    @property
    def highlights(self) -> tuple[str, ...]:
        return self._get()[0]

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return self._get()[1]

    @property
    def opinions(self) -> tuple[str, ...]:
        return self._get()[2]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoryBody):
            return NotImplemented
        return self._get() == other._get()

    def __hash__(self) -> int:
        return hash(self._get())

    def __repr__(self) -> str:
        highlights, paragraphs, opinions = self._get()
        return (f"StoryBody(highlights={highlights!r}, paragraphs={paragraphs!r}, "
                f"opinions={opinions!r})")


@dataclass(frozen=True, slots=True)
class Story:
    """One parsed story file. Times are aware datetimes in the story time zone."""

    id: str
    key: str
    seq: int | None
    title: str
    published: datetime
    updated: datetime
    body: StoryBody
    source: str

    @property
    def highlights(self) -> tuple[str, ...]:
        return self.body.highlights

    @property
    def story(self) -> tuple[str, ...]:
        """The paragraphs."""
        return self.body.paragraphs

    @property
    def opinions(self) -> tuple[str, ...]:
        return self.body.opinions

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


def _seq_rank(story: Story) -> int:
    return -1 if story.seq is None else story.seq


_KEY = attrgetter("key")
_UPDATED = attrgetter("updated")


def sorted_latest(stories: Iterable[Story]) -> list[Story]:
    """``sorted(stories, key=latest_order_key)`` for stories parsed in one time zone, faster.

    Three stable sorts, least significant first, on keys that cost no Python call or only a
    small one: a tuple key per story costs more than the sorting when a whole folder loads.
    Datetimes that share a zone compare by wall clock, which orders instants correctly for
    the parser's times: they are read with ``fold=0`` and normalised through UTC.
    """
    ordered = sorted(stories, key=_KEY)
    ordered.sort(key=_seq_rank, reverse=True)  # seq descending; no seq (-1) last
    ordered.sort(key=_UPDATED, reverse=True)  # reverse keeps the sort stable
    return ordered
