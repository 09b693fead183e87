"""Fleet benchmark: several ``run --role delivery`` processes on one PostgreSQL database.

Prints one JSON object of named figures::

    python benchmarks/fleet.py --database-url postgresql+asyncpg://user@host:5432/db
    python benchmarks/fleet.py --database-url … --quick        # small sizes, a few minutes
    python benchmarks/fleet.py --database-url … --scenarios shared,failover --runs 3

Every bot process runs as operators run it: ``python run_bot.py --config FILE run --role
delivery`` (the token in ``TELEGRAM_BOT_TOKEN``, ``telegram.base_url`` pointing at the
sandbox Bot API server in its own process, a fresh ``monitoring.port`` per process), on a
throw-away PostgreSQL database created next to ``--database-url`` (the role needs
CREATEDB) and dropped afterwards. Against the sandbox with ``--latency-ms`` (100) added to
every sendMessage and editMessageText (its ``slow`` fault), as Telegram is 50–150 ms away.
Every message is counted from the sandbox's call log and every row from the ledger, never
from the bot's own counters.

A real ``run`` process reads the wall clock, which a benchmark cannot move: the briefings
come to the clock instead. The subscriptions are stored due hours later; once every
process is healthy, one UPDATE makes all of them due at the current minute, and the next
due scan (``delivery.scan_seconds`` 1) creates their rows.

What it measures
----------------
``shared``
    Three ``delivery`` processes; the sandbox applies Telegram's flood model (30/s overall,
    one message a second per chat after a burst of 3, 20 a minute per group); the bot's
    ``delivery.rate_per_second`` is 28, which the live workers share (``workers`` table).
    ``--destinations`` (2,400) briefings. Figures: messages per second together, from
    ``--warm-up`` (5) s after the first send to the last one (target >= 26) and over the
    whole fan-out, and every 429 the sandbox answered (target 0).
``failover``
    Two ``delivery`` processes at 100/s (the sandbox's cap raised to 300/s, per-chat and
    per-group limits as Telegram's); when 30 % of ``--destinations`` (6,000) have arrived,
    one is SIGKILLed and not restarted. Figures: ``lost`` (target 0), duplicates, and the
    time from the kill to everything delivered against ``bound_s`` = ``lease_seconds`` +
    remaining / rate (target: within it).
``million``
    ``--subscribers`` (1,000,000) subscriptions, made due in the same minute,
    ``--scan-processes`` (2) ``delivery`` processes, the sandbox without flood control, the
    bot at 50/s (its sending is not measured: the chats are unknown to the sandbox).
    Figures: rows the due scans created per second, from the first row seen in the ledger
    to the last (polled every 0.5 s; target >= 5,000), and each process's peak RSS
    (``VmHWM``) against the same run with 1,000 subscriptions (target: at most 50 MB
    more). The processes are stopped once every row exists.
``paid``
    A paid broadcast (``delivery.paid_broadcast`` on, ``paid_rate_per_second`` 1,000) to
    ``--paid-destinations`` (20,000) chats; the sandbox applies Telegram's limits with paid
    calls capped at 1,000/s. The admin (``telegram.admin_ids``) sends ``/broadcast paid …``
    and presses "Send … (paid)" through the sandbox's user API, (a) to one ``all`` process
    on SQLite and (b) to one ``updates`` and two ``delivery`` processes on PostgreSQL,
    where 20 readers each ask ``/latest`` while it sends (spread over the time 1,000/s
    would take). Then, with the bot's processes stopped, the baseline: python-telegram-bot's
    ``Bot.send_message`` with no rate limiter, ledger or database, in a child process,
    sends the same message (text, parse mode, markup as the bot sent them) to the same
    chats on the same sandbox with ``allow_paid_broadcast``, at most 200 in flight, paced
    as the bot's limiter paces paid calls: a token bucket at 980/s (Telegram's 1,000/s less
    2 % for network jitter) that catches up at most 8 calls after a stall, so that it draws
    no 429 (paced at 1,000/s with unbounded catch-up, it drew 1,114 and lost a second to
    each). Its HTTP client (``--baseline-http-client``) is by default the
    bot's own aiohttp request class, so that the ratio measures the bot's delivery engine;
    PTB's stock ``HTTPXRequest`` spends so much CPU in its connection pool at 200
    connections that it stays far below 1,000/s on two cores.
    Figures, each from the first send started to the last answered: the bot's rate and the
    baseline's (targets: at least 0.9 of it; the goal is Telegram's 1,000/s), every 429
    (target 0), lost messages, how many went paid, the readers' reply time (p95 < 1 s),
    and the 1-minute load average around each measurement.

The webhook figures (reader round trip by webhook against polling) are
``benchmarks/chat_latency.py --mode both``; not repeated here.

Deviations from the embedded defaults, all in the output: the story folder, the admin id,
``monitoring.port``, ``delivery.scan_seconds`` 1 and the scenario's ``rate_per_second``;
``--lease-seconds`` sets ``delivery.lease_seconds`` (default: the bot's). Each wait has a
deadline (``--timeout``): a wait that runs out becomes an ``error`` in the scenario, never a
hang; every child process is stopped whatever happens. With ``--runs k`` each scenario
reports the median of every figure and each run; a target counts as met only if every run
met it. ``--log-dir DIR`` keeps the logs of every process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
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
    median_figures,
    percentile,
    resolve_output_dirs,
    rnd,
    run_bot_argv,
    wait_healthy,
    write_bot_config,
)
from soak import write_stories

SCRIPT = Path(__file__).resolve()
TOKEN = "123456789:AAHfleetBENCHMARKfleet0123456789abcdef"
FIRST_CHAT = 720_000_001
ADMIN_ID = 620_000_001
TELEGRAM_FLOOD = Flood(30, 1, 20, per_chat_burst=3)
FAST_FLOOD = Flood(300, 1, 20, per_chat_burst=3)  # Telegram's model, overall cap raised
NO_FLOOD = Flood()
SHARED_RATE = 28.0
FAILOVER_RATE = 100.0
MILLION_RATE = 50.0
KILL_AT = 0.3  # share of the fan-out delivered when a process is killed
SCAN_SECONDS = 1.0
SMALL_AUDIENCE = 1_000
WATCH_INTERVAL = 0.25
ROWS_POLL = 0.5
APP_NAME = "fleet-benchmark"
SLOW_METHODS = ("sendMessage", "editMessageText")
SCENARIOS = ("shared", "failover", "million", "paid")
TARGETS: dict[str, dict[str, float]] = {
    "shared": {"per_s_min": 26.0, "flood_429_max": 0},
    "failover": {"lost_max": 0, "delivered_within_bound": 1},
    "million": {"rows_per_s_min": 5_000.0, "extra_peak_rss_mb_max": 50.0},
    "paid": {"ratio_min": 0.9, "flood_429_max": 0, "lost_max": 0,
             "latest_p95_s_max": 1.0},
}
# Paid broadcasts: Telegram's limits, paid calls capped at 1,000/s; the bot asks for 1,000/s
PAID_FLOOD = Flood(30, 1, 20, per_chat_burst=3, paid_per_second=1000)
PAID_RATE = 1000.0
FREE_RATE = 25.0  # the bot's default delivery.rate_per_second (replies, status edits)
PAID_SETTINGS: dict[str, Any] = {"paid_broadcast": True, "paid_rate_per_second": PAID_RATE}
PAID_TEXT = "Paid benchmark: the newsroom's big announcement, to every subscriber at once."
PAID_READERS = 20
PAID_WARM_UP = 2.0  # s after the first paid message left out of the steady rate
FIRST_READER = 730_000_001
BASELINE_INFLIGHT = 200
# The baseline is paced as the bot's limiter paces paid calls: Telegram's 1,000/s less 2 %
# for network jitter, catching up at most 8 calls after a stall (8 ms of the rate).
BASELINE_RATE = 980.0
BASELINE_BURST = 8
BASELINE_CLIENTS = {"aiohttp": "the bot's own aiohttp request class (as the bot sends)",
                    "httpx": "PTB's stock HTTPXRequest"}
SAMPLE_PARAMS = frozenset({"text", "parse_mode", "entities", "reply_markup",
                           "link_preview_options", "disable_notification",
                           "protect_content", "message_thread_id"})


# ==========================================================================================
# What reached the audience: the sandbox's call log, read as it arrives
# ==========================================================================================
@dataclass
class Arrivals:
    """Messages to the audience's chats: first arrival, copies, 429s, send times."""

    chats: range
    log: CallLog
    first: dict[int, float] = field(default_factory=dict)  # chat -> when it arrived
    began: dict[int, float] = field(default_factory=dict)  # chat -> when that call started
    copies: Counter[int] = field(default_factory=Counter)
    started: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    refused: int = 0  # 429 answers, to anyone
    paid: int = 0  # messages that arrived sent with allow_paid_broadcast
    sample: dict[str, Any] | None = None  # what the first of them said (SAMPLE_PARAMS)
    errors: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def delivered(self) -> int:
        return len(self.first)

    @property
    def complete(self) -> bool:
        return self.delivered >= len(self.chats)

    def take(self, call: dict[str, Any]) -> None:
        if call["status"] == 429:
            self.refused += 1
        chat = call["chat_id"]
        if chat in self.chats and call["method"] == "sendMessage" and call["status"] == 200:
            self.copies[chat] += 1
            self.first.setdefault(chat, float(call["finished"]))
            self.began.setdefault(chat, float(call["started"]))
            params = call.get("params") or {}
            self.paid += str(params.get("allow_paid_broadcast", "")).lower() == "true"
            if self.sample is None:
                self.sample = {k: v for k, v in params.items() if k in SAMPLE_PARAMS}
            self.started.append(float(call["started"]))
            self.finished.append(float(call["finished"]))

    async def follow(self) -> None:
        """Read the call log until cancelled."""
        while True:
            try:
                for call in await self.log.poll():
                    self.take(call)
            except Exception as error:  # a figure; the waits time out if it persists
                self.errors.append(error_text(error))
            self._changed.set()
            await asyncio.sleep(WATCH_INTERVAL)

    async def until(self, test: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with asyncio.timeout(within):
                while not test():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise BenchmarkError(f"{what}: not within {within:g} s ({self.delivered} of "
                                 f"{len(self.chats)} messages arrived)") from None

    def rate(self, since: float = -math.inf) -> tuple[float, float]:
        """(messages per second, seconds) from the first send started after ``since`` to the
        last answered."""
        starts = [s for s in self.started if s >= since]
        if not starts:
            return math.nan, math.nan
        span = max(self.finished) - min(starts)
        return (len(starts) / span if span > 0 else math.nan), span

    def in_flight(self) -> dict[str, float | None]:
        """Little's law from the call log: the mean round trip of the messages and how many
        were in flight on average between the first start and the last answer."""
        if not self.started:
            return {"mean_call_s": None, "mean_in_flight": None}
        busy = sum(f - s for s, f in zip(self.started, self.finished, strict=True))
        span = max(self.finished) - min(self.started)
        return {"mean_call_s": rnd(busy / len(self.started), 3),
                "mean_in_flight": rnd(busy / span, 1) if span > 0 else None}

    def outcome(self) -> dict[str, Any]:
        return {"destinations": len(self.chats), "delivered": self.delivered,
                "lost": len(self.chats) - self.delivered,
                "duplicates": sum(c - 1 for c in self.copies.values()),
                "flood_429": self.refused, "calls_left_unanswered": self.log.stuck,
                "sent_paid": self.paid, "most_in_one_second": self.most_in_one_second()}

    def most_in_one_second(self) -> int:
        """The most messages that reached the sandbox within one second (as its flood
        control counts them: by arrival)."""
        times = sorted(self.started)
        most, first = 0, 0
        for last, when in enumerate(times):
            while times[first] <= when - 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most


# ==========================================================================================
# The fleet: `run_bot.py --config FILE run --role ROLE`, one config file each
# ==========================================================================================
@dataclass
class Fleet:
    name: str
    logs: Path
    workdir: Path
    settings: dict[str, Any]
    processes: list[Child] = field(default_factory=list)
    health_urls: list[str] = field(default_factory=list)
    profile_dir: Path | None = None  # each process under cProfile, its stats written here

    async def start(self, role: str) -> Child:
        port = free_port()
        index = len(self.processes) + 1
        settings = {**self.settings, "monitoring": {"port": port}}
        config = write_bot_config(self.workdir / f"{self.name}-{index}.yaml", settings)
        child = Child(f"{role} #{index} ({self.name})",
                      self.logs / f"{self.name}-{role}-{index}.log")
        argv = [*run_bot_argv(config), "--role", role]
        if self.profile_dir is not None:  # written when the process ends (SIGTERM)
            stats = self.profile_dir / f"{self.name}-{role}-{index}.prof"
            argv[1:1] = ["-m", "cProfile", "-o", str(stats)]
        await child.spawn(argv, env={"TELEGRAM_BOT_TOKEN": TOKEN}, stdout_to_log=True)
        self.processes.append(child)
        self.health_urls.append(f"http://127.0.0.1:{port}/healthz")
        return child

    async def start_healthy(self, role: str, count: int, within: float) -> None:
        for _ in range(count):
            await self.start(role)
        await asyncio.gather(*(wait_healthy(c, u, within) for c, u in
                               zip(self.processes, self.health_urls, strict=True)))

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop(within=30, polite=False) for c in self.processes))

    def figures(self) -> dict[str, Any]:
        """CPU, peak RSS (while they run), ERROR lines and tracebacks of every process."""
        errors: list[str] = []
        tracebacks = 0
        for child in self.processes:
            with contextlib.suppress(OSError):
                for line in child.log_path.read_text(errors="replace").splitlines():
                    if " ERROR " in line:
                        errors.append(line.split(" ERROR ", 1)[1][:160])
                    tracebacks += line.startswith("Traceback")
        return {"cpu_s": [rnd(c.cpu_seconds(), 1) for c in self.processes],
                "peak_rss_mb": [rnd(c.peak_rss_mb(), 1) for c in self.processes],
                "bot_log_errors": len(errors), "bot_log_tracebacks": tracebacks,
                "bot_log_first_errors": list(dict.fromkeys(errors))[:3]}


