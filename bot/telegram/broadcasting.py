"""/broadcast: preview, confirm, fan out through the delivery engine, report progress.

Nothing goes out before "send"; the draft → sending move is a conditional UPDATE, so a
double press or two admins send once. The fan-out creates ledger rows that the shared
sender delivers (same rate limiter, same error handling: a blocked chat ends its
subscription). A progress job edits the admin's status message at most every
``delivery.progress_interval_seconds``, and only when its text changed, and writes the
final report; after a restart it simply continues with the broadcasts still in state
"sending" or "cancelling". The report counts each destination once, by where its message
ended (see :mod:`bot.storage.stats`), so the figures add up to the audience; a cancel
waits for the messages in flight and counts them as what they became.

``/broadcast paid …`` (with ``delivery.paid_broadcast`` on) asks for one of Telegram's
paid broadcasts: its preview gives the expected duration at ``paid_rate_per_second`` and
the most it can cost in Stars; the sender then sends it with ``allow_paid_broadcast``. If
Telegram refuses paid sending midway, it goes on at the free rate (see the sender).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from html import escape

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.error import BadRequest

from bot.delivery.broadcast import (
    FREE_PER_SECOND,
    audience_size,
    duration_text,
    expected_rate,
    fan_out,
    paid_estimate,
)
from bot.delivery.sender import keyboard_of
from bot.operations import format_tally, plural
from bot.render.dates import format_moment
from bot.render.html import utf16_len
from bot.storage.broadcasts import (
    FANNING_OUT,
    NOT_CHANNELS,
    Audience,
    Broadcast,
    BroadcastStore,
)
from bot.storage.follows import MAX_FOLLOW_CHARS, FollowError, follow_words
from bot.storage.payloads import CopyPayload, MessagePart, MessagesPayload, Payload
from bot.storage.stats import DeliveryTally
from bot.telegram.admin import NOT_ALLOWED, is_admin, require_admin
from bot.telegram.context import BotContext, BotServices
from bot.telegram.destinations import destination_of

__all__ = ["StatusTexts", "on_broadcast", "on_broadcast_button", "on_broadcasts",
           "on_cancel_broadcast", "progress_job"]

log = logging.getLogger(__name__)

USAGE = ("Usage: reply /broadcast to the message to send (text, photo with caption, …), "
         "or write it after the command.\nTargets (optional, first): private, groups, "
         "channels (never included otherwise), follow:WORD; and paid for a paid broadcast "
         "(if enabled).\nFor example: "
         "<code>/broadcast groups The briefing moves to 7:00 tomorrow.</code>")
TEXT_LIMIT = 4096
# Targets are read from the plain text (never from its HTML, where "o'neil" is
# "o&#x27;neil"); a follow: word is taken whole so that a wrong one is refused, not cut.
_PREFIX = re.compile(r"^/broadcast(?:@\w+)?"
                     r"((?:\s+(?:private|groups|channels|paid|follow:\S*)(?!\S))*)\s*",
                     re.IGNORECASE)
PAID_OFF = ("Paid broadcasts are not enabled, so nothing was sent: enable them for the bot "
            "in @BotFather, then set delivery.paid_broadcast: true (or leave out “paid”).")
_MIN_STARS = "10,000"  # the balance Telegram requires for paid broadcasts
_BUTTON = re.compile(r"^bc:([stc]):([0-9]{1,12})$")
# What copyMessage refuses (service, paid, invoice and giveaway messages).
_NOT_COPYABLE = ("new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo",
                 "delete_chat_photo", "group_chat_created", "pinned_message", "invoice",
                 "successful_payment", "giveaway", "giveaway_winners", "paid_media",
                 "migrate_to_chat_id", "forum_topic_created", "video_chat_started")
_BAR = 12
_TWICE = "may have received it twice (delivery uncertain, resent)"


class StatusTexts:
    """The text the progress job last put in each status message. Telegram refuses an
    edit that changes nothing ("message is not modified"), so an unchanged text is not
    sent again: a stalled broadcast would otherwise draw one refusal per tick."""

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def unchanged(self, broadcast_id: int, text: str) -> bool:
        return self._texts.get(broadcast_id) == text

    def remember(self, broadcast_id: int, text: str) -> None:
        self._texts[broadcast_id] = text

    def forget(self, broadcast_id: int) -> None:
        self._texts.pop(broadcast_id, None)


def _follow_target(raw: str) -> str:
    """The word of ``follow:WORD``, written as readers' follows are stored; raises
    :class:`FollowError` for what no reader could follow (nothing is cut to fit)."""
    shown = escape(raw if len(raw) <= 24 else raw[:20] + "…")
    try:
        words = follow_words([raw])
    except FollowError:
        raise FollowError(f"“follow:{shown}” is longer than the {MAX_FOLLOW_CHARS} "
                          "characters a follow word may have, so no reader follows it; "
                          "nothing was sent. Use the word readers follow.") from None
    if len(words) != 1:
        raise FollowError(f"“follow:{shown}” is not one word; nothing was sent. Write "
                          "follow: with the one word readers follow, e.g. "
                          "<code>follow:harbour</code>.")
    return words[0]


def _audience(targets: str) -> Audience:
    """The chat types and follow word the targets name. Without a type, every subscriber
    but channels: a post there reaches all of a channel's readers, so it must be asked for.
    Raises :class:`FollowError` for a follow: word that cannot be followed."""
    chat_types: tuple[str, ...] = NOT_CHANNELS
    follow = None
    for original in targets.split():
        word = original.lower()
        if word == "private":
            chat_types = ("private",)
        elif word == "groups":
            chat_types = ("group", "supergroup")
        elif word == "channels":
            chat_types = ("channel",)
        elif word.startswith("follow:"):
            follow = _follow_target(original[len("follow:"):])
    return Audience(chat_types, follow)


def _html_of_rest(message: Message, start: int) -> str:
    """The HTML of ``message.text[start:]`` (stripped), with its formatting: the entities
    that reach into it, moved and clipped (offsets count UTF-16 units, as Telegram's do)."""
    text = message.text or ""
    rest = text[start:].strip()
    begin = utf16_len(text[:start]) + utf16_len(text[start:]) - utf16_len(text[start:].lstrip())
    end = begin + utf16_len(rest)
    entities = []
    for entity in message.entities:
        first, last = max(entity.offset, begin), min(entity.offset + entity.length, end)
        if last > first:
            entities.append(MessageEntity(
                entity.type, first - begin, last - first, url=entity.url, user=entity.user,
                language=entity.language, custom_emoji_id=entity.custom_emoji_id))
    part = Message(message.message_id, message.date, message.chat, text=rest,
                   entities=entities)
    return part.text_html


def _is_paid(targets: str) -> bool:
    return "paid" in targets.lower().split()


def _copy_refusal(message: Message) -> str | None:
    for attribute in _NOT_COPYABLE:
        if getattr(message, attribute, None):
            kind = attribute.replace("_", " ")
            return f"A {kind} message can't be copied; send the announcement as a new message."
    return None


def _duration(seconds: float) -> str:
    return duration_text(seconds)


def _describe(broadcast: Broadcast) -> str:
    """Who receives it, and whether it is a paid broadcast."""
    audience = broadcast.audience.describe()
    return f"{audience}, paid" if broadcast.paid else audience


def _bar(done: int, total: int) -> str:
    filled = round(_BAR * done / total) if total else _BAR
    percent = round(100 * done / total) if total else 100
    return f"{'▓' * filled}{'░' * (_BAR - filled)} {percent}%"


def _figures_line(figures: DeliveryTally, *, waiting: str = "still to send") -> str:
    """``12 destinations — 9 sent, 3 blocked``: the states add up to the destinations."""
    return f"{plural(figures.total, 'destination')} — {format_tally(figures, waiting=waiting)}"


async def _send_payload(context: BotContext, chat_id: int, payload: Payload) -> None:
    """Show a payload exactly as subscribers get it (used for preview and test sends)."""
    if isinstance(payload, CopyPayload):
        await context.bot.copy_message(chat_id, payload.from_chat_id, payload.message_id)
        return
    for part in payload.parts:
        await context.bot.send_message(chat_id, part.html, reply_markup=keyboard_of(part.buttons))


def _preview_keyboard(broadcast_id: int, audience: int, *,
                      paid: bool = False) -> InlineKeyboardMarkup:
    send = f"📣 Send to {audience} (paid)" if paid else f"📣 Send to {audience}"
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(send, callback_data=f"bc:s:{broadcast_id}")],
        [InlineKeyboardButton("Send a test to me", callback_data=f"bc:t:{broadcast_id}"),
         InlineKeyboardButton("Cancel", callback_data=f"bc:c:{broadcast_id}")],
    ])


