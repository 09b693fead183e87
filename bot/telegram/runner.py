"""``run``: long polling against the configured Bot API root."""

from __future__ import annotations

import logging
import os
import sys

from telegram import Update

from bot.config import TOKEN_ENV, Settings, read_token
from bot.telegram.app import build_application
from bot.telegram.redaction import install_token_redaction

__all__ = ["configure_logging", "run_polling"]

log = logging.getLogger(__name__)

MISSING_TOKEN = (
    f"error: {TOKEN_ENV} is not set. Create a bot with @BotFather and run\n"
    f"  export {TOKEN_ENV}='123456:ABC...'\n"
    "or try the bot without Telegram in the local sandbox:\n"
    "  python run_bot.py sandbox"
)


def configure_logging(level: str, token: str) -> None:
    """One line per event on stderr, with the token redacted from every record."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL (which holds the token) at INFO: keep it for DEBUG runs.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("httpx").setLevel(quiet)
    logging.getLogger("apscheduler").setLevel(quiet)  # a line per job run otherwise
    install_token_redaction(token)


def describe(settings: Settings) -> str:
    config = str(settings.source) if settings.source else "embedded defaults"
    return (f"config={config} stories={settings.stories.folder} "
            f"database={settings.database.url} bot_api={settings.telegram.base_url}")


def run_polling(settings: Settings) -> int:
    token = read_token()
    if token is None:
        print(MISSING_TOKEN, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, token)
    # Opt in to python-telegram-bot's future RetryAfter (a timedelta) to avoid its warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    log.info("starting %s", describe(settings))
    app = build_application(settings, token)
    app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