def scan_reports(fleet: Fleet) -> list[dict[str, int]]:
    """The ``due scan: ScanReport(...)`` lines each process logged, as numbers."""
    found: list[dict[str, int]] = []
    for child in fleet.processes:
        with contextlib.suppress(OSError):
            for line in child.log_path.read_text(errors="replace").splitlines():
                if "due scan: ScanReport(" in line:
                    found.append({k: int(float(v)) for k, v in
                                  re.findall(r"(\w+)=([\d.]+)", line.split("ScanReport(")[1])})
    return found


# ==========================================================================================
# One scenario's stage: sandbox, database, stories, subscriptions, the call log
# ==========================================================================================
@dataclass
class Context:
    args: argparse.Namespace
    workdir: Path

    @property
    def logs(self) -> Path:
        return Path(self.args.log_dir) if self.args.log_dir else self.workdir


@dataclass
class Stage:
    chats: range
    sandbox: Sandbox
    db: ScratchDatabase
    ledger: Any  # bot.storage.database.Database, for read-only counts
    fleet: Fleet
    arrivals: Arrivals
    follower: asyncio.Task[None] | None = None

    async def follow_afresh(self) -> Arrivals:
        """Stop reading the call log for :attr:`arrivals` and start a new one from here
        (the next messages to the same chats are counted apart from the last ones)."""
        await _cancel(self.follower)
        self.arrivals = Arrivals(self.chats, CallLog(self.sandbox.clients[-1],
                                                     await self.sandbox.call_count()))
        self.follower = asyncio.create_task(self.arrivals.follow())
        return self.arrivals

    async def count(self, sql: str) -> int:
        from sqlalchemy import text

        async with self.ledger.read() as conn:
            return int((await conn.execute(text(sql))).scalar_one())

    async def make_due(self) -> float:
        """Every subscription due now; (the monotonic moment it committed)."""
        await self.db.make_due(*_this_minute())
        return time.monotonic()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def stage(ctx: Context, name: str, *, audience: int, flood: Flood, rate: float,
                register: bool = True, sqlite: bool = False,
                delivery_settings: dict[str, Any] | None = None) -> AsyncIterator[Stage]:
    """``sqlite``: a SQLite file instead of a PostgreSQL database; ``delivery_settings``:
    more ``delivery.*`` settings of the bot."""
    args = ctx.args
    chats = range(FIRST_CHAT, FIRST_CHAT + audience)
    now = datetime.now(UTC)
    folder = ctx.workdir / f"{name}-stories"
    write_stories(folder, now, long_story=False)
    sandbox = Sandbox(ctx.logs / f"{name}-server.log")
    db = ScratchDatabase(ctx.workdir, name, None if sqlite else args.database_url,
                         prefix="fleet")
    ledger: Any = None
    current: Stage | None = None
    delivery: dict[str, Any] = {"rate_per_second": rate, "scan_seconds": SCAN_SECONDS,
                                **(delivery_settings or {})}
    if args.lease_seconds is not None:
        delivery["lease_seconds"] = args.lease_seconds
    fleet = Fleet(name, ctx.logs, ctx.workdir, {
        "telegram": {"base_url": "", "admin_ids": [ADMIN_ID]},
        "stories": {"folder": str(folder), "timezone": "UTC"},
        "database": {"url": db.url}, "delivery": delivery, "log_level": "INFO"},
        profile_dir=Path(args.profile_dir) if args.profile_dir else None)
    try:
        await db.create()
        await sandbox.start(flood)
        fleet.settings["telegram"]["base_url"] = sandbox.base_url
        for method in SLOW_METHODS:
            await sandbox.client.inject("slow", method=method, times=None,
                                        delay=args.latency_ms / 1000)
        later = (now + timedelta(hours=6)).replace(second=0, microsecond=0)
        fill = db.subscribe_series(FIRST_CHAT, audience, later.strftime("%H:%M"), now=now,
                                   next_due_at=later)
        if register:
            await asyncio.gather(sandbox.register_private_chats(chats), fill)
        else:
            await fill
        ledger = await db.open(application_name=APP_NAME)
        arrivals = Arrivals(chats, CallLog(sandbox.clients[-1], await sandbox.call_count()))
        current = Stage(chats, sandbox, db, ledger, fleet, arrivals,
                        asyncio.create_task(arrivals.follow()))
        yield current
    finally:
        if current is not None:
            await _cancel(current.follower)
        await fleet.stop()
        if ledger is not None:
            await ledger.close()
        await sandbox.stop()
        await db.drop()


