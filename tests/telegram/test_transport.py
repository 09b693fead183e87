"""The aiohttp transport under python-telegram-bot, against a real local HTTP server.

What a deployment depends on: calls arrive as Telegram expects them (form fields, files as
multipart), a slow answer is a read timeout (the message may have arrived), no free
connection is a "not sent" timeout the delivery engine may safely retry, and no error
message carries the token from the URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import BodyPartReader, web
from aiohttp.test_utils import TestServer
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.ext import ApplicationBuilder

from bot.delivery.outcome import Action, classify
from bot.telegram.transport import REPLY_CONNECTIONS, AiohttpRequest, _without, use_http_client

TOKEN = "123456:SECRET-token-value"
_CHAT = {"id": 42, "type": "private"}


class FakeBotApi:
    """Just enough of the Bot API to see what arrived, and to be slow on request."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.delay = 0.0
        self.answering = 0
        self.most_answering = 0  # calls being answered at once, at most

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "moved":
            self.received.append({"method": method, "form": {}, "agent": ""})
            raise web.HTTPFound(f"/bot{TOKEN}/getMe")
        form: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            async for part in await request.multipart():
                assert isinstance(part, BodyPartReader)
                form[part.name or ""] = (part.filename, await part.read())
        else:
            form = dict(await request.post())
        self.received.append({"method": method, "form": form,
                              "agent": request.headers.get("User-Agent", "")})
        self.answering += 1
        self.most_answering = max(self.most_answering, self.answering)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.answering -= 1
        if method == "getMe":
            result: Any = {"id": 1, "is_bot": True, "first_name": "B", "username": "b_bot"}
        else:
            result = {"message_id": 7, "date": 0, "chat": _CHAT}
        return web.json_response({"ok": True, "result": result})


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeBotApi, str]]:
    fake = FakeBotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield fake, str(server.make_url("/bot"))
    finally:
        await server.close()


def bot_over(base_url: str, read_timeout: float | None = 5.0) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=AiohttpRequest(read_timeout=read_timeout),
               get_updates_request=AiohttpRequest(connection_pool_size=1))


async def test_calls_arrive_as_form_fields_and_answers_become_ptb_objects(
        api: tuple[FakeBotApi, str]) -> None:
    fake, base_url = api
    async with bot_over(base_url) as bot:
        message = await bot.send_message(42, "<b>Hi</b> & welcome", parse_mode="HTML")
    assert message.message_id == 7 and message.chat.id == 42
    sent = fake.received[-1]
    assert sent["method"] == "sendMessage"
    assert sent["form"]["text"] == "<b>Hi</b> & welcome"
    assert sent["form"]["chat_id"] == "42" and sent["form"]["parse_mode"] == "HTML"
    assert sent["agent"].startswith("python-telegram-bot")


async def test_files_go_as_multipart_with_their_name_and_bytes(
        api: tuple[FakeBotApi, str]) -> None:
    fake, base_url = api
    async with bot_over(base_url) as bot:
        await bot.send_document(42, document=b"%PDF-1.7 body", filename="weekly report.pdf",
                                caption="Weekly report")
    form = fake.received[-1]["form"]
    assert form["caption"] == (None, b"Weekly report")
    [(filename, content)] = [v for v in form.values() if v[0] is not None]
    assert (filename, content) == ("weekly report.pdf", b"%PDF-1.7 body")


async def test_a_slow_answer_is_a_read_timeout_the_engine_treats_as_uncertain(
        api: tuple[FakeBotApi, str]) -> None:
    fake, base_url = api
    async with bot_over(base_url, read_timeout=0.2) as bot:
        fake.delay = 1.0
        with pytest.raises(TimedOut) as caught:
            await bot.send_message(42, "slow")
    assert classify(caught.value).action is Action.UNCERTAIN  # it may have arrived


