"""A group that becomes a supergroup tells the bot with a ``migrate_to_chat_id`` service
message: the subscription moves then, so the next briefing goes straight to the new chat
instead of first failing against the old one."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path

from bot.sandbox.server import SandboxServer
from bot.storage.subscriptions import Destination, Subscription
from tests.e2e.harness import FakeClock, Harness, quiet

GROUP, SUPERGROUP, MEMBER = -5005, -1005005, 4242




async def moved(bot: Harness) -> Subscription | None:
    """The subscription at the supergroup, once the bot has moved it (at most 5 s)."""
    with_timeout = asyncio.timeout(5)
    try:
        async with with_timeout:
            while (found := await bot.services.subscriptions.get(Destination(SUPERGROUP))) \
                    is None:  # noqa: ASYNC110 - the bot handles the update in its own time
                await asyncio.sleep(0.05)
            return found
    except TimeoutError:
        return None


async def test_the_migration_service_message_moves_the_subscription_before_any_send(
        bot: Harness) -> None:
    bot.server.add_chat(GROUP, "group", members=[MEMBER])
    await bot.subscribe(GROUP, time(7, 0), chat_type="group")
    assert bot.server.migrate_group(GROUP, SUPERGROUP) == SUPERGROUP  # service messages
    subscription = await moved(bot)
    assert subscription is not None and subscription.active, "the subscription did not move"
    assert await bot.services.subscriptions.get(Destination(GROUP)) is None

    bot.clock.advance(minutes=3)  # 07:01: the briefing is due
    await bot.until(lambda: any("Your briefing" in m.text for m in bot.received(SUPERGROUP)))
    await quiet(bot)
    assert [c for c in bot.server.calls() if c.chat_id == GROUP] == []  # nothing failed


async def test_the_migration_moves_the_subscription_even_from_a_throttled_member(
        story_folder: Path, tmp_path: Path) -> None:
    """Telegram signs the service message with a member's name; a member who just used up
    the command limit must not make the bot miss the move."""
    async with SandboxServer() as server:
        bot = Harness(server, story_folder, tmp_path,
                      FakeClock(datetime(2025, 4, 2, 6, 58, tzinfo=UTC)))
        bot.settings = replace(bot.settings,
                               telegram=replace(bot.settings.telegram, commands_per_minute=1))
        await bot.start()
        try:
            server.add_chat(GROUP, "group", members=[MEMBER])
            await bot.subscribe(GROUP, time(7, 0), chat_type="group")
            for _ in range(3):  # allowed, the notice, then ignored
                post = await server.user_message("/help", user_id=MEMBER, chat_id=GROUP)
                await bot.handled(post.update_id)
            assert "try again in" in bot.received(GROUP)[-1].text
            server.migrate_group(GROUP, SUPERGROUP)
            assert await moved(bot) is not None, "the throttle swallowed the migration"
        finally:
            await bot.stop()