async def drain(current: Stage, within: float) -> None:
    """Wait until every message arrived and no row is pending or in flight, then read the
    call log past every answered call (the duplicates count needs all of it)."""
    await current.arrivals.until(lambda: current.arrivals.complete, within,
                                 "every briefing delivered")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not await current.count("SELECT count(*) FROM deliveries WHERE state IN "
                                   "('pending', 'sending')"):
            break
        await asyncio.sleep(0.5)
    for call in await current.arrivals.log.poll():
        current.arrivals.take(call)


# ==========================================================================================
# 1. Three delivery processes share one flood budget
# ==========================================================================================
async def scenario_shared(ctx: Context, run: int) -> dict[str, Any]:
    args = ctx.args
    result: dict[str, Any] = {"processes": 3, "rate_per_second": SHARED_RATE,
                              "server_flood": TELEGRAM_FLOOD.to_json()}
    async with stage(ctx, f"shared{run}", audience=args.destinations, flood=TELEGRAM_FLOOD,
                     rate=SHARED_RATE) as current:
        try:
            await current.fleet.start_healthy("delivery", 3, 90)
            await current.make_due()
            await drain(current, args.destinations / 20 + args.timeout)
            arrivals = current.arrivals
            steady, steady_s = arrivals.rate(min(arrivals.started) + args.warm_up)
            whole, whole_s = arrivals.rate()
            result.update({**arrivals.outcome(), "per_s": rnd(steady),
                           "steady_window_s": rnd(steady_s, 1), "whole_per_s": rnd(whole),
                           "fan_out_s": rnd(whole_s, 1), **current.fleet.figures()})
        except (BenchmarkError, OSError, TimeoutError) as error:
            result["error"] = error_text(error)
            result.update(current.fleet.figures())
    clean = "error" not in result
    result["targets"] = TARGETS["shared"]
    result["targets_met"] = {
        "per_s_min": clean and _ge(result.get("per_s"), TARGETS["shared"]["per_s_min"]),
        "flood_429_max": clean and result.get("flood_429") == 0,
        "lost_max": clean and result.get("lost") == 0,
    }
    return result


