"""Story references a reader can tap, and one meaning for a number (issue sections 2, 3).

Telegram makes only ``/command`` tappable (letters, digits and ``_``): every story the bot
names is ``/story_<ref>`` (``@bot`` in groups, a deep link in channels), and the command
opens it. Only ``/latest`` numbers stories, and ``/story N`` opens place N of it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import time
from pathlib import Path

import pytest

from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from bot.telegram.refresh import rescan_stories
from tests.e2e.conftest import USER, Chat
from tests.e2e.harness import Harness

GROUP = -1009990001
CHANNEL = -1005550099
PRESS = "press-release-harbour-authority"
# A command as Telegram makes it tappable in a message, optionally naming a bot.
COMMAND = re.compile(r"/story_[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


def references(message: StoredMessage) -> list[str]:
    return COMMAND.findall(message.text)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 15 s) for a rescan the bot runs by itself."""
    async with asyncio.timeout(15):
        while not condition():  # noqa: ASYNC110 - the bot rescans on its own schedule
            await asyncio.sleep(0.05)


def write_story(folder: Path, name: str, title: str,
                stamp: str = "Apr 9, 2025, 9:00 AM") -> None:
    (folder / name).write_text(f"{stamp}\n\n{title}\n\nHighlights\n• About {title}\n")


async def test_every_latest_card_names_its_story_by_a_command_that_opens_it(
        chat: Chat) -> None:
    [page] = await chat.say("/latest 5")
    commands = references(page)
    assert len(commands) == 5
    assert "Full story: /story_4e1d9a7c\n" in page.text  # 8 characters of the key suffice
    assert "/story " not in page.text  # "/story 4e1d9a7c" would tap as a bare /story
    for command, story in zip(commands, chat.services.library.stories, strict=False):
        opened = await chat.say(command)
        assert opened[0].text.startswith(story.title)


async def test_the_press_release_opens_by_its_reference_and_by_typed_prefixes(
        chat: Chat) -> None:
    [page] = await chat.say("/latest 20")
    press = chat.services.library.get(PRESS)
    assert press is not None
    card = next(c for c in page.text.split("\n\n") if press.title in c)
    [command] = COMMAND.findall(card)
    assert command == "/story_press_re"
    for typed in (command, "/story press-re", "/story press-release", "/story press_release",
                  "/STORY_PRESS_RE"):
        opened = await chat.say(typed)
        assert opened[0].text.startswith(press.title), typed


async def test_a_reference_to_a_story_that_is_gone_says_so(chat: Chat) -> None:
    write_story(chat.folder, "900_ab12cd34ef560000.txt", "Short-lived story",
                stamp="May 1, 2025, 9:00 AM")
    await until(lambda: chat.services.library.get("ab12cd34ef560000") is not None)
    [page] = await chat.say("/latest 1")
    [command] = references(page)
    assert command == "/story_ab12cd34"
    (chat.folder / "900_ab12cd34ef560000.txt").unlink()
    await until(lambda: chat.services.library.get("ab12cd34ef560000") is None)
    [reply] = await chat.say(command)
    assert "no longer available" in reply.text and "/latest" in reply.text


async def test_a_newer_story_sharing_the_prefix_turns_an_old_reference_into_a_choice(
        chat: Chat) -> None:
    write_story(chat.folder, "900_4e1d9a7c5b000000.txt", "Prefix twin")
    await until(lambda: chat.services.library.get("4e1d9a7c5b000000") is not None)
    [choice] = await chat.say("/story_4e1d9a7c")  # printed before the twin arrived
    assert "2 stories" in choice.text and "pick one" in choice.text
    assert sorted(references(choice)) == ["/story_4e1d9a7c5b0", "/story_4e1d9a7c5b3"]
    assert not re.search(r"^\d+\. ", choice.text, re.MULTILINE)  # numbers are /latest's
    assert all(not b["text"].removeprefix("📖 ").isdecimal() for b in choice.buttons)
    opened = await chat.say("/story_4e1d9a7c5b0")
    assert opened[0].text.startswith("Prefix twin")


async def test_in_a_group_references_name_the_bot_and_open_there(chat: Chat) -> None:
    chat.server.add_chat(GROUP, "supergroup", members=[USER])
    [private] = await chat.say("/latest 2")  # the same page, rendered for a private chat
    assert references(private)[0] == "/story_4e1d9a7c"
    [page] = await chat.say("/latest@story_bot 2", chat_id=GROUP)
    commands = references(page)
    assert commands[0] == "/story_4e1d9a7c@story_bot" and len(commands) == 2
    opened = await chat.say(commands[0], chat_id=GROUP)
    assert opened[0].text.startswith(chat.services.library.stories[0].title)
    [results] = await chat.say("/search@story_bot harbour", chat_id=GROUP)
    assert references(results) and all(c.endswith("@story_bot") for c in references(results))
    # a reference addressed to another bot is that bot's business
    assert await chat.say("/story_4e1d9a7c@other_bot", chat_id=GROUP, expect_reply=False) == []


async def test_search_results_show_no_numbers_and_story_n_means_latest(chat: Chat) -> None:
    [results] = await chat.say("/search harbour")
    assert "Harbour authority" in results.text
    assert not re.search(r"^\d+\. ", results.text, re.MULTILINE)
    assert len(references(results)) == results.text.count("\n\n")  # one per result
    opens = [b for b in results.buttons if b["text"].startswith("📖")]
    assert opens and all(not b["text"].removeprefix("📖 ").isdecimal() for b in opens)
    [first_latest] = (await chat.say("/latest 1"))
    opened = await chat.say("/story 1")
    assert opened[0].text.startswith(chat.services.library.stories[0].title)
    assert "1. " + chat.services.library.stories[0].title in first_latest.text


