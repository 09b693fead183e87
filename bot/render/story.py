"""The full story: title, dates, highlights, paragraphs and opinions, in numbered parts.

Each paragraph is its own block so parts break between paragraphs; opinions go in one
expandable blockquote (they are secondary and long), which continues as a blockquote in
the next part when it has to be split.
"""

from __future__ import annotations

from datetime import tzinfo

from bot.render.blocks import BOLD, EXPANDABLE_QUOTE, ITALIC, Block, Span
from bot.render.dates import format_moment
from bot.render.html import TELEGRAM_ENTITY_LIMIT, TELEGRAM_TEXT_LIMIT
from bot.render.parts import pack_parts
from bot.stories.model import Story

__all__ = ["OPINIONS_HEADING", "render_story", "story_blocks"]

OPINIONS_HEADING = "💬 Opinions"


def _present(items: tuple[str, ...]) -> list[str]:
    """Items with visible text, trimmed; blank ones would only render as empty lines."""
    return [item.strip() for item in items if item.strip()]


def story_blocks(story: Story, tz: tzinfo) -> list[Block]:
    """The full story as blocks, times in the reader's zone ``tz``; empty sections omitted.

    The "Updated" line is left out when the story was never updated after publication.
    """
    dates = f"Published {format_moment(story.published, tz)}"
    if story.updated != story.published:
        dates += f"\nUpdated {format_moment(story.updated, tz)}"
    title = story.title.strip()
    heading = (Span(title, BOLD), Span("\n")) if title else ()
    blocks = [Block.of(*heading, Span(dates, ITALIC))]
    highlights = _present(story.highlights)
    if highlights:
        blocks.append(Block.of("\n".join(f"• {h}" for h in highlights)))
    blocks += [Block.of(paragraph) for paragraph in _present(story.story)]
    opinions = _present(story.opinions)
    if opinions:
        blocks.append(
            Block.of(
                Span(OPINIONS_HEADING, BOLD), "\n", Span("\n\n".join(opinions), EXPANDABLE_QUOTE)
            )
        )
    return blocks


def render_story(
    story: Story,
    tz: tzinfo,
    *,
    limit: int = TELEGRAM_TEXT_LIMIT,
    max_entities: int = TELEGRAM_ENTITY_LIMIT,
) -> list[str]:
    """The full story as Telegram-HTML parts, each within ``limit`` and ``max_entities``;
    more than one part are numbered "(i/n)"."""
    return pack_parts(story_blocks(story, tz), limit=limit, max_entities=max_entities)
