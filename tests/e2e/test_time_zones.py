"""Time zones as people write them: offsets with their real sign, a zone for readers who
do not subscribe (kept across restarts), no pseudo-zones, a settings row that stays put."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.sandbox.server import SandboxServer
from bot.sandbox.state import StoredMessage
from bot.storage.subscriptions import Destination
from tests.e2e.conftest import USER, Chat, e2e_settings, running_bot

GROUP, ADMIN, MEMBER = -1005550123, 9101, 9102
TOKYO_TIME = "2 Apr 2025, 04:05 JST"  # the newest sample story, in Asia/Tokyo


def zone_row(panel: StoredMessage) -> list[str]:
    """The labels of the settings keyboard's zone buttons, in order."""
    return [b["text"] for b in panel.buttons if b.get("callback_data", "").startswith("st:z:")]


def current(chat: Chat, message_id: int) -> StoredMessage:
    [message] = [m for m in chat.server.bot_messages(USER) if m.message_id == message_id]
    return message


async def test_offsets_read_with_the_sign_people_use(chat: Chat) -> None:
    [subscribed] = await chat.say("/subscribe 07:00 UTC-5")
    assert "07:00 (UTC-05:00)" in subscribed.text
    [changed] = await chat.say("/timezone UTC+2")
    assert "Time zone set to UTC+02:00." in changed.text
    assert "07:00 (UTC+02:00)" in changed.text
    [status] = await chat.say("/status")
    assert "07:00 (UTC+02:00)" in status.text
    [panel] = await chat.say("/settings")
    assert "• UTC+02:00" in zone_row(panel)
    for message in (subscribed, changed, status, panel):
        assert "GMT" not in message.text and "Etc/" not in message.text
        assert not any("GMT" in label for label in zone_row(message))
    stored = await chat.services.subscriptions.get(Destination(USER))
    assert stored is not None and stored.timezone.key == "Etc/GMT-2"  # storage unchanged


async def test_a_subscription_stored_with_a_posix_zone_keeps_working(chat: Chat) -> None:
    """Subscriptions made before this change hold keys like Etc/GMT-3: shown as UTC+03:00."""
    store = chat.services.subscriptions
    await store.subscribe(Destination(USER), "private", time(6, 30), ZoneInfo("Etc/GMT-3"),
                          chat.services.clock())
    [status] = await chat.say("/status")
    assert "06:30 (UTC+03:00)" in status.text and "GMT" not in status.text
    [panel] = await chat.say("/settings")
    assert zone_row(panel)[0] == "• UTC+03:00"
    await chat.press(message_id=panel.message_id, text="06:00")
    edited = current(chat, panel.message_id)
    assert "06:00 (UTC+03:00)" in edited.text and zone_row(edited)[0] == "• UTC+03:00"


async def test_a_reader_without_a_subscription_chooses_the_zone_of_times(chat: Chat) -> None:
    [page] = await chat.say("/latest 1")
    assert "2 Apr 2025, 04:05 JST" not in page.text
    [reply] = await chat.say("/timezone Asia/Tokyo")
    assert "Time zone set to Asia/Tokyo." in reply.text
    assert "no briefing" not in reply.text and "/subscribe" in reply.text
    [page] = await chat.say("/latest 1")
    assert TOKYO_TIME in page.text
    story = await chat.say("/story 1")
    assert "JST" in story[0].text and "UTC" not in story[0].text
    [results] = await chat.say("/search night trains")
    assert "JST" in results.text and "UTC" not in results.text
    [shown] = await chat.say("/timezone")
    assert "Asia/Tokyo" in shown.text
    assert await chat.services.subscriptions.get(Destination(USER)) is None  # no briefing


