"""A story folder as an index: incremental rescans, latest order, lookup and search.

The folder belongs to the newsroom pipeline; the library only reads it. A rescan re-reads
only files whose size or modification time changed, so a folder of thousands of stories
costs one listing per rescan. A file that turns invalid keeps its last good version in the
index (the pipeline may have been caught half-way through a write) and is reported.

A symbolic link counts only when it resolves to a file inside the folder; any other link is
rejected without its target being opened, so a link to ``/proc/self/environ`` cannot leak
the bot's token into a story.
"""

from __future__ import annotations

import bisect
import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from bot.errors import BotError, StoryError
from bot.stories.model import Story, latest_order_key, sorted_latest
from bot.stories.naming import is_story_file_name
from bot.stories.parser import MAX_STORY_BYTES, parse_story
from bot.stories.search import query_words, words_of

__all__ = [
    "MIN_REFERENCE",
    "MIN_TYPED_PREFIX",
    "KeyReferences",
    "Lookup",
    "RescanReport",
    "StoryFolderError",
    "StoryLibrary",
]

_POSITION = re.compile(r"^[+-]?[0-9]{1,5}$")
_KEY_TEXT = re.compile(r"^[a-z0-9-]+$")  # a key, or a prefix of one (STORY_FORMAT.md)
MIN_REFERENCE = 8
"""Characters of a key a printed reference shows at least (all of a shorter key)."""
MIN_TYPED_PREFIX = 6
"""Shortest key prefix a reader may type (STORY_FORMAT.md: "at least 6 characters")."""
_Signature = tuple[int, int, int]  # (size, mtime in ns, mode) from one stat
# Never follow a link when opening (the listing decided what a link may reach), and never
# wait on a FIFO swapped in after the listing.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


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


class KeyReferences:
    """The loaded keys in sorted order: short unique references and prefix lookups.

    A key's prefix is unique exactly when it is longer than what the key shares with each
    of its two sorted neighbours, so a reference costs two bisections and two comparisons
    and a lookup two bisections, however large the archive. Immutable, so a reader in the
    event loop never sees a rescan half-way: :meth:`changed` builds the next one.

    Keys are runs of ``[a-z0-9]`` joined by single ``-`` (see ``bot.stories.naming``):
    never a ``_``, so writing ``-`` as ``_`` (Telegram commands allow no ``-``) can be
    undone without doubt.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys: list[str] = sorted(keys)

    @classmethod
    def _of_sorted(cls, keys: list[str]) -> KeyReferences:
        references = cls.__new__(cls)
        references._keys = keys
        return references

    def __len__(self) -> int:
        return len(self._keys)

    def changed(self, added: Iterable[str], removed: Iterable[str]) -> KeyReferences:
        """The keys after a rescan; costs a copy and a bisection per key that changed."""
        keys = list(self._keys)
        for key in removed:
            place = bisect.bisect_left(keys, key)
            if place < len(keys) and keys[place] == key:
                del keys[place]
        for key in added:
            place = bisect.bisect_left(keys, key)
            if place == len(keys) or keys[place] != key:
                keys.insert(place, key)
        return self._of_sorted(keys)

    def reference(self, key: str) -> str:
        """The shortest prefix of ``key`` that no other key starts with, at least
        :data:`MIN_REFERENCE` characters (or the whole key) and not ending in ``-``, with
        each ``-`` written ``_``. A key that is a prefix of another gets the whole key,
        which :meth:`matching` finds by exact match first."""
        if not _KEY_TEXT.match(key):
            raise ValueError(f"{key!r} is not a story key")
        keys = self._keys
        place = bisect.bisect_left(keys, key)
        shared = 0
        for neighbour in (place - 1, place + 1 if place < len(keys) and keys[place] == key
                          else place):
            if 0 <= neighbour < len(keys):
                shared = max(shared, _common_length(key, keys[neighbour]))
        length = min(len(key), max(shared + 1, MIN_REFERENCE))
        while length < len(key) and key[length - 1] == "-":
            length += 1
        return key[:length].replace("-", "_")

    def matching(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix`` (a key's text, ``-`` not ``_``), sorted."""
        keys = self._keys
        start = bisect.bisect_left(keys, prefix)
        end = bisect.bisect_left(keys, prefix + "\U0010ffff", lo=start)
        return keys[start:end]


