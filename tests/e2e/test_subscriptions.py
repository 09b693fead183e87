"""Subscription commands end to end: what a subscriber sees, and what is stored."""

from __future__ import annotations

import asyncio
from datetime import time

import pytest

from bot.storage.subscriptions import Destination
from bot.telegram.keyboards import open_keyboard
from tests.e2e.conftest import USER, Chat

GROUP = -1005550001
ADMIN, MEMBER = 9001, 9002


async def stored(chat: Chat, dest: Destination) -> object:
    return await chat.services.subscriptions.get(dest)


async def test_subscribe_with_defaults_then_change_time_zone_and_follows(chat: Chat) -> None:
    [reply] = await chat.say("/subscribe")
    assert "Subscribed" in reply.text and "08:00 (UTC)" in reply.text
    [reply] = await chat.say("/timezone europe/berlin")
    assert "Europe/Berlin" in reply.text and "Next briefing" in reply.text
    [reply] = await chat.say("/time 6:45")
    assert "06:45" in reply.text
    [reply] = await chat.say("/follow Harbour rail harbour")
    assert "Following: harbour, rail." in reply.text
    [reply] = await chat.say("/unfollow rail")
    assert "Following: harbour." in reply.text
    subscription = await chat.services.subscriptions.get(Destination(USER))
    assert subscription is not None
    assert (subscription.delivery_time, subscription.timezone.key, subscription.follows) == (
        time(6, 45), "Europe/Berlin", ("harbour",))
    [status] = await chat.say("/status")
    assert "06:45 (Europe/Berlin)" in status.text and "CET" in status.text


async def test_reader_commands_show_times_in_the_subscribers_zone(chat: Chat) -> None:
    await chat.say("/subscribe 07:00 Asia/Tokyo")
    [page] = await chat.say("/latest 1")
    assert "2 Apr 2025, 04:05 JST" in page.text


async def test_bad_input_gets_an_example_and_changes_nothing(chat: Chat) -> None:
    await chat.say("/subscribe 07:00 Europe/Berlin")
    before = await chat.services.subscriptions.get(Destination(USER))
    cases = {
        "/subscribe 25:99": "/subscribe 07:30 Europe/Berlin",
        "/timezone Mars/Base": "/timezone America/New_York",
        "/timezone Europ/Berlin": "Did you mean Europe/Berlin",
        "/time": "/time 18:00",
        "/follow " + " ".join(f"word{n}" for n in range(500)): "at most 20",
        "/follow " + "x" * 100: "longer than 64",
        "/mode sometimes": "/mode instant",
    }
    for command, expected in cases.items():
        [reply] = await chat.say(command)
        assert expected in reply.text, command
    assert await chat.services.subscriptions.get(Destination(USER)) == before


async def test_commands_without_a_subscription_say_how_to_start(chat: Chat) -> None:
    for command in ("/time 07:00", "/pause", "/status", "/settings", "/follow rail"):
        [reply] = await chat.say(command)
        assert "/subscribe" in reply.text, command
    [reply] = await chat.say("/unsubscribe")
    assert "wasn't subscribed" in reply.text


async def test_pause_resume_and_mode(chat: Chat) -> None:
    await chat.say("/subscribe")
    [paused] = await chat.say("/pause")
    assert "Paused" in paused.text and "Next briefing" not in paused.text
    [resumed] = await chat.say("/resume")
    assert "Next briefing" in resumed.text
    [instant] = await chat.say("/mode instant")
    assert "instant alerts" in instant.text


async def test_settings_keyboard_edits_itself_and_old_buttons_are_refused(chat: Chat) -> None:
    await chat.say("/subscribe 08:00 UTC")
    [panel] = await chat.say("/settings")
    assert "• 08:00" in [b["text"] for b in panel.buttons]
    answer = await chat.press(text="07:00")
    assert answer is not None and answer["text"] == "Saved."
    edited = chat.server.bot_messages(USER)[-1]
    assert edited.message_id == panel.message_id and "07:00 (UTC)" in edited.text
    await chat.press(text="Mode: daily → instant")
    assert "instant alerts" in chat.server.bot_messages(USER)[-1].text
    await chat.press(text="Unsubscribe")
    assert "unsubscribed" in chat.server.bot_messages(USER)[-1].text
    await chat.say("/subscribe")  # a fresh panel…
    [old] = [m for m in chat.server.bot_messages(USER) if m.message_id == panel.message_id]
    assert old.buttons == []  # …while the old one lost its buttons when unsubscribed
    [panel2] = await chat.say("/settings")
    await chat.say("/unsubscribe")
    # the panel of restored instant alerts has no time presets: press a zone
    answer = await chat.press(message_id=panel2.message_id, data="st:z:Europe/Berlin")
    assert answer is not None and "isn't subscribed" in answer["text"]
    assert await chat.services.subscriptions.get(Destination(USER)) is not None
    subscription = await chat.services.subscriptions.get(Destination(USER))
    assert subscription is not None and not subscription.active


