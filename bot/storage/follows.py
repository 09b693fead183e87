"""Follow words: what a subscriber wants alerts and briefings about.

A follow is one plain word, compared case-insensitively with the words of a story's title
and highlights. Plain words (no phrases, no regular expressions) keep matching cheap for
100,000 subscribers and impossible to abuse; the caps keep a row small.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.errors import BotError

__all__ = ["MAX_FOLLOWS", "MAX_FOLLOW_CHARS", "FollowError", "normalise_follows", "words_of"]

MAX_FOLLOWS = 20
MAX_FOLLOW_CHARS = 64
_WORD = re.compile(r"[^\W_](?:[\w'’-]*[^\W_])?")


class FollowError(BotError):
    """A follow request breaks a limit; the message says which and what to do."""


def words_of(text: str) -> set[str]:
    """The lowercase words of ``text`` (punctuation dropped), for matching."""
    return {w.lower() for w in _WORD.findall(text)}


def normalise_follows(existing: Iterable[str], added: Iterable[str]) -> tuple[str, ...]:
    """``existing`` plus the words of ``added``: lowercase, deduplicated, order kept."""
    result = list(dict.fromkeys(existing))
    seen = set(result)
    for text in added:
        for word in _WORD.findall(text):
            word = word.lower()
            if len(word) > MAX_FOLLOW_CHARS:
                raise FollowError(
                    f"'{word[:20]}…' is longer than {MAX_FOLLOW_CHARS} characters; "
                    "follow a shorter word"
                )
            if word not in seen:
                seen.add(word)
                result.append(word)
    if len(result) > MAX_FOLLOWS:
        raise FollowError(
            f"you can follow at most {MAX_FOLLOWS} words; unfollow some first"
        )
    return tuple(result)
