"""What a reader learns from a message: the time a card shows, why a /latest page has no
highlights, and in search results which words matched, marked in a snippet."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render import format_moment, render_card, visible_text
from bot.render.headlines import MAX_HEADLINES, render_headlines, render_latest_page
from bot.render.snippets import SNIPPET_UNITS, snippet
from bot.stories.search import query_words, word_spans, words_of

from .helpers import T0, TEXT, assert_valid_part, make_story

UTCZ = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
WORDS = st.sampled_from(["harbour", "Harb", "rates", "the", "a", "x", "ß", "日本", "café",
                         "cafe\u0301", "किताब", "&", "<b>", "e", "1", "25"])
QUERY = st.lists(WORDS | TEXT, min_size=1, max_size=4).map(" ".join)
PROSE = st.lists(WORDS | TEXT | st.just(" "), max_size=40).map(" ".join)


# -- "Updated <time>" only for a story that was updated ----------------------------------
@settings(max_examples=60, deadline=None)
@given(minutes=st.integers(0, 3), number=st.none() | st.integers(1, 20))
def test_a_card_says_updated_only_when_it_was(minutes: int, number: int | None) -> None:
    published = datetime(2025, 3, 31, 7, 40, tzinfo=UTC)
    story = make_story(published=published, updated=published + timedelta(minutes=minutes))
    card = render_card(story, BERLIN, number=number)
    assert_valid_part(card)
    if minutes:
        assert f"<i>Updated {format_moment(story.updated, BERLIN)}</i>" in card
        assert "Published" not in card
    else:
        assert f"<i>Published {format_moment(published, BERLIN)}</i>" in card
        assert "Updated" not in card


# -- /latest says why it has no highlights -----------------------------------------------
@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, MAX_HEADLINES), size=st.integers(1, 1500))
def test_a_latest_page_keeps_highlights_or_says_why(count: int, size: int) -> None:
    stories = [make_story(key=f"{n:08x}feed0000", title=f"Story {n}",
                          highlights=(f"Highlight {n} " + "word " * (size // 5),))
               for n in range(count)]
    page = render_latest_page(stories, UTCZ, header="📰 Latest stories")
    assert_valid_part(page)
    shown = visible_text(page)
    assert all(f"{n + 1}. Story {n}" in shown for n in range(count))  # places kept
    if all(f"Highlight {n}" in shown for n in range(count)):
        assert "left out" not in shown
        return
    assert not any(f"Highlight {n}" in shown for n in range(count))
    found = re.search(r"Highlights are left out so that (\d+) stories fit one message: "
                      r"/latest (\d+) shows highlights too\.", shown)
    if found is None:  # not even one card fits with the others' headlines
        assert "open a story to read them" in shown
        return
    assert int(found.group(1)) == count
    fitting = int(found.group(2))
    assert 1 <= fitting < count
    # the suggestion is honest: that many cards do fit, with their highlights
    fewer = visible_text(render_latest_page(stories[:fitting], UTCZ, header="📰 Latest"))
    assert all(f"Highlight {n}" in fewer for n in range(fitting))


# -- search results mark the words that matched ------------------------------------------
def entries(page: str) -> list[list[str]]:
    """The lines (HTML) of each entry of a headline list, after its header."""
    return [block.split("\n") for block in page.split("\n\n")[1:]]


@settings(max_examples=150, deadline=None)
@given(title=PROSE, highlights=st.lists(PROSE, max_size=3), query=QUERY,
       count=st.integers(1, 10), paragraph=PROSE)
def test_search_results_mark_only_words_that_matched(
        title: str, highlights: list[str], query: str, count: int, paragraph: str) -> None:
    words = query_words(query)
    stories = [make_story(key=f"{n:08x}feed0000", title=title, highlights=tuple(highlights),
                          story=(paragraph,)) for n in range(count)]
    header = f"🔎 found for “{' '.join(query.split())}”"
    page = render_headlines(stories, BERLIN, header=header, marks=words)
    assert_valid_part(page)  # escaped, balanced, within 4096 units and 100 entities
    assert visible_text(page).startswith(header)  # escaped once, shown as typed
    for lines in entries(page):
        title_line, *snippet_lines, _ = lines
        shown_title = html.unescape(re.sub(r"</?[bi]>", "", title_line))
        # the title marks exactly its first words that a searched word starts
        expected = [shown_title[a:b] for a, b in word_spans(shown_title, words)][:3]
        assert [html.unescape(m) for m in re.findall(r"<i>([^<]*)</i>", title_line)] == expected
        for line in snippet_lines:  # a snippet only to show a matched word, each one marked
            marked = [html.unescape(m) for m in re.findall(r"<b>([^<]*)</b>", line)]
            assert 1 <= len(marked) <= 3
            for word in marked:
                [found] = words_of(word)
                assert any(found.startswith(w) for w in words), (word, words)
    if not words:
        assert "<i>" not in page and len(entries(page)) == count
        assert all(len(lines) == 2 for lines in entries(page))  # title, time: no snippet


@settings(max_examples=150, deadline=None)
@given(text=PROSE, query=QUERY, units=st.integers(20, 300))
def test_a_snippet_is_a_marked_window_of_the_text(text: str, query: str, units: int) -> None:
    words = query_words(query)
    found = snippet(text, words, units=units)
    flat = " ".join(text.split())
    if found is None:
        assert not any(t.startswith(w) for t in words_of(flat) for w in words)
        return
    assert found.units <= units
    inner = found.text.removeprefix("…").removesuffix("…")
    assert inner and inner in flat  # cut as plain text, never made up
    assert found.marks, "a snippet exists to show a matched word"
    for start, end in found.marks:
        [word] = words_of(found.text[start:end])
        assert any(word.startswith(w) for w in words)
    rendered = found.render("b")
    assert html.unescape(re.sub(r"</?b>", "", rendered)) == found.text


def test_the_words_that_matched_are_marked_in_title_and_snippet() -> None:
    story = make_story(title="Harbour authority names new director", highlights=(
        "Mara Elling will lead the Port Ismer harbour authority from June.",))
    page = render_headlines([story], UTCZ, header="🔎 1 found for “harb & a”",
                            marks=query_words("harb & a"))
    assert page == (
        "<b>🔎 1 found for “harb &amp; a”</b>\n\n"
        "<b><i>Harbour</i> authority names new director</b>\n"
        "Mara Elling will lead the Port Ismer <b>harbour</b> authority from June.\n"
        f"{format_moment(T0, UTCZ)} · /story_5f0c2a9e41d7b3c8")


def test_a_long_highlight_is_cut_around_the_match_at_words() -> None:
    text = ("The regional rail company said on Monday that demand surveys carried out over "
            "the winter had shown strong interest in a sleeper service from students and "
            "tourists, and that the harbour line would reopen in May with three departures "
            "a week, to be reviewed after one year by the ministry, the company and the "
            "councils of the towns along the line.")
    found = snippet(text, query_words("harbour"))
    assert found is not None and found.units <= SNIPPET_UNITS
    assert found.text.startswith("…") and found.text.endswith("…")
    assert "that the <b>harbour</b> line would reopen" in found.render("b")
    assert found.text.removeprefix("…").split(" ")[0] in text.split(" ")  # whole words
    assert found.text.removesuffix("…").split(" ")[-1] in text.split(" ")
    # near the end, the window starts earlier rather than stop short
    end = snippet(text, query_words("councils"))
    assert end is not None and end.text.endswith("along the line.")
    assert SNIPPET_UNITS - 12 < end.units <= SNIPPET_UNITS


def test_single_characters_are_not_searched_or_marked() -> None:
    assert query_words("the & a 5 x") == ("the",)
    assert query_words("a") == query_words("&") == ()
    story = make_story(title="A day at the harbour")
    page = render_headlines([story], UTCZ, header="x", marks=query_words("a harbour"))
    assert "<i>harbour</i>" in page and "<i>A</i>" not in page and "<i>at</i>" not in page
