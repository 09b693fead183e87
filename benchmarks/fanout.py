"""Fan-out benchmark: briefings and broadcasts through the bot's delivery engine.

Prints one JSON object of named figures::

    python benchmarks/fanout.py                      # all four scenarios, full sizes
    python benchmarks/fanout.py --quick              # smaller sizes, 20 s flood window
    python benchmarks/fanout.py --scenarios throughput,broadcast --runs 3
    python benchmarks/fanout.py --database-url postgresql+asyncpg://user:pw@host/db

What it measures
----------------
``throughput``
    ``--destinations`` (10,000) private chats the sandbox knows, each subscribed to a daily
    briefing at 08:00 UTC. The bot's clock then jumps to 08:00 so its due scan creates one
    ledger row per chat, and the Sender delivers them with ``delivery.rate_per_second`` at
    100,000 (the limiter is not the bottleneck; each chat gets one message). Figures:
    briefing messages per second (the sandbox's own call log: successful sendMessage calls
    to the subscribed chats, first call started to last call answered), the due scan's
    duration, and the same rate counted from the start of the scan. Baseline, in the same
    run, against the same kind of server: raw python-telegram-bot ``Bot.send_message`` with
    the same text, buttons and options to the same chats, once as a sequential loop and once
    as 16 concurrent senders, each in its own process; the better one counts.
    ``ratio`` = bot / baseline; target >= 0.8. Diagnostic (``sender_only_diagnostic``,
    skip with ``--no-sender-only``): the same briefing rows put back to ``pending`` and
    drained by a fresh bot process with no scan running, i.e. what the Sender, the limiter
    and the ledger's claim/settle path do on their own.
``flood``
    The sandbox refuses more than 30 sends a second overall, 1 per chat per second and 20
    per group per minute (429 + retry_after, like Telegram); the bot sends at 28/s. Once the
    fan-out runs steadily, a ``--window`` (60 s) window is measured: bulk sends per second
    (target >= 26), 429 answers over the whole scenario (target 0), and 20 ``/latest``
    requests from other readers spread evenly over the window, each round trip measured by
    the sandbox (``wait-reply``: from the update being queued to the reply being recorded;
    target p95 < 1 s).
``memory``
    Peak RSS (``VmHWM``, read inside the bot process) over the due scan and the first
    10,000 sends, with 1,000 and with ``--memory-large`` (100,000) subscribed destinations,
    each size in a fresh bot process. The database is filled by this script with bulk
    inserts before the bot process starts, so the bot's figure does not include that.
    Target: large - small <= 50 MB. The wait for the scan is bounded by ``--timeout``
    like every other wait; at a few ms per subscription, 100,000 need a larger one.
``broadcast``
    ``--broadcast-size`` (10,000) subscribed chats; the admin (in ``telegram.admin_ids``)
    sends ``/broadcast Hello …``, gets the preview, and the sandbox's flood control is set to
    300/s overall (1/s per chat, 20/min per group); the admin presses "Send" (``bc:s:<id>``)
    with the bot's rate at 280/s, and the benchmark waits for the final report edit. Figures:
    sends per second (target >= 266), 429 answers (target 0), and the spacing of the
    editMessageText calls to the admin's status message (target: progress edits at least
    ``delivery.progress_interval_seconds`` apart; the gap before the final report is shown
    separately).

The bot is built as in production: ``build_application`` + ``start_bot`` with its real
``LaneRateLimiter``, ``DeliveryEngine`` and job queue, in its own process, against the
sandbox Bot API server (``python -m bot.sandbox.server``) in another process; a throw-away
SQLite file per scenario, or, with ``--database-url``, a throw-away PostgreSQL database
created next to the given one (the role needs CREATEDB) and dropped afterwards.
Deviations from the embedded defaults, all stated in the output: ``delivery.scan_seconds``
0.5 (the scan follows the clock jump at once instead of within a minute), the story rescan
hourly, the bundled sample stories, and the scenario's ``rate_per_second``. The clock is
injected (``build_application(clock=...)``): it runs in real time from 07:59 UTC on
2025-03-31 until the benchmark makes it jump to the briefing minute.

Every wait has a deadline: a timeout becomes an ``error`` figure in the scenario, never a
hang; every child process is stopped (SIGTERM, then SIGKILL) whatever happens. With
``--runs k`` each figure is the median of k runs. ``--profile-dir DIR`` runs the bot under
cProfile and writes ``<scenario>-<run>.prof``/``.txt``; ``--log-dir DIR`` keeps the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    ROOT,
    BenchmarkError,
    Child,
    Flood,
    Sandbox,
    ScratchDatabase,
    emit,
    error_text,
    median_figures,
    peak_rss_mb,
    percentile,
    resolve_output_dirs,
    rss_mb,
    write_profile,
)
from harness import rnd as _r

SCRIPT = Path(__file__).resolve()
TOKEN = "123456789:AAHfanoutBENCHMARKfanout0123456789ab"
START = datetime(2025, 3, 31, 7, 59, tzinfo=UTC)  # the bot's clock at start-up
BRIEFING_AT = "08:00"  # UTC; the due minute the clock jumps to
DUE = datetime(2025, 3, 31, 8, 0, tzinfo=UTC)
NOT_DUE_AT = "20:00"  # subscriptions of the broadcast scenario: nothing due meanwhile
FIRST_CHAT = 700_000_001
FIRST_READER = 800_000_001
ADMIN_ID = 600_000_001
POLL_TIMEOUT = 10.0
SCAN_SECONDS = 0.5
UNLIMITED_RATE = 100_000.0
FLOOD_RATE = 28.0
BROADCAST_RATE = 280.0
BASELINE_CONCURRENCY = 16
READERS = 20
WATCH_INTERVAL = 0.02
MEMORY_SENDS = 10_000
TARGETS: dict[str, dict[str, float]] = {
    "throughput": {"ratio_min": 0.8},
    "flood": {"bulk_per_s_min": 26.0, "flood_refusals_max": 0, "latest_p95_s_max": 1.0},
    "memory": {"extra_peak_rss_mb_max": 50.0},
    "broadcast": {"sends_per_s_min": 266.0, "flood_refusals_max": 0},
}
SCENARIOS = ("throughput", "flood", "memory", "broadcast")


# ==========================================================================================
# The bot process (child): production wiring, a jumpable clock, events on stdout
# ==========================================================================================
class JumpClock:
    """Aware UTC time running in real time from ``start``; ``jump_to`` moves it forward."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._origin = time.monotonic()
        self._shift = 0.0

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin + self._shift)

    def jump_to(self, when: datetime) -> None:
        self._shift += (when - self()).total_seconds()


