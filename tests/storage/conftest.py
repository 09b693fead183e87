"""Storage tests run against real databases (see tests/database_fixtures.py)."""

from tests.database_fixtures import Clock, clock, db, open_db

__all__ = ["Clock", "clock", "db", "open_db"]
