"""A reader's briefing preferences as typed text: a time of day and a time zone.

Readers type zones loosely (``europe/berlin``, ``Berlin``, ``UTC+2``) and make typos; each
answer is either a value or a :class:`PreferenceError` whose message says what was wrong,
suggests the closest zone names, and shows an example. Zones are shown back the way people
write them (:func:`zone_label`): ``Etc/GMT-2`` is stored, because it is the IANA key, but a
reader reads ``UTC+02:00``, never POSIX's inverted sign.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import time, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from bot.errors import BotError

__all__ = [
    "NOT_CIVIL_ZONES",
    "PreferenceError",
    "is_civil_zone",
    "parse_schedule",
    "parse_time_of_day",
    "parse_zone_name",
    "zone_label",
]

_CLOCK = re.compile(r"^([01]?[0-9]|2[0-3])[:.h]([0-5][0-9])$")
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*([0-9]{1,2})(?::?([0-9]{2}))?$")
_POSIX_OFFSET = re.compile(r"^Etc/GMT([+-])([0-9]{1,2})$")
# Names the zone database ships that are not a place's civil time: ``localtime`` is the
# server's own zone (whatever that is), ``Factory`` a placeholder ("-00"), ``posixrules``
# a template; ``posix/`` and ``right/`` are copies (``right/`` counts leap seconds).
NOT_CIVIL_ZONES = frozenset({"localtime", "factory", "posixrules"})
_NOT_CIVIL_PREFIXES = ("systemv/", "posix/", "right/")
_UTC_NAMES = frozenset({"utc", "etc/utc", "uct", "etc/uct", "universal", "etc/universal",
                        "zulu", "etc/zulu", "gmt0", "gmt+0", "gmt-0", "etc/gmt0",
                        "etc/gmt+0", "etc/gmt-0"})


class PreferenceError(BotError):
    """The reader's input is not a usable time or zone; the message is shown to them."""


def is_civil_zone(name: str) -> bool:
    """Whether ``name`` names a place's civil time, rather than the server's zone
    (``localtime``), a placeholder (``Factory``) or a copy kept for other systems."""
    lowered = name.strip().lower()
    return lowered not in NOT_CIVIL_ZONES and not lowered.startswith(_NOT_CIVIL_PREFIXES)


def zone_label(zone: tzinfo | str) -> str:
    """A zone (or its key) as people write it: ``Europe/Berlin``, ``UTC``, ``UTC+02:00``
    (for the POSIX-style ``Etc/GMT-2``, whose sign is the reverse of what it means)."""
    key = zone if isinstance(zone, str) else str(getattr(zone, "key", None) or zone)
    if key.lower() in _UTC_NAMES:
        return "UTC"
    offset = _POSIX_OFFSET.match(key)
    if offset:
        sign = "-" if offset.group(1) == "+" else "+"
        return f"UTC{sign}{int(offset.group(2)):02d}:00"
    return key


@cache
def _zones() -> dict[str, str]:
    """Lower-case IANA name → canonical name (read once per process)."""
    names = sorted(name for name in available_timezones() if is_civil_zone(name))
    return {name.lower(): name for name in names}


@cache
def _cities() -> dict[str, list[str]]:
    cities: dict[str, list[str]] = {}
    for lowered, name in _zones().items():
        if "/" in lowered:
            cities.setdefault(lowered.rsplit("/", 1)[1], []).append(name)
    return cities


def parse_time_of_day(text: str) -> time:
    """``7:30``, ``07:30``, ``19.05`` or ``7h30`` (24-hour clock)."""
    if not text.strip():
        raise PreferenceError("Give a time of day in 24-hour HH:MM, e.g. 07:30.")
    match = _CLOCK.match(text.strip().lower())
    if not match:
        raise PreferenceError(f"“{text[:20]}” is not a time of day. Use 24-hour HH:MM, "
                              "e.g. 07:30 or 18:00.")
    return time(int(match.group(1)), int(match.group(2)))


def parse_zone_name(text: str) -> ZoneInfo:
    """An IANA zone in any case, a unique city name, or a whole-hour ``UTC±N`` offset."""
    raw = text.strip()
    if not raw:
        raise PreferenceError("Give a time zone, e.g. Europe/Berlin or UTC+2.")
    lowered = raw.lower().replace(" ", "_")
    zones = _zones()
    if not is_civil_zone(lowered):
        copy_of = zones.get(lowered.split("/", 1)[-1]) if "/" in lowered else None
        hint = f" Did you mean {copy_of}?" if copy_of else ""
        raise PreferenceError(f"“{raw[:40]}” is not a place's time zone.{hint} Use a name "
                              "like Europe/Berlin or America/New_York, or an offset like UTC+2.")
    if lowered in zones:
        return ZoneInfo(zones[lowered])
    if lowered in ("utc", "gmt", "z"):
        return ZoneInfo("UTC")
    offset = _OFFSET.match(raw.lower())
    if offset:
        return _offset_zone(offset.group(1), int(offset.group(2)), offset.group(3))
    cities = _cities().get(lowered, [])
    if len(cities) == 1:
        return ZoneInfo(cities[0])
    suggestions = cities or [zones[name] for name in difflib.get_close_matches(
        lowered, zones, n=3, cutoff=0.6)]
    if not suggestions:
        city_matches = difflib.get_close_matches(lowered, _cities(), n=3, cutoff=0.7)
        suggestions = [z for city in city_matches for z in _cities()[city]][:3]
    hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
    raise PreferenceError(f"“{raw[:40]}” is not a time zone I know.{hint} Use a name like "
                          "Europe/Berlin or America/New_York, or an offset like UTC+2.")


def parse_schedule(args: Sequence[str], at: time, zone: ZoneInfo) -> tuple[time, ZoneInfo]:
    """``[HH:MM] [ZONE]`` in either order; what is missing keeps the given default."""
    if len(args) > 2:
        raise PreferenceError("Give at most a time and a time zone.")
    for arg in args:
        if arg[:1].isdigit():
            at = parse_time_of_day(arg)
        else:
            zone = parse_zone_name(arg)
    return at, zone


def _offset_zone(sign: str, hours: int, minutes: str | None) -> ZoneInfo:
    if minutes not in (None, "00") or hours > (14 if sign == "+" else 12):
        raise PreferenceError("Only whole-hour offsets from UTC-12 to UTC+14 work as offsets; "
                              "for others use a place name, e.g. Asia/Kolkata.")
    if hours == 0:
        return ZoneInfo("UTC")
    # POSIX-style Etc zones have the sign reversed: UTC+2 is Etc/GMT-2.
    return ZoneInfo(f"Etc/GMT{'-' if sign == '+' else '+'}{hours}")