async def _serve_bot(args: argparse.Namespace) -> None:
    """Run the bot until "stop" (or EOF) on stdin; "go" jumps the clock to the due minute."""
    import cProfile
    from dataclasses import asdict, replace

    from bot.config import (
        DatabaseSettings,
        DeliverySettings,
        Settings,
        StoriesSettings,
        TelegramSettings,
        bundled_story_folder,
    )
    from bot.delivery.due_scan import ScanReport
    from bot.telegram.app import build_application, start_bot, stop_bot
    from bot.telegram.runner import configure_logging

    configure_logging("INFO", TOKEN)
    clock = JumpClock(START)
    delivery = replace(DeliverySettings(), rate_per_second=args.rate, scan_seconds=SCAN_SECONDS)
    if args.concurrency is not None:
        delivery = replace(delivery, concurrency=args.concurrency)
    if args.progress_interval is not None:
        delivery = replace(delivery, progress_interval_seconds=args.progress_interval)
    telegram = replace(TelegramSettings(), base_url=args.base_url,
                       admin_ids=frozenset({ADMIN_ID}))
    if args.http_client is not None:
        telegram = replace(telegram, http_client=args.http_client)
    settings = replace(
        Settings(),
        telegram=telegram,
        stories=replace(StoriesSettings(), folder=bundled_story_folder(), rescan_seconds=3600.0),
        database=DatabaseSettings(url=args.database_url),
        delivery=delivery,
    )
    app = build_application(settings, TOKEN, clock=clock)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def command(line: str) -> None:
        if line == "go":
            clock.jump_to(DUE + timedelta(seconds=0.5))
            emit("went", t=time.monotonic(), clock=clock().isoformat())
        elif line == "stop":
            stop.set()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(command, line.strip())
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read_stdin, daemon=True).start()
    await start_bot(app, poll_timeout=POLL_TIMEOUT)
    services = app.bot_data.services
    assert services is not None
    engine = services.engine
    assert engine is not None
    scans_done = asyncio.Event()
    original_scan = engine.scan.run

    async def timed_scan(now: datetime) -> ScanReport:  # timing only; the scan is unchanged
        began = time.monotonic()
        report = await original_scan(now)
        if report.due:
            emit("scan", start=began, end=time.monotonic(), **asdict(report))
            scans_done.set()
        return report

    engine.scan.run = timed_scan  # type: ignore[method-assign]
    sender = engine.sender.sender

    async def watch_sent(target: int) -> None:
        # The Sender has no completion event to await; a 20 ms poll costs nothing here.
        while (sender.stats["sent"] + sender.stats["failed"] < target  # noqa: ASYNC110
               or (args.watch_scan and not scans_done.is_set())):
            await asyncio.sleep(WATCH_INTERVAL)
        emit("sent", t=time.monotonic(), stats=dict(sender.stats),
              peak_rss_mb=peak_rss_mb(), rss_mb=rss_mb())

    watcher = asyncio.create_task(watch_sent(args.watch_sent)) if args.watch_sent else None
    profiler = cProfile.Profile() if args.profile_to else None
    emit("ready", t=time.monotonic(), peak_rss_mb=peak_rss_mb(), rss_mb=rss_mb(),
          concurrency=settings.delivery.concurrency,
          http_client=settings.telegram.http_client,
          progress_interval_seconds=settings.delivery.progress_interval_seconds)
    if profiler is not None:
        profiler.enable()
    try:
        await stop.wait()
    finally:
        if profiler is not None:
            profiler.disable()
            write_profile(profiler, Path(args.profile_to))
        if watcher is not None:
            watcher.cancel()
        limiter: Any = app.bot.rate_limiter
        emit("final", stats=dict(sender.stats), peak_rss_mb=peak_rss_mb(),
              limiter_granted=dict(getattr(limiter, "granted", {})),
              limiter_retries=getattr(limiter, "retries", None))
        await stop_bot(app)


