"""Buttons and the throttle: pressing buttons has its own, larger budget than sending
messages; every press is answered (a throttled one with a toast saying when to try again),
and a reader who used up one budget can still use the other."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from tests.e2e.conftest import USER, Chat, e2e_settings, handled, running_bot

NEWER, OLDER = "‹ Newer", "Older ›"
TOAST = re.compile(r"^Too many taps — try again in (\d+) s\.?$")
NOTICE = re.compile(r"try again in (\d+) s")


@pytest.fixture
async def tapping_chat(story_folder: Path, tmp_path: Path) -> AsyncIterator[Chat]:
    """A bot that allows 3 button presses a minute per user (and the usual 20 messages)."""
    async with SandboxServer() as server:
        settings = e2e_settings(story_folder, server.base_url, tmp_path,
                                button_presses_per_minute=3)
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


def current(chat: Chat, message: StoredMessage) -> StoredMessage:
    stored = chat.server.state.message(USER, message.message_id)
    assert stored is not None
    return stored


async def page_back_and_forth(chat: Chat, page: StoredMessage, presses: int) -> list[str]:
    """Press Older ›, ‹ Newer, Older › … on a /latest page; the toast of each answer."""
    toasts = []
    for press in range(presses):
        answer = await chat.press(USER, message_id=page.message_id,
                                  text=OLDER if press % 2 == 0 else NEWER)
        assert answer is not None, f"press {press + 1} was left spinning"
        toasts.append(str(answer.get("text") or ""))
    return toasts


async def test_paging_latest_thirty_times_is_answered_and_leaves_messages_their_budget(
        chat: Chat) -> None:
    # 20 messages a minute and 60 presses by default: paging is not sending commands
    [page] = await chat.say("/latest")
    first = page.text
    toasts = await page_back_and_forth(chat, page, 30)
    assert toasts == [""] * 30  # no throttle notice among them
    assert current(chat, page).text == first  # the 30th press (‹ Newer) was carried out
    [reply] = await chat.say("/latest 1")  # a message after all that paging is answered
    assert "1." in reply.text


async def test_a_press_over_the_budget_gets_a_toast_saying_when_to_try_again(
        tapping_chat: Chat) -> None:
    chat = tapping_chat
    [page] = await chat.say("/latest")
    assert await page_back_and_forth(chat, page, 3) == ["", "", ""]
    shown = current(chat, page).text  # after Older, Newer, Older
    posted = len(chat.server.bot_messages(USER, include_deleted=True))
    for _ in range(3):  # the 4th, 5th and 6th presses of the minute: each told, none spins
        answer = await chat.press(USER, message_id=page.message_id, text=NEWER)
        assert answer is not None, "a throttled press was left spinning"
        toast = TOAST.match(str(answer.get("text") or ""))
        assert toast is not None, answer
        assert 1 <= int(toast.group(1)) <= 60
        assert not answer.get("show_alert")  # a toast, not a dialog to dismiss
    assert current(chat, page).text == shown  # the throttled presses changed nothing
    assert len(chat.server.bot_messages(USER, include_deleted=True)) == posted  # no post


async def test_a_reader_out_of_presses_can_still_send_messages(tapping_chat: Chat) -> None:
    chat = tapping_chat
    [page] = await chat.say("/latest")
    toasts = await page_back_and_forth(chat, page, 4)
    assert TOAST.match(toasts[-1]), toasts  # out of presses for now
    [reply] = await chat.say("harbour")  # a search typed meanwhile is answered
    assert "harbour" in reply.text.lower()
    [latest] = await chat.say("/latest 2")
    assert "2." in latest.text


async def test_a_reader_out_of_messages_is_told_when_to_try_again_and_can_still_press(
        strict_chat: Chat) -> None:
    chat = strict_chat  # 3 messages a minute per user; presses keep their own 60
    [page] = await chat.say("/latest")
    await chat.say("/help")
    await chat.say("/latest 1")
    [notice] = await chat.say("/latest 2")
    found = NOTICE.search(notice.text)
    assert found is not None, notice.text
    assert 1 <= int(found.group(1)) <= 60
    assert "message" in notice.text and "command" not in notice.text
    assert await chat.say("/latest 3", expect_reply=False) == []  # told once, then quiet
    before = page.text
    answer = await chat.press(USER, message_id=page.message_id, text=OLDER)
    assert answer is not None and not answer.get("text")
    assert current(chat, page).text != before  # the press turned the page


async def test_a_reader_out_of_messages_who_blocks_the_bot_is_unsubscribed(
        strict_chat: Chat) -> None:
    chat = strict_chat  # 3 messages a minute
    await chat.say("/subscribe 07:00")
    for _ in range(2):
        await chat.say("/status")
    [notice] = await chat.say("/status")
    assert NOTICE.search(notice.text)
    blocked = await chat.server.block_bot(USER)  # not a request: no budget applies
    await handled(chat.server, chat.app, blocked)
    subscription = await chat.services.subscriptions.get(Destination(USER))
    assert subscription is not None and not subscription.active
