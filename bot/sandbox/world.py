"""The sandbox's starting world: a few people and chats to try every flow of the bot in.

``sandbox`` (terminal and ``--web``) starts with it; ``bot/sandbox/README.md`` describes
it. Everything is registered before the bot starts, so the bot's first calls (its command
menus) already find the chats.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.sandbox.state import DEMO_USER_ID, ChatType, MemberStatus
from bot.sandbox.user_api import UserSide

__all__ = ["CHANNEL_ID", "FORUM_ID", "FORUM_TOPICS", "GROUP_ADMIN_ID", "GROUP_ID", "PEOPLE",
           "READER_ID", "Person", "populate_world"]

READER_ID = 100002
GROUP_ADMIN_ID = 100003
GROUP_ID = -4_000_000_001
FORUM_ID = -1_001_000_000_002
CHANNEL_ID = -1_001_000_000_003
#: Topic id (``message_thread_id``) -> name; messages without a topic are in "General".
FORUM_TOPICS: dict[int, str] = {2: "World news", 3: "Science"}


@dataclass(frozen=True)
class Person:
    """Someone the page can act as."""

    id: int
    first_name: str
    username: str
    role: str


PEOPLE: tuple[Person, ...] = (
    Person(DEMO_USER_ID, "Ada", "ada", "reader and the bot's administrator"),
    Person(READER_ID, "Ben", "ben", "a reader"),
    Person(GROUP_ADMIN_ID, "Gwen", "gwen", "administrator of the groups"),
)


def populate_world(sandbox: UserSide) -> None:
    """Register the people, their private chats with the bot, a group, a forum with two
    topics and a channel in which the bot is an administrator."""
    for person in PEOPLE:
        sandbox.add_user(person.id, person.first_name, person.username)
        sandbox.add_chat(person.id, ChatType.PRIVATE)
    readers = [DEMO_USER_ID, READER_ID]
    sandbox.add_chat(GROUP_ID, ChatType.GROUP, title="Reading Club", members=readers,
                     admins=[GROUP_ADMIN_ID])
    forum = sandbox.add_chat(FORUM_ID, ChatType.SUPERGROUP, title="Newsroom Forum",
                             is_forum=True, members=readers, admins=[GROUP_ADMIN_ID],
                             topics=FORUM_TOPICS)
    forum.topic_names.update(FORUM_TOPICS)
    sandbox.add_chat(CHANNEL_ID, ChatType.CHANNEL, title="Morning Briefs",
                     username="morning_briefs", members=[READER_ID], creator=DEMO_USER_ID,
                     bot_status=MemberStatus.ADMINISTRATOR)
