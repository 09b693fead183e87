"""`run` when starting goes wrong: a refused token or address, no Telegram, a second poller.

Each is a real `python run_bot.py run` process, with both HTTP clients, whose whole output
is read: one clear line, never the token, never a traceback or an unclosed session.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from aiohttp import web
from telegram.error import Conflict

from bot.config import DatabaseSettings, HttpClient, Settings, TelegramSettings
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import SandboxServer
from bot.status import ProcessStatus
from bot.telegram.app import build_application, stop_bot
from bot.telegram.context import BotApplication
from bot.telegram.startup import SECOND_POLLER, WAITING, StartupError, connect, watch_polling

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456789:AAHsecretSECRETsecret0123456789abcdef"
SECRET = TOKEN.split(":")[1]
CLIENTS = ("aiohttp", "httpx")
WAIT = 30.0  # seconds any expected line may take to show up on a slow machine


class BotProcess:
    """A running `run_bot.py` whose stderr is read line by line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._grew = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._grew.set()
        self._grew.set()

    async def wait_for(self, text: str, count: int = 1) -> list[str]:
        """Wait until ``count`` stderr lines contain ``text``; those lines."""
        async def enough() -> list[str]:
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found
                if self._reader.done():
                    raise AssertionError(f"the bot ended without {count}× {text!r}:\n"
                                         + "\n".join(self.lines))
                self._grew.clear()
                await self._grew.wait()
        return await asyncio.wait_for(enough(), WAIT)

    async def finish(self, sig: int | None = None) -> tuple[int, str]:
        """Send ``sig`` (if any), wait for the exit: its code and everything it wrote."""
        if sig is not None:
            self.process.send_signal(sig)
        assert self.process.stdout is not None
        out = await asyncio.wait_for(self.process.stdout.read(), WAIT)
        await asyncio.wait_for(self._reader, WAIT)
        code = await asyncio.wait_for(self.process.wait(), WAIT)
        return code, out.decode() + "\n".join(self.lines)


