"""Soak benchmark: the bot heals itself after crashes and database outages, and a reader's
long story does not stall a broadcast.

Prints one JSON object of named figures::

    python benchmarks/soak.py                          # kill, outage and reader on SQLite
    python benchmarks/soak.py --quick                  # 2,000 destinations, 5 kills, 10 s
    python benchmarks/soak.py --scenarios kill,outage --runs 3
    python benchmarks/soak.py --database-url postgresql+asyncpg://user@host:5432/db

The bot runs as operators run it: ``python run_bot.py --config FILE run`` (the token in
``TELEGRAM_BOT_TOKEN``, ``telegram.base_url`` pointing at the sandbox Bot API server, a
fresh ``monitoring.port`` per process), against the sandbox server in its own process and a
throw-away database: a SQLite file, or with ``--database-url`` a PostgreSQL database created
next to the given one (the role needs CREATEDB) and dropped afterwards. The benchmark writes
the story folder: a few stories of the last hours (so a briefing has something to say) and,
for the reader, one story of about 10,000 bullets that renders as 52 parts. Every
subscription, message and state figure is counted from what the sandbox received and what
the ledger says, never from the bot's own counters.

What it measures
----------------
``kill``
    ``--destinations`` (10,000) private chats subscribed to a daily briefing at the current
    UTC minute (already due when the bot starts: its first due scan creates every row), and
    an admin's ``/broadcast`` to the same audience, pressed "Send" once the bot runs: 20,000
    messages. The sandbox applies Telegram's flood model with the overall cap raised to
    300/s, and the bot sends at 280/s (``delivery.rate_per_second``). Once the broadcast's
    rows exist, the bot is SIGKILLed ``--kills`` (20) times and started again at once each
    time (the restart's delay after the kill is measured, target < 1 s). Kill moments are
    random (``--seed``): each one a uniform delay after the restarted process was seen
    sending again, sized so the kills spread over the fan-out. Figures: ``lost``
    (destination messages that never arrived; target 0), ``duplicates`` (extra copies that
    arrived) against ``in_flight_at_kills`` (ledger rows in state ``sending`` held by the
    killed process, read right after each kill; target: duplicates <= in flight), and the
    time from the last kill to everything delivered against ``bound_s`` = lease_seconds +
    10 s + remaining / rate (remaining: messages not yet delivered at the last kill).
``outage``
    The same fan-out; when about 30 % of it has arrived, the database stops answering for
    ``--outage`` (30) seconds. SQLite: another process holds ``BEGIN IMMEDIATE`` on the file.
    PostgreSQL: every connection to the bot's database is terminated
    (``pg_terminate_backend``) every second. Figures: ``lost`` (target 0), whether the bot
    process stayed up (same pid, never exited; target true), ``resumed_after_s``: from the
    database answering again to the next message arriving (target <= 5 s), ``duplicates``
    (target 0: no process died, so no message had an unknown fate), what ``/healthz``
    said meanwhile, and the bot's CPU share during the outage.
``reader``
    Telegram's flood model as the sandbox has it (30/s overall, one message a second per
    chat after a burst of 3, 20 a minute per group); the bot at 28/s broadcasts to the
    destinations, and 3 s into it a reader asks ``/story`` for the 52-part story, pressing
    "Continue" under each batch (``telegram.story_parts_at_once``) until every part has
    arrived. Figures, over the time the story is being sent: bulk messages per second
    (average, and the slowest 10 s; target >= 26/s) and 429 answers to bulk sends over the
    whole scenario (target 0); also the reader's 429s and how long the story took.

Deviations from the embedded defaults, all in the output: the story folder, the admin id,
``monitoring.port`` and ``delivery.rate_per_second``; ``--lease-seconds`` and
``--scan-seconds`` set the other two delivery settings the scenarios depend on (default:
the bot's own). ``first_briefing_after_start_s`` shows when the first briefing arrived: a
restarted bot's catch-up scan runs at its start.

Each wait has a deadline (``--timeout``): a wait that runs out becomes an ``error`` in the
scenario, never a hang; every child process is stopped whatever happens. The benchmark is
the bot's supervisor too: a bot that exits by itself is started again a second later, and
counted (``unexpected_exits``, with the last line it logged). With ``--runs k`` each
scenario reports the median of every figure and each run; a target counts as met only if
every run met it. ``--log-dir DIR`` keeps the logs of every process (one per bot start).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import math
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    BenchmarkError,
    CallLog,
    Child,
    Flood,
    Sandbox,
    ScratchDatabase,
    emit,
    error_text,
    free_port,
    healthz,
    median_figures,
    resolve_output_dirs,
    rnd,
    run_bot_argv,
    wait_healthy,
    write_bot_config,
)

SCRIPT = Path(__file__).resolve()
TOKEN = "123456789:AAHsoakBENCHMARKsoak0123456789abcdefgh"
FIRST_CHAT = 710_000_001
ADMIN_ID = 610_000_001
READER_ID = 810_000_001
FAST_FLOOD = Flood(300, 1, 20, per_chat_burst=3)  # Telegram's model, overall cap raised
TELEGRAM_FLOOD = Flood(30, 1, 20, per_chat_burst=3)
FAST_RATE = 280.0
READER_RATE = 28.0
BROADCAST_MARK = "soak-broadcast"
BROADCAST_TEXT = f"Hello subscribers: this is a {BROADCAST_MARK} announcement."
FRESH_STORIES = 5
STORY_PARTS = 52
STORY_BULLETS = 10_000
OUTAGE_AT = 0.3  # share of the fan-out delivered when the outage begins
READER_WARM_UP = 3.0
READER_BUCKET = 10.0
RESTART_WITHIN = 1.0
WATCH_INTERVAL = 0.25
APP_NAME = "soak-benchmark"  # the benchmark's own PostgreSQL connections
SCENARIOS = ("kill", "outage", "reader")
TARGETS: dict[str, dict[str, float]] = {
    "kill": {"lost_max": 0, "duplicates_max_in_flight": 1, "delivered_within_bound": 1,
             "restart_within_s": RESTART_WITHIN, "kills_during_fan_out": 1},
    "outage": {"lost_max": 0, "duplicates_max": 0, "stayed_up": 1,
               "resumed_after_s_max": 5.0},
    "reader": {"bulk_per_s_min": 26.0, "bulk_429_max": 0},
}


# ==========================================================================================
# Child: a process holding SQLite's write lock (``--serve lock``)
# ==========================================================================================
def _hold_sqlite_lock(path: str, seconds: float) -> None:
    """``BEGIN IMMEDIATE`` on the file for ``seconds``: every writer waits meanwhile."""
    conn = sqlite3.connect(path, timeout=120, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        emit("locked", t=time.monotonic())
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        emit("released", t=time.monotonic())
    finally:
        conn.close()


# ==========================================================================================
# The story folder
# ==========================================================================================
def _stamp(moment: datetime) -> str:
    """A story timestamp line, e.g. ``Mar 30, 2025, 12:01 AM`` (UTC)."""
    hour = moment.hour % 12 or 12
    return f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M} " \
           f"{'AM' if moment.hour < 12 else 'PM'}"


def _long_story(bullets: int, when: datetime) -> str:
    points = "\n".join(f"  • Point {i}: fact x" for i in range(1, bullets + 1))
    return f"{_stamp(when)}\n\nThe long story of the soak benchmark\n\nHighlights\n{points}\n"


def write_stories(folder: Path, now: datetime, *, long_story: bool) -> tuple[str | None, int]:
    """A few stories of the last hours and, if asked, one that renders as STORY_PARTS
    parts (about STORY_BULLETS bullets); (its key, its parts)."""
    from zoneinfo import ZoneInfo

    from bot.render import render_story
    from bot.stories.library import StoryLibrary

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(FRESH_STORIES):
        when = now - timedelta(hours=1, minutes=7 * index)
        (folder / f"{index:03d}_{0x50A4000 + index:016x}.txt").write_text(
            f"{_stamp(when)}\n\nSoak story {index}: the city opens a new bridge\n\n"
            f"Highlights\n  • The bridge {index} opens to traffic today.\n"
            f"  • It took three years to build.\nStory\n\nA short paragraph about bridge "
            f"{index}.\n", encoding="utf-8")
    if not long_story:
        return None, 0
    key = f"{0x50A4FFFF:016x}"
    path = folder / f"999_{key}.txt"
    zone = ZoneInfo("UTC")
    bullets, parts = STORY_BULLETS, 0
    for _ in range(8):  # a few bullets more or fewer until it renders as STORY_PARTS parts
        path.write_text(_long_story(bullets, now - timedelta(hours=2)), encoding="utf-8")
        library = StoryLibrary(folder, zone)
        library.rescan()
        story = library.get(key)
        if story is None:
            raise BenchmarkError(f"the long story was rejected: {library.rejections}")
        parts = len(render_story(story, zone))
        if parts == STORY_PARTS:
            break
        bullets = round(bullets * STORY_PARTS / parts)
    return key, parts


# ==========================================================================================
# What reached whom: the sandbox's call log, classified as it arrives
# ==========================================================================================
@dataclass
class Deliveries:
    """Every answered call of the sandbox, read in the background: destination messages
    (briefing or broadcast), the reader's messages, the admin's status edits."""

    chats: range
    log: CallLog
    first: dict[tuple[int, str], float] = field(default_factory=dict)  # -> when it arrived
    copies: Counter[tuple[int, str]] = field(default_factory=Counter)
    bulk_started: list[float] = field(default_factory=list)  # successful bulk sends
    bulk_finished: list[float] = field(default_factory=list)
    bulk_refused: int = 0  # 429 answers to bulk sends
    reader_parts: list[dict[str, Any]] = field(default_factory=list)
    reader_refused: int = 0
    admin_texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expected(self) -> int:
        return 2 * len(self.chats)  # a briefing and the broadcast

    @property
    def delivered(self) -> int:
        return len(self.first)

    @property
    def complete(self) -> bool:
        return self.delivered >= self.expected

    def duplicates(self) -> Counter[str]:
        extra: Counter[str] = Counter()
        for (_, kind), copies in self.copies.items():
            extra[kind] += copies - 1
        return extra

    def lost(self) -> dict[str, int]:
        got = Counter(kind for _, kind in self.first)
        return {kind: len(self.chats) - got[kind] for kind in ("digest", "broadcast")}

    def take(self, call: dict[str, Any]) -> None:
        method, chat, status = str(call["method"]), call["chat_id"], call["status"]
        text = str(call["params"].get("text", ""))
        if chat in self.chats:
            if status == 429:
                self.bulk_refused += 1
            if method != "sendMessage" or status != 200:
                return
            key = (chat, "broadcast" if BROADCAST_MARK in text else "digest")
            self.copies[key] += 1
            self.first.setdefault(key, float(call["finished"]))
            self.bulk_started.append(float(call["started"]))
            self.bulk_finished.append(float(call["finished"]))
        elif chat == READER_ID:
            if status == 429:
                self.reader_refused += 1
            elif method == "sendMessage" and status == 200:
                self.reader_parts.append({"finished": float(call["finished"]), "text": text})
        elif chat == ADMIN_ID and status == 200 and method == "editMessageText":
            self.admin_texts.append(text)

    async def follow(self) -> None:
        """Read the call log until cancelled."""
        while True:
            try:
                for call in await self.log.poll():
                    self.take(call)
            except Exception as error:  # a figure, and the waits time out if it persists
                self.errors.append(error_text(error))
            self._changed.set()
            await asyncio.sleep(WATCH_INTERVAL)

    async def until(self, test: Callable[[], bool], within: float, what: str) -> None:
        """Wait until ``test()`` holds after a read of the call log; BenchmarkError naming
        ``what`` if it does not within ``within`` s."""
        if not await self._until(test, within):
            raise BenchmarkError(f"{what}: not within {within:g} s ({self.delivered} of "
                                 f"{self.expected} messages arrived)")

    async def _until(self, test: Callable[[], bool], within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                while not test():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if every message arrives meanwhile."""
        await self._until(lambda: self.complete, seconds)

    def sending_since(self, moment: float) -> Callable[[], bool]:
        """A test: a message was sent after ``moment``, or there is nothing left to send."""
        return lambda: self.complete or self.first_send_after(moment) is not None

    def first_of(self, kind: str) -> float:
        """When the first message of ``kind`` arrived (NaN: none did)."""
        return min((t for (_, k), t in self.first.items() if k == kind), default=math.nan)

    def arrived_by(self, moment: float) -> int:
        return sum(1 for t in self.first.values() if t <= moment)

    def completed_at(self) -> float | None:
        return max(self.first.values()) if self.complete else None

    def first_send_after(self, moment: float) -> float | None:
        ordered = sorted(self.bulk_started)
        index = bisect.bisect_left(ordered, moment)
        return ordered[index] if index < len(ordered) else None

    def longest_pause(self, since: float) -> float:
        """The longest time without a message arriving, from ``since`` to the last one."""
        times = [since, *sorted(t for t in self.bulk_finished if t >= since)]
        return max((b - a for a, b in itertools.pairwise(times)), default=math.nan)

    def sends_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.bulk_finished if start <= t < end)


