"""Inline mode: ``@bot words`` offers matching story cards to share in any chat.

A shared card may land in a chat the bot is not in, where no command reaches it: its
reference is a deep link into a private chat, like the button under it.
"""

from __future__ import annotations

import asyncio

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)

from bot.render import StoryLinks, render_card
from bot.render.split import clip_text
from bot.telegram.context import BotContext
from bot.telegram.keyboards import deep_link

__all__ = ["INLINE_PAGE", "on_inline_query"]

INLINE_PAGE = 50  # Telegram's maximum results per answer
_DESCRIPTION = 120  # UTF-16 units, "…" included
_TITLE = 200
_MAX_OFFSET_DIGITS = 9  # far beyond any library; only offsets this bot gave come back


def _start(offset: str) -> int | None:
    """Where a page starts: 0 for the first; the ``next_offset`` this bot gave, for the
    next. Anything else was never given (a client or a person playing with the query):
    None, so it gets an empty page rather than a crash on a 5,000-digit number."""
    if not offset:
        return 0
    if offset.isascii() and offset.isdigit() and len(offset) <= _MAX_OFFSET_DIGITS:
        return int(offset)
    return None


async def on_inline_query(update: Update, context: BotContext) -> None:
    query = update.inline_query
    if query is None:
        return
    services = context.services
    words = query.query.strip()
    start = _start(query.offset)
    if start is None:
        await query.answer([], cache_time=30, is_personal=False)
        return
    library = services.library
    if words:
        hits = await services.search_pool.run(library.search_page, words, start, INLINE_PAGE)
        page, total = list(hits.stories), hits.total
    else:
        page, total = await asyncio.to_thread(library.latest, start, INLINE_PAGE), \
            library.count()
    zone = await services.reader_zone()
    links = StoryLinks.deep_links(services.bot_username, services.library.reference)
    results = [
        InlineQueryResultArticle(
            id=story.key,
            title=clip_text(story.title, _TITLE),
            description=clip_text(
                story.highlights[0] if story.highlights else story.story[0], _DESCRIPTION),
            input_message_content=InputTextMessageContent(render_card(story, zone, links=links)),
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                "Open the full story", url=deep_link(services.bot_username, story))]]),
        )
        for story in page
    ]
    more = start + INLINE_PAGE < total
    await query.answer(results, next_offset=str(start + INLINE_PAGE) if more else None,
                       cache_time=30, is_personal=False)
