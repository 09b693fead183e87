"""Webhook mode end to end: the sandbox posts updates to python-telegram-bot's own webhook
server, as Telegram posts to a reverse proxy in front of it.

In-process: the reader flows, and a post without the right secret (403, never processed).
Real `run_bot.py run` processes: webhook mode as an operator starts it (the secret never
logged), every bad input as one line and exit 2 with nothing sent, and two processes behind
a round-robin proxy on one PostgreSQL database answering each reader exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from telegram import Update

from bot.config import WebhookSettings
from bot.sandbox.server import SECRET_HEADER, SandboxServer
from bot.sandbox.state import StoredMessage
from bot.telegram.app import build_application, stop_bot
from bot.telegram.context import BotApplication
from bot.telegram.startup import WEBHOOK_MAX_CONNECTIONS, listening_socket
from tests.database_fixtures import PG_ENV
from tests.e2e.conftest import TOKEN, USER, Chat, e2e_settings, replied

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e_Webhook-secret_0123456789abcdef"
PATH = "/telegram"
WAIT = 60.0  # seconds a process may take to start, answer or stop on a busy machine


# -- the bot in webhook mode, in this process -------------------------------------------------
async def webhook_handled(server: SandboxServer, app: BotApplication, update_id: int) -> None:
    """The barrier before looking at what the bot did about an update: its webhook took
    ``update_id`` (answered the post with 2xx, after queueing it) and every handler has
    finished, replies included."""
    record = server.state.updates[update_id]
    async with asyncio.timeout(30):
        while record.fetched_at is None:
            await server.state.wait_change(1.0)
        await app.update_queue.join()  # PTB marks an update done once its handlers return


class WebhookChat(Chat):
    """``Chat`` whose updates arrive by webhook: the same talk, the webhook's barrier."""

    url: str = ""

    async def say(self, text: str, *, user_id: int = USER, chat_id: int | None = None,
                  expect_reply: bool = True, **kwargs: Any) -> list[StoredMessage]:
        target = chat_id if chat_id is not None else user_id
        before = len(self.server.bot_messages(target, include_deleted=True))
        post = await self.server.user_message(text, user_id=user_id, chat_id=chat_id, **kwargs)
        await webhook_handled(self.server, self.app, post.update_id)
        if expect_reply:
            assert replied(self.server, post.update_id, target), f"no reply to {text[:40]!r}"
        return self.server.bot_messages(target, include_deleted=True)[before:]

    async def press(self, chat_id: int = USER, **kwargs: Any) -> dict[str, Any] | None:
        press = await self.server.press_button(chat_id, **kwargs)
        await webhook_handled(self.server, self.app, press.update_id)
        return self.server.callback_answer(press.query_id)


