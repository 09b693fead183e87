"""Pure rendering: stories to Telegram-HTML message parts, escaped and within limits.

Nothing here sends, reads files or imports ``telegram``. Every function returns text a
caller can pass with ``parse_mode=HTML``; lists are parts to send in order. The block
API (:class:`Block`, :func:`card_block`, :func:`story_blocks`, :func:`pack_parts`) lets
callers compose other messages, e.g. search results, with the same guarantees.
"""

from bot.render.blocks import BOLD, EXPANDABLE_QUOTE, ITALIC, PLAIN, Block, Span
from bot.render.cards import COMMANDS, card_block, render_card, render_latest, story_command
from bot.render.dates import format_day, format_moment
from bot.render.digest import briefing_header, render_digest, render_no_news
from bot.render.html import (
    TELEGRAM_ENTITY_LIMIT,
    TELEGRAM_TEXT_LIMIT,
    count_entities,
    escape,
    message_problems,
    utf16_len,
    visible_length,
    visible_text,
)
from bot.render.parts import BLOCK_HEADROOM, pack_parts
from bot.render.references import STORY_COMMAND_PREFIX, StoryLinks, deep_link, key_reference
from bot.render.split import split_text
from bot.render.story import render_story, story_blocks

__all__ = [
    "BLOCK_HEADROOM",
    "BOLD",
    "COMMANDS",
    "EXPANDABLE_QUOTE",
    "ITALIC",
    "PLAIN",
    "STORY_COMMAND_PREFIX",
    "TELEGRAM_ENTITY_LIMIT",
    "TELEGRAM_TEXT_LIMIT",
    "Block",
    "Span",
    "StoryLinks",
    "briefing_header",
    "card_block",
    "count_entities",
    "deep_link",
    "escape",
    "format_day",
    "format_moment",
    "key_reference",
    "message_problems",
    "pack_parts",
    "render_card",
    "render_digest",
    "render_latest",
    "render_no_news",
    "render_story",
    "split_text",
    "story_blocks",
    "story_command",
    "utf16_len",
    "visible_length",
    "visible_text",
]
