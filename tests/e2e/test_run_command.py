"""`python run_bot.py run` as an operator starts it: a real process, real logging."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.sandbox.server import SandboxServer
from tests.e2e.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]


async def test_run_polls_answers_and_never_logs_the_token(tmp_path: Path) -> None:
    async with SandboxServer() as server:
        config = tmp_path / "bot.yaml"
        config.write_text(f"telegram:\n  base_url: {server.base_url}\n"
                          f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'run.db'}\n"
                          "log_level: DEBUG\n")
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "run_bot.py", "--config", str(config), "run", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            post = await server.user_message("/start", user_id=77)
            trip = await server.wait_reply(post.update_id, 77, timeout=30)
            assert trip.complete
            assert "Story briefings" in server.bot_messages(77)[0].text
        finally:
            process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), 30)
        log = err.decode()
        assert process.returncode == 0
        assert f"config={config}" in log and f"bot_api={server.base_url}" in log
        assert "getUpdates" in log  # DEBUG logging of requests really happened…
        assert TOKEN not in log and TOKEN.split(":")[1] not in log  # …without the token