@pytest.mark.parametrize("number", ["-1", "0", "-15", "2025"])
async def test_a_number_that_is_no_place_in_latest_is_said_so(chat: Chat, number: str) -> None:
    [reply] = await chat.say(f"/story {number}")
    assert reply.text.startswith(f"There is no story number {number};")
    assert "/latest" in reply.text


async def test_a_deep_link_to_a_story_that_is_gone_says_so_and_offers_latest(
        chat: Chat) -> None:
    replies = await chat.say("/start story_0000000000000000")
    assert len(replies) == 1
    assert "no longer available" in replies[0].text and "/latest" in replies[0].text
    assert "👋" not in replies[0].text  # not the welcome of a first visit
    opened = await chat.say(f"/start story_{PRESS}")
    assert opened[0].text.startswith("Harbour authority")


async def test_a_card_shared_inline_links_into_a_private_chat(chat: Chat) -> None:
    run = await chat.server.inline_query("harbour")
    assert run.results
    content = run.results[0]["input_message_content"]["message_text"]
    assert 'href="https://t.me/story_bot?start=story_' in content
    assert "/story" not in re.sub(r"<[^>]+>", "", content)  # no command nobody can send


# -- pushed messages: briefings and alerts ---------------------------------------------------



def briefing(bot: Harness, chat_id: int) -> StoredMessage | None:
    return next((m for m in bot.received(chat_id) if "Your briefing" in m.text), None)


async def test_briefings_name_stories_by_reference_and_without_numbers(bot: Harness) -> None:
    await bot.subscribe(USER, time(7, 0))
    await bot.subscribe(GROUP, time(7, 0), chat_type="supergroup")
    await bot.subscribe(CHANNEL, time(7, 0), chat_type="channel")
    bot.clock.advance(minutes=3)
    await bot.until(lambda: all(briefing(bot, c) for c in (USER, GROUP, CHANNEL)))
    private, group, channel = (briefing(bot, c) for c in (USER, GROUP, CHANNEL))
    assert private is not None and group is not None and channel is not None
    assert references(private) == ["/story_4e1d9a7c"]  # Night trains: the one new story
    assert not re.search(r"^\d+\. ", private.text, re.MULTILINE)
    # its button is titled like the story: no number either
    button, settings = private.buttons
    assert button["text"].startswith("Night trains return")
    assert settings["text"] == "⚙️ Settings"
    assert references(group) == ["/story_4e1d9a7c@story_bot"]
    assert references(channel) == [] and "open in @story_bot" in channel.text
    assert channel.html is not None
    assert 'href="https://t.me/story_bot?start=story_4e1d9a7c5b3f2086"' in channel.html
    # the reference in the briefing opens the story
    post = await bot.server.user_message("/story_4e1d9a7c", user_id=USER)
    await bot.server.wait_reply(post.update_id, USER, count=1, timeout=15)
    assert bot.received(USER)[-1].text.startswith("Night trains return")


async def test_alerts_name_the_story_by_reference_and_are_not_numbered(bot: Harness) -> None:
    await bot.subscribe(USER, time(7, 0))
    await bot.subscribe(CHANNEL, time(7, 0), chat_type="channel")
    for chat_id in (USER, CHANNEL):
        await bot.services.subscriptions.set_mode(Destination(chat_id), "instant", bot.clock())
    write_story(bot.settings.stories.folder, "700_f0f0f0f0f0f0.txt", "Ferry service resumes",
                stamp="Apr 2, 2025, 6:50 AM")
    await rescan_stories(bot.services)
    await bot.until(lambda: bool(bot.received(USER)) and bool(bot.received(CHANNEL)))
    [alert] = bot.received(USER)
    assert alert.text.startswith("🆕 New story\n\nFerry service resumes")  # no "1."
    [command] = references(alert)
    assert command.startswith("/story_f0f0f0f0")
    [channel] = bot.received(CHANNEL)
    assert channel.html is not None
    assert references(channel) == [] and "start=story_f0f0f0f0f0f0" in channel.html
    post = await bot.server.user_message(command, user_id=USER)
    await bot.server.wait_reply(post.update_id, USER, count=1, timeout=15)
    assert bot.received(USER)[-1].text.startswith("Ferry service resumes")


async def test_a_briefing_rendered_after_a_reference_grew_shows_the_longer_one(
        bot: Harness) -> None:
    other = USER + 1
    await bot.subscribe(USER, time(7, 0))
    await bot.subscribe(other, time(7, 30))  # the same stories, a little later
    bot.clock.advance(minutes=3)
    await bot.until(lambda: briefing(bot, USER) is not None)
    first = briefing(bot, USER)
    assert first is not None and references(first) == ["/story_4e1d9a7c"]
    # an old story (in no briefing) now shares the first eight characters
    write_story(bot.settings.stories.folder, "900_4e1d9a7c5b000000.txt", "Prefix twin",
                stamp="Mar 1, 2025, 9:00 AM")
    await rescan_stories(bot.services)
    bot.clock.advance(minutes=30)
    await bot.until(lambda: briefing(bot, other) is not None)
    second = briefing(bot, other)
    assert second is not None and references(second) == ["/story_4e1d9a7c5b3"]
