"""A terminal conversation with the bot through the sandbox: ``run_chat``.

The caller starts a :class:`~bot.sandbox.server.SandboxServer`, starts the real bot
against ``server.base_url``, then::

    await run_chat(server, lines, sys.stdout)          # lines: a list, a file, or
    await run_chat(server, stdin_lines(), sys.stdout)  # interactive input

Each line is one user action in the private chat of a fixed demo user:

* ``:press N`` presses button N (numbered across the keyboard) of the bot's last message
  that has buttons;
* ``:inline words`` runs an inline query and prints the results numbered;
* ``:quit`` ends the conversation; empty lines are skipped;
* anything else is sent as the user's text message.

After each action the driver waits until the bot has answered (``wait_idle``) and writes a
transcript: ``you> …`` and ``bot> …`` (multi-line bot messages indented; edits and
deletions are marked).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO

from bot.sandbox.state import DEMO_USER_ID
from bot.sandbox.terminal import format_message
from bot.sandbox.user_api import UserSide

__all__ = ["ScriptedChat", "lines_from_file", "run_chat", "stdin_lines"]

BOT_PROMPT = "bot> "
USER_PROMPT = "you> "
INDENT = " " * len(BOT_PROMPT)


class ScriptedChat:
    """One demo user's private chat, driven line by line."""

    def __init__(
        self,
        server: UserSide,
        out: TextIO,
        *,
        user_id: int = DEMO_USER_ID,
        first_name: str = "Ada",
        username: str = "ada",
        ansi: bool = False,
        echo: bool = True,
        quiet: float = 0.3,
        timeout: float = 15.0,
    ) -> None:
        self.server = server
        self.out = out
        self.user_id = user_id
        self.ansi = ansi
        self.echo = echo
        self.quiet = quiet
        self.timeout = timeout
        server.add_user(user_id, first_name, username)
        self._seen: dict[int, tuple[int, bool]] = {}

    @property
    def chat_id(self) -> int:
        """The private chat's id (the demo user's id)."""
        return self.user_id

    def _write(self, prefix: str, text: str) -> None:
        lines = text.split("\n") or [""]
        self.out.write(prefix + lines[0] + "\n")
        for line in lines[1:]:
            self.out.write(INDENT + line + "\n")
        self.out.flush()

    def _snapshot(self) -> None:
        for message in self.server.bot_messages(self.chat_id, include_deleted=True):
            self._seen[message.message_id] = (len(message.edits), message.deleted)

    def _report_changes(self) -> None:
        for message in self.server.bot_messages(self.chat_id, include_deleted=True):
            before = self._seen.get(message.message_id)
            if before is None:
                if not message.deleted:
                    self._write(BOT_PROMPT, format_message(message, ansi=self.ansi))
            elif message.deleted and not before[1]:
                self._write(BOT_PROMPT, f"(deleted message {message.message_id})")
            elif len(message.edits) != before[0] and not message.deleted:
                text = format_message(message, ansi=self.ansi)
                self._write(BOT_PROMPT, f"(edited) {text}")
        self._snapshot()

    async def _wait(self, update_id: int) -> None:
        if not await self.server.wait_idle(update_id, quiet=self.quiet, timeout=self.timeout):
            self._write(BOT_PROMPT, f"(no answer within {self.timeout:g} s)")

    async def handle(self, line: str) -> bool:
        """Act on one input line; False once the conversation should end."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        if self.echo:
            self._write(USER_PROMPT, line)
        command, _, rest = line.strip().partition(" ")
        self._snapshot()
        if command == ":quit":
            return False
        if command == ":press":
            await self._press(rest.strip())
        elif command == ":inline":
            await self._inline(rest.strip())
        else:
            post = await self.server.user_message(line, user_id=self.user_id)
            await self._wait(post.update_id)
            self._report_changes()
        return True

    async def _press(self, argument: str) -> None:
        message = self.server.last_message_with_buttons(self.chat_id)
        if message is None:
            self._write("!!   ", "there is no message with buttons to press")
            return
        if not argument.isdigit() or not 1 <= int(argument) <= len(message.buttons):
            self._write("!!   ", f"choose a button from 1 to {len(message.buttons)}")
            return
        try:
            press = await self.server.press_button(
                self.chat_id, message.message_id, button=int(argument), user_id=self.user_id
            )
        except LookupError as err:
            self._write("!!   ", str(err))
            return
        await self._wait(press.update_id)
        answer = self.server.callback_answer(press.query_id)
        if answer and answer.get("text"):
            kind = "alert" if answer.get("show_alert") else "notice"
            self._write(BOT_PROMPT, f"({kind}) {answer['text']}")
        self._report_changes()

    async def _inline(self, query: str) -> None:
        run = await self.server.inline_query(query, user_id=self.user_id, timeout=self.timeout)
        if run.answer is None:
            self._write(BOT_PROMPT, f"(no inline answer within {self.timeout:g} s)")
            return
        if not run.results:
            self._write(BOT_PROMPT, "(no inline results)")
            return
        rendered: list[str] = []
        for number, result in enumerate(run.results, start=1):
            title = str(result.get("title") or result.get("id"))
            description = result.get("description")
            rendered.append(f"[{number}] {title}" + (f" — {description}" if description else ""))
        self._write(BOT_PROMPT, "\n".join(rendered))

    async def run(self, lines: AsyncIterator[str] | Iterable[str]) -> None:
        """Handle lines until they run out or ``:quit``."""
        if isinstance(lines, AsyncIterator):
            async for line in lines:
                if not await self.handle(line):
                    return
        else:
            for line in lines:
                if not await self.handle(line):
                    return


async def run_chat(
    server: UserSide,
    lines: AsyncIterator[str] | Iterable[str],
    out: TextIO,
    *,
    ansi: bool = False,
    echo: bool = True,
    quiet: float = 0.3,
    timeout: float = 15.0,  # noqa: ASYNC109 - per-answer wait, part of the documented API
) -> None:
    """Talk to the bot as the demo user; see the module docstring for the line syntax."""
    chat = ScriptedChat(server, out, ansi=ansi, echo=echo, quiet=quiet, timeout=timeout)
    await chat.run(lines)


def lines_from_file(path: Path) -> list[str]:
    """The lines of a ``--script`` file."""
    return path.read_text(encoding="utf-8").splitlines()


async def stdin_lines(stream: TextIO | None = None) -> AsyncIterator[str]:
    """Lines typed on stdin, read in a worker thread so the event loop keeps running."""
    source = stream or sys.stdin
    while True:
        line = await asyncio.to_thread(source.readline)
        if not line:
            return
        yield line
