"""The user side over HTTP: ``/sandbox/...`` JSON endpoints on the Bot API port.

Other processes (benchmarks, a browser, curl) drive the sandbox through these; every
answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}`` with status
400 (bad input) or 404 (unknown chat, message, button). ``bot/sandbox/README.md`` lists
the endpoints with examples.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.sandbox.faults import Fault
from bot.sandbox.flood import FloodLimits
from bot.sandbox.user_api import UserSide

__all__ = ["add_user_routes"]

Handler = Callable[[web.Request], Awaitable[web.Response]]
Action = Callable[[web.Request, dict[str, Any]], Awaitable[Any]]


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _fail(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


def _endpoint(action: Action) -> Handler:
    """Read a JSON body (may be empty), run ``action``, map errors to 400/404."""

    async def handle(request: web.Request) -> web.Response:
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                data = await request.json()
            except json.JSONDecodeError:
                return _fail(400, "the body must be a JSON object")
            if not isinstance(data, dict):
                return _fail(400, "the body must be a JSON object")
            body = data
        try:
            return _ok(await action(request, body))
        except LookupError as err:
            return _fail(404, str(err.args[0]) if err.args else "not found")
        except (KeyError, TypeError, ValueError) as err:
            return _fail(400, f"bad request: {err}")

    return handle


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    return int(value) if value not in (None, "") else None


def _query_flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _chat_id(request: web.Request) -> int:
    return int(request.match_info["chat_id"])


def add_user_routes(app: web.Application, sandbox: UserSide) -> None:
    """Register the ``/sandbox`` endpoints for ``sandbox`` on ``app``."""

    async def health(request: web.Request, body: dict[str, Any]) -> Any:
        return {"bot": sandbox.state.options.bot.to_user()}

    async def message(request: web.Request, body: dict[str, Any]) -> Any:
        post = await sandbox.user_message(
            str(body["text"]),
            user_id=int(body.get("user_id", 100001)),
            chat_id=body.get("chat_id"),
            thread_id=body.get("thread_id"),
            chat_type=body.get("chat_type"),
            first_name=body.get("first_name"),
            username=body.get("username"),
            reply_to_message_id=body.get("reply_to_message_id"),
        )
        return post.to_json()

    async def edit(request: web.Request, body: dict[str, Any]) -> Any:
        post = await sandbox.edit_user_message(
            int(body["chat_id"]), int(body["message_id"]), str(body["text"])
        )
        return post.to_json()

    async def photo(request: web.Request, body: dict[str, Any]) -> Any:
        post = await sandbox.user_photo(
            caption=body.get("caption"),
            user_id=int(body.get("user_id", 100001)),
            chat_id=body.get("chat_id"),
            thread_id=body.get("thread_id"),
        )
        return post.to_json()

    async def press(request: web.Request, body: dict[str, Any]) -> Any:
        result = await sandbox.press_button(
            int(body["chat_id"]),
            body.get("message_id"),
            button=body.get("button"),
            data=body.get("data"),
            text=body.get("text"),
            user_id=body.get("user_id"),
            timeout=float(body.get("timeout", 5.0)),
        )
        return result.to_json()

    async def inline(request: web.Request, body: dict[str, Any]) -> Any:
        run = await sandbox.inline_query(
            str(body.get("query", "")),
            user_id=int(body.get("user_id", 100001)),
            offset=str(body.get("offset", "")),
            timeout=float(body.get("timeout", 5.0)),
        )
        return run.to_json()

    async def list_chats(request: web.Request, body: dict[str, Any]) -> Any:
        return [
            {
                **chat.to_json(),
                "blocked": chat.blocked,
                "bot_status": str(chat.bot_status),
                "migrated_to": chat.migrated_to,
                "members": {str(k): str(v) for k, v in chat.members.items()},
            }
            for chat in sandbox.state.chats.values()
        ]

    async def add_chat(request: web.Request, body: dict[str, Any]) -> Any:
        chat = sandbox.add_chat(
            int(body["id"]),
            str(body["type"]),
            title=body.get("title"),
            username=body.get("username"),
            is_forum=bool(body.get("is_forum", False)),
            members=[int(u) for u in body.get("members", [])],
            admins=[int(u) for u in body.get("admins", [])],
            creator=body.get("creator"),
            topics=[int(t) for t in body.get("topics", [])],
            bot_status=str(body.get("bot_status", "member")),
        )
        return chat.to_json()

    async def chat_messages(request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = _chat_id(request)
        if chat_id not in sandbox.state.chats:
            raise LookupError(f"unknown chat {chat_id}")
        reader = sandbox.bot_messages if _query_flag(request, "bot_only") else sandbox.messages
        found = reader(
            chat_id,
            include_deleted=_query_flag(request, "include_deleted"),
            thread_id=_query_int(request, "thread_id"),
        )
        return [m.to_json() for m in found]

    async def bot_added(request: web.Request, body: dict[str, Any]) -> Any:
        update_id = await sandbox.bot_added(
            _chat_id(request),
            by_user_id=int(body.get("by_user_id", 100001)),
            as_admin=bool(body.get("as_admin", False)),
        )
        return {"update_id": update_id}

    async def bot_removed(request: web.Request, body: dict[str, Any]) -> Any:
        update_id = await sandbox.bot_removed(
            _chat_id(request),
            by_user_id=int(body.get("by_user_id", 100001)),
            kicked=bool(body.get("kicked", True)),
        )
        return {"update_id": update_id}

    async def migrate(request: web.Request, body: dict[str, Any]) -> Any:
        new_id = body.get("new_chat_id")
        return {"new_chat_id": sandbox.migrate_group(_chat_id(request), new_id)}

    async def block(request: web.Request, body: dict[str, Any]) -> Any:
        return {"update_id": await sandbox.block_bot(int(request.match_info["user_id"]))}

    async def unblock(request: web.Request, body: dict[str, Any]) -> Any:
        return {"update_id": await sandbox.unblock_bot(int(request.match_info["user_id"]))}

    async def deactivate(request: web.Request, body: dict[str, Any]) -> Any:
        sandbox.deactivate_user(int(request.match_info["user_id"]))
        return True

    async def calls(request: web.Request, body: dict[str, Any]) -> Any:
        since = _query_int(request, "since") or 0
        found = sandbox.calls(request.query.get("method"), since=since)
        return [c.to_json() for c in found]

    def options_json() -> dict[str, Any]:
        options = sandbox.state.options
        return {
            "bot": options.bot.to_user(),
            "flood": asdict(options.flood),
            "now": sandbox.state.clock.now().isoformat() if options.now else None,
            "long_poll_max": options.long_poll_max,
        }

    async def get_options(request: web.Request, body: dict[str, Any]) -> Any:
        return options_json()

    async def set_options(request: web.Request, body: dict[str, Any]) -> Any:
        unknown = set(body) - {"flood", "now", "advance_seconds"}
        if unknown:
            raise ValueError(f"unknown option fields: {sorted(unknown)}")
        if "flood" in body:
            flood = body["flood"]
            if flood in (None, "off"):
                sandbox.set_flood_limits(FloodLimits())
            elif flood == "telegram":
                sandbox.set_flood_limits(FloodLimits.telegram())
            else:
                sandbox.set_flood_limits(FloodLimits(**flood))
        if "now" in body:
            now = body["now"]
            sandbox.set_now(datetime.fromisoformat(now) if now else None)
        if "advance_seconds" in body:
            sandbox.state.clock.advance(float(body["advance_seconds"]))
        return options_json()

    async def list_faults(request: web.Request, body: dict[str, Any]) -> Any:
        return [f.to_json() for f in sandbox.state.faults.faults]

    async def add_fault(request: web.Request, body: dict[str, Any]) -> Any:
        return sandbox.inject(Fault.from_json(body)).to_json()

    async def clear_faults(request: web.Request, body: dict[str, Any]) -> Any:
        sandbox.clear_faults()
        return True

    async def remove_fault(request: web.Request, body: dict[str, Any]) -> Any:
        if not sandbox.state.faults.remove(int(request.match_info["fault_id"])):
            raise LookupError("no such fault")
        return True

    async def wait_idle(request: web.Request, body: dict[str, Any]) -> Any:
        idle = await sandbox.wait_idle(
            int(body["update_id"]),
            quiet=float(body.get("quiet", 0.2)),
            timeout=float(body.get("timeout", 10.0)),
        )
        return {"idle": idle}

    async def wait_reply(request: web.Request, body: dict[str, Any]) -> Any:
        trip = await sandbox.wait_reply(
            int(body["update_id"]),
            int(body["chat_id"]),
            count=body.get("count"),
            quiet=float(body.get("quiet", 0.2)),
            timeout=float(body.get("timeout", 10.0)),
            methods=body.get("methods"),
        )
        return trip.to_json()

    async def stats(request: web.Request, body: dict[str, Any]) -> Any:
        state = sandbox.state
        return {
            "calls": len(state.calls),
            "flood_refusals": state.flood.refused,
            "pending_updates": len(state.pending),
            "updates": len(state.updates),
            "chats": len(state.chats),
            "messages": sum(len(m) for m in state.messages.values()),
        }

    async def reset(request: web.Request, body: dict[str, Any]) -> Any:
        sandbox.reset()
        return True

    routes: list[tuple[str, str, Action]] = [
        ("GET", "/sandbox/health", health),
        ("POST", "/sandbox/message", message),
        ("POST", "/sandbox/edit", edit),
        ("POST", "/sandbox/photo", photo),
        ("POST", "/sandbox/press", press),
        ("POST", "/sandbox/inline", inline),
        ("GET", "/sandbox/chats", list_chats),
        ("POST", "/sandbox/chats", add_chat),
        ("GET", "/sandbox/chats/{chat_id}/messages", chat_messages),
        ("POST", "/sandbox/chats/{chat_id}/bot-added", bot_added),
        ("POST", "/sandbox/chats/{chat_id}/bot-removed", bot_removed),
        ("POST", "/sandbox/chats/{chat_id}/migrate", migrate),
        ("POST", "/sandbox/users/{user_id}/block", block),
        ("POST", "/sandbox/users/{user_id}/unblock", unblock),
        ("POST", "/sandbox/users/{user_id}/deactivate", deactivate),
        ("GET", "/sandbox/calls", calls),
        ("GET", "/sandbox/options", get_options),
        ("POST", "/sandbox/options", set_options),
        ("GET", "/sandbox/faults", list_faults),
        ("POST", "/sandbox/faults", add_fault),
        ("DELETE", "/sandbox/faults", clear_faults),
        ("DELETE", "/sandbox/faults/{fault_id}", remove_fault),
        ("POST", "/sandbox/wait-idle", wait_idle),
        ("POST", "/sandbox/wait-reply", wait_reply),
        ("GET", "/sandbox/stats", stats),
        ("POST", "/sandbox/reset", reset),
    ]
    for method, path, action in routes:
        app.router.add_route(method, path, _endpoint(action))
