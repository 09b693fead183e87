"""How the bot's HTTP requests reach the Bot API: python-telegram-bot over aiohttp.

python-telegram-bot sends every call through a :class:`~telegram.request.BaseRequest`; its
stock :class:`~telegram.request.HTTPXRequest` spends most of a fan-out's CPU in httpx's
connection pool once dozens of requests are in flight (every request start and finish
walks the pool and polls each idle socket). :class:`AiohttpRequest` implements the same
interface over one :class:`aiohttp.ClientSession` — a dependency the project has anyway —
and measured several times faster per request (see ``benchmarks/fanout.py``). Everything
above it (the rate limiter, PTB's error classes, ``base_url``) is unchanged, and
``telegram.http_client: httpx`` in the config switches back to PTB's own.

Kept as PTB's httpx client behaves: ``connect_timeout`` bounds opening a connection and
``pool_timeout`` the wait for a free one (together aiohttp's ``connect``); ``read_timeout``
bounds the wait for each chunk of the answer; aiohttp has no write timeout, so an upload
(multipart) is bounded as a whole by the sum of the four. A timeout *before* the request
left (no connection in time) is a :class:`~telegram.error.TimedOut` caused by
:class:`aiohttp.ConnectionTimeoutError`, which is how the delivery engine knows it may
resend without a duplicate. Redirects are not followed. Proxies come from the usual
environment variables (``HTTPS_PROXY``, ``NO_PROXY``, …; HTTP proxies only), and TLS is
verified against ``SSL_CERT_FILE``/``SSL_CERT_DIR`` if set, else certifi's bundle.

No error this module raises carries the bot token: not in its message (text that would
show it is withheld) and not in its chain (aiohttp's own exceptions name the URL, so they
are not attached).

Both clients report the HTTP status of each answer to a shared :class:`RequestWatch`:
python-telegram-bot raises the same ``InvalidToken`` for a rejected token (401) and a wrong
``base_url`` (404), and says nothing when polling works again after a 409, but the request
layer sees both. Both also read an answer that is not JSON (a proxy's or web server's error
page) without PTB's ERROR and traceback: the error raised then says it once, where caught.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp
import certifi
from telegram import Bot
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.ext import ApplicationBuilder
from telegram.request import BaseRequest, HTTPXRequest, RequestData

if TYPE_CHECKING:
    from telegram._utils.types import JSONDict, ODVInput, UploadFileDict

from bot.config import HttpClient

__all__ = ["AiohttpRequest", "HttpxRequest", "RequestWatch", "use_http_client", "watch_of"]

NOT_SENT_MESSAGE: Final = "Connect timeout: no connection in time; the request was not sent"
_UNSET = BaseRequest.DEFAULT_NONE


def _resolve(value: float | object | None, default: float | None) -> float | None:
    return default if value is _UNSET else value  # type: ignore[return-value]


class RequestWatch:
    """The HTTP status of the last answer to each Bot API method, and who wants to know."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._listeners: list[Callable[[str, int], None]] = []

    def last_status(self, method: str) -> int | None:
        """The status of ``method``'s last answer (None: it never got one)."""
        return self._last.get(method)

    def subscribe(self, listener: Callable[[str, int], None]) -> None:
        """Call ``listener(method, status)`` after every answer; it must not raise."""
        self._listeners.append(listener)

    def record(self, url: str, status: int) -> None:
        method = url.rpartition("/")[2]
        if not method.isidentifier():  # a file download, not a method
            return
        self._last[method] = status
        for listener in self._listeners:
            listener(method, status)


class _Watched:
    """What both clients add to PTB's: answers reported to ``watch``, quiet JSON parsing."""

    __slots__ = ()
    watch: RequestWatch | None

    def _answered(self, url: str, answer: tuple[int, bytes]) -> tuple[int, bytes]:
        if self.watch is not None:
            self.watch.record(url, answer[0])
        return answer

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            parsed: JSONDict = json.loads(payload.decode("utf-8", "replace"))
        except ValueError:
            raise TelegramError("Invalid server response (not JSON)") from None
        return parsed


