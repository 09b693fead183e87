"""Subscription commands and the /settings keyboard.

Every command answers; bad input gets a clear answer with an example and changes nothing.
In groups only chat administrators may change the group's subscription (asked from
Telegram, cached briefly); a subscription made inside a forum topic delivers to that topic.
In a channel the commands are posts, which only its administrators can make.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from html import escape

from telegram import (
    ChatMember,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.preferences import (
    PreferenceError,
    parse_schedule,
    parse_time_of_day,
    parse_zone_name,
    zone_label,
)
from bot.render.dates import format_moment
from bot.storage.follows import MAX_FOLLOWS, FollowError, follow_words
from bot.storage.subscriptions import (
    UNSUBSCRIBED,
    Destination,
    Mode,
    Subscription,
    SubscriptionStore,
    format_clock,
)
from bot.telegram.commands import usage
from bot.telegram.context import BotContext, BotServices
from bot.telegram.destinations import destination_of

__all__ = [
    "on_follow",
    "on_migrate",
    "on_mode",
    "on_my_chat_member",
    "on_pause",
    "on_resume",
    "on_settings",
    "on_settings_button",
    "on_status",
    "on_subscribe",
    "on_time",
    "on_timezone",
    "on_unfollow",
    "on_unsubscribe",
]

log = logging.getLogger(__name__)

NOT_SUBSCRIBED = "This chat has no briefing yet. /subscribe starts one, e.g. /subscribe 07:30"
ADMINS_ONLY = "Only this chat's administrators can change its briefing."
TIME_PRESETS = ("06:00", "07:00", "08:00", "12:00", "18:00", "21:00")
ZONE_PRESETS = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
_ZONE_BUTTONS = 4
_SETTINGS = re.compile(r"^st:(t|z|m|p|f|s|u):?([A-Za-z0-9_+/:-]{0,40})$")
_MAX_FOLLOW_ARGS = 40


def _what(subscription: Subscription) -> str:
    """What a subscription brings, as plain text: its mode, and its time if daily."""
    if subscription.mode == "instant":
        return "every new story as it arrives (instant alerts)"
    return (f"a daily briefing at {format_clock(subscription.delivery_time)} "
            f"({zone_label(subscription.timezone)})")


def _describe(subscription: Subscription, now: datetime) -> str:
    zone = subscription.timezone
    lines = [f"<b>Your subscription</b>\nYou receive {escape(_what(subscription))}."]
    if subscription.paused:
        lines.append("⏸ Paused — /resume to continue.")
    elif subscription.next_due_at is not None:
        lines.append(f"Next briefing: {format_moment(subscription.next_due_at, zone)}.")
    follows = ", ".join(subscription.follows)
    lines.append(f"Following: {escape(follows)}." if follows else
                 "Following: everything (use /follow WORDS to narrow it).")
    return "\n".join(lines)


async def _may_change(message: Message, context: BotContext) -> bool:
    """Private chats always; groups only for administrators (asked, then cached)."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    user = message.from_user
    if user is None:  # anonymous group admin or channel post: Telegram vouches for them
        return message.sender_chat is not None and message.sender_chat.id == message.chat_id
    services = context.services
    key = (message.chat_id, user.id)
    allowed = services.admins.get(key)
    if allowed is None:
        member = await context.bot.get_chat_member(message.chat_id, user.id)
        allowed = member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
        services.admins.put(key, allowed)
    return allowed


async def _guarded(update: Update, context: BotContext) -> tuple[Message, Destination] | None:
    message = update.effective_message
    if message is None:
        return None
    if not await _may_change(message, context):
        await message.reply_text(ADMINS_ONLY)
        return None
    return message, destination_of(message)


def _remember_zone(services: BotServices, subscription: Subscription | None) -> None:
    if subscription is not None:
        services.zones.put(subscription.destination, subscription.timezone)


