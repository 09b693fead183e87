"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time-zone-aware timestamp: SQLAlchemy would silently drop ``tzinfo`` and hand
back naive values, and one naive datetime compared with an aware one is a crash at 3 a.m.
:class:`UtcDateTime` therefore accepts only aware datetimes, stores UTC, and always returns
aware UTC datetimes, whichever engine is underneath.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["IdInteger", "UtcDateTime"]


def IdInteger() -> TypeEngine[int]:
    """BIGINT primary keys, except on SQLite where only INTEGER autoincrements (ROWID)."""
    return BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive values are refused at bind time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: only aware datetimes are stored")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - driver contract
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
