"""Admin broadcasts end to end: preview, confirm once, fan out, survive restarts, report."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from itertools import pairwise
from pathlib import Path

import pytest

from bot.sandbox.faults import Fault, FaultKind
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from tests.e2e.conftest import ADMIN
from tests.e2e.harness import FakeClock, Harness, admin_harness, quiet

SUBSCRIBERS = list(range(5001, 5013))
OUTSIDER = 4242


@pytest.fixture
async def bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    async with admin_harness(story_folder, tmp_path, SUBSCRIBERS) as harness:
        yield harness


@pytest.fixture
async def slow_bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    """Sends 4 bulk messages a second, so a broadcast takes a few seconds."""
    clock = FakeClock(datetime(2025, 4, 2, 12, 0, tzinfo=UTC))
    async with SandboxServer() as server:
        server.add_chat(ADMIN, "private")
        harness = Harness(server, story_folder, tmp_path, clock, rate_per_second=4.0,
                          concurrency=2)
        await harness.start()
        for chat_id in SUBSCRIBERS:
            await harness.subscribe(chat_id, time(7, 0))
        try:
            yield harness
        finally:
            await harness.stop()


def status(bot: Harness) -> StoredMessage:
    return next(m for m in reversed(bot.received(ADMIN)) if "Broadcast #" in m.text)


def got(bot: Harness, text: str) -> Counter[int]:
    return Counter(chat for chat in SUBSCRIBERS
                   for m in bot.received(chat) if text in m.text)


async def press(bot: Harness, label: str, user_id: int = ADMIN) -> None:
    """Press a button of the status message; return once the bot has handled the press."""
    pressed = await bot.press(ADMIN, status(bot).message_id, text=label, user_id=user_id)
    assert pressed.answer is not None


def done(bot: Harness) -> bool:
    return "done in" in status(bot).text


async def test_non_admins_and_edited_commands_do_nothing(bot: Harness) -> None:
    bot.server.add_chat(OUTSIDER, "private")
    [refusal] = await bot.say("/broadcast Free money", user_id=OUTSIDER)
    assert "administrators only" in refusal.text
    post = await bot.server.user_message("/help", user_id=ADMIN)
    await bot.handled(post.update_id)
    before = len(bot.received(ADMIN))
    edit = await bot.server.edit_user_message(ADMIN, post.message.message_id, "/broadcast Hi")
    await bot.handled(edit.update_id)
    assert len(bot.received(ADMIN)) == before
    assert got(bot, "Free money") == got(bot, "Hi") == Counter()


async def test_usage_and_refusals_at_the_preview(bot: Harness) -> None:
    [usage] = await bot.say("/broadcast")
    assert "Usage" in usage.text and "/broadcast groups" in usage.text
    [too_long] = await bot.say("/broadcast " + "x" * 4100)
    assert "4100 characters" in too_long.text and "4096" in too_long.text
    assert await bot.services.subscriptions.get(Destination(SUBSCRIBERS[0])) is not None


async def test_preview_matches_delivery_and_a_double_send_sends_once(bot: Harness) -> None:
    formatting = [{"type": "bot_command", "offset": 0, "length": 10},
                  {"type": "bold", "offset": 11, "length": 3},
                  {"type": "italic", "offset": 22, "length": 4}]
    replies = await bot.say("/broadcast Big news & more", entities=formatting)
    assert replies[0].html == "<b>Big</b> news &amp; <i>more</i>"
    preview, panel = replies[0], replies[-1]
    assert "12 destinations" in panel.text and "Nothing is sent" in panel.text
    assert got(bot, "Big news") == Counter()  # nothing before "send"
    panel_id = status(bot).message_id
    presses = [await bot.server.press_button(ADMIN, panel_id, text="📣 Send to 12")
               for _ in range(2)]  # pressed twice before the bot answers either
    await bot.handled(presses[-1].update_id)
    await bot.until(lambda: done(bot))
    assert got(bot, "Big news & more") == Counter({chat: 1 for chat in SUBSCRIBERS})
    delivered = bot.received(SUBSCRIBERS[0])[-1]
    assert (delivered.text, delivered.html) == (preview.text, preview.html)
    assert "12 destinations — 12 sent." in status(bot).text
    [listing] = await bot.say("/broadcasts")
    assert "#1 done" in listing.text and "12 destinations — 12 sent" in listing.text


async def test_test_send_reaches_only_the_admin(bot: Harness) -> None:
    await bot.say("/broadcast Only a test")
    await press(bot, "Send a test to me")
    assert sum(1 for m in bot.received(ADMIN) if m.text == "Only a test") == 2  # preview+test
    assert got(bot, "Only a test") == Counter()


async def test_blocked_chats_end_their_subscription_and_are_counted(bot: Harness) -> None:
    blocked = SUBSCRIBERS[:3]
    for chat_id in blocked:
        bot.server.inject(Fault(FaultKind.FORBIDDEN, method="copyMessage", chat_id=chat_id,
                                times=None))
        bot.server.inject(Fault(FaultKind.FORBIDDEN, method="sendMessage", chat_id=chat_id,
                                times=None))
    await bot.say("/broadcast Blocked test")
    await press(bot, "📣 Send to 12")
    await bot.until(lambda: done(bot))
    assert "12 destinations — 9 sent, 3 blocked." in status(bot).text
    for chat_id in blocked:
        subscription = await bot.services.subscriptions.get(Destination(chat_id))
        assert subscription is not None and not subscription.active
        assert "blocked" in (subscription.ended_reason or "")


async def test_a_photo_with_caption_is_copied_intact(bot: Harness) -> None:
    photo = await bot.server.user_photo(caption="Our new studio", user_id=ADMIN)
    await bot.handled(photo.update_id)
    await bot.say("/broadcast private", reply_to_message_id=photo.message.message_id)
    await press(bot, "📣 Send to 12")
    await bot.until(lambda: done(bot))
    copies = [bot.received(chat)[-1] for chat in SUBSCRIBERS]
    assert {(m.text, m.photo_file_id) for m in copies} == {
        ("Our new studio", photo.message.photo_file_id)}


async def test_cancel_stops_what_is_not_sent_yet(slow_bot: Harness) -> None:
    bot = slow_bot
    await bot.say("/broadcast Slow news")
    await press(bot, "📣 Send to 12")
    await bot.until(lambda: sum(got(bot, "Slow news").values()) >= 2)
    await press(bot, "Cancel the rest")
    assert "cancelled by the admin" in status(bot).text
    sent_at_cancel = sum(got(bot, "Slow news").values())
    await quiet(bot, scans=0)  # the sends in flight at the cancel have landed
    assert sum(got(bot, "Slow news").values()) <= sent_at_cancel + 2  # in flight at most
    assert sum(got(bot, "Slow news").values()) < len(SUBSCRIBERS)


async def test_a_restart_halfway_completes_without_repeating(slow_bot: Harness) -> None:
    bot = slow_bot
    await bot.say("/broadcast Survives restarts")
    await press(bot, "📣 Send to 12")
    await bot.until(lambda: sum(got(bot, "Survives restarts").values()) >= 4)
    await bot.stop()
    await bot.start()
    await bot.until(lambda: done(bot))
    counts = got(bot, "Survives restarts")
    assert set(counts) == set(SUBSCRIBERS)
    assert sum(1 for n in counts.values() if n > 1) <= 1  # only a message in flight
    assert all(n <= 2 for n in counts.values())


async def test_progress_edits_respect_the_minimum_interval(slow_bot: Harness) -> None:
    bot = slow_bot
    await bot.say("/broadcast Progress please")
    first_call = len(bot.server.calls())
    await press(bot, "📣 Send to 12")
    await bot.until(lambda: done(bot))
    edits = [c for c in bot.server.calls("editMessageText", since=first_call)
             if c.chat_id == ADMIN and c.status == 200]
    assert len(edits) >= 3  # progress was shown along the way, then the report
    gaps = [b.started - a.started for a, b in pairwise(edits)]
    assert min(gaps) >= 0.5 - 0.05


async def test_channels_are_a_broadcast_audience_of_their_own(bot: Harness) -> None:
    channel = -1005550077
    await bot.subscribe(channel, time(7, 0), chat_type="channel")
    # Without a target a broadcast skips channels: it would reach all of their readers.
    preview = await bot.say("/broadcast A note for our subscribers")
    assert "all subscribers but channels (12 destinations)" in preview[-1].text
    await press(bot, "📣 Send to 12")
    await bot.until(lambda: done(bot))
    assert sum(got(bot, "A note for our subscribers").values()) == 12
    assert bot.received(channel) == []

    preview = await bot.say("/broadcast channels A note for channel readers")
    assert "channels only" in preview[-1].text
    await press(bot, "📣 Send to 1")
    await bot.until(lambda: done(bot))
    assert [m.text for m in bot.received(channel)] == ["A note for channel readers"]
    assert sum(got(bot, "A note for channel readers").values()) == 0  # no private chat
