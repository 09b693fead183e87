"""Units of the Telegram layer: callback data, keyboards, throttling, token redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import Settings
from bot.stories.model import Story, StoryBody
from bot.telegram.callbacks import LatestPage, OpenStory, SearchPage, parse_callback
from bot.telegram.keyboards import deep_link, latest_keyboard
from bot.telegram.redaction import REDACTED, TokenRedactingFilter
from bot.telegram.runner import run_polling
from bot.telegram.throttle import ThrottleVerdict, UserThrottle

TOKEN = "123456789:AAHsecretSECRETsecret0123456789abcdef"


def story(key: str) -> Story:
    moment = datetime(2025, 3, 31, 9, 0, tzinfo=UTC)
    return Story(id=key, key=key, seq=None, title=key, published=moment, updated=moment,
                 body=StoryBody(("h",)), source=f"{key}.txt")


@pytest.mark.parametrize("action", [
    OpenStory("a" * 40), LatestPage(20, "o", "press-release-harbour-authority"),
    LatestPage(1, "n", "5f0c2a9e41d7b3c8"), SearchPage("deadbeef", 12)])
def test_callback_data_round_trips_within_64_bytes(
        action: OpenStory | LatestPage | SearchPage) -> None:
    data = action.encode()
    assert len(data.encode()) <= 64
    assert parse_callback(data) == action


@pytest.mark.parametrize("data", [None, "", "o:", "o:UPPER", "l:0:o:abc", "l:21:o:abc",
                                  "l:5:x:abc", "s:abc:-1", "o:" + "a" * 41, "zz:1", "o:a b"])
def test_malformed_callback_data_is_rejected(data: str | None) -> None:
    assert parse_callback(data) is None


@given(st.text(max_size=80))
def test_arbitrary_callback_data_never_crashes(data: str) -> None:
    parse_callback(data)


def test_latest_keyboard_has_open_buttons_and_paging_by_key() -> None:
    page = [story(f"k{n}") for n in range(7)]
    keyboard = latest_keyboard(page, 6, 7, has_newer=True, has_older=True)
    rows = keyboard.inline_keyboard
    assert [b.text for b in rows[0]] == ["📖 6", "📖 7", "📖 8", "📖 9", "📖 10"]
    assert [b.text for b in rows[-1]] == ["‹ Newer", "Older ›"]
    assert rows[-1][0].callback_data == "l:7:n:k0"
    assert rows[-1][1].callback_data == "l:7:o:k6"
    first = latest_keyboard(page[:2], 1, 2, has_newer=False, has_older=False)
    assert [b.text for row in first.inline_keyboard for b in row] == ["📖 1", "📖 2"]


def test_deep_links_fit_telegram_start_payload_rules() -> None:
    link = deep_link("story_bot", story("press-release-harbour-authority"))
    payload = link.split("start=")[1]
    assert len(payload) <= 64 and payload.replace("_", "").replace("-", "").isalnum()


def test_throttle_allows_limit_then_notifies_once_then_recovers() -> None:
    now = [0.0]
    throttle = UserThrottle(2, 60, clock=lambda: now[0])
    assert [throttle.check(1) for _ in range(4)] == [
        ThrottleVerdict.ALLOW, ThrottleVerdict.ALLOW, ThrottleVerdict.NOTIFY,
        ThrottleVerdict.IGNORE]
    assert throttle.check(2) is ThrottleVerdict.ALLOW
    now[0] = 60.0
    assert throttle.check(1) is ThrottleVerdict.ALLOW
    now[0] = 500.0
    throttle.forget_idle()
    assert throttle.check(1) is ThrottleVerdict.ALLOW


def test_redaction_covers_message_args_and_tracebacks() -> None:
    redactor = TokenRedactingFilter(TOKEN)
    record = logging.LogRecord("httpx", logging.INFO, "f", 1, "POST %s", (
        f"https://api.telegram.org/bot{TOKEN}/getMe",), None)
    error = ValueError(f"failed for {TOKEN.split(':')[1]}")
    record.exc_info = (ValueError, error, None)
    assert redactor.filter(record)
    formatted = logging.Formatter().format(record)
    assert TOKEN.split(":")[1] not in formatted
    assert formatted.count(REDACTED) == 2


def test_run_without_a_token_explains_how_to_set_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert run_polling(Settings()) == 2
    err = capsys.readouterr().err
    assert "TELEGRAM_BOT_TOKEN" in err and "sandbox" in err
