"""The parser against STORY_FORMAT.md: the samples, every rule, and hostile bytes."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import StoryError
from bot.stories.naming import key_from_name
from bot.stories.parser import _by_the_rules, _typical, parse_story
from tests.conftest import INVALID_STORIES, STORIES

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def parse(text: str, name: str = "001_abcdef0123.txt", tz: ZoneInfo = UTC) -> dict[str, object]:
    return parse_story(text.encode(), name, tz).to_json()


def error_of(text: str | bytes, name: str = "x.txt") -> tuple[int, str]:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(StoryError) as caught:
        parse_story(data, name, UTC)
    return caught.value.line, caught.value.message


def test_every_sample_parses_to_its_expected_json() -> None:
    expected = [json.loads(line) for line in (STORIES / "expected.jsonl").read_text().splitlines()]
    assert len(expected) == 15
    for record in expected:
        path = STORIES / record["source"]
        assert parse_story(path.read_bytes(), path.name, UTC).to_json() == record


def test_every_invalid_sample_fails_on_its_expected_line() -> None:
    expected: dict[str, int] = {}
    for line in (INVALID_STORIES / "expected-errors").read_text().splitlines():
        name, number, _ = line.split(":", 2)
        expected[name] = int(number)
    # The duplicate-key pair is a folder-level rule, tested in test_library.
    for name, line_number in expected.items():
        if name.startswith("020_"):
            continue
        with pytest.raises(StoryError) as caught:
            parse_story((INVALID_STORIES / name).read_bytes(), name, UTC)
        assert caught.value.line == line_number, name


BASE = "Mar 30, 2025, 12:01 AM\n\nTitle\n\nHighlights\n  • One\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "empty"),
        ("  \n\t\n", 1, "empty"),
        ("Hello\n", 1, "timestamp"),
        ("Feb 30, 2025, 1:00 AM\n\nT\n\nStory\n\nx\n", 1, "not a real"),
        ("Mar 1, 2025, 13:45 PM\n\nT\n\nStory\n\nx\n", 1, "not a real"),
        ("Mar 1, 2025, 0:45 AM\n\nT\n\nStory\n\nx\n", 1, "not a real"),
        ("Mar 1, 2025, 1:75 AM\n\nT\n\nStory\n\nx\n", 1, "not a real"),
        ("\n\nMar 1, 2025, 1:00 AM\nMar 2, 2025, 1:00 AM\nMar 3, 2025, 1:00 AM\nT\n", 5, "more"),
        ("Mar 1, 2025, 1:00 AM\n\nHighlights\n• x\n", 3, "missing title"),
        ("Mar 1, 2025, 1:00 AM\nMar 2, 2025, 1:00 AM\n", 2, "missing title"),
        ("Mar 1, 2025, 1:00 AM\n\nYou've reached the end\n", 3, "missing title"),
        ("Mar 1, 2025, 1:00 AM\n\nT\n\nOpinions\n\nHighlights\n• x\n", 7, "order"),
        ("Mar 1, 2025, 1:00 AM\n\nT\nHighlights\nnot a bullet\n• x\n", 5, "before the first"),
        ("Mar 1, 2025, 1:00 AM\n\nT\nHighlights\n•no space\n", 5, "before the first"),
        ("Mar 1, 2025, 1:00 AM\n\nT\n\nOpinions\n\nJust an opinion.\n", 1, "no highlights"),
        (b"Mar 1, 2025, 1:00 AM\n\nCaf\xe9\n\nStory\n\nx\n", 1, "UTF-8"),
    ],
)
def test_errors_name_their_line(text: str | bytes, line: int, words: str) -> None:
    number, message = error_of(text)
    assert (number, words.lower() in message.lower()) == (line, True)


def test_timestamps_any_case_full_month_names_and_order() -> None:
    story = parse("march 3, 2025, 09:05 pm\nMAR 1, 2025, 12:00 am\n\nT\n\nStory\n\nBody\n")
    assert story["published"] == "2025-03-01T00:00:00+00:00"
    assert story["updated"] == "2025-03-03T21:05:00+00:00"


def test_single_timestamp_is_both_published_and_updated() -> None:
    story = parse(BASE)
    assert story["published"] == story["updated"] == "2025-03-30T00:01:00+00:00"


def test_daylight_saving_gap_is_read_with_the_offset_before_the_change() -> None:
    story = parse("Mar 30, 2025, 2:30 AM\n\nT\n\nStory\n\nBody\n", tz=BERLIN)
    assert story["updated"] == "2025-03-30T03:30:00+02:00"
    overlap = parse("Oct 26, 2025, 2:30 AM\n\nT\n\nStory\n\nBody\n", tz=BERLIN)
    assert overlap["updated"] == "2025-10-26T02:30:00+02:00"


def test_bom_crlf_white_space_and_continuations() -> None:
    text = ("\ufeffMar 30, 2025, 12:01 AM\r\n\r\n  A   long\t\r\ntitle  \r\n\r\n HIGHLIGHTS \r\n"
            "  - first\r\n    continues here\r\n\r\n  * second\r\n· third\r\nstory\r\n\r\n"
            "Para one\r\nline two\r\n\r\n\r\nPara\u00a0two\r\nOpinions\r\n\r\nOp one\r\n")
    story = parse(text)
    assert story["title"] == "A long title"
    assert story["highlights"] == ["first continues here", "second", "third"]
    assert story["story"] == ["Para one line two", "Para\u00a0two"]
    assert story["opinions"] == ["Op one"]


def test_footer_ends_the_story_with_either_apostrophe() -> None:
    for footer in ("You've reached the end", "  YOU’VE REACHED THE END  "):
        story = parse(f"{BASE}Story\n\nBody\n{footer}\nIgnored\n\nHighlights\n")
        assert story["story"] == ["Body"]


def test_text_keeps_special_characters_exactly() -> None:
    story = parse("Mar 30, 2025, 12:01 AM\n\n<b>Tom & “Jerry”</b> 🇺🇦\n\nStory\n\na\u2028b\n")
    assert story["title"] == "<b>Tom & “Jerry”</b> 🇺🇦"
    assert story["story"] == ["a\u2028b"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("000_99093b385269948a.txt", ("000_99093b385269948a", "99093b385269948a", 0)),
        ("12_abcdef01.txt", ("12_abcdef01", "abcdef01", 12)),
        ("12_ABCDEF01.txt", ("12_ABCDEF01", "12-abcdef01", None)),
        ("Press release - Harbour authority.txt",
         ("Press release - Harbour authority", "press-release-harbour-authority", None)),
        ("--Ünïcode__name--.txt", ("--Ünïcode__name--", "n-code-name", None)),
        ("a" * 39 + "-b.txt", ("a" * 39 + "-b", "a" * 39, None)),
    ],
)
def test_keys_from_file_names(name: str, expected: tuple[str, str, int | None]) -> None:
    assert key_from_name(name) == expected


def test_a_name_without_a_usable_key_is_rejected() -> None:
    with pytest.raises(StoryError, match="no usable key"):
        key_from_name("!!!.txt")


# -- properties ---------------------------------------------------------------------------
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                           blacklist_characters="•-*·"),
    min_size=1, max_size=30,
).filter(lambda t: t.strip(" \t").lower() not in
         {"highlights", "story", "opinions", "you've reached the end", "you’ve reached the end"})
_SENTENCE = st.lists(_TEXT, min_size=1, max_size=5).map(" ".join)
_MONTHS = ["Jan", "February", "mar", "APRIL", "May", "jun", "July", "Aug", "Sep", "oct",
           "November", "Dec"]


@st.composite
def well_formed_story(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    moments = draw(st.lists(st.datetimes(min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - naive bounds
                                         max_value=datetime(2090, 1, 1)),  # noqa: DTZ001
                            min_size=1, max_size=2))
    moments = [m.replace(second=0, microsecond=0) for m in moments]
    title = draw(_SENTENCE)
    highlights = draw(st.lists(_SENTENCE, max_size=4))
    paragraphs = draw(st.lists(_SENTENCE, min_size=0 if highlights else 1, max_size=4))
    opinions = draw(st.lists(_SENTENCE, max_size=3))
    bullet = draw(st.sampled_from("•-*·"))

    def stamp(m: datetime) -> str:
        hour = m.hour % 12 or 12
        return f"{_MONTHS[m.month - 1]} {m.day}, {m.year}, {hour}:{m.minute:02d} " + (
            "PM" if m.hour >= 12 else "am")

    lines = [stamp(m) for m in moments] + ["", title, "", "Highlights"]
    lines += [f"  {bullet} {h}" for h in highlights]
    lines += ["Story", ""] + [line for p in paragraphs for line in (p, "")]
    if opinions:
        lines += ["Opinions", ""] + [line for o in opinions for line in (o, "")]
    if draw(st.booleans()):
        lines.append("You've reached the end")
    expected: dict[str, object] = {
        "title": title, "highlights": highlights, "story": paragraphs, "opinions": opinions,
        "published": min(moments).replace(tzinfo=UTC).isoformat(),
        "updated": max(moments).replace(tzinfo=UTC).isoformat()}
    return "\n".join(lines), expected


@settings(max_examples=200, deadline=None)
@given(well_formed_story())
def test_well_formed_stories_round_trip(case: tuple[str, dict[str, object]]) -> None:
    text, expected = case
    story = parse(text)
    assert {key: story[key] for key in expected} == expected


_PAD = st.sampled_from(["", " ", "\t", " \t  "])
_BLANK = st.sampled_from(["", " ", "\t", "  "])


@st.composite
def untidy_story(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """Well-formed content written every untidy way the format allows: headings in any case
    with white space around, text broken over several lines, runs of blank or white-space
    lines, bullet continuations, trailing white space, CRLF line ends."""
    moments = draw(st.lists(st.datetimes(min_value=datetime(1990, 1, 1),  # noqa: DTZ001
                                         max_value=datetime(2090, 1, 1)),  # noqa: DTZ001
                            min_size=1, max_size=2))
    moments = [m.replace(second=0, microsecond=0) for m in moments]
    title = draw(_SENTENCE)
    highlights = draw(st.lists(_SENTENCE, max_size=4))
    paragraphs = draw(st.lists(_SENTENCE, min_size=0 if highlights else 1, max_size=4))
    opinions = draw(st.lists(_SENTENCE, max_size=3))

    def padded(line: str) -> str:
        return f"{draw(_PAD)}{line}{draw(_PAD)}"

    def broken(sentence: str) -> list[str]:
        """The sentence over one or more lines, cut at spaces."""
        words = sentence.split(" ")
        cuts = sorted(set(draw(st.lists(st.integers(1, len(words)), max_size=2))) | {len(words)})
        starts = [0, *cuts[:-1]]
        return [padded(" ".join(words[a:b])) for a, b in zip(starts, cuts, strict=True)]

    def blanks(least: int) -> list[str]:
        return draw(st.lists(_BLANK, min_size=least, max_size=3))

    def heading(word: str) -> str:
        return padded(draw(st.sampled_from([word, word.lower(), word.upper()])))

    def stamp(m: datetime) -> str:
        hour = m.hour % 12 or 12
        return f"{_MONTHS[m.month - 1]} {m.day}, {m.year}, {hour}:{m.minute:02d} " + (
            "PM" if m.hour >= 12 else "am")

    lines = [*blanks(0), *(padded(stamp(m)) for m in moments), *blanks(1), *broken(title)]
    lines += [*blanks(0), heading("Highlights"), *blanks(0)]
    for text in highlights:
        first, *rest = broken(text)
        lines += [f"{draw(_PAD)}{draw(st.sampled_from('•-*·'))}{draw(_PAD)} {first}",
                  *rest, *blanks(0)]
    lines += [heading("Story")]
    for text in paragraphs:
        lines += [*blanks(1), *broken(text)]
    lines += [*blanks(0), heading("Opinions")]
    for text in opinions:
        lines += [*blanks(1), *broken(text)]
    lines += blanks(0)
    if draw(st.booleans()):
        lines += [padded(draw(st.sampled_from(["You've reached the end",
                                               "YOU’VE REACHED THE END"]))), "Story", "junk"]
    expected: dict[str, object] = {
        "title": title, "highlights": highlights, "story": paragraphs, "opinions": opinions,
        "published": min(moments).replace(tzinfo=UTC).isoformat(),
        "updated": max(moments).replace(tzinfo=UTC).isoformat()}
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines), expected


@settings(max_examples=300, deadline=None)
@given(untidy_story())
def test_untidy_layouts_parse_to_the_same_content(case: tuple[str, dict[str, object]]) -> None:
    text, expected = case
    story = parse(text)
    assert {key: story[key] for key in expected} == expected


# Lines that the fast path must not misread, put anywhere into a story of the usual layout.
_ODD = ["", " ", "\t", " padded  text ", "two\tparts", "x", "• a bullet", "  - b  c", "·",
        "- ", "-x", "ſtory", "Highlights", "story", " story", "Story ", "OPINIONS", "Opinions",
        "You've reached the end", "you’ve reached the END ", "Mar 1, 2025, 1:00 AM",
        "Feb 30, 2025, 1:00 AM", "K", "\u00a0", "A\u2028B"]
_WORDS = st.sampled_from(["Plain words.", "More words, here.", "x", "Ünïcode ✓ <b>&"])
_BULLET = st.sampled_from(["•", "-", "*", "·"]).map(lambda mark: f"{mark} ")
_STAMP = st.sampled_from(["Mar 1, 2025, 1:00 AM", "March 3, 2025, 09:05 pm",
                          "mar 2, 2025, 1:00 PM"])


@st.composite
def nearly_usual_story(draw: st.DrawFn) -> str:
    """A story in the usual layout (the parser's fast path reads it), often with one odd
    line put anywhere or one heading written differently."""
    lines = draw(st.lists(_STAMP, min_size=1, max_size=2))
    lines += ["", *draw(st.lists(_WORDS, min_size=1, max_size=2)), *draw(st.sampled_from(
        [[], [""]])), "Highlights"]
    lines += [draw(_BULLET) + draw(_WORDS) for _ in range(draw(st.integers(1, 3)))]
    lines += ["Story", *draw(st.lists(_WORDS | st.just(""), max_size=6))]
    if draw(st.booleans()):
        lines += ["Opinions", *draw(st.lists(_WORDS | st.just(""), max_size=4))]
    if draw(st.booleans()):
        lines += ["You've reached the end", draw(_WORDS)]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(_ODD)))
    if draw(st.booleans()):
        headings = [i for i, line in enumerate(lines) if line in ("Highlights", "Story")]
        where = draw(st.sampled_from(headings))
        heading = lines[where]
        lines[where] = draw(st.sampled_from([  # the long s folds to "s" in Unicode only
            heading.upper(), f" {heading}", f"{heading.lower()}\t", heading.replace("s", "ſ")]))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n"]))


@settings(max_examples=300, deadline=None)
@given(nearly_usual_story() | untidy_story().map(lambda case: case[0]))
def test_the_fast_path_reads_exactly_what_the_rules_read(text: str) -> None:
    """Stories in the usual layout skip the line-by-line rules; whenever the fast path
    accepts a text, the rules must accept it too and give the same story."""
    text = text.replace("\r\n", "\n")
    fast = _typical(text, BERLIN)
    if fast is None:
        return
    title, published, updated, body = _by_the_rules(text, BERLIN)
    assert fast == (title, published, updated, body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_give_a_story_or_a_story_error_with_a_line(data: bytes) -> None:
    lines = data.count(b"\n") + 1
    try:
        story = parse_story(b"Mar 1, 2025, 1:00 AM\n" + data, "x.txt", UTC)
    except StoryError as error:
        assert 1 <= error.line <= lines + 1
    else:
        assert story.title and (story.highlights or story.story)
    try:
        parse_story(data, "y.txt", UTC)
    except StoryError as error:
        assert 1 <= error.line <= lines
