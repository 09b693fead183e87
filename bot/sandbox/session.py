"""``sandbox``: the local Bot API server, the real bot pointed at it, and a terminal chat.

The bot is built exactly as ``run`` builds it; only the Bot API root (the sandbox's
``base_url``), a fixed sandbox token and a throwaway database differ.
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

from bot.config import Settings
from bot.errors import UsageError
from bot.sandbox.chat import lines_from_file, run_chat, stdin_lines
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import SandboxServer
from bot.telegram.app import build_application, start_bot, stop_bot
from bot.telegram.runner import configure_logging

__all__ = ["SANDBOX_TOKEN", "run_sandbox_session", "sandbox_settings"]

SANDBOX_TOKEN = "7000000001:sandbox-not-a-real-token"


def sandbox_settings(settings: Settings, base_url: str, database_folder: Path) -> Settings:
    """The configured settings, pointed at the sandbox and a throwaway SQLite file, with
    ``/healthz`` and ``/metrics`` on (a free port unless one is configured)."""
    port = settings.monitoring.port if settings.monitoring.port is not None else 0
    return replace(
        settings,
        telegram=replace(settings.telegram, base_url=base_url),
        database=replace(
            settings.database, url=f"sqlite+aiosqlite:///{database_folder / 'sandbox.sqlite3'}"
        ),
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


async def _session(
    settings: Settings, port: int, script: Path | None, now: datetime | None
) -> None:
    lines = lines_from_file(script) if script else stdin_lines()
    with tempfile.TemporaryDirectory(prefix="story-bot-sandbox-") as scratch:
        async with SandboxServer(SandboxOptions(port=port, now=now)) as server:
            print(
                f"sandbox: Bot API server at {server.base_url} "
                f"(user API under {server.url}/sandbox); type /help, :quit to leave",
                file=sys.stderr,
            )
            app = build_application(
                sandbox_settings(settings, server.base_url, Path(scratch)), SANDBOX_TOKEN,
                clock=_pretend(now) if now else None,
            )
            await start_bot(app, poll_timeout=1)
            services = app.bot_data.services
            if services is not None and services.monitor is not None:
                monitor = services.monitor
                print(f"sandbox: health at http://{monitor.host}:{monitor.port}/healthz, "
                      "metrics at /metrics", file=sys.stderr)
            try:
                await run_chat(
                    server, lines, sys.stdout, echo=script is not None,
                    ansi=script is None and sys.stdout.isatty(),
                )
            finally:
                await stop_bot(app)


def run_sandbox_session(
    settings: Settings, *, port: int, script: Path | None, now: str | None
) -> int:
    if script is not None and not script.is_file():
        raise UsageError(f"--script: {script} is not a readable file")
    configure_logging("WARNING" if settings.log_level != "DEBUG" else "DEBUG", SANDBOX_TOKEN)
    logging.getLogger("bot").setLevel(logging.WARNING)
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB's future RetryAfter, no warning
    asyncio.run(_session(settings, port, script, _parse_now(now)))
    return 0
