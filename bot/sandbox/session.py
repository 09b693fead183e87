"""``sandbox``: the local Bot API server, the real bot pointed at it, and a terminal chat
(plus, with ``--web``, the web chat on the same port).

The bot is built exactly as ``run`` builds it; only the Bot API root (the sandbox's
``base_url``), a fixed sandbox token, a throwaway database and a few settings that make a
demo lively differ: the chat's user is an admin (so ``/broadcast`` works at once), due
briefings are looked for every :data:`SCAN_SECONDS` (so ``--now`` a few seconds before a
subscription's time shows its briefing) and broadcast progress is shown every second.
The bot's log goes to a file, so the terminal shows only the conversation. The sandbox
starts with the world of :mod:`bot.sandbox.world`; the bot and the sandbox share one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import TypeHandler

from bot.config import Settings
from bot.errors import UsageError
from bot.sandbox.chat import DEMO_NAME, lines_from_file, run_chat, stdin_lines
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import DEMO_USER_ID
from bot.sandbox.web import WebChat
from bot.sandbox.world import PEOPLE, populate_world
from bot.storage.subscriptions import Destination
from bot.telegram.app import build_application, start_bot, stop_bot
from bot.telegram.context import BotApplication, BotServices
from bot.telegram.redaction import install_token_redaction

__all__ = ["SANDBOX_TOKEN", "SCAN_SECONDS", "BotBriefingClock", "RunningSandbox",
           "default_log_file", "run_sandbox_session", "running_sandbox", "sandbox_settings"]

SANDBOX_TOKEN = "7000000001:sandbox-not-a-real-token"
#: How often the sandbox's bot looks for due briefings (the config allows 1 and up).
SCAN_SECONDS = 2.0
#: How often a broadcast's status message may change in the sandbox.
PROGRESS_SECONDS = 1.0
_FIRST_GROUP = -(10**6)  # before every handler group the bot has


def default_log_file() -> Path:
    """Where the bot's log goes without ``--log``: one file in the temporary folder,
    rewritten by each session, so it never fills the project folder."""
    return Path(tempfile.gettempdir()) / "story-bot-sandbox.log"


def sandbox_settings(settings: Settings, base_url: str, database_folder: Path) -> Settings:
    """The configured settings, pointed at the sandbox and a throwaway SQLite file, with
    ``/healthz`` and ``/metrics`` on (a free port unless one is configured), the demo user
    an admin, and briefings and broadcast progress on a demo's pace."""
    port = settings.monitoring.port if settings.monitoring.port is not None else 0
    return replace(
        settings,
        telegram=replace(settings.telegram, base_url=base_url,
                         admin_ids=settings.telegram.admin_ids | {DEMO_USER_ID}),
        database=replace(
            settings.database, url=f"sqlite+aiosqlite:///{database_folder / 'sandbox.sqlite3'}"
        ),
        delivery=replace(settings.delivery, scan_seconds=SCAN_SECONDS,
                         progress_interval_seconds=PROGRESS_SECONDS),
        monitoring=replace(settings.monitoring, port=port),
    )


def _parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            f"--now: expected an ISO time like 2025-03-31T08:00+00:00, got {text!r}"
        ) from exc
    if moment.tzinfo is None:
        raise UsageError("--now: give a time zone offset, e.g. 2025-03-31T08:00+00:00")
    return moment


class HandledUpdates:
    """Which updates the bot has finished with: the chat waits for exactly that before
    its next line, rather than guessing from a quiet moment (the bot's rate limiter may
    hold a reply's next part for a second). An update counts once a first-of-all handler
    has seen it and the bot handles no update and has none queued."""

    def __init__(self, app: BotApplication) -> None:
        self._app = app
        self._seen: set[int] = set()
        app.add_handler(TypeHandler(Update, self._note), group=_FIRST_GROUP)

    async def _note(self, update: Update, context: object) -> None:
        self._seen.add(update.update_id)

    def __call__(self, update_id: int) -> bool:
        app = self._app
        return (update_id in self._seen and app.update_queue.empty()
                and app.update_processor.current_concurrent_updates == 0)


def _welcome(server: SandboxServer, app: BotApplication, log_file: Path) -> str:
    services = app.bot_data.services
    monitor = services.monitor if services is not None else None
    checks = (f"; health at http://{monitor.host}:{monitor.port}/healthz, metrics at "
              f"/metrics" if monitor is not None else "")
    stories = ""
    if services is not None:
        library = services.library
        rejected = len(library.rejections)
        stories = (f"{library.count()} stories from {library.folder}"
                   + (f" ({rejected} rejected: see the log)" if rejected else "") + ". ")
    return (
        f"sandbox: Bot API server at {server.base_url} (user API under {server.url}/sandbox)"
        f"{checks}\n"
        f"sandbox: {stories}You are {DEMO_NAME} (user {DEMO_USER_ID}), an admin of this "
        f"bot, so /broadcast works too. The bot's log goes to {log_file}. Type /help; "
        ":help lists the : commands, :quit leaves."
    )


