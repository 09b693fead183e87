"""A compact list of headlines that always fits one message.

Paged lists (``/latest`` when cards do not fit, search results, ambiguous references) are
edited in place by inline buttons, so each page must be exactly one message: titles are
clipped rather than spilling into a second part. Only ``/latest`` numbers its entries: a
number is a place in latest order, which ``/story N`` opens; every other list names each
story by its ``/story_<ref>`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from bot.render.blocks import BOLD, ITALIC, Block, Span
from bot.render.cards import COMMANDS, card_block
from bot.render.dates import format_moment
from bot.render.html import TELEGRAM_TEXT_LIMIT
from bot.render.parts import pack_parts
from bot.render.references import StoryLinks
from bot.render.split import clip_text
from bot.stories.model import Story

__all__ = ["MAX_HEADLINES", "render_headlines", "render_latest_page"]

MAX_HEADLINES = 20
_TITLE_UNITS = 140  # 20 lines of clipped titles plus their details stay far below 4096


def render_headlines(
    stories: Sequence[Story],
    tz: tzinfo,
    *,
    header: str,
    first_number: int | None = None,
    footer: str = "",
    links: StoryLinks = COMMANDS,
) -> str:
    """A bold header, then per story its title (``n. Title`` from ``first_number`` on, for
    ``/latest``), its update time and its reference."""
    if len(stories) > MAX_HEADLINES:
        raise ValueError(f"at most {MAX_HEADLINES} headlines fit one message")
    spans: list[Span] = [Span(header, BOLD)]
    for offset, story in enumerate(stories):
        number = "" if first_number is None else f"{first_number + offset}. "
        spans.append(Span(f"\n\n{number}"))
        spans.append(Span(clip_text(story.title, _TITLE_UNITS), BOLD))
        spans.append(Span(f"\n{format_moment(story.updated, tz)} · "))
        spans.append(links.span(story))
    if footer:
        spans += [Span("\n\n"), Span(footer, ITALIC)]
    block = Block(tuple(spans))
    if block.units > TELEGRAM_TEXT_LIMIT:  # only an absurdly long header or footer
        raise ValueError("headline list too long for one message")
    return block.render()


def render_latest_page(
    stories: Sequence[Story],
    tz: tzinfo,
    *,
    header: str,
    first_number: int = 1,
    footer: str = "",
    links: StoryLinks = COMMANDS,
) -> str:
    """One page of ``/latest`` as ONE message: full cards numbered by their place when they
    fit, else the compact headline list (the inline keyboard edits this message in place)."""
    blocks = [Block.of(Span(header, BOLD))]
    blocks += [card_block(story, tz, number=n, links=links) for n, story in
               enumerate(stories, start=first_number)]
    if footer:
        blocks.append(Block.of(Span(footer, ITALIC)))
    parts = pack_parts(blocks) if stories else []
    if len(parts) == 1:
        return parts[0]
    return render_headlines(stories, tz, header=header, first_number=first_number,
                            footer=footer, links=links)
