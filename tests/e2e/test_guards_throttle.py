"""A reader pressing buttons faster than the throttle allows is told so on the button
itself (an answered callback), not with a message posted into the chat."""

from __future__ import annotations

from tests.e2e.conftest import USER, Chat


async def test_a_throttled_button_press_is_answered_with_the_notice(strict_chat: Chat) -> None:
    chat = strict_chat  # 3 commands or presses a minute per user
    [latest] = await chat.say("/latest")
    assert latest.buttons
    for _ in range(2):  # presses 2 and 3 of the minute: answered as usual
        assert await chat.press(USER, message_id=latest.message_id, button=1) is not None
    before = len(chat.server.bot_messages(USER, include_deleted=True))
    answer = await chat.press(USER, message_id=latest.message_id, button=1)
    assert answer is not None, "the throttled press was left spinning"
    assert "wait a minute" in answer.get("text", "")
    assert len(chat.server.bot_messages(USER, include_deleted=True)) == before  # no post


async def test_presses_after_the_notice_are_answered_silently(strict_chat: Chat) -> None:
    chat = strict_chat
    [latest] = await chat.say("/latest")
    for _ in range(3):  # presses 2 and 3, then the one that gets the notice
        await chat.press(USER, message_id=latest.message_id, button=1)
    before = len(chat.server.bot_messages(USER, include_deleted=True))
    answer = await chat.press(USER, message_id=latest.message_id, button=1)
    assert answer is not None, "the press was left spinning"
    assert not answer.get("text")  # silence: no second notice
    assert len(chat.server.bot_messages(USER, include_deleted=True)) == before