class BotBriefingClock:
    """The web chat's clock control, connected to the bot: when a destination's next
    briefing is due, and a due scan right after the shared clock jumped (through the
    delivery engine's public scan, as its periodic job runs it)."""

    def __init__(self, app: BotApplication) -> None:
        self._app = app

    def _services(self) -> BotServices:
        services = self._app.bot_data.services
        if services is None:  # pragma: no cover - wiring error
            raise RuntimeError("the bot is not started")
        return services

    async def next_briefing(self, chat_id: int, thread_id: int | None) -> datetime | None:
        subscription = await self._services().subscriptions.get(
            Destination(chat_id, thread_id or 0))
        if subscription is None or not subscription.active:
            return None
        return subscription.next_due_at

    async def clock_moved(self) -> None:
        services = self._services()
        engine = services.engine
        if engine is None:
            return
        scan = engine.scan
        retry = services.db_retry
        if retry is not None:
            await retry.run(lambda: scan.run(services.clock()))
        else:
            await scan.run(services.clock())


@dataclass
class RunningSandbox:
    """The sandbox server with its starting world and the real bot polling it."""

    server: SandboxServer
    app: BotApplication
    handled: HandledUpdates


@asynccontextmanager
async def running_sandbox(settings: Settings, scratch: Path, *, port: int = 0,
                          now: datetime | None = None,
                          web: bool = False) -> AsyncIterator[RunningSandbox]:
    """The sandbox (127.0.0.1, ``port``) with the world of :mod:`bot.sandbox.world`, the
    web chat if ``web``, and the bot built as ``run`` builds it, pointed at it. One clock
    for both: real time, or ``now`` running on from there; the web chat's clock control
    moves it for both at once."""
    server = SandboxServer(SandboxOptions(port=port))
    if now is not None:
        server.state.clock.run_from(now)
    roles = {person.id: person.role for person in PEOPLE}
    web_chat = WebChat(server, roles) if web else None
    server.web_chat = web_chat
    async with server:
        # The chats exist before the bot starts, so the admin gets their command menu.
        populate_world(server)
        app = build_application(
            sandbox_settings(settings, server.base_url, scratch), SANDBOX_TOKEN,
            clock=server.state.clock.now,
        )
        handled = HandledUpdates(app)
        await start_bot(app, poll_timeout=1)
        try:
            if web_chat is not None:
                web_chat.bot_clock = BotBriefingClock(app)
            yield RunningSandbox(server, app, handled)
        finally:
            await stop_bot(app)


async def _forever() -> AsyncIterator[str]:
    """No more lines, ever: with ``--web`` the chat goes on after standard input ends."""
    await asyncio.Event().wait()
    yield ""  # pragma: no cover - never reached


async def _then_forever(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async for line in lines:
        yield line
    async for line in _forever():
        yield line  # pragma: no cover - never reached


async def _session(
    settings: Settings, port: int, script: Path | None, now: datetime | None, log_file: Path,
    *, web: bool = False,
) -> None:
    typing = script is None and sys.stdin is not None and sys.stdin.isatty()
    lines: AsyncIterator[str] | Iterable[str] = (
        lines_from_file(script) if script else stdin_lines())
    if web:  # the page is the way in: the terminal shows the chat until interrupted
        lines = _then_forever(lines if isinstance(lines, AsyncIterator)
                              else _async_iter(lines))
    with tempfile.TemporaryDirectory(prefix="story-bot-sandbox-") as scratch:
        async with running_sandbox(settings, Path(scratch), port=port, now=now,
                                   web=web) as sandbox:
            server, app = sandbox.server, sandbox.app
            print(_welcome(server, app, log_file), file=sys.stderr, flush=True)
            if web:
                print(f"sandbox: web chat at {server.web_url} (Ctrl-C stops)",
                      file=sys.stderr, flush=True)
            await _until_interrupted(run_chat(
                server, lines, sys.stdout, echo=not typing, prompt=typing,
                ansi=typing and sys.stdout.isatty(), handled=sandbox.handled,
                echo_others=web,
            ))


async def _async_iter(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _until_interrupted(chat: Coroutine[Any, Any, None]) -> None:
    """Run the chat until it ends, SIGINT or SIGTERM (then the bot stops cleanly)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(chat)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _log_to_file(path: Path, level: str) -> None:
    """Every log record (warnings included) to ``path``, token redacted, nothing on the
    terminal: the terminal is the conversation."""
    try:
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--log: cannot write {path} ({error.strerror}); "
                         "choose another file") from error
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("httpx").setLevel(quiet)  # every request URL at INFO otherwise
    logging.getLogger("apscheduler").setLevel(quiet)  # a line per job run otherwise
    logging.captureWarnings(True)
    install_token_redaction(SANDBOX_TOKEN)


def run_sandbox_session(
    settings: Settings, *, port: int, script: Path | None, now: str | None,
    log_file: Path | None = None, web: bool = False,
) -> int:
    if script is not None and not script.is_file():
        raise UsageError(f"--script: {script} is not a readable file")
    moment = _parse_now(now)
    log_path = (log_file or default_log_file()).resolve()
    _log_to_file(log_path, settings.log_level)
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB's future RetryAfter, no warning
    asyncio.run(_session(settings, port, script, moment, log_path, web=web))
    return 0
