"""The tables of the current schema version, as SQLAlchemy Core metadata.

Rules that keep upgrades honest (see :mod:`bot.storage.migrations`):

* Every change to a table here comes with a new migration step that changes existing
  databases the same way, and ``SCHEMA_VERSION`` goes up by one.
* A new table (for example ``broadcasts`` in version 2) is added here and created by its
  step with ``table.create(conn)``; nothing else needs to change.

Datetimes are :class:`~bot.storage.columns.UtcDateTime` (aware UTC in, aware UTC out).
``subscriptions.next_due_at`` is NULL unless the subscription is active, not paused and in
daily mode, so the indexed range scan of the due scan only ever touches rows that are due.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    text,
    true,
)

from bot.storage.columns import IdInteger, UtcDateTime

__all__ = [
    "DUE_INDEX",
    "SCHEMA_VERSION",
    "build_metadata",
]

SCHEMA_VERSION = 7
DUE_INDEX = "ix_subscriptions_due"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def may_be_due(subscriptions: Table) -> ColumnElement[bool]:
    """The subscriptions the due scan may brief: its query's condition and, written the
    same way, its index's, so both databases see that the index holds every answer."""
    t = subscriptions
    return and_(t.c.active.is_(True), t.c.paused.is_(False), t.c.mode == "daily")


def build_metadata() -> MetaData:
    """A fresh MetaData holding every table of the current version.

    Built by a function (not at import time) so tests and migration steps can hold their
    own copies without sharing mutable module state.
    """
    md = MetaData(naming_convention=NAMING)

    Table(
        "schema_version",
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
    )

    Table(
        "subscriptions",
        md,
        Column("id", IdInteger(), primary_key=True, autoincrement=True),
        Column("chat_id", BigInteger, nullable=False),
        Column("thread_id", BigInteger, nullable=False, server_default=text("0")),
        Column("chat_type", String(16), nullable=False),
        Column("delivery_time", String(5), nullable=False),
        Column("timezone", String(64), nullable=False),
        Column("mode", String(8), nullable=False, server_default=text("'daily'")),
        Column("follows", JSON, nullable=False),
        Column("paused", Boolean, nullable=False, server_default=false()),
        Column("active", Boolean, nullable=False, server_default=true()),
        Column("ended_reason", String(200)),
        Column("ended_at", UtcDateTime),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("last_digest_date", Date),
        Column("last_digest_at", UtcDateTime),
        Column("next_due_at", UtcDateTime),
        UniqueConstraint("chat_id", "thread_id"),
        Index(None, "next_due_at"),
        Index(None, "mode", "active"),
    )
    subscriptions = md.tables["subscriptions"]
    # The due scan's own index (version 7): exactly the rows it may brief, in the order it
    # takes them. Without it PostgreSQL, with statistics older than a bulk import, chose
    # the (mode, active) index and read a million rows for each batch of 500.
    due = may_be_due(subscriptions)
    Index(DUE_INDEX, subscriptions.c.next_due_at, postgresql_where=due, sqlite_where=due)

    Table(
        "payloads",
        md,
        Column("id", String(64), primary_key=True),
        Column("body", JSON, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )

    Table(
        "deliveries",
        md,
        Column("id", IdInteger(), primary_key=True, autoincrement=True),
        Column("kind", String(16), nullable=False),
        Column("ref", String(200), nullable=False),
        Column("chat_id", BigInteger, nullable=False),
        Column("thread_id", BigInteger, nullable=False, server_default=text("0")),
        Column(
            "subscription_id",
            IdInteger(),
            ForeignKey("subscriptions.id", ondelete="SET NULL"),
        ),
        Column("payload_id", String(64), ForeignKey("payloads.id"), nullable=False),
        Column("state", String(16), nullable=False),
        Column("parts_sent", Integer, nullable=False, server_default=text("0")),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("uncertain_count", Integer, nullable=False, server_default=text("0")),
        Column("not_before", UtcDateTime, nullable=False),
        Column("error", Text),
        Column("claimed_by", String(64)),
        Column("claimed_at", UtcDateTime),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("sent_at", UtcDateTime),
        # version 3: a fresh token per claim; a worker settles a row only while the row
        # still carries its token (a worker that lost its lease is fenced off).
        Column("claim_token", String(32)),
        UniqueConstraint("kind", "ref", "chat_id", "thread_id"),
        Index(None, "state", "not_before"),
        Index(None, "chat_id"),
        Index(None, "created_at"),
    )

    Table(  # version 2
        "broadcasts",
        md,
        Column("id", IdInteger(), primary_key=True, autoincrement=True),
        Column("admin_id", BigInteger, nullable=False),
        Column("admin_chat_id", BigInteger, nullable=False),
        Column("payload_id", String(64), ForeignKey("payloads.id"), nullable=False),
        Column("audience", JSON, nullable=False),
        Column("state", String(16), nullable=False),
        Column("status_chat_id", BigInteger),
        Column("status_message_id", BigInteger),
        Column("total", Integer, nullable=False, server_default=text("0")),
        Column("created_at", UtcDateTime, nullable=False),
        Column("started_at", UtcDateTime),
        Column("finished_at", UtcDateTime),
        Index(None, "state"),
    )

    Table(  # version 3: one row per bot process, its heartbeat is the lease on its claims
        "workers",
        md,
        Column("id", String(64), primary_key=True),
        Column("role", String(16), nullable=False),
        Column("host", String(255), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("started_at", UtcDateTime, nullable=False),
        Column("last_seen", UtcDateTime, nullable=False),
        Column("last_scan_at", UtcDateTime),
        Column("stopped_at", UtcDateTime),
        Column("problem", Text),
        Index(None, "last_seen"),
    )

    Table(  # version 4: what a chat chose for itself, subscribed or not (its time zone)
        "chat_preferences",
        md,
        Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
        Column("thread_id", BigInteger, primary_key=True, autoincrement=False),
        Column("timezone", String(64)),
        Column("updated_at", UtcDateTime, nullable=False),
    )

    Table(  # version 5: what a fleet of delivery processes shares of the flood limits
        "fleet_state",
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("bulk_paused_until", UtcDateTime),
        Column("updated_at", UtcDateTime, nullable=False),
    )

    Table(
        "known_stories",
        md,
        Column("key", String(64), primary_key=True),
        Column("updated", UtcDateTime, nullable=False),
        Column("seen_at", UtcDateTime, nullable=False),
        # version 6: digests of the version's title, highlights and text, so the alert for
        # the next version says which of them changed (NULL: recorded before version 6)
        Column("title_digest", String(32)),
        Column("highlights_digest", String(32)),
        Column("body_digest", String(32)),
    )
    return md