# ==========================================================================================
# 2. One of two delivery processes SIGKILLed mid-fan-out, not restarted
# ==========================================================================================
async def scenario_failover(ctx: Context, run: int) -> dict[str, Any]:
    args = ctx.args
    result: dict[str, Any] = {"processes": 2, "rate_per_second": FAILOVER_RATE,
                              "server_flood": FAST_FLOOD.to_json(),
                              "lease_seconds": args.lease_seconds}
    async with stage(ctx, f"failover{run}", audience=args.failover_destinations,
                     flood=FAST_FLOOD, rate=FAILOVER_RATE) as current:
        arrivals = current.arrivals
        try:
            await current.fleet.start_healthy("delivery", 2, 90)
            began = await current.make_due()
            await arrivals.until(lambda: arrivals.delivered >= KILL_AT * len(arrivals.chats),
                                 args.timeout, "the fan-out under way")
            victim = current.fleet.processes[0]
            killed = time.monotonic()
            await victim.kill()
            in_flight = await current.count(
                "SELECT count(*) FROM deliveries WHERE state = 'sending' AND claimed_by IN "
                f"(SELECT id FROM workers WHERE pid = {victim.pid})")
            remaining = len(arrivals.chats) - sum(1 for t in arrivals.first.values()
                                                  if t <= killed)
            bound = args.lease_seconds + remaining / FAILOVER_RATE
            await drain(current, bound + args.timeout)
            done = max(arrivals.first.values())
            result.update({**arrivals.outcome(),
                           "killed_after_s": rnd(killed - began, 1),
                           "remaining_at_kill": remaining,
                           "in_flight_of_killed": in_flight,
                           "kill_to_all_delivered_s": rnd(done - killed, 1),
                           "bound_s": rnd(bound, 1),
                           **current.fleet.figures()})
        except (BenchmarkError, OSError, TimeoutError) as error:
            result.update({"error": error_text(error), **arrivals.outcome(),
                           **current.fleet.figures()})
    clean = "error" not in result
    result["targets"] = TARGETS["failover"]
    result["targets_met"] = {
        "lost_max": clean and result.get("lost") == 0,
        "delivered_within_bound": clean and _le(result.get("kill_to_all_delivered_s"),
                                                result.get("bound_s")),
    }
    return result


