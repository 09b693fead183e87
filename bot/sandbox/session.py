"""``sandbox``: the local Bot API server, the real bot pointed at it, and a terminal chat.

The bot is built exactly as ``run`` builds it; only the Bot API root (the sandbox's
``base_url``), a fixed sandbox token, a throwaway database and a few settings that make a
demo lively differ: the chat's user is an admin (so ``/broadcast`` works at once), due
briefings are looked for every :data:`SCAN_SECONDS` (so ``--now`` a few seconds before a
subscription's time shows its briefing) and broadcast progress is shown every second.
The bot's log goes to a file, so the terminal shows only the conversation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telegram import Update
from telegram.ext import TypeHandler

from bot.config import Settings
from bot.errors import UsageError
from bot.sandbox.chat import DEMO_NAME, DEMO_USERNAME, lines_from_file, run_chat, stdin_lines
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import DEMO_USER_ID
from bot.telegram.app import build_application, start_bot, stop_bot
from bot.telegram.context import BotApplication
from bot.telegram.redaction import install_token_redaction

__all__ = ["SANDBOX_TOKEN", "SCAN_SECONDS", "default_log_file", "run_sandbox_session",
           "sandbox_settings"]

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


def _pretend(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at ``start`` and then runs at the real pace."""
    began = time.monotonic()
    start_utc = start.astimezone(UTC)
    return lambda: start_utc + timedelta(seconds=time.monotonic() - began)


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
        stories = (f"{len(library.stories)} stories from {library.folder}"
                   + (f" ({rejected} rejected: see the log)" if rejected else "") + ". ")
    return (
        f"sandbox: Bot API server at {server.base_url} (user API under {server.url}/sandbox)"
        f"{checks}\n"
        f"sandbox: {stories}You are {DEMO_NAME} (user {DEMO_USER_ID}), an admin of this "
        f"bot, so /broadcast works too. The bot's log goes to {log_file}. Type /help; "
        ":help lists the : commands, :quit leaves."
    )


async def _session(
    settings: Settings, port: int, script: Path | None, now: datetime | None, log_file: Path
) -> None:
    typing = script is None and sys.stdin is not None and sys.stdin.isatty()
    lines = lines_from_file(script) if script else stdin_lines()
    with tempfile.TemporaryDirectory(prefix="story-bot-sandbox-") as scratch:
        async with SandboxServer(SandboxOptions(port=port, now=now)) as server:
            # The chat exists before the bot starts, so it gets its admin command menu.
            server.add_user(DEMO_USER_ID, DEMO_NAME, DEMO_USERNAME)
            server.add_chat(DEMO_USER_ID, "private")
            app = build_application(
                sandbox_settings(settings, server.base_url, Path(scratch)), SANDBOX_TOKEN,
                clock=_pretend(now) if now else None,
            )
            handled = HandledUpdates(app)
            await start_bot(app, poll_timeout=1)
            print(_welcome(server, app, log_file), file=sys.stderr, flush=True)
            try:
                await run_chat(
                    server, lines, sys.stdout, echo=not typing, prompt=typing,
                    ansi=typing and sys.stdout.isatty(), handled=handled,
                )
            finally:
                await stop_bot(app)


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
    log_file: Path | None = None,
) -> int:
    if script is not None and not script.is_file():
        raise UsageError(f"--script: {script} is not a readable file")
    moment = _parse_now(now)
    log_path = (log_file or default_log_file()).resolve()
    _log_to_file(log_path, settings.log_level)
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB's future RetryAfter, no warning
    asyncio.run(_session(settings, port, script, moment, log_path))
    return 0
