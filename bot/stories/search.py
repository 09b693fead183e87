"""Search words: which words of a query are searched, and where they occur in a text.

One definition serves the index (which stories match, see :class:`SearchQuery`) and the
renderer (which words a result marks), so a reader sees marked exactly the words that made
a story match. A word is a run of letters, digits or ``_`` with the combining marks between
and after them (so "किताब" and a decomposed "café" are one word each, and a mark never ends
inside a letter), compared casefolded and without Latin diacritics (as the full-text
engine's ``unicode61 remove_diacritics 2`` does: "cafe" finds "Café"); a query word
matches any word it starts ("harb" finds "Harbour"). Words of one character are not
searched: "a" or "5" is in nearly every story, so it would list them all as "matches".
Words in "double quotes" must also follow each other in that order (a phrase).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Final

__all__ = [
    "MAX_QUERY_WORDS",
    "MIN_WORD",
    "SearchQuery",
    "ignored_words",
    "nfc",
    "query_words",
    "word_spans",
    "words_of",
]

MIN_WORD: Final = 2
"""Characters a query word needs to be searched."""
MAX_QUERY_WORDS: Final = 20
"""Words of a query that are searched; the rest are ignored (a query is not an essay)."""


@cache
def _word_pattern() -> re.Pattern[str]:
    r"""``\w`` runs joined by combining marks. Python's ``\w`` has no marks, and ``re`` no
    ``\p{M}``: the class is built once, from the Basic Multilingual Plane only (marks
    beyond it are rare, and a class of astral ranges would slow every match)."""
    marks: list[str] = []
    start = previous = -2
    for code in range(0x10000):
        if unicodedata.category(chr(code))[0] != "M":
            continue
        if code != previous + 1:
            if start >= 0:
                marks.append(f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = code
        previous = code
    marks.append(f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
    return re.compile(rf"\w+(?:[{''.join(marks)}]+\w*)*")


def nfc(text: str) -> str:
    """One spelling for "é" and "e" + U+0301, so a word typed one way finds it written the
    other; free for text that is already composed (nearly all)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


_nfc = nfc


def _fold(word: str) -> str:
    """A word as it is compared: casefolded, composed, without the combining diacritics
    U+0300–U+036F that ``remove_diacritics`` drops (free for ASCII words)."""
    word = word.casefold()
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    return nfc("".join(c for c in decomposed if not "\u0300" <= c <= "\u036f"))


def words_of(text: str) -> list[str]:
    """The folded words of ``text``, in order."""
    return [_fold(word) for word in _word_pattern().findall(text)]


def query_words(text: str) -> tuple[str, ...]:
    """The words of a query that are searched: at least :data:`MIN_WORD` characters each,
    each once, at most :data:`MAX_QUERY_WORDS`. Empty when nothing is left to look for."""
    kept = dict.fromkeys(w for w in words_of(text) if len(w) >= MIN_WORD)
    return tuple(kept)[:MAX_QUERY_WORDS]


def ignored_words(text: str) -> tuple[str, ...]:
    """The words of a query too short to be searched (to tell a reader why)."""
    return tuple(w for w in words_of(text) if len(w) < MIN_WORD)


def word_spans(text: str, words: Iterable[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of every word of ``text`` that a query word in ``words`` starts,
    in order, as offsets into ``text`` itself (for marking it)."""
    needles = tuple(words)
    if not needles:
        return []
    return [(m.start(), m.end()) for m in _word_pattern().finditer(text)
            if _fold(m.group()).startswith(needles)]


_QUOTES = re.compile(r'["“”„«»]([^"“”„«»]*)["“”„«»]?')


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a reader searched for: single words (each a word prefix) and phrases (words in
    that order, the last one a prefix), as the full-text engine is asked."""

    words: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SearchQuery:
        """Words of two characters or more outside quotes; each quoted phrase with at least
        one such word. At most :data:`MAX_QUERY_WORDS` words in all."""
        phrases: list[tuple[str, ...]] = []
        budget = MAX_QUERY_WORDS

        def take(match: re.Match[str]) -> str:
            nonlocal budget
            words = tuple(_word_pattern().findall(match.group(1)))[:budget]
            if len(words) > 1 and any(len(_fold(w)) >= MIN_WORD for w in words):
                phrases.append(words)
                budget -= len(words)
                return " "
            return f" {match.group(1)} "  # a quoted single word is just a word

        rest = _QUOTES.sub(take, text)
        words = dict.fromkeys(w for w in _word_pattern().findall(rest)
                              if len(_fold(w)) >= MIN_WORD)
        return cls(tuple(words)[:max(budget, 0)], tuple(phrases))

    def fts_expression(self, column: str | None = None) -> str | None:
        """The FTS5 query: every word and phrase must match (in ``column`` if given); None
        when nothing is left to search for. Words hold no quote, so quoting is safe."""
        terms = [f'"{nfc(w)}"*' for w in self.words]
        terms += [f'"{nfc(" ".join(p))}"*' for p in self.phrases]
        if not terms:
            return None
        joined = " AND ".join(terms)
        return f"{{{column}}} : ({joined})" if column else joined
