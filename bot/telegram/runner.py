"""``run``: long polling, or webhook mode when ``telegram.webhook.url`` is set.

Before python-telegram-bot's own ``run_polling`` or ``run_webhook`` takes the event loop,
:func:`connect` reaches the Bot API (waiting for it as long as it takes, stopping on
SIGINT/SIGTERM), so a bad token or address is one line and exit 2; in webhook mode the
secret (``TELEGRAM_WEBHOOK_SECRET``) and the port to listen on are checked before anything
is sent, and the webhook is set the same patient way. A ``delivery`` process receives no
updates (neither polls nor listens). After the application stops, a fatal reason a part of
the bot gave (``services.status.fail``) is one line and exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from telegram import Update

from bot.config import TOKEN_ENV, Settings, WebhookSettings, read_token, read_webhook_secret
from bot.status import ProcessStatus
from bot.telegram.app import Role, build_application
from bot.telegram.context import BotApplication
from bot.telegram.redaction import TokenRedactingFilter, install_token_redaction
from bot.telegram.startup import (
    WEBHOOK_MAX_CONNECTIONS,
    connect,
    listening_socket,
    set_webhook,
    watch_polling,
)

__all__ = ["configure_logging", "run", "run_polling"]

log = logging.getLogger(__name__)

MISSING_TOKEN = (
    f"error: {TOKEN_ENV} is not set. Create a bot with @BotFather and run\n"
    f"  export {TOKEN_ENV}='123456:ABC...'\n"
    "or try the bot without Telegram in the local sandbox:\n"
    "  python run_bot.py sandbox"
)


def configure_logging(level: str, token: str, webhook_secret: str | None = None) -> None:
    """One line per event on stderr, with the token (and the webhook secret) redacted from
    every record."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL (which holds the token) at INFO: keep it for DEBUG runs.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("httpx").setLevel(quiet)
    logging.getLogger("apscheduler").setLevel(quiet)  # a line per job run otherwise
    install_token_redaction(token, webhook_secret=webhook_secret)


def describe(settings: Settings, role: Role = "all") -> str:
    config = str(settings.source) if settings.source else "embedded defaults"
    webhook = _webhook_of(settings, role)
    updates = "none" if role == "delivery" else "polling" if webhook is None else \
        f"webhook {webhook.url} -> {webhook.listen}:{webhook.port}{webhook.path}"
    return (f"config={config} stories={settings.stories.folder} "
            f"database={settings.database.url} bot_api={settings.telegram.base_url} "
            f"updates={updates}")


def run(settings: Settings, role: Role = "all") -> int:
    """Run until stopped: 0 after SIGINT/SIGTERM, 1 when a part gave up, 2 when the token,
    the address, the webhook or its secret is refused (a :class:`~bot.errors.BotError`)."""
    token = read_token()
    if token is None:
        print(MISSING_TOKEN, file=sys.stderr)
        return 2
    webhook = _webhook_of(settings, role)
    # Both before anything is sent: a bad secret or a taken port is one line and exit 2.
    secret = read_webhook_secret() if webhook is not None else None
    sock = listening_socket(webhook) if webhook is not None else None
    try:
        return _run(settings, role, token, secret, sock)
    finally:
        if sock is not None:
            sock.close()  # a no-op once the webhook server has closed it


#: The name ``bot.cli`` imports; ``run`` covers every way of receiving updates.
run_polling = run


def _webhook_of(settings: Settings, role: Role) -> WebhookSettings | None:
    """The webhook this process serves: none for ``delivery``, which receives no updates."""
    return None if role == "delivery" else settings.telegram.webhook


def _run(settings: Settings, role: Role, token: str, secret: str | None,
         sock: socket.socket | None) -> int:
    configure_logging(settings.log_level, token, secret)
    # Opt in to python-telegram-bot's future RetryAfter (a timedelta) to avoid its warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    log.info("starting %s", describe(settings, role))
    app = build_application(settings, token, role=role)
    status = _status_of(app)
    stop_delivery = asyncio.Event()  # the `delivery` role runs without PTB's run_polling
    status.on_fatal(lambda _reason: stop_delivery.set() if role == "delivery"
                    else app.stop_running())  # then exit 1 with the reason
    # PTB's run_polling/run_webhook run on the current event loop; connect on it first.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    webhook = _webhook_of(settings, role)
    try:
        connected = loop.run_until_complete(
            _connect(app, status, settings, token, webhook, secret))
    except BaseException:
        loop.close()
        raise
    if not connected:  # stopped while waiting for Telegram
        loop.close()
        return 0
    if role == "delivery":
        try:
            loop.run_until_complete(_run_without_updates(app, stop_delivery))
        finally:
            loop.close()
    elif webhook is None or sock is None:
        watch_polling(app, status)
        # bootstrap_retries=-1: a network blip between connecting and deleteWebhook is
        # waited out, not a traceback.
        app.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1)
    else:
        # python-telegram-bot's own webhook server (tornado) on the socket bound above; it
        # answers 403 to a post without the secret, which is then never processed. It sets
        # the webhook again first (it always does, so with the same values), retrying a
        # network blip.
        app.run_webhook(unix=sock, url_path=webhook.path, webhook_url=webhook.url,
                        secret_token=secret, allowed_updates=Update.ALL_TYPES,
                        max_connections=WEBHOOK_MAX_CONNECTIONS, bootstrap_retries=-1)
    if status.fatal is not None:
        reason = TokenRedactingFilter(token, secret).redact(status.fatal)
        print(f"error: {reason}", file=sys.stderr)
        return 1
    return 0


async def _run_without_updates(app: BotApplication, stop: asyncio.Event) -> None:
    """A ``delivery`` process: the application's jobs and sender, no updates fetched,
    until SIGINT/SIGTERM or a part gives up (what ``run_polling`` does, minus polling)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        await stop.wait()
        await app.stop()
        if app.post_stop is not None:
            await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def _status_of(app: BotApplication) -> ProcessStatus:
    services = app.bot_data.services
    if services is None:  # pragma: no cover - build_application always installs them
        raise RuntimeError("bot services were not installed")
    return services.status


async def _connect(app: BotApplication, status: ProcessStatus, settings: Settings,
                   token: str, webhook: WebhookSettings | None, secret: str | None) -> bool:
    """:func:`connect` (and with a webhook, :func:`set_webhook`), stopped by SIGINT/SIGTERM
    (PTB installs its own handlers later)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    services = app.bot_data.services
    monitor = services.monitor if services is not None else None
    if monitor is not None:
        await monitor.start()  # /healthz says "waiting for Telegram" meanwhile
    ready = False
    try:
        if await connect(app.bot, status, settings.telegram.base_url, token, stop=stop):
            ready = webhook is None or secret is None or \
                await set_webhook(app.bot, status, webhook, secret, stop=stop)
        return ready
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if not ready:  # no application will close these
            await app.bot.shutdown()
            if monitor is not None:
                await monitor.stop()
