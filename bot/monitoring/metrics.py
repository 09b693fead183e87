"""Prometheus metrics, made with ``prometheus_client`` in a registry of the bot's own.

Counters the delivery code keeps anyway (the sender's outcomes, the rate limiter's 429s,
the database retries) are read at scrape time by a collector rather than mirrored into
prometheus objects on every send; what depends on the database (ledger depth, the age of
the oldest ready row, live workers) is refreshed by :meth:`BotMetrics.refresh` just
before a scrape is rendered. Timings are ordinary histograms the wiring observes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bot.storage.database import Database
from bot.storage.ledger import DeliveryState
from bot.storage.workers import WorkerRegistry

__all__ = ["BotMetrics", "MetricsSources"]


@dataclass(frozen=True, slots=True)
class MetricsSources:
    """Where the scrape-time figures come from (each a cheap, synchronous read)."""

    sends: Callable[[], Mapping[tuple[str, str], int]] = dict
    refused: Callable[[], Mapping[str, int]] = dict  # 429 answers by lane
    sender_stats: Callable[[], Mapping[str, int]] = dict
    database_retries: Callable[[], int] = lambda: 0
    stories: Callable[[], tuple[int, int]] = lambda: (0, 0)  # loaded, rejected


class _ScrapeCollector(Collector):
    def __init__(self, metrics: BotMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterable[Metric]:
        src = self._m.sources
        sends = CounterMetricFamily("bot_sends", "Bulk messages settled, by kind and outcome",
                                    labels=["kind", "outcome"])
        for (kind, outcome), n in sorted(src.sends().items()):
            sends.add_metric([kind, outcome], n)
        yield sends
        refused = CounterMetricFamily("bot_telegram_429", "Rate-limit refusals by lane",
                                      labels=["lane"])
        for lane, n in sorted(src.refused().items()):
            refused.add_metric([lane], n)
        yield refused
        stats = src.sender_stats()
        yield CounterMetricFamily("bot_send_retries", "Sends requeued after a 429 or a "
                                  "server error", value=stats.get("backoff", 0) +
                                  stats.get("flood_requeued", 0))
        yield CounterMetricFamily("bot_uncertain_deliveries", "Deliveries whose fate was "
                                  "unknown (read timeout, crash)",
                                  value=stats.get("uncertain", 0) +
                                  stats.get("uncertain_resent", 0) + stats.get("recovered", 0))
        yield CounterMetricFamily("bot_database_retries", "Database operations retried",
                                  value=src.database_retries())
        loaded, rejected = src.stories()
        yield GaugeMetricFamily("bot_stories_loaded", "Stories loaded", value=loaded)
        yield GaugeMetricFamily("bot_stories_rejected", "Story files rejected",
                                value=rejected)
        depth = GaugeMetricFamily("bot_ledger_rows", "Delivery ledger rows by state",
                                  labels=["state"])
        for state in DeliveryState:
            depth.add_metric([state.value], self._m.ledger.get(state.value, 0))
        yield depth
        yield GaugeMetricFamily("bot_oldest_pending_seconds", "Age of the oldest ready "
                                "pending delivery", value=self._m.oldest_pending_seconds)
        yield GaugeMetricFamily("bot_live_workers", "Bot processes with a fresh heartbeat",
                                value=self._m.live_workers)


class BotMetrics:
    def __init__(self, sources: MetricsSources | None = None) -> None:
        self.sources = sources or MetricsSources()
        self.registry = CollectorRegistry(auto_describe=True)
        self.scan_seconds = Histogram("bot_due_scan_seconds", "Duration of a due scan",
                                      registry=self.registry)
        self.scan_lag = Histogram("bot_due_scan_lag_seconds", "How late the most overdue "
                                  "briefing of a scan was found", registry=self.registry,
                                  buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600))
        self.reply_seconds = Histogram("bot_reply_seconds", "Time to handle a reader's "
                                       "update", registry=self.registry)
        self.ledger: dict[str, int] = {}
        self.oldest_pending_seconds = 0.0
        self.live_workers = 0
        self.registry.register(_ScrapeCollector(self))

    async def refresh(self, db: Database | None, now: datetime, lease: timedelta) -> None:
        """Read the database-backed figures (called just before a scrape)."""
        if db is None:
            return
        d = db.tables.deliveries
        async with db.read() as conn:
            self.ledger = {str(s): int(n) for s, n in (await conn.execute(
                select(d.c.state, func.count()).group_by(d.c.state))).all()}
            oldest = (await conn.execute(select(func.min(d.c.not_before)).where(
                d.c.state == DeliveryState.PENDING.value, d.c.not_before <= now))).scalar()
        self.oldest_pending_seconds = (now - oldest).total_seconds() if oldest else 0.0
        self.live_workers = len(await WorkerRegistry(db).live(now, lease))

    def render(self) -> bytes:
        return generate_latest(self.registry)
