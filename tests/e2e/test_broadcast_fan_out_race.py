"""The progress job never finishes a broadcast whose rows are still being created."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from bot.sandbox.server import SandboxServer
from bot.storage import DeliveryLedger, MessagePart, MessagesPayload
from bot.storage.broadcasts import Audience, BroadcastStore
from bot.telegram.broadcasting import progress_job
from bot.telegram.context import BotContext
from tests.e2e.conftest import ADMIN, Chat
from tests.e2e.harness import FakeClock, Harness


async def test_a_tick_between_start_and_fan_out_leaves_the_broadcast_sending(
    admin_chat: Chat,
) -> None:
    admin_chat.server.add_chat(2002, "private")
    await admin_chat.say("/subscribe", user_id=2002)
    *_, preview = await admin_chat.say("/broadcast Hello", user_id=ADMIN)
    store = BroadcastStore(admin_chat.services.require_database())
    [draft] = await store.recent()
    assert preview.buttons
    # The admin pressed Send: the broadcast is started, its rows not created yet…
    assert await store.start(draft.id, admin_chat.services.clock())
    await progress_job(BotContext(admin_chat.app))  # …when the progress job ticks
    started = await store.get(draft.id)
    assert started is not None and started.state == "sending"  # not "done, 0 destinations"


async def test_a_fan_out_cut_short_by_a_crash_is_finished_after_the_restart(
    tmp_path: Path, story_folder: Path
) -> None:
    async with SandboxServer() as server:
        server.add_chat(ADMIN, "private")
        bot = Harness(server, story_folder, tmp_path, FakeClock(datetime(2025, 4, 2, 6, 0,
                                                                         tzinfo=UTC)))
        await bot.start()
        for chat in (3001, 3002, 3003):
            await bot.subscribe(chat, time(9, 0))
        db = bot.services.require_database()
        store = BroadcastStore(db)
        payload = MessagesPayload((MessagePart("Ferry strike tomorrow"),))
        draft = await store.create(ADMIN, ADMIN, payload, Audience(), bot.clock())
        assert await store.start(draft.id, bot.clock())  # Send pressed, then the crash:
        assert await DeliveryLedger(db).rows() == []  # no row was created
        await bot.stop()
        await bot.start()
        await bot.until(lambda: all(bot.received(c) for c in (3001, 3002, 3003)))
        started = await BroadcastStore(bot.services.require_database()).get(draft.id)
        assert started is not None and started.total == 3
        await bot.stop()
