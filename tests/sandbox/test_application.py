"""A tiny PTB Application polling the sandbox: commands, buttons, inline queries, chat."""

from __future__ import annotations

import io
import ssl
from collections.abc import AsyncIterator

import pytest
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.sandbox import DEMO_USER_ID, SandboxServer, run_chat

from .conftest import make_request

PAGES = ["<b>Harbour</b> reopens &amp; ferries return", "<i>Council</i> votes on budget"]


def page_keyboard(page: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("‹ Newer", callback_data=f"page:{page - 1}"),
                InlineKeyboardButton("Older ›", callback_data=f"page:{page + 1}"),
            ]
        ]
    )


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        PAGES[0], parse_mode=ParseMode.HTML, reply_markup=page_keyboard(0)
    )


async def turn_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    page = int(query.data.split(":")[1]) % len(PAGES)
    await query.answer(f"Page {page + 1}")
    await query.edit_message_text(
        PAGES[page], parse_mode=ParseMode.HTML, reply_markup=page_keyboard(page)
    )


async def inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.inline_query is not None
    words = update.inline_query.query
    await update.inline_query.answer(
        [
            InlineQueryResultArticle(
                id=str(n),
                title=f"{words} #{n}",
                input_message_content=InputTextMessageContent(f"{words} {n}"),
                description="a story",
            )
            for n in range(1, 4)
        ],
        cache_time=0,
    )


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_message.text
    await update.effective_message.reply_text("You said:\n" + update.effective_message.text)


@pytest.fixture
async def app(server: SandboxServer, tls_context: ssl.SSLContext) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    application = (
        Application.builder()
        .token("123:ABC")
        .base_url(server.base_url)
        .request(make_request(tls_context))
        .get_updates_request(make_request(tls_context, read_timeout=10.0))
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(turn_page, pattern=r"^page:"))
    application.add_handler(InlineQueryHandler(inline))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with application:
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        await application.start()
        yield application
        await application.updater.stop()
        await application.stop()


async def test_start_command_and_button_round_trip(app: Application, server: SandboxServer) -> None:  # type: ignore[type-arg]
    post = await server.user_message("/start", user_id=42)
    trip = await server.wait_reply(post.update_id, 42, count=1, timeout=5)
    assert trip.complete and trip.last_latency is not None and trip.last_latency > 0
    [shown] = server.bot_messages(42)
    assert shown.text == "Harbour reopens & ferries return"
    assert [b["text"] for b in shown.buttons] == ["‹ Newer", "Older ›"]

    press = await server.press_button(42, button=2, timeout=5)
    assert press.answer_text == "Page 2"
    assert await server.wait_idle(press.update_id, quiet=0.1, timeout=5)
    [shown] = server.bot_messages(42)
    assert shown.text == "Council votes on budget"
    assert len(shown.edits) == 1


async def test_command_with_bot_name_in_a_group(app: Application, server: SandboxServer) -> None:  # type: ignore[type-arg]
    server.add_chat(-100777, "supergroup", title="Newsroom")
    post = await server.user_message("/start@story_bot", user_id=5, chat_id=-100777)
    assert await server.wait_idle(post.update_id, quiet=0.1, timeout=5)
    assert server.bot_messages(-100777)[0].text.startswith("Harbour")


async def test_inline_query_returns_results(app: Application, server: SandboxServer) -> None:  # type: ignore[type-arg]
    run = await server.inline_query("harbour", timeout=5)
    assert [r["title"] for r in run.results] == ["harbour #1", "harbour #2", "harbour #3"]


async def test_run_chat_transcript(app: Application, server: SandboxServer) -> None:  # type: ignore[type-arg]
    out = io.StringIO()
    script = ["/start", ":press 2", "hello\n", ":inline ferry", ":press 9", ":quit", "never"]
    await run_chat(server, script, out, quiet=0.1, timeout=5)
    transcript = out.getvalue()
    assert "you> /start\nbot> **Harbour** reopens & ferries return\n" in transcript
    assert "     [1] ‹ Newer  [2] Older ›" in transcript
    assert "bot> (notice) Page 2" in transcript
    assert "bot> (edited) _Council_ votes on budget" in transcript
    assert "bot> You said:\n     hello\n" in transcript
    assert "bot> [1] ferry #1 — a story" in transcript
    assert "choose a button from 1 to 2" in transcript
    assert "never" not in transcript
    assert server.bot_messages(DEMO_USER_ID)


async def test_run_chat_from_async_lines(app: Application, server: SandboxServer) -> None:  # type: ignore[type-arg]
    async def typed() -> AsyncIterator[str]:
        for line in ["hi there\n"]:
            yield line

    out = io.StringIO()
    await run_chat(server, typed(), out, echo=False, quiet=0.1, timeout=5)
    assert out.getvalue() == "bot> You said:\n     hi there\n"
