"""A small client for the ``/sandbox/...`` HTTP API, for programs in another process.

::

    async with SandboxClient("http://127.0.0.1:8081") as sandbox:
        post = await sandbox.user_message("/latest", user_id=42)
        trip = await sandbox.wait_reply(post["update_id"], chat_id=42)
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

__all__ = ["SandboxClient", "SandboxClientError"]


class SandboxClientError(RuntimeError):
    """The sandbox answered ``{"ok": false, "error": ...}``."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"sandbox HTTP API {status}: {error}")
        self.status = status
        self.error = error


class SandboxClient:
    """Async wrapper for the sandbox's HTTP user-side API (results are plain JSON)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/").removesuffix("/bot")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        http_method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Call ``/sandbox/<path>`` and return ``result``."""
        if self._session is None:
            raise RuntimeError("use 'async with SandboxClient(url)'")
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        async with self._session.request(
            http_method, f"{self.url}/sandbox/{path.lstrip('/')}", json=body, params=params
        ) as response:
            data = await response.json()
        if not data.get("ok"):
            raise SandboxClientError(response.status, str(data.get("error")))
        return data["result"]

    async def user_message(self, text: str, **fields: Any) -> Any:
        """POST /sandbox/message (fields: user_id, chat_id, thread_id, chat_type, ...)."""
        return await self.request("POST", "message", {"text": text, **fields})

    async def press(self, chat_id: int, **fields: Any) -> Any:
        """POST /sandbox/press (fields: message_id, button, data, text, timeout)."""
        return await self.request("POST", "press", {"chat_id": chat_id, **fields})

    async def inline_query(self, query: str, **fields: Any) -> Any:
        """POST /sandbox/inline."""
        return await self.request("POST", "inline", {"query": query, **fields})

    async def messages(self, chat_id: int, *, bot_only: bool = False) -> Any:
        """GET /sandbox/chats/{chat_id}/messages."""
        return await self.request(
            "GET", f"chats/{chat_id}/messages", query={"bot_only": "1" if bot_only else None}
        )

    async def calls(self, *, since: int = 0, method: str | None = None) -> Any:
        """GET /sandbox/calls."""
        return await self.request("GET", "calls", query={"since": since, "method": method})

    async def set_options(self, **options: Any) -> Any:
        """POST /sandbox/options (flood, now, advance_seconds)."""
        return await self.request("POST", "options", options)

    async def inject(self, kind: str, **fields: Any) -> Any:
        """POST /sandbox/faults."""
        return await self.request("POST", "faults", {"kind": kind, **fields})

    async def clear_faults(self) -> Any:
        """DELETE /sandbox/faults."""
        return await self.request("DELETE", "faults")

    async def wait_idle(self, update_id: int, **fields: Any) -> Any:
        """POST /sandbox/wait-idle."""
        return await self.request("POST", "wait-idle", {"update_id": update_id, **fields})

    async def wait_reply(self, update_id: int, chat_id: int, **fields: Any) -> Any:
        """POST /sandbox/wait-reply."""
        body = {"update_id": update_id, "chat_id": chat_id, **fields}
        return await self.request("POST", "wait-reply", body)

    async def stats(self) -> Any:
        """GET /sandbox/stats."""
        return await self.request("GET", "stats")

    async def reset(self) -> Any:
        """POST /sandbox/reset."""
        return await self.request("POST", "reset")
