"""Reader handlers: /start, /help, /latest, /story, /story_<ref>, /search, plain-text search,
buttons.

Thin on purpose: parse the arguments, ask the story library, render, reply. Every story a
reply names carries its ``/story_<ref>`` (addressed to the bot in groups), and only
``/latest`` numbers stories: ``/story N`` opens place N of /latest. Replies use
``Message.reply_text``, which keeps forum-topic replies in their topic. A long story goes
out ``telegram.story_parts_at_once`` parts at a time, with a "Continue" button under the
last part sent: Telegram lets a chat have about one message a second, so 52 parts at once
would hold the chat for a minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from html import escape

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.render import STORY_COMMAND_PREFIX, StoryLinks, render_story
from bot.render.headlines import render_headlines, render_latest_page
from bot.render.references import DEEP_LINK_PREFIX, SETTINGS_PAYLOAD
from bot.render.split import clip_text
from bot.stories.model import Story
from bot.stories.search import ignored_words, query_words
from bot.telegram.callbacks import (
    LatestPage,
    MoreParts,
    OpenStory,
    SearchPage,
    parse_callback,
    parts_tag,
)
from bot.telegram.commands import help_text, usage
from bot.telegram.context import BotContext
from bot.telegram.destinations import destination_of
from bot.telegram.keyboards import (
    continue_keyboard,
    deep_link,
    latest_keyboard,
    open_keyboard,
    search_keyboard,
)
from bot.telegram.subscribers import on_settings

__all__ = [
    "STORY_COMMAND_PATTERN",
    "on_button",
    "on_help",
    "on_latest",
    "on_search",
    "on_start",
    "on_story",
    "on_story_command",
    "on_text",
    "on_unknown",
]

log = logging.getLogger(__name__)

DEFAULT_LATEST = 5
MAX_LATEST = 20
SEARCH_PAGE = 5
MAX_CHOICES = 10
_ECHO = 60  # characters of a reader's input quoted back

WELCOME = (
    "👋 <b>Story briefings</b>\n"
    "I bring you the newsroom's stories: the latest highlights, any story in full, search, "
    "and a daily briefing at the time you choose.\n\n"
    "Try /latest, /subscribe for a daily briefing, or /help for everything I can do."
)


STORY_COMMAND_PATTERN = rf"(?i)^/{STORY_COMMAND_PREFIX}"
"""Messages starting like ``/story_<ref>``: :func:`on_story_command` answers them."""
GONE = ("That story is no longer available: it may have been taken down. "
        "/latest shows the newest stories.")


def _echo(text: str) -> str:
    """A reader's input quoted back, as plain text: one line, clipped at a word."""
    return clip_text(" ".join(text.split()), _ECHO) if text.strip() else ""


def _quoted(text: str) -> str:
    """:func:`_echo` escaped, for a reply written as HTML here (a renderer escapes its own
    text: quoting there takes :func:`_echo`, or "&" would show as "&amp;")."""
    return escape(_echo(text))


def _nothing_to_search(text: str) -> str:
    """Why a query found nothing without being searched: no word long enough."""
    if ignored_words(text):
        return (f"Single letters and digits are not searched, so “{_quoted(text)}” leaves "
                "nothing to look for. Try longer words, or /latest for the newest stories.")
    return (f"“{_quoted(text)}” has no words to look for. Try a word from a title, or "
            "/latest for the newest stories.")


def _links(context: BotContext, message: Message) -> StoryLinks:
    """How replies in this chat name stories: ``/story_<ref>``, with ``@bot`` in groups."""
    services = context.services
    return StoryLinks.for_chat(message.chat.type, services.bot_username,
                               services.library.reference)


async def _story_parts(context: BotContext, message: Message, story: Story) -> list[str]:
    services = context.services
    zone = await services.reader_zone(destination_of(message))
    parts = services.story_parts.get((story, zone.key))
    if parts is None:
        parts = render_story(story, zone)
        services.story_parts.put((story, zone.key), parts)
    return parts


async def _send_parts(message: Message, story: Story, parts: Sequence[str], start: int,
                      context: BotContext) -> None:
    """Parts ``start``… of a story, at most ``story_parts_at_once`` of them; "Continue"
    under the last one sent when more remain."""
    end = min(len(parts), start + context.services.settings.telegram.story_parts_at_once)
    more = (continue_keyboard(story, end, len(parts), parts_tag(parts))
            if end < len(parts) else None)
    for index in range(start, end):
        await message.reply_text(parts[index], do_quote=False,
                                 reply_markup=more if index == end - 1 else None)


async def _send_story(message: Message, story: Story, context: BotContext) -> None:
    await _send_parts(message, story, await _story_parts(context, message, story), 0, context)


