"""The sandbox Bot API server: aiohttp routes around :class:`BotApi` and :class:`UserSide`.

Run it in-process::

    async with SandboxServer(SandboxOptions()) as server:
        bot = telegram.Bot("123:ABC", base_url=server.base_url)
        post = await server.user_message("/start", user_id=42)
        await server.wait_idle(post.update_id)
        print(server.bot_messages(42)[-1].text)

or standalone: ``python -m bot.sandbox.server --port 8081`` (see ``bot/sandbox/README.md``
for the ``/sandbox/...`` HTTP API that drives it from another process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.sandbox.bot_api import BotApi
from bot.sandbox.faults import ApiError
from bot.sandbox.flood import FloodLimits
from bot.sandbox.httpapi import add_user_routes
from bot.sandbox.options import BotIdentity, SandboxOptions
from bot.sandbox.params import Params, UploadedFile
from bot.sandbox.state import SandboxState
from bot.sandbox.user_api import UserSide

__all__ = ["SandboxServer", "main"]

_log = logging.getLogger(__name__)


class SandboxServer(UserSide):
    """A local Telegram Bot API server for one bot, plus the user side of Telegram.

    ``async with SandboxServer() as server`` listens on 127.0.0.1 and a free port;
    point the bot at ``server.base_url``.
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.state = SandboxState(self.options)
        self.bot_api = BotApi(self.state)
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

    async def stop(self) -> None:
        """End long polls and stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.state.closing = True
        self.state.notify()
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
    def base_url(self) -> str:
        """What to give PTB as ``base_url``: ``http://127.0.0.1:PORT/bot``."""
        return f"{self.url}/bot"

    # -- HTTP ---------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        """The aiohttp application: the Bot API and the ``/sandbox`` user-side API."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        add_user_routes(app, self)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_call)
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
