"""The web chat's server side, without a browser: the starting world, what the page is
sent (text and entities, never HTML), paging, the live event stream, the clock control,
inline results, the command menu, and the guards around all of it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeChatAdministrators,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
)

from bot.sandbox import SandboxOptions, SandboxServer
from bot.sandbox.state import DEMO_USER_ID, ChatType, MemberStatus
from bot.sandbox.web import CONTENT_SECURITY_POLICY, WebChat
from bot.sandbox.world import (
    CHANNEL_ID,
    FORUM_ID,
    FORUM_TOPICS,
    GROUP_ADMIN_ID,
    GROUP_ID,
    PEOPLE,
    READER_ID,
    populate_world,
)
from tests.sandbox.conftest import make_request

ROLES = {person.id: person.role for person in PEOPLE}


@dataclass
class FakeBotClock:
    """The bot's side of the clock control, recorded."""

    due: datetime | None
    moved: list[datetime] = field(default_factory=list)
    server: SandboxServer | None = None

    async def next_briefing(self, chat_id: int, thread_id: int | None) -> datetime | None:
        return self.due

    async def clock_moved(self) -> None:
        assert self.server is not None
        self.moved.append(self.server.state.clock.now())


@pytest.fixture
async def web_server() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(SandboxOptions())
    server.web_chat = WebChat(server, ROLES)
    populate_world(server)
    async with server:
        yield server


@pytest.fixture
async def bot(web_server: SandboxServer, tls_context: Any) -> AsyncIterator[Bot]:
    client = Bot("123:ABC", base_url=web_server.base_url, request=make_request(tls_context))
    async with client:
        yield client


