"""The story index: one SQLite file holding what replies need, so memory does not grow
with the archive.

The folder stays the source of truth; the index is a cache of it that can be deleted at
any time (the next scan rebuilds it). It holds, per file, the signature it was read with
and its last good parsed version; per key, which file's story is shown (the winner of a
duplicate key); and an FTS5 full-text index of every shown story. Everything is written in
short transactions, so a crash or a full disk leaves the last committed state, which is
always a usable index.

Several processes (a fleet on one machine, ``check`` beside a running bot) may share one
file: WAL lets readers go on while one writer writes, the busy timeout queues writers, and
each write re-reads what it replaces inside its transaction. Each thread gets its own
connection (:meth:`StoryIndex.connection`), so queries can run in worker threads.

Story rows get an id (the FTS rowid) that grows with the story's ``updated`` time, so the
full-text engine can list matches newest first without ranking them: that is how a word in
half the archive is answered in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import tempfile
import threading
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, cast
from zoneinfo import ZoneInfo

from bot.errors import BotError, StoryError
from bot.stories.model import Story, StoryBody
from bot.stories.search import SearchQuery, nfc

__all__ = [
    "APPLICATION_ID",
    "CACHE_PAGES",
    "RANK_LIMIT",
    "REFUSED",
    "SCHEMA_VERSION",
    "FileRow",
    "IndexChanges",
    "SearchHits",
    "Signature",
    "StoryIndex",
    "StoryIndexError",
    "link_bytes",
    "link_text",
    "signature_hash",
]

_LOG = logging.getLogger(__name__)

APPLICATION_ID: Final = 0x53545849  # "STXI": this file is a story index
SCHEMA_VERSION: Final = 1
RANK_LIMIT: Final = 4000
"""Matches a query may have and still be ranked by relevance; beyond, newest first."""
_COUNT_LIMIT: Final = 1000  # search results counted and paged at most
_ID_EPOCH: Final = 946_684_800  # 2000-01-01 UTC: story ids are seconds since, kept small
_MASK: Final = (1 << 64) - 1
_BUSY_MS: Final = 30_000
_CACHE_STORIES: Final = 256
CACHE_PAGES: Final = -8000
"""SQLite's page cache per connection (negative: in KiB): 8 MB, whatever the archive."""

Signature = tuple[int, int, int, str | None]
"""(size, mtime in ns, mode, the real path a link reaches) from one look at a file; a file
that could not be looked at has ``(-1, -1, -1, None)``."""
REFUSED: Final[Signature] = (-1, -1, -1, None)

