"""A story folder as an index: incremental rescans, latest order, lookup and search.

The folder belongs to the newsroom pipeline; the library only reads it. A rescan re-reads
only files whose size or modification time changed, so a folder of thousands of stories
costs one listing per rescan. A file that turns invalid keeps its last good version in the
index (the pipeline may have been caught half-way through a write) and is reported.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from bot.errors import BotError, StoryError
from bot.stories.model import Story, latest_order_key
from bot.stories.naming import is_story_file_name
from bot.stories.parser import MAX_STORY_BYTES, parse_story

__all__ = ["Lookup", "RescanReport", "StoryFolderError", "StoryLibrary"]

_POSITION = re.compile(r"^[0-9]{1,3}$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{6,}$")
_WORD = re.compile(r"\w+")
MAX_QUERY_WORDS = 20


class StoryFolderError(BotError):
    """The story folder itself cannot be listed (missing, not a folder, no permission)."""


@dataclass(frozen=True, slots=True)
class RescanReport:
    """What one rescan changed; ``rejected`` holds only rejections not reported before."""

    new: tuple[Story, ...] = ()
    updated: tuple[Story, ...] = ()
    removed: tuple[Story, ...] = ()
    rejected: tuple[StoryError, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.removed)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer to a story reference: how it was read and what matched."""

    kind: Literal["position", "id", "prefix", "search"]
    matches: tuple[Story, ...]

    @property
    def story(self) -> Story | None:
        """The story when exactly one matched."""
        return self.matches[0] if len(self.matches) == 1 else None


@dataclass(slots=True)
class _FileState:
    signature: tuple[int, int]
    story: Story | None
    error: StoryError | None


@dataclass(frozen=True, slots=True)
class _Index:
    stories: tuple[Story, ...] = ()
    by_key: dict[str, Story] = field(default_factory=dict)
    by_id: dict[str, Story] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    rejections: tuple[StoryError, ...] = ()


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _search_text(parts: Iterable[str]) -> str:
    """Casefolded words with a leading space each, so `" word" in text` is a prefix match."""
    return "".join(f" {word}" for part in parts for word in _words(part))


