"""The sandbox as Telegram with a webhook set: setWebhook's checks, posts with the secret
header, retries with a growing pause, getUpdates refused while the webhook is set."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, Conflict

from bot.sandbox import SandboxServer
from bot.sandbox.server import SECRET_HEADER

SECRET = "s3cret_Token-42"


@dataclass
class Receiver:
    """A webhook endpoint on this machine that records every post it gets."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def update_ids(self) -> list[int]:
        return [post["body"]["update_id"] for post in self.posts]

    async def wait_posts(self, count: int) -> None:
        async with asyncio.timeout(15):
            while len(self.posts) < count:
                self.arrived.clear()
                await self.arrived.wait()


Answer = Callable[[Receiver, web.Request], Awaitable[web.Response]]


async def accept(receiver: Receiver, request: web.Request) -> web.Response:
    return web.Response(status=200)


@asynccontextmanager
async def receiver(answer: Answer = accept) -> AsyncIterator[Receiver]:
    """A webhook endpoint at ``/hook``; ``answer`` decides each answer (after recording)."""
    found = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        found.posts.append({"headers": dict(request.headers),
                            "body": json.loads(await request.read())})
        found.arrived.set()
        return await answer(found, request)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


async def delivered(server: SandboxServer, update_id: int) -> None:
    """The barrier: the webhook has answered a post of ``update_id`` with 2xx."""
    record = server.state.updates[update_id]
    async with asyncio.timeout(15):
        while record.fetched_at is None:
            await server.state.wait_change(1.0)


# -- setWebhook: what Telegram refuses ----------------------------------------------------
@pytest.mark.parametrize(
    ("url", "description"),
    [
        ("http://bot.example.org/hook", "An HTTPS URL must be provided for webhook"),
        ("https://bot.example.org:8080/hook", "only on ports 80, 88, 443 or 8443"),
        ("https://bot.example.org/hook", "only to this machine"),
        ("ftp://127.0.0.1/hook", "invalid URL"),
    ],
)
async def test_set_webhook_refuses_what_telegram_refuses_and_any_other_machine(
        bot: Bot, server: SandboxServer, url: str, description: str) -> None:
    with pytest.raises(BadRequest, match=f"(?i){description}"):  # PTB rewords the case
        await bot.set_webhook(url)
    assert server.state.webhook is None
    assert (await bot.get_webhook_info()).url == ""


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "x" * 257])
async def test_set_webhook_refuses_a_secret_outside_telegrams_rule(
        bot: Bot, server: SandboxServer, secret: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)secret token"):
        await bot.set_webhook("http://127.0.0.1:9/hook", secret_token=secret)
    assert server.state.webhook is None


async def test_webhook_info_tells_the_url_and_pending_updates_never_the_secret(
        bot: Bot, server: SandboxServer) -> None:
    await server.user_message("/start", user_id=42)
    await bot.set_webhook("http://127.0.0.1:9/hook", secret_token=SECRET, max_connections=7)
    info = await bot.get_webhook_info()
    assert (info.url, info.max_connections) == ("http://127.0.0.1:9/hook", 7)
    assert info.pending_update_count == 1
    assert SECRET not in json.dumps(info.to_dict())
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


# -- getUpdates while a webhook is set -------------------------------------------------------
async def test_get_updates_is_refused_while_a_webhook_is_set(bot: Bot,
                                                             server: SandboxServer) -> None:
    post = await server.user_message("/start", user_id=42)
    await bot.set_webhook("http://127.0.0.1:9/hook")  # nothing listens: stays pending
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook()
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == post.update_id


async def test_a_webhook_set_during_a_long_poll_ends_it_with_409(
        bot: Bot, server: SandboxServer) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    async with asyncio.timeout(5):  # the barrier: the poll has reached the server
        while not server.calls("getUpdates"):
            await server.state.wait_change(1.0)
    await bot.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(Conflict, match="webhook is active"):
        await poll


