"""Inline keyboards: open buttons per story, paging rows, and "Continue" under long stories.

Open buttons carry a number only under ``/latest``, where it is the story's place (what
``/story N`` opens); elsewhere a button is titled like its story.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.delivery.digest import deep_link
from bot.stories.model import Story
from bot.telegram.callbacks import LatestPage, MoreParts, OpenStory, SearchPage

__all__ = ["continue_keyboard", "deep_link", "latest_keyboard", "open_keyboard",
           "search_keyboard"]

_PER_ROW = 5
_TITLE = 40  # characters of a title on a button


def _titled(story: Story) -> str:
    title = " ".join(story.title.split())
    return f"📖 {title if len(title) <= _TITLE else title[:_TITLE - 1].rstrip() + '…'}"


def _open_rows(stories: Sequence[Story],
               first_number: int | None) -> list[list[InlineKeyboardButton]]:
    """Numbered buttons five to a row from ``first_number`` on, else one titled per row."""
    if first_number is None:
        return [[InlineKeyboardButton(_titled(s), callback_data=OpenStory(s.key).encode())]
                for s in stories]
    buttons = [InlineKeyboardButton(f"📖 {n}", callback_data=OpenStory(s.key).encode())
               for n, s in enumerate(stories, start=first_number)]
    return [buttons[i:i + _PER_ROW] for i in range(0, len(buttons), _PER_ROW)]


def open_keyboard(stories: Sequence[Story],
                  first_number: int | None = None) -> InlineKeyboardMarkup:
    """One button per story, opening it in full: titled, or numbered from
    ``first_number`` (places in /latest)."""
    return InlineKeyboardMarkup(_open_rows(stories, first_number))


def latest_keyboard(page: Sequence[Story], first_number: int, size: int, *, has_newer: bool,
                    has_older: bool) -> InlineKeyboardMarkup:
    rows = _open_rows(page, first_number)
    nav = []
    if has_newer and page:
        nav.append(InlineKeyboardButton(
            "‹ Newer", callback_data=LatestPage(size, "n", page[0].key).encode()))
    if has_older and page:
        nav.append(InlineKeyboardButton(
            "Older ›", callback_data=LatestPage(size, "o", page[-1].key).encode()))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


def search_keyboard(page: Sequence[Story], session: str, page_number: int,
                    *, has_more: bool) -> InlineKeyboardMarkup:
    """A titled button per result (results are not places in /latest), then paging."""
    rows = _open_rows(page, None)
    nav = []
    if page_number > 0:
        nav.append(InlineKeyboardButton(
            "‹ Previous", callback_data=SearchPage(session, page_number - 1).encode()))
    if has_more:
        nav.append(InlineKeyboardButton(
            "Next ›", callback_data=SearchPage(session, page_number + 1).encode()))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


def continue_keyboard(story: Story, start: int, count: int, tag: str) -> InlineKeyboardMarkup:
    """"Continue (6/52)": sends the next batch of a long story, from part ``start`` + 1."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(
        f"Continue ({start + 1}/{count})",
        callback_data=MoreParts(story.key, start, tag).encode())]])
