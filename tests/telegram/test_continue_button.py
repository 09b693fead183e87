"""The "Continue" button under a long story: its callback data and its fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.stories.model import Story, StoryBody
from bot.telegram.callbacks import MoreParts, parse_callback, parts_tag
from bot.telegram.keyboards import continue_keyboard


def story(key: str) -> Story:
    moment = datetime(2025, 3, 31, 9, 0, tzinfo=UTC)
    return Story(id=key, key=key, seq=None, title=key, published=moment, updated=moment,
                 body=StoryBody(("h",)), source=f"{key}.txt")


def test_the_button_names_the_next_part_and_fits_64_bytes_for_the_longest_key() -> None:
    longest = story("a" * 40)  # story keys are at most 40 characters
    [[button]] = continue_keyboard(longest, 99_998, 99_999, "0123abcd").inline_keyboard
    assert button.text == "Continue (99999/99999)"
    data = button.callback_data
    assert isinstance(data, str) and data.startswith("more:")
    assert len(data.encode()) <= 64
    assert parse_callback(data) == MoreParts("a" * 40, 99_998, "0123abcd")


@pytest.mark.parametrize("data", [
    "more:", "more:abc:5", "more:abc:5:0123abc", "more:abc:5:0123abcde", "more:ABC:5:0123abcd",
    "more:abc:-1:0123abcd", "more:abc:123456:0123abcd", "more:" + "a" * 41 + ":5:0123abcd",
    "more:abc:5:0123ABCD"])
def test_malformed_continue_data_is_a_stale_button(data: str) -> None:
    assert parse_callback(data) is None


def test_the_fingerprint_follows_the_parts_and_not_the_process() -> None:
    parts = ["<b>One</b>\n\n<i>(1/2)</i>", "Two\n\n<i>(2/2)</i>"]
    assert parts_tag(parts) == parts_tag(list(parts))
    assert parts_tag(parts) == "08a7806a"  # the same in every process (no salted hash())
    assert parts_tag(parts) != parts_tag([*parts[:1], "Two, edited\n\n<i>(2/2)</i>"])
    assert parts_tag(["ab", "c"]) != parts_tag(["a", "bc"])  # part boundaries count too
