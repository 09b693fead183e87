"""Plain-text splitting: budgets in UTF-16 units, separator priority, grapheme safety."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bot.render import split_text, utf16_len
from bot.render.split import clip_text, is_grapheme_boundary

from .helpers import FAMILY, FLAGS, SCOTLAND, TEXT, grapheme_starts, max_cluster_units


@pytest.mark.parametrize(
    ("text", "index", "boundary"),
    [
        ("ab", 1, True),
        ("e\u0301x", 1, False),  # combining acute
        ("e\u0301x", 2, True),
        ("a\u20dd", 1, False),  # enclosing mark (Me)
        ("\u0915\u093f", 1, False),  # Devanagari vowel sign (Mc)
        (FAMILY, 2, False),  # before ZWJ
        (FAMILY, 3, False),  # after ZWJ
        (FAMILY, 4, False),
        (FAMILY + "x", 5, True),
        (FLAGS, 1, False),
        (FLAGS, 2, True),
        (FLAGS, 3, False),
        ("👍🏽", 1, False),  # skin tone
        ("❤️", 1, False),  # variation selector 16
        ("#️⃣", 1, False),
        ("#️⃣", 2, False),  # keycap (Me)
        (SCOTLAND, 1, False),  # tag characters
        (SCOTLAND, 6, False),
        ("a\r\nb", 2, False),
        ("a\r\nb", 3, True),
        ("\ud83d\udc4d", 1, False),  # a surrogate pair, should one slip in
        ("", 0, True),
    ],
)
def test_grapheme_boundary(text: str, index: int, boundary: bool) -> None:
    assert is_grapheme_boundary(text, index) is boundary


@pytest.mark.parametrize(
    ("text", "limit", "pieces"),
    [
        ("short", 10, ["short"]),
        # a blank line beats a sentence end or a space
        ("One two. Three.\n\nFour five six.", 30, ["One two. Three.", "Four five six."]),
        ("One two three four.\nFive six.", 24, ["One two three four.", "Five six."]),
        # a sentence end beats a later space
        ("One two three. Four five six seven", 24, ["One two three.", "Four five six seven"]),
        ("He said “stop.” Then left again", 22, ["He said “stop.”", "Then left again"]),
        # a space when no sentence end is late enough
        ("Hi. aaaa bbbb cccc dddd eeee", 20, ["Hi. aaaa bbbb cccc", "dddd eeee"]),
        # grapheme boundaries as a last resort
        ("abcdefghij", 4, ["abcd", "efgh", "ij"]),
        (FAMILY * 2, 9, [FAMILY, FAMILY]),
        (FLAGS * 2, 6, ["🇩🇪", "🇫🇷", "🇩🇪", "🇫🇷"]),
        ("e\u0301" * 3, 3, ["e\u0301", "e\u0301", "e\u0301"]),
        # no-break spaces are text, not break points
        ("ab\u00a0cd ef", 5, ["ab\u00a0cd", "ef"]),
        ("  \n ", 5, []),
    ],
)
def test_split_text_prefers_natural_breaks(text: str, limit: int, pieces: list[str]) -> None:
    assert split_text(text, limit) == pieces


def test_first_piece_fills_what_is_left() -> None:
    assert split_text("aaa bbb ccc ddd", 10, first_limit=4) == ["aaa", "bbb ccc", "ddd"]


def test_split_rejects_a_limit_too_small_for_a_surrogate_pair() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_text("x", 1)


def test_a_cluster_longer_than_the_limit_is_cut_rather_than_looping() -> None:
    pieces = split_text("a" + "\u0301" * 9, 4)
    assert "".join(pieces) == "a" + "\u0301" * 9
    assert all(utf16_len(p) <= 4 for p in pieces)


@pytest.mark.parametrize(
    ("text", "limit", "clipped"),
    [
        ("short", 10, "short"),
        ("one two three four", 10, "one two…"),
        (FAMILY * 3, 10, FAMILY + "…"),
    ],
)
def test_clip_text(text: str, limit: int, clipped: str) -> None:
    assert clip_text(text, limit) == clipped
    assert utf16_len(clipped) <= limit


@settings(max_examples=200, deadline=None)
@given(text=TEXT, limit=st.integers(min_value=2, max_value=40), first=st.integers(2, 40))
@example(text=" \u200c", limit=2, first=2)  # a space carrying a ZWNJ is one grapheme
@example(text="ab \u0301cd ef", limit=3, first=3)  # ... as is one with an accent
def test_split_text_properties(text: str, limit: int, first: int) -> None:
    assume(max_cluster_units(text) <= min(limit, first))
    pieces = split_text(text, limit, first_limit=first)
    boundaries = grapheme_starts(text)
    pos = 0
    for index, piece in enumerate(pieces):
        assert piece, "empty piece"
        assert utf16_len(piece) <= (first if index == 0 else limit)
        while not text.startswith(piece, pos):
            assert text[pos].isspace(), (text, pieces)
            pos += 1
        assert pos in boundaries and pos + len(piece) in boundaries, (text, pieces)
        pos += len(piece)
    assert not text[pos:].strip()
    assert "".join("".join(pieces).split()) == "".join(text.split())


@settings(max_examples=20, deadline=None)
@given(seed=st.text(min_size=1, max_size=30), limit=st.integers(64, 4096))
def test_long_paragraph_splits_into_full_pieces(seed: str, limit: int) -> None:
    text = (seed + " ") * (50_000 // (len(seed) + 1))
    assume(max_cluster_units(seed) <= limit // 2)
    pieces = split_text(text, limit)
    assert all(0 < utf16_len(p) <= limit for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())