# ==========================================================================================
# The baseline process (child): raw PTB send_message, sequential or N concurrent senders
# ==========================================================================================
async def _serve_baseline(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
    from telegram.constants import ParseMode
    from telegram.error import TelegramError

    markup = (InlineKeyboardMarkup.de_json(spec["reply_markup"], None)
              if spec.get("reply_markup") else None)
    chats: list[int] = spec["chat_ids"]
    preview = LinkPreviewOptions(is_disabled=True)
    errors: list[str] = []
    async with Bot(TOKEN, base_url=args.base_url) as bot:
        pending = iter(chats)

        async def sender() -> None:
            for chat_id in pending:  # shared iterator: each chat once
                try:
                    await bot.send_message(chat_id, spec["text"], parse_mode=ParseMode.HTML,
                                           reply_markup=markup, link_preview_options=preview)
                except TelegramError as error:
                    errors.append(f"{type(error).__name__}: {error}")

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.senders)))
        wall = time.perf_counter() - began
    emit("done", wall=wall, errors=len(errors), first_error=errors[0] if errors else None)


TELEGRAM_FLOOD = Flood(30, 1, 20)
BROADCAST_FLOOD = Flood(300, 1, 20)


# ==========================================================================================
# Shared scenario helpers
# ==========================================================================================
@dataclass
class Context:
    """What every scenario needs: options, a scratch folder, where logs go."""

    args: argparse.Namespace
    workdir: Path

    @property
    def logs(self) -> Path:
        return Path(self.args.log_dir) if self.args.log_dir else self.workdir

    def database(self, name: str) -> ScratchDatabase:
        return ScratchDatabase(self.workdir, name, self.args.database_url, prefix="fanout")


class BotProcess(Child):
    """The bot under test in its own process (``--serve bot``)."""

    @classmethod
    async def launch(cls, ctx: Context, name: str, sandbox: Sandbox, database_url: str, *,
                     rate: float, watch_sent: int = 0, watch_scan: bool = True) -> BotProcess:
        bot = cls(f"bot ({name})", ctx.logs / f"{name}-bot.log")
        argv = [sys.executable, str(SCRIPT), "--serve", "bot", "--base-url", sandbox.base_url,
                "--database-url", database_url, "--rate", str(rate),
                "--watch-sent", str(watch_sent)]
        if watch_scan:
            argv.append("--watch-scan")
        if ctx.args.concurrency is not None:
            argv += ["--concurrency", str(ctx.args.concurrency)]
        if ctx.args.http_client is not None:
            argv += ["--http-client", ctx.args.http_client]
        if ctx.args.progress_interval is not None:
            argv += ["--progress-interval", str(ctx.args.progress_interval)]
        if ctx.args.profile_dir is not None:
            argv += ["--profile-to", str(Path(ctx.args.profile_dir) / name)]
        await bot.start(argv, '"ready"', within=90)
        return bot


async def _sends_to(sandbox: Sandbox, since: int, chats: set[int] | range,
                    method: str = "sendMessage") -> list[dict[str, Any]]:
    """Successful ``method`` calls to ``chats`` after call number ``since``."""
    calls = await sandbox.calls(since, method)
    return [c for c in calls if c["status"] == 200 and c["chat_id"] in chats]