async def on_subscribe(update: Update, context: BotContext) -> None:
    guarded = await _guarded(update, context)
    if guarded is None:
        return
    message, dest = guarded
    services = context.services
    args = context.args or []
    earlier = await services.subscriptions.get(dest)
    ended = earlier if earlier is not None and not earlier.active else None
    try:  # without a time, an ended briefing comes back at its own time
        at, zone = parse_schedule(
            args, ended.delivery_time if ended else services.settings.briefing.default_time,
            await services.reader_zone(dest))
    except PreferenceError as error:
        await message.reply_text(f"{_explain(error)}\n{usage('subscribe')}")
        return
    if any(not arg[:1].isdigit() for arg in args):  # a zone named here is theirs now
        await services.chat_preferences.set_zone(dest, zone, services.clock())
    subscription = await services.subscriptions.subscribe(
        dest, message.chat.type, at, zone, services.clock())
    _remember_zone(services, subscription)
    done = _restored(subscription) if ended else "✅ Subscribed."
    await message.reply_text(f"{done}\n" + _describe(subscription, services.clock()))


def _restored(subscription: Subscription) -> str:
    """A subscription started again keeps its mode and follows: say which came back."""
    if subscription.mode == "instant":
        what, switch = "instant alerts", " /mode daily switches to a daily briefing."
    else:
        what, switch = "your daily briefing", ""
    follows = subscription.follows
    about = f", following {', '.join(follows)}" if follows else ""
    return escape(f"✅ Subscribed again — restored {what}{about}.{switch}")


async def on_unsubscribe(update: Update, context: BotContext) -> None:
    guarded = await _guarded(update, context)
    if guarded is None:
        return
    message, dest = guarded
    services = context.services
    if await services.subscriptions.unsubscribe(dest, services.clock()):
        await services.reader_zone(dest, fresh=True)
        await message.reply_text("You're unsubscribed. /subscribe brings the briefing back.")
    else:
        await message.reply_text("This chat wasn't subscribed. /subscribe starts a briefing.")


async def _not_subscribed(services: BotServices, dest: Destination) -> str:
    """Why there is nothing to change: never subscribed, or a briefing that ended (say
    when, and what /subscribe brings back: an ended row keeps its settings)."""
    ended = await services.subscriptions.get(dest)
    if ended is None or ended.active:
        return NOT_SUBSCRIBED
    since = f" (since {format_moment(ended.ended_at, ended.timezone)})" \
        if ended.ended_at is not None else ""
    state = "This chat is unsubscribed" if ended.ended_reason == UNSUBSCRIBED else \
        "This chat's subscription has ended"
    return escape(f"{state}{since}. /subscribe brings back {_what(ended)}.")


async def _report(message: Message, context: BotContext, subscription: Subscription | None,
                  done: str) -> None:
    if subscription is None:
        await message.reply_text(await _not_subscribed(context.services,
                                                       destination_of(message)))
        return
    _remember_zone(context.services, subscription)
    await message.reply_text(f"{done}\n" + _describe(subscription, context.services.clock()))


def _explain(error: Exception) -> str:
    """A validation error as one escaped sentence."""
    text = str(error)
    text = text[:1].upper() + text[1:]
    return escape(text if text.endswith((".", "?")) else f"{text}.")


SettingChange = Callable[[SubscriptionStore, Destination, datetime],
                         Awaitable[tuple[Subscription | None, str]]]


async def _change(update: Update, context: BotContext, command: str,
                  change: SettingChange) -> None:
    """The shape of every settings command: admins only in groups; bad input gets the
    reason and the usage and changes nothing; otherwise what changed and the status."""
    guarded = await _guarded(update, context)
    if guarded is None:
        return
    message, dest = guarded
    services = context.services
    try:
        changed, done = await change(services.subscriptions, dest, services.clock())
    except (PreferenceError, FollowError) as error:
        await message.reply_text(f"{_explain(error)}\n{usage(command)}")
        return
    await _report(message, context, changed, done)


async def on_time(update: Update, context: BotContext) -> None:
    text = " ".join(context.args or [])

    async def change(store: SubscriptionStore, dest: Destination,
                     now: datetime) -> tuple[Subscription | None, str]:
        at = parse_time_of_day(text)
        return (await store.set_time(dest, at, now),
                f"⏰ Briefing time set to {format_clock(at)}.")

    await _change(update, context, "time", change)


