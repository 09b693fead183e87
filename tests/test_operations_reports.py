"""Operator figures read so that they add up: /stats and ``run_bot.py stats``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_settings
from bot.operations import OperatorStats, format_stats, format_tally, plural
from bot.storage import Database, DeliveryLedger, Destination, MessagesPayload, NewDelivery
from bot.storage.payloads import MessagePart
from bot.storage.stats import DeliveryStats, DeliveryTally

NOW = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
BODY = MessagesPayload((MessagePart("Hello"),))


@pytest.mark.parametrize(("count", "word", "expected"), [
    (0, "destination", "0 destinations"), (1, "destination", "1 destination"),
    (2, "destination", "2 destinations"), (1, "broadcast message", "1 broadcast message"),
])
def test_plural(count: int, word: str, expected: str) -> None:
    assert plural(count, word) == expected


@pytest.mark.parametrize(("tally", "expected"), [
    (DeliveryTally(), "0 sent"),
    (DeliveryTally(sent=690, blocked=6, failed=3, cancelled=2, twice=4),
     "690 sent, 6 blocked, 3 failed, 2 cancelled"),
    (DeliveryTally(sent=1, uncertain=1, waiting=5), "1 sent, 1 uncertain (not resent), "
                                                    "5 still to send"),
])
def test_every_state_is_said_once(tally: DeliveryTally, expected: str) -> None:
    assert format_tally(tally) == expected


def _stats(day: DeliveryStats, week: DeliveryStats) -> OperatorStats:
    return OperatorStats(now=NOW, by_chat_type={"private": 3}, by_zone={"UTC": 3}, day=day,
                         week=week, ended_day=1, ended_week=2,
                         queue={"pending": 1, "sending": 0}, stories=15, rejected=0,
                         last_scan=None)


def test_the_windows_add_up_and_say_twice_beside_the_states() -> None:
    day = DeliveryStats(NOW, {("digest", "sent"): 8, ("digest", "blocked"): 1,
                              ("broadcast", "sent"): 1, ("broadcast", "failed"): 1,
                              ("broadcast", "cancelled"): 1, ("alert", "waiting"): 1},
                        {"digest": 2})
    week = DeliveryStats(NOW, {("digest", "sent"): 1})
    lines = format_stats(_stats(day, week)).splitlines()
    assert lines[2] == (
        "Last 24 h: 13 messages (9 briefings, 1 alert, 3 broadcast messages) — 9 sent, "
        "1 blocked, 1 failed, 1 cancelled, 1 still queued. 2 may have arrived twice "
        "(delivery uncertain, resent). Subscriptions lost (blocked/removed): 1.")
    assert lines[3] == ("Last 7 days: 1 message (1 briefing) — 1 sent. "
                        "Subscriptions lost (blocked/removed): 2.")
    empty = format_stats(_stats(DeliveryStats(NOW, {}), DeliveryStats(NOW, {})))
    assert "Last 24 h: 0 messages. Subscriptions lost (blocked/removed): 1." in empty


async def _deliveries(url: str, now: datetime) -> None:
    db = await Database.open(url)
    try:
        ledger = DeliveryLedger(db)
        await ledger.add([NewDelivery("digest", "d", Destination(c), BODY) for c in (1, 2, 3)]
                         + [NewDelivery("broadcast", "1", Destination(1), BODY)], now)
        first, second, third, fourth = await ledger.claim("w", 4, now)
        for row in (first, second):
            assert await ledger.part_sent(row.delivery.id, 1, True, now,
                                          token=row.delivery.claim_token)
        assert await ledger.mark_uncertain(third.delivery.id, "TimedOut: Timed out", now,
                                           resend=True, uncertain_count=0,
                                           token=third.delivery.claim_token)
        [again] = await ledger.claim("w", 1, now)
        assert await ledger.part_sent(again.delivery.id, 1, True, now,
                                      token=again.delivery.claim_token)
        assert await ledger.fail(fourth.delivery.id, "Forbidden: Forbidden: bot was blocked "
                                 "by the user", now, token=fourth.delivery.claim_token)
    finally:
        await db.close()


def test_the_stats_command_counts_final_states(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'ops.db'}\n")
    asyncio.run(_deliveries(load_settings(config).database.url, datetime.now(UTC)))
    assert main(["--config", str(config), "stats"]) == 0
    out = capsys.readouterr().out
    assert ("Last 24 h: 4 messages (3 briefings, 1 broadcast message) — 3 sent, 1 blocked. "
            "1 may have arrived twice (delivery uncertain, resent). "
            "Subscriptions lost (blocked/removed): 0.") in out
