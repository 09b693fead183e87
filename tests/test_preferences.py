"""Reader preferences: times of day and time zones as people type them."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import load_settings
from bot.errors import ConfigError
from bot.preferences import (
    PreferenceError,
    parse_schedule,
    parse_time_of_day,
    parse_zone_name,
    zone_label,
)

UTC_ZONE = parse_zone_name("UTC")


@pytest.mark.parametrize(("text", "expected"), [
    ("07:30", time(7, 30)), ("7:30", time(7, 30)), ("19.05", time(19, 5)),
    ("7h30", time(7, 30)), ("23:59", time(23, 59)), ("00:00", time(0, 0))])
def test_times_of_day(text: str, expected: time) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["25:99", "24:00", "7", "0800", "noon", "", "12:60", "-1:00"])
def test_bad_times_say_how_to_write_one(text: str) -> None:
    with pytest.raises(PreferenceError, match="HH:MM"):
        parse_time_of_day(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("Europe/Berlin", "Europe/Berlin"), ("europe/berlin", "Europe/Berlin"),
    ("AMERICA/NEW_YORK", "America/New_York"), ("new york", "America/New_York"),
    ("Berlin", "Europe/Berlin"), ("utc", "UTC"), ("UTC+2", "Etc/GMT-2"),
    ("utc-5", "Etc/GMT+5"), ("UTC+0", "UTC"), ("+3", "Etc/GMT-3")])
def test_zones_in_any_case_cities_and_offsets(text: str, expected: str) -> None:
    assert parse_zone_name(text).key == expected


def test_a_typo_gets_did_you_mean() -> None:
    with pytest.raises(PreferenceError, match="Did you mean Europe/Berlin"):
        parse_zone_name("Europ/Berlin")


@pytest.mark.parametrize("text", ["Mars/Base", "UTC+5:30", "UTC+15", ""])
def test_unknown_zones_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(PreferenceError, match=r"Europe/Berlin|Asia/Kolkata"):
        parse_zone_name(text)


def test_schedule_arguments_in_either_order_keep_defaults() -> None:
    assert parse_schedule([], time(8), UTC_ZONE) == (time(8), UTC_ZONE)
    at, zone = parse_schedule(["tokyo", "6:15"], time(8), UTC_ZONE)
    assert (at, zone.key) == (time(6, 15), "Asia/Tokyo")
    with pytest.raises(PreferenceError, match="at most"):
        parse_schedule(["1:00", "UTC", "extra"], time(8), UTC_ZONE)


@given(st.text(max_size=60))
def test_any_input_is_a_value_or_a_preference_error(text: str) -> None:
    for parse in (parse_time_of_day, parse_zone_name):
        try:
            parse(text)
        except PreferenceError as error:
            assert str(error)


@pytest.mark.parametrize(("text", "shown"), [
    ("UTC+2", "UTC+02:00"), ("utc-5", "UTC-05:00"), ("UTC+14", "UTC+14:00"),
    ("UTC-12", "UTC-12:00"), ("Etc/GMT-2", "UTC+02:00"), ("etc/gmt+10", "UTC-10:00"),
    ("UTC+02:00", "UTC+02:00"), ("Etc/UTC", "UTC"), ("GMT0", "UTC"), ("zulu", "UTC"),
    ("Europe/Berlin", "Europe/Berlin"), ("new york", "America/New_York")])
def test_zones_are_shown_as_people_write_them(text: str, shown: str) -> None:
    """POSIX's Etc/GMT-2 means UTC+2: a reader never sees the inverted sign."""
    assert zone_label(parse_zone_name(text)) == shown


@pytest.mark.parametrize("text", ["UTC-13", "UTC-14", "-13"])
def test_offsets_past_utc_minus_12_are_refused_not_a_crash(text: str) -> None:
    with pytest.raises(PreferenceError, match="UTC-12 to UTC\\+14"):
        parse_zone_name(text)


@pytest.mark.parametrize("text", ["localtime", "Factory", "factory", "posixrules",
                                  "posix/Europe/Berlin", "right/UTC"])
def test_names_that_are_not_a_places_zone_are_refused(text: str) -> None:
    with pytest.raises(PreferenceError, match="not a place's time zone"):
        parse_zone_name(text)


def test_a_copy_of_a_zone_suggests_the_zone() -> None:
    with pytest.raises(PreferenceError, match="Did you mean Europe/Berlin"):
        parse_zone_name("posix/Europe/Berlin")


@pytest.mark.parametrize("name", ["localtime", "Factory", "posixrules", "right/UTC"])
@pytest.mark.parametrize("section", ["stories: {timezone: %s}",
                                     "briefing: {default_timezone: %s}"])
def test_config_refuses_names_that_are_not_a_places_zone(
        name: str, section: str, tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(section % name + "\n")
    with pytest.raises(ConfigError, match="not a place's time zone") as error:
        load_settings(config)
    assert ("stories.timezone" if section.startswith("stories") else
            "briefing.default_timezone") in str(error.value)
