"""The ``/sandbox`` HTTP user-side API, and the standalone server process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
from telegram import Bot
from telegram.error import Forbidden, RetryAfter

from bot.sandbox import SandboxClient, SandboxServer
from bot.sandbox.client import SandboxClientError

ROOT = Path(__file__).resolve().parents[2]


async def test_user_side_over_http(bot: Bot, server: SandboxServer) -> None:
    async with SandboxClient(server.base_url) as api:
        assert (await api.request("GET", "health"))["bot"]["username"] == "story_bot"
        post = await api.user_message("/start", user_id=42, first_name="Ada")
        [update] = await bot.get_updates(timeout=1)
        assert update.update_id == post["update_id"]
        assert update.effective_user is not None and update.effective_user.first_name == "Ada"

        reply = asyncio.create_task(api.wait_reply(post["update_id"], 42, count=2, timeout=5))
        await bot.send_message(42, "<b>one</b>", parse_mode="HTML")
        await bot.send_message(42, "two")
        trip = await reply
        assert trip["complete"] and len(trip["calls"]) == 2
        assert trip["last_latency"] >= trip["first_latency"] > 0

        messages = await api.messages(42, bot_only=True)
        assert [(m["text"], m["html"]) for m in messages] == [
            ("one", "<b>one</b>"),
            ("two", None),
        ]
        assert [c["method"] for c in await api.calls(method="sendMessage")] == [
            "sendMessage",
            "sendMessage",
        ]

        await api.set_options(flood={"per_chat_per_second": 1})
        await bot.send_message(42, "three")
        with pytest.raises(RetryAfter):
            await bot.send_message(42, "four")
        assert (await api.stats())["flood_refusals"] == 1
        await api.set_options(flood="off")

        fault = await api.inject("forbidden", method="sendMessage", chat_id=42)
        assert fault["id"] >= 1
        with pytest.raises(Forbidden):
            await bot.send_message(42, "blocked once")
        await api.clear_faults()

        with pytest.raises(SandboxClientError) as info:
            await api.press(42)
        assert info.value.status == 404
        with pytest.raises(SandboxClientError) as bad:
            await api.inject("no-such-kind")
        assert bad.value.status == 400

        await api.reset()
        assert (await api.stats())["chats"] == 0


async def test_http_chat_admin_and_membership(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session:
        base = f"{server.url}/sandbox"
        body = {"id": -1001, "type": "supergroup", "title": "Desk", "admins": [1]}
        async with session.post(f"{base}/chats", json=body) as response:
            assert response.status == 200
        async with session.post(f"{base}/chats/-1001/bot-removed", json={}) as response:
            update_id = (await response.json())["result"]["update_id"]
        update = server.state.updates[update_id].payload
        assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
        async with session.get(f"{base}/chats/-1001/messages") as response:
            assert (await response.json()) == {"ok": True, "result": []}
        async with session.get(f"{base}/chats/5/messages") as response:
            assert response.status == 404
        async with session.post(f"{base}/message", data="not json") as response:
            assert response.status == 400


async def test_standalone_process_prints_ready_line_and_serves() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox.server",
        "--port",
        "0",
        "--flood-chat",
        "1",
        "--now",
        "2025-03-31T07:00:00+00:00",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert line.startswith("sandbox Bot API server listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1].strip()
        async with SandboxClient(base_url) as api:
            options = await api.request("GET", "options")
            assert options["flood"]["per_chat_per_second"] == 1
            assert options["now"].startswith("2025-03-31T07:00:00")
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
