"""A long story through the sandbox with Telegram's flood model on: a few parts at a time,
a "Continue" button for the rest, and never a 429."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox import FloodLimits, SandboxOptions
from bot.sandbox.server import SandboxServer
from tests.e2e.conftest import USER, Chat, e2e_settings, footer, handled, running_bot, until

KEY = "e0e0e0e0e0e0"


def write_long_story(folder: Path, paragraphs: int = 120, word: str = "harbour") -> Path:
    """A story of about ``paragraphs`` × 370 characters (120 → about a dozen parts)."""
    sentence = f"The {word} ferry ran late again, and passengers waited on the quay. "
    body = "\n\n".join(f"{n}. " + sentence * 5 for n in range(1, paragraphs + 1))
    path = folder / f"900_{KEY}.txt"
    path.write_text("Jul 1, 2025, 9:00 AM\n\nThe longest ferry story\n\nHighlights\n"
                    f"• Ferries ran late\nStory\n\n{body}\n")
    return path


@pytest.fixture
async def flooded_chat(request: pytest.FixtureRequest, story_folder: Path,
                       tmp_path: Path) -> AsyncIterator[Chat]:
    """The bot against a sandbox that refuses what Telegram would (3 at once, then 1/s)."""
    telegram = getattr(request, "param", {})
    async with SandboxServer(SandboxOptions(flood=FloodLimits.telegram())) as server:
        settings = e2e_settings(story_folder, server.base_url, tmp_path, **telegram)
        async with running_bot(server, settings, story_folder) as chat:
            yield chat


async def test_a_long_story_comes_five_parts_at_a_time_with_a_continue_button(
        flooded_chat: Chat) -> None:
    chat, server = flooded_chat, flooded_chat.server
    write_long_story(chat.folder)
    await until(lambda: chat.services.library.get(KEY) is not None)

    post = await server.user_message(f"/story {KEY[:6]}", user_id=USER)
    await handled(server, chat.app, post.update_id)
    first = server.bot_messages(USER)
    total = footer(first[0])[1]
    assert total >= 11  # three batches: 5, 5 and the rest
    assert [footer(m) for m in first] == [(i, total) for i in range(1, 6)]
    assert [m.buttons for m in first[:4]] == [[]] * 4
    [button] = first[4].buttons
    assert button["text"] == f"Continue (6/{total})"
    assert button["callback_data"].startswith("more:")
    assert len(button["callback_data"].encode()) <= 64

    press = await server.press_button(USER, text=f"Continue (6/{total})", timeout=10)
    assert press.answer is not None  # the tap is acknowledged at once
    await handled(server, chat.app, press.update_id)
    second = server.bot_messages(USER)
    assert [footer(m) for m in second] == [(i, total) for i in range(1, 11)]
    assert second[4].buttons == []  # a used button goes away
    assert [b["text"] for b in second[9].buttons] == [f"Continue (11/{total})"]

    # A double tap sends the rest once.
    presses = [await server.press_button(USER, second[9].message_id,
                                         text=f"Continue (11/{total})") for _ in range(2)]
    await handled(server, chat.app, presses[-1].update_id)
    everything = server.bot_messages(USER)
    assert [footer(m) for m in everything] == [(i, total) for i in range(1, total + 1)]
    assert [m for m in everything if m.buttons] == []
    assert server.flood_refusals == 0  # Telegram would have refused none of it


@pytest.mark.parametrize("flooded_chat", [{"story_parts_at_once": 2}], indirect=True)
async def test_a_continue_button_under_a_changed_or_removed_story_answers_politely(
        flooded_chat: Chat) -> None:
    chat, server = flooded_chat, flooded_chat.server
    path = write_long_story(chat.folder, paragraphs=30)
    await until(lambda: chat.services.library.get(KEY) is not None)
    post = await server.user_message(f"/story {KEY}", user_id=USER)
    await handled(server, chat.app, post.update_id)
    sent = server.bot_messages(USER)
    total = footer(sent[0])[1]
    assert total > 2 and [footer(m) for m in sent] == [(1, total), (2, total)]
    [button] = sent[1].buttons
    assert button["text"] == f"Continue (3/{total})"

    old = chat.services.library.get(KEY)
    write_long_story(chat.folder, paragraphs=30, word="river")
    await until(lambda: chat.services.library.get(KEY) not in (None, old))
    press = await server.press_button(USER, text=button["text"], timeout=10)
    await handled(server, chat.app, press.update_id)
    assert press.answer_text is not None and "changed" in press.answer_text
    assert f"/story {KEY}" in press.answer_text
    assert len(server.bot_messages(USER)) == 2  # nothing from the old or the new version

    path.unlink()
    await until(lambda: chat.services.library.get(KEY) is None)
    press = await server.press_button(USER, text=button["text"], timeout=10)
    await handled(server, chat.app, press.update_id)
    assert press.answer_text is not None and "no longer available" in press.answer_text
    assert len(server.bot_messages(USER)) == 2
    assert server.flood_refusals == 0
