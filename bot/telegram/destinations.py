"""Where a message came from, as the destination subscriptions and replies use."""

from __future__ import annotations

from telegram import Message

from bot.storage.subscriptions import Destination

__all__ = ["destination_of"]


def destination_of(message: Message) -> Destination:
    """The chat, plus the forum topic when the message was posted in one."""
    thread = message.message_thread_id if message.is_topic_message else None
    return Destination(message.chat_id, thread or 0)