class AiohttpRequest(_Watched, BaseRequest):
    """PTB's request interface over aiohttp; one session, opened by ``initialize``."""

    __slots__ = ("_connect", "_limit", "_media_write", "_pool", "_proxies", "_read",
                 "_session", "watch")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        watch: RequestWatch | None = None,
    ) -> None:
        self.watch = watch
        self._limit = connection_pool_size
        self._read = read_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}  # "scheme://host" -> proxy URL or None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            tls = ssl.create_default_context(
                cafile=os.environ.get("SSL_CERT_FILE") or certifi.where(),
                capath=os.environ.get("SSL_CERT_DIR") or None)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=tls),
                headers={"User-Agent": self.USER_AGENT},
            )
            self._proxies.clear()

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
        read = _resolve(read_timeout, self._read)
        files = request_data.multipart_data if request_data else {}
        phases = (connect, pool, read, _resolve(write_timeout, self._media_write))
        timeout = aiohttp.ClientTimeout(
            total=sum(phases) if files and None not in phases else None,  # type: ignore[arg-type]
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        # aiohttp's exceptions name the URL, which holds the token: raise ours outside the
        # except blocks, so that none of theirs is attached as cause or context.
        failure: Exception
        try:
            async with self._session.request(
                method, url, data=_body(request_data, files), timeout=timeout,
                allow_redirects=False, proxy=self._proxy_for(url),
            ) as response:
                answer = response.status, await response.read()
        except aiohttp.ConnectionTimeoutError:
            failure = TimedOut(NOT_SENT_MESSAGE)
            cause: BaseException | None = aiohttp.ConnectionTimeoutError(NOT_SENT_MESSAGE)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            failure, cause = TimedOut(), None
        except aiohttp.ClientError as err:
            failure = NetworkError(f"aiohttp.{type(err).__name__}: {_without(url, err)}")
            cause = None
        else:
            return self._answered(url, answer)
        raise failure from cause

    def _proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for this URL's host (looked up once per host)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            proxies = urllib.request.getproxies()
            host = parts.hostname or ""
            bypass = urllib.request.proxy_bypass_environment(host, proxies)  # type: ignore[attr-defined]
            proxy = None if bypass else proxies.get(parts.scheme) or proxies.get("all")
            if proxy is not None and not proxy.startswith(("http://", "https://")):
                raise RuntimeError(f"proxy {urlsplit(proxy).scheme}://… is not supported by "
                                   "the aiohttp client; use telegram.http_client: httpx")
            self._proxies[origin] = proxy
        return self._proxies[origin]


def _body(request_data: RequestData | None,
          files: UploadFileDict) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as PTB encodes them; a multipart form when there are files."""
    if request_data is None:
        return None
    if not files:
        return request_data.json_parameters
    form = aiohttp.FormData(quote_fields=False)  # file names as sent by httpx
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form


def _without(url: str, err: Exception) -> str:
    """The error's text, withheld when it shows the token's secret (e.g. in a URL)."""
    text = str(err)
    segments = urlsplit(url).path.split("/")
    token = next((s[3:] for s in segments if s.startswith("bot") and ":" in s), "")
    secret = token.partition(":")[2]
    return "(details withheld: they contain the bot token)" if secret and secret in text else text


class HttpxRequest(_Watched, HTTPXRequest):
    """PTB's own httpx client (``telegram.http_client: httpx``), reporting to a watch."""

    __slots__ = ("watch",)

    def __init__(self, connection_pool_size: int = 256,
                 watch: RequestWatch | None = None) -> None:
        super().__init__(connection_pool_size=connection_pool_size)
        self.watch = watch

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = _UNSET,
        write_timeout: ODVInput[float] = _UNSET,
        connect_timeout: ODVInput[float] = _UNSET,
        pool_timeout: ODVInput[float] = _UNSET,
    ) -> tuple[int, bytes]:
        return self._answered(url, await super().do_request(
            url, method, request_data=request_data, read_timeout=read_timeout,
            write_timeout=write_timeout, connect_timeout=connect_timeout,
            pool_timeout=pool_timeout))


def watch_of(bot: Bot) -> RequestWatch | None:
    """The watch ``bot``'s requests report to (None if they were not made here)."""
    request = bot.request
    return request.watch if isinstance(request, _Watched) else None


#: Connections beyond the bulk sends in flight: readers' replies, edits, answers.
REPLY_CONNECTIONS = 64


def use_http_client(builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any],
                    client: HttpClient, bulk_in_flight: int = 256) -> None:
    """Give ``builder`` the chosen request objects: one for calls, one for getUpdates, both
    reporting to one :class:`RequestWatch`. The calls' pool holds ``bulk_in_flight`` bulk
    sends (``delivery.concurrency``) and the replies beside them, so neither waits for a
    connection (a wait past ``pool_timeout`` would fail the call)."""
    watch = RequestWatch()
    pool = bulk_in_flight + REPLY_CONNECTIONS
    if client == "httpx":
        builder.request(HttpxRequest(connection_pool_size=pool, watch=watch))
        builder.get_updates_request(HttpxRequest(connection_pool_size=1, watch=watch))
        return
    builder.request(AiohttpRequest(connection_pool_size=pool, watch=watch))
    builder.get_updates_request(AiohttpRequest(connection_pool_size=1, watch=watch))