async def _continue_story(query: CallbackQuery, message: Message, action: MoreParts,
                          context: BotContext) -> None:
    """The next batch of a long story, once per button however often it is pressed."""
    story = context.services.library.get(action.key)
    if story is None:
        await query.answer("That story is no longer available. Try /latest.")
        return
    parts = await _story_parts(context, message, story)
    if parts_tag(parts) != action.tag or not 0 < action.start < len(parts):
        await query.answer(f"This story has changed since. Send /story {story.key} to read "
                           "it again from the start.", show_alert=True)
        return
    await query.answer()
    # The button goes first: a second press (a double tap) then finds nothing to remove.
    try:
        await message.edit_reply_markup(reply_markup=None)
    except BadRequest as error:
        if "not modified" in error.message:
            return  # already pressed: that press is sending this batch
        log.info("could not remove a Continue button: %s", error.message)
    await _send_parts(message, story, parts, action.start, context)


async def _latest_page(context: BotContext, message: Message, start: int,
                       size: int) -> tuple[str, InlineKeyboardMarkup]:
    services = context.services
    zone = await services.reader_zone(destination_of(message))
    links = _links(context, message)
    cache_key = (services.library.version, start, size, f"{zone.key} {links.label}")
    cached = services.latest_pages.get(cache_key)
    if cached is not None:
        return cached
    library = services.library
    total = library.count()
    page = await asyncio.to_thread(library.latest, start, size)
    footer = f"{start + 1}–{start + len(page)} of {total}" if total > size else ""
    text = render_latest_page(page, zone, header="📰 Latest stories",
                              first_number=start + 1, footer=footer, links=links)
    keyboard = latest_keyboard(page, start + 1, size, has_newer=start > 0,
                               has_older=start + size < total)
    services.latest_pages.put(cache_key, (text, keyboard))
    return text, keyboard


async def _search_page(context: BotContext, message: Message, query: str, session: str,
                       page_number: int) -> tuple[str, InlineKeyboardMarkup] | None:
    library, searching = context.services.library, context.services.search_pool
    hits = await searching.run(library.search_page, query, page_number * SEARCH_PAGE,
                               SEARCH_PAGE)
    if not hits.total:
        return None
    pages = (hits.total + SEARCH_PAGE - 1) // SEARCH_PAGE
    if page_number >= pages:  # the results shrank since this page was shown
        page_number = pages - 1
        hits = await searching.run(library.search_page, query,
                                   page_number * SEARCH_PAGE, SEARCH_PAGE)
    page = hits.stories
    footer = f"Page {page_number + 1} of {pages}" if pages > 1 else ""
    found = f"More than {hits.total}" if hits.more else str(hits.total)
    zone = await context.services.reader_zone(destination_of(message))
    text = render_headlines(page, zone, header=f"🔎 {found} found for “{_echo(query)}”",
                            footer=footer, links=_links(context, message),
                            marks=query_words(query))
    keyboard = search_keyboard(page, session, page_number, has_more=page_number + 1 < pages)
    return text, keyboard


