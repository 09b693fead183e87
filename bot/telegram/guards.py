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
PRESSES = "presses"  # the throttle's budget for button presses


def too_many_taps(seconds: int) -> str:
    """The toast on a throttled button press: what happened and when it ends."""
    return f"Too many taps — try again in {max(seconds, 1)} s."


def too_many_messages(seconds: int) -> str:
    """The one notice to a reader sending messages too fast."""
    return (f"You're sending messages faster than I can answer — try again in "
            f"{max(seconds, 1)} s.")


async def throttle_gate(update: Update, context: BotContext) -> None:
    """Runs first (group -1): messages and button presses each have a per-user budget.

    Presses have their own, larger one (paging a list takes many quick taps), so a reader
    out of one can still use the other. Every press is answered, a throttled one with a
    toast saying when to try again: an unanswered press leaves the button spinning. A
    message over the budget gets one notice, then silence until the budget frees.
    Anything else is no request and passes: a reader blocking the bot, or a group's move
    to a supergroup (signed with a member's name), must reach the bot however busy they
    were.
    """
    user = update.effective_user
    if user is None or not _is_request(update):
        return
    services = context.services
    query = update.callback_query
    throttle = services.throttle if query is None else services.throttle.budget(
        PRESSES, services.settings.telegram.button_presses_per_minute)
    verdict = throttle.check(user.id)
    if verdict is ThrottleVerdict.ALLOW:
        return
    if verdict is ThrottleVerdict.NOTIFY:
        log.info("throttled user=%s kind=%s", user.id, "press" if query else "message")
    wait = throttle.retry_after(user.id)
    if query is not None:
        await query.answer(too_many_taps(wait))
    elif verdict is ThrottleVerdict.NOTIFY and update.effective_message is not None:
        await update.effective_message.reply_text(too_many_messages(wait))
    raise ApplicationHandlerStop


def _is_request(update: Update) -> bool:
    """A new message or a button press; not a service message such as a group migrating
    to a supergroup, nor a membership change, an edit or an inline query (answered from
    a cache by Telegram, and cheap)."""
    if update.callback_query is not None:
        return True
    message = update.message
    return message is not None and message.migrate_to_chat_id is None \
        and message.migrate_from_chat_id is None


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
