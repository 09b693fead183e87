"""Delivery: the due scan, instant alerts, the rate limiter and the ledger-draining sender.

Everything bulk goes through the ledger (:mod:`bot.storage.ledger`); nothing here keeps
the truth in memory, so restarts and several workers are safe.
"""

from bot.delivery.alerts import ALERT, AlertPlanner, render_alert
from bot.delivery.digest import DigestBuilder, LibraryDigestBuilder, matches_follows
from bot.delivery.due_scan import DIGEST, DueScan, ScanReport
from bot.delivery.outcome import Action, Outcome, classify
from bot.delivery.ratelimiter import BULK, LaneRateLimiter
from bot.delivery.sender import Sender
from bot.delivery.wiring import SenderService, attach_sender, register_due_scan

__all__ = [
    "ALERT",
    "BULK",
    "DIGEST",
    "Action",
    "AlertPlanner",
    "DigestBuilder",
    "DueScan",
    "LaneRateLimiter",
    "LibraryDigestBuilder",
    "Outcome",
    "ScanReport",
    "Sender",
    "SenderService",
    "attach_sender",
    "classify",
    "matches_follows",
    "register_due_scan",
    "render_alert",
]