class StoryLibrary:
    """The stories of one folder, in latest order, kept current by :meth:`rescan`."""

    def __init__(self, folder: Path, tz: ZoneInfo) -> None:
        self.folder = folder
        self.tz = tz
        self.last_scan: datetime | None = None
        self._files: dict[str, _FileState] = {}
        self._index = _Index()
        self._search_cache: dict[str, tuple[str, str]] = {}

    # -- reading the folder ---------------------------------------------------------------
    def _list(self) -> dict[str, tuple[tuple[int, int] | None, StoryError | None]]:
        """Story names with their (size, mtime) signature, or the error that stat gave."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError as exc:
            raise StoryFolderError(f"story folder {self.folder} does not exist") from exc
        except NotADirectoryError as exc:
            raise StoryFolderError(f"story folder {self.folder} is not a folder") from exc
        except OSError as exc:
            raise StoryFolderError(
                f"cannot list story folder {self.folder}: {exc.strerror or exc}") from exc
        listing: dict[str, tuple[tuple[int, int] | None, StoryError | None]] = {}
        for entry in entries:
            name = entry.name
            if not is_story_file_name(name):
                continue
            try:
                info = entry.stat()
            except FileNotFoundError:
                continue  # deleted between listing and stat
            except OSError as exc:  # symlink loop, permission, …
                listing[name] = (None, StoryError(f"cannot read file: {exc.strerror or exc}",
                                                  1, name))
                continue
            if stat.S_ISREG(info.st_mode):
                listing[name] = ((info.st_size, info.st_mtime_ns), None)
        return listing

    def _read(self, name: str, size: int) -> Story | None:
        """Parse one file; None when it vanished between listing and reading."""
        if size > MAX_STORY_BYTES:
            raise StoryError(f"file too large ({size} bytes; the limit is 1 MiB)", 1)
        try:
            with (self.folder / name).open("rb") as handle:
                data = handle.read(MAX_STORY_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoryError(f"cannot read file: {exc.strerror or exc}", 1) from exc
        return parse_story(data, name, self.tz)

    def rescan(self, now: datetime | None = None) -> RescanReport:
        """Bring the index up to date with the folder and report what changed."""
        listing = self._list()
        previous = self._files
        files: dict[str, _FileState] = {}
        touched = False
        for name, (signature, list_error) in listing.items():
            old = previous.get(name)
            if list_error is not None or signature is None:
                files[name] = _FileState((-1, -1), old.story if old else None, list_error)
                touched = touched or old is None or old.error != list_error
                continue
            if old is not None and old.signature == signature:
                files[name] = old
                continue
            touched = True
            try:
                story = self._read(name, signature[0])
            except StoryError as error:
                files[name] = _FileState(signature, old.story if old else None,
                                         error.with_path(name))
                continue
            if story is not None:
                files[name] = _FileState(signature, story, None)
        touched = touched or len(files) != len(previous)
        self._files = files
        self.last_scan = now or datetime.now(UTC)
        if not touched:
            return RescanReport()
        return self._rebuild()

    def _rebuild(self) -> RescanReport:
        old = self._index
        winners: dict[str, tuple[str, Story]] = {}
        rejections: list[StoryError] = []
        for name in sorted(self._files):
            state = self._files[name]
            if state.error is not None:
                rejections.append(state.error)
            story = state.story
            if story is None:
                continue
            held = winners.get(story.key)
            if held is None:
                winners[story.key] = (name, story)
                continue
            # Later `updated` wins; on a tie the name sorting last (this one) wins.
            keep, drop = ((name, story), held) if story.updated >= held[1].updated else (
                held, (name, story))
            winners[story.key] = keep
            rejections.append(StoryError(
                f"duplicate key {story.key} (kept {keep[0]})", 1, drop[0]))
        stories = tuple(sorted((story for _, story in winners.values()), key=latest_order_key))
        by_key = {story.key: story for story in stories}
        rejections.sort(key=lambda error: (error.path, error.line))
        self._index = _Index(stories, by_key, {story.id: story for story in stories},
                             {story.key: n for n, story in enumerate(stories)},
                             tuple(rejections))
        for key in [key for key, story in old.by_key.items() if by_key.get(key) is not story]:
            self._search_cache.pop(key, None)
        reported = {(e.path, e.line, e.message) for e in old.rejections}
        return RescanReport(
            new=tuple(s for s in stories if s.key not in old.by_key),
            updated=tuple(s for s in stories
                          if s.key in old.by_key and old.by_key[s.key] != s),
            removed=tuple(s for s in old.stories if s.key not in by_key),
            rejected=tuple(e for e in rejections if (e.path, e.line, e.message) not in reported),
        )

    # -- reading the index ---------------------------------------------------------------
    @property
    def stories(self) -> tuple[Story, ...]:
        """Every loaded story, newest first (latest order)."""
        return self._index.stories

    @property
    def rejections(self) -> tuple[StoryError, ...]:
        """Every file currently rejected, as ``PATH:LINE: message`` errors."""
        return self._index.rejections

    def get(self, key: str) -> Story | None:
        return self._index.by_key.get(key)

    def position_of(self, key: str) -> int | None:
        """0-based place of ``key`` in latest order (for paging anchored on keys)."""
        return self._index.positions.get(key)

    def find(self, reference: str) -> Lookup:
        """Resolve a reader's reference: position, id or key, key prefix, else words."""
        ref = reference.strip()
        index = self._index
        if _POSITION.match(ref):
            position = int(ref)
            in_range = 1 <= position <= len(index.stories)
            return Lookup("position", (index.stories[position - 1],) if in_range else ())
        exact = index.by_id.get(ref) or index.by_key.get(ref.lower())
        if exact is not None:
            return Lookup("id", (exact,))
        lowered = ref.lower()
        if _HEX_PREFIX.match(lowered):
            prefixed = tuple(s for s in index.stories if s.key.startswith(lowered))
            if prefixed:
                return Lookup("prefix", prefixed)
        return Lookup("search", self.search(ref))

    def search(self, text: str) -> tuple[Story, ...]:
        """Stories containing every word (as a word prefix, any case).

        Stories whose title holds every word come first, then the others; each group in
        latest order.
        """
        words = _words(text)[:MAX_QUERY_WORDS]
        if not words:
            return ()
        needles = [f" {word}" for word in words]
        in_title: list[Story] = []
        in_body: list[Story] = []
        for story in self._index.stories:
            title, body = self._texts(story)
            if all(needle in title for needle in needles):
                in_title.append(story)
            elif all(needle in title or needle in body for needle in needles):
                in_body.append(story)
        return (*in_title, *in_body)

    def _texts(self, story: Story) -> tuple[str, str]:
        cached = self._search_cache.get(story.key)
        if cached is None:
            cached = (_search_text((story.title,)),
                      _search_text((*story.highlights, *story.story, *story.opinions)))
            self._search_cache[story.key] = cached
        return cached
