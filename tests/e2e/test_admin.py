"""Admin commands end to end: who may use them, and what operators see."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.conftest import ADMIN, USER, Chat


async def test_admin_commands_are_in_the_menu_only_for_admins(admin_chat: Chat) -> None:
    everyone = {c["command"] for c in admin_chat.server.commands()}
    admins = {c["command"] for c in admin_chat.server.commands(
        {"type": "chat", "chat_id": ADMIN})}
    assert "stats" not in everyone and "broadcast" not in everyone
    assert {"stats", "reload", "broadcast", "latest"} <= admins


@pytest.mark.parametrize("command", ["/stats", "/reload"])
async def test_non_admins_are_refused_and_logged(admin_chat: Chat, command: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        [reply] = await admin_chat.say(command, user_id=USER)
    assert "administrators only" in reply.text
    assert f"admin command refused user={USER}" in caplog.text


async def test_stats_shows_subscriptions_stories_and_queue(admin_chat: Chat) -> None:
    await admin_chat.say("/subscribe 07:00 Europe/Berlin", user_id=USER)
    [reply] = await admin_chat.say("/stats", user_id=ADMIN)
    assert "Active subscriptions: 1 (private 1)" in reply.text
    assert "Europe/Berlin 1" in reply.text
    assert "Stories loaded: 15, files rejected: 0" in reply.text
    assert "Delivery queue: pending 0" in reply.text


async def test_reload_reports_changes_and_rejected_files(admin_chat: Chat) -> None:
    (admin_chat.folder / "999_abcdefabcdef.txt").write_text(
        "May 5, 2025, 9:00 AM\n\nReload me\n\nHighlights\n• one\n")
    (admin_chat.folder / "broken.txt").write_text("not a story\n")
    (admin_chat.folder / "000_99093b385269948a.txt").unlink()
    [reply] = await admin_chat.say("/reload", user_id=ADMIN)
    assert "1 new, 0 updated, 1 removed" in reply.text
    assert "New: Reload me" in reply.text
    assert "broken.txt:1: expected a timestamp" in reply.text
