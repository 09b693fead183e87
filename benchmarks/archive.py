"""Archive benchmark: the story index at 10,000 to 1,000,000 stories, against bare work.

Prints one JSON object::

    python benchmarks/archive.py                                  # 10k, 100k (3 runs), 1M (1)
    python benchmarks/archive.py --sizes 1000,10000 --runs 1 --idle-seconds 10   # quick
    python benchmarks/archive.py --keep-folder DIR                # reuse archives between runs

Archives are written by ``archive_corpus`` (valid per ``STORY_FORMAT.md``, 1–4 KB each,
Zipf-distributed words) into a scratch folder that is deleted afterwards; with
``--keep-folder DIR`` they live in ``DIR/stories-<size>`` and are reused when a previous
run wrote them whole. A 1,000-story archive is always measured as well: the memory figures
are differences from it.

What it measures, each against a bare baseline taken in the same run
----------------------------------------------------------------------
Library figures, for every size (``--runs`` times, a size of 1,000,000 or more
``--big-runs`` times; the figure is the median, a ratio the median of per-run ratios, the
bare side and the library side measured in turns so that a slow spell of the machine
slows both):

* ``build_vs_bare_read`` (target <= 10): a first index build (no index file) in a child
  process of its own (``--child``), over a bare read of every file (list, open, read,
  close, in this process), after one unmeasured read (``bare_read_first_s``) so that both
  find the files in the page cache when they fit. ``build_peak_rss_over_1000_mb``
  (<= 300): the build child's peak RSS (``VmHWM``) minus that of the 1,000-story build.
* ``restart_vs_list_stat`` (<= 1.5): a new child opening the library on the index it built,
  the folder unchanged (signatures compared, nothing reparsed), over a bare list-and-stat.
* ``rescan_vs_list_stat`` (<= 1.5): in that child, a safety-net full rescan of the
  unchanged folder, over a bare list-and-stat.
* ``search_rare_p95_ms`` (<= 20) and ``search_any_p95_ms`` (<= 50): the library's search
  called in that child for one- to three-word queries; ``rare`` queries have every word
  (with every word it is a prefix of) in at most 0.4 % of the stories by the corpus's
  estimate; ``any`` queries mix common words, two- and three-letter prefixes of common
  words, rare words and quoted phrases. The issue's targets apply at 1,000,000.

Bot figures, at ``--bot-size`` (default: the largest size) and at 1,000 as the baseline,
through the real bot (``python run_bot.py --config FILE run``, via ``harness``) against
the sandbox Bot API server. The bot is started once on the index built above (a fresh
database: its first start records every story version), a reader subscribes for instant
alerts, and the bot is stopped; then it is restarted, and the restarted process is measured:

* ``restart_peak_rss_over_1000_mb`` (<= 100): its peak RSS (``VmHWM``) at the end of
  the scenario minus the 1,000-story bot's.
* ``idle_cpu_share`` (< 0.01 of a core): its CPU time over ``--idle-seconds`` (60) with
  nothing changing, once its start-up work is done (CPU below 2 % over 2 s). The
  safety-net rescan interval is set to an hour so that none falls inside the window.
* ``new_story_alert_s`` (<= 2): a new story file written into the folder (one
  ``os.write``), to the instant subscriber's alert reaching the sandbox;
  ``new_story_latest_s``: to the first ``/latest 1`` (sent in a loop) whose update was
  queued after the write and whose reply shows the story. Median and max over
  ``--arrivals`` stories.
* ``replies_p95_ratio`` (<= 1.5): p95 round trip of ``/latest`` and ``/story N`` sent at
  ``--reply-rate`` (10) a second while ``--search-rate`` (20) searches a second run, over
  the same without searches: open loops from 40 users each, ``--load-seconds`` (15) per
  window, ``--load-turns`` (3) turns of both. ``search_round_trip_p95_ms``: the searches'
  own round trips, against ``help_round_trip_p95_ms`` (a reply that touches no stories)
  as the bare baseline of a round trip. The bot's per-user command limit is at its
  maximum (600 a minute) and the per-chat send budget at 30 a second (the sandbox has no
  flood limits here), so the figures measure the code, not Telegram's flood settings.

A round trip is the sandbox's: from queueing the update to answering the bot's last
reply call (``time.monotonic``, the same clock in every process of the machine);
``fetch_p95_ms_*`` is the part of it before the bot took the update (a stalled event loop
shows there). Other work on the machine moves every latency: ``load_average_1m_*`` says
how busy it was. Every finished part is also printed on stderr as it ends, so a long run
that is interrupted still shows what it measured (and the JSON is printed on SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive_corpus import Corpus, ensure_archive, remove_archive
from harness import (
    ROOT,
    BenchmarkError,
    CallLog,
    Child,
    Sandbox,
    ScratchDatabase,
    emit,
    error_text,
    free_port,
    json_safe,
    peak_rss_mb,
    percentile,
    resolve_output_dirs,
    rnd,
    run_bot_argv,
    wait_healthy,
    write_bot_config,
)

SCRIPT = Path(__file__).resolve()
SEED = 20261129
BASE_SIZE = 1_000
TOKEN = "123456789:AAHarchiveBENCHMARKarchive0123456789ab"
READER_ID = 720_000_001  # closed-loop readers: READER_ID + n
SEARCHER_ID = 730_000_001  # searchers: SEARCHER_ID + n
SUBSCRIBER_ID = 740_000_001
POLLER_ID = 750_000_001
HELP_ID = 760_000_001
READER_USERS = 40  # users sending the load: the bot lets one send 600 commands a minute
USERS_PER_READER = 10
QUIET_CPU_SHARE = 0.02
TARGETS: dict[str, tuple[str, float]] = {  # figure -> (comparison, limit)
    "build_vs_bare_read": ("<=", 10.0),
    "build_peak_rss_over_1000_mb": ("<=", 300.0),
    "restart_vs_list_stat": ("<=", 1.5),
    "rescan_vs_list_stat": ("<=", 1.5),
    "search_rare_p95_ms": ("<=", 20.0),
    "search_any_p95_ms": ("<=", 50.0),
    "new_story_alert_s": ("<=", 2.0),
    "new_story_latest_s": ("<=", 2.0),
    "idle_cpu_share": ("<", 0.01),
    "replies_p95_ratio": ("<=", 1.5),
    "restart_peak_rss_over_1000_mb": ("<=", 100.0),
}
AT_ISSUE_SIZE = frozenset({"rescan_vs_list_stat", "search_rare_p95_ms", "search_any_p95_ms",
                           "new_story_alert_s", "new_story_latest_s", "idle_cpu_share",
                           "replies_p95_ratio", "restart_peak_rss_over_1000_mb"})
ISSUE_SIZE = 1_000_000
SEARCH_PAGE = 5  # results on a page of /search (bot.telegram.reader.SEARCH_PAGE)


# ==========================================================================================
# Bare baselines
# ==========================================================================================
def bare_read(folder: Path) -> int:
    """The plainest way to read every story file: list, open, read, close. Bytes read."""
    total = 0
    with os.scandir(folder) as listing:
        for entry in listing:
            if entry.name.endswith(".txt"):
                descriptor = os.open(entry.path, os.O_RDONLY)
                try:
                    total += len(os.read(descriptor, 1 << 20))
                finally:
                    os.close(descriptor)
    return total


def bare_list_and_stat(folder: Path) -> int:
    """List the folder and stat every story file. Files seen."""
    count = 0
    with os.scandir(folder) as listing:
        for entry in listing:
            if entry.name.endswith(".txt"):
                entry.stat(follow_symlinks=False)
                count += 1
    return count


def progress(part: str, figures: dict[str, Any]) -> None:
    """A finished part's figures on stderr as they come (a long run's partial result)."""
    print(json.dumps(json_safe({"progress": part, **figures})), file=sys.stderr, flush=True)


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


# ==========================================================================================
# The library, as the child process drives it (the only code that knows its API)
# ==========================================================================================
def _open_library(folder: Path, index: Path) -> Any:
    from zoneinfo import ZoneInfo

    from bot.stories.library import StoryLibrary

    return StoryLibrary(folder, ZoneInfo("UTC"), index_path=index)


def _sync(library: Any) -> dict[str, int]:
    """A rescan, as the bot's start and its safety net run it: what it changed (the
    report lists at most a thousand stories of each kind; 0 is what matters here)."""
    report = library.rescan()
    return {"new": len(report.new), "updated": len(report.updated),
            "removed": len(report.removed)}


def _full_rescan(library: Any) -> dict[str, int]:
    return _sync(library)


def _count(library: Any) -> int:
    return int(library.count())


def _search(library: Any, query: str) -> int:
    """One page of results, as ``/search`` asks for it; how many matched (counted up to
    the index's limit)."""
    return int(library.search_page(query, 0, SEARCH_PAGE).total)


def _child(folder: Path, index: Path) -> None:
    """Serve the parent's commands on stdin, one JSON event per answer on stdout.

    ``open`` opens the library (a build when there is no index file) and syncs it,
    ``rescan`` runs a full rescan, ``search FILE`` runs the queries of a JSON file
    (``{"kind": [query, ...]}``), ``stop`` (or end of input) ends the process. Every answer
    carries the process's peak RSS so far.
    """
    emit("started")
    library: Any = None
    for number, line in enumerate(sys.stdin):
        command, _, rest = line.strip().partition(" ")
        try:
            if command == "open":
                began = time.perf_counter()
                library = _open_library(folder, index)
                changes = _sync(library)
                took = time.perf_counter() - began
                emit(f"done-{number}", seconds=took, stories=_count(library), **changes,
                     peak_rss_mb=peak_rss_mb())
            elif command == "rescan":
                began = time.perf_counter()
                changes = _full_rescan(library)
                emit(f"done-{number}", seconds=time.perf_counter() - began, **changes,
                     peak_rss_mb=peak_rss_mb())
            elif command == "search":
                queries: dict[str, list[str]] = json.loads(Path(rest).read_text("utf-8"))
                emit(f"done-{number}", **_search_times(library, queries),
                     peak_rss_mb=peak_rss_mb())
            elif command in ("stop", ""):
                break
            else:
                emit(f"done-{number}", error=f"unknown command {command!r}")
        except Exception as error:  # the parent reports it; the child keeps serving
            emit(f"done-{number}", error=error_text(error))
    emit("stopped", peak_rss_mb=peak_rss_mb())


def _search_times(library: Any, queries: dict[str, list[str]]) -> dict[str, Any]:
    """Per kind of query: every call's time (ms) and hits, each query once, after one
    unmeasured pass over all of them (the index's pages read into the page cache)."""
    for batch in queries.values():
        for query in batch:
            _search(library, query)
    result: dict[str, Any] = {}
    for kind, batch in queries.items():
        times: list[float] = []
        hits: list[int] = []
        for query in batch:
            began = time.perf_counter()
            hits.append(_search(library, query))
            times.append((time.perf_counter() - began) * 1000)
        slowest = sorted(range(len(batch)), key=times.__getitem__, reverse=True)[:5]
        result[kind] = {"ms": times, "hits": hits,
                        "slowest": [f"{batch[i]} ({times[i]:.1f} ms, {hits[i]} hits)"
                                    for i in slowest]}
    return result


class LibraryChild:
    """One child process serving :func:`_child` for a folder and index file."""

    def __init__(self, folder: Path, index: Path, log: Path) -> None:
        self.folder, self.index = folder, index
        self.process = Child(f"library child ({folder.name})", log)
        self._commands = 0

    async def start(self) -> None:
        argv = [sys.executable, str(SCRIPT), "--child", "--folder", str(self.folder),
                "--index", str(self.index)]
        await self.process.start(argv, '"started"', within=60)

    async def ask(self, command: str, within: float) -> dict[str, Any]:
        number = self._commands
        self._commands += 1
        await self.process.send(command)
        answer = await self.process.wait_event(f"done-{number}", within)
        if "error" in answer:
            raise BenchmarkError(f"library child, {command!r}: {answer['error']}")
        return answer

    async def stop(self) -> None:
        await self.process.stop(within=120)


# ==========================================================================================
# Library figures for one size
# ==========================================================================================
def _ratio_runs(pairs: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """Median bare time, median library time, median of the per-run ratios."""
    return (statistics.median(b for b, _ in pairs), statistics.median(a for _, a in pairs),
            statistics.median(a / b for b, a in pairs))


def _file_mb(path: Path) -> float | None:
    try:
        return rnd(path.stat().st_size / 2**20, 1)
    except OSError:
        return None


def _remove_index(index: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{index}{suffix}").unlink()


async def library_figures(folder: Path, index: Path, stories: int, runs: int,
                          queries: dict[str, list[str]] | None, workdir: Path,
                          logs: Path) -> dict[str, Any]:
    within = 120 + stories / 300  # a generous bound: 1M stories get 57 minutes per step
    figures: dict[str, Any] = {"stories": stories, "runs": runs,
                               "load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    builds: list[tuple[float, float]] = []
    build_rss: list[float] = []
    # One unmeasured read first: a single run (a million stories) would otherwise pit a
    # bare read from the disk against a build reading what that read left in the cache.
    figures["bare_read_first_s"] = rnd(timed(lambda: bare_read(folder)), 3)
    for run in range(runs):
        read = timed(lambda: bare_read(folder))
        _remove_index(index)
        builder = LibraryChild(folder, index, logs / f"build-{stories}-{run + 1}.log")
        await builder.start()
        try:
            built = await builder.ask("open", within)
        finally:
            await builder.stop()
        if built["stories"] != stories:
            raise BenchmarkError(f"the build saw {built['stories']} of {stories} stories")
        builds.append((read, float(built["seconds"])))
        build_rss.append(float(built["peak_rss_mb"]))
    read_s, build_s, ratio = _ratio_runs(builds)
    figures.update(bare_read_s=rnd(read_s, 3), build_s=rnd(build_s, 3),
                   build_vs_bare_read=rnd(ratio), build_peak_rss_mb=rnd(
                       statistics.median(build_rss), 1))
    figures["index_file_mb"] = _file_mb(index)

    restarts: list[tuple[float, float]] = []
    reparsed: list[int] = []
    child: LibraryChild | None = None
    try:
        for run in range(runs):
            listing = timed(lambda: bare_list_and_stat(folder))
            if child is not None:
                await child.stop()
            child = LibraryChild(folder, index, logs / f"restart-{stories}-{run + 1}.log")
            await child.start()
            opened = await child.ask("open", within)
            restarts.append((listing, float(opened["seconds"])))
            reparsed.append(int(opened["new"]) + int(opened["updated"]))
        assert child is not None
        list_s, restart_s, ratio = _ratio_runs(restarts)
        figures.update(bare_list_stat_s=rnd(list_s, 3), restart_s=rnd(restart_s, 3),
                       restart_vs_list_stat=rnd(ratio), restart_reported_changes=max(reparsed))
        rescans: list[tuple[float, float]] = []
        for _ in range(runs):
            listing = timed(lambda: bare_list_and_stat(folder))
            rescanned = await child.ask("rescan", within)
            rescans.append((listing, float(rescanned["seconds"])))
        list_s, rescan_s, ratio = _ratio_runs(rescans)
        figures.update(rescan_bare_list_stat_s=rnd(list_s, 3), rescan_s=rnd(rescan_s, 3),
                       rescan_vs_list_stat=rnd(ratio))
        if queries is not None:
            query_file = workdir / "queries.json"
            query_file.write_text(json.dumps(queries), encoding="utf-8")
            answer = await child.ask(f"search {query_file}", within)
            for kind in queries:
                times = sorted(answer[kind]["ms"])
                hits = answer[kind]["hits"]
                figures.update({
                    f"search_{kind}_queries": len(times),
                    f"search_{kind}_p50_ms": rnd(percentile(times, 50), 2),
                    f"search_{kind}_p95_ms": rnd(percentile(times, 95), 2),
                    f"search_{kind}_max_ms": rnd(times[-1], 2),
                    f"search_{kind}_slowest_queries": answer[kind]["slowest"],
                    f"search_{kind}_hits_median": statistics.median(hits),
                    f"search_{kind}_hits_max": max(hits),
                })
    finally:
        if child is not None:
            await child.stop()
    return figures


# ==========================================================================================
# The real bot
# ==========================================================================================
class ChatDriver:
    """Readers talking to the bot through the sandbox's user API."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.parts: dict[str, int] = {}  # command -> reply calls it produces

    async def ask(self, user_id: int, text: str, *, within: float = 30.0,
                  quiet: bool = False, parts: int | None = None) -> dict[str, Any]:
        """Send ``text`` as ``user_id``; the round trip (the sandbox's), waited for by
        ``parts`` reply calls, the known number for ``text`` or, the first time (or
        ``quiet``), by a quiet period."""
        client = self.sandbox.clients[user_id % len(self.sandbox.clients)]
        post = await client.user_message(text, user_id=user_id)
        if parts is None and not quiet:
            parts = self.parts.get(text)
        fields: dict[str, Any] = {"timeout": within}
        if parts is None:
            fields["quiet"] = 0.5
        else:
            fields["count"] = parts
        trip: dict[str, Any] = await client.wait_reply(post["update_id"], chat_id=user_id,
                                                       **fields)
        if not trip["calls"] or trip["last_latency"] is None:
            raise BenchmarkError(f"no reply to {text!r} within {within:g} s")
        if parts is None:
            self.parts[text] = len(trip["calls"])
        elif not trip["complete"]:
            raise BenchmarkError(f"{len(trip['calls'])} of {parts} reply parts to {text!r}")
        return trip


def reply_text(trip: dict[str, Any]) -> str:
    return "\n".join(str(c["params"].get("text", "")) for c in trip["calls"])


def bot_settings(sandbox: Sandbox, folder: Path, index: Path, database: ScratchDatabase,
                 port: int) -> dict[str, Any]:
    return {
        "telegram": {"base_url": sandbox.base_url, "commands_per_minute": 600},
        "stories": {"folder": str(folder), "timezone": "UTC", "index_path": str(index),
                    "watch": True, "rescan_seconds": 3600},
        "database": {"url": database.url},
        "delivery": {"rate_per_second": 1000, "per_chat_per_second": 30},
        "monitoring": {"port": port},
        "log_level": "INFO",
    }


async def settle(child: Child, within: float, window: float = 2.0) -> float:
    """Wait until the process uses under :data:`QUIET_CPU_SHARE` of a core over ``window``
    seconds; the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        before = child.cpu_seconds()
        await asyncio.sleep(window)
        after = child.cpu_seconds()
        if before is None or after is None:
            raise BenchmarkError(f"{child.name} ended: {child.log_tail()}")
        if (after - before) / window < QUIET_CPU_SHARE:
            return time.monotonic() - began
    raise BenchmarkError(f"{child.name} still busy after {within:g} s")


class BotRun:
    """One bot process on a story folder, as operators run it."""

    def __init__(self, name: str, sandbox: Sandbox, folder: Path, index: Path,
                 database: ScratchDatabase, workdir: Path, logs: Path) -> None:
        self.name, self.sandbox, self.folder, self.index = name, sandbox, folder, index
        self.database, self.workdir, self.logs = database, workdir, logs
        self.child: Child | None = None

    async def start(self, within: float) -> dict[str, float]:
        port = free_port()
        config = write_bot_config(self.workdir / f"{self.name}.yaml", bot_settings(
            self.sandbox, self.folder, self.index, self.database, port))
        child = self.child = Child(f"bot ({self.name})", self.logs / f"{self.name}.log")
        began = time.monotonic()
        await child.spawn(run_bot_argv(config), env={"TELEGRAM_BOT_TOKEN": TOKEN},
                          stdout_to_log=True)
        healthy = await wait_healthy(child, f"http://127.0.0.1:{port}/healthz", within)
        await settle(child, within)
        return {"healthy_after_s": healthy, "settled_after_s": time.monotonic() - began}

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop(within=60, polite=False)


@contextlib.contextmanager
def cpu_shares(processes: dict[str, Child]) -> Iterator[dict[str, float | None]]:
    """Each process's share of a core (and this one's, ``driver``) while the block runs,
    filled in when it ends: a saturated sandbox or driver shows instead of being folded
    into the bot's latencies."""
    shares: dict[str, float | None] = {}
    before = {name: child.cpu_seconds() for name, child in processes.items()}
    driver, began = time.process_time(), time.monotonic()
    yield shares
    wall = time.monotonic() - began
    for name, child in processes.items():
        after, first = child.cpu_seconds(), before[name]
        shares[name] = None if after is None or first is None else rnd((after - first) / wall)
    shares["driver"] = rnd((time.process_time() - driver) / wall)


async def idle_cpu(child: Child, seconds: float) -> float:
    before = child.cpu_seconds()
    await asyncio.sleep(seconds)
    after = child.cpu_seconds()
    if before is None or after is None:
        raise BenchmarkError(f"{child.name} ended during the idle window")
    return (after - before) / seconds


def _story_file(number: int, marker: str) -> tuple[str, bytes]:
    now = datetime.now(UTC)
    stamp = now.strftime("%b %-d, %Y, %-I:%M %p")
    text = (f"{stamp}\n\nArrival {marker} reaches the archive\n\nHighlights\n"
            f"  • The benchmark wrote story {marker} just now.\nStory\n\n"
            f"A new story, {marker}, written while the bot watched the folder.\n\n"
            "You've reached the end\n")
    return f"{number:07d}_{random.getrandbits(64):016x}.txt", text.encode()


async def new_story_latency(driver: ChatDriver, folder: Path, number: int,
                            within: float = 30.0) -> tuple[Path, dict[str, float]]:
    """Write one new story; seconds until the subscriber's alert arrives and until
    ``/latest 1`` shows it."""
    marker = f"zq{random.getrandbits(40):010x}"
    name, data = _story_file(number, marker)
    sandbox = driver.sandbox
    log = CallLog(sandbox.clients[1], await sandbox.call_count(), method="sendMessage")
    descriptor = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    written = time.monotonic()
    found: dict[str, float] = {}

    async def alert() -> None:
        while True:
            for call in await log.poll():
                if (call["chat_id"] == SUBSCRIBER_ID and call["status"] == 200
                        and marker in str(call["params"].get("text", ""))):
                    found["alert"] = float(call["finished"]) - written
                    return
            await asyncio.sleep(0.02)

    async def latest() -> None:
        turn = 0
        while True:
            turn += 1
            trip = await driver.ask(POLLER_ID + turn % USERS_PER_READER, "/latest 1")
            if float(trip["queued_at"]) >= written and marker in reply_text(trip):
                found["latest"] = float(trip["queued_at"]) - written
                return
            await asyncio.sleep(0.05)

    try:
        async with asyncio.timeout(within):
            await asyncio.gather(alert(), latest())
    except TimeoutError:
        pass
    return folder / name, {"alert": found.get("alert", math.nan),
                           "latest": found.get("latest", math.nan)}


async def reply_load(driver: ChatDriver, seconds: float, reply_rate: float,
                     search_rate: float, queries: Sequence[str]) -> dict[str, list[float]]:
    """Readers' ``/latest`` and ``/story N`` at ``reply_rate`` a second for ``seconds``
    and, with ``search_rate`` > 0, searches at that rate meanwhile: open loops, as readers
    do not wait for each other. Round trips (ms) by kind; ``errors`` counts failures."""
    trips: dict[str, list[float]] = {"latest": [], "story": [], "search": [], "errors": [],
                                     "fetch": []}

    async def one(kind: str, user_id: int, text: str, parts: int | None) -> None:
        try:
            trip = await driver.ask(user_id, text, parts=parts)
        except Exception:  # a figure, not a crash
            trips["errors"].append(1.0)
            return
        trips[kind].append(float(trip["last_latency"]) * 1000)
        if trip["fetched_at"] is not None:  # the part of it before the bot took the update
            trips["fetch"].append((float(trip["fetched_at"]) - float(trip["queued_at"]))
                                  * 1000)

    async def sender(rate: float, make: Callable[[int], tuple[str, int, str, int | None]]
                     ) -> None:
        if rate <= 0:
            return
        tasks: list[asyncio.Task[None]] = []
        began = time.monotonic()
        sent = 0
        while time.monotonic() - began < seconds:
            tasks.append(asyncio.create_task(one(*make(sent))))
            sent += 1
            await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
        await asyncio.gather(*tasks)

    def reply(n: int) -> tuple[str, int, str, int | None]:
        text = "/latest" if n % 2 == 0 else f"/story {n // 2 % 5 + 1}"
        return ("latest" if n % 2 == 0 else "story", READER_ID + n % READER_USERS, text, None)

    def search(n: int) -> tuple[str, int, str, int | None]:
        return "search", SEARCHER_ID + n % READER_USERS, f"/search {queries[n % len(queries)]}", 1

    await asyncio.gather(sender(reply_rate, reply), sender(search_rate, search))
    return trips


async def bot_figures(stories: int, folder: Path, index: Path, queries: Sequence[str],
                      args: argparse.Namespace, workdir: Path, logs: Path) -> dict[str, Any]:
    """Start the bot once (first start), subscribe, restart it and measure the restart."""
    within = 120 + stories / 500
    figures: dict[str, Any] = {"stories": stories,
                               "load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    sandbox = Sandbox(logs / f"sandbox-{stories}.log")
    database = ScratchDatabase(workdir, f"bot-{stories}", None)
    first = BotRun(f"bot-{stories}-first", sandbox, folder, index, database, workdir, logs)
    second = BotRun(f"bot-{stories}-restart", sandbox, folder, index, database, workdir, logs)
    added: list[Path] = []
    try:
        await sandbox.start()
        driver = ChatDriver(sandbox)
        started = await first.start(within)
        figures["first_start_settled_s"] = rnd(started["settled_after_s"], 1)
        await driver.ask(SUBSCRIBER_ID, "/subscribe", quiet=True)
        await driver.ask(SUBSCRIBER_ID, "/mode instant", quiet=True)
        await first.stop()

        started = await second.start(within)
        bot = second.child
        assert bot is not None
        figures["restart_healthy_s"] = rnd(started["healthy_after_s"], 2)
        figures["restart_settled_s"] = rnd(started["settled_after_s"], 1)
        figures["restart_peak_rss_after_start_mb"] = rnd(bot.peak_rss_mb(), 1)
        figures["idle_cpu_share"] = rnd(await idle_cpu(bot, args.idle_seconds), 4)
        figures["idle_seconds"] = args.idle_seconds

        # Learn each command's reply parts (quiet period), then warm up.
        commands = ["/help", "/latest", "/latest 1", *(f"/story {n}" for n in range(1, 6))]
        for text in commands:
            await driver.ask(READER_ID, text, quiet=True)
        for query in queries[:3]:  # a search's answer is one message
            trip = await driver.ask(SEARCHER_ID, f"/search {query}", quiet=True)
            if len(trip["calls"]) != 1:
                raise BenchmarkError(f"/search {query} answered in {len(trip['calls'])} "
                                     "messages, not one")

        arrivals = []
        for n in range(args.arrivals):
            path, result = await new_story_latency(driver, folder, 9_000_000 + n)
            added.append(path)
            arrivals.append(result)
            await asyncio.sleep(1.0)
        for kind in ("alert", "latest"):
            values = [a[kind] for a in arrivals]
            figures[f"new_story_{kind}_s"] = rnd(max(values), 3)  # NaN if one never came
            figures[f"new_story_{kind}_median_s"] = rnd(statistics.median(values), 3)

        helps = [float((await driver.ask(HELP_ID + n % USERS_PER_READER, "/help"))
                       ["last_latency"]) * 1000 for n in range(40)]
        figures["help_round_trip_p95_ms"] = rnd(percentile(sorted(helps), 95), 1)
        processes = {"bot": bot, "sandbox": sandbox.child}
        quiet: dict[str, list[float]] = {}
        busy: dict[str, list[float]] = {}
        turn_ratios: list[float] = []
        for _ in range(args.load_turns):  # in turns, so a slow spell slows both sides
            with cpu_shares(processes) as cpu_quiet:
                quiet_turn = await reply_load(driver, args.load_seconds, args.reply_rate, 0,
                                              queries)
            with cpu_shares(processes) as cpu_busy:
                busy_turn = await reply_load(driver, args.load_seconds, args.reply_rate,
                                             args.search_rate, queries)
            for merged, turn in ((quiet, quiet_turn), (busy, busy_turn)):
                for kind, values in turn.items():
                    merged.setdefault(kind, []).extend(values)
            turn_ratios.append(
                percentile(sorted(busy_turn["latest"] + busy_turn["story"]), 95)
                / percentile(sorted(quiet_turn["latest"] + quiet_turn["story"]), 95))
        others_quiet = sorted(quiet["latest"] + quiet["story"])
        others_busy = sorted(busy["latest"] + busy["story"])
        figures.update({
            "replies_p95_ms_without_searches": rnd(percentile(others_quiet, 95), 1),
            "replies_p95_ms_with_searches": rnd(percentile(others_busy, 95), 1),
            "replies_p95_ratio": rnd(percentile(others_busy, 95)
                                     / percentile(others_quiet, 95), 2),
            "replies_p95_ratio_turns": [rnd(r, 2) for r in turn_ratios],
            "latest_p95_ms_without_searches": rnd(percentile(sorted(quiet["latest"]), 95), 1),
            "latest_p95_ms_with_searches": rnd(percentile(sorted(busy["latest"]), 95), 1),
            "story_p95_ms_without_searches": rnd(percentile(sorted(quiet["story"]), 95), 1),
            "story_p95_ms_with_searches": rnd(percentile(sorted(busy["story"]), 95), 1),
            "replies_measured": [len(others_quiet), len(others_busy)],
            "searches_measured": len(busy["search"]),
            "searches_per_s": rnd(len(busy["search"]) / args.load_seconds / args.load_turns,
                                  1),
            "search_round_trip_p50_ms": rnd(percentile(sorted(busy["search"]), 50), 1),
            "search_round_trip_p95_ms": rnd(percentile(sorted(busy["search"]), 95), 1),
            "fetch_p95_ms_without_searches": rnd(percentile(sorted(quiet["fetch"]), 95), 1),
            "fetch_p95_ms_with_searches": rnd(percentile(sorted(busy["fetch"]), 95), 1),
            "cpu_shares_without_searches_last_turn": cpu_quiet,
            "cpu_shares_with_searches_last_turn": cpu_busy,
            "load_errors": len(quiet["errors"]) + len(busy["errors"]),
        })
        figures["restart_peak_rss_mb"] = rnd(bot.peak_rss_mb(), 1)
        figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    finally:
        await first.stop()
        await second.stop()
        await sandbox.stop()
        for path in added:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return figures


# ==========================================================================================
# The whole run
# ==========================================================================================
def _judge(name: str, value: Any, size: int) -> dict[str, Any]:
    comparison, limit = TARGETS[name]
    met = None
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        met = value <= limit if comparison == "<=" else value < limit
    return {"figure": name, "stories": size, "value": value,
            "target": f"{comparison} {limit:g}", "met": met,
            "issue_size": size >= ISSUE_SIZE or name not in AT_ISSUE_SIZE}


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"sizes": args.sizes, "runs": args.runs,
                              "big_runs": args.big_runs,
                              "load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    began = time.perf_counter()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop the children on the way out
        if task is not None:
            loop.add_signal_handler(sig, task.cancel)
    keep = Path(args.keep_folder) if args.keep_folder else None
    scratch = Path(tempfile.mkdtemp(prefix="archive-bench-", dir=args.scratch_dir))
    root = keep or scratch
    logs = Path(args.log_dir) if args.log_dir else scratch
    corpus = Corpus(SEED)
    query_set = corpus.queries(args.queries)
    queries = query_set.to_json()
    report["query_examples"] = {k: list(v[:6]) for k, v in queries.items()}
    per_size: dict[str, dict[str, Any]] = {}
    bots: dict[str, dict[str, Any]] = {}
    summary: list[dict[str, Any]] = []
    bot_size = args.bot_size or max(args.sizes)
    sizes = sorted({BASE_SIZE, *args.sizes})
    folders: list[Path] = []
    try:
        for size in sizes:
            folder = root / f"stories-{size}"
            folders.append(folder)
            manifest = ensure_archive(folder, corpus, size, workers=args.workers)
            index = scratch / f"index-{size}.sqlite3"
            runs = args.big_runs if size >= ISSUE_SIZE else args.runs
            figures = await library_figures(folder, index, size, runs, queries, scratch, logs)
            figures["archive_mb"] = rnd(manifest["bytes"] / 2**20, 1)
            figures["archive_write_s"] = manifest.get("write_s")
            figures["archive_reused"] = manifest["reused"]
            per_size[str(size)] = figures
            progress("library", figures)
            if not args.no_bot and size in (BASE_SIZE, bot_size):
                try:
                    bots[str(size)] = await bot_figures(size, folder, index, queries["any"]
                                                        + queries["rare"], args, scratch,
                                                        logs)
                except Exception as error:  # the other figures still count
                    bots[str(size)] = {"error": error_text(error)}
                progress("bot", bots[str(size)])
            _remove_index(index)
            if keep is None and size != BASE_SIZE:
                remove_archive(folder)
    except asyncio.CancelledError:  # SIGINT/SIGTERM: still print what was measured
        report["error"] = "interrupted"
    except Exception as error:  # still print what was measured, with the reason
        report["error"] = error_text(error)
    finally:
        if keep is None:
            for folder in folders:
                remove_archive(folder)
        shutil.rmtree(scratch, ignore_errors=True)

    base = per_size.get(str(BASE_SIZE), {})
    for size_text, figures in per_size.items():
        if base.get("build_peak_rss_mb") is not None and figures.get("build_peak_rss_mb"):
            figures["build_peak_rss_over_1000_mb"] = rnd(
                figures["build_peak_rss_mb"] - base["build_peak_rss_mb"], 1)
        if int(size_text) == BASE_SIZE:
            continue
        for name in ("build_vs_bare_read", "build_peak_rss_over_1000_mb",
                     "restart_vs_list_stat", "rescan_vs_list_stat", "search_rare_p95_ms",
                     "search_any_p95_ms"):
            summary.append(_judge(name, figures.get(name), int(size_text)))
    base_bot = bots.get(str(BASE_SIZE), {})
    for size_text, figures in bots.items():
        if int(size_text) == BASE_SIZE or "error" in figures:
            continue
        if base_bot.get("restart_peak_rss_mb") is not None:
            figures["restart_peak_rss_over_1000_mb"] = rnd(
                figures["restart_peak_rss_mb"] - base_bot["restart_peak_rss_mb"], 1)
        for name in ("new_story_alert_s", "new_story_latest_s", "idle_cpu_share",
                     "replies_p95_ratio", "restart_peak_rss_over_1000_mb"):
            summary.append(_judge(name, figures.get(name), int(size_text)))
    report["library"] = per_size
    report["bot"] = bots
    report["targets"] = summary
    report["targets_met"] = bool(summary) and all(s["met"] for s in summary)
    report["total_wall_s"] = round(time.perf_counter() - began, 1)
    return report


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The story index at archive scale.")
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000],
                        help="archive sizes, comma-separated (10000,100000,1000000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (3)")
    parser.add_argument("--big-runs", type=int, default=1,
                        help="runs for sizes of 1,000,000 or more (1)")
    parser.add_argument("--bot-size", type=int, default=None,
                        help="the size the bot figures are measured at (the largest)")
    parser.add_argument("--no-bot", action="store_true", help="library figures only")
    parser.add_argument("--queries", type=int, default=150, help="queries per kind (150)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--arrivals", type=int, default=5, help="new stories written (5)")
    parser.add_argument("--load-seconds", type=float, default=15.0,
                        help="seconds of replies with, and without, searches in a turn (15)")
    parser.add_argument("--load-turns", type=int, default=3,
                        help="turns of replies without, then with, searches (3)")
    parser.add_argument("--search-rate", type=float, default=20.0,
                        help="searches a second during the load (20)")
    parser.add_argument("--reply-rate", type=float, default=10.0,
                        help="/latest and /story a second, with and without searches (10)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes writing an archive (2)")
    parser.add_argument("--keep-folder", default=None,
                        help="keep the archives here and reuse them in later runs")
    parser.add_argument("--scratch-dir", default=None,
                        help="where the scratch folder goes (the system's temporary one)")
    parser.add_argument("--log-dir", default=None, help="keep the children's logs here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.runs, args.big_runs, args.queries, args.arrivals) < 1:
        parser.error("--runs, --big-runs, --queries and --arrivals must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `bot` is importable
    if args.child:
        _child(Path(args.folder), Path(args.index))
        return 0
    resolve_output_dirs(args, "keep_folder", "log_dir")
    report = asyncio.run(benchmark(args))
    print(json.dumps(json_safe(report)))
    return 1 if "error" in report else 0


if __name__ == "__main__":
    sys.exit(main())
