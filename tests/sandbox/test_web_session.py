"""``run_bot.py sandbox --web`` as a person starts it: the URL printed, the page served on
the sandbox's port, the terminal still printing the chat with standard input closed, and
Ctrl-C ending it cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp

from bot.sandbox.state import DEMO_USER_ID

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"web chat at (http://127\.0\.0\.1:\d+/)")


async def line_matching(stream: asyncio.StreamReader, pattern: re.Pattern[str]) -> re.Match[str]:
    async with asyncio.timeout(30):
        while line := (await stream.readline()).decode():
            if found := pattern.search(line):
                return found
    raise AssertionError(f"the output ended without {pattern.pattern!r}")


async def test_sandbox_web_serves_the_page_and_the_terminal_shows_the_chat(
        tmp_path: Path, story_folder: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(f"stories:\n  folder: {story_folder}\n", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "--config", str(config), "sandbox", "--web",
        "--port", "0", "--log", str(tmp_path / "sandbox.log"), cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stderr is not None
        url = (await line_matching(process.stderr, URL)).group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as page:
                assert page.status == 200
                assert '<script src="/static/app.js"' in await page.text()
            async with http.post(f"{url}web/api/send", json={
                    "chat_id": DEMO_USER_ID, "user_id": DEMO_USER_ID, "text": "/start"}) as sent:
                assert sent.status == 200
        # Standard input was closed from the start: the terminal still shows the chat.
        await line_matching(process.stdout, re.compile(r"^you> /start$"))
        await line_matching(process.stdout, re.compile(r"^bot> .*Story briefings"))
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await process.wait() == 0
        assert b"Traceback" not in await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
