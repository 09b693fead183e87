"""Wiring the monitoring package to the running bot: metrics sources, reply timings, the
``/healthz`` + ``/metrics`` server. The only place that imports :mod:`bot.monitoring`."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from telegram.ext import SimpleUpdateProcessor

from bot.delivery.due_scan import ScanReport
from bot.monitoring import BotMetrics, MetricsSources, MonitoringServer, Verdict, judge_process
from bot.storage.workers import WorkerRegistry
from bot.telegram.context import BotServices

__all__ = ["TimedUpdateProcessor", "build_metrics", "build_monitoring_server",
           "scan_observer"]

log = logging.getLogger(__name__)


class TimedUpdateProcessor(SimpleUpdateProcessor):
    """python-telegram-bot's update processor, timing each update for ``bot_reply_seconds``."""

    def __init__(self, max_concurrent_updates: int, metrics: BotMetrics) -> None:
        super().__init__(max_concurrent_updates)
        self._metrics = metrics

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        began = time.perf_counter()
        try:
            await coroutine
        finally:
            self._metrics.reply_seconds.observe(time.perf_counter() - began)


def build_metrics(services: BotServices, limiter: object) -> BotMetrics:
    def engine_stat(read: str) -> Any:
        engine = services.engine
        return {} if engine is None else getattr(engine.sender.sender, read)

    def refused() -> dict[str, int]:
        return dict(getattr(limiter, "refused", {}))

    return BotMetrics(MetricsSources(
        sends=lambda: engine_stat("sends"),
        refused=refused,
        sender_stats=lambda: engine_stat("stats"),
        database_retries=lambda: services.db_retry.retries if services.db_retry else 0,
        stories=lambda: (services.library.count(), len(services.library.rejections)),
    ))


def scan_observer(services: BotServices, metrics: BotMetrics) -> Any:
    """What happens after each due scan: health, heartbeat row, metrics."""
    async def finished(report: ScanReport, seconds: float) -> None:
        services.status.scan_finished()
        metrics.scan_seconds.observe(seconds)
        metrics.scan_lag.observe(report.lag_seconds)
        engine, db = services.engine, services.database
        if engine is not None and db is not None:
            await WorkerRegistry(db).scan_finished(engine.sender.sender.worker_id,
                                                   services.role, services.clock())
    return finished


def build_monitoring_server(services: BotServices, metrics: BotMetrics) -> MonitoringServer:
    settings = services.settings

    async def judge() -> Verdict:
        engine = services.engine
        return await judge_process(services.status, settings, services.database,
                                   lambda: engine is not None and engine.sender.running,
                                   services.role)

    async def scrape() -> bytes:
        lease = timedelta(seconds=settings.delivery.lease_seconds)
        try:
            await metrics.refresh(services.database, services.clock(), lease)
        except Exception as error:  # figures of the last good refresh; /healthz says more
            log.warning("metrics: the database figures could not be read: %s", error)
        return metrics.render()

    port = settings.monitoring.port
    assert port is not None
    return MonitoringServer(settings.monitoring.host, port, judge, scrape)
