"""Search words: which words of a query are searched, and where they occur in a text.

One definition serves the library (which stories match) and the renderer (which words a
result marks), so a reader sees marked exactly the words that made a story match. A word
is a run of letters, digits or ``_`` with the combining marks between and after them (so
"किताब" and a decomposed "café" are one word each, and a mark never ends inside a
letter), compared casefolded; a query word matches any word it starts ("harb" finds
"Harbour"). Words of one character are not searched: "a" or "5" is in nearly every story,
so it would list them all as "matches".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Final

__all__ = [
    "MAX_QUERY_WORDS",
    "MIN_WORD",
    "ignored_words",
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


def _nfc(text: str) -> str:
    """One spelling for "é" and "e" + U+0301, so a word typed one way finds it written the
    other; free for text that is already composed (nearly all)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def words_of(text: str) -> list[str]:
    """The casefolded words of ``text``, in order (the library's search index)."""
    return [_nfc(word.casefold()) for word in _word_pattern().findall(text)]


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
            if _nfc(m.group().casefold()).startswith(needles)]
