"""Reaching the Bot API at start-up, and saying plainly when polling is unwell.

Left to itself python-telegram-bot turns a rejected token (401) and a wrong ``base_url``
(404) into the same ``InvalidToken``, whose text holds the whole token; gives up at the
first refused connection and leaves its HTTP sessions open; and logs a traceback for every
409 of a second poller. Here each is one line: a bad token or address ends the start at
once (a :class:`StartupError`, exit 2; the HTTP status seen by the request layer
tells the two apart), an unreachable Telegram is waited for with capped backoff, and a
second poller is an ERROR and a status problem until polling works again. In webhook mode
the same holds for ``setWebhook``: a URL Telegram refuses is one line and exit 2, and the
port to listen on is bound before anything is sent, so a taken one is one line too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Final

from telegram import Bot, Update
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.config import DEFAULT_BASE_URL, TOKEN_ENV, WebhookSettings
from bot.errors import BotError
from bot.status import ProcessStatus
from bot.stories.library import StoryFolderError
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.transport import RequestWatch, watch_of

__all__ = ["SECOND_POLLER", "WAITING", "WEBHOOK_MAX_CONNECTIONS", "StartupError", "connect",
           "listening_socket",
           "require_story_folder", "set_webhook", "watch_polling"]

log = logging.getLogger(__name__)

WAITING: Final = "waiting for Telegram"
SECOND_POLLER: Final = "another instance is polling with this token"
WEBHOOK_SET: Final = "a webhook is set for this token, so it cannot be polled"
#: Posts Telegram may have in flight to the webhook at once: its maximum (its default is
#: 40). python-telegram-bot's server answers a post once the update is queued, so more
#: connections cost the bot little and let a burst of updates in with fewer round trips.
WEBHOOK_MAX_CONNECTIONS: Final = 100
_TOKEN_SHAPE = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")


class StartupError(BotError):
    """Telegram refused the start for a reason waiting cannot mend (a token, an address)."""


async def connect(bot: Bot, status: ProcessStatus, base_url: str, token: str, *,
                  stop: asyncio.Event, first_delay: float = 1.0,
                  max_delay: float = 30.0) -> bool:
    """Initialise ``bot`` (its ``getMe``) until Telegram answers; False if ``stop`` came first.

    A 401 or 404 raises :class:`StartupError` at once: waiting cannot mend them. Any other
    failure (connection refused, DNS, timeouts, 5xx, 429) is one WARNING line per attempt
    and another attempt after a pause that doubles up to ``max_delay``, without end: a
    supervisor restarting the process would do no better. Meanwhile ``status`` has the
    problem ``telegram`` (:data:`WAITING`). Each failed attempt closes the HTTP sessions it
    opened.
    """
    async def initialize() -> None:
        try:
            await bot.initialize()
        except InvalidToken:
            await bot.shutdown()
            raise _rejection(watch_of(bot), base_url, token) from None
        except TelegramError:
            await bot.shutdown()
            raise

    attempts = await _patiently(initialize, f"Telegram is not reachable at {base_url}",
                                status, stop, first_delay, max_delay)
    if not attempts:
        await bot.shutdown()
        return False
    if attempts > 1:
        log.info("connected to Telegram at %s after %d attempts", base_url, attempts)
    return True


async def set_webhook(bot: Bot, status: ProcessStatus, webhook: WebhookSettings, secret: str,
                      *, stop: asyncio.Event, first_delay: float = 1.0,
                      max_delay: float = 30.0) -> bool:
    """Ask Telegram to post updates to ``webhook.url`` with ``secret``; False if ``stop``
    came first.

    python-telegram-bot's ``run_webhook`` sets the webhook again (it always does), but it
    retries a refusal forever at DEBUG level. Here a URL Telegram refuses (400: not HTTPS,
    a port it does not post to, a host it cannot resolve) is a :class:`StartupError`; other
    failures are waited out as :func:`connect` does.
    """
    async def register() -> None:
        try:
            await bot.set_webhook(url=webhook.url, secret_token=secret,
                                  allowed_updates=Update.ALL_TYPES,
                                  max_connections=WEBHOOK_MAX_CONNECTIONS)
        except BadRequest as error:
            raise StartupError(f"Telegram refused the webhook at telegram.webhook.url "
                               f"{webhook.url} ({error.message}); it must be a public HTTPS "
                               "URL on port 443, 80, 88 or 8443 that reaches this bot") from None

    attempts = await _patiently(register, "Telegram did not take the webhook", status, stop,
                                first_delay, max_delay)
    if attempts:
        log.info("Telegram posts updates to %s; listening on %s:%d%s", webhook.url,
                 webhook.listen, webhook.port, webhook.path)
    return bool(attempts)


def listening_socket(webhook: WebhookSettings) -> socket.socket:
    """The socket python-telegram-bot's webhook server will serve, bound and listening.

    Bound here, before anything is sent to Telegram, so that a port in use is one line and
    exit 2 rather than a traceback after the webhook was set (its ``unix`` argument takes
    any listening socket: tornado serves it as it is).
    """
    family = socket.AF_INET6 if ipaddress.ip_address(webhook.listen).version == 6 \
        else socket.AF_INET
    try:
        sock = socket.create_server((webhook.listen, webhook.port), family=family)
    except OSError as error:
        raise StartupError(f"cannot listen on {webhook.listen}:{webhook.port} for the webhook "
                           f"(telegram.webhook.listen and .port): {error.strerror or error}; "
                           "stop what uses it or choose another port") from None
    sock.setblocking(False)
    return sock


async def _patiently(action: Callable[[], Awaitable[None]], failing: str,
                     status: ProcessStatus, stop: asyncio.Event, first_delay: float,
                     max_delay: float) -> int:
    """Run ``action`` until it succeeds: the attempts it took, 0 if ``stop`` came first.

    A :class:`TelegramError` from it is one WARNING line (``failing`` says what failed)
    and another attempt after a pause that doubles up to ``max_delay`` (at least a 429's
    ``retry_after``), without end; anything else ends the wait. Meanwhile ``status`` has
    the problem ``telegram`` (:data:`WAITING`).
    """
    status.set_problem("telegram", WAITING)
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            if not await _unless_stopped(action(), stop):
                return 0
            break
        except TelegramError as error:
            pause = delay
            if isinstance(error, RetryAfter):
                pause = max(pause, _seconds(error.retry_after))
            log.warning("%s (attempt %d: %s); trying again in %g s", failing, attempt, error,
                        pause)
        if await _stopped_within(stop, pause):
            return 0
        delay = min(max_delay, delay * 2)
    status.clear_problem("telegram")
    return attempt


def _rejection(watch: RequestWatch | None, base_url: str, token: str) -> StartupError:
    """What a 401 or 404 to getMe means, from the status the request layer saw."""
    code = watch.last_status("getMe") if watch is not None else None
    if code == 401:
        return StartupError(f"Telegram rejected the bot token (401 Unauthorized): {TOKEN_ENV} "
                            "is wrong or was revoked; copy it again from @BotFather")
    if code == 404 and not _TOKEN_SHAPE.fullmatch(token):  # Telegram's 404 for a malformed one
        return StartupError(f"Telegram rejected the bot token (404 Not Found): {TOKEN_ENV} is "
                            "not shaped like a bot token (123456:ABC-DEF…); copy it again "
                            "from @BotFather")
    if code == 404:
        return StartupError(f"no Bot API at telegram.base_url {base_url} (getMe answered 404 "
                            f"Not Found); check the address, e.g. {DEFAULT_BASE_URL}")
    return StartupError(f"Telegram rejected the bot token, or telegram.base_url {base_url} is "
                        f"not a Bot API; check {TOKEN_ENV} and telegram.base_url")


async def _unless_stopped(action: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``action`` unless ``stop`` is set first (then cancel it): True if it finished."""
    task = asyncio.ensure_future(action)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        if pending not in done:
            pending.cancel()
    await asyncio.gather(task, stopper, return_exceptions=True)
    if task in done:
        task.result()  # raises what the action raised
        return True
    return False


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def watch_polling(app: BotApplication, status: ProcessStatus) -> None:
    """Make each failed poll one line instead of a traceback, before any other error handler.

    ``run_polling`` hands polling errors to the error handlers with no update, job or
    coroutine. A 409 Conflict (another process polls the same token, or a webhook is set) is
    an ERROR once and the status problem ``polling`` until a ``getUpdates`` succeeds again,
    which the request layer reports (PTB says nothing then).
    """
    watch = watch_of(app.bot)

    def on_answer(method: str, code: int) -> None:
        if method == "getUpdates" and 200 <= code < 300 and "polling" in status.problems:
            status.clear_problem("polling")
            log.info("polling works again")

    if watch is not None:
        watch.subscribe(on_answer)

    async def on_polling_error(update: object, context: BotContext) -> None:
        error = context.error
        if update is not None or context.job is not None or context.coroutine is not None \
                or not isinstance(error, TelegramError):
            return  # not from polling: the other error handlers report it
        if isinstance(error, Conflict):
            reason = WEBHOOK_SET if "webhook" in error.message.lower() else SECOND_POLLER
            if status.problems.get("polling") != reason:
                log.error("%s (409 Conflict): only one process may poll a bot token; stop the "
                          "other one. Polling goes on trying", reason)
            status.set_problem("polling", reason)
        else:
            log.warning("polling for updates failed (%s); trying again", error)
        raise ApplicationHandlerStop

    others = list(app.error_handlers.items())
    for callback, _ in others:
        app.remove_error_handler(callback)
    app.add_error_handler(on_polling_error)
    for callback, block in others:
        app.add_error_handler(callback, block=block)


def require_story_folder(folder: Path) -> None:
    """Refuse to start without a story folder that can be listed, as ``check`` does."""
    try:
        with os.scandir(folder):
            pass
    except FileNotFoundError:
        raise StoryFolderError(f"story folder {folder} does not exist") from None
    except NotADirectoryError:
        raise StoryFolderError(f"story folder {folder} is not a folder") from None
    except OSError as exc:
        raise StoryFolderError(f"cannot list story folder {folder}: {exc.strerror or exc}"
                               ) from None
