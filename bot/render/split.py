"""Splitting plain text into pieces that fit a UTF-16 budget, never inside a grapheme.

Text is split *before* it is escaped, so a cut can never fall inside a tag or an escape.
Cuts prefer, in order: a blank line, a line break, a sentence end, a space, and only as a
last resort any grapheme boundary. The first three are taken only when they keep at least
half of the window, so a piece is not left nearly empty just to end on a paragraph.
White space at a cut is dropped (Telegram would trim it anyway).

Grapheme clusters are approximated without third-party tables: no boundary before a
combining mark, ZWJ/ZWNJ, variation selector, skin-tone modifier or tag character, none
after a ZWJ, none inside CR LF or a surrogate pair, and none between the two halves of a
regional-indicator (flag) pair.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from bot.render.html import utf16_len

__all__ = ["clip_text", "find_break", "is_grapheme_boundary", "split_text", "utf16_prefix_end"]

_ZWJ: Final = "\u200d"
_ZWNJ: Final = "\u200c"
_COMBINING_CATEGORIES: Final = frozenset({"Mn", "Me", "Mc"})
# Spaces a line may break at; no-break spaces (U+00A0, U+2007, U+202F) are text.
_SPACE_CLASS: Final = " \t\n\r\u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000"
_SPACES: Final = frozenset(" \t\n\r\u1680\u2028\u2029\u205f\u3000") | frozenset(
    chr(c) for c in (*range(0x2000, 0x2007), *range(0x2008, 0x200B))
)
_PARAGRAPH_RE: Final = re.compile(r"[ \t]*\n[ \t]*\n[ \t\n]*")
_LINE_RE: Final = re.compile(r"[ \t]*\n[ \t\n]*")
_SENTENCE_RE: Final = re.compile(r"[.!?…。！？][)\]\"'”’»]*(?P<gap>[" + _SPACE_CLASS + r"]+)")
_SPACE_RE: Final = re.compile(r"[" + _SPACE_CLASS + r"]+")
# Preferred separators, best first; each is used only if it keeps half the window.
_PREFERRED: Final = (_PARAGRAPH_RE, _LINE_RE, _SENTENCE_RE)


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _extends_previous(char: str) -> bool:
    """True for characters that belong to the grapheme before them."""
    code = ord(char)
    if char in (_ZWJ, _ZWNJ):
        return True
    if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True
    if code < 0x300:  # nothing below U+0300 extends; keeps ASCII fast
        return False
    return unicodedata.combining(char) != 0 or unicodedata.category(char) in _COMBINING_CATEGORIES


def is_grapheme_boundary(text: str, index: int) -> bool:
    """Whether cutting ``text`` at ``index`` keeps every (approximate) grapheme whole."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == _ZWJ or (before == "\r" and after == "\n"):
        return False
    if _extends_previous(after):
        return False
    if 0xDC00 <= ord(after) <= 0xDFFF and 0xD800 <= ord(before) <= 0xDBFF:
        return False
    if _is_regional_indicator(after) and _is_regional_indicator(before):
        run = 0
        j = index - 1
        while j >= 0 and _is_regional_indicator(text[j]):
            run += 1
            j -= 1
        return run % 2 == 0
    return True


def utf16_prefix_end(text: str, start: int, units: int) -> int:
    """The largest ``end`` such that ``text[start:end]`` is at most ``units`` UTF-16 units."""
    window = text[start : start + max(units, 0)]
    if utf16_len(window) <= units:
        return start + len(window)
    used = 0
    end = start
    for char in window:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            break
        end += 1
    return end


def _trim_cut(text: str, start: int, cut: int, resume: int) -> tuple[int, int]:
    """Move the cut left over trailing spaces and the resume point right over leading ones,
    but never into a grapheme: a space carrying a combining mark or ZWNJ is text."""
    while cut > start and text[cut - 1] in _SPACES and is_grapheme_boundary(text, cut - 1):
        cut -= 1
    while (resume < len(text) and text[resume] in _SPACES
           and is_grapheme_boundary(text, resume + 1)):
        resume += 1
    return cut, resume


def _acceptable(text: str, start: int, cut: int, resume: int) -> bool:
    return cut > start and is_grapheme_boundary(text, cut) and is_grapheme_boundary(text, resume)


def find_break(text: str, start: int, end: int) -> tuple[int, int]:
    """Where to cut ``text[start:]`` so the piece ends at or before ``end``.

    Returns ``(cut, resume)``: the piece is ``text[start:cut]`` and the next piece starts at
    ``resume``; whatever lies between is white space dropped at the cut. If no grapheme
    boundary exists in the window (a single cluster longer than the budget), the cut falls
    at ``end`` on a code-point boundary: the only way to make progress.
    """
    if end >= len(text):
        return _trim_cut(text, start, len(text), len(text))
    half = start + (end - start) // 2
    for pattern in _PREFERRED:
        for match in reversed(list(pattern.finditer(text, start, end + 1))):
            gap_start = match.start("gap") if pattern is _SENTENCE_RE else match.start()
            cut, resume = _trim_cut(text, start, gap_start, match.end())
            if cut < half:
                break
            if _acceptable(text, start, cut, resume):
                return cut, resume
    for match in reversed(list(_SPACE_RE.finditer(text, start, end + 1))):
        cut, resume = _trim_cut(text, start, match.start(), match.end())
        if _acceptable(text, start, cut, resume):
            return cut, resume
    cut = end
    while cut > start and not is_grapheme_boundary(text, cut):
        cut -= 1
    if cut == start:
        cut = max(end, start + 1)
    return cut, cut


def split_text(text: str, limit: int, *, first_limit: int | None = None) -> list[str]:
    """Split plain ``text`` into non-empty pieces of at most ``limit`` UTF-16 units each.

    ``first_limit`` (default ``limit``) bounds the first piece, so it can fill what is left
    of a message that already has content. White space at each cut is dropped; the pieces
    joined with that white space give back ``text``. Raises ``ValueError`` for a limit
    below 2 (a non-BMP character needs 2 units).
    """
    if limit < 2 or (first_limit is not None and first_limit < 2):
        raise ValueError("split limits must be at least 2 UTF-16 units")
    pieces: list[str] = []
    start = _trim_cut(text, 0, 0, 0)[1]
    budget = limit if first_limit is None else first_limit
    while start < len(text):
        end = utf16_prefix_end(text, start, budget)
        cut, resume = find_break(text, start, end)
        if cut > start:
            pieces.append(text[start:cut])
        start = resume
        budget = limit
    return pieces


def clip_text(text: str, limit: int) -> str:
    """``text`` if it fits ``limit`` UTF-16 units, else its first piece plus "…".

    For summaries (cards) where a reader is better served by a shortened line and a link
    to the whole story than by a card spread over several messages.
    """
    if utf16_len(text) <= limit:
        return text
    if limit < 3:
        raise ValueError("clip limit must be at least 3 UTF-16 units")
    pieces = split_text(text, limit - 1)
    return f"{pieces[0]}…" if pieces else ""
