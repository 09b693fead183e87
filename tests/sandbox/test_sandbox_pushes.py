"""The sandbox chat shows what the bot pushes: briefings, broadcasts, edits, as they happen.

The subprocess tests run ``run_bot.py sandbox`` as a newcomer does; the in-process ones
compare the transcript with what the sandbox server stored, version by version.
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from telegram import Bot

from bot.config import Settings, StoriesSettings
from bot.sandbox import DEMO_USER_ID, Fault, FaultKind, SandboxServer
from bot.sandbox.chat import INDENT, ChatFeed, ScriptedChat, run_chat
from bot.sandbox.session import SANDBOX_TOKEN, SCAN_SECONDS, HandledUpdates, sandbox_settings
from bot.sandbox.terminal import format_version
from bot.telegram.app import build_application, start_bot, stop_bot

ROOT = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^(you> |bot> |!!   )")


def entries(transcript: str) -> list[str]:
    """The transcript as entries: each ``you>``/``bot>``/``!!`` line with its indented
    continuation lines joined back by newlines (prefixes kept, indentation removed)."""
    found: list[str] = []
    for line in transcript.splitlines():
        if ENTRY.match(line) or not found:
            found.append(line)
        else:
            assert line.startswith(INDENT), f"stray transcript line {line!r}"
            found[-1] += "\n" + line[len(INDENT):]
    return found


def write_config(tmp_path: Path, story_folder: Path) -> Path:
    config = tmp_path / "bot.yaml"
    config.write_text(f"stories:\n  folder: {story_folder}\n", encoding="utf-8")
    return config


def run_sandbox(tmp_path: Path, story_folder: Path, lines: list[str], *args: str,
                timeout: float = 90) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "chat.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "run_bot.py", "--config", str(write_config(tmp_path, story_folder)),
         "sandbox", "--script", str(script), "--log", str(tmp_path / "sandbox.log"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_sandbox_user_is_an_admin_and_briefings_are_looked_for_often(
        tmp_path: Path) -> None:
    configured = Settings()
    chosen = sandbox_settings(configured, "http://127.0.0.1:1/bot", tmp_path)
    assert DEMO_USER_ID in chosen.telegram.admin_ids
    assert chosen.delivery.scan_seconds == SCAN_SECONDS <= 2


def test_a_script_with_now_and_wait_shows_the_briefing(tmp_path: Path,
                                                        story_folder: Path) -> None:
    done = run_sandbox(tmp_path, story_folder,
                       ["/subscribe 08:00 Europe/Berlin", ":wait 9", "/status"],
                       "--now", "2025-04-02T05:59:55+00:00")
    assert done.returncode == 0, done.stderr
    said = entries(done.stdout)
    assert said[0] == "you> /subscribe 08:00 Europe/Berlin"
    assert "Next briefing: 2 Apr 2025, 08:00 CEST." in said[1]  # the briefing is today
    waiting = said.index("you> :wait 9")
    status = said.index("you> /status")
    pushed = said[waiting + 1:status]
    assert len(pushed) == 1, done.stdout  # the briefing, once, while the script waited
    assert pushed[0].startswith("bot> **☀️ Your briefing — Wednesday, 2 April 2025**")
    assert "Night trains return to the northern line" in pushed[0]
    assert "Next briefing: 3 Apr 2025, 08:00 CEST." in said[status + 1]


def test_closed_standard_input_ends_the_chat_like_end_of_input(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" run_bot.py sandbox --log "$1" <&-', sys.executable,
         str(tmp_path / "sandbox.log")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "sandbox: Bot API server at http://127.0.0.1:" in done.stderr
    assert done.stdout == ""


def test_a_missing_story_folder_is_one_line_not_a_quiet_empty_bot(tmp_path: Path) -> None:
    """The log is a file in the sandbox, so what ``run`` refuses is refused here too."""
    done = run_sandbox(tmp_path, tmp_path / "nowhere", ["/latest"])
    assert done.returncode == 2
    assert done.stderr == f"error: story folder {tmp_path / 'nowhere'} does not exist\n"
    assert done.stdout == ""


def test_a_broadcast_is_tried_at_once_and_its_progress_edits_show_as_edits(
        tmp_path: Path, story_folder: Path) -> None:
    done = run_sandbox(tmp_path, story_folder,
                       ["/subscribe", "/broadcast Ferries resume <soon> & more", ":press 1",
                        ":wait 9"])
    assert done.returncode == 0, done.stderr
    assert f"You are Ada (user {DEMO_USER_ID}), an admin of this bot" in done.stderr
    said = entries(done.stdout)
    preview = said.index("you> /broadcast Ferries resume <soon> & more")
    assert said[preview + 1] == "bot> Ferries resume <soon> & more"  # exactly as subscribers
    assert said[preview + 2].startswith("bot> 📣 **Broadcast #1** — preview above")
    after = said[said.index("you> :press 1") + 1:]
    edits = [e for e in after if e.startswith("bot> (edited) 📣 **Broadcast #1**")]
    assert edits[0].startswith(
        "bot> (edited) 📣 **Broadcast #1** — sending to all subscribers but channels")
    assert edits[-1].startswith("bot> (edited) 📣 **Broadcast #1** done in")
    assert "1 sent" in edits[-1]
    # The announcement itself reaches the admin, a subscriber, as a new message.
    assert after.count("bot> Ferries resume <soon> & more") == 1
    assert after.index("bot> Ferries resume <soon> & more") < after.index(edits[-1])
    assert len(edits) == len(set(edits))  # each edit once: an edit always changes something


async def until(server: SandboxServer, done: Callable[[], bool], within: float = 10) -> None:
    """Wait, on the sandbox's change notifications, until ``done()`` holds."""
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await server.state.wait_change(0.05)


