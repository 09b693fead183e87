"""Settings: defaults, the lookup order, and one clear error per bad value."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.config import (
    bundled_story_folder,
    load_settings,
    read_token,
    settings_from_mapping,
)
from bot.errors import ConfigError


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
    example = Path(__file__).resolve().parent.parent / "config" / "bot.example.yaml"
    settings = load_settings(example)
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
