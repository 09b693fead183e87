"""Highlight cards: one story's title, time, highlights and how to open it.

A card is a summary, so it is never spread over two messages: when a story's title or
highlights are too long for the budget they are shortened with "…" at a word boundary,
and the "Full story" line (a ``/story_<ref>`` command or a deep link, see
:mod:`bot.render.references`) always survives. Only ``/latest`` numbers its cards: a
number is a place in latest order, which is what ``/story N`` opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from bot.render.blocks import BOLD, ITALIC, Block, Span
from bot.render.dates import format_moment
from bot.render.html import TELEGRAM_ENTITY_LIMIT, TELEGRAM_TEXT_LIMIT, utf16_len
from bot.render.parts import BLOCK_HEADROOM, check_limits, pack_parts
from bot.render.references import StoryLinks
from bot.render.split import clip_text
from bot.stories.model import Story

__all__ = [
    "COMMANDS",
    "LATEST_HEADER",
    "card_block",
    "card_moment",
    "render_card",
    "render_latest",
    "story_command",
]

COMMANDS = StoryLinks()
"""References as plain ``/story_<key>`` commands: for callers without a story library."""

LATEST_HEADER = "📰 Latest stories"
_BULLET = "\n• "
_BULLET_UNITS = len(_BULLET)
_MIN_CLIPPED = 8  # a highlight shortened below this many units is dropped instead


def story_command(story: Story, links: StoryLinks = COMMANDS) -> str:
    """The command that opens ``story`` in full: ``/story_<ref>``."""
    return links.command(story)


_FULL_STORY = "Full story: "


def card_moment(story: Story, tz: tzinfo) -> str:
    """"Updated <time>" for a story updated after it was published, else "Published
    <time>": a card never claims an update that did not happen."""
    if story.updated != story.published:
        return f"Updated {format_moment(story.updated, tz)}"
    return f"Published {format_moment(story.published, tz)}"


def _card(title: str, updated: str, highlights: Sequence[str], link: Span) -> Block:
    bullets = "".join(f"{_BULLET}{h}" for h in highlights)
    heading = (Span(title, BOLD), Span("\n")) if title.strip() else ()
    return Block((*heading, Span(updated, ITALIC), Span(f"{bullets}\n{_FULL_STORY}"), link))


def card_block(
    story: Story,
    tz: tzinfo,
    *,
    number: int | None = None,
    max_units: int = TELEGRAM_TEXT_LIMIT,
    links: StoryLinks = COMMANDS,
) -> Block:
    """The card as a block (two entities, three with a deep link), at most ``max_units``
    UTF-16 units long.

    ``number`` prefixes the title ("1. ") in ``/latest``; ``links`` says how the card
    refers to the full story.
    """
    title = story.title.strip() if number is None else f"{number}. {story.title.strip()}"
    updated = card_moment(story, tz)
    link = links.span(story)
    highlights = [h.strip() for h in story.highlights if h.strip()]
    block = _card(title, updated, highlights, link)
    if block.units <= max_units:
        return block
    room = max_units - utf16_len(updated) - utf16_len(_FULL_STORY + link.text) - 2
    title = clip_text(title, max(room // 3, _MIN_CLIPPED))
    room -= utf16_len(title)
    kept: list[str] = []
    for highlight in highlights:
        units = _BULLET_UNITS + utf16_len(highlight)
        if units <= room:
            kept.append(highlight)
            room -= units
            continue
        if room - _BULLET_UNITS >= _MIN_CLIPPED:
            kept.append(clip_text(highlight, room - _BULLET_UNITS))
        break
    return _card(title, updated, kept, link)


def render_card(
    story: Story,
    tz: tzinfo,
    *,
    number: int | None = None,
    limit: int = TELEGRAM_TEXT_LIMIT,
    links: StoryLinks = COMMANDS,
) -> str:
    """One story's highlight card as a single Telegram-HTML message.

    Times are shown in the reader's zone ``tz``; ``number`` prefixes the title ("1. ").
    """
    check_limits(limit, TELEGRAM_ENTITY_LIMIT)
    return card_block(story, tz, number=number, max_units=limit, links=links).render()


def render_latest(
    stories: Sequence[Story],
    tz: tzinfo,
    *,
    header: str = LATEST_HEADER,
    limit: int = TELEGRAM_TEXT_LIMIT,
    max_entities: int = TELEGRAM_ENTITY_LIMIT,
    links: StoryLinks = COMMANDS,
    numbered: bool = True,
) -> list[str]:
    """A header and cards of ``stories`` (in the order given), packed into parts; numbered
    from 1 when they are the start of ``/latest``.

    With no stories the single part says so, so a caller always has something to send.
    """
    check_limits(limit, max_entities)
    blocks = [Block.of(Span(header, BOLD))]
    blocks += [
        card_block(story, tz, number=n if numbered else None,
                   max_units=limit - BLOCK_HEADROOM, links=links)
        for n, story in enumerate(stories, start=1)
    ]
    if not stories:
        blocks.append(Block.of("No stories yet."))
    return pack_parts(blocks, limit=limit, max_entities=max_entities)