# ==========================================================================================
# 3. A million subscribers due in the same minute: the due scan's rate and memory
# ==========================================================================================
async def _scan_run(ctx: Context, name: str, subscribers: int) -> dict[str, Any]:
    async with stage(ctx, name, audience=subscribers, flood=NO_FLOOD, rate=MILLION_RATE,
                     register=False) as current:
        fleet = current.fleet
        try:
            await fleet.start_healthy("delivery", ctx.args.scan_processes, 90)
            idle_rss = [c.peak_rss_mb() for c in fleet.processes]
            began = time.monotonic()
            update_s = await current.db.make_due(*_this_minute())
            committed = time.monotonic()
            (first_t, first_n), (last_t, last_n) = await _watch_rows(
                current, subscribers, committed + subscribers / 1000 + ctx.args.timeout)
            reports = scan_reports(fleet)
            figures = fleet.figures()
            return {
                "subscribers": subscribers, "rows": last_n,
                "make_due_update_s": rnd(update_s, 1),
                "commit_to_first_row_seen_s": rnd(first_t - committed, 2),
                "rows_s": rnd(last_t - first_t, 1),
                "rows_per_s": rnd((last_n - first_n) / (last_t - first_t)
                                  if last_t > first_t else math.nan, 0),
                "commit_to_all_rows_per_s": rnd(last_n / (last_t - committed), 0),
                "scans": [{k: r.get(k) for k in ("due", "created", "lost_race", "empty")}
                          for r in reports],
                "idle_peak_rss_mb": [rnd(r, 1) for r in idle_rss],
                "wall_s": rnd(time.monotonic() - began, 1), **figures}
        except (BenchmarkError, OSError, TimeoutError) as error:
            return {"subscribers": subscribers, "error": error_text(error), **fleet.figures()}


async def _watch_rows(current: Stage, rows: int,
                      deadline: float) -> tuple[tuple[float, int], tuple[float, int]]:
    """Poll the ledger's briefing rows until there are ``rows``: (when, how many) at the
    first poll that saw any, and at the poll that saw the last of them."""
    first: tuple[float, int] | None = None
    last = (time.monotonic(), 0)
    while last[1] < rows:
        if time.monotonic() > deadline:
            raise BenchmarkError(f"only {last[1]} of {rows} briefing rows in time")
        await asyncio.sleep(ROWS_POLL)
        seen = (time.monotonic(),
                await current.count("SELECT count(*) FROM deliveries WHERE kind = 'digest'"))
        if seen[1] and first is None:
            first = seen
        if seen[1] > last[1]:
            last = seen
    assert first is not None
    return first, last


def _this_minute() -> tuple[str, datetime]:
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    return minute.strftime("%H:%M"), minute


async def scenario_million(ctx: Context, run: int) -> dict[str, Any]:
    small = await _scan_run(ctx, f"scan-small{run}", SMALL_AUDIENCE)
    large = await _scan_run(ctx, f"scan-large{run}", ctx.args.subscribers)
    extra = [_minus(b, a) for a, b in zip(small.get("peak_rss_mb", []),
                                          large.get("peak_rss_mb", []), strict=False)]
    result: dict[str, Any] = {
        "rows_per_s": large.get("rows_per_s"),
        "extra_peak_rss_mb": extra,
        "small": small, "large": large,
    }
    if "error" in small or "error" in large:
        result["error"] = large.get("error") or small.get("error")
    clean = "error" not in result and len(extra) == 2
    limit = TARGETS["million"]["extra_peak_rss_mb_max"]
    result["targets"] = TARGETS["million"]
    result["targets_met"] = {
        "rows_per_s_min": clean and _ge(result["rows_per_s"],
                                        TARGETS["million"]["rows_per_s_min"]),
        "extra_peak_rss_mb_max": clean and all(_le(x, limit) for x in extra),
    }
    return result


# ==========================================================================================
# 4. A paid broadcast at 1,000/s, against raw python-telegram-bot at the same rate
# ==========================================================================================
async def scenario_paid(ctx: Context, run: int) -> dict[str, Any]:
    args = ctx.args
    single = await _paid_run(ctx, f"paid-sqlite{run}", sqlite=True, roles={"all": 1},
                             readers=0)
    fleet = await _paid_run(ctx, f"paid-fleet{run}", sqlite=False,
                            roles={"updates": 1, "delivery": 2}, readers=PAID_READERS)
    result: dict[str, Any] = {
        "destinations": args.paid_destinations, "paid_rate_per_second": PAID_RATE,
        "concurrency": args.paid_concurrency or "the bot's default",
        "rate_per_second": FREE_RATE, "server_flood": PAID_FLOOD.to_json(),
        "baseline": f"python-telegram-bot's Bot.send_message over "
                    f"{BASELINE_CLIENTS[args.baseline_http_client]}, up to "
                    f"{BASELINE_INFLIGHT} calls in flight, paced at {BASELINE_RATE:g}/s "
                    f"(bursts of {BASELINE_BURST}), "
                    "allow_paid_broadcast",
    }
    for label, part in (("sqlite", single), ("fleet", fleet)):
        for figure in ("per_s", "baseline_per_s", "ratio", "flood_429", "lost"):
            result[f"{label}_{figure}"] = part.get(figure)
    result["fleet_latest_p95_s"] = fleet.get("latest", {}).get("p95_s")
    result["sqlite_all"] = single
    result["postgresql_updates_and_2_delivery"] = fleet
    errors = [f"{label}: {part['error']}" for label, part in
              (("sqlite", single), ("fleet", fleet)) if "error" in part]
    if errors:
        result["error"] = "; ".join(errors)
    goal = TARGETS["paid"]
    result["targets"] = goal
    result["targets_met"] = {
        "sqlite_ratio_min": _ge(result["sqlite_ratio"], goal["ratio_min"]),
        "sqlite_flood_429_max": "error" not in single and single.get("flood_429") == 0,
        "sqlite_lost_max": "error" not in single and single.get("lost") == 0,
        "fleet_ratio_min": _ge(result["fleet_ratio"], goal["ratio_min"]),
        "fleet_flood_429_max": "error" not in fleet and fleet.get("flood_429") == 0,
        "fleet_lost_max": "error" not in fleet and fleet.get("lost") == 0,
        "fleet_latest_p95_s_max": (fleet.get("latest", {}).get("answered") == PAID_READERS
                                   and _le(result["fleet_latest_p95_s"],
                                           goal["latest_p95_s_max"])),
    }
    return result


