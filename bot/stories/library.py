"""A story folder as an index: rescans, latest order, lookup and search.

The folder belongs to the newsroom pipeline; the library only reads it, into a persistent
:class:`~bot.stories.index.StoryIndex` (SQLite with FTS5). A rescan re-reads only files
whose signature (size, modification time, mode, link target) changed, so a restart with an
unchanged folder costs one listing and parses nothing. A file that turns invalid keeps its
last good version in the index (the pipeline may have been caught half-way through a
write) and is reported.

A symbolic link counts only when it resolves to a file inside the folder; any other link is
rejected without its target being opened, so a link to ``/proc/self/environ`` cannot leak
the bot's token into a story.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import os
import re
import sqlite3
import stat
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, overload
from zoneinfo import ZoneInfo

from bot.errors import BotError, StoryError
from bot.stories.index import (
    CACHE_PAGES,
    REFUSED,
    SearchHits,
    Signature,
    StoryIndex,
    StoryIndexError,
    link_bytes,
    link_text,
    signature_hash,
)
from bot.stories.model import Story
from bot.stories.naming import is_story_file_name
from bot.stories.parser import MAX_STORY_BYTES, parse_story
from bot.stories.search import SearchQuery

__all__ = [
    "MAX_PREFIX_MATCHES",
    "MIN_REFERENCE",
    "MIN_TYPED_PREFIX",
    "KeyReferences",
    "LatestStories",
    "Lookup",
    "RescanReport",
    "StoryFolderError",
    "StoryIndexError",
    "StoryLibrary",
]

_POSITION = re.compile(r"^[+-]?[0-9]{1,5}$")
_KEY_TEXT = re.compile(r"^[a-z0-9-]+$")  # a key, or a prefix of one (STORY_FORMAT.md)
MIN_REFERENCE = 8
"""Characters of a key a printed reference shows at least (all of a shorter key)."""
MIN_TYPED_PREFIX = 6
"""Shortest key prefix a reader may type (STORY_FORMAT.md: "at least 6 characters")."""
MAX_PREFIX_MATCHES = 100
"""Stories a key prefix lists at most."""
_LOG = logging.getLogger(__name__)
_MASK = (1 << 64) - 1
_BATCH = 2000  # changed files parsed and recorded per transaction
_REPORT_LIMIT = 1000  # stories of each kind a rescan report lists
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
    # how many matched, when more than ``matches`` holds (not part of the answer's identity)
    total: int | None = field(default=None, compare=False)

    @property
    def count(self) -> int:
        """How many stories matched (``matches`` may list only the first of them)."""
        return len(self.matches) if self.total is None else max(self.total, len(self.matches))

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



_UNUSABLE = "the file name is not valid UTF-8"


def _usable(name: str) -> bool:
    """Whether a listed name is text (an undecodable byte arrives as a lone surrogate,
    which neither a story id nor the index can hold)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def _index_errors() -> Iterator[None]:
    """SQLite's failures while writing (a full disk above all) as a
    :class:`StoryIndexError`: the batches committed before stay, so the previous index
    is still whole and the next scan goes on from there."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoryIndexError(f"the story index cannot be updated: {error}") from error


class LatestStories(Sequence[Story]):
    """Every story in latest order, read from the index as it is used (never held at
    once): ``len`` is the count, an item or a slice one query, iteration a stream. For
    scripts and tests; the bot asks for pages (:meth:`StoryLibrary.latest`)."""

    def __init__(self, library: StoryLibrary) -> None:
        self._library = library

    def __len__(self) -> int:
        return self._library.count()

    @overload
    def __getitem__(self, item: int) -> Story: ...
    @overload
    def __getitem__(self, item: slice) -> Sequence[Story]: ...

    def __getitem__(self, item: int | slice) -> Story | Sequence[Story]:
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step != 1:
                return tuple(self)[item]
            return tuple(self._library.latest(start, max(stop - start, 0)))
        place = item + len(self) if item < 0 else item
        found = self._library.latest(place, 1) if place >= 0 else []
        if not found:
            raise IndexError(item)
        return found[0]

    def __iter__(self) -> Iterator[Story]:
        return self._library.iter_stories()

    def __bool__(self) -> bool:
        return self._library.count() > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


class StoryLibrary:
    """The stories of one folder, kept current by :meth:`rescan`, served from a
    :class:`~bot.stories.index.StoryIndex` so memory does not grow with the archive.

    ``index_path`` is the index file (``stories.index_path``); None keeps a private
    temporary one, rebuilt by the first rescan (tools, tests). Everything here is
    synchronous and thread-safe: the bot calls what may take more than a few milliseconds
    (rescans, searches, positions far down the list) through ``asyncio.to_thread``; a plain
    script just calls it::

        library = StoryLibrary(folder, ZoneInfo("UTC"), index_path=Path("index.sqlite3"))
        library.rescan()          # builds or refreshes the index (nothing reparsed if unchanged)
        library.count(); library.latest(0, 10); library.search_page("harbour", 0, 10)
    """

    def __init__(self, folder: Path, tz: ZoneInfo, index_path: Path | None = None) -> None:
        self.folder = folder
        self.tz = tz
        self.last_scan: datetime | None = None
        self.version = 0  # goes up whenever the stories change (a cache key for renderings)
        self.index = StoryIndex(index_path, folder=folder, tz=tz)
        self._seen_change: int | None = None  # the index's change number reported up to
        self._reported: set[tuple[str, int, str]] = set()
        self._rejections: tuple[StoryError, ...] = ()
        self._count = 0
        self._unusable: dict[str, StoryError] = {}  # names the index cannot hold
        self._scan_lock = threading.Lock()

    def close(self) -> None:
        self.index.close()

    # -- reading the folder ---------------------------------------------------------------
    def _entries(self) -> Iterator[os.DirEntry[str]]:
        """The folder's visible ``.txt`` entries, or a clear error about the folder.

        A generator, not a list: a million entries are never held at once.
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

    def _inside(self) -> str:
        return os.path.realpath(self.folder).rstrip(os.sep) + os.sep

    def _look(self, name: str, path: str, is_link: bool, inside: str
              ) -> tuple[Signature, StoryError | None] | None:
        """One file's signature, or a line-1 error for a file that cannot be used; None
        when it is gone. A plain file costs one ``lstat``; only links pay for resolving
        their target."""
        try:
            if is_link:
                target, info = _resolve_link(path, inside)
                return (info.st_size, info.st_mtime_ns, info.st_mode, target), None
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):  # became a link since the listing
                return self._look(name, path, True, inside)
        except StoryError as error:
            return REFUSED, error.with_path(name)
        except FileNotFoundError:
            return None
        except OSError as exc:  # permission, …
            return REFUSED, StoryError(f"cannot read file: {exc.strerror or exc}", 1, name)
        return (info.st_size, info.st_mtime_ns, info.st_mode, None), None

    def _listing_digest(self) -> tuple[int, int] | None:
        """The folder's digest (see :func:`signature_hash`) and file count from one pass,
        or None when a file cannot be used (those are looked at again by the full pass).

        The hot loop of a restart and of every safety-net rescan: one ``lstat`` per file
        and a hash of small ints, nothing kept (a million files cost no memory).
        """
        digest, count = 0, 0
        crc32 = zlib.crc32
        inside: str | None = None
        try:
            with os.scandir(self.folder) as listing:
                for entry in listing:
                    name = entry.name
                    if not name.endswith(".txt") or name[0] == ".":  # see is_story_file_name
                        continue
                    if not _usable(name):
                        return None
                    try:
                        if entry.is_symlink():
                            if inside is None:
                                inside = self._inside()
                            looked = self._look(name, entry.path, True, inside)
                            if looked is None:
                                continue
                            if looked[1] is not None:
                                return None
                            digest += signature_hash(name, looked[0])
                        else:
                            info = entry.stat(follow_symlinks=False)
                            raw = name.encode("utf-8", "surrogateescape")
                            # signature_hash(name, (size, mtime, mode, None)), inline
                            digest += hash((crc32(raw), len(raw), info.st_size,
                                            info.st_mtime_ns, info.st_mode))
                    except FileNotFoundError:
                        continue
                    except OSError:
                        return None
                    count += 1
        except OSError:
            return None  # the full pass says what is wrong with the folder
        return digest & _MASK, count

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

    def _parse(self, name: str, signature: Signature | None, error: StoryError | None
               ) -> tuple[str, Signature | None, Story | None, StoryError | None]:
        """What to record for one changed file (see :meth:`StoryIndex.apply`)."""
        if signature is None or error is not None:
            return name, signature, None, error
        size, _, mode, link = signature
        if not stat.S_ISREG(mode):
            return name, signature, None, None  # a folder or device with a story's name
        try:
            story = self._read(link or f"{self.folder}{os.sep}{name}", name, size)
        except StoryError as failure:
            return name, signature, None, failure.with_path(name)
        if story is None:  # gone between listing and reading: judged at the next look
            return name, None, None, None
        return name, signature, story, None

    def _record(self, changes: Sequence[tuple[str, Signature | None, StoryError | None]]
                ) -> None:
        """Parse changed files (outside any transaction) and record them in one."""
        parsed = [self._parse(*change) for change in changes]
        if not parsed:
            return
        with self.index.transaction() as conn:
            touched: set[str] = set()
            for name, signature, story, error in parsed:
                touched |= self.index.apply(conn, name, signature, story, error)
            # oldest first: ids then grow as stories are added, which keeps the
            # full-text index's lists compact
            updated = {p[2].key: p[2].updated.timestamp() for p in parsed if p[2] is not None}
            self.index.show(conn, sorted(touched, key=lambda k: (updated.get(k, 0.0), k)))

    # -- scanning ---------------------------------------------------------------------
    def rescan(self, now: datetime | None = None) -> RescanReport:
        """Bring the index up to date with the folder and report what changed.

        One pass over the listing sums the files' signatures; when the sum and count match
        the index's, nothing was added, changed or removed, and nothing is read. Otherwise
        the listing goes into a temporary table, SQLite finds the differences, and only
        those files are parsed, a batch per transaction. The report also holds what other
        processes sharing the index changed since this one last looked.
        """
        with self._scan_lock, _index_errors():
            after = self._watermark()
            listed = self._listing_digest()
            self.last_scan = now or datetime.now(UTC)
            if listed is None or listed != self.index.listing_digest():
                self._sync_all()
            return self._report(after)

    def rescan_names(self, names: Iterable[str], now: datetime | None = None) -> RescanReport:
        """Look only at the named files of the folder (what a watcher saw change)."""
        with self._scan_lock, _index_errors():
            after = self._watermark()
            inside = self._inside()
            wanted = sorted({n for n in names if is_story_file_name(n) and os.sep not in n
                             and _usable(n)})
            known = self.index.file_rows(wanted)
            changes: list[tuple[str, Signature | None, StoryError | None]] = []
            for name in wanted:
                path = f"{self.folder}{os.sep}{name}"
                looked = self._look(name, path, False, inside)  # lstat tells a link
                row = known.get(name)
                if looked is None:
                    if row is not None:
                        changes.append((name, None, None))
                    continue
                signature, error = looked
                if row is None or row.signature != signature or error is not None:
                    changes.append((name, signature, error))
            self._record(changes)
            if now is not None:
                self.last_scan = now
            return self._report(after)

    def _watermark(self) -> int:
        if self._seen_change is None:  # a first scan reports only what it changes itself
            self._seen_change = self.index.last_change()
        return self._seen_change

    def _sync_all(self) -> None:
        conn = self.index.connection()
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listing (name TEXT PRIMARY KEY, "
                     "size INTEGER, mtime_ns INTEGER, mode INTEGER, link TEXT, "
                     "error_line INTEGER, error TEXT)")
        conn.execute("DELETE FROM temp.listing")
        inside = self._inside()
        unusable: dict[str, StoryError] = {}

        def rows() -> Iterator[tuple[object, ...]]:
            for entry in self._entries():
                if not _usable(entry.name):
                    unusable[entry.name] = StoryError(_UNUSABLE, 1, entry.name)
                    continue
                looked = self._look(entry.name, entry.path, entry.is_symlink(), inside)
                if looked is None:
                    continue
                (size, mtime, mode, link), error = looked
                yield (entry.name, size, mtime, mode, link_bytes(link),
                       error.line if error else None, error.message if error else None)

        conn.execute("PRAGMA cache_size = -65536")  # 64 MB while writing many files
        conn.execute("BEGIN")
        try:
            conn.executemany("INSERT OR REPLACE INTO temp.listing VALUES (?, ?, ?, ?, ?, ?, ?)",
                             rows())
        finally:
            conn.execute("COMMIT")
        last = ""
        while True:  # changed and new files, a batch at a time in name order
            batch = conn.execute(
                "SELECT l.name, l.size, l.mtime_ns, l.mode, l.link, l.error_line, l.error "
                "FROM temp.listing l LEFT JOIN files f ON f.name = l.name WHERE l.name > ? "
                "AND (f.name IS NULL OR f.size != l.size OR f.mtime_ns != l.mtime_ns OR "
                "f.mode != l.mode OR f.link IS NOT l.link OR l.error IS NOT NULL) "
                "ORDER BY l.name LIMIT ?", (last, _BATCH)).fetchall()
            if not batch:
                break
            self._record([
                (name, (size, mtime, mode, link_text(link)),
                 StoryError(message, line, name) if message is not None else None)
                for name, size, mtime, mode, link, line, message in batch])
            last = batch[-1][0]
        while True:  # removed files
            gone = [row[0] for row in conn.execute(
                "SELECT name FROM files WHERE name NOT IN (SELECT name FROM temp.listing) "
                "ORDER BY name LIMIT ?", (_BATCH,))]
            if not gone:
                break
            self._record([(name, None, None) for name in gone])
        conn.execute("DELETE FROM temp.listing")
        self._unusable = unusable
        conn.execute(f"PRAGMA cache_size = {CACHE_PAGES}")

    def _report(self, after: int) -> RescanReport:
        changes = self.index.changes(after)
        self._seen_change = changes.upto
        rejections = tuple(sorted([*self.index.rejections(), *self._unusable.values()],
                                  key=lambda error: (error.path, error.line)))
        current = {(e.path, e.line, e.message) for e in rejections}
        fresh = tuple(e for e in rejections if (e.path, e.line, e.message) not in self._reported)
        self._reported = current
        if changes.upto != after or rejections != self._rejections:
            self.version += 1
        self._rejections = rejections
        self._count = self.index.count()
        new, updated, removed = changes.counts
        if new + updated + removed > len(changes.new) + len(changes.updated) + len(
                changes.removed):
            _LOG.info("stories changed: %d new, %d updated, %d removed (the report lists "
                      "the newest %d of each)", new, updated, removed, _REPORT_LIMIT)
        return RescanReport(changes.new, changes.updated, changes.removed, fresh)

    # -- reading the index ---------------------------------------------------------------
    @property
    def stories(self) -> LatestStories:
        """Every story, newest first (latest order), as a lazy view of the index."""
        return LatestStories(self)

    @property
    def rejections(self) -> tuple[StoryError, ...]:
        """Every file currently rejected, as ``PATH:LINE: message`` errors."""
        return self._rejections

    def count(self) -> int:
        """How many stories there are (as of the last rescan; no query)."""
        return self._count

    def latest(self, offset: int, limit: int) -> list[Story]:
        """Stories ``offset``… in latest order, at most ``limit`` (a page of /latest)."""
        return self.index.latest(offset, limit)

    def iter_stories(self) -> Iterator[Story]:
        """Every story in latest order, streamed in small batches (``export``)."""
        return self.index.iter_latest()

    def updated_between(self, since: datetime, until: datetime) -> list[Story]:
        """Stories with ``since < updated <= until``, in latest order (briefings)."""
        return self.index.updated_between(since, until)

    def get(self, key: str) -> Story | None:
        return self.index.get(key)

    def position_of(self, key: str) -> int | None:
        """0-based place of ``key`` in latest order (for paging anchored on keys); costs a
        count of the stories before it, so call it off the event loop."""
        return self.index.position(key)

    def find(self, reference: str) -> Lookup:
        """Resolve what a reader typed after /story: a number is a place in latest order
        (``0`` and ``-1`` are places too, just empty ones); then a file id, a key or a
        printed reference, a key prefix of at least :data:`MIN_TYPED_PREFIX` characters
        (``-`` or ``_``); else the words are searched."""
        ref = reference.strip()
        if _POSITION.match(ref):
            position = int(ref)
            found = self.latest(position - 1, 1) if position >= 1 else []
            return Lookup("position", tuple(found))
        by_id = self.index.by_id(ref)
        if by_id is not None:
            return Lookup("id", (by_id,))
        lookup = self._by_reference(ref)
        if lookup is not None:
            return lookup
        if ref.isdecimal():  # a long number matching no key is still a number
            return Lookup("position", ())
        hits = self.search_page(ref, 0, MAX_PREFIX_MATCHES)
        return Lookup("search", hits.stories, hits.total)

    # -- references: /story_<ref> -------------------------------------------------------
    def reference(self, story: Story) -> str:
        """The short reference printed for ``story`` (``/story_<ref>``): the shortest prefix
        of its key unique among the loaded stories, at least :data:`MIN_REFERENCE`
        characters, ``-`` written ``_``. Costs two index lookups; it can grow when a story
        sharing a longer prefix arrives, and older references then list both stories."""
        key = story.key
        before, after = self.index.neighbours(key)
        return KeyReferences([k for k in (before, key, after) if k is not None]
                             ).reference(key)

    def by_reference(self, reference: str) -> tuple[Story, ...]:
        """The stories a reference names: the one whose key it spells out, else every story
        whose key starts with it (newest first, at most :data:`MAX_PREFIX_MATCHES`);
        nothing for a reference shorter than :data:`MIN_TYPED_PREFIX` that is no whole key,
        or holding a character no key has."""
        lookup = self._by_reference(reference)
        return lookup.matches if lookup is not None else ()

    def _by_reference(self, reference: str) -> Lookup | None:
        text = _key_text(reference)
        if text is None:
            return None
        exact = self.index.get(text)
        if exact is not None:
            return Lookup("id", (exact,))
        if len(text) < MIN_TYPED_PREFIX:
            return None
        keys = self.index.keys_from(text, MAX_PREFIX_MATCHES)
        if not keys:
            return None
        return Lookup("prefix", tuple(self.index.by_keys(keys)))

    # -- search ---------------------------------------------------------------------------
    def search(self, text: str) -> tuple[Story, ...]:
        """Stories matching every searched word (each as a word prefix, any case, without
        diacritics) and every "quoted phrase": title matches first, each group by relevance
        (newest first for very common words); at most the first thousand. Nothing when no
        word is left to search for. Call it off the event loop."""
        hits = self.search_page(text, 0, 1000)
        return hits.stories

    def search_page(self, text: str, offset: int, limit: int) -> SearchHits:
        """One page of :meth:`search`'s results, with how many there are."""
        return self.index.search(SearchQuery.parse(text), offset, limit)

    def prepare_search(self) -> int:
        """Nothing to prepare any more: the index is searchable as soon as it is scanned
        (kept for callers of the in-memory library; returns 0, the stories prepared)."""
        return 0
