"""Messages worth reading (issue section 6): briefings and alerts carry a settings /
unsubscribe button, an update says what changed, a card says "Updated" only after an
update, search results mark the words that matched, single letters are not searched,
/latest says why it left highlights out, and a reader's words are escaped once."""

from __future__ import annotations

import re
from datetime import time

import pytest

from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from bot.telegram.refresh import rescan_stories
from tests.e2e.conftest import Chat
from tests.e2e.harness import Harness, quiet

READER = 4242
CHANNEL = -1005550123
FERRY = "700_f0f0f0f0f0f0.txt"


def styled(message: StoredMessage, kind: str) -> list[str]:
    """The pieces of ``message`` a reader sees in style ``kind`` (bold, italic…)."""
    units = message.text.encode("utf-16-le")
    return [units[2 * e["offset"]:2 * (e["offset"] + e["length"])].decode("utf-16-le")
            for e in message.entities if e["type"] == kind]


def lines_of(message: StoredMessage) -> list[str]:
    return [line for line in message.text.split("\n") if line.strip()]


# -- briefings and alerts: the settings / unsubscribe button -----------------------------


def briefing(bot: Harness, chat_id: int) -> StoredMessage | None:
    found = [m for m in bot.received(chat_id) if "Your briefing" in m.text]
    return found[-1] if found else None


async def test_a_briefing_carries_a_settings_button_whose_unsubscribe_works(
    bot: Harness,
) -> None:
    await bot.subscribe(READER, time(7, 0))
    bot.clock.advance(minutes=3)
    await bot.until(lambda: briefing(bot, READER) is not None)
    message = briefing(bot, READER)
    assert message is not None
    last = message.button_rows[-1]
    assert [(b["text"], b.get("callback_data")) for b in last] == [("⚙️ Settings", "st:s")]
    await bot.press(READER, message.message_id, text="⚙️ Settings")
    panel = bot.received(READER)[-1]
    assert "Your subscription" in panel.text  # a new panel below…
    assert bot.received(READER)[-2].text == message.text  # …the briefing left as it was
    pressed = await bot.press(READER, panel.message_id, data="st:u")
    assert pressed.answer is not None and pressed.answer["text"] == "Unsubscribed."
    subscription = await bot.services.subscriptions.get(Destination(READER))
    assert subscription is not None and not subscription.active
    sent = len(bot.received(READER))
    bot.clock.advance(days=1)  # and no briefing comes the next day
    await quiet(bot)
    assert len(bot.received(READER)) == sent


async def test_a_channel_briefing_links_to_the_readers_own_settings(bot: Harness) -> None:
    await bot.subscribe(CHANNEL, time(7, 0), chat_type="channel")
    await bot.subscribe(READER, time(7, 0), "Europe/Berlin")
    bot.clock.advance(minutes=3)
    await bot.until(lambda: briefing(bot, CHANNEL) is not None)
    message = briefing(bot, CHANNEL)
    assert message is not None
    username = bot.services.bot_username
    [settings] = message.button_rows[-1]
    # a callback there would answer for the channel: the button opens a private chat
    assert settings == {"text": "⚙️ Settings",
                        "url": f"https://t.me/{username}?start=settings"}
    [panel] = await bot.say("/start settings", user_id=READER)  # what the link sends
    assert "Your subscription" in panel.text and "07:00 (Europe/Berlin)" in panel.text
    assert any(b.get("callback_data") == "st:u" for b in panel.buttons)


