"""What an operator looks at: ``/healthz``, ``/metrics`` and ``run_bot.py health``.

Read-only views of the other parts; only the application wiring imports this package.
"""

from bot.monitoring.health import Verdict, judge_from_database, judge_process
from bot.monitoring.metrics import BotMetrics, MetricsSources
from bot.monitoring.server import MonitoringServer

__all__ = ["BotMetrics", "MetricsSources", "MonitoringServer", "Verdict",
           "judge_from_database", "judge_process"]
