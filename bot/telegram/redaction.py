"""Keep the bot token and the webhook secret out of every log record, at every level.

httpx logs request URLs at INFO and python-telegram-bot logs requests at DEBUG, and a Bot
API URL contains the token; the same DEBUG line shows ``setWebhook``'s parameters, the
webhook's secret token among them. A filter on each *handler* sees every record that would
be written (filters on loggers miss records propagated from child loggers), so that is
where both are replaced, in the message, its arguments and any formatted traceback.
"""

from __future__ import annotations

import logging

__all__ = ["REDACTED", "REDACTED_SECRET", "TokenRedactingFilter", "install_token_redaction"]

REDACTED = "<redacted-token>"
REDACTED_SECRET = "<redacted-webhook-secret>"


class TokenRedactingFilter(logging.Filter):
    """Replaces the token (and its secret half), and the webhook secret if there is one, in
    a record before it is formatted."""

    def __init__(self, token: str, webhook_secret: str | None = None) -> None:
        super().__init__()
        secret = token.split(":", 1)[-1]
        needles = [(n, REDACTED) for n in (token, secret) if len(n) >= 8]
        # Any length: Telegram allows a secret of one character, and it must not leak either.
        if webhook_secret:
            needles.append((webhook_secret, REDACTED_SECRET))
        # Longest first, so that a needle inside another cannot leave part of it behind.
        self._needles = tuple(sorted(needles, key=lambda n: -len(n[0])))

    def redact(self, text: str) -> str:
        for needle, replacement in self._needles:
            text = text.replace(needle, replacement)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._needles:
            return True
        message = record.getMessage()
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_token_redaction(token: str, logger: logging.Logger | None = None, *,
                            webhook_secret: str | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    redactor = TokenRedactingFilter(token, webhook_secret)
    for handler in target.handlers:
        if not any(isinstance(f, TokenRedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
