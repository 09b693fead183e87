"""A real PTB ``Bot`` against the sandbox over HTTP: what Telegram accepts and refuses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from bot.sandbox import Fault, FaultKind, FloodLimits, SandboxServer

USER = 42


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=label.lower()) for label in labels]]
    )


@pytest.fixture
async def known_user(server: SandboxServer) -> int:
    await server.user_message("hello", user_id=USER)
    return USER


async def test_get_me_is_the_configured_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == "story_bot"
    assert me.is_bot


async def test_send_html_message_is_stored_as_the_user_sees_it(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    sent = await bot.send_message(
        known_user,
        '<b>Harbour</b> &amp; <a href="https://example.org/a?x=1&amp;y=2">more</a>',
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard("Newer", "Older"),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        disable_notification=True,
    )
    assert sent.text == "Harbour & more"
    assert [e.type for e in sent.entities] == ["bold", "text_link"]
    stored = server.bot_messages(known_user)[-1]
    assert stored.text == "Harbour & more"
    assert stored.html is not None and stored.html.startswith("<b>Harbour</b>")
    assert stored.entities[1]["url"] == "https://example.org/a?x=1&y=2"
    assert [b["text"] for b in stored.buttons] == ["Newer", "Older"]
    assert stored.disable_notification
    assert stored.link_preview_options == {"is_disabled": True}


@pytest.mark.parametrize(
    ("text", "visible", "entities"),
    [
        ("<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <ins>i</ins> <s>s</s>",
         "bold s i e u i s",
         [("bold", 0, 4), ("bold", 5, 1), ("italic", 7, 1), ("italic", 9, 1),
          ("underline", 11, 1), ("underline", 13, 1), ("strikethrough", 15, 1)]),
        ("<strike>s</strike> <del>d</del> <code>c</code> <pre>p</pre>", "s d c p",
         [("strikethrough", 0, 1), ("strikethrough", 2, 1), ("code", 4, 1), ("pre", 6, 1)]),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1", [("pre", 0, 5)]),
        ("<blockquote>q</blockquote> <blockquote expandable>long</blockquote>", "q long",
         [("blockquote", 0, 1), ("expandable_blockquote", 2, 4)]),
        ('<tg-spoiler>x</tg-spoiler> <span class="tg-spoiler">y</span>', "x y",
         [("spoiler", 0, 1), ("spoiler", 2, 1)]),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&quot;&#65;&#x42;',
         '👍 <>"AB', [("custom_emoji", 0, 2)]),  # the emoji is 2 UTF-16 units
        ("<b>nested <i>ok <u>deep</u></i></b>", "nested ok deep",
         [("bold", 0, 14), ("italic", 7, 7), ("underline", 10, 4)]),
    ],
)
async def test_supported_html_is_accepted(
    bot: Bot, server: SandboxServer, known_user: int, text: str, visible: str,
    entities: list[tuple[str, int, int]],
) -> None:
    sent = await bot.send_message(known_user, text, parse_mode=ParseMode.HTML)
    stored = server.bot_messages(known_user)[-1]
    assert stored.message_id == sent.message_id
    assert (stored.text, stored.html) == (visible, text)  # what the reader sees, and the source
    assert [(e["type"], e["offset"], e["length"]) for e in stored.entities] == entities
    assert sent.text == visible


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<script>alert(1)</script>", 'unsupported start tag "script"'),
        ("<b>open", "can't find end tag"),
        ("<b><i>x</b></i>", "unmatched end tag"),
        ("a &nbsp; b", "unsupported HTML entity"),
        ("</b>", "unexpected end tag"),
        ('<span class="x">y</span>', 'unsupported start tag "span"'),
        ("1 < 2", "unsupported start tag"),
    ],
)
async def test_bad_html_is_refused_like_telegram(
    bot: Bot, known_user: int, text: str, detail: str
) -> None:
    with pytest.raises(BadRequest, match="parse entities") as info:
        await bot.send_message(known_user, text, parse_mode=ParseMode.HTML)
    assert detail.lower() in info.value.message.lower()


async def test_text_limit_counts_utf16_units(bot: Bot, known_user: int) -> None:
    await bot.send_message(known_user, "x" * 4096)
    await bot.send_message(known_user, "😀" * 2048)
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(known_user, "x" * 4097)
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(known_user, "😀" * 2048 + "x")
    # tags do not count, the visible text does
    await bot.send_message(known_user, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="text is empty"):
        await bot.send_message(known_user, "<b> </b>", parse_mode=ParseMode.HTML)


async def test_more_than_100_entities_is_accepted_and_counted(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    await bot.send_message(known_user, "<b>x</b> " * 150, parse_mode=ParseMode.HTML)
    stored = server.bot_messages(known_user)[-1]
    assert stored.entity_count == 150
    assert len(stored.entities) == 100


async def test_callback_data_over_64_bytes_is_refused(bot: Bot, known_user: int) -> None:
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="x" * 64)]])
    await bot.send_message(known_user, "fine", reply_markup=ok)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("no", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(known_user, "refused", reply_markup=too_long)


async def test_unknown_chat_is_not_found(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"[Cc]hat not found"):
        await bot.send_message(999, "anyone?")


async def test_edit_message_text_keeps_history_and_refuses_no_change(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    sent = await bot.send_message(known_user, "page 1", reply_markup=keyboard("Next"))
    edited = await bot.edit_message_text(
        "page 2", chat_id=known_user, message_id=sent.message_id, reply_markup=keyboard("Back")
    )
    assert not isinstance(edited, bool)  # an edited bot message comes back as the Message
    assert (edited.message_id, edited.text) == (sent.message_id, "page 2")
    assert edited.edit_date is not None
    assert edited.reply_markup is not None
    assert [b.text for row in edited.reply_markup.inline_keyboard for b in row] == ["Back"]
    stored = server.bot_messages(known_user)[-1]
    assert stored.text == "page 2"
    assert [v.text for v in stored.edits] == ["page 1"]
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text(
            "page 2", chat_id=known_user, message_id=sent.message_id, reply_markup=keyboard("Back")
        )
    await bot.edit_message_reply_markup(known_user, sent.message_id, reply_markup=None)
    assert server.bot_messages(known_user)[-1].buttons == []
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(known_user, sent.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=known_user, message_id=999)


async def test_delete_copy_photo_and_reply(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    first = await bot.send_message(known_user, "<i>story</i>", parse_mode=ParseMode.HTML)
    reply = await bot.send_message(
        known_user, "reply", reply_parameters=ReplyParameters(first.message_id)
    )
    assert reply.reply_to_message is not None
    server.add_chat(-100500, "channel", title="News", username="news",
                    bot_status="administrator")
    copied = await bot.copy_message("@news", known_user, first.message_id)
    assert server.bot_messages(-100500)[-1].message_id == copied.message_id
    assert server.bot_messages(-100500)[-1].text == "story"
    server.add_chat(-100501, "channel", title="Read only")  # the bot only reads there
    with pytest.raises(BadRequest, match=r"(?i)need administrator rights"):
        await bot.send_message(-100501, "hello")
    photo = await bot.send_photo(
        known_user, b"\x89PNG fake bytes", caption="<b>cap</b>", parse_mode=ParseMode.HTML
    )
    again = await bot.send_photo(known_user, photo.photo[-1].file_id)
    assert again.photo[-1].file_id == photo.photo[-1].file_id
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(known_user, "no-such-file")
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(known_user, photo.photo[-1].file_id, caption="c" * 1025)
    assert await bot.delete_message(known_user, first.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(known_user, first.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to copy not found"):
        await bot.copy_message(known_user, known_user, first.message_id)
    assert server.bot_messages(known_user, include_deleted=True)[0].deleted


async def test_commands_are_stored_per_scope(bot: Bot, known_user: int) -> None:
    await bot.set_my_commands([BotCommand("latest", "Newest stories")])
    scope = BotCommandScopeChat(known_user)
    await bot.set_my_commands([BotCommand("story", "Read one story")], scope=scope)
    assert [c.command for c in await bot.get_my_commands()] == ["latest"]
    assert [c.command for c in await bot.get_my_commands(scope=scope)] == ["story"]
    await bot.delete_my_commands(scope=scope)
    assert await bot.get_my_commands(scope=scope) == ()
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_chat_members_and_admins(bot: Bot, server: SandboxServer) -> None:
    server.add_chat(-2001, "supergroup", title="Newsroom", creator=1, admins=[2], members=[3])
    chat = await bot.get_chat(-2001)
    assert chat.title == "Newsroom"
    statuses = {uid: (await bot.get_chat_member(-2001, uid)).status for uid in (1, 2, 3)}
    assert statuses == {1: "creator", 2: "administrator", 3: "member"}
    await server.user_message("hi", user_id=4)
    assert (await bot.get_chat_member(-2001, 4)).status == "left"
    admins = await bot.get_chat_administrators(-2001)
    assert sorted(a.user.id for a in admins) == [1, 2]
    await server.bot_removed(-2001, by_user_id=1)
    assert (await bot.get_chat_member(-2001, server.options.bot.id)).status == "kicked"
    with pytest.raises(Forbidden, match="kicked"):
        await bot.send_message(-2001, "still here?")


async def test_forum_threads_are_recorded(bot: Bot, server: SandboxServer) -> None:
    server.add_chat(-3001, "supergroup", title="Forum", is_forum=True, topics=[7])
    post = await server.user_message("/latest@story_bot", user_id=5, chat_id=-3001, thread_id=7)
    assert post.update["message"]["is_topic_message"] is True
    assert post.update["message"]["entities"][0] == {
        "type": "bot_command",
        "offset": 0,
        "length": 17,
    }
    await bot.send_message(-3001, "in the topic", message_thread_id=7)
    assert server.bot_messages(-3001, thread_id=7)[0].text == "in the topic"
    with pytest.raises(BadRequest, match="thread not found"):
        await bot.send_message(-3001, "nowhere", message_thread_id=99)
    await bot.send_chat_action(-3001, "typing", message_thread_id=7)


async def test_flood_control_answers_retry_after(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    server.set_flood_limits(FloodLimits(per_chat_per_second=2))
    await bot.send_message(known_user, "1")
    await bot.send_message(known_user, "2")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(known_user, "3")
    assert info.value.retry_after == timedelta(seconds=1)
    assert server.flood_refusals == 1
    assert server.calls("sendMessage")[-1].status == 429


async def test_group_flood_limit_per_minute(bot: Bot, server: SandboxServer) -> None:
    server.add_chat(-4001, "group", title="G")
    server.set_flood_limits(FloodLimits(per_group_per_minute=2))
    await bot.send_message(-4001, "1")
    await bot.send_message(-4001, "2")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(-4001, "3")
    retry_after = info.value.retry_after
    assert isinstance(retry_after, timedelta)  # PTB 22 gives a timedelta (an int before)
    assert timedelta(seconds=50) < retry_after <= timedelta(seconds=60)


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (Fault(FaultKind.FORBIDDEN), Forbidden, "blocked by the user"),
        (
            Fault(FaultKind.FORBIDDEN, description="Forbidden: user is deactivated"),
            Forbidden,
            "deactivated",
        ),
        (
            Fault(FaultKind.BAD_REQUEST, description="Bad Request: chat not found"),
            BadRequest,
            "not found",
        ),
        (Fault(FaultKind.SERVER_ERROR), NetworkError, "Bad Gateway"),
        (Fault(FaultKind.FLOOD, retry_after=7), RetryAfter, "Retry in"),
    ],
)
async def test_injected_faults_raise_ptb_exceptions(
    bot: Bot,
    server: SandboxServer,
    known_user: int,
    fault: Fault,
    error: type[Exception],
    match: str,
) -> None:
    fault.method = "sendMessage"
    server.inject(fault)
    with pytest.raises(error, match=match):
        await bot.send_message(known_user, "x")
    await bot.send_message(known_user, "only the next call failed")


async def test_fault_for_one_chat_forever(bot: Bot, server: SandboxServer, known_user: int) -> None:
    await server.user_message("hi", user_id=43)
    server.inject(Fault(FaultKind.SERVER_ERROR, chat_id=43, times=None))
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.send_message(43, "x")
    await bot.send_message(known_user, "other chats are fine")


async def test_migration_gives_new_chat_id(bot: Bot, server: SandboxServer) -> None:
    server.add_chat(-5001, "group", title="Old", members=[1])
    server.inject(Fault(FaultKind.MIGRATE, migrate_to_chat_id=-1005001))
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(-5001, "x")
    assert info.value.new_chat_id == -1005001
    with pytest.raises(ChatMigrated):
        await bot.send_message(-5001, "still old")
    await bot.send_message(-1005001, "new home")
    assert server.bot_messages(-1005001)[-1].text == "new home"


async def test_blocked_user_gets_forbidden_until_writing_again(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    update_id = await server.block_bot(known_user)
    assert (
        server.state.updates[update_id].payload["my_chat_member"]["new_chat_member"]["status"]
        == "kicked"
    )
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(known_user, "x")
    await server.user_message("/start", user_id=known_user)
    await bot.send_message(known_user, "welcome back")


async def test_slow_answer_times_out_but_is_sent(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    server.inject(Fault(FaultKind.SLOW, delay=0.5))
    with pytest.raises(TimedOut):
        await bot.send_message(known_user, "slow", read_timeout=0.1)
    call = server.calls("sendMessage")[-1]
    while call.status is None:
        await server.state.wait_change(1.0)
    assert server.bot_messages(known_user)[-1].text == "slow"


async def test_long_polling_returns_update_sent_while_waiting(
    bot: Bot, server: SandboxServer
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    while not server.calls("getUpdates"):
        await server.state.wait_change(1.0)
    post = await server.user_message("/start", user_id=7)
    updates = await asyncio.wait_for(poll, 3)
    assert [u.update_id for u in updates] == [post.update_id]
    assert updates[0].message is not None and updates[0].message.text == "/start"
    # not confirmed yet: delivered again; confirmed with offset: gone
    assert len(await bot.get_updates(timeout=0)) == 1
    assert await bot.get_updates(offset=post.update_id + 1, timeout=0) == ()
    second = await server.user_message("again", user_id=7)
    assert second.update_id > post.update_id
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [second.update_id]


async def test_allowed_updates_filter(bot: Bot, server: SandboxServer) -> None:
    await server.user_message("hi", user_id=8)
    assert await bot.get_updates(allowed_updates=["callback_query"], timeout=0) == ()


async def test_fixed_clock_sets_message_dates(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    when = datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    server.set_now(when)
    sent = await bot.send_message(known_user, "dated")
    assert sent.date == when
    server.state.clock.advance(60)
    assert (await bot.send_message(known_user, "later")).date == when + timedelta(minutes=1)


async def test_calls_are_recorded_in_order(
    bot: Bot, server: SandboxServer, known_user: int
) -> None:
    await bot.send_chat_action(known_user, "typing")
    await bot.send_message(known_user, "x")
    methods = [c.method for c in server.calls()]
    assert methods[-2:] == ["sendChatAction", "sendMessage"]
    last = server.calls()[-1]
    assert last.chat_id == known_user and last.status == 200 and last.params["text"] == "x"
