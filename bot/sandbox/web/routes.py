"""The web chat's routes on the sandbox server: the page, its static files, a JSON API for
acting as a user, and a server-sent-event stream of every message change.

Only this machine may use it: the server listens on 127.0.0.1, requests must name it as
their ``Host`` (no DNS rebinding) and a state-changing request must come from the page
itself (its ``Origin``, and a JSON body, which a foreign form cannot send). Every answer
carries a Content-Security-Policy that allows the page's own script and nothing inline.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

from bot.sandbox.state import ChatType
from bot.sandbox.user_api import UserSide
from bot.sandbox.web.views import chat_view, message_page, message_view, people_view

__all__ = ["CONTENT_SECURITY_POLICY", "BotClock", "WebChat"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
_KEEPALIVE_SECONDS = 15.0
_ANSWER_SECONDS = 10.0
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BotClock(Protocol):
    """What the clock control needs from the bot under test (the session provides it)."""

    async def next_briefing(self, chat_id: int, thread_id: int | None) -> datetime | None:
        """When the chat's (or topic's) next briefing is due, or None without one."""

    async def clock_moved(self) -> None:
        """The shared clock jumped: look for due briefings now."""


@dataclass
class WebChat:
    """The web chat for one sandbox: ``add_routes(app)`` on the sandbox's aiohttp app.

    ``roles`` names the people the page offers to act as (others known are listed after
    them); ``bot_clock`` connects the clock control to the bot (without it a jump only moves
    the sandbox's clock).
    """

    sandbox: UserSide
    roles: Mapping[int, str]
    bot_clock: BotClock | None = None
    clock_generation: int = 0

    def add_routes(self, app: web.Application) -> None:
        """Register the page, its files and ``/web/api/...``."""
        pages = {name: (resources.files("bot.sandbox.web") / "static" / name).read_bytes()
                 for name in _STATIC}

        def static(name: str) -> Handler:
            async def serve(request: web.Request) -> web.StreamResponse:
                return web.Response(body=pages[name], content_type=_STATIC[name],
                                    charset="utf-8", headers=_headers())
            return _local_only(serve)

        app.router.add_get("/", static("index.html"))
        app.router.add_get("/web", static("index.html"))
        app.router.add_get("/static/app.js", static("app.js"))
        app.router.add_get("/static/style.css", static("style.css"))
        app.router.add_get("/favicon.ico", _no_icon)
        app.router.add_get("/web/api/events", _local_only(self._events))
        for method, path, action in (
            ("GET", "/web/api/world", self._world),
            ("GET", "/web/api/chats/{chat_id}/messages", self._messages),
            ("GET", "/web/api/commands", self._commands),
            ("POST", "/web/api/send", self._send),
            ("POST", "/web/api/press", self._press),
            ("POST", "/web/api/inline", self._inline),
            ("POST", "/web/api/inline/send", self._inline_send),
            ("POST", "/web/api/clock", self._clock),
        ):
            app.router.add_route(method, path, _local_only(_json_endpoint(action)))

    # -- views --------------------------------------------------------------------------
    def world(self) -> dict[str, Any]:
        """Bot, people, chats, clock: everything but the messages."""
        state = self.sandbox.state
        bot = state.options.bot
        return {
            "bot": {"id": bot.id, "username": bot.username, "name": bot.first_name},
            "people": people_view(state, self.roles),
            "chats": [chat_view(state, c) for c in state.chats.values()
                      if c.migrated_to is None],
            "clock": {"now": state.clock.now().isoformat(), "pretended": state.clock.pretended,
                      "generation": self.clock_generation},
            "revision": state.revision,
        }

    def _world_signature(self) -> tuple[Any, ...]:
        state = self.sandbox.state
        chats = tuple((c.id, c.title, len(c.members), len(c.topics), c.bot_status,
                       c.migrated_to) for c in state.chats.values())
        return len(state.users), chats, self.clock_generation

    # -- actions ------------------------------------------------------------------------
    async def _world(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.world()

    async def _messages(self, request: web.Request, body: dict[str, Any]) -> Any:
        query = request.query
        return message_page(
            self.sandbox.state, int(request.match_info["chat_id"]),
            thread=_int_or_none(query.get("thread")), before=_int_or_none(query.get("before")),
            limit=min(int(query.get("limit", 200)), 1000))

    async def _commands(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.sandbox.command_menu(int(request.query["chat_id"]),
                                         int(request.query["user_id"]))

    async def _send(self, request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = int(body["chat_id"])
        user_id = int(body["user_id"])
        chat = self.sandbox.state.chats.get(chat_id)
        if chat is None:
            raise LookupError(f"unknown chat {chat_id}")
        if chat.type is ChatType.PRIVATE and chat_id != user_id:
            raise ValueError("only the chat's own user writes in a private chat")
        post = await self.sandbox.user_message(
            str(body["text"]), user_id=user_id, chat_id=chat_id,
            thread_id=_int_or_none(body.get("thread_id")) or None)
        return message_view(self.sandbox.state, post.message)

    async def _press(self, request: web.Request, body: dict[str, Any]) -> Any:
        press = await self.sandbox.press_button(
            int(body["chat_id"]), int(body["message_id"]), button=int(body["button"]),
            user_id=int(body["user_id"]), timeout=_ANSWER_SECONDS)
        return {"answered": press.answer is not None, "answer": press.answer}

    async def _inline(self, request: web.Request, body: dict[str, Any]) -> Any:
        chat = self.sandbox.state.chats.get(int(body.get("chat_id", 0)))
        chat_type = "sender" if chat is None or chat.type is ChatType.PRIVATE \
            else str(chat.type)
        run = await self.sandbox.inline_query(
            str(body.get("query", "")), user_id=int(body["user_id"]), chat_type=chat_type,
            timeout=_ANSWER_SECONDS)
        results = [{"id": str(r.get("id")), "title": str(r.get("title") or r.get("id")),
                    "description": str(r.get("description") or "")} for r in run.results]
        return {"query_id": run.query_id, "answered": run.answer is not None,
                "results": results}

    async def _inline_send(self, request: web.Request, body: dict[str, Any]) -> Any:
        post = await self.sandbox.send_inline_result(
            str(body["query_id"]), str(body["result_id"]), chat_id=int(body["chat_id"]),
            thread_id=_int_or_none(body.get("thread_id")) or None)
        return message_view(self.sandbox.state, post.message)

    async def _clock(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Jump the shared clock: to ``at`` (ISO with offset), or to a minute before the
        next briefing of ``before_briefing`` = {chat_id, thread_id}; then a due scan."""
        state = self.sandbox.state
        if "at" in body:
            when = datetime.fromisoformat(str(body["at"]))
            if when.tzinfo is None:
                raise ValueError("give the time with its offset, e.g. 2025-04-02T07:59:00+00:00")
        elif "before_briefing" in body:
            target = body["before_briefing"]
            if self.bot_clock is None:
                raise LookupError("no bot is connected to this sandbox")
            due = await self.bot_clock.next_briefing(
                int(target["chat_id"]), _int_or_none(target.get("thread_id")) or None)
            if due is None:
                raise LookupError("this chat has no briefing: /subscribe first")
            when = due - timedelta(minutes=1)
        else:
            raise ValueError("say where to: 'at' or 'before_briefing'")
        state.clock.run_from(when)
        self.clock_generation += 1
        state.notify()
        if self.bot_clock is not None:
            await self.bot_clock.clock_moved()
        return {"now": state.clock.now().isoformat(), "generation": self.clock_generation}

    # -- live ---------------------------------------------------------------------------
    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``message`` (a message's current view) for every change
        after ``?since=`` (or ``Last-Event-ID`` on a reconnect), ``world`` when chats,
        people or the clock changed."""
        state = self.sandbox.state
        since = _int_or_none(request.headers.get("Last-Event-ID")) \
            or _int_or_none(request.query.get("since")) or state.revision
        response = web.StreamResponse(headers={
            **_headers(), "Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        signature = self._world_signature()
        try:
            await response.write(b"retry: 500\n\n")
            while not state.closing:
                for message in state.changed_since(since):
                    data = json.dumps(message_view(state, message), separators=(",", ":"))
                    await response.write(
                        f"id: {message.revision}\nevent: message\ndata: {data}\n\n".encode())
                    since = message.revision
                since = max(since, state.revision)
                current = self._world_signature()
                if current != signature:
                    signature = current
                    data = json.dumps(self.world(), separators=(",", ":"))
                    await response.write(f"event: world\ndata: {data}\n\n".encode())
                revision = state.revision
                await state.wait_change(_KEEPALIVE_SECONDS)
                if state.revision == revision and self._world_signature() == signature:
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:  # the page went away
            pass
        return response


async def _no_icon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers=_headers())


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store"}


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _host_is_local(request: web.Request) -> bool:
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host in _LOCAL_HOSTS


def _local_only(handler: Handler) -> Handler:
    """Refuse requests that name another host, and changes asked for by another page."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not _host_is_local(request):
            return _fail(403, "the web chat answers only at 127.0.0.1 or localhost")
        if request.method != "GET":
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                return _fail(403, "requests from other pages are refused")
        return await handler(request)

    return guarded


def _fail(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status, headers=_headers())


def _json_endpoint(
    action: Callable[[web.Request, dict[str, Any]], Awaitable[Any]],
) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.method != "GET":
            if request.content_type != "application/json":
                return _fail(415, "send JSON (Content-Type: application/json)")
            try:
                data = await request.json()
            except json.JSONDecodeError:
                return _fail(400, "the body must be a JSON object")
            if not isinstance(data, dict):
                return _fail(400, "the body must be a JSON object")
            body = data
        try:
            result = await action(request, body)
        except LookupError as err:
            return _fail(404, str(err.args[0]) if err.args else "not found")
        except (KeyError, TypeError, ValueError) as err:
            return _fail(400, f"bad request: {err}")
        return web.json_response({"ok": True, "result": result}, headers=_headers())

    return handle
