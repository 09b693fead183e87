"""The daily briefing: a dated header, the top stories as cards, and what was left out.

The date is passed in (the reader's local date when the briefing is due), never read from
a clock, so a briefing rendered late or retried shows the day it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, tzinfo

from bot.render.blocks import BOLD, Block, Span
from bot.render.cards import COMMANDS, card_block
from bot.render.dates import format_day
from bot.render.html import TELEGRAM_ENTITY_LIMIT, TELEGRAM_TEXT_LIMIT
from bot.render.parts import BLOCK_HEADROOM, check_limits, pack_parts
from bot.render.references import StoryLinks
from bot.stories.model import Story

__all__ = ["NO_NEWS_NOTE", "briefing_header", "render_digest", "render_no_news"]

NO_NEWS_NOTE = "No new stories since your last briefing. /latest shows the most recent ones."
DEFAULT_TOP_N = 8


def briefing_header(local_date: date) -> Block:
    """The bold briefing header, e.g. "☀️ Your briefing — Monday, 31 March 2025"."""
    return Block.of(Span(f"☀️ Your briefing — {format_day(local_date)}", BOLD))


def render_no_news(tz: tzinfo, local_date: date) -> str:
    """The briefing sent on a day without new stories, so a subscriber knows it still works.

    ``tz`` mirrors :func:`render_digest`'s signature; the note shows no time of day.
    """
    return pack_parts([briefing_header(local_date), Block.of(NO_NEWS_NOTE)])[0]


def render_digest(
    stories: Sequence[Story],
    tz: tzinfo,
    *,
    local_date: date,
    top_n: int = DEFAULT_TOP_N,
    total: int | None = None,
    limit: int = TELEGRAM_TEXT_LIMIT,
    max_entities: int = TELEGRAM_ENTITY_LIMIT,
    links: StoryLinks = COMMANDS,
) -> list[str]:
    """The briefing for ``local_date``: the first ``top_n`` of ``stories`` as cards.

    Cards are not numbered (a number is a place in ``/latest``); each names its story as
    ``links`` says. ``stories`` are in the order to show; ``total`` is how many new stories
    there are in all (default: ``len(stories)``, so a caller may pass only the top ones).
    When some are not shown, a closing line says "and K more — /latest". No stories give
    the no-news note.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    check_limits(limit, max_entities)
    if not stories:
        return [render_no_news(tz, local_date)]
    shown = stories[:top_n]
    more = max(total if total is not None else 0, len(stories)) - len(shown)
    blocks = [briefing_header(local_date)]
    blocks += [card_block(story, tz, max_units=limit - BLOCK_HEADROOM, links=links)
               for story in shown]
    if more > 0:
        blocks.append(Block.of(f"and {more} more — /latest"))
    return pack_parts(blocks, limit=limit, max_entities=max_entities)
