"""Process plumbing shared by the benchmarks, so that each script holds only its scenarios.

* :class:`Child` — a child process: stderr (and, for a real bot, stdout) to a log file,
  stdout lines read as JSON events; started until a ready line, stopped politely, by
  SIGTERM or by SIGKILL; its CPU time and peak RSS read from ``/proc``.
* :class:`Sandbox` — the sandbox Bot API server (``python -m bot.sandbox.server``) in its
  own process, with clients for its HTTP user API; :class:`CallLog` reads its call log
  incrementally (a fan-out of 20,000 messages would be re-read in full otherwise).
* :class:`ScratchDatabase` — a throw-away SQLite file, or a PostgreSQL database created
  next to a given server URL (the role needs CREATEDB) and dropped afterwards, filled with
  daily subscriptions by bulk inserts before any bot starts.
* :func:`write_bot_config`, :func:`run_bot_argv` and :func:`wait_healthy` — the bot as an
  operator runs it: ``python run_bot.py --config FILE run``, ready when ``/healthz``
  answers 200 on ``monitoring.port``.
* small figure helpers: rounding that turns NaN into None, percentiles, medians over runs.

Nothing here imports ``bot`` at import time: the benchmarks' child processes import this
module too, and a script puts the repository root on ``sys.path`` only in ``main``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ROOT",
    "BenchmarkError",
    "CallLog",
    "Child",
    "Flood",
    "Sandbox",
    "ScratchDatabase",
    "cpu_seconds",
    "emit",
    "error_text",
    "free_port",
    "healthz",
    "json_safe",
    "median_figures",
    "peak_rss_mb",
    "percentile",
    "resolve_output_dirs",
    "rnd",
    "rss_mb",
    "run_bot_argv",
    "wait_healthy",
    "write_bot_config",
    "write_profile",
]

ROOT = Path(__file__).resolve().parents[1]
REGISTER_CONCURRENCY = 48
CLIENTS_PER_SANDBOX = 2  # aiohttp's default connector allows 100 connections per session
HEALTHZ_TIMEOUT = 3.0
POLLING_METHODS = frozenset({"getupdates"})  # long polls: unanswered for seconds, by design


class BenchmarkError(RuntimeError):
    """Something did not happen in time, or a child process failed."""


# ==========================================================================================
# Figures
# ==========================================================================================
def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def rnd(value: float | None, digits: int = 2) -> float | None:
    """``value`` rounded; None for no value (None or NaN), so the JSON stays strict."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(value, digits)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (0 <= q <= 100) of an ascending sequence."""
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def json_safe(value: Any) -> Any:
    """NaN (no data) as null, recursively, so the output stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def median_figures(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure over runs; other values from the first run."""
    merged: dict[str, Any] = {}
    for name, value in items[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            merged[name] = value
            continue
        values = [float(i[name]) for i in items
                  if isinstance(i.get(name), int | float) and not math.isnan(float(i[name]))]
        if not values:
            merged[name] = None
        elif isinstance(value, int):
            merged[name] = round(statistics.median(values))
        else:
            merged[name] = rnd(statistics.median(values), 3)
    return merged


def emit(event: str, **fields: Any) -> None:
    """One JSON event line on stdout: how a benchmark's child talks to its parent."""
    print(json.dumps({"event": event, **fields}), flush=True)


def resolve_output_dirs(args: Any, *names: str) -> None:
    """Make the folders named by these options exist, as absolute paths."""
    for name in names:
        if getattr(args, name) is not None:
            folder = Path(getattr(args, name)).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            setattr(args, name, str(folder))


def write_profile(profiler: Any, target: Path) -> None:
    """``target``.prof for tools, ``target``.txt sorted by own and by cumulative time."""
    import pstats

    profiler.dump_stats(target.with_suffix(".prof"))
    with target.with_suffix(".txt").open("w", encoding="utf-8") as out:
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)


