"""Packing blocks into message parts that each fit Telegram's limits.

Whole blocks are packed greedily, separated by a blank line; a block that does not fit an
empty part is split as plain text (see :mod:`bot.render.blocks`), its first piece filling
what is left of the current part when that is worth it. When more than one part results,
each gets an italic "(i/n)" footer; room for it is reserved up front and the packing is
redone with a bigger reserve in the rare case the count needs more digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.render.blocks import Block, split_block
from bot.render.html import TELEGRAM_ENTITY_LIMIT, TELEGRAM_TEXT_LIMIT

__all__ = [
    "BLOCK_HEADROOM",
    "MIN_ENTITIES",
    "MIN_LIMIT",
    "check_limits",
    "pack_parts",
    "part_footer",
]

MIN_LIMIT = 128
"""Smallest text limit accepted: a card's fixed lines must fit with room to spare."""

MIN_ENTITIES = 4
"""Smallest entity limit accepted: a card (2), the part footer (1) and one more."""

BLOCK_HEADROOM = 16
"""A block at most ``limit - BLOCK_HEADROOM`` units long fits one part, footer included
(up to 99,999 parts), so it is never split."""

_SEPARATOR = "\n\n"
_SEPARATOR_UNITS = len(_SEPARATOR)
# A first piece is squeezed into the current part only if it gets this share of a part.
_MIN_FILL_DIVISOR = 4


def check_limits(limit: int, max_entities: int) -> None:
    """Reject limits too small to render anything sensible, with a message that says so."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} UTF-16 units, got {limit}")
    if max_entities < MIN_ENTITIES:
        raise ValueError(f"max_entities must be at least {MIN_ENTITIES}, got {max_entities}")


def part_footer(index: int, count: int) -> str:
    """The "(i/n)" footer (HTML) that tells a reader which part of a message this is."""
    return f"{_SEPARATOR}<i>({index}/{count})</i>"


def _footer_units(digits: int) -> int:
    return _SEPARATOR_UNITS + len("(/)") + 2 * digits


@dataclass(slots=True)
class _Packer:
    """Greedy packing state for one pass; local to a call, never shared."""

    units: int
    entities: int
    parts: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    used_units: int = 0
    used_entities: int = 0

    def room(self) -> tuple[int, int]:
        if not self.current:
            return self.units, self.entities
        return self.units - self.used_units - _SEPARATOR_UNITS, self.entities - self.used_entities

    def add(self, block: Block) -> None:
        if self.current:
            self.used_units += _SEPARATOR_UNITS
        self.current.append(block.render())
        self.used_units += block.units
        self.used_entities += block.entities

    def flush(self) -> None:
        if self.current:
            self.parts.append(_SEPARATOR.join(self.current))
        self.current = []
        self.used_units = self.used_entities = 0

    def place(self, block: Block) -> None:
        units, entities = block.units, block.entities
        room_units, room_entities = self.room()
        if units <= room_units and entities <= room_entities:
            self.add(block)
            return
        if self.current and units <= self.units and entities <= self.entities:
            self.flush()
            self.add(block)
            return
        if room_units < self.units // _MIN_FILL_DIVISOR or room_entities < 1:
            self.flush()
            room_units, room_entities = self.room()
        pieces = split_block(
            block, first=(room_units, room_entities), rest=(self.units, self.entities)
        )
        for index, piece in enumerate(pieces):
            if index:
                self.flush()
            if not piece.is_empty():
                self.add(piece)


def _pack(blocks: list[Block], units: int, entities: int) -> list[str]:
    packer = _Packer(units, entities)
    for block in blocks:
        packer.place(block)
    packer.flush()
    return packer.parts


def pack_parts(
    blocks: Iterable[Block],
    *,
    limit: int = TELEGRAM_TEXT_LIMIT,
    max_entities: int = TELEGRAM_ENTITY_LIMIT,
) -> list[str]:
    """Telegram-HTML message parts holding ``blocks`` in order, each within the limits.

    Empty blocks are skipped, so an empty section never yields a heading or an empty part;
    no blocks at all give an empty list.
    """
    check_limits(limit, max_entities)
    wanted = [block for block in blocks if not block.is_empty()]
    digits = 1
    while True:
        parts = _pack(wanted, limit - _footer_units(digits), max_entities - 1)
        if len(parts) < 10**digits:
            break
        digits = len(str(len(parts)))
    if len(parts) == 1:
        return parts
    return [part + part_footer(i, len(parts)) for i, part in enumerate(parts, start=1)]