# ==========================================================================================
# The ledger, read by the benchmark
# ==========================================================================================
class Ledger:
    """Counts from the bot's database (its own schema, read-only queries)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def _rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.db.read() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def rows_of(self, kind: str) -> int:
        rows = await self._rows("SELECT count(*) FROM deliveries WHERE kind = :kind",
                                kind=kind)
        return int(rows[0][0])

    async def sending(self, pid: int | None = None) -> int:
        """Rows in flight: all of them, or those held by the worker of process ``pid``."""
        sql = "SELECT count(*) FROM deliveries WHERE state = 'sending'"
        if pid is None:
            return int((await self._rows(sql))[0][0])
        rows = await self._rows(sql + " AND claimed_by IN (SELECT id FROM workers WHERE "
                                      "pid = :pid)", pid=pid)
        return int(rows[0][0])

    async def states(self) -> dict[str, dict[str, int]]:
        """Rows by kind and state, and how many were resent after an unknown fate."""
        figures: dict[str, dict[str, int]] = {}
        for kind, state, count, resent in await self._rows(
                "SELECT kind, state, count(*), sum(CASE WHEN uncertain_count > 0 THEN 1 "
                "ELSE 0 END) FROM deliveries GROUP BY kind, state"):
            entry = figures.setdefault(str(kind), {})
            entry[str(state)] = int(count)
            entry["uncertain_once"] = entry.get("uncertain_once", 0) + int(resent or 0)
        return figures

    async def broadcast_state(self) -> str | None:
        rows = await self._rows("SELECT state FROM broadcasts ORDER BY id DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    async def settled(self) -> bool:
        rows = await self._rows("SELECT count(*) FROM deliveries WHERE state IN "
                                "('pending', 'sending')")
        return int(rows[0][0]) == 0


# ==========================================================================================
# The bot under test: `run_bot.py --config FILE run`, restarted like a supervisor would
# ==========================================================================================
@dataclass
class Supervisor:
    """Starts the bot process, and again after a kill; like ``Restart=always``, starts it
    again a second after it exits by itself (counted in ``exits``). Keeps every log."""

    name: str
    logs: Path
    settings: dict[str, Any]
    workdir: Path
    starts: list[Child] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)  # exits nobody asked for
    health_url: str = ""
    _ended: set[int] = field(default_factory=set)  # pids this benchmark killed or stopped

    @property
    def bot(self) -> Child:
        return self.starts[-1]

    async def kill(self) -> Child:
        """SIGKILL the running bot (not restarted here); the killed process."""
        bot = self.bot
        if bot.pid is not None:
            self._ended.add(bot.pid)
        await bot.kill()
        return bot

    async def restart_on_exit(self) -> None:
        """Run until cancelled: a bot that ended by itself is started again after 1 s."""
        while True:
            await asyncio.sleep(0.2)
            if not self.starts:
                continue
            bot = self.bot
            if bot.exit_code is None or bot.pid is None or bot.pid in self._ended:
                continue
            self._ended.add(bot.pid)
            lines = bot.log_tail(2000).splitlines()
            self.exits.append({"pid": bot.pid, "exit_code": bot.exit_code,
                               "last_line": lines[-1][:200] if lines else None})
            await asyncio.sleep(1.0)
            await self.start()

    def exit_figures(self) -> dict[str, Any]:
        return {"unexpected_exits": len(self.exits),
                "first_unexpected_exit": self.exits[0] if self.exits else None}

    async def start(self) -> Child:
        """A new process with a fresh monitoring port (the last one may be in TIME_WAIT)."""
        port = free_port()
        settings = {**self.settings, "monitoring": {"port": port}}
        config = write_bot_config(self.workdir / f"{self.name}-bot.yaml", settings)
        self.health_url = f"http://127.0.0.1:{port}/healthz"
        child = Child(f"bot ({self.name} #{len(self.starts) + 1})",
                      self.logs / f"{self.name}-bot-{len(self.starts) + 1:02d}.log")
        await child.spawn(run_bot_argv(config), env={"TELEGRAM_BOT_TOKEN": TOKEN},
                          stdout_to_log=True)
        self.starts.append(child)
        return child

    async def stop(self) -> None:
        for child in self.starts:
            if child.pid is not None:
                self._ended.add(child.pid)
            await child.stop(within=45, polite=False)

    def log_figures(self) -> dict[str, Any]:
        """ERROR lines and tracebacks in the logs of every start."""
        errors: list[str] = []
        tracebacks = 0
        for child in self.starts:
            with contextlib.suppress(OSError):
                for line in child.log_path.read_text(errors="replace").splitlines():
                    if " ERROR " in line:
                        errors.append(line.split(" ERROR ", 1)[1][:160])
                    tracebacks += line.startswith("Traceback")
        return {"bot_log_errors": len(errors), "bot_log_tracebacks": tracebacks,
                "bot_log_first_errors": list(dict.fromkeys(errors))[:3],
                **self.exit_figures()}


def bot_settings(sandbox: Sandbox, db: ScratchDatabase, stories: Path, rate: float,
                 args: argparse.Namespace) -> dict[str, Any]:
    delivery: dict[str, Any] = {"rate_per_second": rate}
    for key in ("lease_seconds", "scan_seconds"):
        if getattr(args, key) is not None:
            delivery[key] = getattr(args, key)
    return {
        "telegram": {"base_url": sandbox.base_url, "admin_ids": [ADMIN_ID]},
        "stories": {"folder": str(stories), "timezone": "UTC"},
        "database": {"url": db.url},
        "delivery": delivery,
        "log_level": "INFO",
    }


# ==========================================================================================
# One scenario's stage: sandbox, database, story folder, the bot, the call log
# ==========================================================================================
@dataclass
class Context:
    args: argparse.Namespace
    workdir: Path
    rng: random.Random

    @property
    def logs(self) -> Path:
        return Path(self.args.log_dir) if self.args.log_dir else self.workdir


@dataclass
class Stage:
    """What a scenario runs against; the bot is started by the scenario."""

    name: str
    chats: range
    sandbox: Sandbox
    db: ScratchDatabase
    ledger: Ledger
    supervisor: Supervisor
    deliveries: Deliveries
    story_key: str | None
    story_parts: int


@contextlib.asynccontextmanager
async def stage(ctx: Context, name: str, *, flood: Flood, rate: float, due: bool,
                long_story: bool) -> AsyncIterator[Stage]:
    """Everything a scenario needs, torn down whatever happens. ``due``: the briefings
    are due when the bot starts (at the current minute); otherwise not for hours."""
    args = ctx.args
    chats = range(FIRST_CHAT, FIRST_CHAT + args.destinations)
    now = datetime.now(UTC)
    folder = ctx.workdir / f"{name}-stories"
    story_key, story_parts = write_stories(folder, now, long_story=long_story)
    sandbox = Sandbox(ctx.logs / f"{name}-server.log")
    db = ScratchDatabase(ctx.workdir, name, args.database_url, prefix="soak")
    supervisor: Supervisor | None = None
    ledger: Ledger | None = None
    follower: asyncio.Task[None] | None = None
    restarter: asyncio.Task[None] | None = None
    try:
        await db.create()
        await sandbox.start(flood)
        minute = now.replace(second=0, microsecond=0)
        at, next_due = ((minute.strftime("%H:%M"), minute) if due else
                        ((minute + timedelta(hours=6)).strftime("%H:%M"), None))
        await asyncio.gather(sandbox.register_private_chats(chats),
                             db.subscribe(chats, at, now=now, next_due_at=next_due))
        ledger = Ledger(await db.open(application_name=APP_NAME))
        supervisor = Supervisor(name, ctx.logs, bot_settings(sandbox, db, folder, rate, args),
                                ctx.workdir)
        deliveries = Deliveries(chats, CallLog(sandbox.clients[-1], await sandbox.call_count()))
        follower = asyncio.create_task(deliveries.follow())
        restarter = asyncio.create_task(supervisor.restart_on_exit())
        yield Stage(name, chats, sandbox, db, ledger, supervisor, deliveries, story_key,
                    story_parts)
    finally:
        for task in (follower, restarter):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if supervisor is not None:
            await supervisor.stop()
        if ledger is not None:
            await ledger.db.close()
        await sandbox.stop()
        await db.drop()


async def start_broadcast(current: Stage, within: float) -> dict[str, Any]:
    """The admin's ``/broadcast``, its preview, "Send"; returns once every row of it exists
    in the ledger (kills and outages start only then, during the sending, which is what
    the scenarios measure), or once the bot ended the broadcast with fewer rows: then the
    rest of the audience never gets it, which the figures say."""
    client = current.sandbox.client
    post = await client.user_message(f"/broadcast {BROADCAST_TEXT}", user_id=ADMIN_ID)
    await client.wait_reply(post["update_id"], chat_id=ADMIN_ID, count=2, timeout=60)
    status, data = _send_button(await client.messages(ADMIN_ID, bot_only=True))
    await client.press(ADMIN_ID, message_id=status["message_id"], data=data, timeout=60)
    deadline = time.monotonic() + within
    while (rows := await current.ledger.rows_of("broadcast")) < len(current.chats):
        state = await current.ledger.broadcast_state()
        if state not in (None, "sending"):
            return {"broadcast_rows": rows, "broadcast_ended_while_fanning_out": state}
        if time.monotonic() > deadline:
            raise BenchmarkError(f"the broadcast's rows were not all created within "
                                 f"{within:g} s of pressing Send ({rows} were)")
        await asyncio.sleep(0.2)
    return {"broadcast_rows": rows}


def _send_button(messages: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The preview's status message and the data of its "Send" button."""
    for message in reversed(messages):
        for button in message["buttons"]:
            data = str(button.get("callback_data") or "")
            if data.startswith("bc:s:"):
                return message, data
    raise BenchmarkError("no broadcast preview with a Send button")


