"""The progress job never finishes a broadcast whose rows are still being created."""

from __future__ import annotations

from bot.storage.broadcasts import BroadcastStore
from bot.telegram.broadcasting import progress_job
from bot.telegram.context import BotContext
from tests.e2e.conftest import ADMIN, Chat


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
