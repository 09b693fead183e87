"""Ordered, numbered schema steps that upgrade a database in place at start-up.

Why not Alembic: the schema is small and the bot must upgrade itself unattended on start;
a list of numbered steps, each run once inside a transaction together with the version
bump, is enough and has no extra moving parts. A step must keep existing rows (add
columns with defaults, create tables, copy data) — never drop user data.

Adding version 2 (e.g. a ``broadcasts`` table): add the table to
:func:`bot.storage.schema.build_metadata`, raise ``SCHEMA_VERSION`` to 2 and append
``Migration(2, "broadcasts", _v2)`` where ``_v2`` runs ``md.tables["broadcasts"].create(conn)``.
If a later version *changes* a table that version 1 created, freeze version 1's definition
inside ``_v1`` first, so a fresh database still walks through the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, MetaData, String, Table, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.errors import StorageError
from bot.storage.columns import UtcDateTime
from bot.storage.schema import DUE_INDEX, NAMING, SCHEMA_VERSION, build_metadata

__all__ = ["MIGRATIONS", "Migration", "current_version", "upgrade"]

_LOG = logging.getLogger(__name__)
# Arbitrary constant: serialises concurrent start-ups on PostgreSQL.
_ADVISORY_LOCK_KEY = 7_244_019_913


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``apply`` runs inside the upgrade transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    md = build_metadata()
    names = ["subscriptions", "payloads", "deliveries"]
    md.create_all(conn, tables=[md.tables[n] for n in names], checkfirst=True)
    # Frozen as version 1 made it: version 6 adds its digest columns.
    frozen = MetaData(naming_convention=NAMING)
    Table("known_stories", frozen,
          Column("key", String(64), primary_key=True),
          Column("updated", UtcDateTime, nullable=False),
          Column("seen_at", UtcDateTime, nullable=False))
    frozen.create_all(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    md = build_metadata()
    md.tables["broadcasts"].create(conn, checkfirst=True)


def _v3(conn: Connection) -> None:
    md = build_metadata()
    # Version 1 creates ``deliveries`` from the current metadata, so a fresh database
    # already has the column; an upgraded one gets it here.
    columns = {c["name"] for c in inspect(conn).get_columns("deliveries")}
    if "claim_token" not in columns:
        conn.execute(text("ALTER TABLE deliveries ADD COLUMN claim_token VARCHAR(32)"))
    md.tables["workers"].create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    md = build_metadata()
    md.tables["chat_preferences"].create(conn, checkfirst=True)


def _v5(conn: Connection) -> None:
    build_metadata().tables["fleet_state"].create(conn, checkfirst=True)


def _v6(conn: Connection) -> None:
    for column in ("title_digest", "highlights_digest", "body_digest"):
        conn.execute(text(f"ALTER TABLE known_stories ADD COLUMN {column} VARCHAR(32)"))


def _v7(conn: Connection) -> None:
    [due] = [i for i in build_metadata().tables["subscriptions"].indexes if i.name == DUE_INDEX]
    due.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "subscriptions, ledger, payloads", _v1),
    Migration(2, "broadcasts", _v2),
    Migration(3, "workers and claim tokens", _v3),
    Migration(4, "chat preferences (a reader's time zone without a subscription)", _v4),
    Migration(5, "the fleet's shared flood state", _v5),
    Migration(6, "digests of each alerted story's title, highlights and text", _v6),
    Migration(7, "the due scan's own index", _v7),
)


def _check_steps(steps: Sequence[Migration]) -> int:
    versions = [s.version for s in steps]
    if versions != list(range(1, len(versions) + 1)):
        raise StorageError(f"migration steps must be numbered 1..n in order, got {versions}")
    return len(versions)


async def current_version(engine: AsyncEngine) -> int:
    """The version recorded in the database (0 for an empty database)."""
    md = build_metadata()
    table = md.tables["schema_version"]
    async with engine.connect() as conn:
        exists = await conn.run_sync(lambda c: c.dialect.has_table(c, "schema_version"))
        if not exists:
            return 0
        value = (await conn.execute(select(table.c.version))).scalar()
        return int(value or 0)


async def upgrade(
    engine: AsyncEngine,
    now: datetime,
    steps: Sequence[Migration] = MIGRATIONS,
    metadata: MetaData | None = None,
) -> int:
    """Bring the database to the newest known version; return that version.

    Each step and its version bump commit together, so a crash mid-upgrade leaves the
    database at the last completed version and the next start continues from there.
    A database newer than this code is refused: running old code on it could corrupt it.
    """
    newest = _check_steps(steps)
    if steps is MIGRATIONS and newest != SCHEMA_VERSION:  # pragma: no cover - dev guard
        raise StorageError(f"SCHEMA_VERSION {SCHEMA_VERSION} has no migration step")
    md = metadata or build_metadata()
    table = md.tables["schema_version"]
    version = 0
    while True:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                )
            await conn.run_sync(lambda c: table.create(c, checkfirst=True))
            row = (await conn.execute(select(table.c.version).where(table.c.id == 1))).first()
            version = int(row[0]) if row else 0
            if version > newest:
                raise StorageError(
                    f"the database schema is version {version}, newer than this bot "
                    f"understands ({newest}); upgrade the bot or use another database"
                )
            if version == newest:
                return version
            step = steps[version]
            _LOG.info("upgrading database schema to version %d: %s", step.version,
                      step.description)
            await conn.run_sync(step.apply)
            if row is None:
                await conn.execute(
                    table.insert().values(id=1, version=step.version, updated_at=now)
                )
            else:
                await conn.execute(
                    table.update()
                    .where(table.c.id == 1)
                    .values(version=step.version, updated_at=now)
                )
