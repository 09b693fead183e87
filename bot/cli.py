"""The command line: ``run``, ``sandbox``, ``check``, ``export``, ``preview`` and operator tools.

Exit codes: 0 success, 1 when stories were rejected (or a lookup found nothing), 2 for a
usage or configuration error — always with one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from bot.config import Settings, load_settings, parse_zone, story_index_path
from bot.errors import BotError, UsageError
from bot.stories.library import StoryFolderError, StoryLibrary

if TYPE_CHECKING:
    from bot.monitoring import Verdict
    from bot.storage.database import Database

__all__ = ["main"]

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_bot.py",
        description="A Telegram bot that delivers story briefings from a story folder.",
    )
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="YAML settings (default: $BOT_CONFIG, else config/bot.yaml)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot (long polling; the default command)")
    run.add_argument("--role", choices=("all", "updates", "delivery"), default="all",
                     help="updates: answer readers; delivery: due scan, alerts, sending, "
                          "broadcast progress; all (default): both. Other than all needs "
                          "PostgreSQL")

    sandbox = commands.add_parser(
        "sandbox", help="run the bot against a local sandbox Telegram and chat with it")
    sandbox.add_argument("--port", type=int, default=0,
                         help="port for the sandbox Bot API server (default: any free port)")
    sandbox.add_argument("--script", type=Path, metavar="FILE",
                         help="read the chat lines from FILE (`:wait SECONDS` lets time "
                              "pass) and print the transcript")
    sandbox.add_argument("--now", metavar="TIME",
                         help="pretend the clock (ISO time with offset); a few seconds before "
                              "a subscription's time, then `:wait 5`, shows its briefing")
    sandbox.add_argument("--log", type=Path, metavar="FILE",
                         help="write the bot's log to FILE (default: story-bot-sandbox.log "
                              "in the temporary folder)")
    sandbox.add_argument("--web", action="store_true",
                         help="also serve a Telegram-like web chat at http://127.0.0.1:PORT/ "
                              "(standard input optional; runs until interrupted)")

    for name, text in (("check", "validate a story folder"),
                       ("export", "print the parsed stories as JSON Lines")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("folder", nargs="?", type=Path, metavar="FOLDER",
                         help="story folder (default: the configured or bundled one)")
        sub.add_argument("--tz", metavar="ZONE", help="story time zone (IANA name)")
        sub.add_argument("--index", type=Path, metavar="FILE",
                         help="keep the story index in FILE and reuse it next time (an "
                              "unchanged folder is then not read again; the bot's own "
                              "index may be given, even while it runs); default: a "
                              "temporary one")

    preview = commands.add_parser("preview", help="show the messages the bot would send")
    preview.add_argument("what", choices=("latest", "story", "digest"))
    preview.add_argument("ref", nargs="?", metavar="REF",
                         help="for `story`: a number, id, key prefix or words")
    preview.add_argument("--folder", type=Path, help="story folder")
    preview.add_argument("--tz", metavar="ZONE", help="time zone of the stories and reader")
    preview.add_argument("--now", metavar="TIME",
                         help="pretend the clock (ISO time; default: newest story's update)")
    preview.add_argument("--html", action="store_true", help="print the raw HTML parts")

    commands.add_parser("stats", help="subscriber, delivery and story figures (no Telegram)")
    health = commands.add_parser(
        "health", help="is the running bot healthy? (from the database; exit 0 yes, 1 no)")
    health.add_argument("--json", action="store_true", help="print the verdict as JSON")
    subscribers = commands.add_parser("subscribers", help="operator tools for subscribers")
    subscriber_commands = subscribers.add_subparsers(dest="subscribers_command",
                                                     metavar="ACTION", required=True)
    export = subscriber_commands.add_parser("export", help="every subscription, for audits")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    return parser


def _zone(args: argparse.Namespace, settings: Settings) -> ZoneInfo:
    return parse_zone(args.tz, "--tz") if args.tz else settings.stories.timezone


def _open_library(folder: Path | None, tz: ZoneInfo, settings: Settings,
                  index: Path | None = None) -> StoryLibrary:
    library = StoryLibrary(folder or settings.stories.folder, tz, index_path=index)
    library.rescan()
    return library


def _print_rejections(library: StoryLibrary, out: TextIO) -> None:
    for error in library.rejections:
        print(error, file=out)


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    library = _open_library(args.folder, _zone(args, settings), settings, args.index)
    _print_rejections(library, sys.stdout)
    print(f"{library.count()} stories loaded, {len(library.rejections)} rejected")
    return EXIT_REJECTED if library.rejections else EXIT_OK


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    library = _open_library(args.folder, _zone(args, settings), settings, args.index)
    _print_rejections(library, sys.stderr)
    out = sys.stdout
    for story in library.iter_stories():  # streamed: a million are never held at once
        out.write(json.dumps(story.to_json(), ensure_ascii=False) + "\n")
    return EXIT_REJECTED if library.rejections else EXIT_OK


def _parse_now(text: str, tz: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--now: expected an ISO time like 2025-03-31T08:00, got {text!r}"
                         ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    from bot.render import render_digest, render_latest, render_story
    from bot.sandbox.terminal import format_html

    tz = _zone(args, settings)
    library = _open_library(args.folder, tz, settings)
    newest = library.latest(0, 5)
    if not newest:
        raise UsageError(f"no stories in {library.folder}")
    if args.what == "latest":
        parts = render_latest(newest, tz)
    elif args.what == "story":
        if not args.ref:
            raise UsageError("preview story needs REF, e.g. `preview story 1`")
        lookup = library.find(args.ref)
        if lookup.story is None:
            if not lookup.matches:
                print(f"no story matches {args.ref!r}; try `preview latest`", file=sys.stderr)
                return EXIT_REJECTED
            found = "\n".join(f"  {s.key[:8]}  {s.title}" for s in lookup.matches[:10])
            print(f"{len(lookup.matches)} stories match {args.ref!r}; pick one by key:\n"
                  f"{found}", file=sys.stderr)
            return EXIT_REJECTED
        parts = render_story(lookup.story, tz)
    else:
        now = _parse_now(args.now, tz) if args.now else newest[0].updated
        fresh = library.updated_between(now - timedelta(hours=24), now)
        parts = render_digest(fresh, tz, local_date=now.astimezone(tz).date(),
                              top_n=settings.briefing.top_n)
    for number, part in enumerate(parts, start=1):
        if len(parts) > 1 or args.html:
            print(f"--- message {number}/{len(parts)} ---")
        print(part if args.html else format_html(part))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage.owner_lock import sqlite_file
    from bot.telegram.app import Role
    from bot.telegram.runner import run_polling
    from bot.telegram.startup import require_story_folder

    require_story_folder(settings.stories.folder)
    role: Role = getattr(args, "role", "all")  # `run_bot.py` alone: the defaults
    if role != "all" and sqlite_file(settings.database.url) is not None:
        raise UsageError(f"--role {role} needs PostgreSQL (database.url): on SQLite one "
                         "process does everything (--role all)")
    return run_polling(settings, role)


def _cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sandbox.session import run_sandbox_session
    from bot.telegram.startup import require_story_folder

    require_story_folder(settings.stories.folder)  # the log, a file here, would hide it
    return run_sandbox_session(settings, port=args.port, script=args.script, now=args.now,
                               log_file=args.log, web=args.web)


async def _open_existing_database(settings: Settings) -> Database:
    """The bot's database for an operator command, which must not create an empty one."""
    from bot.storage.database import Database
    from bot.storage.owner_lock import sqlite_file

    path = sqlite_file(settings.database.url)
    if path is not None and not path.is_file():
        raise UsageError(f"no database at {path} (database.url): has the bot run with this "
                         "configuration yet?")
    return await Database.open(settings.database.url)


