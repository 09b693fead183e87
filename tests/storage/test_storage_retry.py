"""Which database errors are ridden out, and when the retry gives up."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa

from bot.status import ProcessStatus
from bot.storage.retry import DatabaseRetry, DatabaseUnavailable, is_transient


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("error", "transient"), [
    (sa.OperationalError("UPDATE", {}, Exception("database is locked")), True),
    (sa.OperationalError("UPDATE", {}, Exception("attempt to write a readonly database")),
     True),
    (sa.DBAPIError("SELECT", {}, PgError("57P01")), True),  # pg_terminate_backend
    (sa.DBAPIError("SELECT", {}, PgError("08006")), True),  # connection failure
    (sa.DBAPIError("SELECT", {}, PgError("40001")), True),  # serialization failure
    (ConnectionRefusedError(111, "refused"), True),  # the server restarting
    (sa.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), False),
    (sa.ProgrammingError("SELECT", {}, Exception("no such table")), False),
    (sa.DBAPIError("SELECT", {}, PgError("22003")), False),  # numeric value out of range
    (OverflowError("int too large"), False),
])
def test_transient_errors_are_told_from_those_a_retry_cannot_fix(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


async def test_the_retry_gives_up_after_give_up_seconds_of_one_outage() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    status = ProcessStatus()
    retry = DatabaseRetry(10.0, status, clock=lambda: now[0], sleep=sleep)

    async def locked() -> None:
        raise sa.OperationalError("UPDATE", {}, Exception("database is locked"))

    with pytest.raises(DatabaseUnavailable, match=r"has not answered for 1[0-9]s"):
        await retry.run(locked)
    assert max(waits) == 5.0 and waits[:3] == [0.25, 0.5, 1.0]  # capped backoff
    assert status.problems == {"database": "database not answering: database is locked"}

    async def fine() -> int:
        return 7

    assert await retry.run(fine) == 7
    assert status.problems == {} and retry.outages == 1


async def test_an_error_no_retry_can_fix_is_raised_at_once() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise sa.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(sa.IntegrityError):
        await DatabaseRetry(10.0).run(broken)
    assert calls == 1
