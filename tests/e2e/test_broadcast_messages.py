"""What an admin reads around a broadcast: counts in good English, no broadcast to nobody,
a duration from the rate broadcasts really go at, dates like every other message, and
targets read from the text as typed (a follow: word is taken whole, or refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, select, update

from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.storage.broadcasts import Audience, BroadcastStore
from bot.storage.ledger import DeliveryLedger, DeliveryState, NewDelivery
from bot.storage.payloads import MessagePart, MessagesPayload
from bot.storage.subscriptions import Destination
from tests.e2e.conftest import ADMIN
from tests.e2e.harness import FakeClock, Harness, admin_harness

SUBSCRIBERS = list(range(5101, 5113))


@pytest.fixture
async def bot(story_folder: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    async with admin_harness(story_folder, tmp_path, SUBSCRIBERS) as harness:
        yield harness


def status(bot: Harness) -> StoredMessage:
    return next(m for m in reversed(bot.received(ADMIN)) if "Broadcast #" in m.text)


def done(bot: Harness) -> bool:
    return "done in" in status(bot).text


def texts(bot: Harness, chat_id: int) -> list[str]:
    return [m.text for m in bot.received(chat_id)]


async def broadcasts(bot: Harness) -> list[str]:
    return [b.state for b in await BroadcastStore(bot.services.require_database()).recent()]


async def test_one_destination_is_written_in_the_singular(bot: Harness) -> None:
    await bot.services.subscriptions.follow(Destination(SUBSCRIBERS[0]), ["ferry"],
                                            bot.clock())
    *_, panel = await bot.say("/broadcast follow:ferry The ferry runs again")
    assert "(1 destination)." in panel.text and "destinations" not in panel.text
    await bot.press(ADMIN, panel.message_id, text="📣 Send to 1")
    await bot.until(lambda: done(bot))
    assert "1 destination — 1 sent." in status(bot).text
    [listing] = await bot.say("/broadcasts")
    assert "1 destination — 1 sent" in listing.text, listing.text


async def test_a_broadcast_to_nobody_offers_no_send_button(bot: Harness) -> None:
    [reply] = await bot.say("/broadcast follow:zeppelin Zeppelins tomorrow")
    assert reply.text.startswith("📣 Nobody to send to"), reply.text
    assert "following “zeppelin”" in reply.text
    assert reply.reply_markup is None
    assert await broadcasts(bot) == []  # no draft that could be sent later


async def test_an_old_send_button_for_an_audience_now_empty_sends_nothing(
        bot: Harness) -> None:
    reader = Destination(SUBSCRIBERS[0])
    await bot.services.subscriptions.follow(reader, ["ferry"], bot.clock())
    *_, panel = await bot.say("/broadcast follow:ferry The ferry runs again")
    await bot.services.subscriptions.unfollow(reader, ["ferry"], bot.clock())
    pressed = await bot.press(ADMIN, panel.message_id, text="📣 Send to 1")
    assert pressed.answer is not None and pressed.answer.get("show_alert") is True
    assert "Nothing was sent: nobody is in broadcast #1's audience" in (
        pressed.answer_text or "")
    assert await broadcasts(bot) == ["draft"]
    assert await DeliveryLedger(bot.services.require_database()).rows(kind="broadcast") == []


async def past_broadcast(bot: Harness, messages: int, seconds: float) -> None:
    """A broadcast of a day ago whose ``messages`` rows were sent over ``seconds``."""
    db = bot.services.require_database()
    store, ledger = BroadcastStore(db), DeliveryLedger(db)
    start = bot.clock() - timedelta(days=1)
    payload = MessagesPayload((MessagePart("Yesterday's news"),))
    past = await store.create(ADMIN, ADMIN, payload, Audience(), start)
    assert await store.start(past.id, start)
    # History written as it would have been recorded, not sent now: the rows are held back
    # from the running bot's sender and become sent in one statement (a claim by a made-up
    # worker would be settled by the bot's recovery, which presumes that worker dead).
    held = bot.clock() + timedelta(days=365)
    d = db.tables.deliveries
    async with db.engine.begin() as conn:
        await ledger.add_in(conn, [NewDelivery("broadcast", str(past.id), Destination(9000 + n),
                                               payload) for n in range(messages)],
                            start, not_before=held)
        ids = (await conn.execute(select(d.c.id).where(d.c.ref == str(past.id))
                                  .order_by(d.c.id))).scalars().all()
        assert len(ids) == messages
        await conn.execute(
            update(d).where(d.c.id == bindparam("row_id")).values(
                state=DeliveryState.SENT.value, parts_sent=1, sent_at=bindparam("at")),
            [{"row_id": row_id, "at": start + timedelta(seconds=seconds * n / messages)}
             for n, row_id in enumerate(ids, start=1)])
    assert await store.finish(past.id, start + timedelta(seconds=seconds))


async def test_the_expected_duration_uses_the_rate_broadcasts_really_went_at(
        bot: Harness) -> None:
    configured = bot.services.settings.delivery.rate_per_second
    *_, panel = await bot.say("/broadcast Before any broadcast")
    assert (f"at {configured:g} messages/s (the configured rate; nothing measured yet)"
            in panel.text), panel.text
    await past_broadcast(bot, messages=120, seconds=60)  # 2 messages a second
    *_, panel = await bot.say("/broadcast After one")
    assert ("Expected duration: about 6 s at 2 messages/s (as recent broadcasts went)."
            in panel.text), panel.text


async def test_paid_broadcasts_keep_estimating_at_the_paid_rate(
        story_folder: Path, tmp_path: Path) -> None:
    async with SandboxServer() as server:
        server.add_chat(ADMIN, "private")
        bot = Harness(server, story_folder, tmp_path,
                      FakeClock(datetime(2025, 4, 2, 12, 0, tzinfo=UTC)), paid_broadcast=True)
        await bot.start()
        try:
            for chat_id in SUBSCRIBERS:
                await bot.subscribe(chat_id, time(7, 0))
            await past_broadcast(bot, messages=120, seconds=60)
            *_, panel = await bot.say("/broadcast paid Fast news")
            assert "expected duration about 1 s at up to 1000 messages/s" in panel.text
        finally:
            await bot.stop()


async def test_the_list_of_broadcasts_writes_dates_like_every_message(bot: Harness) -> None:
    await bot.say("/timezone Europe/Berlin")
    await bot.say("/broadcast Dated news")
    [listing] = await bot.say("/broadcasts")
    assert "#1 draft, 2 Apr 2025, 14:00 CEST, " in listing.text, listing.text


async def test_follow_targets_are_read_from_the_text_not_its_html(bot: Harness) -> None:
    await bot.services.subscriptions.follow(Destination(SUBSCRIBERS[0]), ["O'Neil"],
                                            bot.clock())
    command = "/broadcast follow:o'neil Hello there"
    entities = [{"type": "bot_command", "offset": 0, "length": 10},
                {"type": "bold", "offset": command.index("there"), "length": 5}]
    preview, *_, panel = await bot.say(command, entities=entities)
    assert preview.html == "Hello <b>there</b>"
    assert "following “o'neil” (1 destination)" in panel.text, panel.text
    await bot.press(ADMIN, panel.message_id, text="📣 Send to 1")
    await bot.until(lambda: done(bot))
    [delivered] = bot.received(SUBSCRIBERS[0])
    assert (delivered.text, delivered.html) == ("Hello there", "Hello <b>there</b>")
    assert all(texts(bot, chat) == [] for chat in SUBSCRIBERS[1:])


async def test_a_follow_word_longer_than_the_limit_is_refused_not_cut(bot: Harness) -> None:
    long_word = "a" * 70
    await bot.services.subscriptions.follow(Destination(SUBSCRIBERS[0]), ["a" * 64],
                                            bot.clock())
    [refusal] = await bot.say(f"/broadcast follow:{long_word} Hi")
    assert "longer than the 64 characters a follow word may have" in refusal.text
    assert "nothing was sent" in refusal.text
    [refusal] = await bot.say("/broadcast follow:harbour.news Hi")
    assert "is not one word" in refusal.text
    assert await broadcasts(bot) == []