def _common_length(first: str, second: str) -> int:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length


def _key_text(reference: str) -> str | None:
    """The key text a reference stands for (``_`` back to ``-``, any case), or None when
    it holds a character no key has."""
    text = reference.strip().lower().replace("_", "-")
    return text if _KEY_TEXT.match(text) else None


@dataclass(slots=True)
class _Listing:
    """One look at the folder: what each story file is and where its bytes are."""

    signatures: dict[str, _Signature] = field(default_factory=dict)
    refused: dict[str, StoryError] = field(default_factory=dict)  # stat failed, bad link
    links: dict[str, str] = field(default_factory=dict)  # link name -> real path inside


@dataclass(slots=True)
class _FileState:
    story: Story | None  # the last good version
    error: StoryError | None  # why the current version is rejected


@dataclass(frozen=True, slots=True)
class _Index:
    stories: tuple[Story, ...] = ()
    by_key: dict[str, Story] = field(default_factory=dict)
    by_id: dict[str, Story] = field(default_factory=dict)
    rejections: tuple[StoryError, ...] = ()
    references: KeyReferences = field(default_factory=KeyReferences)
    # key -> place in ``stories``; built on first use, since an insert shifts every place
    # after it and most rescans are never followed by a lookup of the old places.
    _positions: dict[str, int] = field(default_factory=dict)

    def position(self, key: str) -> int | None:
        if not self._positions and self.stories:
            self._positions.update({story.key: n for n, story in enumerate(self.stories)})
        return self._positions.get(key)