async def on_start(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None:
        return
    payload = context.args[0] if context.args else ""
    if payload == SETTINGS_PAYLOAD:  # the settings button under a channel's briefing
        await on_settings(update, context)
        return
    if payload.startswith(DEEP_LINK_PREFIX):
        library = context.services.library
        key = payload.removeprefix(DEEP_LINK_PREFIX)
        story = library.get(key.lower())
        if story is None and len(matches := library.by_reference(key)) == 1:
            story = matches[0]
        if story is not None:
            await _send_story(message, story, context)
        else:
            await message.reply_text(GONE)
        return
    await message.reply_text(WELCOME)


async def on_help(update: Update, context: BotContext) -> None:
    if update.effective_message:
        await update.effective_message.reply_text(help_text(context.services.bot_username))


async def on_latest(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None:
        return
    size = DEFAULT_LATEST
    if context.args:
        if len(context.args) > 1 or not context.args[0].isdecimal() or not (
                1 <= int(context.args[0]) <= MAX_LATEST):
            await message.reply_text(f"Please give a number from 1 to {MAX_LATEST}.\n"
                                     + usage("latest"))
            return
        size = int(context.args[0])
    if not context.services.library.count():
        await message.reply_text("No stories yet — please check back soon.")
        return
    text, keyboard = await _latest_page(context, message, 0, size)
    await message.reply_text(text, reply_markup=keyboard)


async def _reply_choices(message: Message, context: BotContext, matches: Sequence[Story],
                         header: str, marks: Sequence[str] = (), total: int | None = None
                         ) -> None:
    """A list to pick from (plain text ``header``); ``marks``: the searched words, when the
    matches are search results; ``total``: how many matched, when more than listed."""
    shown = matches[:MAX_CHOICES]
    more = (len(matches) if total is None else total) - len(shown)
    zone = await context.services.reader_zone(destination_of(message))
    text = render_headlines(shown, zone, header=header, links=_links(context, message),
                            footer=f"and {more} more — try more words" if more else "",
                            marks=marks)
    await message.reply_text(text, reply_markup=open_keyboard(shown))


async def on_story(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None:
        return
    reference = " ".join(context.args or ())
    if not reference:
        await message.reply_text(usage("story"))
        return
    lookup = await asyncio.to_thread(context.services.library.find, reference)
    if lookup.story is not None:
        await _send_story(message, lookup.story, context)
    elif lookup.matches:
        await _reply_choices(message, context, lookup.matches,
                             f"{lookup.count} stories match “{_echo(reference)}” — "
                             "pick one:",
                             query_words(reference) if lookup.kind == "search" else (),
                             total=lookup.count)
    elif lookup.kind == "position":
        await message.reply_text(
            f"There is no story number {escape(reference.strip())}; there are "
            f"{context.services.library.count()}. /latest shows the newest ones.")
    elif lookup.kind == "search" and not query_words(reference):
        await message.reply_text(_nothing_to_search(reference))
    else:
        await message.reply_text(f"No story matches “{_quoted(reference)}”. "
                                 "/latest shows the newest stories.")


async def on_story_command(update: Update, context: BotContext) -> None:
    """``/story_<ref>`` (``@bot`` in groups): the tappable reference every message prints.
    A reference another bot is addressed with is that bot's."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command = message.text.split(maxsplit=1)[0]
    reference, _, addressee = command[1 + len(STORY_COMMAND_PREFIX):].partition("@")
    if addressee and addressee.lower() != context.services.bot_username.lower():
        return
    if not reference:
        await message.reply_text(usage("story"))
        return
    matches = context.services.library.by_reference(reference)
    if len(matches) == 1:
        await _send_story(message, matches[0], context)
    elif matches:  # a newer story now shares this reference's prefix
        await _reply_choices(message, context, matches,
                             f"{len(matches)} stories now share this reference — pick one:")
    else:
        await message.reply_text(GONE)


async def _search(message: Message, context: BotContext, query: str) -> None:
    if not query_words(query):
        await message.reply_text(_nothing_to_search(query))
        return
    session = context.services.searches.remember(query)
    page = await _search_page(context, message, query, session, 0)
    if page is None:
        await message.reply_text(f"No stories match “{_quoted(query)}”. Try fewer words, "
                                 "or /latest for the newest stories.")
        return
    text, keyboard = page
    await message.reply_text(text, reply_markup=keyboard)


async def on_search(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None:
        return
    query = " ".join(context.args or ())
    if not query.strip():
        await message.reply_text(usage("search"))
        return
    await _search(message, context, query)


async def on_text(update: Update, context: BotContext) -> None:
    """Plain text in a private chat is a search."""
    message = update.effective_message
    if message is None or not message.text:
        return
    await _search(message, context, message.text)


async def on_unknown(update: Update, context: BotContext) -> None:
    """A hint for commands meant for this bot; other bots' commands in groups are theirs."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command = message.text.split(maxsplit=1)[0]
    _, _, addressee = command.partition("@")
    ours = addressee.lower() == context.services.bot_username.lower()
    if (addressee and not ours) or (message.chat.type != "private" and not ours):
        return
    await message.reply_text("I don't know that command. /help lists what I can do.")


async def _edit(message: Message, text: str, keyboard: InlineKeyboardMarkup) -> None:
    try:
        await message.edit_text(text, reply_markup=keyboard)
    except BadRequest as error:
        if "not modified" not in error.message:
            raise


async def on_button(update: Update, context: BotContext) -> None:
    """Buttons of story lists: open a story, page /latest or search results, and the
    "Continue" button under a long story."""
    query = update.callback_query
    if query is None:
        return
    action = parse_callback(query.data)
    message = query.message if isinstance(query.message, Message) else None
    if action is None or message is None:
        await query.answer("This button no longer works. Try /latest.")
        return
    library = context.services.library
    if isinstance(action, OpenStory):
        story = library.get(action.key)
        if story is None:
            await query.answer("That story is no longer available. Try /latest.")
            return
        if message.chat.type == ChatType.CHANNEL:  # not for every reader: a private chat
            await query.answer(url=deep_link(context.services.bot_username, story))
            return
        await query.answer()
        await _send_story(message, story, context)
    elif isinstance(action, LatestPage):
        anchor = await asyncio.to_thread(library.position_of, action.anchor)
        if anchor is None:
            await query.answer("That list changed — here are the latest stories.")
            start = 0
        else:
            await query.answer()
            start = anchor + 1 if action.direction == "o" else max(0, anchor - action.size)
        text, keyboard = await _latest_page(context, message, start, action.size)
        await _edit(message, text, keyboard)
    elif isinstance(action, SearchPage):
        search = context.services.searches.recall(action.session)
        page = (await _search_page(context, message, search, action.session, action.page)
                if search else None)
        if page is None:
            await query.answer("This search has expired — please search again.")
            return
        await query.answer()
        await _edit(message, *page)
    elif isinstance(action, MoreParts):
        await _continue_story(query, message, action, context)
