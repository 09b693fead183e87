"""One verdict on whether the bot is doing its job, from the process or from the database.

The running process knows the most (``/healthz``): its own problems (the database not
answering, waiting for Telegram, a second poller, a failing job), whether the sender task
is alive and when the last due scan ended. ``run_bot.py health`` must work without the
port, from another process, so it judges from what the workers write: heartbeats, the
last scan and the problem they report with each heartbeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from bot.config import Settings
from bot.status import ProcessStatus
from bot.storage.database import Database
from bot.storage.ledger import DeliveryState
from bot.storage.workers import WorkerRegistry

__all__ = ["Verdict", "judge_from_database", "judge_process", "scan_deadline"]

_DB_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Verdict:
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "reasons": list(self.reasons), **self.details}

    def line(self) -> str:
        return "healthy" if self.healthy else "unhealthy: " + "; ".join(self.reasons)


def scan_deadline(settings: Settings) -> float:
    """A due scan must have ended within this many seconds (2 × interval + 10 s)."""
    return 2 * settings.delivery.scan_seconds + 10


async def _database_answers(db: Database | None) -> str | None:
    if db is None:
        return "the database is not open yet"
    try:
        async with asyncio.timeout(_DB_TIMEOUT), db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:
        return f"the database does not answer: {str(error).splitlines()[0][:200]}"
    return None


async def judge_process(status: ProcessStatus, settings: Settings, db: Database | None,
                        sender_running: Callable[[], bool], role: str = "all") -> Verdict:
    """An ``updates`` process is healthy when its database answers and its updates arrive
    (no problem reported by polling or the start-up); one that delivers (``all``,
    ``delivery``) also needs its sender alive and a recent due scan."""
    reasons = list(status.problems.values())
    if (problem := await _database_answers(db)) is not None:
        reasons.append(problem)
    details: dict[str, Any] = {"role": role}
    if role != "updates":
        if not sender_running() and "fatal" not in status.problems:
            reasons.append("the delivery sender is not running")
        since = status.seconds_since_scan()
        if since > scan_deadline(settings):
            reasons.append(f"no due scan has finished for {since:.0f}s")
        details["seconds_since_scan"] = round(since, 1)
    return Verdict(tuple(dict.fromkeys(reasons)), details)


async def judge_from_database(db: Database, settings: Settings, now: datetime) -> Verdict:
    lease = timedelta(seconds=settings.delivery.lease_seconds)
    workers = await WorkerRegistry(db).all()
    live = [w for w in workers if w.alive(now, lease)]
    reasons: list[str] = []
    if not live:
        last = max((w.last_seen for w in workers), default=None)
        seen = f"last heartbeat {last:%Y-%m-%d %H:%M:%S} UTC" if last else "none ever"
        reasons.append(f"no bot process has renewed its heartbeat in the last "
                       f"{settings.delivery.lease_seconds:g}s ({seen})")
    scanning = [w for w in live if w.role in ("all", "delivery")]
    if live and not scanning:
        reasons.append("no delivery process is alive (only updates processes)")
    deadline = timedelta(seconds=scan_deadline(settings))
    if scanning and all(w.last_scan_at is None or now - w.last_scan_at > deadline
                        for w in scanning):
        reasons.append(f"no due scan has finished in the last {deadline.total_seconds():.0f}s")
    reasons += [f"{w.role} process {w.pid} on {w.host}: {w.problem}" for w in live
                if w.problem]
    d = db.tables.deliveries
    async with db.read() as conn:
        depth = {str(s): int(n) for s, n in (await conn.execute(
            select(d.c.state, func.count()).where(d.c.state.in_(
                [DeliveryState.PENDING.value, DeliveryState.SENDING.value]))
            .group_by(d.c.state))).all()}
        oldest = (await conn.execute(select(func.min(d.c.not_before)).where(
            d.c.state == DeliveryState.PENDING.value, d.c.not_before <= now))).scalar()
    details = {
        "live_workers": [{"role": w.role, "host": w.host, "pid": w.pid,
                          "last_seen": w.last_seen.isoformat()} for w in live],
        "pending": depth.get(DeliveryState.PENDING.value, 0),
        "sending": depth.get(DeliveryState.SENDING.value, 0),
        "oldest_ready_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0,
    }
    return Verdict(tuple(reasons), details)