async def settle(current: Stage, within: float) -> None:
    """The barrier before counting: no ledger row is pending or in flight, and either
    every message arrived or nothing more can (every briefing row exists and the broadcast
    has ended); then the call log is read past every answered call."""
    deliveries, ledger = current.deliveries, current.ledger
    deadline = time.monotonic() + within
    while not await ledger.settled() or not (
            deliveries.complete or (await ledger.rows_of("digest") >= len(current.chats)
                                    and await ledger.broadcast_state() != "sending")):
        if time.monotonic() > deadline:
            raise BenchmarkError(f"not settled within {within:g} s: {deliveries.delivered} "
                                 f"of {deliveries.expected} messages arrived, ledger "
                                 f"{await ledger.states()}")
        await asyncio.sleep(0.5)
    for call in await deliveries.log.poll():
        deliveries.take(call)


async def final_report(current: Stage, within: float) -> str | None:
    """The broadcast's final report (the admin's status message), if it comes in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for text in reversed(current.deliveries.admin_texts):
            if "done in" in text:
                return re.sub(r"<[^>]+>", "", text)[:400]
        await asyncio.sleep(0.5)
    return None


def outcome(current: Stage) -> dict[str, Any]:
    deliveries = current.deliveries
    duplicates = deliveries.duplicates()
    lost = deliveries.lost()
    return {"messages_expected": deliveries.expected, "messages_arrived": deliveries.delivered,
            "lost": sum(lost.values()), "lost_by_kind": lost,
            "duplicates": sum(duplicates.values()), "duplicates_by_kind": dict(duplicates),
            "bulk_429": deliveries.bulk_refused, "calls_left_unanswered": deliveries.log.stuck}


# ==========================================================================================
# 1. Kill soak: SIGKILL during the fan-out, restart at once
# ==========================================================================================
async def scenario_kill(ctx: Context, run: int) -> dict[str, Any]:
    args = ctx.args
    result: dict[str, Any] = {"destinations": args.destinations, "kills_planned": args.kills,
                              "rate_per_second": FAST_RATE,
                              "server_flood": FAST_FLOOD.to_json()}
    async with stage(ctx, f"kill{run}", flood=FAST_FLOOD, rate=FAST_RATE, due=True,
                     long_story=False) as current:
        supervisor, deliveries, ledger = current.supervisor, current.deliveries, current.ledger
        try:
            began = time.monotonic()
            await supervisor.start()
            await wait_healthy(supervisor.bot, supervisor.health_url, 90)
            result.update(await start_broadcast(current, args.timeout))
            kills: list[dict[str, Any]] = []
            for index in range(args.kills):
                remaining = deliveries.expected - deliveries.delivered
                # Spread the kills left over what is left to send: even the last one falls
                # within 80 % of it at the nominal rate (slower sending only makes it earlier).
                mean_gap = 0.8 * remaining / FAST_RATE / (args.kills - index + 1)
                await deliveries.pause(ctx.rng.uniform(0.0, 2 * mean_gap))
                if deliveries.complete:
                    break  # the fan-out ended before every kill: see "kills"
                kills.append(await _kill_and_restart(supervisor, ledger))
                await deliveries.until(deliveries.sending_since(kills[-1]["spawned"]),
                                       args.lease_seconds + 60,
                                       f"sending again after kill {index + 1}")
            last_kill = kills[-1]["killed"] if kills else math.nan
            remaining = deliveries.expected - deliveries.arrived_by(last_kill)
            bound = args.lease_seconds + 10 + remaining / FAST_RATE
            await settle(current, max(bound, 60) + args.timeout)
            done = deliveries.completed_at() or math.nan  # NaN: not everything arrived
            result.update(outcome(current))
            in_flight = [k["in_flight"] for k in kills]  # None: not read within the second
            resumes = [first - k["spawned"] for k in kills
                       if (first := deliveries.first_send_after(k["spawned"])) is not None]
            result.update({
                "kills": len(kills),
                "kill_moments_s": [rnd(k["killed"] - began, 1) for k in kills],
                "in_flight_at_kills": sum(x for x in in_flight if x is not None),
                "in_flight_each": in_flight,
                "sending_at_kills_all_workers": sum(k["sending_all"] or 0 for k in kills),
                "restart_after_kill_max_s": rnd(max((k["spawned"] - k["killed"]
                                                     for k in kills), default=math.nan), 3),
                "restart_to_sending_median_s": rnd(_median(resumes)),
                "restart_to_sending_max_s": rnd(max(resumes, default=math.nan)),
                "remaining_at_last_kill": remaining,
                "last_kill_to_all_delivered_s": rnd(done - last_kill),
                "bound_s": rnd(bound),
                "fan_out_s": rnd(done - began, 1),
                "first_briefing_after_start_s": rnd(deliveries.first_of("digest") - began),
                "ledger": await ledger.states(),
                "broadcast_report": await final_report(current, 20),
                **supervisor.log_figures(),
            })
        except (BenchmarkError, OSError, TimeoutError) as error:
            result["error"] = error_text(error)
            result.update(supervisor.log_figures())
    clean = "error" not in result
    result["targets"] = TARGETS["kill"]
    result["targets_met"] = {
        "kills_during_fan_out": clean and result.get("kills") == args.kills,
        "lost_max": clean and result.get("lost") == 0,
        "duplicates_max_in_flight": clean and _le(result.get("duplicates"),
                                                  result.get("in_flight_at_kills")),
        "delivered_within_bound": _le(result.get("last_kill_to_all_delivered_s"),
                                      result.get("bound_s")),
        "restart_within_s": _le(result.get("restart_after_kill_max_s"), RESTART_WITHIN),
    }
    return result


async def _kill_and_restart(supervisor: Supervisor, ledger: Ledger) -> dict[str, Any]:
    """SIGKILL, count the rows the dead process left in flight, start a new one (within a
    second of the kill whatever the count costs)."""
    killed = time.monotonic()
    bot = await supervisor.kill()
    pid = bot.pid
    in_flight: int | None = None
    sending_all: int | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RESTART_WITHIN * 0.6):
            in_flight = await ledger.sending(pid)
            sending_all = await ledger.sending()
    await supervisor.start()
    return {"killed": killed, "spawned": time.monotonic(), "pid": pid,
            "in_flight": in_flight, "sending_all": sending_all,
            "exit_code": bot.exit_code}


# ==========================================================================================
# 2. Database outage in the middle of the fan-out
# ==========================================================================================
async def scenario_outage(ctx: Context, run: int) -> dict[str, Any]:
    args = ctx.args
    result: dict[str, Any] = {"destinations": args.destinations, "outage_s": args.outage,
                              "rate_per_second": FAST_RATE,
                              "server_flood": FAST_FLOOD.to_json()}
    async with stage(ctx, f"outage{run}", flood=FAST_FLOOD, rate=FAST_RATE, due=True,
                     long_story=False) as current:
        supervisor, deliveries, ledger = current.supervisor, current.deliveries, current.ledger
        try:
            await supervisor.start()
            bot = supervisor.bot
            pid = bot.pid
            await wait_healthy(bot, supervisor.health_url, 90)
            result.update(await start_broadcast(current, args.timeout))
            await deliveries.until(lambda: deliveries.delivered >= OUTAGE_AT * deliveries.expected,
                                   args.timeout, "the fan-out under way")
            watch = HealthWatch(supervisor.health_url)
            watcher = asyncio.create_task(watch.run())
            cpu_before = bot.cpu_seconds()
            try:
                if current.db.kind == "sqlite":
                    began, ended, extra = await _lock_sqlite(ctx, current, args.outage)
                else:
                    began, ended, extra = await _terminate_backends(current, args.outage)
                cpu_during = _minus(bot.cpu_seconds(), cpu_before)
                arrived_at_end = deliveries.delivered
                await deliveries.until(deliveries.sending_since(ended), args.timeout,
                                       "sending again after the outage")
                await settle(current, args.timeout)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            first = deliveries.first_send_after(ended)
            result.update(extra)
            result.update(outcome(current))
            result.update({
                "outage_measured_s": rnd(ended - began),
                "arrived_before_outage": deliveries.arrived_by(began),
                "sends_during_outage": deliveries.sends_between(began, ended),
                "longest_pause_s": rnd(deliveries.longest_pause(began)),
                "left_after_outage": deliveries.expected - arrived_at_end,
                "resumed_after_s": rnd(first - ended) if first is not None else None,
                "stayed_up": bot.exit_code is None and bot.pid == pid
                and len(supervisor.starts) == 1 and not supervisor.exits,
                "exit_code": bot.exit_code,
                "bot_cpu_share_during_outage": rnd(_div(cpu_during, ended - began)),
                "bot_peak_rss_mb": rnd(bot.peak_rss_mb(), 1),
                **watch.figures(began, ended),
                "health_command": await _health_command(current),
                "ledger": await ledger.states(),
                **supervisor.log_figures(),
            })
        except (BenchmarkError, OSError, TimeoutError) as error:
            result["error"] = error_text(error)
            result.update(supervisor.log_figures())
    result["targets"] = TARGETS["outage"]
    result["targets_met"] = {
        "lost_max": result.get("lost") == 0 and "error" not in result,
        "duplicates_max": result.get("duplicates") == 0 and "error" not in result,
        "stayed_up": result.get("stayed_up") is True,
        "resumed_after_s_max": _le(result.get("resumed_after_s"), 5.0),
    }
    return result


async def _lock_sqlite(ctx: Context, current: Stage,
                       seconds: float) -> tuple[float, float, dict[str, Any]]:
    """Another process holds ``BEGIN IMMEDIATE`` for ``seconds``; when it had and released
    the lock."""
    assert current.db.path is not None
    locker = Child("sqlite lock holder", ctx.logs / f"{current.name}-lock.log")
    try:
        await locker.start([sys.executable, str(SCRIPT), "--serve", "lock", "--path",
                            str(current.db.path), "--seconds", str(seconds)],
                           '"locked"', within=ctx.args.timeout)
        locked = float((locker.event("locked") or {})["t"])
        released = float((await locker.wait_event("released", seconds + 60))["t"])
    finally:
        await locker.stop(within=seconds + 10, polite=False)
    return locked, released, {"outage": "sqlite BEGIN IMMEDIATE held by another process"}


async def _terminate_backends(current: Stage,
                              seconds: float) -> tuple[float, float, dict[str, Any]]:
    """Every second for ``seconds``: terminate every connection to the bot's database
    but the benchmark's own."""
    import asyncpg
    from sqlalchemy.engine import make_url

    assert current.db.server_url is not None and current.db.pg_name is not None
    server = make_url(current.db.server_url).set(drivername="postgresql")
    conn = await asyncpg.connect(server.render_as_string(hide_password=False))
    terminated = rounds = 0
    try:
        began = time.monotonic()
        while True:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() "
                "AND application_name IS DISTINCT FROM $2", current.db.pg_name, APP_NAME)
            terminated += sum(1 for r in rows if r["done"])
            rounds += 1
            ended = time.monotonic()
            if ended - began >= seconds:
                break
            await asyncio.sleep(max(0.0, began + rounds - time.monotonic()))
    finally:
        await conn.close()
    return began, ended, {"outage": "pg_terminate_backend every second",
                          "backends_terminated": terminated, "termination_rounds": rounds}


