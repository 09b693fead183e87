"""The ``workers`` table: one row per bot process, its heartbeat the lease on its claims.

A process registers at start, renews ``last_seen`` every few seconds and marks itself
stopped when it ends cleanly. A row whose ``last_seen`` is older than the lease belongs to
a process that crashed or froze: any live worker may then settle its claimed deliveries.
``last_scan_at`` and ``problem`` let ``run_bot.py health`` judge the bot from the database
alone, and the fleet's shared flood budget counts live workers here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from bot.storage.database import Database

__all__ = ["WorkerInfo", "WorkerRegistry"]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    role: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    last_scan_at: datetime | None
    stopped_at: datetime | None
    problem: str | None

    def alive(self, now: datetime, lease: timedelta) -> bool:
        return self.stopped_at is None and self.last_seen >= now - lease


def _info(row: Any) -> WorkerInfo:
    m = row._mapping
    return WorkerInfo(id=m["id"], role=m["role"], host=m["host"], pid=int(m["pid"]),
                      started_at=m["started_at"], last_seen=m["last_seen"],
                      last_scan_at=m["last_scan_at"], stopped_at=m["stopped_at"],
                      problem=m["problem"])


class WorkerRegistry:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._w = db.tables.workers

    def _row(self, worker_id: str, role: str, now: datetime) -> dict[str, Any]:
        return {"id": worker_id, "role": role, "host": socket.gethostname()[:255],
                "pid": os.getpid(), "started_at": now, "last_seen": now}

    async def register(self, worker_id: str, role: str, now: datetime) -> None:
        async with self._db.engine.begin() as conn:
            await self._db.insert_ignore(conn, self._w, self._row(worker_id, role, now),
                                         ("id",))

    async def heartbeat(self, worker_id: str, now: datetime, problem: str | None) -> bool:
        """Renew the lease; False if the row is gone (pruned) or was marked stopped."""
        w = self._w
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(w).where(w.c.id == worker_id, w.c.stopped_at.is_(None))
                .values(last_seen=now, problem=problem))
        return bool(result.rowcount)

    async def scan_finished(self, worker_id: str, role: str, now: datetime) -> None:
        """Record a finished due scan (registering the worker if the scan came first)."""
        w = self._w
        async with self._db.engine.begin() as conn:
            await self._db.insert_ignore(conn, w, self._row(worker_id, role, now), ("id",))
            await conn.execute(update(w).where(w.c.id == worker_id)
                               .values(last_scan_at=now, last_seen=now))

    async def stopped(self, worker_id: str, now: datetime) -> None:
        w = self._w
        async with self._db.engine.begin() as conn:
            await conn.execute(update(w).where(w.c.id == worker_id)
                               .values(stopped_at=now, last_seen=now))

    async def all(self) -> list[WorkerInfo]:
        async with self._db.read() as conn:
            rows = (await conn.execute(select(self._w).order_by(self._w.c.started_at))).all()
        return [_info(r) for r in rows]

    async def live(self, now: datetime, lease: timedelta) -> list[WorkerInfo]:
        return [w for w in await self.all() if w.alive(now, lease)]

    async def prune(self, before: datetime) -> int:
        """Forget processes not seen since ``before`` (their claims were settled long ago)."""
        w = self._w
        async with self._db.engine.begin() as conn:
            result = await conn.execute(delete(w).where(w.c.last_seen < before))
        return int(result.rowcount or 0)
