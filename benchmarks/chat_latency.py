"""Chat latency benchmark: the story bot against a minimal PTB echo bot, under the same load.

Prints one JSON object of named figures::

    python benchmarks/chat_latency.py [--users 200] [--requests 10] [--runs 1]
    python benchmarks/chat_latency.py --quick          # 40 readers, 4 messages each
    python benchmarks/chat_latency.py --mode both --runs 3   # webhook against polling

What it measures
----------------
``--users`` simulated readers each send ``--requests`` messages in a closed loop, alternating
``/latest`` and ``/story N`` (N cycles over the bundled sample stories 1..15): a reader sends
the next message only once the whole reply to the previous one has arrived. A round trip is
the sandbox's own ``RoundTrip.last_latency``: from the moment the update was queued at the
server to the moment the server answered the bot's LAST reply call for it, both stamped by
the server's clock. Per bot: p50/p95/p99 of the round trips (ms) and replies per second
(requests completed / wall time of the measured phase); also ``cpu_ms_per_request``, the bot
process's CPU time per completed request (``cpu_per_request_ratio`` = story bot / baseline),
which other work on the machine moves less than it moves the latencies; and
``fetch_p50_ms``/``fetch_p99_ms``, the part of the round trip before the bot took the
update (the sandbox's ``fetched_at``: a getUpdates answer held it, or the webhook answered
its post).

The baseline, in the same run and against the same kind of server, is a minimal PTB
``Application`` with one ``MessageHandler`` that replies with the message text, built with
the same concurrency settings as the story bot (``concurrent_updates(64)``, builder defaults
otherwise) and started and stopped by the same ``start_bot``/``stop_bot``. ``p50_ratio`` and
``p99_ratio`` are story bot / baseline; the targets are p50 <= 1.5x and p99 <= 2x.

The story bot runs with production settings except: per-user throttling raised to
10,000 commands a minute, and the global send budget (``delivery.rate_per_second``, 25 in
production, shared by interactive replies) and each chat's (``per_chat_per_second``, 1 after
a burst of 3) raised to ``--send-rate`` (10,000 a second). They exist for Telegram's flood
limits, which the sandbox does not impose here; left at 25 a second the global budget alone
would cap the bot at 25 replies/s and set p50 to about users / 25 seconds, and the chat's
budget would hold each reader to a reply a second, so the benchmark would measure settings
instead of the code (``--send-rate 25`` shows that).
Also: a throw-away SQLite database in a temporary directory, the bundled sample stories,
and the Bot API root pointed at the sandbox. Both bots log like production
(``configure_logging("INFO")``).

Webhook mode
------------
``--mode`` says how the bots receive updates. ``polling`` (the default) is the above.
``webhook``: both bots run python-telegram-bot's own webhook server on a free local port
(with a secret token) and the sandbox posts each update to it, as Telegram would; the
figures are the same. ``both``: each run measures the story bot twice, by polling and by
webhook (fresh sandbox and bot each, order alternating between runs), and the ratios are
webhook / polling (``p50_ratio``, ``p99_ratio``; target <= 1.1 each). A round trip starts
when the sandbox queues the update in every mode, so the figures include how it reaches
the bot: a long poll's answer, or a POST to the webhook.

How the processes are laid out, and why
---------------------------------------
Three processes, so that nothing being measured shares an event loop (or a GIL) with
anything else:

* the sandbox server (``python -m bot.sandbox.server --port 0``; the benchmark waits for
  its "listening" line and reads the port from it), a fresh one for every bot and run;
* the bot under test, in a child process of this script (``--serve bot|baseline``, an
  internal mode), as it runs in production: alone on its event loop;
* this process, which plays the readers through the sandbox's HTTP user API
  (``SandboxClient``).

Driving the readers from the bot's own process would put two or three HTTP requests of
driver work per message on the bot's event loop, inflating its latency by an amount that
depends on how fast the bot is; the baseline would pay the same tax at a different rate,
so even the ratio would be skewed. With the bot alone in its process the only shared
resource is the CPU (two cores, three processes): the ``cpu_*`` figures are each process's
share of one core during the measured phase, so a saturated sandbox or driver shows
instead of being silently folded into the bot's numbers (``cpu_bot`` near 1.0 means the
bot is the bottleneck, which is what a fair comparison wants; below 0.85 a ``warning`` in
the output says the run was probably crowded out by other work).

How a reader waits, cheaply for the server: it posts its message (``POST
/sandbox/message``), then waits until a single watcher task, which reads the sandbox's call
log every 10 ms (``GET /sandbox/calls?since=N``, only new records), has seen the expected
number of successful reply calls to its chat; then it fetches the official round trip with
``wait-reply`` (``count`` = expected parts), which answers at once. The obvious
alternative, 200 readers each long-polling ``wait-reply``, makes the sandbox rescan its call
log for every waiter on every call it records; that cost the server about as much CPU as
the bot under test (most of it in that rescan), taken from the bot on a two-core machine.
The watcher's 10 ms cadence only delays a reader's NEXT message; it is not part of any
round trip, which the server stamps.

The LAST part without a quiet period: before the warm-up each distinct message
(``/latest``, ``/story 1`` ... ``/story 15``) is sent once and the reply awaited until the
chat is quiet; that fixes the texts of its reply parts. Measured requests wait for exactly
that many parts, and a reply whose texts differ (an apology after a failed send, a
"slow down") counts as an error, not as a fast reply. Afterwards a sample of chats is
checked for parts beyond the expected ones (``unexpected_parts``, should be 0). The warm-up
proper sends one ``/latest`` from every reader at once, so connections are open and
per-chat caches filled: the measured phase is returning readers (steady state); failures
of those first messages are counted in ``warm_up_errors``.

Robustness: every request has a timeout (``--timeout``) and the measured phase a
deadline (``--deadline``); what does not finish counts in ``errors`` (requests not
completed: a reader stops at its first failure; the first one is quoted in
``first_error``) instead of hanging. With any errors ``targets_met`` is false and the exit
status 1. Children are stopped with SIGTERM (killed if they do not exit) whatever happens.

With ``--runs k`` every figure is the median over the runs (ratios: median of the per-run
ratios) and the order of the two bots alternates between runs. ``--profile-dir DIR`` runs
each bot under cProfile and writes ``run<k>-<bot>.prof`` and ``.txt`` there (profiling
slows the bots: do not compare a profiled run's figures with an unprofiled one's);
``--log-dir DIR`` keeps the children's logs. ``load_average_1m_at_start`` is there because
other work on the machine moves every figure: compare runs made under similar load, or use
``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    ROOT,
    BenchmarkError,
    CallLog,
    Child,
    Sandbox,
    json_safe,
    percentile,
    resolve_output_dirs,
    write_profile,
)

SCRIPT = Path(__file__).resolve()
TOKEN = "123456789:AAHbenchmarkBENCHMARKbenchmark0123456"
SAMPLE_STORIES = 15
STORY_THROTTLE = 10_000  # commands per minute per user: effectively off
STORY_SEND_RATE = 10_000.0  # messages per second, all chats: effectively off
POLL_TIMEOUT = 10.0
USERS_PER_CLIENT = 50  # aiohttp's default connector allows 100 connections per session
FIRST_USER_ID = 500_000_001
PROBE_USER_ID = 900_000_001
CHECKED_CHATS = 20
WATCH_INTERVAL = 0.01  # seconds between reads of the sandbox's call log
CONFIRM_TIMEOUT = 5.0
TARGETS = {"p50_ratio": 1.5, "p99_ratio": 2.0}
MODE_TARGETS = {"p50_ratio": 1.1, "p99_ratio": 1.1}  # webhook / polling
SATURATED = 0.85  # a bot's share of a core below which the run was probably crowded out
KINDS = ("baseline", "bot")
MODES = ("polling", "webhook")
WEBHOOK_PATH = "/telegram"
WEBHOOK_SECRET = "benchmark_webhook-SECRET_0123456789"


@dataclass(frozen=True)
class Entry:
    """One bot measured in each run: its name in the output, which bot, and how it
    receives updates."""

    label: str
    kind: str
    mode: str


def entries_for(mode: str) -> tuple[Entry, ...]:
    """What a run measures: baseline and story bot in one mode, or the story bot in both
    (the first entry is the ratios' denominator)."""
    if mode == "both":
        return tuple(Entry(m, "bot", m) for m in MODES)
    return tuple(Entry(kind, kind, mode) for kind in KINDS)


# -- the bots (child process) ---------------------------------------------------------------
async def _serve(kind: str, base_url: str, database_url: str, send_rate: float,
                 profile_to: Path | None, http_client: str | None = None,
                 mode: str = "polling") -> None:
    """Run one bot until SIGTERM/SIGINT or until stdin closes (the parent went away)."""
    import cProfile
    from dataclasses import replace
    from typing import cast

    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    from bot.config import (
        DatabaseSettings,
        DeliverySettings,
        HttpClient,
        Settings,
        StoriesSettings,
        TelegramSettings,
        bundled_story_folder,
    )
    from bot.telegram.app import build_application, start_bot, stop_bot
    from bot.telegram.context import BotApplication
    from bot.telegram.runner import configure_logging

    configure_logging("INFO", TOKEN)
    if kind == "bot":
        telegram = replace(TelegramSettings(), base_url=base_url,
                           commands_per_minute=STORY_THROTTLE)
        if http_client is not None:
            telegram = replace(telegram, http_client=cast(HttpClient, http_client))
        settings = replace(
            Settings(),
            telegram=telegram,
            stories=replace(StoriesSettings(), folder=bundled_story_folder()),
            database=DatabaseSettings(url=database_url),
            delivery=replace(DeliverySettings(), rate_per_second=send_rate,
                             per_chat_per_second=send_rate),
        )
        app = build_application(settings, TOKEN)
    else:
        async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if update.message is not None and update.message.text is not None:
                await update.message.reply_text(update.message.text)

        echo_app = (Application.builder().token(TOKEN).base_url(base_url)
                    .concurrent_updates(64).build())
        echo_app.add_handler(MessageHandler(filters.TEXT, echo))
        app = cast(BotApplication, echo_app)  # start_bot/stop_bot only use Application's API

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    if mode == "webhook":
        await _start_webhook(app)
    else:
        await start_bot(app, poll_timeout=POLL_TIMEOUT)
    profiler = cProfile.Profile() if profile_to is not None else None
    print("ready", flush=True)
    if profiler is not None:
        profiler.enable()
    try:
        await stop.wait()
    finally:
        if profiler is not None and profile_to is not None:
            profiler.disable()
            write_profile(profiler, profile_to)
        await stop_bot(app)


async def _start_webhook(app: Any) -> None:
    """What ``run_webhook`` does before it waits, on a free local port: the socket bound,
    initialise, ``post_init``, the webhook set and served (with a secret), then start."""
    from telegram import Update

    from bot.config import WebhookSettings
    from bot.telegram.startup import WEBHOOK_MAX_CONNECTIONS, listening_socket

    sock = listening_socket(WebhookSettings(url="", path=WEBHOOK_PATH, port=0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.updater.start_webhook(unix=sock, url_path=WEBHOOK_PATH, webhook_url=url,
                                    secret_token=WEBHOOK_SECRET,
                                    allowed_updates=Update.ALL_TYPES,
                                    max_connections=WEBHOOK_MAX_CONNECTIONS)
    await app.start()


# -- the readers (this process) -------------------------------------------------------------
def command_for(user_index: int, request_index: int) -> str:
    """Even requests ``/latest``, odd ones ``/story N`` with N cycling over the samples."""
    if request_index % 2 == 0:
        return "/latest"
    number = (user_index * 7 + request_index // 2) % SAMPLE_STORIES + 1
    return f"/story {number}"


def _reply_texts(trip: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(call["params"].get("text", "")) for call in trip["calls"])


@dataclass
class Load:
    """What one measured phase produced."""

    requests: int
    latencies: list[float] = field(default_factory=list)  # seconds
    # From queueing to the bot taking the update (a getUpdates answer, a 2xx to a post).
    fetch_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warm_up_errors: list[str] = field(default_factory=list)
    call_log_read_errors: int = 0
    wall: float = math.nan
    cpu: dict[str, float | None] = field(default_factory=dict)
    bot_cpu_seconds: float = math.nan
    unexpected_parts: int = 0
    parts_per_request: float = math.nan

    def cpu_ms_per_request(self) -> float:
        """The bot process's CPU per completed request (steadier than latency under load)."""
        completed = len(self.latencies)
        return self.bot_cpu_seconds * 1000 / completed if completed else math.nan

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        completed = len(ordered)
        figures: dict[str, Any] = {
            "p50_ms": round(percentile(ordered, 50) * 1000, 1),
            "p95_ms": round(percentile(ordered, 95) * 1000, 1),
            "p99_ms": round(percentile(ordered, 99) * 1000, 1),
            "fetch_p50_ms": round(percentile(sorted(self.fetch_latencies), 50) * 1000, 1),
            "fetch_p99_ms": round(percentile(sorted(self.fetch_latencies), 99) * 1000, 1),
            "replies_per_s": round(completed / self.wall, 1) if self.wall > 0 else math.nan,
            "cpu_ms_per_request": round(self.cpu_ms_per_request(), 2),
            "completed": completed,
            "errors": self.requests - completed,
            "wall_s": round(self.wall, 2),
            "reply_parts_per_request": round(self.parts_per_request, 2),
            "unexpected_parts": self.unexpected_parts,
        }
        for name, value in self.cpu.items():
            figures[f"cpu_{name}"] = None if value is None else round(value, 2)
        figures["warm_up_errors"] = len(self.warm_up_errors)
        figures["call_log_read_errors"] = self.call_log_read_errors
        if self.errors:
            figures["first_error"] = self.errors[0]
        if self.warm_up_errors:
            figures["first_warm_up_error"] = self.warm_up_errors[0]
        return figures


class Readers:
    """Simulated readers talking to one sandbox through its HTTP user API.

    One watcher task reads the sandbox's call log (``GET /sandbox/calls?since=N``, only new
    records each time) and counts the successful reply calls per chat; a reader waits for
    its chat's count to grow by the expected number of parts, then asks ``wait-reply``
    (which returns at once by then) for the official :class:`RoundTrip`.
    """

    def __init__(self, url: str, users: int, timeout: float) -> None:
        from bot.sandbox.client import SandboxClient
        from bot.sandbox.state import REPLY_METHODS

        self.timeout = timeout
        self.users = users
        count = max(1, math.ceil(users / USERS_PER_CLIENT))
        self.clients = [SandboxClient(url) for _ in range(count)]
        self._watch_client = SandboxClient(url)
        self.expected: dict[str, tuple[str, ...]] = {}  # message -> texts of its reply parts
        self._reply_methods = REPLY_METHODS
        self._replies: dict[int, int] = {}  # chat id -> successful reply calls seen
        self._wakeups: dict[int, asyncio.Event] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.watch_errors: list[str] = []

    async def __aenter__(self) -> Readers:
        for client in (*self.clients, self._watch_client):
            await client.__aenter__()
        self._watcher = asyncio.create_task(self._watch_calls())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        for client in (*self.clients, self._watch_client):
            await client.close()

    async def _watch_calls(self) -> None:
        log = CallLog(self._watch_client)
        while True:
            try:
                calls = await log.poll()
            except Exception as error:  # keep watching; readers time out if it persists
                self.watch_errors.append(f"{type(error).__name__}: {error}")
                calls = []
            for call in calls:
                method = str(call["method"]).lower()
                chat = call["chat_id"]
                if call["status"] == 200 and method in self._reply_methods and chat is not None:
                    self._replies[chat] = self._replies.get(chat, 0) + 1
                    wakeup = self._wakeups.pop(chat, None)
                    if wakeup is not None:
                        wakeup.set()
            await asyncio.sleep(WATCH_INTERVAL)

    def _client(self, user_index: int) -> Any:
        return self.clients[user_index % len(self.clients)]

    async def learn_reply_parts(self) -> None:
        """How many reply calls each distinct message produces (quiet-period wait)."""
        texts = ["/latest", *(f"/story {n}" for n in range(1, SAMPLE_STORIES + 1))]

        async def probe(index: int, text: str) -> None:
            user_id = PROBE_USER_ID + index
            client = self._client(index)
            post = await client.user_message(text, user_id=user_id)
            trip = await client.wait_reply(post["update_id"], chat_id=user_id, quiet=0.5,
                                           timeout=self.timeout)
            if not trip["calls"]:
                raise BenchmarkError(f"no reply to {text!r} within {self.timeout:g} s")
            self.expected[text] = _reply_texts(trip)

        await asyncio.gather(*(probe(i, t) for i, t in enumerate(texts)))

    async def ask(self, user_index: int, text: str) -> tuple[float, float | None]:
        """Send one message, wait for its last reply part; the round trip in seconds, and
        how long of it the update took to reach the bot."""
        user_id = FIRST_USER_ID + user_index
        client = self._client(user_index)
        expected = self.expected[text]
        wanted = self._replies.get(user_id, 0) + len(expected)
        try:
            async with asyncio.timeout(self.timeout):
                post = await client.user_message(text, user_id=user_id)
                while self._replies.get(user_id, 0) < wanted:
                    await self._wakeups.setdefault(user_id, asyncio.Event()).wait()
        except TimeoutError:
            got = len(expected) - (wanted - self._replies.get(user_id, 0))
            raise TimeoutError(f"{got} of {len(expected)} reply parts to {text!r} within "
                               f"{self.timeout:g} s") from None
        async with asyncio.timeout(CONFIRM_TIMEOUT + 5):
            trip = await client.wait_reply(post["update_id"], chat_id=user_id,
                                           count=len(expected), timeout=CONFIRM_TIMEOUT)
        if not trip["complete"] or trip["last_latency"] is None:
            raise TimeoutError(f"wait-reply disagrees: {len(trip['calls'])} of "
                               f"{len(expected)} reply parts to {text!r}")
        if _reply_texts(trip) != expected:  # e.g. an apology after a failed send
            raise ValueError(f"unexpected reply to {text!r}: {_reply_texts(trip)[0][:80]!r}")
        fetched = trip["fetched_at"]
        reached = None if fetched is None else float(fetched) - float(trip["queued_at"])
        return float(trip["last_latency"]), reached

    async def warm_up(self) -> list[str]:
        """One /latest from every reader at once; the failures, described.

        Afterwards connections are open and per-chat caches filled, so the measured phase
        sees returning readers (steady state); a reader's first message, which may cost
        more, is what the warm-up failures tell about.
        """
        outcomes = await asyncio.gather(*(self.ask(i, "/latest") for i in range(self.users)),
                                        return_exceptions=True)
        return [f"user {i} '/latest': {type(o).__name__}: {o}"
                for i, o in enumerate(outcomes) if isinstance(o, BaseException)]

    async def run(self, requests: int, deadline: float) -> Load:
        load = Load(requests=self.users * requests)

        async def reader(user_index: int) -> None:
            for request_index in range(requests):
                text = command_for(user_index, request_index)
                try:
                    latency, reached = await self.ask(user_index, text)
                    load.latencies.append(latency)
                    if reached is not None:
                        load.fetch_latencies.append(reached)
                except Exception as error:  # any failure is a figure, not a crash
                    # The chat's state is uncertain now: this reader stops.
                    load.errors.append(f"user {user_index} {text!r}: "
                                       f"{type(error).__name__}: {error}")
                    return

        began = time.perf_counter()
        tasks = [asyncio.create_task(reader(i)) for i in range(self.users)]
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        load.wall = time.perf_counter() - began
        if pending:
            load.errors.append(f"{len(pending)} readers unfinished after the "
                               f"{deadline:g} s deadline")
        return load

    async def count_unexpected_parts(self, requests: int) -> int:
        """Bot messages beyond the expected ones in a sample of chats (0 if all is well)."""
        unexpected = 0
        step = max(1, self.users // CHECKED_CHATS)
        for user_index in range(0, self.users, step):
            wanted = len(self.expected["/latest"]) + sum(
                len(self.expected[command_for(user_index, r)]) for r in range(requests))
            messages = await self._client(user_index).messages(FIRST_USER_ID + user_index,
                                                               bot_only=True)
            unexpected += max(0, len(messages) - wanted)
        return unexpected


# -- one bot, one run -----------------------------------------------------------------------
async def measure(entry: Entry, args: argparse.Namespace, workdir: Path, run: int) -> Load:
    """Fresh sandbox, fresh bot, warm-up, measured load, checks; everything stopped after."""
    kind, label = entry.kind, entry.label
    logs = Path(args.log_dir) if args.log_dir is not None else workdir
    server = Sandbox(logs / f"run{run}-{label}-server.log")
    bot = Child(f"{label} bot", logs / f"run{run}-{label}-bot.log")
    try:
        await server.start()
        url = server.url
        database = workdir / f"run{run}-{label}.sqlite3"
        argv = [sys.executable, str(SCRIPT), "--serve", kind, "--mode", entry.mode,
                "--base-url", f"{url}/bot", "--database-url", f"sqlite+aiosqlite:///{database}",
                "--send-rate", str(args.send_rate)]
        if args.http_client is not None and kind == "bot":
            argv += ["--http-client", args.http_client]
        if args.profile_dir is not None:
            argv += ["--profile-to", str(Path(args.profile_dir) / f"run{run}-{label}")]
        await bot.start(argv, "ready", within=60)
        async with Readers(url, args.users, args.timeout) as readers:
            await readers.learn_reply_parts()
            warm_up_errors = await readers.warm_up()
            cpu_before = {"server": server.child.cpu_seconds(), "bot": bot.cpu_seconds(),
                          "driver": time.process_time()}
            load = await readers.run(args.requests, args.deadline)
            load.warm_up_errors = warm_up_errors
            load.call_log_read_errors = len(readers.watch_errors)
            cpu_after = {"server": server.child.cpu_seconds(), "bot": bot.cpu_seconds(),
                         "driver": time.process_time()}
            for name, before in cpu_before.items():
                after = cpu_after[name]
                used = None if before is None or after is None else after - before
                load.cpu[name] = None if used is None else used / load.wall
                if name == "bot" and used is not None:
                    load.bot_cpu_seconds = used
            load.parts_per_request = statistics.fmean(
                len(readers.expected[command_for(u, r)])
                for u in range(args.users) for r in range(args.requests))
            if not load.errors and not warm_up_errors:
                load.unexpected_parts = await readers.count_unexpected_parts(args.requests)
        return load
    finally:
        try:
            await bot.stop(within=10, polite=False)
        finally:
            await server.stop()


def _median(values: Sequence[float]) -> float:
    usable = [v for v in values if not math.isnan(v)]
    return statistics.median(usable) if usable else math.nan


def summarize(runs: list[dict[str, Load]], entries: Sequence[Entry]) -> dict[str, Any]:
    """Median figures over runs; ratios (second entry / first) are medians of per-run
    ratios."""
    labels = [entry.label for entry in entries]
    base, measured = labels
    targets = MODE_TARGETS if base == "polling" and measured == "webhook" else TARGETS
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in labels:
        figures = [run[kind].figures() for run in runs]
        merged: dict[str, Any] = {}
        for name, value in figures[0].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                merged[name] = value
                continue
            values = [f[name] for f in figures if isinstance(f.get(name), int | float)]
            median = _median(values)
            if math.isnan(median):
                merged[name] = None
            else:
                merged[name] = round(median, 2) if isinstance(value, float) else round(median)
        merged["errors"] = sum(f["errors"] for f in figures)
        merged["unexpected_parts"] = sum(f["unexpected_parts"] for f in figures)
        for name in ("warm_up_errors", "call_log_read_errors"):
            merged[name] = sum(f[name] for f in figures)
        per_kind[kind] = merged
    result: dict[str, Any] = {measured: per_kind[measured], base: per_kind[base]}
    for q, name in ((50, "p50_ratio"), (99, "p99_ratio")):
        ratios = []
        for run in runs:
            top = percentile(sorted(run[measured].latencies), q)
            bottom = percentile(sorted(run[base].latencies), q)
            ratios.append(top / bottom if bottom > 0 else math.nan)
        result[name] = round(_median(ratios), 2)
        if len(runs) > 1:
            result[f"{name}_runs"] = [round(r, 2) for r in ratios]
    cpu_ratios = [run[measured].cpu_ms_per_request() / run[base].cpu_ms_per_request()
                  for run in runs]
    result["cpu_per_request_ratio"] = round(_median(cpu_ratios), 2)
    result["ratios_are"] = f"{measured} / {base}"
    result["targets"] = dict(targets)
    clean = all(per_kind[k]["errors"] == 0 and per_kind[k]["warm_up_errors"] == 0
                for k in labels)  # figures from a run with failures prove nothing
    result["targets_met"] = {name: clean and bool(result[name] <= limit)
                             for name, limit in targets.items()}
    return result


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"users": args.users, "requests_per_user": args.requests,
                              "runs": args.runs, "story_bot_commands_per_minute": STORY_THROTTLE,
                              "story_bot_send_rate_per_s": args.send_rate,
                              "concurrent_updates": 64, "profiled": args.profile_dir is not None,
                              "bot_http_client": args.http_client or "aiohttp (the default)",
                              "mode": args.mode}
    report["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    began = time.perf_counter()
    runs: list[dict[str, Load]] = []
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop the children on the way out
        if task is not None:
            loop.add_signal_handler(sig, task.cancel)
    entries = entries_for(args.mode)
    with tempfile.TemporaryDirectory(prefix="chat-latency-") as tmp:
        try:
            for index in range(args.runs):
                order = entries if index % 2 == 0 else tuple(reversed(entries))
                run: dict[str, Load] = {}
                for entry in order:
                    run[entry.label] = await measure(entry, args, Path(tmp), index + 1)
                runs.append(run)
        except asyncio.CancelledError:
            report["error"] = "interrupted"
        except Exception as error:  # still print the JSON, with the reason
            report["error"] = f"{type(error).__name__}: {error}"
    if runs:
        report.update(summarize(runs, entries))
        idle = [f"{kind} run {index + 1}: {share:.2f}"
                for index, run in enumerate(runs) for kind, load in run.items()
                if (share := load.cpu.get("bot")) is not None and share < SATURATED]
        if idle:
            report["warning"] = (
                f"a bot process used less than {SATURATED:.0%} of a core ({', '.join(idle)}): "
                "too few readers to keep it busy, or other work on the machine crowded it "
                "out (then rerun, or use --runs)")
    report["total_wall_s"] = round(time.perf_counter() - began, 1)
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Round-trip latency and throughput of the story bot vs a PTB echo bot.")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes for a check: 40 readers, 4 messages each")
    parser.add_argument("--users", type=int, default=None, help="simulated readers (200)")
    parser.add_argument("--requests", type=int, default=None,
                        help="messages per reader (10)")
    parser.add_argument("--runs", type=int, default=1, help="report medians over k runs")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one reply may take before it counts as an error")
    parser.add_argument("--deadline", type=float, default=180.0,
                        help="seconds the measured phase of one bot may take")
    parser.add_argument("--http-client", choices=("aiohttp", "httpx"), default=None,
                        help="telegram.http_client of the story bot (default: the bot's "
                             "default); the echo baseline is stock python-telegram-bot (httpx)")
    parser.add_argument("--mode", choices=(*MODES, "both"), default="polling",
                        help="how the bots receive updates: polling (default), webhook, or "
                             "both: the story bot by polling and by webhook, compared")
    parser.add_argument("--send-rate", type=float, default=STORY_SEND_RATE,
                        help="the story bot's global send budget (delivery.rate_per_second; "
                             "production: 25)")
    parser.add_argument("--profile-dir", default=None,
                        help="run the bots under cProfile and write the stats here")
    parser.add_argument("--log-dir", default=None,
                        help="keep the bots' and sandboxes' logs here (default: discarded)")
    # Internal: the child process that runs one bot.
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.users is None:
        args.users = 40 if args.quick else 200
    if args.requests is None:
        args.requests = 4 if args.quick else 10
    if min(args.users, args.requests, args.runs) < 1:
        parser.error("--users, --requests and --runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `bot` is importable
    if args.serve:
        profile_to = Path(args.profile_to) if args.profile_to else None
        asyncio.run(_serve(args.serve, args.base_url, args.database_url, args.send_rate,
                           profile_to, args.http_client, args.mode))
        return 0
    resolve_output_dirs(args, "profile_dir", "log_dir")
    report = asyncio.run(benchmark(args))
    print(json.dumps(json_safe(report)))
    labels = [entry.label for entry in entries_for(args.mode)]
    failed = "error" in report or any(report[k]["errors"] for k in labels if k in report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
