"""How a message points at a story: a command a reader taps, or a link into a private chat.

Telegram makes only ``/command`` tappable (letters, digits and ``_``), so a story is named
``/story_<ref>``, where ``<ref>`` is the story library's reference for it: a short unique
prefix of the key with ``-`` written ``_``. The renderer only asks for it (it knows no
library); without one it prints the whole key, which is longer but just as unambiguous.

A bot in privacy mode receives in a group only the commands addressed to it, so there the
command names the bot. Nobody can send a command in a channel, so there (and in messages
shared inline into any chat) a reference is a deep link opening the story in a private chat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.render.blocks import Span
from bot.stories.model import Story

__all__ = [
    "DEEP_LINK_PREFIX",
    "SETTINGS_PAYLOAD",
    "STORY_COMMAND_PREFIX",
    "LinkStyle",
    "StoryLinks",
    "deep_link",
    "key_reference",
    "settings_link",
]

STORY_COMMAND_PREFIX = "story_"
"""A story's command is ``/story_<ref>``."""
DEEP_LINK_PREFIX = "story_"
"""A deep link's ``/start`` payload is ``story_<key>``."""
SETTINGS_PAYLOAD = "settings"
"""The ``/start`` payload of a link to the reader's own briefing settings."""

LinkStyle = Literal["command", "addressed", "link"]
# Chats where a reference must be a deep link: commands posted there reach no bot.
_LINKED_CHAT_TYPES = frozenset({"channel"})
_GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})


def key_reference(story: Story) -> str:
    """The reference without a library: the whole key, ``-`` written ``_``."""
    return story.key.replace("-", "_")


def deep_link(bot_username: str, story: Story) -> str:
    """``t.me`` link whose ``/start`` payload (``story_<key>``, at most 46 characters of
    ``[a-z0-9_-]``) opens the story. It carries the whole key, so it never goes stale when
    a new story makes a short reference ambiguous."""
    return f"https://t.me/{bot_username}?start={DEEP_LINK_PREFIX}{story.key}"


def settings_link(bot_username: str) -> str:
    """``t.me`` link opening the reader's own briefing settings in a private chat: what a
    settings button is in a channel, where a button's answer would reach every reader."""
    return f"https://t.me/{bot_username}?start={SETTINGS_PAYLOAD}"


@dataclass(frozen=True, slots=True)
class StoryLinks:
    """How one message refers to stories.

    ``reference`` is the library's reference for a story; ``style`` is ``command``
    (``/story_<ref>``), ``addressed`` (``/story_<ref>@bot``, groups) or ``link`` (a deep
    link through the bot ``bot_username``, channels and inline results).
    """

    reference: Callable[[Story], str] = key_reference
    style: LinkStyle = "command"
    bot_username: str = ""

    @classmethod
    def for_chat(cls, chat_type: str, bot_username: str,
                 reference: Callable[[Story], str] = key_reference) -> StoryLinks:
        """Commands in private chats, commands naming the bot in groups, deep links in
        channels; plain commands while the bot's username is unknown."""
        if chat_type in _LINKED_CHAT_TYPES:
            return cls.deep_links(bot_username, reference)
        if chat_type in _GROUP_CHAT_TYPES and bot_username:
            return cls(reference, "addressed", bot_username)
        return cls(reference)

    @classmethod
    def deep_links(cls, bot_username: str,
                   reference: Callable[[Story], str] = key_reference) -> StoryLinks:
        """Deep links into a private chat (channels, cards shared inline); plain commands
        while the bot's username is unknown."""
        return cls(reference, "link", bot_username) if bot_username else cls(reference)

    @property
    def label(self) -> str:
        """What sets this style apart from others: for cache and memo keys."""
        return f"{self.style}@{self.bot_username}" if self.style != "command" else self.style

    def command(self, story: Story) -> str:
        """``/story_<ref>``, naming the bot when addressed."""
        command = f"/{STORY_COMMAND_PREFIX}{self.reference(story)}"
        return f"{command}@{self.bot_username}" if self.style == "addressed" else command

    def span(self, story: Story) -> Span:
        """The reference as shown: the command, or a link into a private chat."""
        if self.style == "link":
            return Span(f"open in @{self.bot_username}",
                        (f'a href="{deep_link(self.bot_username, story)}"',))
        return Span(self.command(story))
