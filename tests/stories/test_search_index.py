"""Search by the full-text engine: the contract readers rely on, phrases, diacritics,
ranking, the recency order of very common words, and the words a snippet marks."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bot.stories.index as index_module
from bot.render.snippets import best_snippet
from bot.stories.library import StoryLibrary
from bot.stories.search import SearchQuery, query_words, word_spans

UTC = ZoneInfo("UTC")


def write(folder: Path, name: str, title: str, body: str,
          stamp: str = "Apr 2, 2025, 9:00 AM", highlight: str = "A highlight.") -> None:
    (folder / name).write_text(
        f"{stamp}\n\n{title}\n\nHighlights\n• {highlight}\nStory\n\n{body}\n")


@pytest.fixture
def library(tmp_path: Path) -> StoryLibrary:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_aaaaaaaa01.txt", "Harbour strike ends", "Dockers return to work.",
          "Apr 1, 2025, 9:00 AM")
    write(folder, "2_aaaaaaaa02.txt", "Council budget", "The harbour strike cost millions. "
          "The harbour board met the strike leaders about the harbour.",
          "Apr 2, 2025, 9:00 AM")
    write(folder, "3_aaaaaaaa03.txt", "Café reopens in Zürich", "Coffee again near the lake.",
          "Apr 3, 2025, 9:00 AM")
    write(folder, "4_aaaaaaaa04.txt", "Weather", "A strike of lightning hit the harbour.",
          "Apr 4, 2025, 9:00 AM")
    write(folder, "5_aaaaaaaa05.txt", "Strike at the harbour", "Nothing else.",
          "Apr 5, 2025, 9:00 AM")
    built = StoryLibrary(folder, UTC)
    built.rescan()
    return built


def titles(library: StoryLibrary, query: str) -> list[str]:
    return [s.title for s in library.search(query)]


def test_every_word_must_match_as_a_word_prefix_title_matches_first(
        library: StoryLibrary) -> None:
    # title matches (newest first on a tie), then body matches ranked by relevance: the
    # story saying "harbour" three times before the one saying it once
    assert titles(library, "harb stri") == [
        "Strike at the harbour", "Harbour strike ends", "Council budget", "Weather"]
    assert titles(library, "arbour") == []  # inside a word is no match
    assert titles(library, "harbour zebra") == []
    assert titles(library, "x") == []  # single characters are not searched


def test_quoted_phrases_must_appear_in_that_order(library: StoryLibrary) -> None:
    assert titles(library, '"harbour strike"') == ["Harbour strike ends", "Council budget"]
    assert titles(library, '"strike harbour"') == []
    assert titles(library, '“strike of lightning” harbour') == ["Weather"]


def test_diacritics_and_case_are_ignored_both_ways(library: StoryLibrary) -> None:
    assert titles(library, "cafe zurich") == ["Café reopens in Zürich"]
    assert titles(library, "CAFÉ") == ["Café reopens in Zürich"]
    assert titles(library, "cafe\u0301") == ["Café reopens in Zürich"]  # decomposed é


def test_the_title_weighs_more_than_a_body_that_says_it_more_often(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_bbbbbbbb01.txt", "Ferry news and more news", "Nothing.",
          "Apr 9, 2025, 9:00 AM")
    write(folder, "2_bbbbbbbb02.txt", "Port report", "Ferry ferry ferry ferry.",
          "Apr 1, 2025, 9:00 AM")
    write(folder, "3_bbbbbbbb03.txt", "Old ferry tale", "Nothing.", "Jan 1, 2020, 9:00 AM")
    library = StoryLibrary(folder, UTC)
    library.rescan()
    assert titles(library, "ferry") == [
        "Old ferry tale", "Ferry news and more news", "Port report"]  # shorter title: bm25
    hits = library.search_page("ferry", 1, 1)
    assert [s.title for s in hits.stories] == ["Ferry news and more news"]
    assert (hits.total, hits.more, hits.ranked) == (3, False, True)


def test_a_word_in_too_many_stories_is_listed_newest_first(
        library: StoryLibrary, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "RANK_LIMIT", 2)
    hits = library.search_page("harbour", 0, 10)
    assert not hits.ranked and hits.total == 4
    assert [s.title for s in hits.stories] == [  # title group, then the rest, newest first
        "Strike at the harbour", "Harbour strike ends", "Weather", "Council budget"]


def test_counting_stops_at_a_thousand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_COUNT_LIMIT", 3)
    folder = tmp_path / "stories"
    folder.mkdir()
    for number in range(5):
        write(folder, f"{number}_cc{number:08x}.txt", f"Tide table {number}", "Water.",
              f"Apr {number + 1}, 2025, 9:00 AM")
    library = StoryLibrary(folder, UTC)
    library.rescan()
    hits = library.search_page("tide", 0, 10)
    assert (hits.total, hits.more) == (3, True)
    assert [s.title for s in hits.stories] == ["Tide table 4", "Tide table 3", "Tide table 2"]


def test_snippets_mark_the_matched_words_from_the_whole_story(library: StoryLibrary) -> None:
    [story] = library.search("lightning")
    snippet = best_snippet(story, query_words("lightning"), units=120, max_marks=3)
    assert snippet is not None and "<i>lightning</i>" in snippet.render("i")
    [cafe] = library.search("cafe")
    assert word_spans(cafe.title, query_words("cafe zurich")) == [(0, 4), (16, 22)]


@given(st.text(max_size=60))
def test_any_query_parses_to_a_valid_search(text: str) -> None:
    query = SearchQuery.parse(text)
    expression = query.fts_expression()
    assert (expression is None) == (not query.words and not query.phrases)
    assert len(query.words) + sum(len(p) for p in query.phrases) <= 20


def test_hostile_queries_are_words_not_syntax(library: StoryLibrary) -> None:
    for query in ('harbour" OR "x', "NEAR(harbour strike)", "harbour* AND", "title:café",
                  '"', "{title}: strike", "-harbour", "harbour^", "''"):
        library.search(query)  # never an FTS syntax error
    assert titles(library, "title:café") == []  # "title" is a word here, in no story


def test_changed_and_removed_stories_leave_the_full_text_index(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_dddddddd01.txt", "Harbour news", "The ferry strike.")
    write(folder, "2_dddddddd02.txt", "Council budget", "The ferry fares.")
    library = StoryLibrary(folder, UTC)
    library.rescan()
    write(folder, "1_dddddddd01.txt", "Harbour news", "The tram strike, a longer text.")
    (folder / "2_dddddddd02.txt").unlink()
    library.rescan()
    hits = library.search_page("ferry", 0, 10)
    assert (hits.stories, hits.total) == ((), 0)  # counted by the engine: no stale entry
    assert library.search_page("tram", 0, 10).total == 1
    conn = library.index.connection()
    conn.execute("INSERT INTO search (search, rank) VALUES ('integrity-check', 0)")


def test_a_file_touched_but_unchanged_is_not_reported_as_updated(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_dddddddd01.txt", "Harbour news", "The ferry strike.")
    library = StoryLibrary(folder, UTC)
    library.rescan()
    path = folder / "1_dddddddd01.txt"
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    version = library.version
    assert not library.rescan().changed  # no alert for a copy that changed nothing
    assert library.version == version  # cached pages stay
    assert [s.title for s in library.search("ferry")] == ["Harbour news"]