# ==========================================================================================
# Processes: CPU and memory from /proc (Linux; None elsewhere)
# ==========================================================================================
def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU time of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak RSS of a process: ``VmHWM`` from ``/proc``.

    Not ``ru_maxrss``: Linux keeps that across ``execve``, so a bot process started by a
    benchmark would report the benchmark's own peak (e.g. while it filled the database) as
    the bot's. ``VmHWM`` belongs to the address space, which ``execve`` replaces.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError):
        pass
    return None


def rss_mb(pid: int | str = "self") -> float | None:
    """Current resident set size of a process."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def free_port() -> int:
    """A TCP port nothing listens on right now (for a child that needs a fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ==========================================================================================
# Child processes
# ==========================================================================================
@dataclass
class Child:
    """A child process: stderr to a log file, stdout read as lines (JSON events)."""

    name: str
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _log: IO[bytes] | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def spawn(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                    stdout_to_log: bool = False) -> None:
        """Start the process (``bot`` importable, working directory the repository);
        ``stdout_to_log`` for a program that prints logs, not events."""
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **(env or {})}
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE,
            stdout=self._log if stdout_to_log else asyncio.subprocess.PIPE,
            stderr=self._log, env=environment, cwd=ROOT, limit=2**24)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exit_code(self) -> int | None:
        """The exit status once the process ended (negative: the signal), else None."""
        return self.process.returncode if self.process is not None else None

    async def start(self, argv: Sequence[str], ready: str | Callable[[str], bool],
                    within: float, *, env: Mapping[str, str] | None = None) -> str:
        """Spawn and wait for the first stdout line that is ``ready`` (a substring, or a
        test); that line. Later lines are read as events."""
        is_ready = (lambda line: ready in line) if isinstance(ready, str) else ready
        await self.spawn(argv, env=env)
        assert self.process is not None and self.process.stdout is not None
        try:
            async with asyncio.timeout(within):
                while True:
                    line = (await self.process.stdout.readline()).decode(errors="replace")
                    if not line:
                        raise BenchmarkError(f"{self.name} exited before it was ready: "
                                             f"{self.log_tail()}")
                    self._take(line)
                    if is_ready(line):
                        break
        except TimeoutError:
            raise BenchmarkError(f"{self.name} not ready within {within:g} s: "
                                 f"{self.log_tail()}") from None
        self._reader = asyncio.create_task(self._read())
        return line.strip()

    def _take(self, line: str) -> None:
        with contextlib.suppress(json.JSONDecodeError):
            data = json.loads(line)
            if isinstance(data, dict) and "event" in data:
                self.events.append(data)
                self._changed.set()

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := (await self.process.stdout.readline()).decode(errors="replace"):
            self._take(line)
        self._changed.set()

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == name), None)

    async def wait_event(self, name: str, within: float) -> dict[str, Any]:
        """The first event called ``name``; BenchmarkError after ``within`` s or on exit."""
        try:
            async with asyncio.timeout(within):
                while (found := self.event(name)) is None:
                    if self._reader is not None and self._reader.done():
                        raise BenchmarkError(f"{self.name} exited while waiting for "
                                             f"{name!r}: {self.log_tail()}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise BenchmarkError(f"no {name!r} from {self.name} within {within:g} s") from None
        return found

    async def send(self, command: str) -> None:
        if self.process is None or self.process.stdin is None:
            raise BenchmarkError(f"{self.name} is not running")
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()

    def log_tail(self, chars: int = 600) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return "(no log)"
        return text[-chars:] or "(empty log)"

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.process.pid) if self.process is not None else None

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.process.pid) if self.process is not None else None

    async def kill(self) -> None:
        """SIGKILL now (what a crash looks like to everything else) and reap it."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        await self._close()

    async def stop(self, within: float = 45.0, *, polite: bool = True) -> None:
        """End the child. ``polite``: "stop" on its stdin, which is then closed, SIGTERM
        after ``within`` s and SIGKILL 5 s later; otherwise SIGTERM at once and SIGKILL
        after ``within`` s. Killed at once if this task is cancelled meanwhile."""
        process, self.process = self.process, None
        try:
            if process is not None and process.returncode is None:
                if polite:
                    with contextlib.suppress(OSError, RuntimeError):
                        if process.stdin is not None:
                            process.stdin.write(b"stop\n")
                            process.stdin.close()
                    if not await _exited(process, within):
                        with contextlib.suppress(ProcessLookupError):
                            process.send_signal(signal.SIGTERM)
                        within = 5.0
                else:
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(signal.SIGTERM)
                if not await _exited(process, within):
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        except asyncio.CancelledError:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            raise
        finally:
            self.process = process  # keep the exit code readable
            await self._close()

    async def _close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._reader
            self._reader.cancel()
            self._reader = None
        if self._log is not None:
            self._log.close()
            self._log = None


async def _exited(process: asyncio.subprocess.Process, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            await process.wait()
    except TimeoutError:
        return False
    return True


# ==========================================================================================
# The sandbox Bot API server
# ==========================================================================================
@dataclass(frozen=True)
class Flood:
    """The sandbox's flood control; None switches a limit off. ``per_chat_burst`` is
    Telegram's burst of 3 before one message a second per chat; ``paid_per_second`` the
    cap on calls with ``allow_paid_broadcast`` (Telegram: 1,000), which the overall cap
    then leaves alone."""

    per_second: int | None = None
    per_chat_per_second: int | None = None
    per_group_per_minute: int | None = None
    per_chat_burst: int | None = None
    paid_per_second: int | None = None

    @property
    def needs_options(self) -> bool:
        """Whether a limit has no command-line flag (set through the options API)."""
        return self.per_chat_burst is not None or self.paid_per_second is not None

    def to_json(self) -> dict[str, int | None]:
        figures = {"per_second": self.per_second,
                   "per_chat_per_second": self.per_chat_per_second,
                   "per_group_per_minute": self.per_group_per_minute}
        if self.per_chat_burst is not None:
            figures["per_chat_burst"] = self.per_chat_burst
        if self.paid_per_second is not None:
            figures["paid_per_second"] = self.paid_per_second
        return figures


class Sandbox:
    """The sandbox Bot API server in its own process, and clients for its HTTP API."""

    def __init__(self, log_path: Path) -> None:
        from bot.sandbox.client import SandboxClient

        self.child = Child("sandbox server", log_path)
        self.url = ""
        self._client_type = SandboxClient
        self.clients: list[SandboxClient] = []

    @property
    def client(self) -> Any:
        return self.clients[0]

    async def start(self, flood: Flood = Flood()) -> None:
        argv = [sys.executable, "-m", "bot.sandbox.server", "--port", "0"]
        for flag, value in (("--flood-global", flood.per_second),
                            ("--flood-chat", flood.per_chat_per_second),
                            ("--flood-group", flood.per_group_per_minute)):
            if value is not None:
                argv += [flag, str(value)]
        line = await self.child.start(argv, "listening", within=30)
        found = re.search(r"(https?://\S+)/bot\b", line)
        if found is None:
            raise BenchmarkError(f"no URL in the sandbox's ready line {line!r}")
        self.url = found.group(1)
        for _ in range(CLIENTS_PER_SANDBOX):
            client = self._client_type(self.url)
            await client.__aenter__()
            self.clients.append(client)
        if flood.needs_options:  # no command-line flag for these
            await self.client.set_options(flood=flood.to_json())

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    async def stop(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()
        self.clients.clear()
        await self.child.stop(within=10, polite=False)

    async def register_private_chats(self, chat_ids: Sequence[int]) -> None:
        """Make the chats known to the sandbox (it answers 400 for chats it never saw)."""
        queue = iter(chat_ids)

        async def worker(index: int) -> None:
            client = self.clients[index % len(self.clients)]
            for chat_id in queue:
                await client.request("POST", "chats", {"id": chat_id, "type": "private"})

        await asyncio.gather(*(worker(i) for i in range(REGISTER_CONCURRENCY)))

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.stats()
        return result

    async def calls(self, since: int, method: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.client.calls(since=since, method=method)
        return result

    async def call_count(self) -> int:
        return int((await self.stats())["calls"])


class CallLog:
    """The sandbox's answered calls, read incrementally (only new records each time).

    ``client`` is a :class:`~bot.sandbox.client.SandboxClient`. A call still being
    answered stops the reading there, so that calls are taken in order and each once; a
    long poll (``getUpdates``) does not, and is left out. A call left unanswered for
    ``stuck_after`` s (its caller was killed and the server never finished it) is skipped
    and counted in ``stuck``.
    """

    def __init__(self, client: Any, since: int = 0, *, method: str | None = None,
                 stuck_after: float = 15.0) -> None:
        self._client = client
        self.cursor = since
        self._method = method
        self._stuck_after = stuck_after
        self.stuck = 0

    async def poll(self) -> list[dict[str, Any]]:
        """The calls answered since the last poll, in arrival order."""
        fresh: list[dict[str, Any]] = []
        now = time.monotonic()
        for call in await self._client.calls(since=self.cursor, method=self._method):
            if call["status"] is None and str(call["method"]).lower() not in POLLING_METHODS:
                if now - float(call["started"]) < self._stuck_after:
                    break
                self.stuck += 1
            elif call["status"] is not None:
                fresh.append(call)
            self.cursor = int(call["seq"])
        return fresh


# ==========================================================================================
# Scratch databases
# ==========================================================================================
class ScratchDatabase:
    """A throw-away database per scenario: a SQLite file, or a PostgreSQL database."""

    def __init__(self, workdir: Path, name: str, server_url: str | None, *,
                 prefix: str = "bench") -> None:
        self.server_url = server_url
        self.path: Path | None = None
        if server_url is None:
            self.path = workdir / f"{name}.sqlite3"
            self.url = f"sqlite+aiosqlite:///{self.path}"
            self.pg_name: str | None = None
        else:
            from sqlalchemy.engine import make_url

            self.pg_name = f"{prefix}_{name}_{uuid.uuid4().hex[:8]}"
            self.url = make_url(server_url).set(database=self.pg_name).render_as_string(
                hide_password=False)

    @property
    def kind(self) -> str:
        return "sqlite" if self.pg_name is None else "postgresql"

    async def _admin(self, statement: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        assert self.server_url is not None
        engine = create_async_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    async def create(self) -> None:
        if self.pg_name is not None:
            await self._admin(f'CREATE DATABASE "{self.pg_name}"')

    async def drop(self) -> None:
        if self.pg_name is not None:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    async def open(self, *, application_name: str = "benchmark") -> Any:
        """The bot's :class:`~bot.storage.database.Database` on it (schema upgraded); on
        PostgreSQL its connections carry ``application_name``, to tell them apart."""
        from bot.storage.database import Database

        connect_args = ({"server_settings": {"application_name": application_name}}
                        if self.pg_name is not None else None)
        return await Database.open(self.url, connect_args=connect_args)

    async def subscribe(self, chat_ids: Sequence[int], at: str, *, now: datetime,
                        next_due_at: datetime | None = None, chunk: int = 5000) -> float:
        """Bulk-insert daily subscriptions (UTC) as ``SubscriptionStore`` would store them:
        due next at ``at`` after ``now``, or at ``next_due_at``. Returns the seconds it took.
        """
        from datetime import time as clock_time
        from zoneinfo import ZoneInfo

        from bot.storage.database import Database
        from bot.storage.schedule import first_due_after

        began = time.perf_counter()
        hours, minutes = (int(x) for x in at.split(":"))
        next_due = next_due_at or first_due_after(now, clock_time(hours, minutes),
                                                  ZoneInfo("UTC"))
        db = await Database.open(self.url, now=now)
        try:
            table = db.tables.subscriptions
            rows = [{
                "chat_id": chat_id, "thread_id": 0, "chat_type": "private",
                "delivery_time": at, "timezone": "UTC", "mode": "daily", "follows": [],
                "paused": False, "active": True, "created_at": now, "updated_at": now,
                "next_due_at": next_due,
            } for chat_id in chat_ids]
            for offset in range(0, len(rows), chunk):
                async with db.engine.begin() as conn:
                    await conn.execute(table.insert(), rows[offset:offset + chunk])
        finally:
            await db.close()
        return time.perf_counter() - began


    async def subscribe_series(self, first_chat: int, count: int, at: str, *,
                               now: datetime, next_due_at: datetime) -> float:
        """Bulk-insert ``count`` daily subscriptions (UTC, chats ``first_chat`` onwards) in
        one ``INSERT … SELECT`` over a series, due next at ``next_due_at``: a million rows
        take seconds where client-side batches take minutes. Returns the seconds it took."""
        from sqlalchemy import func, literal, select

        from bot.storage.database import Database

        if self.pg_name is None:  # SQLite: client-side batches, a chunk of chats at a time
            step, total = 50_000, 0.0
            for start in range(first_chat, first_chat + count, step):
                total += await self.subscribe(
                    range(start, min(start + step, first_chat + count)), at, now=now,
                    next_due_at=next_due_at)
            return total
        began = time.perf_counter()
        db = await Database.open(self.url, now=now)
        try:
            t = db.tables.subscriptions
            chat = func.generate_series(first_chat, first_chat + count - 1).column_valued(
                "chat")
            columns = {"chat_id": chat, "thread_id": literal(0),
                       "chat_type": literal("private"), "delivery_time": literal(at),
                       "timezone": literal("UTC"), "mode": literal("daily"),
                       "follows": literal([], t.c.follows.type),
                       "paused": literal(False), "active": literal(True),
                       "created_at": literal(now, t.c.created_at.type),
                       "updated_at": literal(now, t.c.updated_at.type),
                       "next_due_at": literal(next_due_at, t.c.next_due_at.type)}
            query = select(*(value.label(name) for name, value in columns.items()))
            async with db.engine.begin() as conn:
                await conn.execute(t.insert().from_select(list(columns), query))
        finally:
            await db.close()
        return time.perf_counter() - began

    async def make_due(self, at: str, due: datetime) -> float:
        """Every subscription due at ``due`` (its daily time ``at``), in one UPDATE: the
        bot's clock cannot be moved from outside a real ``run`` process, so the briefings
        come to its clock instead. Returns the seconds it took."""
        from sqlalchemy import update

        from bot.storage.database import Database

        began = time.perf_counter()
        db = await Database.open(self.url)
        try:
            t = db.tables.subscriptions
            async with db.engine.begin() as conn:
                await conn.execute(update(t).values(delivery_time=at, next_due_at=due))
        finally:
            await db.close()
        return time.perf_counter() - began


# ==========================================================================================
# The bot as operators run it
# ==========================================================================================
def write_bot_config(path: Path, settings: Mapping[str, Any]) -> Path:
    """Write a YAML settings file and check it as the bot will (a setting out of range is
    the bot's own one-line refusal here, before any process starts)."""
    import yaml

    from bot.config import load_settings

    path.write_text(yaml.safe_dump(dict(settings), sort_keys=False), encoding="utf-8")
    load_settings(path)
    return path


def run_bot_argv(config: Path) -> list[str]:
    """``python run_bot.py --config FILE run``: the production start-up path."""
    return [sys.executable, str(ROOT / "run_bot.py"), "--config", str(config), "run"]


async def healthz(url: str) -> tuple[int | None, Any]:
    """``GET url`` (a bot's ``/healthz``): (status, JSON body), or (None, why) if no answer
    within :data:`HEALTHZ_TIMEOUT` s."""
    import aiohttp

    limit = aiohttp.ClientTimeout(total=HEALTHZ_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=limit) as http, \
                http.get(url) as response:
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as error:
        return None, error_text(error)


async def wait_healthy(child: Child, url: str, within: float) -> float:
    """Wait until the bot answers 200 on ``url`` (its ``/healthz``); the seconds it took.
    BenchmarkError if it exits first or does not get there within ``within`` s."""
    began = time.monotonic()
    last: Any = None
    while time.monotonic() - began < within:
        if child.exit_code is not None:
            raise BenchmarkError(f"{child.name} exited with {child.exit_code} before it was "
                                 f"healthy: {child.log_tail()}")
        status, last = await healthz(url)
        if status == 200:
            return time.monotonic() - began
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"{child.name} not healthy within {within:g} s (last answer: "
                         f"{last}): {child.log_tail()}")
