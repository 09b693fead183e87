"""What an operator sees: /healthz and /metrics of a running bot, and `run_bot.py health`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from bot.config import DeliverySettings, MonitoringSettings
from bot.sandbox.server import SandboxServer
from bot.storage import DeliveryLedger, Destination, MessagePart, MessagesPayload, NewDelivery
from tests.e2e.conftest import TOKEN, Chat, e2e_settings, running_bot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def watched(story_folder: Path, tmp_path: Path) -> AsyncIterator[Chat]:
    async with SandboxServer() as server:
        base = e2e_settings(story_folder, server.base_url, tmp_path)
        settings = replace(base, monitoring=MonitoringSettings(port=0),
                           delivery=DeliverySettings(scan_seconds=1.0))
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def _url(chat: Chat, path: str) -> str:
    monitor = chat.services.monitor
    assert monitor is not None and monitor.started
    return f"http://{monitor.host}:{monitor.port}{path}"


async def test_healthz_is_healthy_then_names_what_is_wrong(watched: Chat) -> None:
    async with asyncio.timeout(10):
        while watched.services.status.last_scan_ended is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    status, body = await _get(_url(watched, "/healthz"))
    assert (status, json.loads(body)["healthy"]) == (200, True)
    # A second poller (reported by the polling watch) makes it unhealthy, with the reason.
    watched.services.status.set_problem("polling", "another instance is polling with "
                                                   "this token")
    status, body = await _get(_url(watched, "/healthz"))
    assert status == 503
    assert json.loads(body)["reasons"] == ["another instance is polling with this token"]
    watched.services.status.clear_problem("polling")
    # The sender dead is unhealthy even though the bot still answers readers.
    engine = watched.services.engine
    assert engine is not None
    await engine.sender.stop()
    status, body = await _get(_url(watched, "/healthz"))
    assert status == 503 and "the delivery sender is not running" in json.loads(body)["reasons"]


async def test_metrics_count_sends_ledger_rows_and_live_workers(watched: Chat) -> None:
    db = watched.services.require_database()
    watched.server.add_chat(31, "private")
    await DeliveryLedger(db).add([NewDelivery(
        "alert", "k1", Destination(31), MessagesPayload((MessagePart("<b>News</b>"),)))],
        watched.services.clock())
    watched.services.wake_sender()
    ledger = DeliveryLedger(db)
    async with asyncio.timeout(10):  # the message arrived and its row is settled
        while not watched.server.bot_messages(31) or await ledger.counts() != {  # noqa: ASYNC110
                "sent": 1}:
            await asyncio.sleep(0.02)
    await watched.say("/latest")
    sent = 'bot_sends_total{kind="alert",outcome="sent"} 1.0'
    async with asyncio.timeout(10):  # counted once the sender has settled the row
        while sent not in (text := (await _get(_url(watched, "/metrics")))[1]):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    lines = set(text.splitlines())
    assert 'bot_ledger_rows{state="sent"} 1.0' in lines
    assert "bot_live_workers 1.0" in lines
    assert "bot_stories_loaded 15.0" in lines
    assert any(line.startswith("bot_reply_seconds_count ") and not line.endswith(" 0.0")
               for line in lines)
    assert any(line.startswith("bot_due_scan_seconds_count ") for line in lines)
    assert 'bot_telegram_429_total{lane="bulk"} 0.0' in lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_bot_waiting_for_telegram_says_so_on_healthz(tmp_path: Path) -> None:
    port, nowhere = _free_port(), _free_port()
    config = tmp_path / "bot.yaml"
    config.write_text(f"telegram:\n  base_url: http://127.0.0.1:{nowhere}/bot\n"
                      f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'bot.db'}\n"
                      f"monitoring:\n  port: {port}\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "--config", str(config), "run", cwd=ROOT,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    status, body = await _get(f"http://127.0.0.1:{port}/healthz")
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        assert status == 503 and "waiting for Telegram" in json.loads(body)["reasons"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert TOKEN not in err.decode() and "Traceback" not in err.decode()


async def test_health_command_reads_the_verdict_from_the_database(
    watched: Chat, tmp_path: Path
) -> None:
    config = tmp_path / "ops.yaml"
    config.write_text(f"database:\n  url: {watched.services.settings.database.url}\n")

    async def health(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "run_bot.py", "--config", str(config), "health", *args, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, (out + err).decode()

    async with asyncio.timeout(10):
        while watched.services.status.last_scan_ended is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    code, out = await health("--json")
    verdict = json.loads(out)
    assert (code, verdict["healthy"], len(verdict["live_workers"])) == (0, True, 1)
    engine = watched.services.engine
    assert engine is not None
    await engine.sender.stop()  # a clean stop marks the worker stopped: nobody delivers
    code, out = await health()
    assert code == 1 and out.startswith("unhealthy: no bot process has renewed")
    config.write_text("database:\n  url: mysql://nowhere\n")
    assert (await health())[0] == 2  # bad configuration
