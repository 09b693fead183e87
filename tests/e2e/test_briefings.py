"""Daily briefings and instant alerts delivered by the running bot, across restarts."""

from __future__ import annotations

import asyncio
from datetime import time

from bot.sandbox.state import MemberStatus
from bot.storage.subscriptions import Destination, Subscription
from bot.telegram.refresh import rescan_stories
from tests.e2e.harness import Harness, quiet

READER, OTHER = 4242, 4343
CHANNEL = -1005550077




def briefings(bot: Harness, chat_id: int) -> list[str]:
    return [m.text for m in bot.received(chat_id) if "Your briefing" in m.text]


async def test_the_briefing_arrives_at_the_local_time_with_open_buttons(bot: Harness) -> None:
    await bot.subscribe(READER, time(9, 0), "Europe/Berlin")  # 07:00 UTC
    await quiet(bot)
    assert briefings(bot, READER) == []  # 06:58 UTC: not yet
    bot.clock.advance(minutes=2)
    await bot.until(lambda: len(briefings(bot, READER)) == 1)
    [message] = [m for m in bot.received(READER) if "Your briefing" in m.text]
    assert "Wednesday, 2 April 2025" in message.text
    assert "Night trains return" in message.text  # updated within the last 24 hours
    assert "Central bank" not in message.text  # older than 24 hours
    assert message.buttons and message.buttons[0]["callback_data"].startswith("open:")
    await bot.press(READER, message.message_id, button=1)
    assert bot.received(READER)[-1].text.startswith("Night trains return")


async def test_a_channel_briefing_opens_stories_in_a_private_chat(bot: Harness) -> None:
    await bot.subscribe(CHANNEL, time(9, 0), "Europe/Berlin", chat_type="channel")
    await bot.subscribe(READER, time(9, 0), "Europe/Berlin")
    bot.clock.advance(minutes=2)
    await bot.until(lambda: len(briefings(bot, CHANNEL)) == len(briefings(bot, READER)) == 1)
    [message] = [m for m in bot.received(CHANNEL) if "Your briefing" in m.text]
    username = bot.services.bot_username
    # A callback there would post the story for every reader: each button is a deep link
    # (the last row: the reader's own settings in a private chat).
    assert message.buttons[:-1] and all(
        b["url"].startswith(f"https://t.me/{username}?start=story_")
        for b in message.buttons[:-1])
    assert message.buttons[-1]["url"] == f"https://t.me/{username}?start=settings"
    [private] = [m for m in bot.received(READER) if "Your briefing" in m.text]
    assert all(b["callback_data"].startswith("open:") for b in private.buttons[:-1])
    assert private.buttons[-1]["callback_data"] == "st:s"


async def test_restarts_and_repeated_scans_never_send_a_second_briefing(
        bot: Harness) -> None:
    await bot.subscribe(READER, time(7, 0))
    bot.clock.advance(minutes=3)
    await bot.until(lambda: len(briefings(bot, READER)) == 1)
    for _ in range(2):
        await bot.stop()
        await bot.start()
        await quiet(bot)
    bot.clock.advance(hours=12)
    await quiet(bot)
    assert len(briefings(bot, READER)) == 1
    (bot.settings.stories.folder / "800_abab0000abab.txt").write_text(
        "Apr 2, 2025, 9:00 PM\n\nEvening news\n\nHighlights\n• Something happened\n")
    await rescan_stories(bot.services)
    bot.clock.advance(hours=12)  # the next local date, with a new story to tell
    await bot.until(lambda: len(briefings(bot, READER)) == 2)
    assert "Evening news" in briefings(bot, READER)[1]
    assert "Night trains" not in briefings(bot, READER)[1]  # already delivered