@asynccontextmanager
async def webhook_bot(server: SandboxServer, story_folder: Path,
                      tmp_path: Path) -> AsyncIterator[WebhookChat]:
    """The real bot receiving updates by webhook, as ``run_webhook`` starts it: the socket
    bound first (a free port here), initialise, ``post_init``, the webhook set and served
    with the secret, then the application started."""
    sock = listening_socket(WebhookSettings(url="", path=PATH, port=0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{PATH}"
    settings = e2e_settings(story_folder, server.base_url, tmp_path)
    settings = replace(settings, telegram=replace(
        settings.telegram, webhook=WebhookSettings(url=url, path=PATH)))
    app = build_application(settings, TOKEN)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        assert app.updater is not None
        await app.updater.start_webhook(unix=sock, url_path=PATH, webhook_url=url,
                                        secret_token=SECRET, allowed_updates=Update.ALL_TYPES,
                                        max_connections=WEBHOOK_MAX_CONNECTIONS)
        await app.start()
        chat = WebhookChat(server, app, story_folder)
        chat.url = url
        yield chat
    finally:
        await stop_bot(app)
        sock.close()


@pytest.fixture
async def hooked(story_folder: Path, tmp_path: Path) -> AsyncIterator[WebhookChat]:
    async with SandboxServer() as server, webhook_bot(server, story_folder, tmp_path) as chat:
        yield chat


async def test_the_webhook_is_set_with_the_secret_and_polling_is_refused(
        hooked: WebhookChat) -> None:
    hook = hooked.server.state.webhook
    assert hook is not None and (hook.url, hook.secret_token) == (hooked.url, SECRET)
    assert not hooked.server.calls("getUpdates")


async def test_start_and_a_deep_link_by_webhook(hooked: WebhookChat) -> None:
    [welcome] = await hooked.say("/start")
    assert "latest" in welcome.text and "/help" in welcome.text
    replies = await hooked.say("/start story_5f0c2a9e41d7b3c8")
    assert replies[0].text.startswith("Central bank of Arlenia holds rates")


async def test_latest_and_its_buttons_by_webhook(hooked: WebhookChat) -> None:
    [page] = await hooked.say("/latest 3")
    assert "1. Night trains return" in page.text and "1–3 of 15" in page.text
    await hooked.press(text="Older ›")
    edited = hooked.server.bot_messages(USER)[-1]
    assert edited.message_id == page.message_id
    assert "4–6 of 15" in edited.text
    before = len(hooked.server.bot_messages(USER))
    await hooked.press(text="‹ Newer")
    await hooked.press(text="📖 2")
    opened = hooked.server.bot_messages(USER)[before:]
    assert opened[0].text.startswith("Central bank of Arlenia")


async def test_story_by_webhook(hooked: WebhookChat) -> None:
    replies = await hooked.say("/story 2")
    assert replies[0].text.startswith("Central bank of Arlenia holds rates")
    [unknown] = await hooked.say("/story 99")
    assert "99" in unknown.text


def forged_update(update_id: int, chat_id: int) -> dict[str, Any]:
    """A /start from ``chat_id``, as anyone who found the webhook URL could post it."""
    return {"update_id": update_id, "message": {
        "message_id": 1, "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "private", "first_name": "Eve"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Eve"},
        "text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}


async def test_a_post_without_the_right_secret_is_refused_and_never_processed(
        hooked: WebhookChat) -> None:
    server = hooked.server
    forger, control = 555_001, 555_002
    server.add_chat(forger, "private")
    server.add_chat(control, "private")
    async with aiohttp.ClientSession() as http:
        async def post(update: dict[str, Any], headers: dict[str, str]) -> int:
            async with http.post(hooked.url, data=json.dumps(update).encode(),
                                 headers={"Content-Type": "application/json", **headers}) as r:
                return r.status

        assert await post(forged_update(900_001, forger), {}) == 403
        assert await post(forged_update(900_002, forger), {SECRET_HEADER: "guess"}) == 403
        assert await post(forged_update(900_003, forger),
                          {SECRET_HEADER: SECRET.upper()}) == 403
        # The control: the same post with the secret is processed, so the test can see it.
        assert await post(forged_update(900_004, control), {SECRET_HEADER: SECRET}) == 200
    await hooked.app.update_queue.join()  # the barrier: every accepted update handled
    assert "latest" in server.bot_messages(control)[0].text  # the control was answered
    assert not [c for c in server.calls() if c.chat_id == forger]  # the others never were


# -- `run_bot.py run` in webhook mode ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(path: Path, base_url: str, database_url: str, *, url: str,
                 port: int, level: str = "INFO", extra: str = "") -> Path:
    path.write_text(f"telegram:\n  base_url: {base_url}\n"
                    f"  webhook:\n    url: {url}\n    port: {port}\n"
                    f"database:\n  url: {database_url}\n"
                    f"log_level: {level}\n{extra}")
    return path


async def start_run(config: Path, *args: str, secret: str | None = SECRET,
                    stderr: Any = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
    env.pop("TELEGRAM_WEBHOOK_SECRET", None)
    if secret is not None:
        env["TELEGRAM_WEBHOOK_SECRET"] = secret
    return await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "--config", str(config), "run", *args, cwd=ROOT,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr)


async def finish(process: asyncio.subprocess.Process, sig: int | None = None) -> str:
    if sig is not None:
        process.send_signal(sig)
    try:
        out, err = await asyncio.wait_for(process.communicate(), WAIT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode() + (err or b"").decode()


async def test_run_in_webhook_mode_answers_and_never_logs_the_token_or_the_secret(
        tmp_path: Path) -> None:
    async with SandboxServer() as server:
        port = free_port()
        url = f"http://127.0.0.1:{port}{PATH}"
        config = write_config(tmp_path / "bot.yaml", server.base_url,
                              f"sqlite+aiosqlite:///{tmp_path / 'run.db'}", url=url,
                              port=port, level="DEBUG")
        process = await start_run(config)
        try:
            post = await server.user_message("/start", user_id=77)
            trip = await server.wait_reply(post.update_id, 77, timeout=WAIT)
            assert trip.complete
            assert "Story briefings" in server.bot_messages(77)[0].text
            async with aiohttp.ClientSession() as http, http.post(
                    url, data=json.dumps(forged_update(900_001, 78)).encode(),
                    headers={"Content-Type": "application/json"}) as forged:
                assert forged.status == 403  # python-telegram-bot checks the secret
        finally:
            output = await finish(process, signal.SIGTERM)
        assert process.returncode == 0, output
        hook = server.state.webhook
        assert hook is not None and (hook.url, hook.secret_token) == (url, SECRET)
        assert hook.max_connections == WEBHOOK_MAX_CONNECTIONS  # set twice, the same way
        assert [c.status for c in server.calls("setWebhook")] == [200, 200]
        assert not server.calls("getUpdates")
        assert f"updates=webhook {url}" in output
        assert "setWebhook" in output  # DEBUG logging of requests really happened…
        assert SECRET not in output  # …without the secret
        assert TOKEN not in output and TOKEN.split(":")[1] not in output
        # The one traceback is python-telegram-bot's DEBUG record of the refused post.
        assert output.count("Traceback") == output.count("Exception in TelegramHandler") == 1
        assert " ERROR " not in output and " CRITICAL " not in output


@pytest.mark.parametrize(
    ("url", "secret", "line"),
    [
        ("http://bot.example.org/telegram", SECRET,
         "error: telegram.webhook.url: must be an https:// URL: Telegram posts updates only "
         "over HTTPS (plain http only for a loopback host, in tests); got "
         "'http://bot.example.org/telegram'"),
        ("https://bot.example.org:8080/telegram", SECRET,
         "error: telegram.webhook.url: port 8080 is one Telegram does not post to; use 443, "
         "80, 88 or 8443 there (the reverse proxy forwards to telegram.webhook.port)"),
        ("https://bot.example.org/telegram", "not;allowed",
         "error: TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters of A-Z, a-z, 0-9, _ "
         "and - (Telegram's rule), but the one set has 11 characters; make one with: python "
         "-c 'import secrets; print(secrets.token_urlsafe(32))'"),
        ("https://bot.example.org/telegram", "x" * 257,
         "error: TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters of A-Z, a-z, 0-9, _ "
         "and - (Telegram's rule), but the one set has 257 characters; make one with: python "
         "-c 'import secrets; print(secrets.token_urlsafe(32))'"),
        ("https://bot.example.org/telegram", None,
         "error: TELEGRAM_WEBHOOK_SECRET: not set; webhook mode (telegram.webhook.url) needs "
         "it so that only Telegram can post updates; make one with: python -c 'import "
         "secrets; print(secrets.token_urlsafe(32))'"),
    ],
    ids=["not-https", "port-telegram-refuses", "secret-characters", "secret-too-long",
         "no-secret"],
)
async def test_bad_webhook_input_is_one_line_exit_2_and_nothing_sent(
        tmp_path: Path, url: str, secret: str | None, line: str) -> None:
    async with SandboxServer() as server:
        config = write_config(tmp_path / "bot.yaml", server.base_url,
                              f"sqlite+aiosqlite:///{tmp_path / 'run.db'}", url=url,
                              port=free_port())
        process = await start_run(config, secret=secret)
        output = await finish(process)
        assert process.returncode == 2
        assert output.strip().splitlines() == [line]
        assert server.calls() == []  # nothing sent
        assert not (tmp_path / "run.db").exists()  # nothing started
        if secret is not None:
            assert secret not in output


async def test_a_port_in_use_is_one_line_exit_2_and_nothing_sent(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = int(taken.getsockname()[1])
        async with SandboxServer() as server:
            config = write_config(tmp_path / "bot.yaml", server.base_url,
                                  f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
                                  url=f"http://127.0.0.1:{port}{PATH}", port=port)
            process = await start_run(config)
            output = await finish(process)
            assert process.returncode == 2
            [line] = output.strip().splitlines()
            assert line.startswith(f"error: cannot listen on 127.0.0.1:{port} for the webhook "
                                   "(telegram.webhook.listen and .port): ")
            assert line.endswith("; stop what uses it or choose another port")
            assert server.calls() == []


async def test_a_webhook_telegram_refuses_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A URL that passes the settings' checks but not Telegram's (here the sandbox's: it
    posts only to this machine) ends the start at once instead of being retried forever."""
    async with SandboxServer() as server:
        config = write_config(tmp_path / "bot.yaml", server.base_url,
                              f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
                              url=f"https://bot.example.org{PATH}", port=free_port())
        process = await start_run(config)
        output = await finish(process)
        assert process.returncode == 2, output
        assert output.strip().splitlines()[-1] == (
            "error: Telegram refused the webhook at telegram.webhook.url "
            "https://bot.example.org/telegram (Bad webhook: the sandbox posts updates only to "
            "this machine (127.0.0.1, ::1 or localhost)); it must be a public HTTPS URL on "
            "port 443, 80, 88 or 8443 that reaches this bot")
        assert [c.method for c in server.calls()] == ["getMe", "setWebhook"]
        assert server.state.webhook is None
        assert SECRET not in output and "Traceback" not in output


GIVE_UP = f"""
import sys
import bot.telegram.runner as runner
from bot.cli import main

build = runner.build_application

def build_then_give_up(settings, token, **kwargs):
    app = build(settings, token, **kwargs)

    async def give_up(context):
        services = context.application.bot_data.services
        services.status.fail("the delivery sender gave up: database is locked ({SECRET})")

    app.job_queue.run_once(give_up, when=0.5)
    return app

runner.build_application = build_then_give_up
sys.exit(main(sys.argv[1:]))
"""


async def test_a_part_that_gives_up_ends_webhook_mode_with_exit_1(tmp_path: Path) -> None:
    async with SandboxServer() as server:
        port = free_port()
        config = write_config(tmp_path / "bot.yaml", server.base_url,
                              f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
                              url=f"http://127.0.0.1:{port}{PATH}", port=port,
                              level="WARNING")
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", GIVE_UP, "--config", str(config), "run", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        output = await finish(process)
    assert process.returncode == 1, output
    assert output.strip().splitlines()[-1] == (
        "error: the delivery sender gave up: database is locked (<redacted-webhook-secret>)")


# -- two processes behind one load balancer --------------------------------------------------
class RoundRobin:
    """A load balancer in a few lines: each post goes to the next backend in turn, with
    its body and the headers Telegram sends; what each backend took is remembered."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.taken: list[list[int]] = [[] for _ in backends]  # update ids per backend
        self._turn = 0
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> RoundRobin:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post(PATH, self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}{PATH}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._http is not None
        await self._runner.cleanup()
        await self._http.close()

    async def forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        index = self._turn % len(self.backends)
        self._turn += 1
        body = await request.read()
        headers = {k: v for k in ("Content-Type", SECRET_HEADER)
                   if (v := request.headers.get(k)) is not None}
        try:
            async with self._http.post(self.backends[index], data=body,
                                       headers=headers) as answer:
                status = answer.status
        except aiohttp.ClientError:
            return web.Response(status=502)
        if 200 <= status < 300:
            self.taken[index].append(json.loads(body)["update_id"])
        return web.Response(status=status)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A throw-away PostgreSQL database, with the bot's schema (processes share it by URL)."""
    from bot.storage import Database

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set")
    name = f"webhook_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        await (await Database.open(url)).close()  # the schema, before two processes start
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def healthy(port: int, process: asyncio.subprocess.Process) -> None:
    """Wait until the process answers 200 on its /healthz."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(WAIT):
        while True:
            assert process.returncode is None, "the bot process ended while starting"
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)  # polling a process that gives no other signal


async def test_two_processes_behind_a_load_balancer_answer_each_reader_once(
        tmp_path: Path, postgres_url: str) -> None:
    readers = list(range(700_001, 700_021))
    ports = [free_port(), free_port()]
    async with SandboxServer() as server:
        backends = [f"http://127.0.0.1:{port}{PATH}" for port in ports]
        async with RoundRobin(backends) as balancer:
            processes: list[asyncio.subprocess.Process] = []
            monitors = [free_port(), free_port()]
            files = ExitStack()
            try:
                for index, port in enumerate(ports):
                    config = write_config(
                        tmp_path / f"bot{index}.yaml", server.base_url, postgres_url,
                        url=balancer.url, port=port,
                        extra=f"monitoring:\n  port: {monitors[index]}\n")
                    processes.append(await start_run(
                        config, "--role", "updates",
                        stderr=files.enter_context((tmp_path / f"bot{index}.log").open("wb"))))
                for process, monitor in zip(processes, monitors, strict=True):
                    await healthy(monitor, process)
                posts = await asyncio.gather(*(server.user_message("/latest 3", user_id=r)
                                               for r in readers))
                async with asyncio.timeout(WAIT):  # every reader answered
                    while not all(server.bot_messages(r) for r in readers):
                        await server.state.wait_change(1.0)
            finally:
                # The barrier: a process stopped by SIGTERM finishes what it took first.
                for process in processes:
                    await finish(process, signal.SIGTERM)
                files.close()
        logs = [(tmp_path / f"bot{i}.log").read_text() for i in range(len(processes))]
        assert [p.returncode for p in processes] == [0, 0], logs
        ids = sorted(p.update_id for p in posts)
        first, second = (set(taken) for taken in balancer.taken)
        assert first and second and not first & second  # both worked, on disjoint updates
        assert sorted(balancer.taken[0] + balancer.taken[1]) == ids  # each exactly once
        assert [len(server.bot_messages(r)) for r in readers] == [1] * len(readers)
        assert all("1–3 of 15" in server.bot_messages(r)[0].text for r in readers)
        accepted = [a.update_id for a in server.state.webhook_attempts if a.accepted]
        assert sorted(accepted) == ids
        for log in logs:
            assert "Traceback" not in log and SECRET not in log
