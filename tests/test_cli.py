"""The command-line contracts other tools rely on: output lines and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import INVALID_STORIES, STORIES

ROOT = Path(__file__).resolve().parent.parent


def test_check_lists_rejections_relative_to_the_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(INVALID_STORIES)]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = (INVALID_STORIES / "expected-errors").read_text().splitlines()
    assert [line.split(":")[:2] for line in lines[:-1]] == [
        line.split(":")[:2] for line in expected]
    assert lines[-1] == "1 stories loaded, 15 rejected"


def test_check_on_the_bundled_samples_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert capsys.readouterr().out == "15 stories loaded, 0 rejected\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "/no/such/folder"], "does not exist"),
        (["check", "--tz", "Mars/Base"], "unknown time zone"),
        (["export", "--tz", "nowhere"], "unknown time zone"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_export_prints_the_parsed_form_in_latest_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(STORIES)]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [json.loads(line) for line in (STORIES / "expected.jsonl").read_text().splitlines()]
    assert got == expected


def test_export_in_another_zone_and_rejections_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(INVALID_STORIES), "--tz", "Europe/Berlin"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["updated"] == "2025-03-21T09:00:00+01:00"
    assert "three-stamps.txt:3:" in captured.err


def test_bad_config_value_names_the_key(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("delivery:\n  rate_per_second: -3\n")
    assert main(["--config", str(config), "check"]) == 2
    assert "delivery.rate_per_second" in capsys.readouterr().err


def test_run_bot_script_is_the_entry_point() -> None:
    done = subprocess.run([sys.executable, "run_bot.py", "check", str(STORIES)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "15 stories loaded, 0 rejected\n")


def _config_with_database(tmp_path: Path) -> Path:
    config = tmp_path / "bot.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'ops.db'}\n")
    return config


async def _subscribe(config: Path) -> None:
    from datetime import UTC, datetime, time
    from zoneinfo import ZoneInfo

    from bot.config import load_settings
    from bot.storage.database import Database
    from bot.storage.subscriptions import Destination, SubscriptionStore

    db = await Database.open(load_settings(config).database.url)
    try:
        store = SubscriptionStore(db)
        now = datetime(2025, 3, 31, 6, 0, tzinfo=UTC)
        await store.subscribe(Destination(42), "private", time(7, 30), ZoneInfo("Asia/Tokyo"), now)
        await store.subscribe(Destination(-100, 5), "supergroup", time(9, 0), ZoneInfo("UTC"), now)
        await store.follow(Destination(42), ["harbour"], now)
    finally:
        await db.close()


def test_stats_and_subscriber_export_read_the_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    config = _config_with_database(tmp_path)
    asyncio.run(_subscribe(config))
    assert main(["--config", str(config), "stats"]) == 0
    out = capsys.readouterr().out
    assert "Active subscriptions: 2 (private 1, supergroup 1)" in out
    assert "Stories loaded: 15" in out
    assert main(["--config", str(config), "subscribers", "export", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["chat_id"], r["thread_id"], r["timezone"], r["follows"]) for r in rows] == [
        (42, 0, "Asia/Tokyo", "harbour"), (-100, 5, "UTC", "")]
    assert main(["--config", str(config), "subscribers", "export"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("chat_id,thread_id,chat_type") and len(lines) == 3


def test_preview_latest_is_readable_in_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "latest", "--folder", str(STORIES)]) == 0
    out = capsys.readouterr().out
    assert "**1. Night trains return" in out and "<b>" not in out


def test_preview_story_html_parts_are_valid_telegram_html(
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.render import message_problems

    assert main(["preview", "story", "5f0c2a", "--folder", str(STORIES), "--html"]) == 0
    parts = capsys.readouterr().out.split("--- message ")[1:]
    assert parts and parts[0].startswith("1/")
    html = parts[0].split("---\n", 1)[1]
    assert html.startswith("<b>Central bank of Arlenia")
    assert message_problems(html.strip()) == []


def test_preview_digest_as_of_a_pretended_time_in_a_zone(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["preview", "digest", "--folder", str(STORIES), "--now", "2025-03-31T12:00",
            "--tz", "Europe/Berlin"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Your briefing — Monday, 31 March 2025" in out
    assert "Central bank of Arlenia" in out and "Night trains" not in out  # not yet written


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["preview", "story", "zzzz"], 1, "no story matches"),
    (["preview", "story"], 2, "needs REF"),
    (["preview", "digest", "--now", "yesterday"], 2, "--now"),
])
def test_preview_problems_are_explained(argv: list[str], code: int, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ("delivery:\n  scan_seconds: 0.0001\n",
         "error: delivery.scan_seconds: must be a number from 1 to 3600, got 0.0001"),
        ("delivery:\n  rate_per_second: 1e9\n",
         "error: delivery.rate_per_second: must be a number, e.g. 25, got '1e9'"),
    ],
)
def test_check_with_an_out_of_range_setting_prints_one_line_and_exits_2(
        tmp_path: Path, yaml_text: str, line: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    done = subprocess.run([sys.executable, "run_bot.py", "--config", str(config), "check"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")


@pytest.mark.parametrize("command", [["stats"], ["subscribers", "export"],
                                     ["subscribers", "export", "--format", "jsonl"]])
def test_operator_commands_refuse_a_database_that_does_not_exist(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped database.url must not be answered with an empty database and zeros."""
    config = _config_with_database(tmp_path)
    assert main(["--config", str(config), *command]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: no database at ") and "ops.db" in line
    assert "has the bot run with this configuration yet?" in line
    assert not (tmp_path / "ops.db").exists()


def test_operator_commands_do_not_create_a_missing_database_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'typo' / 'ops.db'}\n")
    for command in (["stats"], ["subscribers", "export"]):
        assert main(["--config", str(config), *command]) == 2
        assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