async def on_timezone(update: Update, context: BotContext) -> None:
    """Sets the zone this chat reads times in, subscribed or not (and its briefing's)."""
    message = update.effective_message
    if message is None:
        return
    services = context.services
    if not context.args:
        zone = await services.reader_zone(destination_of(message))
        await message.reply_text(f"🌍 Times here are shown in {escape(zone_label(zone))}.\n"
                                 f"{usage('timezone')}")
        return
    guarded = await _guarded(update, context)
    if guarded is None:
        return
    message, dest = guarded
    try:
        zone = parse_zone_name(" ".join(context.args))
    except PreferenceError as error:
        await message.reply_text(f"{_explain(error)}\n{usage('timezone')}")
        return
    now = services.clock()
    await services.chat_preferences.set_zone(dest, zone, now)
    subscription = await services.subscriptions.set_timezone(dest, zone, now)
    await services.reader_zone(dest, fresh=True)
    done = f"🌍 Time zone set to {escape(zone_label(zone))}."
    if subscription is not None:
        await message.reply_text(f"{done}\n" + _describe(subscription, now))
        return
    local = now.astimezone(zone)
    await message.reply_text(
        f"{done} It's {local.hour:02d}:{local.minute:02d} there now.\n"
        "/latest, /story and search show times in it; /subscribe 07:30 starts a daily "
        "briefing.")


async def on_follow(update: Update, context: BotContext) -> None:
    words = context.args or []

    async def change(store: SubscriptionStore, dest: Destination,
                     now: datetime) -> tuple[Subscription | None, str]:
        if not words:
            raise FollowError("give one or more words to follow")
        if len(words) > _MAX_FOLLOW_ARGS:
            raise FollowError(f"that's too many words: you can follow at most {MAX_FOLLOWS}")
        wanted = follow_words(words)
        if not wanted:
            raise FollowError("there's no word to follow in that (invisible characters and "
                              "punctuation don't count); give letters or digits")
        before = await store.get(dest)
        already = [w for w in wanted if before is not None and w in before.follows]
        added = [w for w in wanted if w not in already]
        done = [f"Now following {', '.join(added)}." if added else "",
                f"You already follow {', '.join(already)}." if already else ""]
        return await store.follow(dest, wanted, now), escape(
            "🔖 " + " ".join(part for part in done if part))

    await _change(update, context, "follow", change)


async def on_unfollow(update: Update, context: BotContext) -> None:
    words = context.args or None

    async def change(store: SubscriptionStore, dest: Destination,
                     now: datetime) -> tuple[Subscription | None, str]:
        if words is None:
            return await store.unfollow(dest, None, now), "🔖 Following everything again."
        unwanted = follow_words(words)
        if not unwanted:
            raise FollowError("there's no word to unfollow in that; give the words, or "
                              "nothing to follow everything again")
        before = await store.get(dest)
        followed = before.follows if before is not None else ()
        dropped = [w for w in unwanted if w in followed]
        missing = [w for w in unwanted if w not in followed]
        done = [f"Unfollowed {', '.join(dropped)}." if dropped else "",
                f"You're not following {', '.join(missing)}." if missing else ""]
        return await store.unfollow(dest, dropped, now), escape(
            "🔖 " + " ".join(part for part in done if part))

    await _change(update, context, "unfollow", change)


async def on_pause(update: Update, context: BotContext) -> None:
    async def change(store: SubscriptionStore, dest: Destination,
                     now: datetime) -> tuple[Subscription | None, str]:
        return await store.pause(dest, now), "⏸ Paused."

    await _change(update, context, "pause", change)


async def on_resume(update: Update, context: BotContext) -> None:
    async def change(store: SubscriptionStore, dest: Destination,
                     now: datetime) -> tuple[Subscription | None, str]:
        return await store.resume(dest, now), "▶️ Resumed."

    await _change(update, context, "resume", change)