@dataclass
class HealthWatch:
    """What ``/healthz`` answers, every half second."""

    url: str
    answers: list[tuple[float, int | None, str]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            status, body = await healthz(self.url)
            reasons = body.get("reasons") if isinstance(body, dict) else body
            self.answers.append((time.monotonic(), status, json.dumps(reasons)[:200]))
            await asyncio.sleep(0.5)

    def figures(self, began: float, ended: float) -> dict[str, Any]:
        during = [a for a in self.answers if began <= a[0] <= ended]
        unwell = [a for a in during if a[1] != 200]
        healthy_again = next((a[0] for a in self.answers if a[0] > ended and a[1] == 200),
                             None)
        return {
            "healthz_answers_during_outage": len(during),
            "healthz_unhealthy_during_outage": len(unwell),
            "healthz_first_unhealthy_reason": unwell[0][2] if unwell else None,
            "healthz_healthy_again_after_s": rnd(healthy_again - ended)
            if healthy_again is not None else None,
        }


async def _health_command(current: Stage) -> str:
    """``run_bot.py health`` beside the running bot: its exit code and line."""
    config = current.supervisor.workdir / f"{current.name}-bot.yaml"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT.parents[1] / "run_bot.py"), "--config", str(config),
        "health", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        async with asyncio.timeout(60):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return "no answer within 60 s"
    return f"exit {process.returncode}: {out.decode(errors='replace').strip()[:200]}"


