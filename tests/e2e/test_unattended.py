"""Unattended delivery with real processes: SIGKILL mid-fan-out and an immediate restart,
a second bot refused on the same SQLite file, operator commands beside a running bot."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.sandbox import Fault, FaultKind
from bot.sandbox.server import SandboxServer
from bot.storage import (
    Database,
    DeliveryLedger,
    DeliveryState,
    Destination,
    MessagePart,
    MessagesPayload,
    NewDelivery,
)
from tests.e2e.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]
CHATS = list(range(5001, 5081))


async def _queue(url: str, chats: list[int]) -> None:
    db = await Database.open(url)
    try:
        payload = MessagesPayload((MessagePart("<b>Morning briefing</b>"),))
        await DeliveryLedger(db).add(
            [NewDelivery("digest", "2025-03-10", Destination(c), payload) for c in chats],
            datetime.now(UTC))
    finally:
        await db.close()


async def _ledger_states(url: str) -> dict[str, int]:
    db = await Database.open(url)
    try:
        return dict(await DeliveryLedger(db).counts())
    finally:
        await db.close()


async def _bot(config: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "--config", str(config), *args, cwd=ROOT,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _until(condition: object, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_killed_mid_fanout_and_restarted_at_once_it_delivers_everything(
    tmp_path: Path,
) -> None:
    async with SandboxServer() as server:
        for chat in CHATS:
            server.add_chat(chat, "private")
        # Every send takes a while, so the kill surely finds sends in flight.
        server.inject(Fault(FaultKind.SLOW, method="sendMessage", times=None, delay=0.2))
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        config = tmp_path / "bot.yaml"
        config.write_text(f"telegram:\n  base_url: {server.base_url}\n"
                          f"database:\n  url: {url}\n"
                          "delivery:\n  concurrency: 8\n  rate_per_second: 100\n"
                          "  per_chat_per_second: 30\n  scan_seconds: 1\n"
                          "log_level: WARNING\n")
        await _queue(url, CHATS)

        def received() -> int:
            return sum(1 for c in CHATS if server.bot_messages(c))

        first = await _bot(config, "run")
        await _until(lambda: received() >= 20, 30)
        first.kill()  # SIGKILL: no clean shutdown, the OS lock dies with the process
        await first.wait()
        in_flight = (await _ledger_states(url)).get("sending", 0)
        assert in_flight > 0  # the crash left claims behind, as a real one does

        restarted = await _bot(config, "run")
        began = asyncio.get_running_loop().time()
        try:
            await _until(lambda: received() == len(CHATS), 30)
            took = asyncio.get_running_loop().time() - began
            # A second bot on the same file is refused with one clear line, and sends nothing.
            second = await _bot(config, "run")
            out, err = await asyncio.wait_for(second.communicate(), 30)
            assert second.returncode == 2
            [line] = err.decode().strip().splitlines()
            assert "another bot (pid" in line and "already running" in line
            # The read-only operator commands work while the bot runs.
            for command in (("stats",), ("health",), ("subscribers", "export")):
                tool = await _bot(config, *command)
                out, err = await asyncio.wait_for(tool.communicate(), 30)
                assert tool.returncode == 0, (command, out, err)
            health = await _bot(config, "health")
            assert (await health.communicate())[0] == b"healthy\n"
        finally:
            restarted.send_signal(signal.SIGINT)
            await asyncio.wait_for(restarted.communicate(), 30)
        assert restarted.returncode == 0
        # Nothing lost; at most the rows in flight at the kill arrived twice; and the
        # restart did not wait for any lease to expire (the old code waited 5 minutes).
        copies = [len(server.bot_messages(c)) for c in CHATS]
        assert min(copies) == 1
        assert sum(copies) - len(CHATS) <= in_flight
        assert took < 15
        states = await _ledger_states(url)
        assert set(states) == {DeliveryState.SENT.value}
