"""``GET /healthz`` and ``GET /metrics`` on ``monitoring.host:monitoring.port`` (aiohttp,
which the bot already uses for Telegram; no second web framework)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.errors import ConfigError
from bot.monitoring.health import Verdict

__all__ = ["MonitoringServer"]

log = logging.getLogger(__name__)


class MonitoringServer:
    def __init__(self, host: str, port: int, judge: Callable[[], Awaitable[Verdict]],
                 scrape: Callable[[], Awaitable[bytes]]) -> None:
        self.host = host
        self.port = port
        self._judge = judge
        self._scrape = scrape
        self._runner: web.AppRunner | None = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        verdict = await self._judge()
        return web.json_response(verdict.to_json(), status=200 if verdict.healthy else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = await self._scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @property
    def started(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Serve (once; a second call does nothing)."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self.stop()
            raise ConfigError("monitoring.port", f"cannot listen on {self.host}:{self.port}: "
                              f"{error.strerror or error}") from error
        if self.port == 0:  # an ephemeral port (the sandbox, tests): report the real one
            self.port = int(self._runner.addresses[0][1])
        log.info("monitoring on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
