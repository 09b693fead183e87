"""Opening the database: one async engine, one code path for SQLite and PostgreSQL.

SQLite is the embedded default, so it gets the settings that make it safe for several
concurrent asyncio tasks: WAL (readers never block the writer), a busy timeout (a writer
waits instead of failing), and ``BEGIN IMMEDIATE`` for every transaction. The last one
matters: a deferred transaction that reads and then writes can fail with SQLITE_BUSY
without waiting when another connection wrote in between; taking the write lock up front
makes the busy timeout apply. Dialect differences (upsert syntax, row locks) live in the
few helpers below and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from bot.errors import StorageError
from bot.storage.migrations import MIGRATIONS, Migration, upgrade
from bot.storage.schema import build_metadata

__all__ = ["Database", "Tables"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class Tables:
    """The tables of the current schema, handed to every store."""

    schema_version: Table
    subscriptions: Table
    payloads: Table
    deliveries: Table
    known_stories: Table
    broadcasts: Table
    workers: Table
    chat_preferences: Table
    fleet_state: Table


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Database:
    """An opened, upgraded database. Create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self._reader = reader or engine
        md = build_metadata()
        self.tables = Tables(**{name: md.tables[name] for name in Tables.__slots__})

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        now: datetime | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        echo: bool = False,
        connect_args: Mapping[str, Any] | None = None,
        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ) -> Database:
        """Connect, configure the engine and upgrade the schema in place.

        ``connect_args`` go to the driver (tests use them to pin a PostgreSQL
        ``search_path`` to a throw-away schema); ``busy_timeout_ms`` is how long a SQLite
        statement waits for another process's lock before it fails (and is retried).
        """
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StorageError(f"invalid database URL: {exc}") from exc
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database {backend!r}: use sqlite or postgresql")
        path = _sqlite_path(url) if backend == "sqlite" else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        def make_engine() -> AsyncEngine:
            # Enough connections for the sender's concurrency plus concurrent handlers.
            return create_async_engine(
                url, echo=echo, pool_pre_ping=backend == "postgresql", pool_size=10,
                max_overflow=70, connect_args=dict(connect_args or {}),
            )

        engine = make_engine()
        reader: AsyncEngine | None = None
        if backend == "sqlite":
            _configure_sqlite(engine, immediate=True, busy_timeout_ms=busy_timeout_ms)
            if path is not None:  # a second engine for reads (an in-memory one is private)
                reader = make_engine()
                _configure_sqlite(reader, immediate=False, busy_timeout_ms=busy_timeout_ms)
        db = cls(engine, reader)
        try:
            await upgrade(engine, now or datetime.now(UTC), migrations)
        except (SQLAlchemyError, OSError) as exc:
            await db.close()
            where = parsed.render_as_string(hide_password=True)
            raise StorageError(f"cannot open the database {where}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        return db

    def read(self) -> AsyncConnection:
        """A connection for reads only (``async with db.read() as conn``).

        On SQLite, writes take the database lock up front (``BEGIN IMMEDIATE``) so a
        read-then-write transaction never fails half-way; plain reads must not queue behind
        that lock, so they use their own engine in autocommit (WAL readers never block).
        """
        return self._reader.connect()

    async def close(self) -> None:
        await self.engine.dispose()
        if self._reader is not self.engine:
            await self._reader.dispose()

    def insert(self, table: Table) -> Any:
        """A dialect INSERT that supports ``on_conflict_do_nothing/update``."""
        if self.is_postgresql:
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def insert_ignore(
        self,
        conn: AsyncConnection,
        table: Table,
        values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        conflict: Sequence[str],
    ) -> int:
        """Insert unless a row with the same ``conflict`` columns exists; rows inserted."""
        # RETURNING counts the inserted rows on every driver (asyncpg reports no rowcount
        # for executemany).
        stmt: Insert = (
            self.insert(table)
            .on_conflict_do_nothing(index_elements=list(conflict))
            .returning(*table.primary_key.columns)
        )
        if isinstance(values, Mapping):
            result = await conn.execute(stmt.values(**values))
        else:
            if not values:
                return 0
            result = await conn.execute(stmt, list(values))
        return len(result.all())


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit BEGIN skips DDL statements).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL may itself wait for another connection.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if immediate:
        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