# ==========================================================================================
# 3. A reader's 52-part story during a broadcast under Telegram's flood limits
# ==========================================================================================
async def scenario_reader(ctx: Context, run: int) -> dict[str, Any]:
    args = ctx.args
    result: dict[str, Any] = {"destinations": args.destinations,
                              "rate_per_second": READER_RATE,
                              "server_flood": TELEGRAM_FLOOD.to_json()}
    async with stage(ctx, f"reader{run}", flood=TELEGRAM_FLOOD, rate=READER_RATE, due=False,
                     long_story=True) as current:
        supervisor, deliveries = current.supervisor, current.deliveries
        try:
            result["story_parts_rendered"] = current.story_parts
            await supervisor.start()
            await wait_healthy(supervisor.bot, supervisor.health_url, 90)
            started = await start_broadcast(current, args.timeout)
            result.update(started)
            _require_whole_broadcast(started, len(current.chats))
            await deliveries.until(lambda: bool(deliveries.bulk_finished), args.timeout,
                                   "the first broadcast message")
            bulk_began = min(deliveries.bulk_started)
            await asyncio.sleep(max(0.0, bulk_began + READER_WARM_UP - time.monotonic()))
            asked, presses = await _read_story(current, args.timeout)
            parts = deliveries.reader_parts
            await asyncio.sleep(READER_BUCKET + 1)  # the rate once the story is sent
            last = max(p["finished"] for p in parts)
            window = last - asked
            in_window = deliveries.sends_between(asked, last)
            buckets = [deliveries.sends_between(t, t + READER_BUCKET) / READER_BUCKET
                       for t in _steps(asked, last - READER_BUCKET, READER_BUCKET)]
            before = deliveries.sends_between(bulk_began, asked) / (asked - bulk_began)
            after = deliveries.sends_between(last, last + READER_BUCKET) / READER_BUCKET
            numbered = re.search(r"\((\d+)/(\d+)\)", parts[0]["text"])
            result.update({
                "bulk_per_s": rnd(in_window / window),
                "bulk_per_s_slowest_10s": rnd(min(buckets)) if buckets else None,
                "bulk_per_s_each_10s": [rnd(b, 1) for b in buckets],
                "bulk_per_s_before_story": rnd(before),
                "bulk_per_s_after_story": rnd(after),
                "bulk_429": deliveries.bulk_refused,
                "reader_429": deliveries.reader_refused,
                "story_parts": len(parts),
                "story_parts_numbered": int(numbered.group(2)) if numbered else None,
                "continue_presses": presses,
                "story_first_part_s": rnd(min(p["finished"] for p in parts) - asked),
                "story_all_parts_s": rnd(window),
                "bulk_sends_while_reading": in_window,
                "bot_peak_rss_mb": rnd(supervisor.bot.peak_rss_mb(), 1),
                **supervisor.log_figures(),
            })
        except (BenchmarkError, OSError, TimeoutError) as error:
            result["error"] = error_text(error)
            result.update(supervisor.log_figures())
    slowest = result.get("bulk_per_s_slowest_10s")
    result["targets"] = TARGETS["reader"]
    result["targets_met"] = {
        "bulk_per_s_min": "error" not in result and _ge(result.get("bulk_per_s"), 26.0)
        and _ge(slowest, 26.0),
        "bulk_429_max": "error" not in result and result.get("bulk_429") == 0,
    }
    return result


