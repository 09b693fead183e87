"""How the bot's HTTP requests reach the Bot API: python-telegram-bot over aiohttp.

python-telegram-bot sends every call through a :class:`~telegram.request.BaseRequest`; its
stock :class:`~telegram.request.HTTPXRequest` spends most of a fan-out's CPU in httpx's
connection pool once dozens of requests are in flight (every request start and finish
walks the pool and polls each idle socket). :class:`AiohttpRequest` implements the same
interface over one :class:`aiohttp.ClientSession` — a dependency the project has anyway —
and measured several times faster per request (see ``benchmarks/fanout.py``). Everything
above it (the rate limiter, PTB's error classes, ``base_url``) is unchanged, and
``telegram.http_client: httpx`` in the config switches back to PTB's own.

Timeouts follow PTB's meaning where aiohttp has one: ``connect_timeout`` bounds opening a
connection and ``pool_timeout`` the wait for a free one (together aiohttp's ``connect``);
``read_timeout`` bounds the wait for each chunk of the answer. aiohttp has no write
timeout; ``write_timeout`` is accepted and ignored. A timeout *before* the request left
(waiting for a connection or opening one) is a :class:`~telegram.error.TimedOut` caused by
:class:`aiohttp.ConnectionTimeoutError`, which is how the delivery engine knows it may
resend without a duplicate.

Error messages never contain the request URL: it holds the bot token.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.ext import ApplicationBuilder
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bot.config import HttpClient

__all__ = ["AiohttpRequest", "use_http_client"]

NOT_SENT_MESSAGE: Final = "Connect timeout: no connection in time; the request was not sent"
_UNSET = BaseRequest.DEFAULT_NONE


def _resolve(value: float | object | None, default: float | None) -> float | None:
    return default if value is _UNSET else value  # type: ignore[return-value]


class AiohttpRequest(BaseRequest):
    """PTB's request interface over aiohttp; one session, opened by ``initialize``."""

    __slots__ = ("_connect", "_limit", "_pool", "_read", "_session")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._limit = connection_pool_size
        self._read = read_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: float | object | None = _UNSET,
        write_timeout: float | object | None = _UNSET,
        connect_timeout: float | object | None = _UNSET,
        pool_timeout: float | object | None = _UNSET,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        connect = _resolve(connect_timeout, self._connect)
        pool = _resolve(pool_timeout, self._pool)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=_resolve(read_timeout, self._read),
        )
        try:
            async with self._session.request(
                method, url, data=_body(request_data), timeout=timeout,
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as err:
            raise TimedOut(NOT_SENT_MESSAGE) from err
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {_without(url, err)}") from err


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as PTB encodes them; a multipart form when there are files."""
    if request_data is None:
        return None
    files = request_data.multipart_data
    if not files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form


def _without(url: str, err: Exception) -> str:
    """The error's text, or its class alone when the text would reveal the URL."""
    text = str(err)
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    return "(details withheld: they contain the request URL)" if path and path in text else text


def use_http_client(builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any],
                    client: HttpClient) -> None:
    """Give ``builder`` the chosen request objects: one for calls, one for getUpdates."""
    if client == "httpx":
        builder.request(HTTPXRequest(connection_pool_size=256))
        builder.get_updates_request(HTTPXRequest())
        return
    builder.request(AiohttpRequest(connection_pool_size=256))
    builder.get_updates_request(AiohttpRequest(connection_pool_size=1))