async def test_downtime_over_the_delivery_time_gives_one_catch_up(bot: Harness) -> None:
    await bot.subscribe(READER, time(7, 0))
    await bot.subscribe(OTHER, time(7, 30))
    await bot.stop()
    bot.clock.advance(hours=3)  # down from 06:58 to 09:58: both times missed
    await bot.start()
    await bot.until(lambda: len(briefings(bot, READER)) == len(briefings(bot, OTHER)) == 1)
    await quiet(bot)
    assert len(briefings(bot, READER)) == len(briefings(bot, OTHER)) == 1


async def test_nothing_new_sends_nothing_by_default(bot: Harness) -> None:
    bot.clock.advance(days=30)  # every story is older than the 24-hour window now
    await bot.subscribe(READER, time(7, 0))
    bot.clock.advance(minutes=3)
    await quiet(bot)
    subscription = await bot.services.subscriptions.get(Destination(READER))
    assert subscription is not None and subscription.last_digest_date is not None
    assert briefings(bot, READER) == []


async def test_instant_subscribers_get_new_and_updated_stories_once(bot: Harness) -> None:
    await bot.subscribe(READER, time(7, 0))
    await bot.services.subscriptions.set_mode(Destination(READER), "instant", bot.clock())
    await bot.services.subscriptions.follow(Destination(READER), ["ferry"], bot.clock())
    folder = bot.settings.stories.folder
    (folder / "700_f0f0f0f0f0f0.txt").write_text(
        "Apr 2, 2025, 6:50 AM\n\nFerry service resumes\n\nHighlights\n• Boats run again\n")
    (folder / "701_e0e0e0e0e0e0.txt").write_text(
        "Apr 2, 2025, 6:51 AM\n\nCouncil budget passes\n\nHighlights\n• Not about boats\n")
    await rescan_stories(bot.services)
    await bot.until(lambda: len(bot.received(READER)) == 1)
    assert "Ferry service resumes" in bot.received(READER)[0].text
    (folder / "700_f0f0f0f0f0f0.txt").write_text(
        "Apr 2, 2025, 6:57 AM\nApr 2, 2025, 6:50 AM\n\nFerry service resumes\n\nHighlights\n"
        "• Boats run again, more often\n")
    await rescan_stories(bot.services)
    await bot.until(lambda: len(bot.received(READER)) == 2)
    assert "Updated" in bot.received(READER)[1].text
    await bot.stop()
    await bot.start()  # a restart re-alerts nothing
    await rescan_stories(bot.services)
    await quiet(bot)
    assert len(bot.received(READER)) == 2


async def test_a_channel_that_demotes_the_bot_ends_its_briefing(bot: Harness) -> None:
    await bot.subscribe(CHANNEL, time(7, 0), chat_type="channel")
    bot.server.state.chats[CHANNEL].bot_status = MemberStatus.MEMBER  # no right to post
    bot.clock.advance(minutes=3)

    async def ended() -> Subscription:
        subscription = await bot.services.subscriptions.get(Destination(CHANNEL))
        assert subscription is not None
        return subscription

    async with asyncio.timeout(15):
        while (await ended()).active:  # noqa: ASYNC110 - the sender settles it in its time
            await asyncio.sleep(0.05)
    assert "administrator rights" in ((await ended()).ended_reason or "")
    assert bot.received(CHANNEL) == []


async def test_instant_alerts_in_a_channel_link_to_the_story(bot: Harness) -> None:
    await bot.subscribe(CHANNEL, time(7, 0), chat_type="channel")
    await bot.services.subscriptions.set_mode(Destination(CHANNEL), "instant", bot.clock())
    (bot.settings.stories.folder / "700_f0f0f0f0f0f0.txt").write_text(
        "Apr 2, 2025, 6:50 AM\n\nFerry service resumes\n\nHighlights\n• Boats run again\n")
    await rescan_stories(bot.services)
    await bot.until(lambda: len(bot.received(CHANNEL)) == 1)
    [alert] = bot.received(CHANNEL)
    assert [b["url"] for b in alert.buttons] == [
        f"https://t.me/{bot.services.bot_username}?start=story_f0f0f0f0f0f0",
        f"https://t.me/{bot.services.bot_username}?start=settings"]