async def _paid_run(ctx: Context, name: str, *, sqlite: bool, roles: dict[str, int],
                    readers: int) -> dict[str, Any]:
    """The admin's paid broadcast through these processes, then the baseline to the same
    chats on the same sandbox (the bot's processes stopped by then)."""
    args = ctx.args
    size = args.paid_destinations
    result: dict[str, Any] = {"database": "sqlite" if sqlite else "postgresql",
                              "processes": roles,
                              "load_average_1m_at_start": _load()}
    settings = dict(PAID_SETTINGS)
    if args.paid_concurrency is not None:
        settings["concurrency"] = args.paid_concurrency
    async with stage(ctx, name, audience=size, flood=PAID_FLOOD, rate=FREE_RATE,
                     sqlite=sqlite, delivery_settings=settings) as current:
        fleet = current.fleet
        try:
            for role, count in roles.items():
                for _ in range(count):
                    await fleet.start(role)
            await asyncio.gather(*(wait_healthy(c, u, 90) for c, u in
                                   zip(fleet.processes, fleet.health_urls, strict=True)))
            client = current.sandbox.client
            server_cpu = current.sandbox.child.cpu_seconds() or 0.0
            post = await client.user_message(f"/broadcast paid {PAID_TEXT}", user_id=ADMIN_ID)
            panel, send = await _send_button(current.sandbox, args.timeout)
            arrivals = await current.follow_afresh()  # from the press on
            pressed = time.monotonic()
            answer = await client.press(ADMIN_ID, message_id=panel["message_id"], data=send,
                                        timeout=60)
            answered = time.monotonic()
            reading = asyncio.create_task(_readers(current, readers, size / PAID_RATE,
                                                   args.timeout))
            await drain(current, size / PAID_RATE * 3 + args.timeout)
            latencies, reader_errors = await reading
            per_s, span = arrivals.rate()
            steady, steady_s = arrivals.rate(min(arrivals.started) + PAID_WARM_UP)
            result.update({
                **arrivals.outcome(), "per_s": rnd(per_s, 1), "send_span_s": rnd(span, 2),
                "claims": await _claim_figures(current, arrivals),
                **arrivals.in_flight(), "steady_per_s": rnd(steady, 1),
                "steady_window_s": rnd(steady_s, 1),
                "press_to_answer_s": rnd(answered - pressed, 2),
                "press_to_first_send_s": rnd(min(arrivals.started) - pressed, 2),
                "press_answer": (answer or {}).get("answer"),
                "preview_update_id": post["update_id"],
                **_latest_figures(readers, latencies, reader_errors),
                **fleet.figures(), "load_average_1m_after_bot": _load(),
                "sandbox_cpu_s": rnd((current.sandbox.child.cpu_seconds() or 0.0)
                                     - server_cpu, 1)})
            await fleet.stop()  # the baseline has the machine to itself, as the bot had
            baseline = await _paid_baseline(ctx, current, name, arrivals.sample)
            result["baseline"] = baseline
            result["baseline_per_s"] = baseline.get("per_s")
            result["ratio"] = (rnd(result["per_s"] / baseline["per_s"], 3)
                               if result.get("per_s") and baseline.get("per_s") else None)
        except (BenchmarkError, OSError, TimeoutError) as error:
            result.update({"error": error_text(error), **current.arrivals.outcome(),
                           **fleet.figures()})
    result["load_average_1m_at_end"] = _load()
    return result


async def _claim_figures(current: Stage, arrivals: Arrivals) -> dict[str, Any]:
    """Where a message's time went, from the ledger and the call log: how many rows each
    claim took, how long from a claim's start to its first request (about the claim's own
    duration), from its claim to each row's request reaching the sandbox (the claim, then
    the wait for budget and for its turn) and from the answer to the moment the sender
    stamped it sent.
    The sandbox's clock is monotonic, the ledger's UTC: this process converts."""
    from sqlalchemy import text

    offset = time.time() - time.monotonic()
    async with current.ledger.read() as conn:
        rows = (await conn.execute(text(
            "SELECT chat_id, claimed_by, claimed_at, sent_at FROM deliveries "
            "WHERE kind = 'broadcast' AND state = 'sent'"))).all()
    claims = Counter((str(r[1]), _stamp(r[2])) for r in rows)
    waits = sorted(arrivals.began[r[0]] + offset - _stamp(r[2]) for r in rows
                   if r[0] in arrivals.began)
    # A claim's first request went as soon as the claim returned (the budget had tokens
    # then): its wait is about how long the claim itself took.
    first_wait: dict[tuple[str, float], float] = {}
    for r in rows:
        if r[0] in arrivals.began:
            key = (str(r[1]), _stamp(r[2]))
            wait = arrivals.began[r[0]] + offset - key[1]
            first_wait[key] = min(wait, first_wait.get(key, math.inf))
    claim_s = sorted(first_wait.values())
    settle = sorted(_stamp(r[3]) - arrivals.first[r[0]] - offset for r in rows
                    if r[0] in arrivals.first and r[3] is not None)
    sizes = sorted(claims.values())
    return {"claims": len(claims), "workers": len({w for w, _ in claims}),
            "rows_per_claim_median": percentile(sizes, 50) if sizes else None,
            "claim_to_first_request_s": {"p50": rnd(percentile(claim_s, 50), 3),
                                         "p90": rnd(percentile(claim_s, 90), 3)},
            "claim_to_request_s": {"p50": rnd(percentile(waits, 50), 3),
                                   "p90": rnd(percentile(waits, 90), 3)},
            "answer_to_stamped_sent_s": {"p50": rnd(percentile(settle, 50), 3),
                                         "p90": rnd(percentile(settle, 90), 3)}}


def _stamp(value: Any) -> float:
    """A ledger time (aware datetime; SQLite may give it back naive UTC) as a timestamp."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


async def _send_button(sandbox: Sandbox, within: float) -> tuple[dict[str, Any], str]:
    """The paid preview's panel and the data of its "Send … (paid)" button."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for message in reversed(await sandbox.client.messages(ADMIN_ID, bot_only=True)):
            for button in message["buttons"]:
                data = str(button.get("callback_data") or "")
                if data.startswith("bc:s:") and "(paid)" in str(button.get("text")):
                    return message, data
        await asyncio.sleep(0.2)
    raise BenchmarkError(f"no paid broadcast preview with a Send button within {within:g} s")


