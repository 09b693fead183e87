"""Timestamp lines such as ``Mar 30, 2025, 12:01 AM`` (STORY_FORMAT.md rule 2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["looks_like_timestamp", "read_timestamp"]

# The *shape*: a month word, a day number, a comma, a 4-digit year, a comma, H:MM, AM/PM.
# Whether it is a real time is a second question, so that `Feb 30` is an error on its line
# instead of a missing timestamp.
_SHAPE = re.compile(
    r"^[ \t]*([A-Za-z]+)[ \t]+([0-9]{1,2}),[ \t]*([0-9]{4}),"
    r"[ \t]*([0-9]{1,2}):([0-9]{2})[ \t]*([AaPp][Mm])[ \t]*$"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}


_FIXED_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Zulu", "Etc/Zulu", "UCT"})


def looks_like_timestamp(line: str) -> re.Match[str] | None:
    return _SHAPE.match(line)


def read_timestamp(shape: re.Match[str], tz: ZoneInfo) -> datetime | None:
    """The aware time a timestamp-shaped line names, or None if it is not a real time.

    Wall times in a DST gap or overlap take the offset in force before the change (fold=0)
    and are normalised through UTC, so a gap time moves forward by the gap.
    """
    month_word, day, year, hour, minute, meridiem = shape.groups()
    month = _MONTHS.get(month_word.lower())
    hour_12 = int(hour)
    if month is None or not 1 <= hour_12 <= 12:
        return None
    hour_24 = hour_12 % 12 + (12 if meridiem.lower() == "pm" else 0)
    try:
        wall = datetime(int(year), month, int(day), hour_24, int(minute), tzinfo=tz)
    except ValueError:
        return None
    if tz.key in _FIXED_ZONES:  # no gaps or overlaps: nothing to normalise
        return wall
    return wall.astimezone(UTC).astimezone(tz)