@pytest.fixture
async def http(web_server: SandboxServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(web_server.url) as session:
        yield session


async def call(http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None,
               *, status: int = 200) -> Any:
    if body is None:
        response = await http.get(path)
    else:
        response = await http.post(path, json=body)
    async with response:
        data = await response.json()
        assert response.status == status, data
        return data["result"] if status == 200 else data["error"]


async def test_the_starting_world(http: aiohttp.ClientSession) -> None:
    world = await call(http, "/web/api/world")
    assert [(p["id"], p["name"]) for p in world["people"]] == [
        (DEMO_USER_ID, "Ada"), (READER_ID, "Ben"), (GROUP_ADMIN_ID, "Gwen")]
    assert "administrator" in world["people"][0]["role"]
    chats = {c["id"]: c for c in world["chats"]}
    assert {DEMO_USER_ID, READER_ID, GROUP_ADMIN_ID} <= set(chats)  # each one's private chat
    group = chats[GROUP_ID]
    assert group["type"] == "group"
    assert group["members"] == {str(DEMO_USER_ID): "member", str(READER_ID): "member",
                                str(GROUP_ADMIN_ID): "administrator"}
    forum = chats[FORUM_ID]
    assert forum["is_forum"] and [(t["id"], t["name"]) for t in forum["topics"]] == \
        sorted(FORUM_TOPICS.items())
    channel = chats[CHANNEL_ID]
    assert channel["type"] == "channel" and channel["bot_status"] == "administrator"
    assert channel["members"][str(DEMO_USER_ID)] == "creator"


async def test_messages_reach_the_page_as_text_and_entities_never_html(
        web_server: SandboxServer, bot: Bot, http: aiohttp.ClientSession) -> None:
    keyboard = InlineKeyboardMarkup([
        [InlineKeyboardButton("Older ›", callback_data="o:1")],
        [InlineKeyboardButton("Read", url="https://t.me/story_bot?start=s_1")]])
    html = "<b>Title &lt;script&gt;</b> and <tg-spoiler>a secret</tg-spoiler>"
    await bot.send_message(DEMO_USER_ID, html, parse_mode="HTML", reply_markup=keyboard)
    page = await call(http, f"/web/api/chats/{DEMO_USER_ID}/messages")
    [message] = page["messages"]
    assert "html" not in message and html not in json.dumps(page)
    assert message["text"] == "Title <script> and a secret"
    assert [(e["type"], e["offset"], e["length"]) for e in message["entities"]] == [
        ("bold", 0, 14), ("spoiler", 19, 8)]
    assert message["keyboard"] == [
        [{"number": 1, "text": "Older ›", "kind": "callback"}],
        [{"number": 2, "text": "Read", "kind": "url", "url": "https://t.me/story_bot?start=s_1"}]]


async def test_a_long_chat_comes_in_pages_newest_first(
        web_server: SandboxServer, http: aiohttp.ClientSession) -> None:
    for n in range(1, 451):
        await web_server.user_message(f"note {n}", user_id=READER_ID)
    first = await call(http, f"/web/api/chats/{READER_ID}/messages")
    assert [m["text"] for m in first["messages"]][::199] == ["note 251", "note 450"]
    assert first["more"]
    oldest = first["messages"][0]["id"]
    second = await call(http, f"/web/api/chats/{READER_ID}/messages?before={oldest}")
    assert (second["messages"][0]["text"], second["messages"][-1]["text"]) == \
        ("note 51", "note 250")
    third = await call(http, f"/web/api/chats/{READER_ID}/messages"
                             f"?before={second['messages'][0]['id']}")
    assert len(third["messages"]) == 50 and not third["more"]


async def test_a_forum_topic_shows_its_own_messages(
        web_server: SandboxServer, http: aiohttp.ClientSession) -> None:
    await web_server.user_message("in general", user_id=READER_ID, chat_id=FORUM_ID)
    await web_server.user_message("about science", user_id=READER_ID, chat_id=FORUM_ID,
                                  thread_id=3)
    general = await call(http, f"/web/api/chats/{FORUM_ID}/messages?thread=0")
    science = await call(http, f"/web/api/chats/{FORUM_ID}/messages?thread=3")
    assert [m["text"] for m in general["messages"]] == ["in general"]
    assert [m["text"] for m in science["messages"]] == ["about science"]


async def read_events(response: aiohttp.ClientResponse, wanted: int) -> list[tuple[str, Any]]:
    """The next ``wanted`` events of a server-sent event stream, as (event, data)."""
    events: list[tuple[str, Any]] = []
    kind, data = "message", ""
    async with asyncio.timeout(10):
        while len(events) < wanted:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and data:
                events.append((kind, json.loads(data)))
                kind, data = "message", ""
    return events


async def test_the_event_stream_pushes_new_messages_and_edits(
        web_server: SandboxServer, bot: Bot, http: aiohttp.ClientSession) -> None:
    sent = await bot.send_message(READER_ID, "Sending… 0 of 2")
    since = web_server.state.revision
    async with http.get(f"/web/api/events?since={since}") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        await bot.edit_message_text("Sending… 2 of 2", chat_id=READER_ID,
                                    message_id=sent.message_id)
        await bot.send_message(GROUP_ID, "In the group")
        (kind, edited), (_, fresh) = await read_events(stream, 2)
    assert kind == "message"
    assert (edited["id"], edited["text"], edited["edited"]) == \
        (sent.message_id, "Sending… 2 of 2", True)
    assert (fresh["chat_id"], fresh["text"], fresh["edited"]) == (GROUP_ID, "In the group", False)


async def test_a_reconnecting_stream_resumes_after_the_last_event_it_saw(
        web_server: SandboxServer, bot: Bot, http: aiohttp.ClientSession) -> None:
    since = web_server.state.revision
    await bot.send_message(READER_ID, "one")
    seen = web_server.state.revision
    await bot.send_message(READER_ID, "two")
    async with http.get(f"/web/api/events?since={since}",
                        headers={"Last-Event-ID": str(seen)}) as stream:
        [(_, message)] = await read_events(stream, 1)
    assert message["text"] == "two"


async def test_the_clock_jumps_for_both_and_runs_on(
        web_server: SandboxServer, http: aiohttp.ClientSession) -> None:
    assert web_server.web_chat is not None
    due = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
    web_server.web_chat.bot_clock = hooks = FakeBotClock(due, server=web_server)
    answer = await call(http, "/web/api/clock", {"before_briefing": {"chat_id": DEMO_USER_ID}})
    assert datetime.fromisoformat(answer["now"]) - (due - timedelta(minutes=1)) \
        < timedelta(seconds=5)
    assert len(hooks.moved) == 1 and hooks.moved[0] < due  # the scan ran after the jump
    at = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    await call(http, "/web/api/clock", {"at": at.isoformat()})
    first = web_server.state.clock.now()
    assert at <= first < at + timedelta(seconds=5)
    async with asyncio.timeout(5):
        while web_server.state.clock.now() == first:  # noqa: ASYNC110 - time itself runs on
            await asyncio.sleep(0.01)
    world = await call(http, "/web/api/world")
    assert world["clock"]["generation"] == 2 and world["clock"]["pretended"]

    hooks.due = None
    error = await call(http, "/web/api/clock", {"before_briefing": {"chat_id": READER_ID}},
                       status=404)
    assert "no briefing" in error
    assert "offset" in await call(http, "/web/api/clock", {"at": "2025-05-01T12:00"},
                                  status=400)


async def test_a_picked_inline_result_is_the_users_message_via_the_bot(
        web_server: SandboxServer, bot: Bot, http: aiohttp.ClientSession) -> None:
    async def answer() -> None:
        [update] = await bot.get_updates(timeout=5)
        assert update.inline_query is not None
        await bot.answer_inline_query(update.inline_query.id, [InlineQueryResultArticle(
            "s1", "Night trains return",
            InputTextMessageContent("<b>Night trains</b> return", parse_mode="HTML"),
            description="1 Apr")])
        await bot.get_updates(offset=update.update_id + 1, timeout=0)

    answering = asyncio.create_task(answer())
    found = await call(http, "/web/api/inline",
                       {"query": "trains", "user_id": READER_ID, "chat_id": GROUP_ID})
    await answering
    assert found["results"] == [{"id": "s1", "title": "Night trains return",
                                 "description": "1 Apr"}]
    sent = await call(http, "/web/api/inline/send",
                      {"query_id": found["query_id"], "result_id": "s1", "chat_id": GROUP_ID})
    assert (sent["text"], sent["via_bot"], sent["sender"]["id"]) == \
        ("Night trains return", "story_bot", READER_ID)
    assert sent["entities"] == [{"type": "bold", "offset": 0, "length": 12}]
    [update] = await bot.get_updates(timeout=5)
    assert update.message is not None and update.message.via_bot is not None
    assert update.message.chat.id == GROUP_ID


async def test_the_command_menu_is_the_narrowest_scope_with_commands(
        web_server: SandboxServer, bot: Bot, http: aiohttp.ClientSession) -> None:
    await bot.set_my_commands([BotCommand("latest", "newest stories")])
    await bot.set_my_commands([BotCommand("latest", "newest stories"),
                               BotCommand("broadcast", "announce")],
                              scope=BotCommandScopeChat(DEMO_USER_ID))
    await bot.set_my_commands([BotCommand("subscribe", "the group's briefing")],
                              scope=BotCommandScopeChatAdministrators(GROUP_ID))

    async def menu(chat_id: int, user_id: int) -> list[str]:
        found = await call(http, f"/web/api/commands?chat_id={chat_id}&user_id={user_id}")
        return [c["command"] for c in found]

    assert await menu(DEMO_USER_ID, DEMO_USER_ID) == ["latest", "broadcast"]
    assert await menu(READER_ID, READER_ID) == ["latest"]
    assert await menu(GROUP_ID, GROUP_ADMIN_ID) == ["subscribe"]
    assert await menu(GROUP_ID, READER_ID) == ["latest"]


async def test_acting_users_write_only_where_they_may(
        web_server: SandboxServer, http: aiohttp.ClientSession) -> None:
    sent = await call(http, "/web/api/send",
                      {"chat_id": FORUM_ID, "thread_id": 2, "user_id": GROUP_ADMIN_ID,
                       "text": "/subscribe 08:00 UTC"})
    assert (sent["thread_id"], sent["sender"]["name"]) == (2, "Gwen")
    assert [e["type"] for e in sent["entities"]] == ["bot_command"]
    assert "private chat" in await call(
        http, "/web/api/send", {"chat_id": DEMO_USER_ID, "user_id": READER_ID, "text": "hi"},
        status=400)
    assert "administrator" in await call(
        http, "/web/api/send", {"chat_id": CHANNEL_ID, "user_id": READER_ID, "text": "hi"},
        status=400)
    assert web_server.state.chats[CHANNEL_ID].type is ChatType.CHANNEL
    assert web_server.state.chats[GROUP_ID].members[GROUP_ADMIN_ID] is \
        MemberStatus.ADMINISTRATOR


async def test_only_the_page_on_this_machine_may_act(
        web_server: SandboxServer, http: aiohttp.ClientSession) -> None:
    body = {"chat_id": DEMO_USER_ID, "user_id": DEMO_USER_ID, "text": "/start"}
    foreign = await http.post("/web/api/send", json=body,
                              headers={"Origin": "http://evil.example"})
    assert foreign.status == 403
    rebinding = await http.get("/web/api/world", headers={"Host": "evil.example"})
    assert rebinding.status == 403
    form = await http.post("/web/api/send", data=body)
    assert form.status == 415
    assert web_server.messages(DEMO_USER_ID) == []  # none of them was sent
    own = await http.post("/web/api/send", json=body, headers={"Origin": web_server.url})
    assert own.status == 200


async def test_the_page_runs_only_its_own_script(http: aiohttp.ClientSession) -> None:
    for path in ("/", "/static/app.js", "/static/style.css", "/web/api/world"):
        async with http.get(path) as response:
            assert response.status == 200
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    static = resources.files("bot.sandbox.web") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>']
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    script = (static / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"app.js uses {sink}"
