"""Broadcast controls are for admins only: a button press or /cancel_broadcast from
anyone else (a forged callback, a guessed id) is refused and changes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.state import StoredMessage
from bot.storage.broadcasts import BroadcastStore
from tests.e2e.conftest import ADMIN
from tests.e2e.harness import Harness, admin_harness, quiet

SUBSCRIBERS = list(range(6001, 6006))
OUTSIDER = 4242


@pytest.fixture
async def bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    async with admin_harness(story_folder, tmp_path, SUBSCRIBERS, chats=(OUTSIDER,)) as harness:
        yield harness


def got(bot: Harness, text: str) -> Counter[int]:
    return Counter(chat for chat in SUBSCRIBERS for m in bot.received(chat) if text in m.text)


async def draft(bot: Harness, text: str) -> StoredMessage:
    """The admin's preview panel of a new broadcast (nothing is sent before "Send")."""
    replies = await bot.say(f"/broadcast {text}", ADMIN)
    return next(m for m in reversed(replies) if "Broadcast #1" in m.text)


async def state(bot: Harness) -> str:
    broadcast = await BroadcastStore(bot.services.require_database()).get(1)
    assert broadcast is not None
    return broadcast.state


async def everyone_gets_it_once(bot: Harness, panel: StoredMessage, text: str) -> None:
    """The admin sends the draft: proof that the outsider's attempts changed nothing."""
    pressed = await bot.server.press_button(ADMIN, panel.message_id, data="bc:s:1",
                                            timeout=10)
    assert pressed.answer is not None
    await bot.until(lambda: sum(got(bot, text).values()) == len(SUBSCRIBERS))
    await quiet(bot, scans=0)
    assert got(bot, text) == Counter({chat: 1 for chat in SUBSCRIBERS})


async def test_broadcast_buttons_pressed_by_a_non_admin_are_refused(bot: Harness) -> None:
    panel = await draft(bot, "Staff party moved")
    for data in ("bc:t:1", "bc:s:1", "bc:c:1"):  # test send, send, cancel
        pressed = await bot.server.press_button(ADMIN, panel.message_id, data=data,
                                                user_id=OUTSIDER, timeout=10)
        assert pressed.answer is not None, f"{data} was not answered"
        assert "administrators only" in (pressed.answer_text or "")
        assert pressed.answer.get("show_alert") is True
        await bot.handled(pressed.update_id)
    await quiet(bot, scans=0)
    assert await state(bot) == "draft"
    assert got(bot, "Staff party moved") == Counter()  # nothing went out
    assert bot.received(OUTSIDER) == []  # not even a test copy
    await everyone_gets_it_once(bot, panel, "Staff party moved")


async def test_cancel_broadcast_from_a_non_admin_is_refused(bot: Harness) -> None:
    panel = await draft(bot, "Office closed on Friday")
    [refusal] = await bot.say("/cancel_broadcast 1", OUTSIDER)
    assert "administrators only" in refusal.text
    assert await state(bot) == "draft"
    await everyone_gets_it_once(bot, panel, "Office closed on Friday")