async def test_alerts_are_not_numbered_and_updates_say_what_changed(bot: Harness) -> None:
    await bot.subscribe(READER, time(7, 0))
    await bot.services.subscriptions.set_mode(Destination(READER), "instant", bot.clock())
    folder = bot.settings.stories.folder
    (folder / FERRY).write_text(
        "Apr 2, 2025, 6:50 AM\n\n1,000 ferries resume\n\nHighlights\n• Boats run again\n"
        "Story\n\nThe ferries run.\n")
    await rescan_stories(bot.services)
    await bot.until(lambda: len(bot.received(READER)) == 1)
    [new] = bot.received(READER)
    assert lines_of(new)[:3] == ["🆕 New story", "1,000 ferries resume",
                                 "Published 2 Apr 2025, 06:50 UTC"]  # no "1." before it
    assert [b["text"] for b in new.buttons] == ["📖 Read the story", "⚙️ Settings"]
    await bot.stop()  # what the alerted version was survives a restart
    await bot.start()
    (folder / FERRY).write_text(
        "Apr 2, 2025, 6:57 AM\nApr 2, 2025, 6:50 AM\n\n1,000 ferries resume\n\nHighlights\n"
        "• Boats run again, twice as often\nStory\n\nThe ferries run.\n")
    await rescan_stories(bot.services)
    await bot.until(lambda: len(bot.received(READER)) == 2)
    updated = bot.received(READER)[1]
    assert lines_of(updated)[:3] == ["🔄 Updated story — highlights changed",
                                     "1,000 ferries resume", "Updated 2 Apr 2025, 06:57 UTC"]
    (folder / FERRY).write_text(
        "Apr 2, 2025, 6:58 AM\nApr 2, 2025, 6:50 AM\n\nAll ferries resume\n\nHighlights\n"
        "• Boats run again, twice as often\nStory\n\nThe ferries run daily.\n")
    await rescan_stories(bot.services)
    await bot.until(lambda: len(bot.received(READER)) == 3)
    assert lines_of(bot.received(READER)[2])[0] == (
        "🔄 Updated story — title and story text changed")


# -- cards, search, /latest, /story: replies in the chat ----------------------------------
async def test_cards_say_updated_only_for_a_story_that_was(chat: Chat) -> None:
    [page] = await chat.say("/latest 7")
    cards = page.text.split("\n\n")[1:]
    assert "Updated 1 Apr 2025, 19:05 UTC" in cards[0]  # published 17:30, updated 19:05
    # one date in the file, or the same one twice: never updated
    assert cards[3].startswith("4. Valmere city council")
    assert "Published 30 Mar 2025, 14:47 UTC" in cards[3] and "Updated" not in cards[3]
    assert cards[6].startswith("7. Drought forces farmers")
    assert "Published 29 Mar 2025, 08:12 UTC" in cards[6] and "Updated" not in cards[6]


async def test_search_results_mark_the_words_that_matched(chat: Chat) -> None:
    [results] = await chat.say("/search harbour")
    assert "Mara Elling will lead the Port Ismer harbour authority from June." in results.text
    assert "harbour" in styled(results, "bold")  # the word in the highlight
    assert "Harbour" in styled(results, "italic")  # the word in the title
    [results] = await chat.say("/search rates inflation")
    assert "Annual inflation fell to 2.8% in February" in results.text
    assert "inflation" in styled(results, "bold") and "rates" in styled(results, "italic")
    # a word typed in several pieces is one word to look for: nothing else is marked
    assert not {"Annual", "fell", "February"} & set(styled(results, "bold"))


@pytest.mark.parametrize("ask", ["/story a", "/search a", "a", "/search x 5 &"])
async def test_single_characters_are_not_searched_and_the_reader_is_told(
        chat: Chat, ask: str) -> None:
    [reply] = await chat.say(ask)
    assert "not searched" in reply.text and "/latest" in reply.text
    assert "match" not in reply.text and not reply.buttons


async def test_longer_words_are_searched_beside_ignored_single_letters(chat: Chat) -> None:
    [reply] = await chat.say("/search a harbour")
    assert "1 found for “a harbour”" in reply.text and "Harbour authority" in reply.text


async def test_a_readers_words_are_escaped_once(chat: Chat) -> None:
    [choice] = await chat.say("/story the & a")
    assert "stories match “the & a”" in choice.text
    assert choice.html is not None and "“the &amp; a”" in choice.html
    assert "&amp;" not in choice.text
    [results] = await chat.say("/search <b>harbour</b> & co")
    assert "found for “<b>harbour</b> & co”" in results.text


async def test_latest_20_says_why_it_left_the_highlights_out(chat: Chat) -> None:
    [page] = await chat.say("/latest 20")
    assert "15. Harbour authority" in page.text
    found = re.search(r"Highlights are left out so that 15 stories fit one message: "
                      r"/latest (\d+) shows highlights too\.", page.text)
    assert found is not None, page.text[-200:]
    [fewer] = await chat.say(f"/latest {found.group(1)}")  # and that is true
    assert "• A sleeper service between Valmere and Port Ismer" in fewer.text
    assert "left out" not in fewer.text
    assert fewer.text.count("Full story: /story_") == int(found.group(1))
