"""A terminal conversation with the bot through the sandbox: ``run_chat``.

The caller starts a :class:`~bot.sandbox.server.SandboxServer`, starts the real bot
against ``server.base_url``, then::

    await run_chat(server, lines, sys.stdout)          # lines: a list, a file, or
    await run_chat(server, stdin_lines(), sys.stdout)  # interactive input

Each line is one user action in the private chat of a fixed demo user:

* ``:press N`` presses button N (numbered across the keyboard) of the bot's last message
  that has buttons;
* ``:inline words`` runs an inline query and prints the results numbered;
* ``:wait SECONDS`` lets that much time pass, showing what the bot sends meanwhile;
* ``:help`` (or any unknown ``:word``) lists these commands; ``:quit`` ends the chat;
* empty lines are skipped; anything else is sent as the user's text message.

Everything the bot does in the chat is printed as it happens, in the order the sandbox
answered the calls — replies, and what the bot sends on its own (briefings, alerts,
broadcasts): ``bot> …`` for a new message (continuation lines indented), ``(edited)`` with
the new version for each edit, ``(deleted)``, ``(notice)``/``(alert)`` for the answers to
button presses. Each is exactly what the sandbox stored, version by version, so a message
edited twice in quick succession shows both edits. After each line the driver waits until
the bot has answered and gone quiet, so a script's transcript reads in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TextIO

from bot.sandbox.state import (
    DEMO_USER_ID,
    POLLING_METHODS,
    REPLY_METHODS,
    CallRecord,
    StoredMessage,
)
from bot.sandbox.terminal import format_version
from bot.sandbox.user_api import UserSide

__all__ = ["COMMANDS_HELP", "DEMO_NAME", "DEMO_USERNAME", "ChatFeed", "ScriptedChat",
           "lines_from_file", "run_chat", "stdin_lines"]

DEMO_NAME, DEMO_USERNAME = "Ada", "ada"
BOT_PROMPT = "bot> "
USER_PROMPT = "you> "
NOTE_PROMPT = "!!   "
INDENT = " " * len(BOT_PROMPT)
MAX_WAIT_SECONDS = 3600.0
COMMANDS_HELP = (
    ":press N        press button N of the bot's last message with buttons\n"
    ":inline WORDS   run an inline query (@bot WORDS) and list the results\n"
    ":wait SECONDS   let time pass and show what the bot sends meanwhile\n"
    ":help           this list\n"
    ":quit           leave (so does end of input)\n"
    "anything else is sent to the bot as your message"
)
_COMMAND = re.compile(r":[A-Za-z]+")
_HOOK_POLL = 0.02  # seconds between looks at a ``handled`` hook
_SENDS = frozenset({"sendmessage", "sendphoto", "copymessage"})
_EDITS = frozenset({"editmessagetext", "editmessagecaption", "editmessagereplymarkup"})


def _message_id(call: CallRecord) -> int | None:
    try:
        return int(call.params.get("message_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class ChatFeed:
    """What the bot did in one chat, in the order the sandbox answered it.

    Read from the sandbox's call log, not by comparing snapshots: every successful send
    is one new message, every successful edit call one new version (the one the sandbox
    stored for it), every deletion and every answer to the user's button presses one
    line, ordered by when the sandbox finished the call — so two quick edits show as two.
    """

    def __init__(self, server: UserSide, chat_id: int, user_id: int, *,
                 ansi: bool = False) -> None:
        self.state = server.state
        self.chat_id = chat_id
        self.user_id = user_id
        self.ansi = ansi
        self._cursor = len(self.state.calls)  # calls before it are all handled
        self._handled: set[int] = set()  # seq numbers handled at or after the cursor
        # Version index shown per bot message: what was already there counts as seen.
        self._shown: dict[int, int] = {
            m.message_id: len(m.edits) for m in self._bot_messages()}
        self._deleted = {m.message_id for m in self._bot_messages() if m.deleted}

    def _bot_messages(self) -> list[StoredMessage]:
        return [m for m in self.state.chat_messages(self.chat_id) if m.from_bot]

    def in_flight(self) -> bool:
        """Whether the bot has a call the sandbox has not answered yet."""
        return any(c.finished is None for c in self.state.calls[self._cursor:]
                   if c.method.lower() not in POLLING_METHODS)

    def drain(self) -> list[str]:
        """The lines for everything the sandbox answered since the last drain, in order."""
        calls = self.state.calls
        if len(calls) < self._cursor:  # the sandbox was reset
            self._cursor, self._handled = 0, set()
        finished = [c for c in calls[self._cursor:]
                    if c.finished is not None and c.seq not in self._handled]
        lines: list[str] = []
        for call in sorted(finished, key=lambda c: (c.finished or 0.0, c.seq)):
            self._handled.add(call.seq)
            if call.status == 200:
                lines.extend(self._lines_for(call))
        while self._cursor < len(calls) and calls[self._cursor].seq in self._handled:
            self._handled.discard(calls[self._cursor].seq)
            self._cursor += 1
        return lines

    def _lines_for(self, call: CallRecord) -> list[str]:
        method = call.method.lower()
        if method == "answercallbackquery":
            return self._answer(call)
        if call.chat_id != self.chat_id:
            return []
        if method in _SENDS:
            fresh = next((m for m in self._bot_messages() if m.message_id not in self._shown),
                         None)
            return [] if fresh is None else [self._show(fresh, 0)]
        message_id = _message_id(call)
        message = self.state.message(self.chat_id, message_id) if message_id else None
        if message is None or not message.from_bot:
            return []
        lines = [] if message.message_id in self._shown else [self._show(message, 0)]
        if method in _EDITS:
            version = self._shown[message.message_id] + 1
            if version <= len(message.edits):
                lines.append("(edited) " + self._show(message, version))
        elif method == "deletemessage" and message.message_id not in self._deleted:
            self._deleted.add(message.message_id)
            first, _, rest = self._text(message, self._shown[message.message_id]).partition("\n")
            lines.append(f"(deleted) {first}" + (" …" if rest else ""))
        return lines

    def _text(self, message: StoredMessage, version: int) -> str:
        versions = [*message.edits, message.version()]
        return format_version(versions[version], photo=message.photo_file_id is not None,
                              ansi=self.ansi)

    def _show(self, message: StoredMessage, version: int) -> str:
        self._shown[message.message_id] = version
        return self._text(message, version)

    def _answer(self, call: CallRecord) -> list[str]:
        query = self.state.callback_queries.get(str(call.params.get("callback_query_id")))
        if query is None or query.user_id != self.user_id or not query.answer:
            return []
        text = query.answer.get("text")
        if not text:
            return []
        kind = "alert" if query.answer.get("show_alert") else "notice"
        return [f"({kind}) {text}"]


class ScriptedChat:
    """One demo user's private chat, driven line by line, printing the bot as it acts."""

    def __init__(
        self,
        server: UserSide,
        out: TextIO,
        *,
        user_id: int = DEMO_USER_ID,
        first_name: str = DEMO_NAME,
        username: str = DEMO_USERNAME,
        ansi: bool = False,
        echo: bool = True,
        prompt: bool = False,
        quiet: float = 0.5,
        patience: float = 2.0,
        timeout: float = 15.0,
        handled: Callable[[int], bool] | None = None,
        echo_others: bool = False,
    ) -> None:
        self.server = server
        self.out = out
        self.user_id = user_id
        self.ansi = ansi
        self.echo = echo
        self.prompt = prompt
        self.quiet = quiet
        self.patience = patience
        self.timeout = timeout
        self.handled = handled
        server.add_user(user_id, first_name, username)
        self.feed = ChatFeed(server, self.chat_id, user_id, ansi=ansi)
        self._at_prompt = False
        # With echo_others, what the user writes elsewhere (the web chat) is printed too.
        self.echo_others = echo_others
        self._written: set[int] = set()  # message ids this chat sent itself
        self._revision = server.state.revision

    @property
    def chat_id(self) -> int:
        """The private chat's id (the demo user's id)."""
        return self.user_id

    # -- output ---------------------------------------------------------------------------
    def _write(self, prefix: str, text: str) -> None:
        if self._at_prompt:  # something arrived while the user is typing: keep the prompt last
            self.out.write("\r\x1b[K" if self.ansi else "\n")
        lines = text.split("\n")
        self.out.write(prefix + lines[0] + "\n")
        for line in lines[1:]:
            self.out.write(INDENT + line + "\n")
        if self._at_prompt:
            self.out.write(USER_PROMPT)
        self.out.flush()

    def _note(self, text: str) -> None:
        self._write(NOTE_PROMPT, text)

    def _show_prompt(self) -> None:
        if self.prompt:
            self.out.write(USER_PROMPT)
            self.out.flush()
            self._at_prompt = True

    def _show_written_elsewhere(self) -> None:
        state = self.server.state
        changed = state.changed_since(self._revision)
        self._revision = state.revision
        for message in changed:
            if (message.chat_id == self.chat_id and not message.from_bot
                    and message.message_id not in self._written and not message.edits
                    and not message.deleted):
                self._written.add(message.message_id)
                self._write(USER_PROMPT, message.text)

    def show_bot(self) -> None:
        """Print what the bot did since the last call, in order."""
        if self.echo_others:
            self._show_written_elsewhere()
        for line in self.feed.drain():
            self._write(BOT_PROMPT, line)

    async def _watch(self, stop: asyncio.Event) -> None:
        """Print what the bot does, as it does it, until ``stop`` is set. Stopped by the
        flag, not by cancelling: Python 3.11's ``wait_for`` (under ``wait_change``) can
        swallow a cancellation that meets a change, and the chat would never end."""
        while not stop.is_set():
            await self.server.state.wait_change(MAX_WAIT_SECONDS)
            self.show_bot()

    # -- actions --------------------------------------------------------------------------
    async def _wait(self, update_id: int) -> None:
        """Until the bot has dealt with the update, so the next line follows its answer.

        With a ``handled`` hook (the session passes one that watches the bot's update
        processing) that is exact. Without, it is judged from the calls: once the bot
        answered in this chat, ``quiet`` seconds without a call; if it has not,
        ``patience`` seconds (a handler busy with its database makes no calls).
        """
        state = self.server.state
        record = state.updates[update_id]
        deadline = time.monotonic() + self.timeout
        while (now := time.monotonic()) < deadline:
            wait = deadline - now
            if record.fetched_at is not None:
                calls = list(state.bot_calls_since(record.calls_before))
                if self.handled is not None:
                    if self.handled(update_id) and all(c.finished for c in calls):
                        return
                    wait = min(wait, _HOOK_POLL)  # a handler ends without a sandbox call
                elif all(c.finished for c in calls):
                    answered = any(
                        c.status == 200 and (c.method.lower() == "answercallbackquery" or (
                            c.chat_id == self.chat_id and c.method.lower() in REPLY_METHODS))
                        for c in calls)
                    last = max([record.fetched_at, *(c.finished or 0.0 for c in calls)])
                    needed = self.quiet if answered else self.patience
                    if now - last >= needed:
                        return
                    wait = min(wait, needed - (now - last))
            await state.wait_change(max(wait, 0.001))
        self._write(BOT_PROMPT, f"(no answer within {self.timeout:g} s)")

    async def _settle(self) -> None:
        """Let calls the bot has in flight finish, so what they send is printed now."""
        deadline = time.monotonic() + self.timeout
        while self.feed.in_flight() and time.monotonic() < deadline:
            await self.server.state.wait_change(deadline - time.monotonic())

    async def handle(self, line: str) -> bool:
        """Act on one input line; False once the conversation should end."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        if self.echo:
            self._write(USER_PROMPT, line)
        word, _, rest = line.strip().partition(" ")
        if _COMMAND.fullmatch(word):
            return await self._command(word.lower(), rest.strip())
        post = await self.server.user_message(line, user_id=self.user_id)
        self._written.add(post.message.message_id)
        await self._wait(post.update_id)
        self.show_bot()
        return True

    async def _command(self, word: str, argument: str) -> bool:
        if word == ":quit":
            return False
        if word == ":press":
            await self._press(argument)
        elif word == ":inline":
            await self._inline(argument)
        elif word == ":wait":
            await self._pause(argument)
        elif word == ":help":
            self._note(COMMANDS_HELP)
        else:
            self._note(f"unknown command {word} (not sent); the : commands are:\n"
                       + COMMANDS_HELP)
        return True

    async def _pause(self, argument: str) -> None:
        try:
            seconds = float(argument)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= MAX_WAIT_SECONDS:
            self._note(f":wait takes seconds from 0 to {MAX_WAIT_SECONDS:g}, e.g. :wait 5")
            return
        await asyncio.sleep(seconds)
        await self._settle()
        self.show_bot()

    async def _press(self, argument: str) -> None:
        message = self.server.last_message_with_buttons(self.chat_id)
        if message is None:
            self._note("there is no message with buttons to press")
            return
        if not argument.isdigit() or not 1 <= int(argument) <= len(message.buttons):
            self._note(f"choose a button from 1 to {len(message.buttons)}")
            return
        try:
            # The answer, which a bot may give only after its work, then a quiet moment.
            press = await self.server.press_button(
                self.chat_id, message.message_id, button=int(argument), user_id=self.user_id,
                timeout=self.timeout,
            )
        except LookupError as err:
            self._note(str(err))
            return
        await self._wait(press.update_id)
        self.show_bot()

    async def _inline(self, query: str) -> None:
        run = await self.server.inline_query(query, user_id=self.user_id, timeout=self.timeout)
        self.show_bot()
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
        """Handle lines until they run out or ``:quit``, printing the bot meanwhile."""
        source = lines if isinstance(lines, AsyncIterator) else _async_lines(lines)
        stop = asyncio.Event()
        watcher = asyncio.create_task(self._watch(stop))
        try:
            while True:
                self._show_prompt()
                try:
                    line = await anext(source)
                except StopAsyncIteration:
                    if self.prompt:  # Ctrl-D: end the prompt's line
                        self.out.write("\n")
                    break
                finally:
                    self._at_prompt = False
                if not await self.handle(line):
                    return
        finally:
            stop.set()
            self.server.state.notify()  # wakes the watcher, which then sees ``stop``
            await watcher
            self.show_bot()
            self.out.flush()


async def _async_lines(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def run_chat(
    server: UserSide,
    lines: AsyncIterator[str] | Iterable[str],
    out: TextIO,
    *,
    ansi: bool = False,
    echo: bool = True,
    prompt: bool = False,
    quiet: float = 0.5,
    timeout: float = 15.0,  # noqa: ASYNC109 - per-answer wait, part of the documented API
    handled: Callable[[int], bool] | None = None,
    echo_others: bool = False,
) -> None:
    """Talk to the bot as the demo user; see the module docstring for the line syntax.

    ``prompt`` shows ``you> `` while waiting for a line (for a person at a terminal);
    ``handled(update_id)``, when given, tells when the bot has finished with an update
    (otherwise that is judged from its calls, see :meth:`ScriptedChat._wait`);
    ``echo_others`` also prints, as ``you> …``, what the user writes in this chat from
    elsewhere (the web chat).
    """
    chat = ScriptedChat(server, out, ansi=ansi, echo=echo, prompt=prompt, quiet=quiet,
                        timeout=timeout, handled=handled, echo_others=echo_others)
    await chat.run(lines)


def lines_from_file(path: Path) -> list[str]:
    """The lines of a ``--script`` file."""
    return path.read_text(encoding="utf-8").splitlines()


async def stdin_lines(stream: TextIO | None = None) -> AsyncIterator[str]:
    """Lines typed on ``stream`` (default stdin); none when it is closed (``<&-``).

    A daemon thread reads, so a pending read never keeps the process alive after
    Ctrl-C or the end of the chat.
    """
    source = stream if stream is not None else sys.stdin
    if source is None or source.closed:
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for line in iter(source.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):  # closed or unreadable: like the end of input
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="sandbox-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line