# -- posting updates ---------------------------------------------------------------------------
async def test_updates_are_posted_as_json_with_the_secret_header(
        bot: Bot, server: SandboxServer) -> None:
    async with receiver() as hook:
        await bot.set_webhook(hook.url, secret_token=SECRET)
        post = await server.user_message("/latest", user_id=42)
        await delivered(server, post.update_id)
    [got] = hook.posts
    assert got["headers"][SECRET_HEADER] == SECRET
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["body"]["update_id"] == post.update_id
    assert got["body"]["message"]["text"] == "/latest"
    assert server.state.pending == []  # delivered updates are forgotten, as getUpdates' offset
    assert [a.status for a in server.state.webhook_attempts] == [200]


async def test_without_a_secret_no_secret_header_is_sent(bot: Bot,
                                                         server: SandboxServer) -> None:
    async with receiver() as hook:
        await bot.set_webhook(hook.url)
        post = await server.user_message("hello", user_id=42)
        await delivered(server, post.update_id)
    assert SECRET_HEADER not in hook.posts[0]["headers"]


async def test_a_failed_post_is_retried_with_a_growing_pause_until_accepted(
        bot: Bot, server: SandboxServer) -> None:
    server.webhook_delivery.first_retry = 0.1
    answers = iter([500, 503, 200])

    async def flaky(found: Receiver, request: web.Request) -> web.Response:
        return web.Response(status=next(answers))

    async with receiver(flaky) as hook:
        await bot.set_webhook(hook.url, secret_token=SECRET)
        post = await server.user_message("/start", user_id=42)
        await delivered(server, post.update_id)
    attempts = server.state.webhook_attempts
    assert [a.status for a in attempts] == [500, 503, 200]
    assert hook.update_ids() == [post.update_id] * 3
    first_pause = attempts[1].started - attempts[0].finished
    second_pause = attempts[2].started - attempts[1].finished
    assert first_pause >= 0.1 and second_pause >= 0.2  # doubled after the second failure
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"


async def test_a_webhook_nobody_listens_on_is_retried_and_keeps_the_update(
        bot: Bot, server: SandboxServer) -> None:
    server.webhook_delivery.first_retry = 0.05
    async with receiver() as hook:
        url = hook.url
    await bot.set_webhook(url)  # the port is closed now: connection refused
    post = await server.user_message("/start", user_id=42)
    async with asyncio.timeout(15):
        while len(server.state.webhook_attempts) < 2:
            await server.state.wait_change(1.0)
    assert all(a.status is None and a.error for a in server.state.webhook_attempts)
    assert "Connection failed" in ((await bot.get_webhook_info()).last_error_message or "")
    await bot.delete_webhook()  # back to polling: the update is still there
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == post.update_id


@pytest.mark.parametrize("max_connections", [1, 2])
async def test_at_most_max_connections_posts_at_once_oldest_first(
        bot: Bot, server: SandboxServer, max_connections: int) -> None:
    release = asyncio.Event()
    in_flight_at_first_post: list[frozenset[int]] = []

    async def held(found: Receiver, request: web.Request) -> web.Response:
        if len(found.posts) == 1:  # the pass that posted it is over: what did it start?
            in_flight_at_first_post.append(server.webhook_delivery.in_flight)
        await release.wait()
        return web.Response(status=200)

    posts = [await server.user_message(f"message {i}", user_id=42) for i in range(5)]
    ids = [p.update_id for p in posts]
    async with receiver(held) as hook:
        await bot.set_webhook(hook.url, max_connections=max_connections)
        await hook.wait_posts(1)
        release.set()
        for update_id in ids:
            await delivered(server, update_id)
    assert in_flight_at_first_post == [frozenset(ids[:max_connections])]
    assert sorted(hook.update_ids()) == ids  # each once
    if max_connections == 1:
        assert hook.update_ids() == ids


async def test_drop_pending_updates_with_set_webhook_forgets_the_queue(
        bot: Bot, server: SandboxServer) -> None:
    await server.user_message("old", user_id=42)
    async with receiver() as hook:
        await bot.set_webhook(hook.url, drop_pending_updates=True)
        post = await server.user_message("new", user_id=42)
        await delivered(server, post.update_id)
    assert hook.update_ids() == [post.update_id]