def _cancel_keyboard(broadcast_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(
        "Cancel the rest", callback_data=f"bc:c:{broadcast_id}")]])


async def on_broadcast(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None or not await require_admin(update, context):
        return
    services = context.services
    text = message.text or ""
    prefix = _PREFIX.match(text)
    if prefix is None:
        await message.reply_text(USAGE)
        return
    try:
        audience = _audience(prefix.group(1))
    except FollowError as error:
        await message.reply_text(str(error))
        return
    paid = _is_paid(prefix.group(1))
    if paid and not services.settings.delivery.paid_broadcast:
        await message.reply_text(PAID_OFF)
        return
    body = text[prefix.end():]
    payload: Payload
    if message.reply_to_message is not None:
        if body.strip():
            await message.reply_text("Reply with /broadcast alone (plus an optional target), "
                                     "or write the text after /broadcast — not both.\n" + USAGE)
            return
        refusal = _copy_refusal(message.reply_to_message)
        if refusal:
            await message.reply_text(refusal)
            return
        payload = CopyPayload(message.chat_id, message.reply_to_message.message_id)
    else:
        if not body.strip():
            await message.reply_text(USAGE)
            return
        length = utf16_len(body.strip())
        if length > TEXT_LIMIT:
            await message.reply_text(f"That text is {length} characters; Telegram allows "
                                     f"{TEXT_LIMIT} in one message. Shorten it, or send it as "
                                     "a message and reply /broadcast to it.")
            return
        html = _html_of_rest(message, prefix.end())
        payload = MessagesPayload((MessagePart(html),))
    await _preview(message, context, services, payload, audience, paid=paid)


def _cost_lines(services: BotServices, messages: int) -> str:
    """How long a paid broadcast takes and the most it costs (see paid_estimate)."""
    delivery = services.settings.delivery
    estimate = paid_estimate(messages, delivery)
    return (f"Paid broadcast: expected duration about {_duration(estimate.seconds)} at up to "
            f"{delivery.paid_rate_per_second:g} messages/s.\n"
            f"Cost: at most {estimate.stars:,g} Stars — {delivery.paid_star_price:g} for "
            f"each message above Telegram's free {FREE_PER_SECOND}/s "
            f"({estimate.charged} of {messages}); only messages delivered are charged. "
            f"Telegram requires a balance of at least {_MIN_STARS} Stars.\n")


async def _preview(message: Message, context: BotContext, services: BotServices,
                   payload: Payload, audience: Audience, *, paid: bool = False) -> None:
    db = services.require_database()
    user_id = message.from_user.id if message.from_user else 0
    size = await audience_size(db, audience)
    if size == 0:
        await message.reply_text(_nobody(audience))
        log.info("broadcast refused admin=%s audience=%s: nobody to send to", user_id,
                 audience.describe())
        return
    broadcast = await BroadcastStore(db).create(user_id, message.chat_id, payload, audience,
                                                services.clock(), paid=paid)
    if paid:
        timing = _cost_lines(services, size * payload.part_count)
    else:
        timing = await _timing_line(services, size * payload.part_count)
    await _send_payload(context, message.chat_id, payload)
    status = await message.reply_text(
        f"📣 <b>Broadcast #{broadcast.id}</b> — preview above, exactly as subscribers will "
        f"see it.\nAudience: {escape(audience.describe())} "
        f"({plural(size, 'destination')}).\n"
        f"{timing}Nothing is sent before you press “Send”.",
        reply_markup=_preview_keyboard(broadcast.id, size, paid=paid), do_quote=False)
    await BroadcastStore(db).set_status_message(broadcast.id, status.chat_id, status.message_id)
    log.info("broadcast drafted id=%d admin=%s audience=%s size=%d paid=%s", broadcast.id,
             user_id, audience.describe(), size, paid)


def _nobody(audience: Audience) -> str:
    return (f"📣 Nobody to send to: no active subscriber is in the audience "
            f"({escape(audience.describe())}), so there is nothing to send. Check the "
            "targets (/broadcast alone explains them), or try again once someone has "
            "subscribed.")


def _rate_text(per_second: float) -> str:
    return f"{round(per_second, 1):g}" if per_second < 100 else f"{round(per_second)}"


async def _timing_line(services: BotServices, messages: int) -> str:
    """The expected duration at the rate recent broadcasts really went (see
    :func:`expected_rate`); before one has been measured, at the configured rate."""
    rate = await expected_rate(services.require_database(), services.settings.delivery)
    source = ("as recent broadcasts went" if rate.measured
              else "the configured rate; nothing measured yet")
    return (f"Expected duration: about {_duration(messages / rate.per_second)} at "
            f"{_rate_text(rate.per_second)} messages/s ({source}).\n")


async def on_broadcast_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    if query is None:
        return
    services = context.services
    match = _BUTTON.match(query.data or "")
    if not is_admin(services, query.from_user.id):
        log.warning("admin button refused user=%s data=%s", query.from_user.id,
                    (query.data or "")[:64])
        await query.answer(NOT_ALLOWED, show_alert=True)
        return
    store = BroadcastStore(services.require_database())
    broadcast = await store.get(int(match.group(2))) if match else None
    if match is None or broadcast is None:
        await query.answer("This broadcast no longer exists.")
        return
    action = match.group(1)
    if action == "t":
        await _send_payload(context, query.from_user.id, await store.payload(broadcast))
        await query.answer("Test sent to you.")
    elif action == "c":
        await _cancel(context, broadcast, query.from_user.id)
        await query.answer()
    else:
        refusal = await _start(context, broadcast, query.from_user.id)
        await query.answer(refusal, show_alert=refusal is not None)


async def _start(context: BotContext, broadcast: Broadcast, admin_id: int) -> str | None:
    """Start sending; None, or why nothing was started (the press's answer)."""
    services = context.services
    db = services.require_database()
    store = BroadcastStore(db)
    now = services.clock()
    if broadcast.state == "draft" and await audience_size(db, broadcast.audience) == 0:
        log.info("broadcast start refused id=%d admin=%s: nobody to send to", broadcast.id,
                 admin_id)
        return (f"Nothing was sent: nobody is in broadcast #{broadcast.id}'s audience any "
                "more (its subscribers left or stopped following). Send a new /broadcast.")
    if not await store.start(broadcast.id, now):
        current = await store.get(broadcast.id)
        state = current.state if current else "gone"
        log.info("broadcast start ignored id=%d admin=%s state=%s", broadcast.id, admin_id,
                 state)
        return None
    log.info("broadcast started id=%d admin=%s", broadcast.id, admin_id)
    total = await fan_out(db, broadcast, await store.payload(broadcast), now)
    services.wake_sender()
    if broadcast.status_chat_id is not None and broadcast.status_message_id is not None \
            and _may_edit(services, broadcast.id):
        # Not the progress text: the job's first progress edit then always changes it.
        await _edit(broadcast.status_chat_id, broadcast.status_message_id, context,
                    f"📣 <b>Broadcast #{broadcast.id}</b> — sending to "
                    f"{escape(_describe(broadcast))}: "
                    f"{plural(total, 'destination')}. Progress follows here.",
                    _cancel_keyboard(broadcast.id))
        _edited(services, broadcast.id)
    log.info("broadcast fanned out id=%d destinations=%d", broadcast.id, total)
    return None


async def _cancel(context: BotContext, broadcast: Broadcast, admin_id: int) -> str:
    """Cancel what is not claimed yet. Messages in flight end as sent or failed; until
    they have, the broadcast is "cancelling" and the progress job writes the report."""
    services = context.services
    store = BroadcastStore(services.require_database())
    now = services.clock()
    if not await store.cancel(broadcast.id, now):
        current = await store.get(broadcast.id)
        if current is not None and current.state == "cancelling":
            return (f"Broadcast #{broadcast.id} is already being cancelled; its report "
                    "follows when the messages in flight have ended.")
        state = current.state if current else "gone"
        return f"Broadcast #{broadcast.id} had already ended ({state})."
    figures = await store.figures(broadcast.id)
    if figures.waiting == 0:
        await store.settle_cancel(broadcast.id, now)  # the job may have done it already
        text = _report_text(broadcast, figures, now, cancelled=True)
    else:
        text = (f"📣 <b>Broadcast #{broadcast.id}</b> — cancelled by the admin: "
                f"{figures.cancelled} will not be sent. Already in flight: "
                f"{plural(figures.waiting, 'message')}, counted where they end in the final "
                f"report (it replaces the status message).\n"
                f"{_figures_line(figures, waiting='in flight')}")
    log.info("broadcast cancelled id=%d admin=%s sent=%d cancelled=%d in_flight=%d",
             broadcast.id, admin_id, figures.sent, figures.cancelled, figures.waiting)
    if broadcast.status_chat_id is not None and broadcast.status_message_id is not None:
        await _edit(broadcast.status_chat_id, broadcast.status_message_id, context, text,
                    None)
        _edited(services, broadcast.id)
    return text


async def on_cancel_broadcast(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None or not await require_admin(update, context):
        return
    args = context.args or []
    if len(args) != 1 or not args[0].lstrip("#").isdecimal():
        await message.reply_text("Usage: /cancel_broadcast ID\nFor example: "
                                 "<code>/cancel_broadcast 12</code> (see /broadcasts)")
        return
    store = BroadcastStore(context.services.require_database())
    broadcast = await store.get(int(args[0].lstrip("#")))
    if broadcast is None:
        await message.reply_text("There is no such broadcast. /broadcasts lists them.")
        return
    admin_id = message.from_user.id if message.from_user else 0
    await message.reply_text(await _cancel(context, broadcast, admin_id))


async def on_broadcasts(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None or not await require_admin(update, context):
        return
    store = BroadcastStore(context.services.require_database())
    zone = await context.services.reader_zone(destination_of(message))
    lines = ["<b>Recent broadcasts</b>"]
    for broadcast in await store.recent(10):
        figures = await store.figures(broadcast.id)
        line = (f"#{broadcast.id} {broadcast.state}, "
                f"{format_moment(broadcast.created_at, zone)}, "
                f"{escape(_describe(broadcast))}: ")
        waiting = "in flight" if broadcast.state == "cancelling" else "still to send"
        line += _figures_line(figures, waiting=waiting) if figures.total else "nothing sent"
        if figures.twice:
            line += f"; {figures.twice} {_TWICE}"
        lines.append(line)
    if len(lines) == 1:
        lines.append("None yet. /broadcast sends one.")
    await message.reply_text("\n".join(lines))


async def _edit(chat_id: int, message_id: int, context: BotContext, text: str,
                keyboard: InlineKeyboardMarkup | None) -> None:
    try:
        await context.bot.edit_message_text(text, chat_id, message_id, reply_markup=keyboard)
    except BadRequest as error:  # "not modified" is harmless: the text is already there
        if "not modified" not in error.message.lower():
            log.warning("broadcast status edit failed chat=%s: %s", chat_id, error.message)


def _progress_text(broadcast: Broadcast, figures: DeliveryTally, now: datetime) -> str:
    if broadcast.state == "cancelling":
        return (f"📣 <b>Broadcast #{broadcast.id}</b> — cancelled by the admin; waiting for "
                f"{plural(figures.waiting, 'message')} in flight\n"
                f"{_bar(figures.settled, figures.total)}\n"
                f"{_figures_line(figures, waiting='in flight')}")
    elapsed = (now - broadcast.started_at).total_seconds() if broadcast.started_at else 0.0
    rate = figures.settled / elapsed if elapsed > 0 else 0.0
    eta = f"about {_duration(figures.waiting / rate)}" if rate > 0 else "estimating…"
    return (f"📣 <b>Broadcast #{broadcast.id}</b> — sending to "
            f"{escape(_describe(broadcast))}\n"
            f"{_bar(figures.settled, figures.total)}\n{_figures_line(figures)}\nETA {eta}"
            f"{_paid_stopped_line(broadcast)}")


def _paid_stopped_line(broadcast: Broadcast) -> str:
    if broadcast.paid_stopped is None:
        return ""
    return (f"\nPaid sending stopped: Telegram refused it ({escape(broadcast.paid_stopped)});"
            " the rest went on at the free rate.")


def _report_text(broadcast: Broadcast, figures: DeliveryTally, now: datetime, *,
                 cancelled: bool) -> str:
    """The final report: every destination once, by where its message ended."""
    head = f"📣 <b>Broadcast #{broadcast.id}</b>"
    if broadcast.started_at is None:
        return f"{head} cancelled by the admin before it was sent: nothing was sent."
    took = _duration((now - broadcast.started_at).total_seconds())
    ended = f"cancelled by the admin after {took}" if cancelled else f"done in {took}"
    text = f"{head} {ended}: {_figures_line(figures)}."
    if figures.twice:
        text += f"\n{figures.twice} {_TWICE}."
    if figures.blocked:
        text += "\nBlocked: the bot was blocked or removed, or the chat is gone; " \
                "those subscriptions were ended."
    return text + _paid_stopped_line(broadcast)


def _edited(services: BotServices, broadcast_id: int) -> None:
    """Count the interval from when an edit went out: it may have waited for the limiter."""
    services.progress_edits[broadcast_id] = time.monotonic()


def _may_edit(services: BotServices, broadcast_id: int) -> bool:
    """True (and the time noted) if the status message may be edited now: edits are at
    least ``progress_interval_seconds`` apart, the final report included."""
    interval = services.settings.delivery.progress_interval_seconds
    last = services.progress_edits.get(broadcast_id)
    now = time.monotonic()
    if last is not None and now - last < interval:
        return False
    services.progress_edits[broadcast_id] = now
    return True


async def _show_progress(context: BotContext, broadcast: Broadcast,
                         figures: DeliveryTally, texts: StatusTexts) -> None:
    if broadcast.status_chat_id is None or broadcast.status_message_id is None:
        return
    text = _progress_text(broadcast, figures, context.services.clock())
    if texts.unchanged(broadcast.id, text):
        log.debug("broadcast progress unchanged id=%d: no edit", broadcast.id)
        return
    if _may_edit(context.services, broadcast.id):
        keyboard = _cancel_keyboard(broadcast.id) if broadcast.state == "sending" else None
        await _edit(broadcast.status_chat_id, broadcast.status_message_id, context, text,
                    keyboard)
        _edited(context.services, broadcast.id)
        texts.remember(broadcast.id, text)


def _status_texts(context: BotContext) -> StatusTexts:
    """Kept in the job's own data: they live exactly as long as the job is scheduled."""
    job = context.job
    if job is None:  # pragma: no cover - called as a job only
        return StatusTexts()
    if not isinstance(job.data, StatusTexts):
        job.data = StatusTexts()
    return job.data


async def resume_fan_outs_job(context: BotContext) -> None:
    """Once at start: finish the fan-out of a broadcast that a crash cut short (its total
    still reads "fanning out"). Creating its rows again is idempotent: the ledger's unique
    key keeps the ones that exist."""
    services = context.services
    db = services.require_database()
    store = BroadcastStore(db)
    for broadcast in await store.in_state("sending"):
        if broadcast.total != FANNING_OUT:
            continue
        total = await fan_out(db, broadcast, await store.payload(broadcast), services.clock())
        services.wake_sender()
        log.warning("broadcast fan-out resumed after a restart id=%d destinations=%d",
                    broadcast.id, total)


async def progress_job(context: BotContext) -> None:
    """Report every broadcast in flight; finish the ones with nothing left to send."""
    services = context.services
    if services.database is None:
        return
    store = BroadcastStore(services.database)
    texts = _status_texts(context)
    for broadcast in await store.in_state("sending", "cancelling"):
        cancelling = broadcast.state == "cancelling"
        if cancelling:  # rows a restart put back to pending, or a fan-out added late
            await store.cancel_unsent(broadcast.id, services.clock())
        if broadcast.total == FANNING_OUT and not cancelling:
            continue  # its rows are still being created: nothing to count or finish yet
        figures = await store.figures(broadcast.id)
        if figures.waiting > 0 or (not cancelling and figures.total < broadcast.total):
            await _show_progress(context, broadcast, figures, texts)
            continue
        if not _may_edit(services, broadcast.id):
            continue  # the report waits for the next tick, like any other edit
        now = services.clock()
        if cancelling:
            ended = await store.settle_cancel(broadcast.id, now)
        else:
            ended = await store.finish(broadcast.id, now)
        if ended and broadcast.status_chat_id and broadcast.status_message_id:
            await _edit(broadcast.status_chat_id, broadcast.status_message_id, context,
                        _report_text(broadcast, figures, now, cancelled=cancelling), None)
            log.info("broadcast %s id=%d destinations=%d sent=%d blocked=%d failed=%d "
                     "cancelled=%d uncertain=%d twice=%d",
                     "cancelled" if cancelling else "done", broadcast.id, figures.total,
                     figures.sent, figures.blocked, figures.failed, figures.cancelled,
                     figures.uncertain, figures.twice)
        services.progress_edits.pop(broadcast.id, None)
        texts.forget(broadcast.id)