async def test_only_group_admins_change_the_group_and_topics_are_destinations(
        chat: Chat) -> None:
    chat.server.add_chat(GROUP, "supergroup", is_forum=True, topics=[5], admins=[ADMIN],
                         members=[MEMBER])
    [refused] = await chat.say("/subscribe", user_id=MEMBER, chat_id=GROUP, thread_id=5)
    assert "Only this chat's administrators" in refused.text
    assert await chat.services.subscriptions.get(Destination(GROUP, 5)) is None
    [ok] = await chat.say("/subscribe 09:00", user_id=ADMIN, chat_id=GROUP, thread_id=5)
    assert ok.thread_id == 5 and "Subscribed" in ok.text
    assert await chat.services.subscriptions.get(Destination(GROUP, 5)) is not None
    assert await chat.services.subscriptions.get(Destination(GROUP, 0)) is None
    [status] = await chat.say("/status", user_id=MEMBER, chat_id=GROUP, thread_id=5)
    assert "09:00" in status.text  # anyone may look


async def test_removing_the_bot_or_blocking_it_ends_subscriptions(chat: Chat) -> None:
    chat.server.add_chat(GROUP, "group", admins=[ADMIN])
    await chat.say("/subscribe", user_id=ADMIN, chat_id=GROUP)
    await chat.say("/subscribe")
    await chat.server.bot_removed(GROUP)
    await chat.server.block_bot(USER)
    for dest, reason in ((Destination(GROUP), "removed"), (Destination(USER), "blocked")):
        async with asyncio.timeout(10):
            while (subscription := await chat.services.subscriptions.get(dest)) is None or \
                    subscription.active:  # noqa: ASYNC110 - handled asynchronously, no event
                await asyncio.sleep(0.05)
        assert reason in (subscription.ended_reason or "")


CHANNEL = -1005550077


async def test_channel_administrators_manage_the_channel_briefing_by_posting(
        chat: Chat) -> None:
    chat.server.add_chat(CHANNEL, "channel", admins=[ADMIN], bot_status="administrator")
    [ok] = await chat.say("/subscribe 07:30 Europe/Berlin", user_id=ADMIN, chat_id=CHANNEL)
    assert "Subscribed" in ok.text and "07:30" in ok.text
    subscription = await chat.services.subscriptions.get(Destination(CHANNEL))
    assert subscription is not None and subscription.chat_type == "channel"
    # Reading commands are not answered in a channel: the answer would go to every reader.
    assert await chat.say("/latest", user_id=ADMIN, chat_id=CHANNEL, expect_reply=False) == []

    await chat.say("/settings", user_id=ADMIN, chat_id=CHANNEL)
    refused = await chat.press(CHANNEL, user_id=MEMBER, data="st:p:1")  # a reader presses
    assert refused is not None and "administrators" in refused["text"]
    subscription = await chat.services.subscriptions.get(Destination(CHANNEL))
    assert subscription is not None and not subscription.paused
    saved = await chat.press(CHANNEL, user_id=ADMIN, data="st:p:1")
    assert saved is not None and saved["text"] == "Saved."
    [status] = await chat.say("/status", user_id=ADMIN, chat_id=CHANNEL)
    assert "Paused" in status.text


async def test_only_channel_administrators_can_post_in_the_sandbox_channel(
        chat: Chat) -> None:
    chat.server.add_chat(CHANNEL, "channel", admins=[ADMIN], bot_status="administrator")
    with pytest.raises(ValueError, match="not an administrator"):
        await chat.server.user_message("/subscribe", user_id=MEMBER, chat_id=CHANNEL)


async def test_an_open_button_pressed_in_a_channel_answers_the_reader_privately(
        chat: Chat) -> None:
    chat.server.add_chat(CHANNEL, "channel", admins=[ADMIN], bot_status="administrator")
    story = chat.services.library.stories[0]
    await chat.app.bot.send_message(CHANNEL, "An older briefing", reply_markup=open_keyboard(
        [story], first_number=1))
    answer = await chat.press(CHANNEL, user_id=MEMBER, button=1)
    assert answer is not None
    assert answer["url"] == f"https://t.me/{chat.services.bot_username}?start=story_{story.key}"
    assert [m.text for m in chat.server.bot_messages(CHANNEL)] == ["An older briefing"]