async def _readers(current: Stage, readers: int, window: float,
                   within: float) -> tuple[list[float], list[str]]:
    """``readers`` users each ask /latest once, spread over the first ``window`` s of the
    sending (from its first message on, which must come within ``within`` s); their
    reply times."""
    latencies: list[float] = []
    errors: list[str] = []
    if not readers:
        return latencies, errors
    arrivals = current.arrivals
    await arrivals.until(lambda: bool(arrivals.started), within, "the first paid message")
    began = time.monotonic()
    client = current.sandbox.clients[0]

    async def reader(index: int) -> None:
        await asyncio.sleep(max(0.0, began + index * window / readers - time.monotonic()))
        user_id = FIRST_READER + index
        try:
            post = await client.user_message("/latest", user_id=user_id)
            trip = await client.wait_reply(post["update_id"], chat_id=user_id, count=1,
                                           timeout=15)
        except Exception as error:  # a figure, not a crash
            errors.append(f"reader {index}: {error_text(error)}")
            return
        if not trip["complete"] or trip["last_latency"] is None:
            errors.append(f"reader {index}: no reply within 15 s")
            return
        latencies.append(float(trip["last_latency"]))

    await asyncio.gather(*(reader(i) for i in range(readers)))
    return latencies, errors


def _latest_figures(readers: int, latencies: list[float],
                    errors: list[str]) -> dict[str, Any]:
    if not readers:
        return {}
    ordered = sorted(latencies)
    return {"latest": {"asked": readers, "answered": len(ordered),
                       "p50_s": rnd(percentile(ordered, 50), 3),
                       "p95_s": rnd(percentile(ordered, 95), 3),
                       "max_s": rnd(ordered[-1], 3) if ordered else None,
                       "errors": errors[:3]}}


async def _paid_baseline(ctx: Context, current: Stage, name: str,
                         sample: dict[str, Any] | None) -> dict[str, Any]:
    """Raw python-telegram-bot sends ``sample`` to every chat of the audience with
    ``allow_paid_broadcast``, in a child process; counted from the sandbox's call log."""
    if sample is None:
        raise BenchmarkError("no message of the bot's to copy for the baseline")
    spec = ctx.workdir / f"{name}-baseline.json"
    spec.write_text(json.dumps({
        "params": sample, "first_chat": current.chats.start, "count": len(current.chats),
        "rate": BASELINE_RATE, "inflight": BASELINE_INFLIGHT,
        "http_client": ctx.args.baseline_http_client}), encoding="utf-8")
    arrivals = await current.follow_afresh()
    server_cpu = current.sandbox.child.cpu_seconds() or 0.0
    child = Child(f"baseline ({name})", ctx.logs / f"{name}-baseline.log")
    began_load = _load()
    try:
        await child.start([sys.executable, str(SCRIPT), "--serve", "paid-baseline",
                           "--base-url", current.sandbox.base_url, "--spec", str(spec)],
                          lambda line: '"done"' in line,
                          within=len(current.chats) / PAID_RATE * 3 + ctx.args.timeout)
        await arrivals.until(lambda: arrivals.complete, ctx.args.timeout,
                             "every baseline message")
        for call in await arrivals.log.poll():
            arrivals.take(call)
        cpu = child.cpu_seconds()
    finally:
        await child.stop(within=10, polite=False)
    done = child.event("done") or {}
    per_s, span = arrivals.rate()
    return {**arrivals.outcome(), "per_s": rnd(per_s, 1), "send_span_s": rnd(span, 2),
            **arrivals.in_flight(), "client_retries_after_429": done.get("retries"),
            "errors": done.get("errors"),
            "first_error": done.get("first_error"), "cpu_s": rnd(cpu, 1),
            "sandbox_cpu_s": rnd((current.sandbox.child.cpu_seconds() or 0.0) - server_cpu,
                                 1),
            "load_average_1m_at_start": began_load, "load_average_1m_at_end": _load()}


