"""When is a daily briefing due? Pure functions over dates, clock times and zones.

The scheduled instant of local date D is ``datetime.combine(D, time, zone)`` with
``fold=0`` normalised through UTC. Python's zoneinfo then gives the useful answers for
the two DST edge cases without special code: a time inside a spring-forward gap moves
forward by the gap (02:30 Europe/Berlin on 2025-03-30 is 03:30 CEST), and an ambiguous
fall-back time takes its first occurrence (02:30 CEST on 2025-10-26). Every local date
has exactly one scheduled instant, which is what makes "one briefing per local date" hold.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["first_due_after", "latest_due_at_or_before", "local_date_of", "scheduled_instant"]


def scheduled_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of the briefing for local date ``day``."""
    local = datetime.combine(day, at.replace(fold=0, tzinfo=None), tzinfo=zone)
    return local.astimezone(UTC)


def local_date_of(instant: datetime, zone: ZoneInfo) -> date:
    """The local calendar date of an aware instant in ``zone``."""
    return instant.astimezone(zone).date()


def first_due_after(now: datetime, at: time, zone: ZoneInfo,
                    after_date: date | None = None) -> datetime:
    """First scheduled instant strictly after ``now`` whose local date is > ``after_date``.

    ``after_date`` is the local date of the latest briefing already created; skipping it
    is what stops a time or zone change from producing a second briefing for that date.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    day = local_date_of(now, zone) - timedelta(days=1)
    if after_date is not None and day <= after_date:
        day = after_date + timedelta(days=1)
    while True:
        instant = scheduled_instant(day, at, zone)
        if instant > now:
            return instant
        day += timedelta(days=1)


def latest_due_at_or_before(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The most recent scheduled instant that is not after ``now``."""
    day = local_date_of(now, zone) + timedelta(days=1)
    while True:
        instant = scheduled_instant(day, at, zone)
        if instant <= now:
            return instant
        day -= timedelta(days=1)
