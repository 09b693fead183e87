"""The sandbox turns /healthz and /metrics on, so a newcomer sees them working."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.config import MonitoringSettings, Settings
from bot.sandbox.session import sandbox_settings


def test_the_sandbox_serves_monitoring_on_a_free_port_unless_one_is_configured(
    tmp_path: Path,
) -> None:
    assert Settings().monitoring.port is None  # off by default for `run`
    chosen = sandbox_settings(Settings(), "http://127.0.0.1:1/bot", tmp_path)
    assert (chosen.monitoring.port, chosen.monitoring.host) == (0, "127.0.0.1")
    configured = replace(Settings(), monitoring=MonitoringSettings(port=9464))
    assert sandbox_settings(configured, "http://127.0.0.1:1/bot",
                            tmp_path).monitoring.port == 9464