@asynccontextmanager
async def bot_process(tmp_path: Path, base_url: str, *, client: str = "aiohttp",
                      level: str = "DEBUG", folder: Path | None = None,
                      script: str | None = None) -> AsyncIterator[BotProcess]:
    """`run_bot.py run` (or ``script`` given the same arguments) with a fresh config."""
    config = tmp_path / "bot.yaml"
    config.write_text(f"telegram:\n  base_url: {base_url}\n  http_client: {client}\n"
                      f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'run.db'}\n"
                      f"log_level: {level}\n"
                      + (f"stories:\n  folder: {folder}\n" if folder else ""))
    program = ["-c", script] if script else ["run_bot.py"]
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *program, "--config", str(config), "run", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    running = BotProcess(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def assert_clean(output: str) -> None:
    """Nothing an operator must not see: the token, a traceback, a leaked HTTP session."""
    assert TOKEN not in output and SECRET not in output
    assert "Traceback" not in output
    assert "Unclosed" not in output


@asynccontextmanager
async def answering(status: int, description: str) -> AsyncIterator[str]:
    """An HTTP server that answers every call with ``status``, as Telegram does; its URL."""
    async def reply(request: web.Request) -> web.Response:
        body = {"ok": False, "error_code": status, "description": description}
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", reply)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextmanager
def refused_port() -> Iterator[int]:
    """A local port that refuses connections for as long as it is held (bound, no listen)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# -- a token or an address Telegram refuses: one line, exit 2, at once ---------------------
@pytest.mark.parametrize("client", CLIENTS)
async def test_rejected_token_is_one_line_and_exit_2(tmp_path: Path, client: str) -> None:
    async with answering(401, "Unauthorized") as url, \
            bot_process(tmp_path, f"{url}/bot", client=client, level="WARNING") as bot:
        code, output = await bot.finish()
    assert code == 2
    assert output.strip().splitlines() == [
        "error: Telegram rejected the bot token (401 Unauthorized): TELEGRAM_BOT_TOKEN is "
        "wrong or was revoked; copy it again from @BotFather"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_no_bot_api_at_base_url_is_one_line_and_exit_2(tmp_path: Path,
                                                             client: str) -> None:
    async with SandboxServer() as server:
        wrong = f"{server.url}/telegram/bot"  # a real server, but no Bot API at that path
        async with bot_process(tmp_path, wrong, client=client, level="WARNING") as bot:
            code, output = await bot.finish()
    assert code == 2
    assert output.strip().splitlines() == [
        f"error: no Bot API at telegram.base_url {wrong} (getMe answered 404 Not Found); "
        "check the address, e.g. https://api.telegram.org/bot"]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("status", [401, 404])
async def test_refusals_never_show_the_token_even_when_debugging(
        tmp_path: Path, client: str, status: int) -> None:
    async with answering(status, "Unauthorized" if status == 401 else "Not Found") as url, \
            bot_process(tmp_path, f"{url}/bot", client=client, level="DEBUG") as bot:
        code, output = await bot.finish()
    assert code == 2
    assert "getMe" in output  # the requests were logged…
    assert_clean(output)  # …without the token
    assert output.count("error: ") == 1


async def test_404_for_a_malformed_token_blames_the_token() -> None:
    """Telegram answers a token that is not shaped like one with 404, not 401."""
    async with answering(404, "Not Found") as url:
        app = _app(f"{url}/bot", "aiohttp", token="not a token")
        with pytest.raises(StartupError, match=r"Telegram rejected the bot token .* not shaped"):
            await connect(app.bot, ProcessStatus(), f"{url}/bot", "not a token",
                          stop=asyncio.Event())


# -- Telegram unreachable: wait, retry, one line each, never give up -----------------------
@pytest.mark.parametrize("client", CLIENTS)
async def test_refused_connection_is_waited_for_one_line_per_attempt(tmp_path: Path,
                                                                     client: str) -> None:
    with refused_port() as port:
        base_url = f"http://127.0.0.1:{port}/bot"
        async with bot_process(tmp_path, base_url, client=client) as bot:
            attempts = await bot.wait_for("Telegram is not reachable", count=2)
            assert bot.process.returncode is None  # still waiting, not given up
            code, output = await bot.finish(signal.SIGTERM)
    assert [f"attempt {n}:" in line for n, line in enumerate(attempts, start=1)] == [True] * 2
    assert all(base_url in line for line in attempts)
    assert code == 0  # a stop while waiting is a normal stop
    assert_clean(output)


async def test_unknown_host_is_waited_for_too(tmp_path: Path) -> None:
    async with bot_process(tmp_path, "http://no-such-host.invalid/bot") as bot:
        await bot.wait_for("Telegram is not reachable", count=2)
        assert bot.process.returncode is None
        code, output = await bot.finish(signal.SIGINT)
    assert code == 0
    assert_clean(output)


def _app(base_url: str, client: str, token: str = TOKEN,
         database: Path | None = None) -> BotApplication:
    settings = Settings(
        telegram=TelegramSettings(base_url=base_url, http_client=cast(HttpClient, client)),
        database=DatabaseSettings(f"sqlite+aiosqlite:///{database or ':memory:'}"))
    return build_application(settings, token)


@pytest.mark.parametrize("client", CLIENTS)
async def test_waiting_for_telegram_is_a_status_problem_until_connected(
        client: str, startup_log: StartupLog) -> None:
    with refused_port() as port:
        base_url = f"http://127.0.0.1:{port}/bot"
        app = _app(base_url, client)
        status = ProcessStatus()
        waiting = asyncio.create_task(connect(app.bot, status, base_url, TOKEN,
                                              stop=asyncio.Event(), first_delay=0.05,
                                              max_delay=0.2))
        await startup_log.wait_for("attempt 2:")
        assert status.problems == {"telegram": WAITING}
    # Telegram comes up on that port: the next attempt connects and the problem is gone.
    async with SandboxServer(SandboxOptions(port=port)):
        assert await asyncio.wait_for(waiting, WAIT) is True
        assert status.problems == {}
        assert app.bot.username == "story_bot"
        await app.bot.shutdown()


async def test_a_stop_while_waiting_ends_the_wait(startup_log: StartupLog) -> None:
    with refused_port() as port:
        base_url = f"http://127.0.0.1:{port}/bot"
        app = _app(base_url, "aiohttp")
        stop = asyncio.Event()
        waiting = asyncio.create_task(connect(app.bot, ProcessStatus(), base_url, TOKEN,
                                              stop=stop, first_delay=3600))
        await startup_log.wait_for("attempt 1:")
        stop.set()  # SIGINT/SIGTERM during an hour's pause
        assert await asyncio.wait_for(waiting, WAIT) is False


class StartupLog(logging.Handler):
    """The start-up module's log lines, with a wait for one to appear."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._grew = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._grew.set()

    async def wait_for(self, text: str) -> None:
        async def seen() -> None:
            while not any(text in line for line in self.lines):
                self._grew.clear()
                await self._grew.wait()
        await asyncio.wait_for(seen(), WAIT)


@pytest.fixture
def startup_log() -> Iterator[StartupLog]:
    handler = StartupLog()
    logger = logging.getLogger("bot.telegram.startup")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- another process polls the same token: 409 ---------------------------------------------
async def _second_poller(server: SandboxServer, stop: asyncio.Event) -> None:
    """Another instance of the bot: long-polls the same token until told to stop."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            async with session.get(f"{server.base_url}{TOKEN}/getUpdates",
                                   params={"timeout": "1"}) as response:
                await response.read()


@pytest.mark.parametrize("client", CLIENTS)
async def test_second_poller_is_one_error_line_until_polling_works_again(
        tmp_path: Path, client: str) -> None:
    async with SandboxServer() as server, \
            bot_process(tmp_path, server.base_url, client=client, level="INFO") as bot:
        first = await server.user_message("/start", user_id=71)
        assert (await server.wait_reply(first.update_id, 71, timeout=WAIT)).complete
        stop = asyncio.Event()
        other = asyncio.create_task(_second_poller(server, stop))
        [error] = await bot.wait_for(SECOND_POLLER)
        stop.set()
        await asyncio.wait_for(other, WAIT)
        again = await server.user_message("/help", user_id=71)
        assert (await server.wait_reply(again.update_id, 71, timeout=WAIT)).complete
        await bot.wait_for("polling works again")
        code, output = await bot.finish(signal.SIGINT)
    assert " ERROR " in error and "409 Conflict" in error
    assert code == 0
    assert_clean(output)


async def test_second_poller_sets_and_clears_the_polling_problem(
        tmp_path: Path, startup_log: StartupLog) -> None:
    """The status /healthz reads: `polling` while another instance polls, gone after."""
    async with SandboxServer() as server:
        app = _app(server.base_url, "aiohttp", database=tmp_path / "bot.db")
        services = app.bot_data.services
        assert services is not None
        assert await connect(app.bot, services.status, server.base_url, TOKEN,
                             stop=asyncio.Event())
        watch_polling(app, services.status)
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()
        assert app.updater is not None

        def to_error_handlers(error: Exception) -> None:  # what run_polling does
            app.create_task(app.process_error(error=error, update=None))

        await app.updater.start_polling(timeout=5, error_callback=to_error_handlers)
        try:
            stop = asyncio.Event()
            other = asyncio.create_task(_second_poller(server, stop))
            await startup_log.wait_for(SECOND_POLLER)
            assert services.status.problems == {"polling": SECOND_POLLER}
            stop.set()
            await asyncio.wait_for(other, WAIT)
            post = await server.user_message("/start", user_id=72)
            assert (await server.wait_reply(post.update_id, 72, timeout=WAIT)).complete
            await startup_log.wait_for("polling works again")
            assert services.status.problems == {}
        finally:
            await stop_bot(app)


async def test_other_errors_still_reach_the_bots_error_handler() -> None:
    """The polling handler only takes polling errors; a handler's failure is logged as before."""
    async with SandboxServer() as server:
        app = _app(server.base_url, "aiohttp")
        seen: list[object] = []

        async def record(update: object, context: object) -> None:
            seen.append(update)

        app.add_error_handler(record)
        watch_polling(app, ProcessStatus())
        await app.process_error(update=object(), error=Conflict("not from polling"))
        await app.process_error(update=None, error=Conflict("from polling"))
        assert len(seen) == 1


# -- run's other one-line endings -----------------------------------------------------------
async def test_missing_story_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-stories"
    with refused_port() as port:
        async with bot_process(tmp_path, f"http://127.0.0.1:{port}/bot", folder=missing) as bot:
            code, output = await bot.finish()
    assert code == 2
    assert output.strip().splitlines() == [f"error: story folder {missing} does not exist"]


GIVE_UP = f"""
import sys
import bot.telegram.runner as runner
from bot.cli import main

build = runner.build_application

def build_then_give_up(settings, token, **options):
    app = build(settings, token, **options)

    async def give_up(context):
        services = context.application.bot_data.services
        services.status.fail("the delivery sender gave up: database is locked ({TOKEN})")
        context.application.stop_running()

    app.job_queue.run_once(give_up, when=0.2)
    return app

runner.build_application = build_then_give_up
sys.exit(main(sys.argv[1:]))
"""


async def test_a_part_that_gives_up_ends_run_with_its_reason_and_exit_1(tmp_path: Path) -> None:
    async with SandboxServer() as server, \
            bot_process(tmp_path, server.base_url, level="WARNING", script=GIVE_UP) as bot:
        code, output = await bot.finish()
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        "error: the delivery sender gave up: database is locked (<redacted-token>)")
    assert_clean(output)
