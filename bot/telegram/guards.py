"""Cross-cutting handlers: per-user throttling before everything, one apology on errors."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.telegram.context import BotContext
from bot.telegram.throttle import ThrottleVerdict

__all__ = ["APOLOGY", "on_error", "throttle_gate"]

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
SLOW_DOWN = "You're sending commands faster than I can answer. Please wait a minute."


async def throttle_gate(update: Update, context: BotContext) -> None:
    """Runs first (group -1): a user over the limit gets one notice, then silence.

    Silence still answers a button press (with no text): an unanswered press leaves the
    reader's button spinning for seconds. Service messages are not requests and pass:
    a group's move to a supergroup must reach the bot whoever's name it carries.
    """
    user = update.effective_user
    if user is None or update.inline_query is not None or _is_service(update):
        return
    verdict = context.services.throttle.check(user.id)
    if verdict is ThrottleVerdict.ALLOW:
        return
    query = update.callback_query
    if verdict is ThrottleVerdict.NOTIFY:
        log.info("throttled user=%s", user.id)
        if query is not None:
            await query.answer(SLOW_DOWN)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(SLOW_DOWN)
    elif query is not None:
        await query.answer()
    raise ApplicationHandlerStop


def _is_service(update: Update) -> bool:
    """A group migrating to a supergroup (the only service message the bot acts on)."""
    message = update.message
    return message is not None and (message.migrate_to_chat_id is not None
                                    or message.migrate_from_chat_id is not None)


async def on_error(update: object, context: BotContext) -> None:
    """Log the failure (the token is redacted by the log filter) and apologise once."""
    chat_id = update.effective_chat.id if isinstance(update, Update) and \
        update.effective_chat else None
    log.error("handler failed update=%s chat=%s", getattr(update, "update_id", None), chat_id,
              exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(APOLOGY)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(APOLOGY, do_quote=False)
    except Exception:  # the apology itself failed (e.g. Telegram unreachable)
        log.warning("could not send the apology chat=%s", chat_id)
