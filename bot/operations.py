"""Operator figures and exports, shared by the /stats command and the ``stats`` CLI.

Everything comes from the database and the story library; nothing here talks to Telegram,
so the CLI can run beside a live bot. Delivery figures count every message once, by the
state it ended in (see :mod:`bot.storage.stats`), so the states add up to the total; "may
have arrived twice" is said beside them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.preferences import zone_label
from bot.render.dates import format_moment
from bot.storage.database import Database
from bot.storage.stats import DeliveryStats, DeliveryTally, StatsQueries
from bot.storage.subscriptions import format_clock, subscription_from_row
from bot.stories.library import StoryLibrary

__all__ = ["OperatorStats", "collect_stats", "export_subscribers", "format_stats",
           "format_tally", "plural"]

_UNSUBSCRIBED = "unsubscribed"
_KINDS = {"digest": ("briefing", "briefings"), "alert": ("alert", "alerts"),
          "broadcast": ("broadcast message", "broadcast messages")}


@dataclass(frozen=True, slots=True)
class OperatorStats:
    now: datetime
    by_chat_type: dict[str, int]
    by_zone: dict[str, int]
    day: DeliveryStats
    week: DeliveryStats
    ended_day: int
    ended_week: int
    queue: dict[str, int]
    stories: int
    rejected: int
    last_scan: datetime | None


async def _ended_since(db: Database, since: datetime) -> int:
    """Subscriptions the bot lost (blocked, kicked, chat gone) — not readers who left."""
    t = db.tables.subscriptions
    stmt = select(func.count()).where(t.c.ended_at >= since, t.c.ended_reason != _UNSUBSCRIBED)
    async with db.read() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def collect_stats(db: Database, library: StoryLibrary, now: datetime) -> OperatorStats:
    queries = StatsQueries(db)
    return OperatorStats(
        now=now,
        by_chat_type=await queries.subscriptions_by("chat_type"),
        by_zone=await queries.subscriptions_by("timezone"),
        day=await queries.last_day(now),
        week=await queries.last_week(now),
        ended_day=await _ended_since(db, now - timedelta(days=1)),
        ended_week=await _ended_since(db, now - timedelta(days=7)),
        queue=await queries.queue_depth(),
        stories=library.count(),
        rejected=len(library.rejections),
        last_scan=library.last_scan,
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])) \
        or "none"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 destination``, ``2 destinations``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def format_tally(tally: DeliveryTally, *, waiting: str = "still to send") -> str:
    """``690 sent, 6 blocked, 3 failed, 2 cancelled``: every state a message can be in,
    each message once; a state with none is left out (but "sent" is always said)."""
    states = ((tally.blocked, "blocked"), (tally.failed, "failed"),
              (tally.cancelled, "cancelled"), (tally.uncertain, "uncertain (not resent)"),
              (tally.waiting, waiting))
    return ", ".join([f"{tally.sent} sent", *(f"{n} {label}" for n, label in states if n)])


def _window(name: str, stats: DeliveryStats, ended: int) -> str:
    tally = stats.tally()
    text = f"{name}: {plural(tally.total, 'message')}"
    if tally.total:
        kinds = stats.kinds()
        order = [*(k for k in _KINDS if k in kinds), *sorted(kinds.keys() - _KINDS.keys())]
        by_kind = ", ".join(plural(kinds[k], *_KINDS.get(k, (k, k))) for k in order)
        text += f" ({by_kind}) — {format_tally(tally, waiting='still queued')}"
    text += "."
    if tally.twice:
        text += f" {tally.twice} may have arrived twice (delivery uncertain, resent)."
    return text + f" Subscriptions lost (blocked/removed): {ended}."


def format_stats(stats: OperatorStats) -> str:
    """Plain text, one figure group per line (callers escape it for HTML)."""
    total = sum(stats.by_chat_type.values())
    scanned = format_moment(stats.last_scan, UTC) if stats.last_scan else "never"
    top_zones = {zone_label(zone): n for zone, n in
                 sorted(stats.by_zone.items(), key=lambda kv: -kv[1])[:10]}
    return "\n".join([
        f"Active subscriptions: {total} ({_counts(stats.by_chat_type)})",
        f"By time zone: {_counts(top_zones)}",
        _window("Last 24 h", stats.day, stats.ended_day),
        _window("Last 7 days", stats.week, stats.ended_week),
        f"Delivery queue: pending {stats.queue.get('pending', 0)}, "
        f"sending {stats.queue.get('sending', 0)}",
        f"Stories loaded: {stats.stories}, files rejected: {stats.rejected}, "
        f"last rescan: {scanned}",
    ])


async def export_subscribers(db: Database, fmt: str) -> AsyncIterator[str]:
    """Every subscription (active or ended) as CSV or JSON Lines, streamed in id order."""
    t = db.tables.subscriptions
    fields = ["chat_id", "thread_id", "chat_type", "active", "paused", "mode",
              "delivery_time", "timezone", "follows", "created_at", "ended_at", "ended_reason"]
    if fmt == "csv":
        yield ",".join(fields) + "\r\n"
    async with db.read() as conn:
        result = await conn.stream(select(t).order_by(t.c.id))
        async for row in result:
            sub = subscription_from_row(row)
            record = {
                "chat_id": sub.destination.chat_id, "thread_id": sub.destination.thread_id,
                "chat_type": sub.chat_type, "active": sub.active, "paused": sub.paused,
                "mode": sub.mode, "delivery_time": format_clock(sub.delivery_time),
                "timezone": sub.timezone.key, "follows": " ".join(sub.follows),
                "created_at": sub.created_at.isoformat(),
                "ended_at": sub.ended_at.isoformat() if sub.ended_at else "",
                "ended_reason": sub.ended_reason or "",
            }
            if fmt == "csv":
                buffer = io.StringIO()
                csv.writer(buffer).writerow([record[f] for f in fields])
                yield buffer.getvalue()
            else:
                yield json.dumps(record, ensure_ascii=False) + "\n"
