"""Reader conversations end to end: what a person in the chat actually sees."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from telegram.request import HTTPXRequest

from bot.sandbox import SandboxServer
from bot.telegram.redaction import REDACTED, install_token_redaction
from bot.telegram.transport import AiohttpRequest
from tests.e2e.conftest import (
    TOKEN,
    USER,
    Chat,
    e2e_settings,
    footer,
    handled,
    running_bot,
    until,
)


def write_story(folder: Path, name: str, title: str, body: str = "Body text.",
                stamp: str = "Apr 9, 2025, 9:00 AM") -> None:
    (folder / name).write_text(
        f"{stamp}\n\n{title}\n\nHighlights\n• A highlight about {title}\nStory\n\n{body}\n")


async def test_start_welcomes_and_deep_link_opens_the_story(chat: Chat) -> None:
    [welcome] = await chat.say("/start")
    assert "latest" in welcome.text and "/help" in welcome.text
    replies = await chat.say("/start story_5f0c2a9e41d7b3c8")
    assert replies[0].text.startswith("Central bank of Arlenia holds rates")
    gone = await chat.say("/start story_0000000000000000")
    assert "no longer available" in gone[0].text


async def test_help_lists_every_command_with_an_example(chat: Chat) -> None:
    [reply] = await chat.say("/help")
    for command in ("/latest", "/story", "/search", "/subscribe", "/help"):
        assert command in reply.text
    assert "e.g. /story 1" in reply.text
    menu = [c["command"] for c in chat.server.commands()]
    assert {"latest", "story", "search", "help"} <= set(menu)


async def test_latest_pages_with_buttons_by_editing_the_message(chat: Chat) -> None:
    [page] = await chat.say("/latest 3")
    assert "1. Night trains return" in page.text
    assert "1–3 of 15" in page.text
    assert [b["text"] for b in page.buttons] == ["📖 1", "📖 2", "📖 3", "Older ›"]
    await chat.press(text="Older ›")
    edited = chat.server.bot_messages(USER)[-1]
    assert edited.message_id == page.message_id
    assert "4. " in edited.text and "4–6 of 15" in edited.text
    assert [b["text"] for b in edited.buttons][-2:] == ["‹ Newer", "Older ›"]
    await chat.press(text="‹ Newer")
    assert "1–3 of 15" in chat.server.bot_messages(USER)[-1].text
    before = len(chat.server.bot_messages(USER))
    await chat.press(text="📖 2")
    opened = chat.server.bot_messages(USER)[before:]
    assert opened[0].text.startswith("Central bank of Arlenia")


async def test_latest_buttons_follow_keys_when_new_stories_arrive(chat: Chat) -> None:
    await chat.say("/latest 2")
    write_story(chat.folder, "900_abcabcabcabc.txt", "Breaking arrival",
                stamp="May 1, 2025, 9:00 AM")
    await until(lambda: chat.services.library.get("abcabcabcabc") is not None)
    await chat.press(text="Older ›")
    edited = chat.server.bot_messages(USER)[-1]
    # Older than story 2 of the old list (central bank) is still the ocean story.
    assert "Ocean temperatures" in edited.text.split("\n\n")[1]


async def test_latest_rejects_bad_counts_with_usage(chat: Chat) -> None:
    for bad in ("/latest 0", "/latest 21", "/latest many", "/latest 1 2"):
        [reply] = await chat.say(bad)
        assert "number from 1 to 20" in reply.text and "/latest 10" in reply.text


async def test_latest_20_fits_one_message(chat: Chat) -> None:
    [page] = await chat.say("/latest 20")
    assert "15. Harbour authority" in page.text


async def test_story_by_number_prefix_id_and_words(chat: Chat) -> None:
    assert (await chat.say("/story 2"))[0].text.startswith("Central bank")
    assert (await chat.say("/story 5f0c2a"))[0].text.startswith("Central bank")
    assert (await chat.say("/story 001_5f0c2a9e41d7b3c8"))[0].text.startswith("Central bank")
    assert (await chat.say("/story central bank"))[0].text.startswith("Central bank")
    [usage] = await chat.say("/story")
    assert "Usage: /story REF" in usage.text


async def test_ambiguous_prefix_offers_a_choice(chat: Chat) -> None:
    write_story(chat.folder, "500_5f0c2a0000000000.txt", "Prefix twin")
    await until(lambda: chat.services.library.get("5f0c2a0000000000") is not None)
    [choice] = await chat.say("/story 5f0c2a")
    assert "2 stories match" in choice.text and "pick one" in choice.text
    labels = sorted(b["text"] for b in choice.buttons)  # titled: numbers are /latest places
    assert len(labels) == 2 and labels[0].startswith("📖 Central bank")
    assert labels[1] == "📖 Prefix twin"
    before = len(chat.server.bot_messages(USER))
    await chat.press(text="📖 Prefix twin")
    assert chat.server.bot_messages(USER)[before].text.startswith("Prefix twin")


@pytest.mark.parametrize("garbage", ["../../etc/passwd", "x" * 10_000, "مرحبا بالعالم 🇺🇦👨‍👩‍👧",
                                     "999", "<b>&amp;</b>"])
async def test_garbage_references_get_a_polite_answer(chat: Chat, garbage: str) -> None:
    [reply] = await chat.say(f"/story {garbage}")
    assert "/latest" in reply.text
    assert len(reply.text) < 300


async def test_search_pages_results_and_plain_text_searches(chat: Chat) -> None:
    [results] = await chat.say("/search the")
    assert "found for “the”" in results.text
    assert results.buttons[-1]["text"] == "Next ›"
    await chat.press(text="Next ›")
    assert "Page 2 of" in chat.server.bot_messages(USER)[-1].text
    [plain] = await chat.say("harbour director")
    assert "Harbour authority names new director" in plain.text
    [none] = await chat.say("/search zebra unicorn")
    assert "No stories match" in none.text


async def test_stale_or_tampered_buttons_get_a_polite_answer(chat: Chat) -> None:
    [page] = await chat.say("/search rates")
    page.reply_markup["inline_keyboard"][0][0]["callback_data"] = "o:doesnotexist"  # type: ignore[index]
    answer = await chat.press(button=1)
    assert answer is not None and "no longer available" in answer["text"]
    page.reply_markup["inline_keyboard"][0][0]["callback_data"] = "zz:tampered"  # type: ignore[index]
    answer = await chat.press(button=1)
    assert answer is not None and "no longer works" in answer["text"]


async def test_inline_mode_returns_pages_of_cards_with_deep_links(chat: Chat) -> None:
    for number in range(60):
        write_story(chat.folder, f"{600 + number}_feed{number:08x}.txt", f"Ferry update {number}")
    await until(lambda: len(chat.services.library.stories) == 75)
    run = await chat.server.inline_query("ferry")
    assert len(run.results) == 50
    assert run.answer is not None and run.answer["next_offset"] == "50"
    first = run.results[0]
    assert first["input_message_content"]["parse_mode"] == "HTML"
    url = first["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.startswith("https://t.me/story_bot?start=story_feed")
    rest = await chat.server.inline_query("ferry", offset="50")
    assert len(rest.results) == 10 and rest.answer is not None
    assert not rest.answer.get("next_offset")


async def test_unknown_commands_get_a_hint(chat: Chat) -> None:
    [reply] = await chat.say("/frobnicate now")
    assert "/help" in reply.text


async def test_markup_in_story_text_is_shown_literally(chat: Chat) -> None:
    write_story(chat.folder, "700_b0b0b0b0b0b0.txt", "Tags <b>& friends</i>",
                body="Text with <script>alert(1)</script> & more", stamp="Jun 1, 2025, 9:00 AM")
    await until(lambda: chat.services.library.get("b0b0b0b0b0b0") is not None)
    [page] = await chat.say("/latest 1")
    assert "Tags <b>& friends</i>" in page.text
    [story] = await chat.say("/story b0b0b0")
    assert "<script>alert(1)</script> & more" in story.text


async def test_a_20000_character_story_arrives_in_valid_parts(chat: Chat) -> None:
    sentence = "The harbour ferry 🚢 ran late again, and passengers waited patiently. "
    body = (sentence * 300)[:20_000]
    write_story(chat.folder, "800_c0c0c0c0c0c0.txt", "A very long story", body=body,
                stamp="Jul 1, 2025, 9:00 AM")
    await until(lambda: chat.services.library.get("c0c0c0c0c0c0") is not None)
    parts = await chat.say("/story c0c0c0")
    for _ in range(10):  # a few parts at a time: "Continue" until no button is left
        if not parts[-1].buttons:
            break
        [button] = parts[-1].buttons
        assert button["text"] == f"Continue ({len(parts) + 1}/{footer(parts[0])[1]})"
        before = len(chat.server.bot_messages(USER))
        await chat.press(message_id=parts[-1].message_id, text=button["text"])
        parts += chat.server.bot_messages(USER)[before:]
    else:
        pytest.fail("the story never ended")
    assert len(parts) > 5  # more than one batch
    assert [footer(p) for p in parts] == [(i, len(parts)) for i in range(1, len(parts) + 1)]
    assert all(len(p.text.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    seen = " ".join(p.text for p in parts)
    assert seen.count("🚢") == body.count("🚢")


async def test_a_file_added_while_running_appears_after_a_rescan(chat: Chat) -> None:
    write_story(chat.folder, "950_d0d0d0d0d0d0.txt", "Fresh off the press",
                stamp="Dec 1, 2025, 9:00 AM")
    await until(lambda: chat.services.library.get("d0d0d0d0d0d0") is not None)
    [page] = await chat.say("/latest 1")
    assert "Fresh off the press" in page.text


async def test_groups_and_forum_topics(chat: Chat) -> None:
    group = -1001234567890
    chat.server.add_chat(group, "supergroup", is_forum=True, topics=[77], members=[USER])
    replies = await chat.say("/latest@story_bot 2", chat_id=group, thread_id=77)
    assert len(replies) == 1 and replies[0].thread_id == 77
    assert "2. " in replies[0].text
    other = await chat.say("/latest@another_bot", chat_id=group, thread_id=77,
                          expect_reply=False)
    assert other == []


async def test_throttling_notices_once_then_ignores(strict_chat: Chat) -> None:
    for _ in range(3):
        assert len(await strict_chat.say("/help")) == 1
    [notice] = await strict_chat.say("/help")
    assert "try again in" in notice.text  # what happened, and when it ends
    assert await strict_chat.say("/help", expect_reply=False) == []
    assert len(await strict_chat.say("/help", user_id=777)) == 1  # others unaffected


async def test_an_edited_command_does_not_run_again(chat: Chat) -> None:
    await chat.say("/latest 1")
    post = chat.server.messages(USER)[-2]
    before = len(chat.server.bot_messages(USER))
    edit = await chat.server.edit_user_message(USER, post.message_id, "/latest 2")
    await handled(chat.server, chat.app, edit.update_id)
    assert len(chat.server.bot_messages(USER)) == before


async def test_a_failing_handler_apologises(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(chat.services.library, "find", broken)
    [reply] = await chat.say("/story 1")
    assert reply.text.startswith("Sorry, something went wrong")


async def test_the_token_never_reaches_the_logs_even_at_debug(
        chat_each_client: Chat, caplog: pytest.LogCaptureFixture) -> None:
    chat = chat_each_client
    install_token_redaction(TOKEN)
    with caplog.at_level(logging.DEBUG):
        [latest] = await chat.say("/latest")
        await chat.say("/story 1")
        await chat.server.inline_query("bank")
    assert "Central bank of Arlenia" in latest.text  # the bot works over this client
    secret = TOKEN.split(":")[1]
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "Calling Bot API endpoint `sendMessage`" in logged  # every call was logged
    client = chat.services.settings.telegram.http_client
    assert isinstance(chat.app.bot.request,
                      HTTPXRequest if client == "httpx" else AiohttpRequest)
    if client == "httpx":
        assert REDACTED in logged  # httpx logs each request URL: redacted
    assert TOKEN not in logged and secret not in logged


async def test_unknown_commands_in_groups_only_when_addressed_to_us(chat: Chat) -> None:
    group = -1009999
    chat.server.add_chat(group, "supergroup", members=[USER])
    assert await chat.say("/frobnicate", chat_id=group, expect_reply=False) == []
    [hint] = await chat.say("/frobnicate@story_bot", chat_id=group)
    assert "/help" in hint.text


async def test_a_new_story_file_reaches_latest_through_the_watcher_alone(
        caplog: pytest.LogCaptureFixture, story_folder: Path, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="bot.stories.watch")
    async with SandboxServer() as server:  # no periodic rescan within the test
        settings = e2e_settings(story_folder, server.base_url, tmp_path, rescan_seconds=3600)
        async with running_bot(server, settings, story_folder) as chat:
            await until(lambda: any("watching story folder" in r.getMessage()
                                    for r in caplog.records))
            before = chat.services.library.count()
            write_story(story_folder, "900_feedfeed01.txt", "Watched story")
            await until(lambda: chat.services.library.count() == before + 1)
            [latest] = await chat.say("/latest 3")
            assert "1. Watched story" in latest.text