def _cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    from bot.monitoring import judge_from_database

    async def verdict() -> Verdict:
        db = await _open_existing_database(settings)
        try:
            return await judge_from_database(db, settings, datetime.now(UTC))
        finally:
            await db.close()

    from bot.errors import StorageError

    try:
        result = asyncio.run(verdict())
    except StorageError as error:  # unreachable: unhealthy, not a configuration error
        print(f"unhealthy: {error}")
        return EXIT_REJECTED
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.line())
    return EXIT_OK if result.healthy else EXIT_REJECTED


def _cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from bot.operations import collect_stats, format_stats

    index = story_index_path(settings)  # the bot's, if it has run: a big folder is not reread
    library = StoryLibrary(settings.stories.folder, settings.stories.timezone,
                           index_path=index if index.parent.is_dir() else None)
    try:
        library.rescan()
    except StoryFolderError as error:
        print(f"warning: {error}", file=sys.stderr)

    async def figures() -> str:
        db = await _open_existing_database(settings)
        try:
            return format_stats(await collect_stats(db, library, datetime.now(UTC)))
        finally:
            await db.close()

    print(asyncio.run(figures()))
    return EXIT_OK


def _cmd_subscribers(args: argparse.Namespace, settings: Settings) -> int:
    from bot.operations import export_subscribers

    async def export() -> None:
        db = await _open_existing_database(settings)
        try:
            async for chunk in export_subscribers(db, args.format):
                sys.stdout.write(chunk)
        finally:
            await db.close()

    asyncio.run(export())
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "run": _cmd_run,
    "sandbox": _cmd_sandbox,
    "check": _cmd_check,
    "export": _cmd_export,
    "preview": _cmd_preview,
    "stats": _cmd_stats,
    "health": _cmd_health,
    "subscribers": _cmd_subscribers,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    command = args.command or "run"
    try:
        settings = load_settings(args.config)
        return _COMMANDS[command](args, settings)
    except BotError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `export | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
        return EXIT_OK
