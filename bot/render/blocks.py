"""Blocks: the unit messages are packed from, kept as plain text until rendered.

A :class:`Block` is a run of :class:`Span` s, each plain text with a formatting style (the
tags wrapped around it). Keeping the text plain until the last moment is what makes
splitting safe: a block too big for one message is cut as plain text and every piece is
re-wrapped in its span's tags, so a long opinion blockquote continues as a blockquote and a
50,000-character paragraph becomes several separately escaped paragraphs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.render.html import escape, utf16_len
from bot.render.split import find_break, utf16_prefix_end

__all__ = ["BOLD", "EXPANDABLE_QUOTE", "ITALIC", "PLAIN", "Block", "Span", "split_block"]

PLAIN: tuple[str, ...] = ()
BOLD: tuple[str, ...] = ("b",)
ITALIC: tuple[str, ...] = ("i",)
EXPANDABLE_QUOTE: tuple[str, ...] = ("blockquote expandable",)


@dataclass(frozen=True, slots=True)
class Span:
    """Plain ``text`` shown with ``style``: opening tags (with attributes), outermost first."""

    text: str
    style: tuple[str, ...] = PLAIN

    def render(self) -> str:
        """Telegram HTML for this span; an empty span renders nothing (no empty entity)."""
        if not self.text:
            return ""
        if not self.style:
            return escape(self.text)
        opening = "".join(f"<{tag}>" for tag in self.style)
        closing = "".join(f"</{tag.split(' ', 1)[0]}>" for tag in reversed(self.style))
        return f"{opening}{escape(self.text)}{closing}"


@dataclass(frozen=True, slots=True)
class Block:
    """A unit of a message that is kept whole in one part whenever it fits."""

    spans: tuple[Span, ...]

    @classmethod
    def of(cls, *spans: Span | str) -> Block:
        """Build a block from spans; a bare string is plain text."""
        return cls(tuple(s if isinstance(s, Span) else Span(s) for s in spans))

    @property
    def text(self) -> str:
        """The plain text a reader sees."""
        return "".join(span.text for span in self.spans)

    @property
    def units(self) -> int:
        """Visible length in UTF-16 code units."""
        return sum(utf16_len(span.text) for span in self.spans)

    @property
    def entities(self) -> int:
        """Formatting entities this block renders (one per tag of a non-empty span)."""
        return sum(len(span.style) for span in self.spans if span.text)

    def is_empty(self) -> bool:
        """True when nothing visible would be rendered."""
        return not self.text.strip()

    def render(self) -> str:
        """Telegram HTML for the block."""
        return "".join(span.render() for span in self.spans)


def _entity_end(spans: tuple[Span, ...], offsets: list[int], start: int, budget: int) -> int:
    """The furthest position a piece starting at ``start`` may reach within ``budget``."""
    used = 0
    for span, span_start in zip(spans, offsets, strict=False):
        span_end = span_start + len(span.text)
        if span_end <= start or not span.text:
            continue
        used += len(span.style)
        if used > budget:
            return max(start, span_start)
    return offsets[-1]


def _slice(spans: tuple[Span, ...], offsets: list[int], start: int, end: int) -> Block:
    pieces: list[Span] = []
    for span, span_start in zip(spans, offsets, strict=False):
        lo = max(start, span_start)
        hi = min(end, span_start + len(span.text))
        if lo < hi:
            pieces.append(Span(span.text[lo - span_start : hi - span_start], span.style))
    return Block(tuple(pieces))


def split_block(
    block: Block,
    *,
    first: tuple[int, int],
    rest: tuple[int, int],
) -> list[Block]:
    """Cut ``block`` into pieces within ``(units, entities)`` budgets, as plain text.

    The first piece gets the ``first`` budget (what is left of the current message), the
    others ``rest``. The first piece may be an empty block (nothing fitted the ``first`` budget),
    telling the caller to start a new message. Raises ``ValueError`` when ``rest`` cannot
    hold even one character with its formatting.
    """
    spans = block.spans
    offsets = [0]
    for span in spans:
        offsets.append(offsets[-1] + len(span.text))
    text = block.text
    pieces: list[Block] = []
    start = len(text) - len(text.lstrip())
    units, entities = first
    first_slot = True
    while start < len(text):
        end = min(
            utf16_prefix_end(text, start, units),
            _entity_end(spans, offsets, start, entities),
        )
        if end <= start:
            if not first_slot:
                raise ValueError("message budget too small for this block's formatting")
            pieces.append(Block(()))
        else:
            cut, resume = find_break(text, start, end)
            piece = _slice(spans, offsets, start, cut)
            if first_slot or not piece.is_empty():
                pieces.append(piece)
            start = resume
        first_slot = False
        units, entities = rest
    return pieces
