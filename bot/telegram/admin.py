"""Admin commands: who is an admin, the admin command menu, /stats and /reload.

Admins are the user ids in ``telegram.admin_ids``, nothing else. Anyone else gets a plain
"not allowed" and the attempt is logged with the user id.
"""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, BotCommand, BotCommandScopeChat, Update
from telegram.error import TelegramError

from bot.operations import collect_stats, format_stats
from bot.telegram.commands import menu
from bot.telegram.context import BotContext, BotServices
from bot.telegram.refresh import rescan_stories

__all__ = ["ADMIN_COMMANDS", "NOT_ALLOWED", "install_admin_menus", "is_admin", "on_reload",
           "on_stats"]

log = logging.getLogger(__name__)

NOT_ALLOWED = "Sorry, that command is for the bot's administrators only."
ADMIN_COMMANDS: tuple[BotCommand, ...] = (
    BotCommand("broadcast", "send an announcement to every subscriber"),
    BotCommand("broadcasts", "recent broadcasts and their figures"),
    BotCommand("cancel_broadcast", "stop what a broadcast has not sent yet"),
    BotCommand("stats", "subscribers, deliveries, queue and stories"),
    BotCommand("reload", "rescan the story folder now"),
)
_MAX_REJECTIONS_SHOWN = 30


def is_admin(services: BotServices, user_id: int | None) -> bool:
    return user_id is not None and user_id in services.settings.telegram.admin_ids


async def require_admin(update: Update, context: BotContext) -> bool:
    """True for admins; everyone else is told no, and the attempt is logged."""
    user = update.effective_user
    if is_admin(context.services, user.id if user else None):
        return True
    command = (update.effective_message.text or "").split(maxsplit=1)[0][:40] \
        if update.effective_message else "?"
    log.warning("admin command refused user=%s command=%s", user.id if user else None, command)
    if update.effective_message is not None:
        await update.effective_message.reply_text(NOT_ALLOWED)
    return False


async def install_admin_menus(bot: Bot, services: BotServices) -> None:
    """Admin commands appear in the menu only in the admins' own chats."""
    commands = [*menu(), *ADMIN_COMMANDS]
    for admin_id in sorted(services.settings.telegram.admin_ids):
        try:
            await bot.set_my_commands(commands, scope=BotCommandScopeChat(admin_id))
        except TelegramError as error:  # the admin has not opened a chat with the bot yet
            log.info("admin menu not set user=%s reason=%s", admin_id, error.message)


async def on_stats(update: Update, context: BotContext) -> None:
    if not await require_admin(update, context) or update.effective_message is None:
        return
    services = context.services
    assert services.database is not None
    stats = await collect_stats(services.database, services.library, services.clock())
    await update.effective_message.reply_text(
        f"<b>Bot statistics</b>\n{escape(format_stats(stats))}")


async def on_reload(update: Update, context: BotContext) -> None:
    if not await require_admin(update, context) or update.effective_message is None:
        return
    services = context.services
    report = await rescan_stories(services)
    if report is None:
        await update.effective_message.reply_text("The story folder cannot be read right now; "
                                                  "see the log for the reason.")
        return
    lines = [f"<b>Rescanned</b> {services.library.count()} stories: "
             f"{len(report.new)} new, {len(report.updated)} updated, "
             f"{len(report.removed)} removed."]
    for label, stories in (("New", report.new), ("Updated", report.updated),
                           ("Removed", report.removed)):
        lines += [f"{label}: {escape(s.title[:80])}" for s in stories[:10]]
    rejections = services.library.rejections
    if rejections:
        lines.append(f"\n<b>{len(rejections)} rejected</b>")
        lines += [f"<code>{escape(str(e))}</code>" for e in rejections[:_MAX_REJECTIONS_SHOWN]]
    await update.effective_message.reply_text("\n".join(lines))