async def test_the_chosen_zone_survives_a_restart_and_becomes_the_briefings(
        story_folder: Path, tmp_path: Path) -> None:
    async with SandboxServer() as server:
        settings = e2e_settings(story_folder, server.base_url, tmp_path)
        async with running_bot(server, settings, story_folder) as chat:
            await chat.say("/timezone UTC+9")
        async with running_bot(server, settings, story_folder) as chat:
            [page] = await chat.say("/latest 1")
            assert "2 Apr 2025, 04:05 UTC+09:00" in page.text
            [subscribed] = await chat.say("/subscribe 07:30")
            assert "07:30 (UTC+09:00)" in subscribed.text
            await chat.say("/unsubscribe")
            [page] = await chat.say("/latest 1")
            assert "2 Apr 2025, 04:05 UTC+09:00" in page.text  # still the reader's zone


async def test_unsubscribing_keeps_the_zone_the_briefing_had(chat: Chat) -> None:
    """Even for a subscription made before readers could choose a zone on its own."""
    await chat.services.subscriptions.subscribe(Destination(USER), "private", time(7),
                                                ZoneInfo("Asia/Tokyo"), chat.services.clock())
    [page] = await chat.say("/latest 1")
    assert TOKYO_TIME in page.text
    await chat.say("/unsubscribe")
    [page] = await chat.say("/latest 1")
    assert TOKYO_TIME in page.text


async def test_localtime_and_factory_are_not_zones(chat: Chat) -> None:
    await chat.say("/subscribe 07:00 Europe/Berlin")
    for command in ("/timezone localtime", "/timezone Factory", "/timezone posixrules",
                    "/subscribe 07:00 localtime", "/subscribe Factory"):
        [reply] = await chat.say(command)
        assert "is not a place's time zone" in reply.text, command
        assert "Europe/Berlin" in reply.text, command  # what to write instead
    stored = await chat.services.subscriptions.get(Destination(USER))
    assert stored is not None and stored.timezone.key == "Europe/Berlin"
    assert (stored.delivery_time.hour, stored.delivery_time.minute) == (7, 0)


async def test_zone_buttons_keep_their_places_when_one_is_pressed(chat: Chat) -> None:
    await chat.say("/subscribe 07:00 Europe/Berlin")
    [panel] = await chat.say("/settings")
    first = zone_row(panel)
    assert first == ["UTC", "London", "• Berlin", "New York"]
    await chat.press(message_id=panel.message_id, text="New York")
    assert zone_row(current(chat, panel.message_id)) == [
        "UTC", "London", "Berlin", "• New York"]
    await chat.press(message_id=panel.message_id, text="UTC")
    assert zone_row(current(chat, panel.message_id)) == [
        "• UTC", "London", "Berlin", "New York"]
    stored = await chat.services.subscriptions.get(Destination(USER))
    assert stored is not None and stored.timezone.key == "UTC"


async def test_a_zone_of_its_own_keeps_its_button_while_presets_are_pressed(
        chat: Chat) -> None:
    await chat.say("/subscribe 07:00 Asia/Kolkata")
    [panel] = await chat.say("/settings")
    assert zone_row(panel) == ["• Kolkata", "UTC", "London", "Berlin"]
    await chat.press(message_id=panel.message_id, text="London")
    assert zone_row(current(chat, panel.message_id)) == ["Kolkata", "UTC", "• London", "Berlin"]
    await chat.press(message_id=panel.message_id, text="Kolkata")
    assert zone_row(current(chat, panel.message_id)) == ["• Kolkata", "UTC", "London", "Berlin"]
    [page] = await chat.say("/latest 1")
    assert "IST" in page.text  # the zone pressed is the reader's zone too


async def test_only_group_admins_choose_the_groups_zone(chat: Chat) -> None:
    chat.server.add_chat(GROUP, "supergroup", admins=[ADMIN], members=[MEMBER])
    [refused] = await chat.say("/timezone Asia/Tokyo", user_id=MEMBER, chat_id=GROUP)
    assert "Only this chat's administrators" in refused.text
    [page] = await chat.say("/latest 1", user_id=MEMBER, chat_id=GROUP)
    assert "JST" not in page.text
    [done] = await chat.say("/timezone Asia/Tokyo", user_id=ADMIN, chat_id=GROUP)
    assert "Time zone set to Asia/Tokyo." in done.text
    [page] = await chat.say("/latest 1", user_id=MEMBER, chat_id=GROUP)
    assert TOKYO_TIME in page.text
