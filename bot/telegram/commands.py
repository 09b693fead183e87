"""The command table: one source for /help, the command menu, and usage answers."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from telegram import BotCommand

__all__ = ["READER_COMMANDS", "Command", "help_text", "menu", "usage"]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arguments: str
    description: str
    example: str

    def line(self) -> str:
        signature = f"/{self.name}" + (f" {self.arguments}" if self.arguments else "")
        return (f"{escape(signature)} — {escape(self.description)}"
                + (f"\n    e.g. <code>{escape(self.example)}</code>" if self.example else ""))


READER_COMMANDS: tuple[Command, ...] = (
    Command("latest", "[N]", "the newest stories' highlights (N up to 20)", "/latest 10"),
    Command("story", "REF", "one story in full, by number, key or words", "/story 1"),
    Command("search", "WORDS", "stories containing every word", "/search central bank"),
    Command("subscribe", "[HH:MM] [ZONE]", "a daily briefing at your time",
            "/subscribe 07:30 Europe/Berlin"),
    Command("unsubscribe", "", "stop the daily briefing", ""),
    Command("time", "HH:MM", "change your briefing time", "/time 18:00"),
    Command("timezone", "ZONE", "change your time zone", "/timezone America/New_York"),
    Command("follow", "WORDS", "only stories mentioning these words", "/follow harbour rail"),
    Command("unfollow", "[WORDS]", "stop following words (all without WORDS)",
            "/unfollow rail"),
    Command("mode", "daily|instant", "one briefing a day, or each new story at once",
            "/mode instant"),
    Command("pause", "", "pause deliveries without losing your settings", ""),
    Command("resume", "", "resume deliveries", ""),
    Command("status", "", "what you receive and when the next briefing comes", ""),
    Command("settings", "", "all of the above as buttons", ""),
    Command("help", "", "this list", ""),
)


def _find(name: str) -> Command:
    return next(c for c in READER_COMMANDS if c.name == name)


def usage(name: str) -> str:
    """The usage line with an example, for a command given wrong or missing arguments."""
    command = _find(name)
    text = f"Usage: /{command.name} {escape(command.arguments)}".rstrip()
    return text + (f"\nFor example: <code>{escape(command.example)}</code>"
                   if command.example else "")


def help_text(bot_username: str) -> str:
    lines = ["<b>What I can do</b>", ""]
    lines += [command.line() for command in READER_COMMANDS]
    lines += ["", "In a private chat, any text you send is a search.",
              f"In any chat, type <code>@{escape(bot_username)} words</code> to share a story.",
              "For a channel: make me an administrator there, then post /subscribe in it."]
    return "\n".join(lines)


def menu() -> list[BotCommand]:
    return [BotCommand(c.name, c.description[:256]) for c in READER_COMMANDS]