def _require_whole_broadcast(started: dict[str, Any], audience: int) -> None:
    ended = started.get("broadcast_ended_while_fanning_out")
    if ended is not None:
        raise BenchmarkError(f"the bot ended the broadcast ({ended}) while it was creating "
                             f"its rows: {started['broadcast_rows']} of {audience} "
                             "destinations, too few to measure a reader against")


async def _read_story(current: Stage, within: float) -> tuple[float, int]:
    """``/story KEY``, then "Continue" under each batch until every part arrived; when it
    was asked and how many presses it took. A bot that sends every part at once (no
    Continue button) is read the same way."""
    client, deliveries = current.sandbox.client, current.deliveries
    expected = current.story_parts
    asked = time.monotonic()
    await client.user_message(f"/story {current.story_key}", user_id=READER_ID)
    pressed: set[int] = set()
    deadline = asked + within
    while len(deliveries.reader_parts) < expected:
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{len(deliveries.reader_parts)} of {expected} story parts "
                                 f"within {within:g} s")
        await asyncio.sleep(0.3)
        for message in await client.messages(READER_ID, bot_only=True):
            button = next((b for b in message["buttons"]
                           if str(b.get("callback_data") or "").startswith("more:")), None)
            if button is None or message["message_id"] in pressed:
                continue
            pressed.add(message["message_id"])
            await client.press(READER_ID, message_id=message["message_id"],
                               data=button["callback_data"], timeout=30)
    return asked, len(pressed)