async def on_mode(update: Update, context: BotContext) -> None:
    args = [a.lower() for a in context.args or []]

    async def change(store: SubscriptionStore, dest: Destination,
                     now: datetime) -> tuple[Subscription | None, str]:
        if args not in (["daily"], ["instant"]):
            raise PreferenceError("Choose daily (one briefing a day) or instant (each new "
                                  "story as it arrives).")
        mode: Mode = "instant" if args == ["instant"] else "daily"
        return await store.set_mode(dest, mode, now), f"Mode set to {mode}."

    await _change(update, context, "mode", change)


async def on_status(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None:
        return
    services = context.services
    dest = destination_of(message)
    subscription = await services.subscriptions.get(dest)
    if subscription is None or not subscription.active:
        await message.reply_text(await _not_subscribed(services, dest))
        return
    await message.reply_text(_describe(subscription, services.clock()))


# -- /settings ----------------------------------------------------------------------------
def _zone_choices(current: str, shown: Sequence[str] = ()) -> list[str]:
    """The zones on the settings keyboard. A press keeps the buttons where they were (only
    the • moves); otherwise the presets in their order, the chat's own zone first if it
    is none of them."""
    if current in shown:
        return list(shown)
    presets = list(ZONE_PRESETS[:_ZONE_BUTTONS])
    return presets if current in presets else [current, *presets[:_ZONE_BUTTONS - 1]]


def _zone_button(key: str) -> str:
    """``Berlin``, ``New York``; offsets and UTC as people write them (``UTC+02:00``)."""
    if "/" in key and not key.startswith("Etc/"):
        return key.rsplit("/", 1)[-1].replace("_", " ")
    return zone_label(key)


def _shown_zones(markup: InlineKeyboardMarkup | None) -> list[str]:
    """The zones a settings keyboard offers, in its order."""
    rows = markup.inline_keyboard if markup is not None else ()
    return [str(b.callback_data)[len("st:z:"):] for row in rows for b in row
            if str(b.callback_data).startswith("st:z:")]


def _settings_keyboard(subscription: Subscription,
                       shown_zones: Sequence[str] = ()) -> InlineKeyboardMarkup:
    """Time presets only for a daily briefing: instant alerts have no time to choose."""
    current_time = format_clock(subscription.delivery_time)
    times = [InlineKeyboardButton(("• " if t == current_time else "") + t,
                                  callback_data=f"st:t:{t.replace(':', '')}")
             for t in TIME_PRESETS] if subscription.mode == "daily" else []
    current_zone = subscription.timezone.key
    zone_row = [InlineKeyboardButton(("• " if z == current_zone else "") + _zone_button(z),
                                     callback_data=f"st:z:{z}")
                for z in _zone_choices(current_zone, shown_zones)]
    other_mode = "daily" if subscription.mode == "instant" else "instant"
    return InlineKeyboardMarkup([
        *(row for row in (times[:3], times[3:]) if row), zone_row,
        [InlineKeyboardButton(f"Mode: {subscription.mode} → {other_mode}",
                              callback_data=f"st:m:{other_mode}")],
        [InlineKeyboardButton("▶️ Resume" if subscription.paused else "⏸ Pause",
                              callback_data="st:p:0" if subscription.paused else "st:p:1"),
         InlineKeyboardButton("Clear follows", callback_data="st:f:clear")],
        [InlineKeyboardButton("Unsubscribe", callback_data="st:u")],
    ])


def _settings_text(subscription: Subscription, now: datetime) -> str:
    others = "Other times and zones: /time HH:MM, /timezone ZONE" \
        if subscription.mode == "daily" else "Other zones: /timezone ZONE"
    return (_describe(subscription, now) + f"\n\nTap to change. {others}; words: "
            "/follow WORDS.")


async def on_settings(update: Update, context: BotContext) -> None:
    guarded = await _guarded(update, context)
    if guarded is None:
        return
    message, dest = guarded
    services = context.services
    subscription = await services.subscriptions.get(dest)
    if subscription is None or not subscription.active:
        await message.reply_text(await _not_subscribed(services, dest))
        return
    await message.reply_text(_settings_text(subscription, services.clock()),
                             reply_markup=_settings_keyboard(subscription))


async def _apply_setting(services: BotServices, dest: Destination, action: str,
                         value: str) -> Subscription | None:
    store, now = services.subscriptions, services.clock()
    if action == "t":
        return await store.set_time(dest, parse_time_of_day(f"{value[:2]}:{value[2:]}"), now)
    if action == "z":
        zone = parse_zone_name(value)
        await services.chat_preferences.set_zone(dest, zone, now)
        return await store.set_timezone(dest, zone, now)
    if action == "m" and value in ("daily", "instant"):
        return await store.set_mode(dest, "instant" if value == "instant" else "daily", now)
    if action == "p" and value in ("0", "1"):
        return await (store.pause(dest, now) if value == "1" else store.resume(dest, now))
    if action == "f" and value == "clear":
        return await store.unfollow(dest, None, now)
    raise PreferenceError("unknown setting")


async def on_settings_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    if query is None:
        return
    message = query.message if isinstance(query.message, Message) else None
    match = _SETTINGS.match(query.data or "")
    if message is None or match is None:
        await query.answer("This button no longer works. Send /settings again.")
        return
    if message.chat.type != ChatType.PRIVATE:
        member = await context.bot.get_chat_member(message.chat_id, query.from_user.id)
        if member.status not in (ChatMember.ADMINISTRATOR, ChatMember.OWNER):
            await query.answer(ADMINS_ONLY, show_alert=True)
            return
    services = context.services
    dest = destination_of(message)
    action, value = match.groups()
    if action == "s":  # under a briefing or an alert: a new panel, the briefing stays
        await query.answer()
        subscription = await services.subscriptions.get(dest)
        if subscription is None or not subscription.active:
            await message.reply_text(await _not_subscribed(services, dest), do_quote=False)
            return
        await message.reply_text(_settings_text(subscription, services.clock()),
                                 reply_markup=_settings_keyboard(subscription), do_quote=False)
        return
    if action == "u":
        if not await services.subscriptions.unsubscribe(dest, services.clock()):
            await query.answer("This chat isn't subscribed: there's nothing to unsubscribe.")
            return
        await query.answer("Unsubscribed.")
        await message.edit_text("You're unsubscribed. /subscribe brings the briefing back.")
        return
    current = await services.subscriptions.get(dest)
    if current is None or not current.active:
        await query.answer("This chat isn't subscribed any more. Send /subscribe first.",
                           show_alert=True)
        return
    try:
        changed = await _apply_setting(services, dest, action, value)
    except PreferenceError:
        await query.answer("This button no longer works. Send /settings again.")
        return
    if changed is None:
        await query.answer("This chat isn't subscribed any more.")
        return
    _remember_zone(services, changed)
    await query.answer("Saved.")
    try:
        await message.edit_text(_settings_text(changed, services.clock()),
                                reply_markup=_settings_keyboard(
                                    changed, _shown_zones(message.reply_markup)))
    except BadRequest as error:
        if "not modified" not in error.message:
            raise


async def on_my_chat_member(update: Update, context: BotContext) -> None:
    """The bot was removed from a chat, or a user blocked it: its subscriptions end."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    if status in (ChatMember.LEFT, ChatMember.BANNED):
        services = context.services
        reason = "bot blocked by the user" if change.chat.type == ChatType.PRIVATE else \
            "bot removed from the chat"
        ended = await services.subscriptions.end_chat(change.chat.id, reason, services.clock())
        log.info("chat membership ended chat=%s status=%s subscriptions_ended=%d",
                 change.chat.id, status, ended)


async def on_migrate(update: Update, context: BotContext) -> None:
    """A group became a supergroup: move its subscriptions now, so the next briefing goes
    to the new chat instead of first failing against the old one. Telegram posts a note in
    both chats; whichever arrives first moves them, the other finds nothing left to move."""
    message = update.message
    if message is None:
        return
    if message.migrate_to_chat_id is not None:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    services = context.services
    moved = await services.subscriptions.migrate_chat(old, new, services.clock())
    log.info("chat migrated chat=%s new_chat=%s subscriptions_moved=%d", old, new, moved)