async def test_pushes_print_as_they_arrive_with_every_edit_in_order(
        server: SandboxServer, bot: Bot) -> None:
    """Nobody types: the bot sends, edits twice at once, sends again, edits the first
    message and deletes the second. Each of those is one transcript entry, in the order
    the sandbox stored them."""
    server.add_chat(DEMO_USER_ID, "private")
    out = io.StringIO()
    chat = ScriptedChat(server, out, quiet=0.1, timeout=5)

    async def nobody_types() -> AsyncIterator[str]:
        first = await bot.send_message(DEMO_USER_ID, "<b>Briefing</b> draft", parse_mode="HTML")
        await until(server, lambda: "bot> **Briefing** draft" in out.getvalue())
        await asyncio.gather(  # two edits in flight together: the chat shows both
            bot.edit_message_text("step 2", DEMO_USER_ID, first.message_id),
            bot.edit_message_text("step 3", DEMO_USER_ID, first.message_id))
        second = await bot.send_message(DEMO_USER_ID, "alert\nsecond line")
        await bot.edit_message_text("step 4", DEMO_USER_ID, first.message_id)
        await bot.delete_message(DEMO_USER_ID, second.message_id)
        await until(server, lambda: "(deleted)" in out.getvalue())
        return
        yield  # an async generator that ends without a line

    await chat.run(nobody_types())
    [first, _] = server.bot_messages(DEMO_USER_ID, include_deleted=True)
    middle = [v.text for v in first.edits[1:]]  # the order the sandbox applied them
    assert sorted(middle) == ["step 2", "step 3"]
    assert entries(out.getvalue()) == [
        "bot> **Briefing** draft",
        f"bot> (edited) {middle[0]}",
        f"bot> (edited) {middle[1]}",
        "bot> alert\nsecond line",
        "bot> (edited) step 4",
        "bot> (deleted) alert …",
    ]


async def test_the_feed_shows_every_version_even_when_it_looks_late(
        server: SandboxServer, bot: Bot) -> None:
    """However late the chat looks, each edit is shown as the version the sandbox stored
    for it, in order; a message edited and deleted is still shown as it was sent."""
    server.add_chat(DEMO_USER_ID, "private")
    feed = ChatFeed(server, DEMO_USER_ID, DEMO_USER_ID)
    first = await bot.send_message(DEMO_USER_ID, "draft")
    await bot.edit_message_text("second", DEMO_USER_ID, first.message_id)
    await bot.edit_message_text("third", DEMO_USER_ID, first.message_id)
    gone = await bot.send_message(DEMO_USER_ID, "oops\nmore")
    await bot.delete_message(DEMO_USER_ID, gone.message_id)
    assert feed.drain() == ["draft", "(edited) second", "(edited) third", "oops\nmore",
                            "(deleted) oops …"]
    assert feed.drain() == []  # each thing once


async def test_the_feed_orders_by_when_the_sandbox_did_it_not_when_it_was_asked(
        server: SandboxServer, bot: Bot) -> None:
    """An edit asked for first but held up (a slow answer) happens after a later send:
    the transcript shows them in the order they happened."""
    server.add_chat(DEMO_USER_ID, "private")
    feed = ChatFeed(server, DEMO_USER_ID, DEMO_USER_ID)
    first = await bot.send_message(DEMO_USER_ID, "one")
    server.inject(Fault(FaultKind.SLOW, method="editMessageText", delay=0.3))
    edit = asyncio.ensure_future(bot.edit_message_text("one, edited", DEMO_USER_ID,
                                                       first.message_id))
    await until(server, lambda: bool(server.calls("editMessageText")))  # asked first
    await bot.send_message(DEMO_USER_ID, "two")
    await edit
    assert feed.drain() == ["one", "two", "(edited) one, edited"]


async def test_the_transcript_is_exactly_what_the_sandbox_stored(
        story_folder: Path, tmp_path: Path) -> None:
    """Every version of every bot message (the original and each edit) is printed once,
    as the sandbox stored it, and nothing else is printed as the bot's."""
    async with SandboxServer() as server:
        base = sandbox_settings(Settings(), server.base_url, tmp_path)
        settings = Settings(telegram=base.telegram, database=base.database,
                            delivery=base.delivery,
                            stories=StoriesSettings(folder=story_folder))
        app = build_application(settings, SANDBOX_TOKEN)
        handled = HandledUpdates(app)
        await start_bot(app, poll_timeout=1)
        out = io.StringIO()
        try:
            await run_chat(server, ["/subscribe", "/latest 3", ":press 1", "/broadcast Hi",
                                    ":press 1", ":wait 8"], out, handled=handled)
        finally:
            await stop_bot(app)
        printed = [e for e in entries(out.getvalue()) if e.startswith("bot> ")]
        stored: list[str] = []
        for message in server.bot_messages(DEMO_USER_ID, include_deleted=True):
            versions = [*message.edits, message.version()]
            photo = message.photo_file_id is not None
            stored.append("bot> " + format_version(versions[0], photo=photo))
            stored.extend("bot> (edited) " + format_version(v, photo=photo)
                          for v in versions[1:])
        answers = [e for e in printed
                   if e.startswith(("bot> (notice) ", "bot> (alert) ", "bot> (deleted) "))]
        assert sorted(e for e in printed if e not in answers) == sorted(stored)
        assert any("done in" in e for e in printed)  # the broadcast's report was waited for
        for message in server.bot_messages(DEMO_USER_ID):  # each message's versions in order
            versions = [*message.edits, message.version()]
            shown = [printed.index(("bot> (edited) " if n else "bot> ") + format_version(v))
                     for n, v in enumerate(versions)]
            assert shown == sorted(shown)
