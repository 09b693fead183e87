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
from bot.render.html import TELEGRAM_ENTITY_LIMIT, TELEGRAM_TEXT_LIMIT, escape, utf16_len
from bot.render.parts import pack_parts
from bot.render.references import StoryLinks
from bot.render.snippets import SNIPPET_UNITS, best_snippet, marked
from bot.render.split import clip_text
from bot.stories.model import Story

__all__ = ["MAX_HEADLINES", "render_headlines", "render_latest_page"]

MAX_HEADLINES = 20
_TITLE_UNITS = 140  # a title's length in a list; shorter when 20 would not fit one message
_MIN_TITLE = 8  # units a clipped title keeps at least
_MAX_MARKS = 3  # marked words per title and per snippet


def _mark_budget(count: int, fixed_entities: int) -> tuple[int, int]:
    """Marks per entry (title, snippet) so a list of ``count`` entries keeps within
    Telegram's entity limit: at most three each, fewer in a long list."""
    room = (TELEGRAM_ENTITY_LIMIT - fixed_entities) // count if count else 0
    per_entry = max(0, min(_MAX_MARKS * 2, room))
    return (per_entry + 1) // 2, per_entry // 2


def render_headlines(
    stories: Sequence[Story],
    tz: tzinfo,
    *,
    header: str,
    first_number: int | None = None,
    footer: str = "",
    links: StoryLinks = COMMANDS,
    marks: Sequence[str] = (),
) -> str:
    """A bold header, then per story its title (``n. Title`` from ``first_number`` on, for
    ``/latest``), its update time and its reference.

    ``marks`` are the searched words (:func:`bot.stories.search.query_words`) of a list of
    search results: the words of a title they match are in italics, and a short snippet
    of the highlight (else paragraph) holding most of them follows, its matches in bold.
    Titles and snippets are shortened as far as it takes to keep the list one message.
    """
    if len(stories) > MAX_HEADLINES:
        raise ValueError(f"at most {MAX_HEADLINES} headlines fit one message")
    words = tuple(marks)
    count = max(len(stories), 1)
    numbers = ["" if first_number is None else f"{first_number + i}. "
               for i in range(len(stories))]
    tails = [(f"\n{format_moment(story.updated, tz)} · ", links.span(story))
             for story in stories]
    fixed = utf16_len(header) + (utf16_len(footer) + 2 if footer else 0) + sum(
        utf16_len(f"\n\n{number}{tail}{link.text}")
        for number, (tail, link) in zip(numbers, tails, strict=True))
    if fixed + count * _MIN_TITLE > TELEGRAM_TEXT_LIMIT:  # only an absurdly long header
        raise ValueError("headline list too long for one message")
    room = (TELEGRAM_TEXT_LIMIT - fixed) // count
    titles = [clip_text(" ".join(story.title.split()), min(_TITLE_UNITS, room))
              for story in stories]
    room = (TELEGRAM_TEXT_LIMIT - fixed - sum(utf16_len(t) for t in titles)) // count - 1
    link_entities = sum(len(link.style) for _, link in tails)
    title_marks, snippet_marks = _mark_budget(
        len(stories), 2 + len(stories) + link_entities) if words else (0, 0)
    html = [Span(header, BOLD).render()]
    for story, number, title, (tail, link) in zip(stories, numbers, titles, tails,
                                                   strict=True):
        html.append(f"\n\n{escape(number)}")
        if title:
            html.append(f"<b>{marked(title, words, max_marks=title_marks).render('i')}</b>")
        found = (best_snippet(story, words, units=min(SNIPPET_UNITS, room),
                              max_marks=snippet_marks) if snippet_marks else None)
        if found is not None:
            html.append(f"\n{found.render('b')}")
        html.append(escape(tail) + link.render())
    if footer:
        html.append(f"\n\n{Span(footer, ITALIC).render()}")
    return "".join(html)


def _one_message(blocks: Sequence[Block]) -> str | None:
    parts = pack_parts(blocks)
    return parts[0] if len(parts) == 1 else None


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
    fit, else the compact headline list (the inline keyboard edits this message in place),
    which says why the highlights are missing and how many stories show them."""
    heading = Block.of(Span(header, BOLD))
    cards = [card_block(story, tz, number=n, links=links) for n, story in
             enumerate(stories, start=first_number)]
    closing = [Block.of(Span(footer, ITALIC))] if footer else []
    if not stories:
        return render_headlines((), tz, header=header, footer=footer, links=links)
    page = _one_message([heading, *cards, *closing])
    if page is not None:
        return page
    fitting = 0
    while fitting + 1 < len(cards) and _one_message([heading, *cards[:fitting + 1]]):
        fitting += 1
    why = (f"Highlights are left out so that {len(stories)} stories fit one message: "
           f"/latest {fitting} shows highlights too." if fitting else
           "Highlights are left out so that the list fits one message: open a story to "
           "read them.")
    return render_headlines(stories, tz, header=header, first_number=first_number,
                            footer=f"{why}\n{footer}" if footer else why, links=links)
