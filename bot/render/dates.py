"""Dates and times as a reader sees them, in the reader's zone and in English.

Names come from fixed tables rather than ``strftime`` so output never depends on the
process locale.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

__all__ = ["format_day", "format_moment"]

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _zone_label(moment: datetime) -> str:
    """The zone abbreviation (CEST); numeric-only names (``-03``) are written as people
    write offsets, the way every zone is shown: UTC-03:00."""
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        offset = moment.strftime("%z")
        return f"UTC{offset[:3]}:{offset[3:5]}"
    return name


def format_moment(moment: datetime, tz: tzinfo) -> str:
    """``31 Mar 2025, 11:15 CEST``: an aware ``moment`` shown in zone ``tz``."""
    local = moment.astimezone(tz)
    month = _MONTHS[local.month - 1][:3]
    clock = f"{local.hour:02d}:{local.minute:02d}"
    return f"{local.day} {month} {local.year}, {clock} {_zone_label(local)}"


def format_day(day: date) -> str:
    """``Monday, 31 March 2025``: the reader's local date, as a briefing header shows it."""
    return f"{_WEEKDAYS[day.weekday()]}, {day.day} {_MONTHS[day.month - 1]} {day.year}"
