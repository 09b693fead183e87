"""Settings: defaults, the lookup order, and one clear error per bad value."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import time
from pathlib import Path

import pytest
import yaml

from bot.config import (
    BOUNDS,
    MonitoringSettings,
    Settings,
    bundled_story_folder,
    load_settings,
    read_token,
    settings_from_mapping,
)
from bot.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "bot.example.yaml"


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    settings = load_settings()
    assert settings.telegram.base_url == "https://api.telegram.org/bot"
    assert settings.stories.folder == bundled_story_folder()
    assert settings.stories.timezone.key == "UTC"
    assert settings.delivery.rate_per_second == 25
    assert settings.source is None


def test_lookup_order_flag_then_environment_then_default_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bot.yaml").write_text("stories: {timezone: Europe/Berlin}\n")
    (tmp_path / "env.yaml").write_text("stories: {timezone: Asia/Tokyo}\n")
    (tmp_path / "flag.yaml").write_text("stories: {timezone: America/New_York}\n")
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    assert load_settings().stories.timezone.key == "Europe/Berlin"
    monkeypatch.setenv("BOT_CONFIG", str(tmp_path / "env.yaml"))
    assert load_settings().stories.timezone.key == "Asia/Tokyo"
    assert load_settings(tmp_path / "flag.yaml").stories.timezone.key == "America/New_York"


def test_every_key_of_the_example_file_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.briefing.default_time == time(8, 0)
    assert settings.telegram.admin_ids == frozenset()
    assert settings.telegram.http_client == "aiohttp"
    assert settings_from_mapping({"telegram": {"http_client": "httpx"}}).telegram.http_client \
        == "httpx"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"telegram": {"base_url": "https://api.telegram.org"}}, "telegram.base_url"),
        ({"telegram": {"admin_ids": ["alice"]}}, "telegram.admin_ids"),
        ({"telegram": {"tokn": "x"}}, "telegram.tokn"),
        ({"telegram": {"http_client": "requests"}}, "telegram.http_client"),
        ({"stories": {"timezone": "Mars/Base"}}, "stories.timezone"),
        ({"stories": {"rescan_seconds": "often"}}, "stories.rescan_seconds"),
        ({"briefing": {"default_time": "25:99"}}, "briefing.default_time"),
        ({"briefing": {"default_time": 480}}, "briefing.default_time"),
        ({"briefing": {"top_n": 0}}, "briefing.top_n"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"delivery": {"resend_uncertain": "yes"}}, "delivery.resend_uncertain"),
        ({"delivery": []}, "delivery"),
        ({"surprise": 1}, "surprise"),
        (["not", "a", "mapping"], "<root>"),
    ],
)
def test_bad_values_name_their_key(data: object, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def test_unreadable_or_broken_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("telegram: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_settings(broken)


def test_token_comes_only_from_the_environment() -> None:
    assert read_token({"TELEGRAM_BOT_TOKEN": " 123:abc "}) == "123:abc"
    assert read_token({}) is None
    assert read_token({"TELEGRAM_BOT_TOKEN": "  "}) is None


def test_defaults_of_the_new_settings() -> None:
    settings = settings_from_mapping({})
    assert settings.telegram.story_parts_at_once == 5
    assert (settings.delivery.lease_seconds, settings.delivery.give_up_seconds) == (30, 300)
    assert settings.monitoring == MonitoringSettings(port=None, host="127.0.0.1")
    assert settings == Settings()


def test_the_example_file_shows_the_defaults() -> None:
    """An operator copying the example gets the embedded defaults, nothing else."""
    assert dataclasses.replace(load_settings(EXAMPLE), source=None) == Settings()


def _numeric_keys() -> set[str]:
    keys = set()
    for section in dataclasses.fields(Settings):
        if section.name in ("log_level", "source"):
            continue
        for setting in dataclasses.fields(getattr(Settings(), section.name)):
            if str(setting.type).split(" | ")[0] in ("int", "float"):
                keys.add(f"{section.name}.{setting.name}")
    return keys


def test_every_numeric_setting_has_a_range() -> None:
    assert _numeric_keys() == set(BOUNDS)


def _set(key: str, value: object) -> dict[str, dict[str, object]]:
    section, name = key.split(".")
    return {section: {name: value}}


def _read(settings: Settings, key: str) -> object:
    section, name = key.split(".")
    return getattr(getattr(settings, section), name)


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_both_ends_of_each_range_are_accepted(key: str) -> None:
    bounds = BOUNDS[key]
    for end in (bounds.low, bounds.high):
        value = int(end) if bounds.whole else end
        got = _read(settings_from_mapping(_set(key, value)), key)
        assert got == end
        assert type(got) is (int if bounds.whole else float)


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_just_outside_each_range_is_refused(key: str) -> None:
    bounds = BOUNDS[key]
    if bounds.whole:
        outside: tuple[float, ...] = (int(bounds.low) - 1, int(bounds.high) + 1)
    else:
        outside = (math.nextafter(bounds.low, -math.inf), math.nextafter(bounds.high, math.inf))
    for value in outside:
        with pytest.raises(ConfigError) as caught:
            settings_from_mapping(_set(key, value))
        assert str(caught.value) == (
            f"{key}: must be {'a whole' if bounds.whole else 'a'} number "
            f"from {bounds.low:g} to {bounds.high:g}, got {value!r}")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("delivery: {scan_seconds: 0.0001}",
         "delivery.scan_seconds: must be a number from 1 to 3600, got 0.0001"),
        ("delivery: {scan_seconds: 1.0e+300}",
         "delivery.scan_seconds: must be a number from 1 to 3600, got 1e+300"),
        ("delivery: {concurrency: 99999999999999999999999}",
         "delivery.concurrency: must be a whole number from 1 to 1000, "
         "got 99999999999999999999999"),
        ("delivery: {concurrency: 2.5}",
         "delivery.concurrency: must be a whole number from 1 to 1000, got 2.5"),
        ("delivery: {rate_per_second: .nan}",
         "delivery.rate_per_second: must be a number from 0.1 to 1000, got nan"),
        ("delivery: {rate_per_second: .inf}",
         "delivery.rate_per_second: must be a number from 0.1 to 1000, got inf"),
        ("delivery: {rate_per_second: -.inf}",
         "delivery.rate_per_second: must be a number from 0.1 to 1000, got -inf"),
        # YAML 1.1 reads an exponent without a dot as text.
        ("delivery: {rate_per_second: 1e9}",
         "delivery.rate_per_second: must be a number, e.g. 25, got '1e9'"),
        ("delivery: {concurrency: 1e3}",
         "delivery.concurrency: must be a whole number, e.g. 400, got '1e3'"),
        ("delivery: {max_attempts: true}",
         "delivery.max_attempts: must be a whole number, e.g. 5, got True"),
        ("delivery: {lease_seconds: 0}",
         "delivery.lease_seconds: must be a number from 5 to 3600, got 0"),
        ("delivery: {give_up_seconds: .nan}",
         "delivery.give_up_seconds: must be a number from 10 to 86400, got nan"),
        ("telegram: {story_parts_at_once: 0}",
         "telegram.story_parts_at_once: must be a whole number from 1 to 50, got 0"),
        ("stories: {rescan_seconds: often}",
         "stories.rescan_seconds: must be a number, e.g. 600, got 'often'"),
        ("briefing: {top_n: [3]}",
         "briefing.top_n: must be a whole number, e.g. 8, got [3]"),
        ("monitoring: {port: 0}",
         "monitoring.port: must be a whole number from 1 to 65535, got 0"),
        ("monitoring: {port: 65536}",
         "monitoring.port: must be a whole number from 1 to 65535, got 65536"),
        ("monitoring: {port: http}",
         "monitoring.port: must be a whole number, e.g. 8080, got 'http'"),
        ("monitoring: {host: ''}", "monitoring.host: must be a non-empty string"),
        ("monitoring: {host: '  '}", "monitoring.host: must be a non-empty string"),
        ("monitoring: {host: 127}", "monitoring.host: must be a non-empty string"),
        ("delivery: {scan_seconds: 3600}\nbriefing: {catch_up_hours: 1}",
         "briefing.catch_up_hours: must be at least twice delivery.scan_seconds (2 hours), "
         "or briefings found by a scan are skipped as late; got 1"),
    ],
)
def test_out_of_range_values_are_refused_in_one_line(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(yaml.safe_load(yaml_text))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("yaml_text", "key", "expected"),
    [
        ("delivery: {concurrency: 32.0}", "delivery.concurrency", 32),
        ("delivery: {rate_per_second: 1.0e+3}", "delivery.rate_per_second", 1000.0),
        ("delivery: {rate_per_second: 1_000}", "delivery.rate_per_second", 1000.0),
        ("monitoring: {port: 9102}", "monitoring.port", 9102),
        ("monitoring: {host: '0.0.0.0'}", "monitoring.host", "0.0.0.0"),
        ("delivery: {scan_seconds: 3600}\nbriefing: {catch_up_hours: 2}",
         "briefing.catch_up_hours", 2.0),
    ],
)
def test_numbers_written_in_other_ways_are_read(yaml_text: str, key: str,
                                                expected: object) -> None:
    got = _read(settings_from_mapping(yaml.safe_load(yaml_text)), key)
    assert (got, type(got)) == (expected, type(expected))


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_the_example_file_states_each_range(key: str) -> None:
    lines = EXAMPLE.read_text().splitlines()
    name = key.split(".")[1]
    where = next(i for i, line in enumerate(lines) if re.match(rf"\s*(# )?{name}:", line))
    bounds = BOUNDS[key]
    assert f"{bounds.low:g} to {bounds.high:g}" in "\n".join(lines[max(where - 4, 0):where])


def test_paid_broadcasts_are_off_by_default_at_telegrams_figures() -> None:
    delivery = settings_from_mapping({}).delivery
    assert (delivery.paid_broadcast, delivery.paid_rate_per_second,
            delivery.paid_star_price) == (False, 1000.0, 0.1)
    on = settings_from_mapping({"delivery": {"paid_broadcast": True,
                                             "paid_rate_per_second": 500}}).delivery
    assert (on.paid_broadcast, on.paid_rate_per_second) == (True, 500.0)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("delivery: {paid_broadcast: yes please}",
         "delivery.paid_broadcast: must be true or false"),
        ("delivery: {paid_rate_per_second: 5000}",
         "delivery.paid_rate_per_second: must be a number from 1 to 1000, got 5000"),
        ("delivery: {paid_rate_per_second: fast}",
         "delivery.paid_rate_per_second: must be a number, e.g. 1000, got 'fast'"),
        ("delivery: {paid_star_price: 0}",
         "delivery.paid_star_price: must be a number from 0.01 to 10, got 0"),
        ("delivery: {paid_broadcast: true, paid_rate_per_second: 25}",
         "delivery.paid_rate_per_second: must be above delivery.rate_per_second (25) when "
         "delivery.paid_broadcast is true, or paid broadcasts are no faster than free ones; "
         "got 25"),
    ],
)
def test_bad_paid_broadcast_settings_are_refused_in_one_line(yaml_text: str,
                                                             message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(yaml.safe_load(yaml_text))
    assert str(caught.value) == message


def test_a_slow_paid_rate_is_only_refused_when_paid_broadcasts_are_on() -> None:
    off = settings_from_mapping({"delivery": {"paid_rate_per_second": 25}}).delivery
    assert (off.paid_broadcast, off.paid_rate_per_second) == (False, 25.0)
