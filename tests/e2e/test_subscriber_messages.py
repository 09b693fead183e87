"""Replies a subscriber can trust: each says what actually happened to their subscription
(a word they never followed, nothing to follow, a briefing restored or ended), the
settings keyboard offers only what applies, and inline answers survive odd input."""

from __future__ import annotations

import re

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from tests.e2e.conftest import USER, Chat

NO_BRIEFING_YET = "no briefing yet"


def callback_data(message: StoredMessage) -> list[str]:
    return [str(b.get("callback_data")) for b in message.buttons]


async def follows(chat: Chat) -> tuple[str, ...]:
    subscription = await chat.services.subscriptions.get(Destination(USER))
    assert subscription is not None
    return subscription.follows


async def test_unfollowing_a_word_not_followed_says_so(chat: Chat) -> None:
    await chat.say("/subscribe")
    await chat.say("/follow harbour")
    [reply] = await chat.say("/unfollow rail")
    first = reply.text.splitlines()[0]
    assert "rail" in first and "not following" in first, reply.text
    assert "updated" not in reply.text.lower()
    assert await follows(chat) == ("harbour",)
    [reply] = await chat.say("/unfollow Harbour rail")  # one followed, one not
    first = reply.text.splitlines()[0]
    assert "Unfollowed harbour" in first and "not following rail" in first, reply.text
    assert await follows(chat) == ()


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060\u200d", "\ufeff", "\u00ad",
                                       "\u3164", "\u200b \u2060"])
async def test_following_only_invisible_characters_is_refused(chat: Chat,
                                                              invisible: str) -> None:
    await chat.say("/subscribe")
    await chat.say("/follow harbour")
    [reply] = await chat.say(f"/follow {invisible}")
    assert "no word to follow" in reply.text and "/follow harbour" in reply.text, reply.text
    assert "updated" not in reply.text.lower()
    assert await follows(chat) == ("harbour",)


async def test_invisible_characters_inside_a_word_do_not_split_it(chat: Chat) -> None:
    await chat.say("/subscribe")
    [reply] = await chat.say("/follow har\u00adbour ra\u200bil")
    assert "Following: harbour, rail." in reply.text, reply.text
    assert await follows(chat) == ("harbour", "rail")


async def test_the_settings_keyboard_in_instant_mode_offers_no_briefing_times(
        chat: Chat) -> None:
    await chat.say("/subscribe 07:00")
    [daily] = await chat.say("/settings")
    assert any(data.startswith("st:t:") for data in callback_data(daily))
    assert re.search(r"/time\b", daily.text)
    await chat.press(USER, message_id=daily.message_id, data="st:m:instant")
    edited = chat.server.state.message(USER, daily.message_id)
    assert edited is not None and "instant alerts" in edited.text
    assert not any(data.startswith("st:t:") for data in callback_data(edited))
    assert not re.search(r"/time\b", edited.text)  # no time to set for instant alerts
    assert any(data.startswith("st:z:") for data in callback_data(edited))  # zones stay
    [instant] = await chat.say("/settings")
    assert not any(data.startswith("st:t:") for data in callback_data(instant))
    await chat.press(USER, message_id=instant.message_id, data="st:m:daily")
    edited = chat.server.state.message(USER, instant.message_id)
    assert edited is not None
    assert any(data.startswith("st:t:") for data in callback_data(edited))  # back again


async def test_subscribing_again_says_which_mode_it_restored(chat: Chat) -> None:
    await chat.say("/subscribe 07:00")
    await chat.say("/mode instant")
    await chat.say("/follow harbour")
    await chat.say("/unsubscribe")
    [reply] = await chat.say("/subscribe 07:30")
    first = reply.text.splitlines()[0]
    assert "again" in first and "restored" in first and "instant alerts" in first, first
    assert "harbour" in first
    assert "/mode daily" in reply.text  # how to get the daily briefing they asked for
    await chat.say("/mode daily")
    await chat.say("/unsubscribe")
    [reply] = await chat.say("/subscribe")
    first = reply.text.splitlines()[0]
    assert "restored" in first and "daily briefing" in first, first
    [fresh] = await chat.say("/subscribe", user_id=777)  # a first subscription: no "again"
    assert "again" not in fresh.text and "restored" not in fresh.text


async def test_status_and_settings_after_unsubscribing_say_it_ended(chat: Chat) -> None:
    await chat.say("/subscribe 07:00 Europe/Berlin")
    await chat.say("/unsubscribe")
    for command in ("/status", "/settings", "/time 08:00", "/pause"):
        [reply] = await chat.say(command)
        assert NO_BRIEFING_YET not in reply.text, command
        assert "unsubscribed" in reply.text and "/subscribe" in reply.text, reply.text
        assert "07:00" in reply.text  # what /subscribe would bring back
    [never] = await chat.say("/status", user_id=777)
    assert NO_BRIEFING_YET in never.text  # true for a chat that never subscribed


async def test_unsubscribe_button_where_nothing_is_subscribed_changes_nothing(
        chat: Chat) -> None:
    await chat.say("/subscribe")
    [first] = await chat.say("/settings")
    [second] = await chat.say("/settings")
    answer = await chat.press(USER, message_id=first.message_id, data="st:u")
    assert answer is not None and answer.get("text") == "Unsubscribed."
    answer = await chat.press(USER, message_id=second.message_id, data="st:u")
    assert answer is not None and "nothing to unsubscribe" in str(answer.get("text"))
    kept = chat.server.state.message(USER, second.message_id)
    assert kept is not None and kept.text == second.text and not kept.edits
    assert "st:u" in callback_data(kept)


async def test_a_forged_unsubscribe_button_in_a_chat_never_subscribed(chat: Chat) -> None:
    await chat.say("/help")  # the reader has opened the chat, and never subscribed
    sent = await chat.app.bot.send_message(USER, "Settings", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("Unsubscribe", callback_data="st:u:x")]]))
    answer = await chat.press(USER, message_id=sent.message_id, data="st:u:x")
    assert answer is not None and "nothing to unsubscribe" in str(answer.get("text"))
    kept = chat.server.state.message(USER, sent.message_id)
    assert kept is not None and kept.text == "Settings" and not kept.edits
    assert await chat.services.subscriptions.get(Destination(USER)) is None


@pytest.mark.parametrize("offset", ["9" * 5000, "99999999999999999999", "-5", "１２"])
async def test_an_inline_query_with_an_offset_never_given_gets_an_empty_answer(
        chat: Chat, offset: str) -> None:
    run = await chat.server.inline_query("", offset=offset)
    assert run.answer is not None, "the inline query was left unanswered"
    assert run.results == [] and not run.answer.get("next_offset")


async def test_inline_descriptions_end_at_a_word_with_an_ellipsis(chat: Chat) -> None:
    run = await chat.server.inline_query("North Korea troops")
    sources = {story.key: story for story in chat.services.library.stories}
    clipped = 0
    for result in run.results:
        story = sources[result["id"]]
        source = story.highlights[0] if story.highlights else story.story[0]
        description = result["description"]
        if description == source:
            continue
        clipped += 1
        assert description.endswith("…"), description
        kept = description[:-1]
        assert source.startswith(kept) and re.match(r"\W", source[len(kept)]), description
    assert clipped, "no description was long enough to be shortened"