# ==========================================================================================
# Small helpers
# ==========================================================================================
def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _steps(start: float, stop: float, step: float) -> list[float]:
    count = math.floor((stop - start) / step) + 1 if stop >= start else 0
    return [start + i * step for i in range(count)]


def _le(value: Any, limit: Any) -> bool:
    return isinstance(value, int | float) and isinstance(limit, int | float) and value <= limit


def _ge(value: Any, limit: float) -> bool:
    return isinstance(value, int | float) and value >= limit


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _div(value: float | None, by: float) -> float | None:
    return None if value is None or by <= 0 else value / by


# ==========================================================================================
# Driver
# ==========================================================================================
RUNNERS: dict[str, Callable[[Context, int], Awaitable[dict[str, Any]]]] = {
    "kill": scenario_kill,
    "outage": scenario_outage,
    "reader": scenario_reader,
}


async def run_scenario(ctx: Context, name: str) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for run in range(1, ctx.args.runs + 1):
        started = time.perf_counter()
        try:
            figures = await RUNNERS[name](ctx, run)
        except Exception as error:  # still print the JSON, with the reason
            figures = {"error": error_text(error), "targets_met": {"completed": False}}
        figures["wall_s"] = round(time.perf_counter() - started, 1)
        runs.append(figures)
    met = {target: all(r["targets_met"].get(target, False) for r in runs)
           for target in runs[0]["targets_met"]}
    if len(runs) == 1:
        return {**runs[0], "targets_met": met}
    return {"median": median_figures(runs), "runs": runs, "targets_met": met}


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "quick": args.quick,
        "database": "postgresql" if args.database_url else "sqlite",
        "destinations": args.destinations,
        "kills": args.kills,
        "outage_s": args.outage,
        "lease_seconds": args.lease_seconds,
        "scan_seconds": args.scan_seconds,
        "runs": args.runs,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        ctx = Context(args, Path(tmp), random.Random(args.seed))
        for name in args.scenarios:
            report[name] = await run_scenario(ctx, name)
    report["targets_met"] = {f"{name}.{target}": met for name in args.scenarios
                             for target, met in report[name]["targets_met"].items()}
    report["all_targets_met"] = all(report["targets_met"].values())
    report["total_wall_s"] = round(time.perf_counter() - began, 1)
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes: 2,000 destinations, 5 kills, a 10 s outage")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat each scenario k times; report medians and each run")
    parser.add_argument("--destinations", type=int, default=None,
                        help="subscribed chats (10,000)")
    parser.add_argument("--kills", type=int, default=None, help="kill: SIGKILLs (20)")
    parser.add_argument("--outage", type=float, default=None,
                        help="outage: seconds the database does not answer (30)")
    parser.add_argument("--lease-seconds", type=float, default=None,
                        help="delivery.lease_seconds of the bot (default: the bot's)")
    parser.add_argument("--scan-seconds", type=float, default=None,
                        help="delivery.scan_seconds of the bot (default: the bot's)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the kill moments (default: a random one, reported)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server URL (postgresql+asyncpg://…); a throw-away "
                             "database is created there per scenario and dropped after")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds any single wait may take before it becomes an error")
    parser.add_argument("--log-dir", default=None, help="keep the processes' logs here")
    # Internal: the process that holds SQLite's lock.
    parser.add_argument("--serve", choices=("lock",), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return args
    quick = args.quick
    args.destinations = args.destinations or (2_000 if quick else 10_000)
    args.kills = args.kills if args.kills is not None else (5 if quick else 20)
    args.outage = args.outage or (10.0 if quick else 30.0)
    args.seed = args.seed if args.seed is not None else random.randrange(2**31)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.runs < 1 or args.destinations < 1 or args.kills < 1:
        parser.error("--runs, --destinations and --kills must be at least 1")

    if args.database_url and not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must start with postgresql+asyncpg://")
    return args


def _settle_delivery_settings(args: argparse.Namespace) -> None:
    """The bot's own values for the settings not given, and its own refusal of a value out
    of range (one line naming the key)."""
    from bot.config import settings_from_mapping

    given = {key: getattr(args, key) for key in ("lease_seconds", "scan_seconds")
             if getattr(args, key) is not None}
    delivery = settings_from_mapping({"delivery": given}).delivery
    args.lease_seconds, args.scan_seconds = delivery.lease_seconds, delivery.scan_seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.serve == "lock":
        _hold_sqlite_lock(args.path, args.seconds)
        return 0
    root = str(SCRIPT.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)  # run as a script from anywhere: `bot` is importable
    from bot.errors import BotError
    try:
        _settle_delivery_settings(args)
    except BotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    resolve_output_dirs(args, "log_dir")
    report = asyncio.run(benchmark(args))
    print(json.dumps(report))
    return 0 if report["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
