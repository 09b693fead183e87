"""The sandbox Bot API server: aiohttp routes around :class:`BotApi` and :class:`UserSide`.

Run it in-process::

    async with SandboxServer(SandboxOptions()) as server:
        bot = telegram.Bot("123:ABC", base_url=server.base_url)
        post = await server.user_message("/start", user_id=42)
        await server.wait_idle(post.update_id)
        print(server.bot_messages(42)[-1].text)

or standalone: ``python -m bot.sandbox.server --port 8081`` (see ``bot/sandbox/README.md``
for the ``/sandbox/...`` HTTP API that drives it from another process). While a webhook is
set, :class:`WebhookDelivery` posts the updates to it instead of holding them for getUpdates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox.bot_api import BotApi, is_loopback_url
from bot.sandbox.faults import ApiError
from bot.sandbox.flood import FloodLimits
from bot.sandbox.httpapi import add_user_routes
from bot.sandbox.options import BotIdentity, SandboxOptions
from bot.sandbox.params import Params, UploadedFile
from bot.sandbox.state import SandboxState, UpdateRecord, Webhook, WebhookAttempt
from bot.sandbox.user_api import UserSide
from bot.sandbox.web import WebChat

__all__ = ["SECRET_HEADER", "SandboxServer", "WebhookDelivery", "main"]

_log = logging.getLogger(__name__)

#: The header Telegram sends the webhook's secret token in.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookDelivery:
    """Posts pending updates to the webhook while one is set, as Telegram does.

    Oldest update first, at most the webhook's ``max_connections`` posts at once, each a
    JSON ``Update`` with the secret token in :data:`SECRET_HEADER`. A 2xx answer delivers
    the update; any other answer, or none (refused, timed out after ``timeout`` s), leaves
    it pending, to be posted again after ``first_retry`` s, doubling up to ``max_retry``
    (Telegram keeps an update for a day; the sandbox for as long as it runs), and is kept
    as the webhook's ``last_error_message``. Every post is in ``state.webhook_attempts``.
    """

    def __init__(self, state: SandboxState, *, first_retry: float = 0.5,
                 max_retry: float = 10.0, timeout: float = 10.0) -> None:
        self.state = state
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._posting: dict[int, asyncio.Task[None]] = {}
        self._failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}

    @property
    def in_flight(self) -> frozenset[int]:
        """The updates being posted right now."""
        return frozenset(self._posting)

    async def start(self) -> None:
        """Start watching for a webhook and updates to post."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
        self._task = asyncio.create_task(self._run(), name="sandbox webhook delivery")

    async def stop(self) -> None:
        """Stop posting (posts in flight are abandoned, their updates stay pending)."""
        tasks = [t for t in (self._task, *self._posting.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._posting.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        state = self.state
        work = state.webhook_work
        while not state.closing:
            work.clear()  # what is set from here on is seen by the next pass
            wait = 3600.0  # until there is something new to post
            hook = state.webhook
            if hook is not None:
                now = time.monotonic()
                for record in state.deliverable():
                    if len(self._posting) >= hook.max_connections:
                        break
                    if record.update_id in self._posting:
                        continue
                    due = self._retry_at.get(record.update_id, 0.0)
                    if due > now:
                        wait = min(wait, due - now)
                        continue
                    self._posting[record.update_id] = asyncio.create_task(
                        self._post(hook, record))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(work.wait(), wait)

    async def _post(self, hook: Webhook, record: UpdateRecord) -> None:
        state = self.state
        update_id = record.update_id
        started = time.monotonic()
        status: int | None = None
        reason = ""
        error: str | None = None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token is not None:
            headers[SECRET_HEADER] = hook.secret_token
        assert self._session is not None, "started before posting"
        try:
            if not is_loopback_url(hook.url):  # setWebhook refuses others; never post there
                raise aiohttp.InvalidURL(hook.url, "the sandbox posts only to this machine")
            body = json.dumps(record.payload).encode()
            async with self._session.post(hook.url, data=body, headers=headers) as response:
                status = response.status
                reason = response.reason or ""
                await response.read()
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectionError as err:
            error = f"Connection failed: {err}"
        except aiohttp.ClientError as err:
            error = f"{type(err).__name__}: {err}"
        finally:
            self._posting.pop(update_id, None)
        attempt = WebhookAttempt(update_id, hook.url, status, error, started, time.monotonic())
        state.webhook_attempts.append(attempt)
        state.webhook_work.set()  # a connection is free again
        if attempt.accepted:
            self._failures.pop(update_id, None)
            self._retry_at.pop(update_id, None)
            state.webhook_accepted(update_id)
            return
        failures = self._failures[update_id] = self._failures.get(update_id, 0) + 1
        pause = min(self.max_retry, self.first_retry * 2 ** (failures - 1))
        self._retry_at[update_id] = time.monotonic() + pause
        hook.last_error_date = state.clock.timestamp()
        hook.last_error_message = error or f"Wrong response from the webhook: {status} {reason}"
        state.notify()


class SandboxServer(UserSide):
    """A local Telegram Bot API server for one bot, plus the user side of Telegram.

    ``async with SandboxServer() as server`` listens on 127.0.0.1 and a free port;
    point the bot at ``server.base_url``.
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.state = SandboxState(self.options)
        self.bot_api = BotApi(self.state)
        self.webhook_delivery = WebhookDelivery(self.state)
        #: Set before ``start`` to serve the web chat (the page at ``/``) on the same port.
        self.web_chat: WebChat | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start listening on ``options.host``/``options.port``."""
        if self._runner is not None:
            raise RuntimeError("the sandbox server is already running")
        self.state.closing = False
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port)
        await site.start()
        self._runner = runner
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else self.options.port
        await self.webhook_delivery.start()

    async def stop(self) -> None:
        """End long polls and stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.state.closing = True
        self.state.notify()
        await self.webhook_delivery.stop()
        await runner.cleanup()

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        if self._port is None:
            raise RuntimeError("the sandbox server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8081`` (the HTTP API is under /sandbox)."""
        return f"http://{self.options.host}:{self.port}"

    @property
    def web_url(self) -> str:
        """The web chat's page (served when ``web_chat`` is set)."""
        return f"{self.url}/"

    @property
    def base_url(self) -> str:
        """What to give PTB as ``base_url``: ``http://127.0.0.1:PORT/bot``."""
        return f"{self.url}/bot"

    # -- HTTP ---------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        """The aiohttp application: the Bot API and the ``/sandbox`` user-side API."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        add_user_routes(app, self)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_call)
        if self.web_chat is not None:
            self.web_chat.add_routes(app)
        return app

    async def _handle_bot_call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            raw = await _read_params(request)
        except ValueError as err:
            return _reply_error(ApiError.bad_request(str(err)))
        params = Params(raw)
        chat_id = _chat_id_of(raw)
        record = self.state.start_call(method, params.to_json(), chat_id)
        try:
            result = await self.bot_api.call(method, params)
        except ApiError as err:
            self.state.finish_call(record, err.status, err.description)
            return _reply_error(err)
        except Exception:
            _log.exception("sandbox: %s failed", method)
            self.state.finish_call(record, 500, "Internal Server Error")
            return _reply_error(ApiError(500, "Internal Server Error"))
        self.state.finish_call(record, 200, None)
        return web.json_response({"ok": True, "result": result})


def _reply_error(err: ApiError) -> web.Response:
    return web.json_response(err.to_json(), status=err.status)


def _chat_id_of(raw: dict[str, Any]) -> int | None:
    value = raw.get("chat_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    return None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string, then a JSON, url-encoded or multipart body."""
    raw: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return raw
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise ValueError("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ValueError("can't parse JSON object")
        raw.update(body)
        return raw
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            content = value.file.read()
            raw[key] = UploadedFile(filename=value.filename, size=len(content))
        else:
            raw[key] = value
    return raw


# -- standalone process -------------------------------------------------------------------
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.server",
        description="Run the sandbox Telegram Bot API server (and its /sandbox HTTP API).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument(
        "--flood-global",
        type=int,
        default=None,
        metavar="N",
        help="sending calls per second, all chats (Telegram: 30)",
    )
    parser.add_argument(
        "--flood-chat",
        type=int,
        default=None,
        metavar="N",
        help="sending calls per second per chat (Telegram: 1)",
    )
    parser.add_argument(
        "--flood-group",
        type=int,
        default=None,
        metavar="N",
        help="sending calls per minute per group (Telegram: 20)",
    )
    parser.add_argument(
        "--now",
        default=None,
        metavar="ISO",
        help="fixed clock for message dates, e.g. 2025-03-31T07:00:00+00:00",
    )
    parser.add_argument("--bot-username", default="story_bot")
    parser.add_argument("--bot-name", default="Story Bot")
    parser.add_argument("--bot-id", type=int, default=7000000001)
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> SandboxOptions:
    """Turn command-line arguments into :class:`SandboxOptions` (errors as ValueError)."""
    now = None
    if args.now:
        now = datetime.fromisoformat(args.now)
        if now.tzinfo is None:
            raise ValueError("--now needs a UTC offset, e.g. 2025-03-31T07:00:00+00:00")
    return SandboxOptions(
        bot=BotIdentity(id=args.bot_id, username=args.bot_username, first_name=args.bot_name),
        flood=FloodLimits(args.flood_global, args.flood_chat, args.flood_group),
        now=now,
        host=args.host,
        port=args.port,
    )


async def serve(options: SandboxOptions) -> None:
    """Run until SIGINT/SIGTERM, printing the ready line first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SandboxServer(options) as server:
        print(f"sandbox Bot API server listening on {server.base_url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot.sandbox.server``."""
    args = _parse_args(argv)
    try:
        options = options_from_args(args)
    except ValueError as err:
        print(f"sandbox: {err}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(options))
    except OSError as err:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
