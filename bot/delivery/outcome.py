"""What a failed Bot API call means for a ledger row: one small, total classification.

Order matters because PTB's tree is not what one might guess: ``BadRequest`` and
``TimedOut`` are both ``NetworkError`` subclasses, so they are tested before it. A
``BadRequest`` is never retried (the same request fails the same way); a read timeout is
*uncertain* (Telegram may have delivered the message), not a failure. A refusal of
*paid* sending (the bot's Stars ran out) is the message's fault no more than a 429 is: the
sender sends it again at the free rate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import aiohttp
import httpx
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

__all__ = ["Action", "Outcome", "classify", "retry_after_seconds"]

# BadRequest descriptions that mean "this chat (or topic) cannot be reached at all".
_CHAT_GONE = ("chat not found", "user is deactivated", "bot was kicked", "not a member",
              "have no rights to send", "need administrator rights", "peer_id_invalid")
_TOPIC_GONE = ("message thread not found", "topic_deleted")
# Telegram refusing a paid broadcast message (allow_paid_broadcast). It documents no
# wording: BALANCE_TOO_LOW is the name of its error for a Stars balance that cannot pay (the
# sandbox answers "Bad Request: BALANCE_TOO_LOW"); the others are plain-words variants, and
# a bot whose paid broadcasts are not enabled is refused the same way in effect.
_PAID_REFUSED = ("balance_too_low", "not enough stars", "insufficient stars",
                 "stars balance", "paid broadcast", "allow_paid_broadcast")
# Timeouts that happen before a request leaves (no connection in time), per HTTP client.
_NOT_SENT = (httpx.ConnectTimeout, httpx.PoolTimeout, aiohttp.ConnectionTimeoutError)


class Action(StrEnum):
    RETRY_AFTER = "retry_after"  # 429: wait retry_after (bulk paused), resend
    MIGRATED = "migrated"  # group became a supergroup: move and resend there
    CHAT_GONE = "chat_gone"  # blocked, kicked, deactivated, chat not found: end it
    TOPIC_GONE = "topic_gone"  # the forum topic is gone: end that destination only
    REJECTED = "rejected"  # any other 400: fail, never retry
    TRANSIENT = "transient"  # 5xx, connection errors: back off and retry (bounded)
    UNCERTAIN = "uncertain"  # read timeout: the message may have arrived
    PAID_REFUSED = "paid_refused"  # paid sending refused (Stars ran out): resend it free


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    reason: str
    retry_after: float = 0.0
    new_chat_id: int | None = None


def retry_after_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, without PTB's int/timedelta deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _certainly_not_sent(exc: TimedOut) -> bool:
    """A pool or connect timeout happened before the request left: safe to retry."""
    cause = exc.__cause__
    return isinstance(cause, _NOT_SENT) or "Pool timeout" in str(exc)


def classify(exc: TelegramError) -> Outcome:
    """Map a PTB exception to what the sender does with the row."""
    reason = f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, RetryAfter):
        return Outcome(Action.RETRY_AFTER, reason, retry_after=retry_after_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return Outcome(Action.MIGRATED, reason, new_chat_id=int(exc.new_chat_id))
    if isinstance(exc, BadRequest | Forbidden) and any(
            marker in exc.message.lower() for marker in _PAID_REFUSED):
        return Outcome(Action.PAID_REFUSED, reason)  # before Forbidden: the chat is fine
    if isinstance(exc, Forbidden):
        return Outcome(Action.CHAT_GONE, reason)
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        if any(marker in text for marker in _TOPIC_GONE):
            return Outcome(Action.TOPIC_GONE, reason)
        if any(marker in text for marker in _CHAT_GONE):
            return Outcome(Action.CHAT_GONE, reason)
        return Outcome(Action.REJECTED, reason)
    if isinstance(exc, TimedOut):
        if _certainly_not_sent(exc):
            return Outcome(Action.TRANSIENT, reason)
        return Outcome(Action.UNCERTAIN, reason)
    if isinstance(exc, NetworkError):
        return Outcome(Action.TRANSIENT, reason)
    # InvalidToken, Conflict, EndPointNotFound …: not the message's fault; bounded retries.
    return Outcome(Action.TRANSIENT, reason)
