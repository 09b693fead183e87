"""Follow words: what a subscriber wants alerts and briefings about.

A follow is one plain word, compared case-insensitively with the words of a story's title
and highlights. Plain words (no phrases, no regular expressions) keep matching cheap for
100,000 subscribers and impossible to abuse; the caps keep a row small. Invisible
characters (a zero-width space a keyboard slipped in, a soft hyphen) are no part of a word:
they neither split one nor make one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.errors import BotError

__all__ = ["MAX_FOLLOWS", "MAX_FOLLOW_CHARS", "FollowError", "follow_words",
           "normalise_follows", "words_of"]

MAX_FOLLOWS = 20
MAX_FOLLOW_CHARS = 64
_WORD = re.compile(r"[^\W_](?:[\w'’-]*[^\W_])?")
# Characters that show nothing: format characters (zero-width spaces and joiners, word
# joiner, soft hyphen, byte-order mark, direction marks) and the Hangul fillers, which
# Unicode counts as letters.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")


class FollowError(BotError):
    """A follow request breaks a limit; the message says which and what to do."""


def words_of(text: str) -> set[str]:
    """The lowercase words of ``text`` (punctuation dropped), for matching."""
    return {w.lower() for w in _WORD.findall(_INVISIBLE.sub("", text))}


def follow_words(texts: Iterable[str]) -> tuple[str, ...]:
    """The words a reader typed, lowercase, deduplicated, in order; empty if there are
    none (only punctuation or invisible characters). Raises :class:`FollowError` for a
    word too long to follow."""
    result: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(_INVISIBLE.sub("", text)):
            word = word.lower()
            if len(word) > MAX_FOLLOW_CHARS:
                raise FollowError(
                    f"'{word[:20]}…' is longer than {MAX_FOLLOW_CHARS} characters; "
                    "follow a shorter word"
                )
            result[word] = None
    return tuple(result)


def normalise_follows(existing: Iterable[str], added: Iterable[str]) -> tuple[str, ...]:
    """``existing`` plus the words of ``added``: lowercase, deduplicated, order kept."""
    result = list(dict.fromkeys([*existing, *follow_words(added)]))
    if len(result) > MAX_FOLLOWS:
        raise FollowError(
            f"you can follow at most {MAX_FOLLOWS} words; unfollow some first"
        )
    return tuple(result)
