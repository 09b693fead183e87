"""Keep the bot token out of every log record, at every level, from every library.

httpx logs request URLs at INFO and python-telegram-bot logs requests at DEBUG, and a Bot
API URL contains the token. A filter on each *handler* sees every record that would be
written (filters on loggers miss records propagated from child loggers), so that is where
the token is replaced, in the message, its arguments and any formatted traceback.
"""

from __future__ import annotations

import logging

__all__ = ["REDACTED", "TokenRedactingFilter", "install_token_redaction"]

REDACTED = "<redacted-token>"


class TokenRedactingFilter(logging.Filter):
    """Replaces the token (and its secret half) in a record before it is formatted."""

    def __init__(self, token: str) -> None:
        super().__init__()
        secret = token.split(":", 1)[-1]
        self._needles = tuple(n for n in (token, secret) if len(n) >= 8)

    def redact(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, REDACTED)
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


def install_token_redaction(token: str, logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    redactor = TokenRedactingFilter(token)
    for handler in target.handlers:
        if not any(isinstance(f, TokenRedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
