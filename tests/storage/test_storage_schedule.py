"""The next_due_at rule, including both DST edge cases (pure, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.storage.schedule import first_due_after, local_date_of, scheduled_instant

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("day", "at", "expected_utc"),
    [
        # ordinary winter and summer days
        (date(2025, 1, 15), time(8, 0), datetime(2025, 1, 15, 7, 0, tzinfo=UTC)),
        (date(2025, 7, 15), time(8, 0), datetime(2025, 7, 15, 6, 0, tzinfo=UTC)),
        # spring forward: 02:30 does not exist, moves forward by the gap to 03:30 CEST
        (date(2025, 3, 30), time(2, 30), datetime(2025, 3, 30, 1, 30, tzinfo=UTC)),
        # fall back: 02:30 happens twice, the first (CEST) occurrence is taken
        (date(2025, 10, 26), time(2, 30), datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
    ],
)
def test_scheduled_instant(day: date, at: time, expected_utc: datetime) -> None:
    instant = scheduled_instant(day, at, BERLIN)
    assert instant == expected_utc
    assert instant.tzinfo is UTC
    assert local_date_of(instant, BERLIN) == day


def test_spring_forward_gap_reads_as_0330_cest() -> None:
    local = scheduled_instant(date(2025, 3, 30), time(2, 30), BERLIN).astimezone(BERLIN)
    assert (local.hour, local.minute, local.utcoffset()) == (3, 30, timedelta(hours=2))
    assert local.tzname() == "CEST"


@pytest.mark.parametrize(
    ("now", "after", "expected"),
    [
        # before today's time: today
        (datetime(2025, 1, 15, 6, 0, tzinfo=UTC), None, datetime(2025, 1, 15, 7, 0, tzinfo=UTC)),
        # exactly at today's time: strictly after, so tomorrow
        (datetime(2025, 1, 15, 7, 0, tzinfo=UTC), None, datetime(2025, 1, 16, 7, 0, tzinfo=UTC)),
        # today already had its briefing: tomorrow even though today's time is ahead
        (datetime(2025, 1, 15, 6, 0, tzinfo=UTC), date(2025, 1, 15),
         datetime(2025, 1, 16, 7, 0, tzinfo=UTC)),
        # a last date in the future (zone moved west) pushes further
        (datetime(2025, 1, 15, 6, 0, tzinfo=UTC), date(2025, 1, 16),
         datetime(2025, 1, 17, 7, 0, tzinfo=UTC)),
        # just before midnight UTC, Berlin is already on the next date
        (datetime(2025, 1, 15, 23, 30, tzinfo=UTC), None,
         datetime(2025, 1, 16, 7, 0, tzinfo=UTC)),
    ],
)
def test_first_due_after(now: datetime, after: date | None, expected: datetime) -> None:
    assert first_due_after(now, time(8, 0), BERLIN, after) == expected


def test_first_due_after_refuses_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        first_due_after(datetime(2025, 1, 1), time(8, 0), BERLIN)  # noqa: DTZ001


def test_far_east_and_west_zones() -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    kiritimati = first_due_after(now, time(7, 0), ZoneInfo("Pacific/Kiritimati"))
    assert kiritimati > now
    assert kiritimati.astimezone(ZoneInfo("Pacific/Kiritimati")).date() == date(2025, 6, 2)
    pago = first_due_after(now, time(7, 0), ZoneInfo("Pacific/Pago_Pago"))
    assert pago.astimezone(ZoneInfo("Pacific/Pago_Pago")).hour == 7