def _read_all(descriptor: int, size: int) -> bytes:
    """The file's bytes, up to one past the size limit.

    The first read asks for the listed size plus one byte: a buffer as big as the limit
    would cost a 1 MiB allocation per file, which is most of a cold load's reading time.
    Only a file that changed size since the listing needs more reads.
    """
    data = os.read(descriptor, size + 1)
    if len(data) == size:
        return data
    chunks = [data]
    total = len(data)
    while total <= MAX_STORY_BYTES and (chunk := os.read(descriptor, MAX_STORY_BYTES + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _resolve_link(path: str, inside: str) -> tuple[str, os.stat_result]:
    """The real path a story link reaches and that file's ``lstat``, or a line-1 error.

    ``inside`` is the folder's real path with a trailing separator. Containment is judged
    on the resolved path (``realpath`` reads links, never files), so a target outside the
    folder is never opened.
    """
    target = os.path.realpath(path)
    if not (target + os.sep).startswith(inside):
        raise StoryError("link points outside the story folder", 1)
    try:
        info = Path(target).lstat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        if not os.path.lexists(path):
            raise FileNotFoundError(path) from exc  # the link itself was just deleted
        raise StoryError("link target does not exist", 1) from exc
    if stat.S_ISLNK(info.st_mode):  # realpath stops on a link it cannot resolve: a loop
        raise StoryError("link loops back on itself", 1)
    return target, info


def _search_text(parts: Iterable[str]) -> str:
    """Casefolded words with a leading space each, so `" word" in text` is a prefix match."""
    return "".join(f" {word}" for part in parts for word in words_of(part))


class StoryLibrary:
    """The stories of one folder, in latest order, kept current by :meth:`rescan`."""

    def __init__(self, folder: Path, tz: ZoneInfo) -> None:
        self.folder = folder
        self.tz = tz
        self.last_scan: datetime | None = None
        self.version = 0  # goes up whenever the index changes (a cache key for renderings)
        self._files: dict[str, _FileState] = {}
        self._listed: dict[str, _Signature] = {}  # the last listing, unreadable names left out
        self._refused: set[str] = set()  # names listed last time whose stat or link failed
        self._links: dict[str, str] = {}  # link name -> the real path it was read from
        self._holders: dict[str, set[str]] = {}  # key -> names of files whose story has it
        self._duplicates: dict[str, list[StoryError]] = {}
        self._index = _Index()
        # key -> (the story version, its title words, its other words)
        self._search_cache: dict[str, tuple[Story, str, str]] = {}

    # -- reading the folder ---------------------------------------------------------------
    def _entries(self) -> Iterator[os.DirEntry[str]]:
        """The folder's visible ``.txt`` entries, or a clear error about the folder.

        A generator, not a list: holding ten thousand entries at once costs more than the
        listing itself.
        """
        try:
            with os.scandir(self.folder) as listing:
                for entry in listing:
                    if is_story_file_name(entry.name):
                        yield entry
        except FileNotFoundError as exc:
            raise StoryFolderError(f"story folder {self.folder} does not exist") from exc
        except NotADirectoryError as exc:
            raise StoryFolderError(f"story folder {self.folder} is not a folder") from exc
        except OSError as exc:
            raise StoryFolderError(
                f"cannot list story folder {self.folder}: {exc.strerror or exc}") from exc

    def _list(self) -> _Listing:
        """The signature of every story file, and an error for each that cannot be used.

        A plain file costs one ``lstat``; only links (known for free from the listing) pay
        for resolving their target.
        """
        listing = _Listing()
        inside: str | None = None  # the folder's real path, found at the first link
        for entry in self._entries():
            name = entry.name
            try:
                if entry.is_symlink():
                    if inside is None:
                        inside = os.path.realpath(self.folder).rstrip(os.sep) + os.sep
                    target, info = _resolve_link(entry.path, inside)
                    listing.links[name] = target
                else:
                    info = entry.stat(follow_symlinks=False)
            except StoryError as error:
                listing.refused[name] = error.with_path(name)
                continue
            except FileNotFoundError:
                continue  # deleted between listing and stat
            except OSError as exc:  # permission, …
                listing.refused[name] = StoryError(
                    f"cannot read file: {exc.strerror or exc}", 1, name)
                continue
            listing.signatures[name] = (info.st_size, info.st_mtime_ns, info.st_mode)
        return listing

    def _read(self, path: str, name: str, size: int) -> Story | None:
        """Parse one file; None when it vanished or stopped being a plain file (a link, a
        FIFO) since the listing: the next listing judges what it has become."""
        if size > MAX_STORY_BYTES:
            raise StoryError(f"file too large ({size} bytes; the limit is 1 MiB)", 1)
        try:
            descriptor = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a link
                return None
            raise StoryError(f"cannot read file: {exc.strerror or exc}", 1) from exc
        try:
            data = _read_all(descriptor, size)
            # a size that changed is the only hint worth a stat: a FIFO reads as empty
            if len(data) != size and not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
        except OSError as exc:
            raise StoryError(f"cannot read file: {exc.strerror or exc}", 1) from exc
        finally:
            os.close(descriptor)
        return parse_story(data, name, self.tz)

    def rescan(self, now: datetime | None = None) -> RescanReport:
        """Bring the index up to date with the folder and report what changed.

        Only files whose (size, mtime) signature changed are read; only the keys they touch
        are re-indexed, so one new file in a folder of thousands costs a listing and a parse.
        """
        listing = self._list()
        listed, refused, links = listing.signatures, listing.refused, listing.links
        self.last_scan = now or datetime.now(UTC)
        if listed == self._listed and links == self._links and not refused and not self._refused:
            return RescanReport()  # the common case, decided by dict comparisons in C

        previous = self._files
        files = dict(previous)
        changed = previous.keys() - listed.keys() - refused.keys()  # removed
        for name in changed:
            del files[name]
        relinked = {name for name in links.keys() | self._links.keys()
                    if links.get(name) != self._links.get(name)}
        for name, error in refused.items():
            old = previous.get(name)
            files[name] = _FileState(old.story if old else None, error)
            if old is None or old.error != error:
                changed.add(name)
        last = self._listed
        prefix = f"{self.folder}{os.sep}"
        vanished: list[str] = []
        for name, signature in listed.items():
            if last.get(name) == signature and name not in relinked:
                continue
            changed.add(name)
            old = previous.get(name)
            size, _, mode = signature
            if not stat.S_ISREG(mode):
                files.pop(name, None)  # a folder or device with a story's name, or its link
                continue
            try:
                story = self._read(links.get(name) or prefix + name, name, size)
            except StoryError as error:
                files[name] = _FileState(old.story if old else None, error.with_path(name))
                continue
            if story is None:  # gone between listing and reading
                files.pop(name, None)
                vanished.append(name)
            else:
                files[name] = _FileState(story, None)
        for name in vanished:
            del listed[name]
        self._files, self._listed, self._refused = files, listed, set(refused)
        self._links = links
        if not changed:
            return RescanReport()
        return self._reindex(changed, previous)

    def _first_index(self) -> RescanReport:
        """The first load: every story is new, so the index is built in one pass."""
        holders: dict[str, set[str]] = {}
        by_key: dict[str, Story] = {}
        shared: list[str] = []  # keys held by more than one file
        for name, state in self._files.items():
            story = state.story
            if story is None:
                continue
            names = holders.get(story.key)
            if names is None:
                holders[story.key] = {name}
                by_key[story.key] = story
            else:
                names.add(name)
                shared.append(story.key)
        self._holders = holders
        for key in set(shared):
            winner = self._winner(key)
            assert winner is not None
            by_key[key] = winner
        stories = tuple(sorted_latest(by_key.values()))
        rejections = self._rejections()
        self.version += 1
        self._index = _Index(stories, by_key, {s.id: s for s in stories}, rejections,
                             KeyReferences(by_key))
        return RescanReport(new=stories, rejected=rejections)

    def _rejections(self) -> tuple[StoryError, ...]:
        return tuple(sorted(
            [state.error for state in self._files.values() if state.error is not None]
            + [error for errors in self._duplicates.values() for error in errors],
            key=lambda error: (error.path, error.line)))

    def _reindex(self, changed: set[str], previous: dict[str, _FileState]) -> RescanReport:
        if not previous:
            return self._first_index()
        old = self._index
        files, holders_of = self._files, self._holders
        affected: set[str] = set()
        for name in changed:
            before = previous.get(name)
            if before is not None and before.story is not None:
                affected.add(before.story.key)
                holders = holders_of.get(before.story.key)
                if holders is not None:
                    holders.discard(name)
            after = files.get(name)
            if after is not None and after.story is not None:
                key = after.story.key
                affected.add(key)
                holders = holders_of.get(key)
                if holders is None:
                    holders_of[key] = {name}
                else:
                    holders.add(name)

        by_key = dict(old.by_key)
        by_id = dict(old.by_id)
        outgoing: list[Story] = []
        incoming: list[Story] = []
        for key in affected:
            holders = holders_of.get(key)
            if holders is not None and len(holders) == 1 and key not in self._duplicates:
                winner = files[next(iter(holders))].story  # the common case: no duplicate
            else:
                winner = self._winner(key)
            shown = old.by_key.get(key)
            if winner is shown:
                continue
            if shown is not None:
                outgoing.append(shown)
                del by_id[shown.id]
            if winner is None:
                del by_key[key]
            else:
                by_key[key] = winner
                by_id[winner.id] = winner
                incoming.append(winner)
        stories = self._reorder(old, outgoing, incoming, by_key)
        rejections = self._rejections()
        self.version += 1
        added = [s.key for s in incoming if s.key not in old.by_key]
        removed = [s.key for s in outgoing if s.key not in by_key]
        big = len(added) + len(removed) > max(16, len(by_key) // 16)
        references = (KeyReferences(by_key) if big
                      else old.references.changed(added, removed))
        self._index = _Index(stories, by_key, by_id, rejections, references)
        for story in outgoing:
            self._search_cache.pop(story.key, None)
        reported = {(e.path, e.line, e.message) for e in old.rejections}
        known = old.by_key
        return RescanReport(
            new=tuple(s for s in incoming if s.key not in known),
            updated=tuple(s for s in incoming if s.key in known),
            removed=tuple(s for s in outgoing if s.key not in by_key),
            rejected=tuple(e for e in rejections if (e.path, e.line, e.message) not in reported),
        )

    def _winner(self, key: str) -> Story | None:
        """The story holding ``key``: later ``updated`` wins, on a tie the later name."""
        holders = self._holders.get(key)
        self._duplicates.pop(key, None)
        if not holders:
            self._holders.pop(key, None)
            return None
        if len(holders) == 1:  # the common case: no duplicate to weigh
            return self._story(next(iter(holders)))
        names = sorted(holders)
        best = names[0]
        for name in names[1:]:
            if self._story(name).updated >= self._story(best).updated:
                best = name
        losers = [name for name in names if name != best]
        if losers:
            self._duplicates[key] = [StoryError(f"duplicate key {key} (kept {best})", 1, name)
                                     for name in losers]
        return self._story(best)

    def _story(self, name: str) -> Story:
        story = self._files[name].story
        assert story is not None
        return story

    @staticmethod
    def _reorder(old: _Index, outgoing: list[Story], incoming: list[Story],
                 by_key: dict[str, Story]) -> tuple[Story, ...]:
        """Latest order: a full sort after big changes, else remove and insert in place."""
        if len(outgoing) + len(incoming) > max(16, len(old.stories) // 16):
            return tuple(sorted_latest(by_key.values()))
        ordered = list(old.stories)
        places = (old.position(s.key) for s in outgoing)
        for position in sorted((p for p in places if p is not None), reverse=True):
            del ordered[position]
        for story in incoming:
            bisect.insort(ordered, story, key=latest_order_key)
        return tuple(ordered)

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
        return self._index.position(key)

    def find(self, reference: str) -> Lookup:
        """Resolve what a reader typed after /story: a number is a place in latest order
        (``0`` and ``-1`` are places too, just empty ones); then a file id, a key or a
        printed reference, a key prefix of at least :data:`MIN_TYPED_PREFIX` characters
        (``-`` or ``_``); else the words are searched."""
        ref = reference.strip()
        index = self._index
        if _POSITION.match(ref):
            position = int(ref)
            in_range = 1 <= position <= len(index.stories)
            return Lookup("position", (index.stories[position - 1],) if in_range else ())
        by_id = index.by_id.get(ref)
        if by_id is not None:
            return Lookup("id", (by_id,))
        lookup = self._by_reference(ref)
        if lookup is not None:
            return lookup
        if ref.isdecimal():  # a long number matching no key is still a number
            return Lookup("position", ())
        return Lookup("search", self.search(ref))

    # -- references: /story_<ref> -------------------------------------------------------
    def reference(self, story: Story) -> str:
        """The short reference printed for ``story`` (``/story_<ref>``): the shortest prefix
        of its key unique among the loaded stories, at least :data:`MIN_REFERENCE`
        characters, ``-`` written ``_``. Costs two bisections; it can grow when a story
        sharing a longer prefix arrives, and older references then list both stories."""
        return self._index.references.reference(story.key)

    def by_reference(self, reference: str) -> tuple[Story, ...]:
        """The stories a reference names: the one whose key it spells out, else every story
        whose key starts with it (newest first); nothing for a reference shorter than
        :data:`MIN_TYPED_PREFIX` that is no whole key, or holding a character no key has."""
        lookup = self._by_reference(reference)
        return lookup.matches if lookup is not None else ()

    def _by_reference(self, reference: str) -> Lookup | None:
        text = _key_text(reference)
        if text is None:
            return None
        index = self._index
        exact = index.by_key.get(text)
        if exact is not None:
            return Lookup("id", (exact,))
        if len(text) < MIN_TYPED_PREFIX:
            return None
        keys = index.references.matching(text)
        if not keys:
            return None
        return Lookup("prefix", tuple(sorted_latest(index.by_key[k] for k in keys)))

    def search(self, text: str) -> tuple[Story, ...]:
        """Stories containing every searched word (as a word prefix, any case; see
        :func:`bot.stories.search.query_words`: single characters are not searched).

        Stories whose title holds every word come first, then the others; each group in
        latest order. Nothing when no word is left to search for.
        """
        words = query_words(text)
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

    def prepare_search(self) -> int:
        """Build the search words of every story that has none for its current version;
        returns how many. The bot runs it in a worker thread after a start, so the first
        search does not hold up every chat while thousands of stories are read."""
        built = 0
        for story in self._index.stories:
            cached = self._search_cache.get(story.key)
            if cached is None or cached[0] is not story:
                self._texts(story)
                built += 1
        return built

    def _texts(self, story: Story) -> tuple[str, str]:
        cached = self._search_cache.get(story.key)
        if cached is None or cached[0] is not story:  # none yet, or an older version's
            cached = (story, _search_text((story.title,)),
                      _search_text((*story.highlights, *story.story, *story.opinions)))
            self._search_cache[story.key] = cached
        return cached[1], cached[2]