async def _serve_paid_baseline(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    """The baseline's child process: ``send_message`` with ``allow_paid_broadcast`` to each
    chat once, call ``i`` not before ``i / rate`` s, at most ``inflight`` at a time; a 429
    is waited out and the call made again."""
    from telegram import Bot
    from telegram.error import RetryAfter, TelegramError
    from telegram.request import BaseRequest, HTTPXRequest

    from bot.delivery.outcome import retry_after_seconds
    from bot.telegram.transport import AiohttpRequest

    params: dict[str, Any] = dict(spec["params"])
    text = params.pop("text")
    rate, inflight = float(spec["rate"]), int(spec["inflight"])
    request: BaseRequest = (
        HTTPXRequest(connection_pool_size=inflight + 8, pool_timeout=30, read_timeout=30,
                     write_timeout=30, connect_timeout=30) if spec["http_client"] == "httpx"
        else AiohttpRequest(connection_pool_size=inflight + 8, pool_timeout=30,
                            read_timeout=30, connect_timeout=30))
    errors: list[str] = []
    retries = 0
    async with Bot(TOKEN, base_url=args.base_url, request=request) as bot:
        gate = asyncio.Semaphore(inflight)
        loop = asyncio.get_running_loop()

        async def send(chat_id: int) -> None:
            nonlocal retries
            try:
                for _ in range(5):
                    try:
                        await bot.send_message(chat_id, text, allow_paid_broadcast=True,
                                               api_kwargs=params)
                    except RetryAfter as error:
                        retries += 1
                        await asyncio.sleep(retry_after_seconds(error))
                    else:
                        return
            except TelegramError as error:
                errors.append(error_text(error))
            finally:
                gate.release()

        tasks: set[asyncio.Task[None]] = set()
        began = slot = loop.time()
        for index in range(int(spec["count"])):
            # A token bucket of BASELINE_BURST: after a stall it catches up that many calls
            # at most, so that no second holds more than rate + burst of them.
            slot = max(slot + 1 / rate, loop.time() - BASELINE_BURST / rate)
            if (delay := slot - loop.time()) > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            task = loop.create_task(send(int(spec["first_chat"]) + index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        wall = loop.time() - began
    emit("done", wall=wall, retries=retries, errors=len(errors),
         first_error=errors[0] if errors else None)


# ==========================================================================================
# Running and reporting
# ==========================================================================================
def _le(value: Any, limit: Any) -> bool:
    return isinstance(value, int | float) and isinstance(limit, int | float) and value <= limit


def _ge(value: Any, limit: float) -> bool:
    return isinstance(value, int | float) and value >= limit


def _minus(after: Any, before: Any) -> float | None:
    if isinstance(after, int | float) and isinstance(before, int | float):
        return rnd(after - before, 1)
    return None


RUNNERS: dict[str, Callable[[Context, int], Awaitable[dict[str, Any]]]] = {
    "shared": scenario_shared, "failover": scenario_failover,
    "million": scenario_million, "paid": scenario_paid,
}


async def run_scenario(ctx: Context, name: str) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for run in range(1, ctx.args.runs + 1):
        started = time.perf_counter()
        try:
            figures = await RUNNERS[name](ctx, run)
        except Exception as error:  # still print the JSON, with the reason
            figures = {"error": error_text(error), "targets_met": {"completed": False}}
        figures["scenario_wall_s"] = round(time.perf_counter() - started, 1)
        runs.append(figures)
    met = {target: all(r["targets_met"].get(target, False) for r in runs)
           for target in runs[0]["targets_met"]}
    if len(runs) == 1:
        return {**runs[0], "targets_met": met}
    return {"median": median_figures(runs), "runs": runs, "targets_met": met}


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "quick": args.quick, "database": "postgresql",
        "latency_ms": args.latency_ms, "lease_seconds": args.lease_seconds,
        "scan_seconds": SCAN_SECONDS, "runs": args.runs, "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "webhook": "see benchmarks/chat_latency.py --mode both",
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        ctx = Context(args, Path(tmp))
        for name in args.scenarios:
            report[name] = await run_scenario(ctx, name)
    report["targets_met"] = {f"{name}.{target}": met for name in args.scenarios
                             for target, met in report[name]["targets_met"].items()}
    report["all_targets_met"] = all(report["targets_met"].values())
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    report["total_wall_s"] = round(time.perf_counter() - began, 1)
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server URL (postgresql+asyncpg://…); a throw-away "
                             "database is created there per scenario and dropped after")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: 600 / 1,500 destinations, 50,000 subscribers")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat each scenario k times; report medians and each run")
    parser.add_argument("--destinations", type=int, default=None,
                        help="shared: briefings sent (2,400)")
    parser.add_argument("--failover-destinations", type=int, default=None,
                        help="failover: briefings sent (6,000)")
    parser.add_argument("--subscribers", type=int, default=None,
                        help="million: subscriptions due in the same minute (1,000,000)")
    parser.add_argument("--scan-processes", type=int, default=2,
                        help="million: delivery processes scanning together (2)")
    parser.add_argument("--latency-ms", type=float, default=100.0,
                        help="added to every sendMessage and editMessageText (100)")
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="shared: seconds after the first send left out of the rate")
    parser.add_argument("--lease-seconds", type=float, default=None,
                        help="delivery.lease_seconds of the bot (default: the bot's)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds any single wait may take beyond its expected time")
    parser.add_argument("--paid-destinations", type=int, default=None,
                        help="paid: chats the paid broadcast goes to (20,000)")
    parser.add_argument("--paid-concurrency", type=int, default=None,
                        help="paid: delivery.concurrency of the bot (default: the bot's)")
    parser.add_argument("--baseline-http-client", choices=tuple(BASELINE_CLIENTS),
                        default="aiohttp",
                        help="paid: the baseline's HTTP client: the bot's own aiohttp "
                             "request class (default; the bot's transport, so the ratio "
                             "measures the delivery engine) or PTB's stock HTTPXRequest "
                             "(CPU-bound far below 1,000/s with 200 connections on 2 cores)")
    parser.add_argument("--log-dir", default=None, help="keep the processes' logs here")
    parser.add_argument("--profile-dir", default=None,
                        help="run every bot process under cProfile and keep its stats here "
                             "(NAME-ROLE-N.prof, written when it stops)")
    # Internal: the paid scenario's baseline, in a child process.
    parser.add_argument("--serve", choices=("paid-baseline",), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return args
    if args.database_url is None:
        parser.error("--database-url is required")
    quick = args.quick
    args.destinations = args.destinations or (600 if quick else 2_400)
    args.failover_destinations = args.failover_destinations or (1_500 if quick else 6_000)
    args.subscribers = args.subscribers or (50_000 if quick else 1_000_000)
    args.paid_destinations = args.paid_destinations or (3_000 if quick else 20_000)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    if min(args.runs, args.destinations, args.scan_processes, args.failover_destinations,
           args.subscribers, args.paid_destinations) < 1:
        parser.error("--runs, --destinations, --failover-destinations, --subscribers, "
                     "--paid-destinations and --scan-processes must be at least 1")
    if not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must start with postgresql+asyncpg:// (the fleet's "
                     "roles need PostgreSQL)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    root = str(SCRIPT.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)  # run as a script from anywhere: `bot` is importable
    if args.serve == "paid-baseline":
        spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
        asyncio.run(_serve_paid_baseline(args, spec))
        return 0
    from bot.config import settings_from_mapping
    from bot.errors import BotError

    try:
        given = {"lease_seconds": args.lease_seconds} if args.lease_seconds else {}
        args.lease_seconds = settings_from_mapping({"delivery": given}).delivery.lease_seconds
    except BotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    resolve_output_dirs(args, "log_dir", "profile_dir")
    report = asyncio.run(benchmark(args))
    print(json.dumps(report))
    return 0 if report["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
