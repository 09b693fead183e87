"""The daily briefing and the no-news note."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from bot.render import StoryLinks, render_digest, render_no_news, visible_text
from bot.stories.model import Story

from .helpers import assert_valid_part, make_story

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2025, 3, 31)


def _stories(count: int) -> list[Story]:
    return [make_story(key=f"{n:08x}beef0000", title=f"Story {n}") for n in range(count)]


def test_briefing_header_and_cards_without_numbers() -> None:
    (part,) = render_digest(_stories(2), BERLIN, local_date=MONDAY)
    assert part.startswith(
        "<b>☀️ Your briefing — Monday, 31 March 2025</b>\n\n<b>Story 0</b>\n"
        "<i>Updated 31 Mar 2025, 11:15 CEST</i>\n"
    )
    assert "\n\n<b>Story 1</b>\n" in part
    assert "1." not in visible_text(part)  # a number would mean a place in /latest
    assert "Full story: /story_00000001beef0000" in part
    assert "more" not in part
    assert_valid_part(part)


def test_briefing_references_follow_the_chat() -> None:
    stories = _stories(2)
    (group,) = render_digest(stories, BERLIN, local_date=MONDAY,
                             links=StoryLinks.for_chat("supergroup", "story_bot"))
    assert "Full story: /story_00000000beef0000@story_bot" in group
    (channel,) = render_digest(stories, BERLIN, local_date=MONDAY,
                               links=StoryLinks.for_chat("channel", "story_bot"))
    assert ('<a href="https://t.me/story_bot?start=story_00000001beef0000">open in @story_bot'
            "</a>") in channel
    assert "/story" not in visible_text(channel)
    assert_valid_part(channel)


@pytest.mark.parametrize(
    ("given", "top_n", "total", "shown", "more"),
    [
        (3, 8, None, 3, None),
        (8, 8, None, 8, None),
        (10, 8, None, 8, 2),
        (3, 3, 12, 3, 9),  # the caller passed only the top stories
        (5, 3, None, 3, 2),
        (5, 3, 4, 3, 2),  # a total below what was given counts what was given
        (1, 1, 1, 1, None),
    ],
)
def test_and_k_more(
    given: int, top_n: int, total: int | None, shown: int, more: int | None
) -> None:
    parts = render_digest(
        _stories(given),
        BERLIN,
        local_date=MONDAY,
        top_n=top_n,
        total=total,
    )
    joined = "".join(parts)
    assert joined.count("Full story:") == shown
    assert f"<b>Story {shown - 1}</b>" in joined and f"<b>Story {shown}</b>" not in joined
    if more is None:
        assert "more —" not in joined
    else:
        assert parts[-1].endswith(f"\n\nand {more} more — /latest")
    for part in parts:
        assert_valid_part(part)


@pytest.mark.parametrize(
    ("day", "header"),
    [
        (date(2025, 3, 31), "Monday, 31 March 2025"),
        (date(2024, 2, 29), "Thursday, 29 February 2024"),
        (date(2025, 1, 5), "Sunday, 5 January 2025"),
    ],
)
def test_no_news_note_is_dated(day: date, header: str) -> None:
    note = render_no_news(BERLIN, day)
    assert note == (
        f"<b>☀️ Your briefing — {header}</b>\n\n"
        "No new stories since your last briefing. /latest shows the most recent ones."
    )
    assert_valid_part(note)
    assert render_digest([], BERLIN, local_date=day) == [note]


def test_large_briefing_splits_into_numbered_parts_with_small_limits() -> None:
    stories = [
        make_story(key=f"{n:08x}beef0000", title=f"Story {n}", highlights=("h " * 100,) * 2)
        for n in range(20)
    ]
    parts = render_digest(stories, BERLIN, local_date=MONDAY, top_n=10, limit=600)
    assert len(parts) > 1
    for index, part in enumerate(parts, start=1):
        assert_valid_part(part, limit=600)
        assert part.endswith(f"<i>({index}/{len(parts)})</i>")
    assert "and 10 more — /latest" in parts[-1]


def test_top_n_must_be_positive() -> None:
    with pytest.raises(ValueError, match="top_n"):
        render_digest(_stories(1), BERLIN, local_date=MONDAY, top_n=0)