_SCHEMA = f"""
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, mode INTEGER NOT NULL, link BLOB,
    error_line INTEGER, error TEXT,                -- why the current version is rejected
    key TEXT, id TEXT, seq TEXT, title TEXT,       -- the last good version, if any
    published TEXT, updated TEXT, updated_at INTEGER, body TEXT,
    kept TEXT                                      -- loses its key to this file
);
CREATE INDEX files_by_key ON files (key) WHERE key IS NOT NULL;
CREATE INDEX files_by_id ON files (id) WHERE id IS NOT NULL;
CREATE INDEX files_rejected ON files (name) WHERE error IS NOT NULL OR kept IS NOT NULL;
CREATE TABLE stories (
    id INTEGER PRIMARY KEY,                        -- grows with updated_at; the FTS rowid
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,                            -- the file whose story is shown
    updated_at INTEGER NOT NULL, seq_rank INTEGER NOT NULL,
    first_change INTEGER NOT NULL, change INTEGER NOT NULL,
    indexed INTEGER NOT NULL DEFAULT 1             -- 0: its text left the FTS index
);
CREATE INDEX stories_latest ON stories (updated_at DESC, seq_rank DESC, key);
CREATE INDEX stories_changed ON stories (change);
CREATE TABLE removed (change INTEGER PRIMARY KEY, key TEXT NOT NULL, story TEXT NOT NULL);
CREATE VIRTUAL TABLE search USING fts5(
    title, body, content='',
    tokenize="unicode61 remove_diacritics 2 tokenchars '_' categories 'L* N* Co M*'",
    prefix='2 3');
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""
_LATEST = "ORDER BY s.updated_at DESC, s.seq_rank DESC, s.key"
_STORY_COLUMNS = "s.id, f.name, f.key, f.id, f.seq, f.title, f.published, f.updated, f.body"
_StoryRow = tuple[int, str, str, str, str | None, str, str, str, str]


class StoryIndexError(BotError):
    """The story index could not be written (a full disk, a lock held too long): what was
    committed before stays, and the next scan tries again."""


def signature_hash(name: str, signature: Signature) -> int:
    """A stable 64-bit hash of one listed file (the same in every process: ints and tuples
    of ints hash alike everywhere, unlike str). The index keeps the sum over its files,
    so an unchanged folder is recognised from one pass over the listing. The library's
    listing computes the same inline, for speed."""
    size, mtime, mode, link = signature
    raw = name.encode("utf-8", "surrogateescape")
    if link is None:
        return hash((zlib.crc32(raw), len(raw), size, mtime, mode)) & _MASK
    target = zlib.crc32(link.encode("utf-8", "surrogateescape"))
    return hash((zlib.crc32(raw), len(raw), size, mtime, mode, target)) & _MASK


@dataclass(frozen=True, slots=True)
class FileRow:
    """What the index knows of one file: its signature, its current error, and the key of
    its last good version."""

    name: str
    signature: Signature
    error: StoryError | None
    key: str | None


@dataclass(frozen=True, slots=True)
class IndexChanges:
    """Shown stories that changed after a change number (see :meth:`StoryIndex.changes`).
    Lists are cut at ``limit`` (newest first); the counts are complete."""

    new: tuple[Story, ...]
    updated: tuple[Story, ...]
    removed: tuple[Story, ...]
    counts: tuple[int, int, int]
    upto: int


@dataclass(frozen=True, slots=True)
class SearchHits:
    """One page of search results and how many there are.

    ``total`` is exact unless ``more``: then at least that many matched (results are
    counted and paged up to a limit). ``ranked`` says whether they are ordered by relevance
    (else newest first: the words are too common to rank).
    """

    stories: tuple[Story, ...]
    total: int
    more: bool
    ranked: bool


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A story as the index stores it."""

    key: str
    id: str
    seq: str | None
    title: str
    published: str
    updated: str
    updated_at: int
    body: str  # JSON [highlights, paragraphs, opinions]
    search_body: str


def _stored(story: Story) -> _Parsed:
    texts = [list(story.highlights), list(story.story), list(story.opinions)]
    return _Parsed(
        key=story.key, id=story.id, seq=None if story.seq is None else str(story.seq),
        title=story.title, published=story.published.isoformat(),
        updated=story.updated.isoformat(), updated_at=int(story.updated.timestamp()),
        body=json.dumps(texts, ensure_ascii=False, separators=(",", ":")),
        search_body=_search_body(texts))


def _search_body(texts: Sequence[Sequence[str]]) -> str:
    """The body text given to the full-text index; a delete must give it back exactly."""
    return nfc("\n".join(line for part in texts for line in part))


def _seq_rank(seq: str | None) -> int:
    """``seq`` for latest order (no seq after every number), kept within SQLite's ints."""
    return -1 if seq is None else min(int(seq), (1 << 62))


def _body_of(text: str) -> StoryBody:
    def build() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        highlights, paragraphs, opinions = json.loads(text)
        return tuple(highlights), tuple(paragraphs), tuple(opinions)
    return StoryBody.deferred(build)


def _is_index_error(error: sqlite3.DatabaseError) -> bool:
    """A file that is not an SQLite database, or a damaged one."""
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.OperationalError | sqlite3.IntegrityError | sqlite3.ProgrammingError)


