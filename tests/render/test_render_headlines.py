"""Paged headline lists: always exactly one valid message."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bot.render.headlines import MAX_HEADLINES, render_headlines, render_latest_page

from .helpers import assert_valid_part, make_story

BERLIN = ZoneInfo("Europe/Berlin")


def test_headlines_are_numbered_escaped_and_link_by_key() -> None:
    stories = [make_story(key=f"{n:08x}feed0000", title=f"<Story> & {n}") for n in range(3)]
    page = render_headlines(stories, BERLIN, header="Results", first_number=11, footer="Page 2")
    assert page.startswith("<b>Results</b>\n\n11. <b>&lt;Story&gt; &amp; 0</b>\n")
    assert "/story 00000002" in page
    assert page.endswith("\n\n<i>Page 2</i>")
    assert_valid_part(page)


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
    assert page.count("/story ") == MAX_HEADLINES