async def test_no_free_connection_in_time_is_not_sent_and_safe_to_retry(
        api: tuple[FakeBotApi, str]) -> None:
    fake, base_url = api
    request = AiohttpRequest(connection_pool_size=1, connect_timeout=0.1, pool_timeout=0.1,
                             read_timeout=2.0)
    async with Bot(TOKEN, base_url=base_url, request=request) as bot:
        fake.delay = 1.0
        holder = asyncio.ensure_future(bot.send_message(42, "holds the only connection"))
        await asyncio.sleep(0.05)
        with pytest.raises(TimedOut) as caught:
            await bot.send_message(42, "waits for it")
        await holder
    assert classify(caught.value).action is Action.TRANSIENT
    sent = [r["form"]["text"] for r in fake.received if r["method"] == "sendMessage"]
    assert sent == ["holds the only connection"]
    assert "SECRET" not in everything_said_by(caught.value)  # aiohttp's text names the URL


async def test_a_refused_connection_is_a_network_error_without_the_token() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens on that port any more
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.do_request(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe", "POST")
    finally:
        await request.shutdown()
    assert classify(caught.value).action is Action.TRANSIENT
    assert "SECRET" not in everything_said_by(caught.value)


def everything_said_by(error: BaseException) -> str:
    """The text of an exception and of everything chained to it, as a traceback shows."""
    said = []
    current: BaseException | None = error
    while current is not None:
        said.append(f"{current!s} {current!r}")
        current = current.__cause__ or current.__context__
    return " ".join(said)


@pytest.mark.parametrize("text", [
    f"Cannot connect to host for http://127.0.0.1/bot{TOKEN}/getMe",
    "redirect to http://elsewhere/bot123456:SECRET-token-value/x",
])
def test_error_text_that_shows_the_token_is_withheld(text: str) -> None:
    said = _without(f"http://127.0.0.1:8081/bot{TOKEN}/sendMessage", OSError(text))
    assert "SECRET" not in said and "withheld" in said
    assert _without(f"http://127.0.0.1/bot{TOKEN}/getMe", OSError("reset by peer")) \
        == "reset by peer"


async def test_redirects_are_not_followed(api: tuple[FakeBotApi, str]) -> None:
    fake, base_url = api
    request = AiohttpRequest()
    await request.initialize()
    try:
        status, _ = await request.do_request(f"{base_url}{TOKEN}/moved", "POST")
    finally:
        await request.shutdown()
    assert status == 302
    assert [r["method"] for r in fake.received] == ["moved"]


async def test_the_proxy_named_by_the_environment_is_used_unless_bypassed(
        api: tuple[FakeBotApi, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, base_url = api
    # The fake API doubles as an HTTP proxy: aiohttp sends it the absolute URL, whose
    # path it serves. Without the proxy the made-up host cannot be reached at all.
    for name in ("http_proxy", "all_proxy", "ALL_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", base_url.removesuffix("/bot"))
    async with bot_over("http://api.telegram.invalid/bot") as bot:
        assert bot.username == "b_bot"
    assert [r["method"] for r in fake.received] == ["getMe"]
    monkeypatch.setenv("NO_PROXY", "api.telegram.invalid")
    with pytest.raises(NetworkError):
        async with bot_over("http://api.telegram.invalid/bot"):
            pass
    assert len(fake.received) == 1


async def test_an_unopened_transport_says_so() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:1/bot/getMe", "POST")


async def test_the_pool_holds_every_bulk_send_in_flight_and_replies_beside_them(
        api: tuple[FakeBotApi, str]) -> None:
    """``delivery.concurrency`` sends in flight (400 for a paid broadcast far from Telegram)
    plus readers' replies are all on the wire at once, none queued for a connection."""
    fake, base_url = api
    builder = ApplicationBuilder().token(TOKEN).base_url(base_url)
    use_http_client(builder, "aiohttp", bulk_in_flight=400)  # httpx: the same pool size
    application = builder.build()
    fake.delay = 2.0  # long enough for every call to be sent before the first answer
    async with application.bot as bot:
        calls = 400 + REPLY_CONNECTIONS
        sent = await asyncio.gather(*(bot.send_message(42, f"m{n}") for n in range(calls)),
                                    return_exceptions=True)
    assert [s for s in sent if isinstance(s, BaseException)] == []
    assert fake.most_answering == calls