class StoryIndex:
    """The index file of one story folder; see the module docstring.

    ``path`` None keeps the index in a private temporary file, removed when the index is
    closed or collected (tools and tests that need no persistence). A file that is not a
    story index of this schema (corrupt, foreign, older) is moved aside to
    ``<path>.replaced`` with a warning and rebuilt; one built for another folder or time
    zone is emptied.
    """

    def __init__(self, path: Path | None, *, folder: Path, tz: ZoneInfo) -> None:
        self._temporary = path is None
        if path is None:
            # a folder of its own: no file is opened from Python (tests watch os.open)
            path = Path(tempfile.mkdtemp(prefix="story-index-")) / "index.sqlite3"
            weakref.finalize(self, _remove_files, path)
        self.path = path
        self._identity = {"folder": str(folder.resolve()), "timezone": tz.key}
        self.tz = tz
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Story] = OrderedDict()
        self._cache_lock = threading.Lock()
        # within one write transaction: the last shown version of files being removed
        self._leaving: dict[str, str] = {}
        self._digest_change = [0, 0]  # (sum of hashes, files) added by this transaction
        try:
            self._open()
        except sqlite3.Error as error:
            raise StoryIndexError(f"cannot open the story index {path}: {error}") from error

    # -- connections and schema -------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = {CACHE_PAGES}")
        with self._lock:
            self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (each thread reconnects on its next use)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        if self._temporary:
            _remove_files(self.path)

    def _open(self) -> None:
        try:
            self._check_schema()
        except sqlite3.DatabaseError as error:
            if not _is_index_error(error):
                raise
            self._replace(f"it is not a readable SQLite file ({error})")
            self._check_schema()

    def _check_schema(self) -> None:
        conn = self.connection()
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        with self.transaction() as conn:
            application = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if application == 0 and version == 0 and tables == 0:  # a new file
                for statement in _SCHEMA.split(";\n"):  # executescript would commit
                    if statement.strip():
                        conn.execute(statement)
                self._write_identity(conn)
                return
            ours = application == APPLICATION_ID and version == SCHEMA_VERSION
            if ours:
                stored = dict(conn.execute(
                    "SELECT name, value FROM meta WHERE name IN ('folder', 'timezone')"))
                if stored == self._identity:
                    return
                _LOG.info("story index %s was built for %s; rebuilding it for %s",
                          self.path, stored, self._identity)
                self._empty(conn)
                return
        why = ("it belongs to another program" if application != APPLICATION_ID
               else f"its schema is version {version}, not {SCHEMA_VERSION}")
        self._replace(why)
        self._check_schema()

    def _replace(self, why: str) -> None:
        """Move an unusable file aside and start a new one."""
        self.close()
        aside = self.path.with_name(self.path.name + ".replaced")
        _LOG.warning("story index %s is unusable (%s): moved to %s and rebuilt from the "
                     "story folder", self.path, why, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                self.path.with_name(self.path.name + suffix).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.path.replace(aside)

    def _write_identity(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                         [*self._identity.items(), ("change", "0"), ("digest", "0"),
                          ("files", "0")])

    def _empty(self, conn: sqlite3.Connection) -> None:
        for table in ("files", "stories", "removed", "meta"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("INSERT INTO search (search) VALUES ('delete-all')")
        self._write_identity(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection (the write lock at once, so two
        processes queue instead of failing half-way); rolled back on any error."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        self._digest_change = [0, 0]
        try:
            yield conn
            self._add_digest(conn, *self._digest_change)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            self._leaving.clear()
        conn.execute("COMMIT")

    # -- the folder's signature -------------------------------------------------------
    def listing_digest(self) -> tuple[int, int]:
        """(sum of :func:`signature_hash` over every file row, number of rows)."""
        rows = dict(self.connection().execute(
            "SELECT name, value FROM meta WHERE name IN ('digest', 'files')"))
        return int(rows.get("digest", 0)), int(rows.get("files", 0))

    def last_change(self) -> int:
        row = self.connection().execute("SELECT value FROM meta WHERE name = 'change'"
                                        ).fetchone()
        return int(row[0]) if row else 0

    def file_rows(self, names: Iterable[str]) -> dict[str, FileRow]:
        """The rows of ``names`` that exist."""
        conn = self.connection()
        rows: dict[str, FileRow] = {}
        for name in names:
            row = conn.execute("SELECT name, size, mtime_ns, mode, link, error_line, error, "
                               "key FROM files WHERE name = ?", (name,)).fetchone()
            if row is not None:
                rows[name] = _file_row(row)
        return rows

    def rejections(self) -> list[StoryError]:
        """Every file rejected now, and every file losing a duplicate key, by path."""
        conn = self.connection()
        errors: list[StoryError] = []
        for name, line, message, key, kept in conn.execute(
                "SELECT name, error_line, error, key, kept FROM files "
                "WHERE error IS NOT NULL OR kept IS NOT NULL"):
            if message is not None:
                errors.append(StoryError(message, line, name))
            if kept is not None:
                errors.append(StoryError(f"duplicate key {key} (kept {kept})", 1, name))
        errors.sort(key=lambda error: (error.path, error.line))
        return errors

    # -- writing ----------------------------------------------------------------------
    def apply(self, conn: sqlite3.Connection, name: str, signature: Signature | None,
              story: Story | None, error: StoryError | None) -> set[str]:
        """Record one file inside a :meth:`transaction`; returns the keys it touched.

        ``signature`` None: the file is gone. ``story`` None with no ``error``: not a
        story (a folder with a story's name), or rejected with ``error``, keeping its last
        good version. Keeps the listing digest in step.
        """
        old = conn.execute("SELECT size, mtime_ns, mode, link, key FROM files WHERE name = ?",
                           (name,)).fetchone()
        touched: set[str] = set()
        delta, count = 0, 0
        parsed = _stored(story) if story is not None else None
        keeps_last_good = signature is not None and story is None and error is not None
        if old is not None and not keeps_last_good:
            self._unindex_if_shown(conn, name, parsed)
            if old[4] is not None and parsed is None:  # its story leaves: keep it to report
                row = conn.execute("SELECT name, key, id, seq, title, published, updated, "
                                   "body FROM files WHERE name = ?", (name,)).fetchone()
                self._leaving[name] = json.dumps(row, ensure_ascii=False)
        if old is not None:
            delta -= signature_hash(name, (old[0], old[1], old[2], link_text(old[3])))
            count -= 1
            if old[4] is not None:
                touched.add(old[4])
        if signature is None:
            conn.execute("DELETE FROM files WHERE name = ?", (name,))
        else:
            delta += signature_hash(name, signature)
            count += 1
            size, mtime, mode, target = signature
            link = link_bytes(target)
            err_line, err = (error.line, error.message) if error is not None else (None, None)
            if parsed is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO files (name, size, mtime_ns, mode, link, "
                    "error_line, error, key, id, seq, title, published, updated, updated_at, "
                    "body) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, size, mtime, mode, link, parsed.key, parsed.id, parsed.seq,
                     parsed.title, parsed.published, parsed.updated, parsed.updated_at,
                     parsed.body))
                touched.add(parsed.key)
            elif old is not None and error is not None:  # keep the last good version
                conn.execute("UPDATE files SET size = ?, mtime_ns = ?, mode = ?, link = ?, "
                             "error_line = ?, error = ? WHERE name = ?",
                             (size, mtime, mode, link, err_line, err, name))
                touched.discard(old[4])  # its shown story does not change
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO files (name, size, mtime_ns, mode, link, "
                    "error_line, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, size, mtime, mode, link, err_line, err))
        self._digest_change[0] += delta  # written once, when the transaction commits
        self._digest_change[1] += count
        return touched

    @staticmethod
    def _add_digest(conn: sqlite3.Connection, delta: int, count: int) -> None:
        if not delta and not count:
            return
        rows = dict(conn.execute("SELECT name, value FROM meta WHERE name IN ('digest', "
                                 "'files')"))
        digest = (int(rows.get("digest", 0)) + delta) & _MASK
        files = int(rows.get("files", 0)) + count
        conn.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                         [("digest", str(digest)), ("files", str(files))])

    def _unindex_if_shown(self, conn: sqlite3.Connection, name: str,
                          parsed: _Parsed | None) -> None:
        """Before the row of a shown file changes: take its story out of the full-text
        index with the very text it went in with (a contentless FTS5 table needs it), unless
        the new version is the same story read again."""
        shown = conn.execute("SELECT s.id, f.title, f.body, f.id, f.seq, f.published, "
                             "f.updated FROM stories s JOIN files f ON f.name = s.name "
                             "WHERE s.name = ? AND s.indexed = 1", (name,)).fetchone()
        if shown is None:
            return
        story_id, title, body, file_id, seq, published, updated = shown
        if parsed is not None and (title, body, file_id, seq, published, updated) == (
                parsed.title, parsed.body, parsed.id, parsed.seq, parsed.published,
                parsed.updated):
            return
        conn.execute("INSERT INTO search (search, rowid, title, body) VALUES "
                     "('delete', ?, ?, ?)", (story_id, nfc(title), _search_body(json.loads(body))))
        conn.execute("UPDATE stories SET indexed = 0 WHERE id = ?", (story_id,))

    def show(self, conn: sqlite3.Connection, keys: Iterable[str]) -> int:
        """Inside a :meth:`transaction`, after :meth:`apply`: make each key show its
        winning file (later ``updated`` wins, on a tie the file name sorting last) and keep
        the full-text index in step; returns how many shown stories changed."""
        changed = 0
        change = int(conn.execute("SELECT value FROM meta WHERE name = 'change'"
                                  ).fetchone()[0])
        for key in keys:
            winner = conn.execute(
                "SELECT name, seq, title, updated_at, body FROM files WHERE key = ? "
                "ORDER BY updated_at DESC, name DESC LIMIT 1", (key,)).fetchone()
            shown = conn.execute("SELECT id, name, first_change, indexed FROM stories "
                                 "WHERE key = ?", (key,)).fetchone()
            if winner is not None:  # the others holding the key are rejected as duplicates
                conn.execute("UPDATE files SET kept = CASE name WHEN ?1 THEN NULL ELSE ?1 END "
                             "WHERE key = ?2 AND kept IS NOT CASE name WHEN ?1 THEN NULL "
                             "ELSE ?1 END", (winner[0], key))
            if shown is not None and winner is not None and shown[1] == winner[0] \
                    and shown[3]:
                continue  # the same version
            change += 1
            changed += 1
            first = change
            if shown is not None:
                story_id, shown_name, first, indexed = shown
                if indexed:  # its file is unchanged: another file wins now
                    self._unindex_if_shown(conn, shown_name, None)
                conn.execute("DELETE FROM stories WHERE id = ?", (story_id,))
                with self._cache_lock:
                    self._cache.pop(story_id, None)
                if winner is None:
                    conn.execute("INSERT INTO removed (change, key, story) VALUES (?, ?, ?)",
                                 (change, key, self._leaving.get(shown_name, "null")))
                    continue
            if winner is None:
                continue
            name, seq, title, updated_at, body = winner
            story_id = self._free_id(conn, updated_at)
            conn.execute("INSERT INTO stories (id, key, name, updated_at, seq_rank, "
                         "first_change, change) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (story_id, key, name, updated_at, _seq_rank(seq), first, change))
            conn.execute("INSERT INTO search (rowid, title, body) VALUES (?, ?, ?)",
                         (story_id, nfc(title), _search_body(json.loads(body))))
        self._leaving.clear()
        if changed:
            conn.execute("UPDATE meta SET value = ? WHERE name = 'change'", (str(change),))
            conn.execute("DELETE FROM removed WHERE change < ?", (change - 100_000,))
        return changed

    @staticmethod
    def _free_id(conn: sqlite3.Connection, updated_at: int) -> int:
        """An unused id for a story updated at ``updated_at``: its second since 2000, or
        the first free one after it when stories share that second (they share minutes:
        files give none finer). Small, dense ids keep the full-text index compact, and an
        id's order is the stories' order by ``updated``, give or take the seconds of a
        crowded minute."""
        base = updated_at - _ID_EPOCH
        if conn.execute("SELECT 1 FROM stories WHERE id = ?", (base,)).fetchone() is None:
            return base
        return int(conn.execute(  # the end of the run of taken ids from `base`
            "SELECT s.id + 1 FROM stories s WHERE s.id >= ? AND NOT EXISTS "
            "(SELECT 1 FROM stories t WHERE t.id = s.id + 1) ORDER BY s.id LIMIT 1",
            (base,)).fetchone()[0])

    # -- reading ----------------------------------------------------------------------
    def count(self) -> int:
        return int(self.connection().execute("SELECT count(*) FROM stories").fetchone()[0])

    def _stories(self, sql: str, args: Sequence[object] = ()) -> list[Story]:
        return [self._story(row) for row in self.connection().execute(sql, args)]

    def _story(self, row: _StoryRow) -> Story:
        story_id = row[0]
        with self._cache_lock:
            cached = self._cache.get(story_id)
            if cached is not None:
                self._cache.move_to_end(story_id)
                return cached
        _, name, key, file_id, seq, title, published, updated, body = row
        story = Story(id=file_id, key=key, seq=None if seq is None else int(seq), title=title,
                      published=self._moment(published), updated=self._moment(updated),
                      body=_body_of(body), source=name)
        with self._cache_lock:
            self._cache[story_id] = story
            if len(self._cache) > _CACHE_STORIES:
                self._cache.popitem(last=False)
        return story

    def latest(self, offset: int, limit: int) -> list[Story]:
        """Stories ``offset``… of latest order, at most ``limit``."""
        if limit <= 0 or offset < 0:
            return []
        return self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories s JOIN files f ON f.name = s.name "
            f"{_LATEST} LIMIT ? OFFSET ?", (limit, offset))

    def get(self, key: str) -> Story | None:
        found = self._stories(f"SELECT {_STORY_COLUMNS} FROM stories s JOIN files f "
                              "ON f.name = s.name WHERE s.key = ?", (key,))
        return found[0] if found else None

    def by_id(self, file_id: str) -> Story | None:
        """The shown story read from the file whose stem is ``file_id``."""
        found = self._stories(f"SELECT {_STORY_COLUMNS} FROM files f JOIN stories s "
                              "ON s.name = f.name WHERE f.id = ? LIMIT 1", (file_id,))
        return found[0] if found else None

    def position(self, key: str) -> int | None:
        """0-based place of ``key`` in latest order: costs a walk of the places before it
        (cheap for the recent stories that paging asks about)."""
        conn = self.connection()
        row = conn.execute("SELECT updated_at, seq_rank FROM stories WHERE key = ?",
                           (key,)).fetchone()
        if row is None:
            return None
        updated_at, seq_rank = row
        before = conn.execute(
            "SELECT count(*) FROM stories WHERE updated_at > ? OR (updated_at = ? AND "
            "(seq_rank > ? OR (seq_rank = ? AND key < ?)))",
            (updated_at, updated_at, seq_rank, seq_rank, key)).fetchone()[0]
        return int(before)

    def updated_between(self, since: datetime, until: datetime) -> list[Story]:
        """Stories with ``since < updated <= until``, in latest order."""
        return self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories s JOIN files f ON f.name = s.name "
            "WHERE s.updated_at > ? AND s.updated_at <= ? "
            f"{_LATEST}", (int(since.timestamp()), int(until.timestamp())))

    def iter_latest(self, batch: int = 500) -> Iterator[Story]:
        """Every story in latest order, read ``batch`` at a time (keyset paging, so a
        million stories are never held at once and nothing is skipped)."""
        conn = self.connection()
        after: tuple[int, int, str] | None = None
        while True:
            where, args = "", cast(tuple[object, ...], ())
            if after is not None:  # the rows after the last one read, in latest order
                where = ("WHERE s.updated_at <= ? AND (s.updated_at < ? OR (s.seq_rank < ? "
                         "OR (s.seq_rank = ? AND s.key > ?))) ")
                args = (after[0], after[0], after[1], after[1], after[2])
            rows = conn.execute(
                f"SELECT {_STORY_COLUMNS}, s.updated_at, s.seq_rank FROM stories s "
                f"JOIN files f ON f.name = s.name {where}{_LATEST} LIMIT ?",
                (*args, batch)).fetchall()
            for row in rows:
                yield self._story(row[:9])
            if len(rows) < batch:
                return
            after = (rows[-1][9], rows[-1][10], rows[-1][2])

    def keys_from(self, prefix: str, limit: int) -> list[str]:
        """Keys starting with ``prefix``, sorted, at most ``limit``."""
        return [row[0] for row in self.connection().execute(
            "SELECT key FROM stories WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit))]

    def neighbours(self, key: str) -> tuple[str | None, str | None]:
        """The keys just before and just after ``key`` in sorted order."""
        conn = self.connection()
        before = conn.execute("SELECT max(key) FROM stories WHERE key < ?", (key,)).fetchone()
        after = conn.execute("SELECT min(key) FROM stories WHERE key > ?", (key,)).fetchone()
        return before[0], after[0]

    def by_keys(self, keys: Sequence[str]) -> list[Story]:
        """The shown stories of ``keys``, in latest order."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories s JOIN files f ON f.name = s.name "
            f"WHERE s.key IN ({marks}) ORDER BY s.updated_at DESC, s.seq_rank DESC, s.key",
            list(keys))

    def changes(self, after: int, limit: int = 1000) -> IndexChanges:
        """Shown stories that changed after change number ``after`` (by any process)."""
        conn = self.connection()
        upto = self.last_change()
        if upto <= after:
            return IndexChanges((), (), (), (0, 0, 0), upto)
        select = (f"SELECT {_STORY_COLUMNS} FROM stories s JOIN files f ON f.name = s.name "
                  "WHERE s.change > ? AND s.change <= ? AND s.first_change {} ? "
                  "ORDER BY s.updated_at DESC, s.seq_rank DESC, s.key LIMIT ?")
        new = self._stories(select.format(">"), (after, upto, after, limit))
        updated = self._stories(select.format("<="), (after, upto, after, limit))
        counted = conn.execute(
            "SELECT sum(first_change > ?), sum(first_change <= ?) FROM stories "
            "WHERE change > ? AND change <= ?", (after, after, after, upto)).fetchone()
        removed = [self._removed_story(str(key), str(data)) for key, data in conn.execute(
            "SELECT key, story FROM removed WHERE change > ? AND change <= ? LIMIT ?",
            (after, upto, limit))]
        removed_count = conn.execute("SELECT count(*) FROM removed WHERE change > ? AND "
                                     "change <= ?", (after, upto)).fetchone()[0]
        return IndexChanges(tuple(new), tuple(updated), tuple(removed),
                            (int(counted[0] or 0), int(counted[1] or 0), int(removed_count)),
                            upto)

    def _removed_story(self, key: str, data: str) -> Story:
        """A removed story as it was last shown."""
        row = json.loads(data)
        if row is None:  # not kept: only its key is known
            stamp = datetime.fromtimestamp(0, self.tz)
            return Story(id=key, key=key, seq=None, title="", published=stamp,
                         updated=stamp, body=StoryBody(), source="")
        name, key, file_id, seq, title, published, updated, body = row
        return Story(id=file_id, key=key, seq=None if seq is None else int(seq), title=title,
                     published=self._moment(published), updated=self._moment(updated),
                     body=_body_of(body), source=name)

    def _moment(self, text: str) -> datetime:
        """A stored time back in the story time zone (as the parser made it)."""
        return datetime.fromisoformat(text).astimezone(self.tz)

    # -- search -----------------------------------------------------------------------
    def search(self, query: SearchQuery, offset: int = 0, limit: int = 10) -> SearchHits:
        """Stories matching every word and phrase of ``query``: those matching all of it
        in their title first, then the others. Each group is ranked by relevance (bm25,
        the title weighing ten times the body, newer first on a tie) while the query has
        at most :data:`RANK_LIMIT` matches; beyond that, newest first, which the engine
        answers without looking at every match. Results are counted and paged up to a
        thousand."""
        everything = query.fts_expression()
        if everything is None:
            return SearchHits((), 0, False, True)
        in_title = query.fts_expression(column="title")
        assert in_title is not None
        elsewhere = f"({everything}) NOT ({in_title})"
        conn = self.connection()
        total = _count(conn, everything, max(RANK_LIMIT, _COUNT_LIMIT) + 1)
        ranked = total <= RANK_LIMIT
        more = total > _COUNT_LIMIT
        total = min(total, _COUNT_LIMIT)
        end = min(offset + limit, total)
        if offset >= end:
            return SearchHits((), total, more, ranked)
        titled = _count(conn, in_title, end + 1)
        ids: list[int] = []
        if offset < titled:
            ids += _matches(conn, in_title, ranked, offset, min(end, titled) - offset)
        if end > titled:
            start = max(offset - titled, 0)
            ids += _matches(conn, elsewhere, ranked, start, end - titled - start)
        return SearchHits(tuple(self._by_ids(ids)), total, more, ranked)

    def _by_ids(self, ids: Sequence[int]) -> list[Story]:
        """The stories of ``ids``, in that order."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        found = {story_id: story for story_id, story in zip(
            *self._ids_and_stories(f"SELECT {_STORY_COLUMNS} FROM stories s JOIN files f "
                                   f"ON f.name = s.name WHERE s.id IN ({marks})", ids),
            strict=True)}
        return [found[i] for i in ids if i in found]

    def _ids_and_stories(self, sql: str, args: Sequence[object]
                         ) -> tuple[list[int], list[Story]]:
        rows = self.connection().execute(sql, args).fetchall()
        return [row[0] for row in rows], [self._story(row) for row in rows]


def _count(conn: sqlite3.Connection, expression: str, cap: int) -> int:
    """Matches of ``expression``, counted up to ``cap``."""
    return int(conn.execute("SELECT count(*) FROM (SELECT rowid FROM search WHERE search "
                            "MATCH ? LIMIT ?)", (expression, cap)).fetchone()[0])


def _matches(conn: sqlite3.Connection, expression: str, ranked: bool, offset: int,
             limit: int) -> list[int]:
    order = "bm25(search, 10.0, 1.0), rowid DESC" if ranked else "rowid DESC"
    return [int(row[0]) for row in conn.execute(
        f"SELECT rowid FROM search WHERE search MATCH ? ORDER BY {order} LIMIT ? OFFSET ?",
        (expression, limit, offset))]


def _file_row(row: tuple[str, int, int, int, bytes | None, int | None, str | None, str | None]
              ) -> FileRow:
    name, size, mtime, mode, link, line, message, key = row
    error = StoryError(message, line or 1, name) if message is not None else None
    return FileRow(name, (size, mtime, mode, link_text(link)), error, key)


def link_bytes(link: str | None) -> bytes | None:
    """A link target as stored: the file system's bytes (a path need not be UTF-8)."""
    return None if link is None else os.fsencode(link)


def link_text(stored: bytes | str | None) -> str | None:
    return None if stored is None else os.fsdecode(stored)


def _remove_files(path: Path) -> None:
    """Remove a temporary index and its folder."""
    for suffix in ("", "-wal", "-shm", ".replaced"):
        with contextlib.suppress(OSError):
            path.with_name(path.name + suffix).unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()
