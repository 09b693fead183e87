"""Search results: the words that matched, marked, in a short snippet of the story.

Text is cut as plain text (at a space, with "…" where it was cut), then every plain piece
is escaped and every matched word wrapped in its tag: markup is never sliced, and a word is
marked only if it is wholly shown. Which words match is :mod:`bot.stories.search`'s call,
the same one the library searched with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.render.html import escape, utf16_len
from bot.render.split import is_grapheme_boundary, utf16_prefix_end
from bot.stories.model import Story
from bot.stories.search import word_spans, words_of

__all__ = ["SNIPPET_UNITS", "Marked", "best_snippet", "marked", "snippet"]

SNIPPET_UNITS = 120
"""Visible length of a snippet, ellipses included."""
_MIN_UNITS = 20  # a window shorter than this shows too little to be worth a line
_LEAD = 30  # units of context kept before the first matched word when the text is cut
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Marked:
    """Plain ``text`` with ``marks``: sorted, non-overlapping ``(start, end)`` offsets."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()

    @property
    def units(self) -> int:
        return utf16_len(self.text)

    def render(self, tag: str) -> str:
        """Telegram HTML: the text escaped, each mark wrapped in ``<tag>``."""
        pieces: list[str] = []
        at = 0
        for start, end in self.marks:
            pieces.append(escape(self.text[at:start]))
            pieces.append(f"<{tag}>{escape(self.text[start:end])}</{tag}>")
            at = end
        pieces.append(escape(self.text[at:]))
        return "".join(pieces)


def marked(text: str, words: Iterable[str], *, max_marks: int) -> Marked:
    """``text`` with its first ``max_marks`` words that ``words`` match marked."""
    spans = word_spans(text, words)[:max(max_marks, 0)]
    return Marked(text, tuple(spans))


def _matched(text: str, words: Sequence[str]) -> int:
    """How many of ``words`` occur in ``text``: a snippet holding more explains more."""
    found = words_of(text)
    return sum(any(w.startswith(word) for w in found) for word in words)


def _word_start_after(text: str, lower: int, upper: int) -> int:
    """The first word start in ``[lower, upper]`` (``upper`` when there is none)."""
    if lower <= 0:
        return 0
    space = text.find(" ", lower - 1, upper)
    return upper if space < 0 else space + 1


def _back_from(text: str, end: int, units: int) -> int:
    """The smallest ``start`` with ``text[start:end]`` at most ``units`` long."""
    start = end
    while start > 0 and utf16_len(text[start - 1:end]) <= units:
        start -= 1
    return start


def _cut_end(text: str, start: int, units: int, must_reach: int) -> int:
    """The end of a window of at most ``units`` from ``start``: after a whole word when a
    space allows (and the first matched word stays whole), else at a grapheme boundary."""
    end = utf16_prefix_end(text, start, units)
    if end >= len(text):
        return len(text)
    space = text.rfind(" ", start, end + 1)
    if space >= must_reach:
        return space
    while end > start and not is_grapheme_boundary(text, end):
        end -= 1
    return end


def snippet(text: str, words: Sequence[str], *, units: int = SNIPPET_UNITS,
            max_marks: int = 3) -> Marked | None:
    """A window of ``text`` (white space collapsed) around its first matched word, at most
    ``units`` long, with the matched words in it marked; None when no word matches or
    ``units`` is too short to be worth showing.

    The window starts a little before the match (:data:`_LEAD`), at a word, and ends at a
    word; when it reaches the end of the text it starts earlier instead, to fill the room.
    """
    text = " ".join(text.split())
    spans = word_spans(text, words)
    if not spans or units < _MIN_UNITS:
        return None
    if utf16_len(text) <= units:
        start, end = 0, len(text)
    else:
        first, first_end = spans[0]
        room = units - 2 * len(_ELLIPSIS)
        start = _word_start_after(text, _back_from(text, first, _LEAD), first)
        if utf16_len(text[start:first_end]) > room:  # the match would not fit after the lead
            start = first
        if utf16_len(text[start:]) <= units - len(_ELLIPSIS):  # the rest fits: more before
            start = _word_start_after(text, _back_from(text, len(text),
                                                       units - len(_ELLIPSIS)), first)
            end = len(text)
        else:
            end = _cut_end(text, start, room if start else room + len(_ELLIPSIS), first_end)
        if end <= start:
            return None
    prefix = _ELLIPSIS if start > 0 else ""
    suffix = _ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    marks = tuple((a + shift, b + shift) for a, b in spans if start <= a and b <= end)
    return Marked(f"{prefix}{text[start:end].rstrip()}{suffix}", marks[:max(max_marks, 0)])


def best_snippet(story: Story, words: Sequence[str], *, units: int = SNIPPET_UNITS,
                 max_marks: int = 3) -> Marked | None:
    """The snippet of the highlight that holds most of ``words`` (a paragraph or an
    opinion when no highlight holds any), or None when none does: the title shows those."""
    if not words or max_marks < 1:
        return None
    best, best_count = "", 0
    for text in (*story.highlights, *story.story, *story.opinions):
        count = _matched(text, words)
        if count > best_count:
            best, best_count = text, count
            if count == len(words):
                break
    if not best_count:
        return None
    return snippet(best, words, units=units, max_marks=max_marks)
