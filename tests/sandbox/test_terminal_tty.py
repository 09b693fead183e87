"""``run_bot.py sandbox`` in a real terminal (a pseudo-terminal): a prompt, ``:`` help,
pushes that keep the prompt last, and the bot's log in a file instead of the chat."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import INVALID_STORIES

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "you> "


class Terminal:
    """A process whose stdin, stdout and stderr are one pseudo-terminal, as in a shell."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "run_bot.py", *args], cwd=ROOT,
                                        stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        self.screen = ""

    def _read(self, within: float) -> None:
        ready, _, _ = select.select([self.master], [], [], within)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the process closed the terminal
                return
            self.screen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, text: str, *, after: int = 0, within: float = 60) -> int:
        """Read until ``text`` shows at or after position ``after``; its end position."""
        deadline = time.monotonic() + within
        while (found := self.screen.find(text, after)) < 0:
            assert time.monotonic() < deadline, f"{text!r} not shown; screen:\n{self.screen}"
            self._read(0.2)
        return found + len(text)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        self.type("\x04")  # Ctrl-D: end of input
        code = self.process.wait(60)
        while True:  # what is left on the terminal
            before = len(self.screen)
            self._read(0.05)
            if len(self.screen) == before:
                break
        os.close(self.master)
        return code


@pytest.fixture
def terminal(story_folder: Path, tmp_path: Path) -> Iterator[Terminal]:
    shutil.copy(INVALID_STORIES / "bad-date.txt", story_folder)  # the bot logs a warning
    config = tmp_path / "bot.yaml"
    config.write_text(f"stories:\n  folder: {story_folder}\n", encoding="utf-8")
    shown = Terminal("--config", str(config), "sandbox", "--log", str(tmp_path / "bot.log"),
                     "--now", "2025-04-02T05:59:55+00:00")
    yield shown
    if shown.process.poll() is None:
        shown.process.kill()
        shown.process.wait(10)


def test_a_terminal_session_prompts_helps_and_keeps_the_log_out_of_the_chat(
        terminal: Terminal, tmp_path: Path, story_folder: Path) -> None:
    log = tmp_path / "bot.log"
    at = terminal.wait_for(f"The bot's log goes to {log}.")
    assert "an admin of this bot, so /broadcast works" in terminal.screen
    assert re.search(rf"\d+ stories from {re.escape(str(story_folder))} "
                     r"\(1 rejected: see the log\)\.", terminal.screen)
    at = terminal.wait_for(PROMPT, after=at)

    terminal.type(":frob\n")  # a typo of a : command is not sent to the bot as a search
    start = terminal.wait_for("unknown command :frob (not sent); the : commands are:",
                              after=at)
    at = terminal.wait_for("anything else is sent to the bot as your message", after=start)
    for command in (":press N", ":inline WORDS", ":wait SECONDS", ":help", ":quit"):
        assert command in terminal.screen[start:at]
    at = terminal.wait_for(PROMPT, after=at)

    terminal.type("/subscribe 08:00 Europe/Berlin\n")
    at = terminal.wait_for("Next briefing: 2 Apr 2025, 08:00 CEST.", after=at)
    at = terminal.wait_for(PROMPT, after=at)
    # Nobody types: the briefing arrives on its own, and the prompt is drawn again after it.
    pushed = terminal.wait_for("\r\x1b[Kbot> \x1b[1m☀️ Your briefing", after=at, within=30)
    terminal.wait_for(PROMPT, after=pushed)

    assert terminal.close() == 0
    assert "No stories match" not in terminal.screen  # :frob was never sent
    assert "story rejected" not in terminal.screen and "WARNING" not in terminal.screen
    assert "Traceback" not in terminal.screen
    assert "WARNING bot.telegram.refresh: story rejected bad-date.txt" in log.read_text()
