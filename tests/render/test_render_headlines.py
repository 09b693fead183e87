"""Paged headline lists: always exactly one valid message."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bot.render import StoryLinks, visible_text
from bot.render.headlines import MAX_HEADLINES, render_headlines, render_latest_page

from .helpers import assert_valid_part, make_story

BERLIN = ZoneInfo("Europe/Berlin")


def test_headlines_are_numbered_only_as_places_escaped_and_name_each_story() -> None:
    stories = [make_story(key=f"{n:08x}feed0000", title=f"<Story> & {n}") for n in range(3)]
    page = render_headlines(stories, BERLIN, header="Latest", first_number=11, footer="Page 2")
    assert page.startswith("<b>Latest</b>\n\n11. <b>&lt;Story&gt; &amp; 0</b>\n")
    assert "· /story_00000002feed0000\n" in page
    assert page.endswith("\n\n<i>Page 2</i>")
    assert_valid_part(page)
    results = render_headlines(stories, BERLIN, header="Results",
                               links=StoryLinks.for_chat("group", "story_bot"))
    assert results.startswith("<b>Results</b>\n\n<b>&lt;Story&gt; &amp; 0</b>\n")
    assert not any(f"{n}." in visible_text(results) for n in range(1, 4))
    assert results.count("/story_") == 3 and results.count("@story_bot") == 3
    assert_valid_part(results)


def test_too_many_headlines_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        render_headlines([make_story()] * (MAX_HEADLINES + 1), BERLIN, header="x")


@pytest.mark.parametrize("highlight_size", [10, 5000])
def test_latest_page_is_one_message(highlight_size: int) -> None:
    stories = [
        make_story(key=f"{n:08x}feed0000", title="T " * 300, highlights=("h " * highlight_size,))
        for n in range(MAX_HEADLINES)
    ]
    page = render_latest_page(stories, BERLIN, header="📰 Latest", footer="1/3")
    assert_valid_part(page)
    assert page.count("/story_") == MAX_HEADLINES
    assert f"{MAX_HEADLINES}. " in page  # /latest keeps its places