def _span_rate(calls: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """(messages per second, seconds) from the first call started to the last answered."""
    if not calls:
        return math.nan, math.nan
    first = min(c["started"] for c in calls)
    last = max(c["finished"] for c in calls)
    span = last - first
    return (len(calls) / span if span > 0 else math.nan), span


def _deadline_for(messages: int, rate: float, slack: float) -> float:
    return messages / rate + slack


# ==========================================================================================
# 1. Briefing throughput without flood control, against raw PTB
# ==========================================================================================
async def _throughput_bot(ctx: Context, run: int, sandbox: Sandbox, chats: range,
                          db: ScratchDatabase) -> dict[str, Any]:
    """Due scan at the briefing minute, then the Sender delivers every briefing."""
    populate_s = await db.subscribe(chats, BRIEFING_AT, now=START)
    bot = await BotProcess.launch(ctx, f"throughput-{run}", sandbox, db.url,
                                  rate=UNLIMITED_RATE, watch_sent=len(chats))
    try:
        cursor = await sandbox.call_count()
        await bot.send("go")
        went = await bot.wait_event("went", 10)
        scan = await bot.wait_event("scan", ctx.args.timeout)
        await bot.wait_event("sent", ctx.args.timeout)
    finally:
        await bot.stop()
    final = bot.event("final") or {}
    sends = await _sends_to(sandbox, cursor, chats)
    rate, span = _span_rate(sends)
    first_send = min((c["started"] for c in sends), default=math.nan)
    last_send = max((c["finished"] for c in sends), default=math.nan)
    after_scan = [c for c in sends if c["started"] >= scan["end"]]
    return {
        "messages": len(sends),
        "msgs_per_s": rate,
        "send_span_s": span,
        "scan_s": scan["end"] - scan["start"],
        "scan_ms_per_subscription": 1000 * (scan["end"] - scan["start"]) / max(1, scan["due"]),
        "scan_created": scan["created"],
        "clock_jump_to_scan_start_s": scan["start"] - went["t"],
        "first_send_after_scan_start_s": first_send - scan["start"],
        "sent_during_scan": len(sends) - len(after_scan),
        "scan_start_to_last_send_msgs_per_s": len(sends) / (last_send - scan["start"]),
        "populate_s": populate_s,
        "sender_stats": final.get("stats"),
        "sample": sends[0]["params"] if sends else None,
    }


async def _requeue_digests(db: ScratchDatabase) -> int:
    """Every briefing row of the finished run back to ``pending``, ready before 07:59."""
    from sqlalchemy import update

    from bot.storage.database import Database

    opened = await Database.open(db.url, now=START)
    try:
        d = opened.tables.deliveries
        async with opened.engine.begin() as conn:
            result = await conn.execute(update(d).where(d.c.kind == "digest").values(
                state="pending", parts_sent=0, attempts=0, claimed_by=None, claimed_at=None,
                sent_at=None, error=None, not_before=START - timedelta(minutes=1)))
        return int(result.rowcount or 0)
    finally:
        await opened.close()


async def _sender_only(ctx: Context, run: int, sandbox: Sandbox, chats: range,
                       db: ScratchDatabase) -> dict[str, Any]:
    """Diagnostic: the same rows drained by a fresh bot with no scan running meanwhile.

    The briefing rows of the measured run are put back to ``pending`` (the subscriptions
    are already scheduled for the next day, so the scan creates nothing): what the
    Sender, the limiter and the ledger's claim/settle path manage on their own.
    """
    requeued = await _requeue_digests(db)
    cursor = await sandbox.call_count()
    bot = await BotProcess.launch(ctx, f"throughput-{run}-sender-only", sandbox, db.url,
                                  rate=UNLIMITED_RATE, watch_sent=requeued, watch_scan=False)
    try:
        await bot.wait_event("sent", ctx.args.timeout)
    finally:
        await bot.stop()
    sends = await _sends_to(sandbox, cursor, chats)
    rate, span = _span_rate(sends)
    return {"messages": len(sends), "msgs_per_s": rate, "send_span_s": span}


async def _throughput_baseline(ctx: Context, run: int, sandbox: Sandbox, chats: range,
                               sample: dict[str, Any], senders: int) -> dict[str, Any]:
    spec_path = ctx.workdir / f"baseline-{run}-{senders}.json"
    markup = sample.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    spec_path.write_text(json.dumps({"text": sample["text"], "reply_markup": markup,
                                     "chat_ids": list(chats)}), encoding="utf-8")
    child = Child(f"baseline x{senders}", ctx.logs / f"throughput-{run}-baseline{senders}.log")
    cursor = await sandbox.call_count()
    try:
        await child.start([sys.executable, str(SCRIPT), "--serve", "baseline", "--base-url",
                           sandbox.base_url, "--spec", str(spec_path),
                           "--senders", str(senders)],
                          lambda line: '"done"' in line, within=ctx.args.timeout)
    finally:
        await child.stop()
    done = child.event("done") or {}
    sends = await _sends_to(sandbox, cursor, chats)
    rate, span = _span_rate(sends)
    return {"messages": len(sends), "msgs_per_s": rate, "send_span_s": span,
            "client_wall_s": done.get("wall"), "errors": done.get("errors"),
            "first_error": done.get("first_error")}


async def scenario_throughput(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    chats = range(FIRST_CHAT, FIRST_CHAT + args.destinations)
    runs: list[dict[str, Any]] = []
    sample: dict[str, Any] | None = None
    for run in range(args.runs):
        sandbox = Sandbox(ctx.logs / f"throughput-{run}-server.log")
        try:
            await sandbox.start()
            await sandbox.register_private_chats(chats)
            figures: dict[str, Any] = {}
            order = ("bot", "baseline") if run % 2 == 0 or sample is None else ("baseline", "bot")
            for part in order:
                if part == "bot":
                    db = ctx.database(f"throughput{run}")
                    await db.create()
                    try:
                        figures["bot"] = await _throughput_bot(ctx, run, sandbox, chats, db)
                        sample = sample or figures["bot"].pop("sample")
                        figures["bot"].pop("sample", None)
                        if ctx.args.sender_only:
                            figures["sender_only"] = await _sender_only(ctx, run, sandbox,
                                                                        chats, db)
                    finally:
                        await db.drop()
                else:
                    assert sample is not None
                    figures["baseline_sequential"] = await _throughput_baseline(
                        ctx, run, sandbox, chats, sample, 1)
                    figures["baseline_concurrent"] = await _throughput_baseline(
                        ctx, run, sandbox, chats, sample, BASELINE_CONCURRENCY)
            runs.append(figures)
        finally:
            await sandbox.stop()
    best = [max(r["baseline_sequential"]["msgs_per_s"], r["baseline_concurrent"]["msgs_per_s"])
            for r in runs]
    ratios = [r["bot"]["msgs_per_s"] / b for r, b in zip(runs, best, strict=True)]
    result: dict[str, Any] = {
        "destinations": args.destinations,
        "rate_per_second": UNLIMITED_RATE,
        "bot": median_figures([r["bot"] for r in runs]),
        **({"sender_only_diagnostic": median_figures([r["sender_only"] for r in runs])}
           if all("sender_only" in r for r in runs) else {}),
        "baseline_sequential": median_figures([r["baseline_sequential"] for r in runs]),
        "baseline_concurrent": median_figures([r["baseline_concurrent"] for r in runs]),
        "baseline_best_msgs_per_s": _r(statistics.median(best), 1),
        "ratio": _r(statistics.median(ratios)),
    }
    if len(runs) > 1:
        result["ratio_runs"] = [_r(x) for x in ratios]
    result["targets"] = TARGETS["throughput"]
    result["targets_met"] = {"ratio_min": bool(result["ratio"] >= 0.8)}
    return result


# ==========================================================================================
# 2. Flood-limited fan-out with readers asking /latest meanwhile
# ==========================================================================================
async def scenario_flood(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    warm_up = 3.0
    size = math.ceil(FLOOD_RATE * (args.window + warm_up + 20))
    chats = range(FIRST_CHAT, FIRST_CHAT + size)
    sandbox = Sandbox(ctx.logs / "flood-server.log")
    db = ctx.database("flood")
    bot: BotProcess | None = None
    result: dict[str, Any] = {"destinations": size, "window_s": args.window,
                              "rate_per_second": FLOOD_RATE,
                              "server_flood": TELEGRAM_FLOOD.to_json(), "readers": READERS}
    try:
        await db.create()
        await sandbox.start(TELEGRAM_FLOOD)
        await asyncio.gather(sandbox.register_private_chats(chats),
                             db.subscribe(chats, BRIEFING_AT, now=START))
        bot = await BotProcess.launch(ctx, "flood", sandbox, db.url, rate=FLOOD_RATE)
        refused_before = int((await sandbox.stats())["flood_refusals"])
        cursor = await sandbox.call_count()
        await bot.send("go")
        first = await _first_send(sandbox, cursor, chats, within=args.timeout)
        window_start = first + warm_up
        window_end = window_start + args.window
        latencies, reader_errors = await _readers(sandbox, window_start, args.window)
        await _sleep_until(window_end + 0.5)
        refused = int((await sandbox.stats())["flood_refusals"]) - refused_before
        sends = await _sends_to(sandbox, cursor, chats)
        calls = await sandbox.calls(cursor)
        await bot.stop()
        in_window = [c for c in sends if window_start <= c["finished"] < window_end]
        ordered = sorted(latencies)
        result.update({
            "bulk_per_s": _r(len(in_window) / args.window),
            "bulk_sends_in_window": len(in_window),
            "busy_through_window": bool(sends) and max(c["finished"] for c in sends)
            >= window_end,
            "flood_refusals": refused,
            "refused_calls": _refused_summary(calls),
            "latest_answered": len(latencies),
            "latest_p50_s": _r(percentile(ordered, 50), 3),
            "latest_p95_s": _r(percentile(ordered, 95), 3),
            "latest_max_s": _r(ordered[-1] if ordered else math.nan, 3),
            "reader_errors": len(reader_errors),
        })
        if reader_errors:
            result["first_reader_error"] = reader_errors[0]
        final = bot.event("final") or {}
        result["sender_stats"] = final.get("stats")
        result["limiter_granted"] = final.get("limiter_granted")
        result["limiter_retries"] = final.get("limiter_retries")
    except (BenchmarkError, OSError, TimeoutError) as error:
        result["error"] = error_text(error)
    finally:
        if bot is not None:
            await bot.stop()
        await sandbox.stop()
        await db.drop()
    bulk, refused_n = result.get("bulk_per_s"), result.get("flood_refusals")
    p95 = result.get("latest_p95_s")
    result["targets"] = TARGETS["flood"]
    result["targets_met"] = {
        "bulk_per_s_min": bulk is not None and bulk >= 26.0,
        "flood_refusals_max": refused_n == 0,
        "latest_p95_s_max": (p95 is not None and p95 < 1.0
                             and result.get("latest_answered") == READERS),
    }
    return result


def _refused_summary(calls: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        if call["status"] == 429:
            key = f"{call['method']}"
            counts[key] = counts.get(key, 0) + 1
    return counts


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _first_send(sandbox: Sandbox, since: int, chats: range, within: float) -> float:
    """When the first bulk send to ``chats`` started (sandbox clock = this machine's)."""
    deadline = time.monotonic() + within
    cursor = since
    while time.monotonic() < deadline:
        calls = await sandbox.calls(cursor, "sendMessage")
        hits = [c for c in calls if c["chat_id"] in chats]
        if hits:
            return float(min(c["started"] for c in hits))
        if calls:
            cursor = max(cursor, max(int(c["seq"]) for c in calls) - 1)
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"no bulk send within {within:g} s of the clock jump")


async def _readers(sandbox: Sandbox, start: float, window: float) -> tuple[list[float],
                                                                         list[str]]:
    """``READERS`` users each ask /latest once, evenly spread over the window."""
    latencies: list[float] = []
    errors: list[str] = []

    async def reader(index: int) -> None:
        await _sleep_until(start + (index + 0.5) * window / READERS)
        user_id = FIRST_READER + index
        try:
            post = await sandbox.client.user_message("/latest", user_id=user_id)
            trip = await sandbox.client.wait_reply(post["update_id"], chat_id=user_id,
                                                   count=1, timeout=15)
        except Exception as error:  # a figure, not a crash
            errors.append(f"reader {index}: {error_text(error)}")
            return
        if not trip["complete"] or trip["last_latency"] is None:
            errors.append(f"reader {index}: no reply within 15 s")
            return
        latencies.append(float(trip["last_latency"]))

    await asyncio.gather(*(reader(i) for i in range(READERS)))
    return latencies, errors


# ==========================================================================================
# 3. Memory: peak RSS with 1,000 vs 100,000 subscribed destinations
# ==========================================================================================
async def _memory_size(ctx: Context, size: int) -> dict[str, Any]:
    chats = range(FIRST_CHAT, FIRST_CHAT + size)
    sandbox = Sandbox(ctx.logs / f"memory-{size}-server.log")
    db = ctx.database(f"memory{size}")
    bot: BotProcess | None = None
    target = min(MEMORY_SENDS, size)
    try:
        await db.create()
        await sandbox.start()
        began = time.perf_counter()
        _, populate_s = await asyncio.gather(sandbox.register_private_chats(chats),
                                             db.subscribe(chats, BRIEFING_AT, now=START))
        prepare_s = time.perf_counter() - began
        bot = await BotProcess.launch(ctx, f"memory-{size}", sandbox, db.url,
                                      rate=UNLIMITED_RATE, watch_sent=target)
        ready = bot.event("ready") or {}
        await bot.send("go")
        scan = await bot.wait_event("scan", ctx.args.timeout)
        sent = await bot.wait_event("sent", ctx.args.timeout)
        return {
            "destinations": size,
            "sends_counted": target,
            "peak_rss_mb": _r(sent["peak_rss_mb"], 1),
            "rss_at_ready_mb": _r(ready.get("rss_mb"), 1),
            "peak_rss_at_ready_mb": _r(ready.get("peak_rss_mb"), 1),
            "rss_at_end_mb": _r(sent["rss_mb"], 1),
            "scan_s": _r(scan["end"] - scan["start"]),
            "scan_created": scan["created"],
            "prepare_s": _r(prepare_s),
            "populate_s": _r(populate_s),
        }
    finally:
        if bot is not None:
            await bot.stop()
        await sandbox.stop()
        await db.drop()


async def scenario_memory(ctx: Context) -> dict[str, Any]:
    small, large = ctx.args.memory_small, ctx.args.memory_large
    result: dict[str, Any] = {"sends_counted_max": MEMORY_SENDS,
                              "rate_per_second": UNLIMITED_RATE}
    try:
        figures = {}
        for size in (small, large):
            figures[size] = await _memory_size(ctx, size)
        result["small"] = figures[small]
        result["large"] = figures[large]
        extra = figures[large]["peak_rss_mb"] - figures[small]["peak_rss_mb"]
        result["extra_peak_rss_mb"] = _r(extra, 1)
    except (BenchmarkError, OSError, TimeoutError) as error:
        result["error"] = error_text(error)
    result["targets"] = TARGETS["memory"]
    extra_mb = result.get("extra_peak_rss_mb")
    result["targets_met"] = {"extra_peak_rss_mb_max": extra_mb is not None and extra_mb <= 50}
    return result


# ==========================================================================================
# 4. Admin broadcast at 280/s under a 300/s flood limit
# ==========================================================================================
async def scenario_broadcast(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    size = args.broadcast_size
    chats = range(FIRST_CHAT, FIRST_CHAT + size)
    sandbox = Sandbox(ctx.logs / "broadcast-server.log")
    db = ctx.database("broadcast")
    bot: BotProcess | None = None
    result: dict[str, Any] = {"destinations": size, "rate_per_second": BROADCAST_RATE,
                              "server_flood": BROADCAST_FLOOD.to_json()}
    try:
        await db.create()
        await sandbox.start()
        await asyncio.gather(sandbox.register_private_chats(chats),
                             db.subscribe(chats, NOT_DUE_AT, now=START))
        bot = await BotProcess.launch(ctx, "broadcast", sandbox, db.url, rate=BROADCAST_RATE)
        interval = float((bot.event("ready") or {})["progress_interval_seconds"])
        result["progress_interval_seconds"] = interval
        client = sandbox.client
        post = await client.user_message("/broadcast Hello subscribers: this is a benchmark "
                                         "announcement.", user_id=ADMIN_ID)
        await client.wait_reply(post["update_id"], chat_id=ADMIN_ID, count=2, timeout=30)
        status, send_data = _send_button(await client.messages(ADMIN_ID, bot_only=True))
        await client.set_options(flood=BROADCAST_FLOOD.to_json())
        refused_before = int((await sandbox.stats())["flood_refusals"])
        cursor = await sandbox.call_count()
        pressed_at = time.monotonic()
        await client.press(ADMIN_ID, message_id=status["message_id"], data=send_data,
                           timeout=60)
        pressed_answered = time.monotonic()
        deadline = _deadline_for(size, BROADCAST_RATE * 0.5, 60)
        report = await _final_report(sandbox, cursor, status["message_id"], deadline)
        refused = int((await sandbox.stats())["flood_refusals"]) - refused_before
        sends = await _sends_to(sandbox, cursor, chats)
        calls = await sandbox.calls(cursor)
        edits = [c for c in calls if c["method"] == "editMessageText"
                 and c["chat_id"] == ADMIN_ID and c["status"] == 200]
        rate, span = _span_rate(sends)
        starts = [c["started"] for c in edits]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        progress_gaps = gaps[:-1] if len(gaps) >= 1 else []
        result.update({
            "sends": len(sends),
            "sends_per_s": _r(rate, 1),
            "send_span_s": _r(span),
            "press_to_answer_s": _r(pressed_answered - pressed_at),
            "press_to_first_send_s": _r(min(c["started"] for c in sends) - pressed_at)
            if sends else None,
            "press_to_report_s": _r(report - pressed_at),
            "flood_refusals": refused,
            "refused_calls": _refused_summary(calls),
            "status_edits": len(edits),
            "min_progress_edit_gap_s": _r(min(progress_gaps), 3) if progress_gaps else None,
            "final_report_gap_s": _r(gaps[-1], 3) if gaps else None,
            "edit_gaps_s": [_r(g, 2) for g in gaps],
        })
        await bot.stop()
        final = bot.event("final") or {}
        result["sender_stats"] = final.get("stats")
        result["limiter_retries"] = final.get("limiter_retries")
    except (BenchmarkError, OSError, TimeoutError) as error:
        result["error"] = error_text(error)
    finally:
        if bot is not None:
            await bot.stop()
        await sandbox.stop()
        await db.drop()
    rate_met = result.get("sends_per_s")
    min_gap = result.get("min_progress_edit_gap_s")
    interval = result.get("progress_interval_seconds", math.inf)
    result["targets"] = {**TARGETS["broadcast"],
                         "min_progress_edit_gap_s_min": interval}
    result["targets_met"] = {
        "sends_per_s_min": rate_met is not None and rate_met >= 266,
        "flood_refusals_max": result.get("flood_refusals") == 0,
        "min_progress_edit_gap_s_min": min_gap is not None and min_gap >= interval - 0.01,
    }
    return result


def _send_button(messages: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The preview's status message and the data of its "Send" button."""
    for message in reversed(messages):
        for button in message["buttons"]:
            data = str(button.get("callback_data") or "")
            if data.startswith("bc:s:"):
                return message, data
    raise BenchmarkError("no broadcast preview with a Send button")


async def _final_report(sandbox: Sandbox, since: int, message_id: int,
                        within: float) -> float:
    """When the status message was edited into the final report (sandbox clock)."""
    deadline = time.monotonic() + within
    cursor = since
    while time.monotonic() < deadline:
        for call in await sandbox.calls(cursor, "editMessageText"):
            cursor = max(cursor, int(call["seq"]))
            params = call["params"]
            if (call["chat_id"] == ADMIN_ID and call["status"] == 200
                    and str(params.get("message_id")) == str(message_id)
                    and "done in" in str(params.get("text", ""))):
                return float(call["finished"])
        await asyncio.sleep(0.25)
    raise BenchmarkError(f"no final broadcast report within {within:g} s")


# ==========================================================================================
# Driver
# ==========================================================================================
RUNNERS: dict[str, Callable[[Context], Awaitable[dict[str, Any]]]] = {
    "throughput": scenario_throughput,
    "flood": scenario_flood,
    "memory": scenario_memory,
    "broadcast": scenario_broadcast,
}


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "quick": args.quick,
        "database": "postgresql" if args.database_url else "sqlite",
        "scan_seconds": SCAN_SECONDS,
        "bot_http_client": args.http_client or "the bot's default (aiohttp)",
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        ctx = Context(args, Path(tmp))
        for name in args.scenarios:
            started = time.perf_counter()
            try:
                report[name] = await RUNNERS[name](ctx)
            except Exception as error:  # still print the JSON, with the reason
                report[name] = {"error": error_text(error)}
            report[name]["wall_s"] = round(time.perf_counter() - started, 1)
    report["targets_met"] = {
        f"{name}.{target}": met
        for name in args.scenarios
        for target, met in report[name].get("targets_met", {"completed": False}).items()
    }
    report["all_targets_met"] = all(report["targets_met"].values())
    report["total_wall_s"] = round(time.perf_counter() - began, 1)
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes: 2,000 destinations, 20 s window, memory 1,000 vs "
                             "5,000, broadcast 3,000")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, default=1,
                        help="throughput: repeat k times, report medians")
    parser.add_argument("--destinations", type=int, default=None,
                        help="throughput: subscribed chats (10,000)")
    parser.add_argument("--no-sender-only", dest="sender_only", action="store_false",
                        help="throughput: skip the diagnostic drain of pre-made rows")
    parser.add_argument("--window", type=float, default=None,
                        help="flood: measured window in seconds (60)")
    parser.add_argument("--memory-small", type=int, default=1_000)
    parser.add_argument("--memory-large", type=int, default=None, help="(100,000)")
    parser.add_argument("--broadcast-size", type=int, default=None, help="(10,000)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="delivery.concurrency of the bot (default: the bot's default)")
    parser.add_argument("--http-client", choices=("aiohttp", "httpx"), default=None,
                        help="telegram.http_client of the bot (default: the bot's default); "
                             "the raw baseline always uses python-telegram-bot's own httpx")
    parser.add_argument("--progress-interval", type=float, default=None,
                        help="delivery.progress_interval_seconds (default: the bot's default)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server URL (postgresql+asyncpg://…); a throw-away "
                             "database is created there per scenario and dropped after")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds any single wait may take before it becomes an error")
    parser.add_argument("--profile-dir", default=None,
                        help="run the bot under cProfile and write the stats here")
    parser.add_argument("--log-dir", default=None, help="keep the processes' logs here")
    # Internal: the child processes.
    parser.add_argument("--serve", choices=("bot", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=UNLIMITED_RATE, help=argparse.SUPPRESS)
    parser.add_argument("--watch-sent", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--watch-scan", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--senders", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return args
    quick = args.quick
    args.destinations = args.destinations or (2_000 if quick else 10_000)
    args.window = args.window or (20.0 if quick else 60.0)
    args.memory_large = args.memory_large or (5_000 if quick else 100_000)
    args.broadcast_size = args.broadcast_size or (3_000 if quick else 10_000)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.database_url and not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must start with postgresql+asyncpg://")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `bot` is importable
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    if args.serve == "bot":
        asyncio.run(_serve_bot(args))
        return 0
    if args.serve == "baseline":
        spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
        asyncio.run(_serve_baseline(args, spec))
        return 0
    resolve_output_dirs(args, "profile_dir", "log_dir")
    report = asyncio.run(benchmark(args))
    print(json.dumps(report))
    return 0 if report["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
