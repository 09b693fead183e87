"""Web chat responsiveness with a long chat: prints one JSON object of named figures.

A sandbox server with the web chat (in this process) holds a private chat of
``--messages`` messages (by default 2,000: half the reader's, half the bot's card-like
HTML with bold titles, italics, links, a blockquote and an inline keyboard). Headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) then, ``--runs`` times
in a fresh browser context each (nothing cached):

* ``cold_load_ms``: from the navigation's start to the chat's last message being on
  screen (read in the page: ``performance.now()`` at the first frame that shows it);
* ``scroll_older_ms``: from scrolling the message list to its top to the older page of
  messages being in the list and painted (the next animation frame).

The figures are medians over the runs (``runs`` holds each). The page renders the newest
200 messages and loads 200 older ones at a time. The issue's limits: 1,000 ms and 200 ms.

Run from the repository root: python benchmarks/web_chat.py [--messages 2000 --runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import ROOT, rnd

CHROMIUM = "/usr/bin/chromium"
COLD_LOAD_LIMIT_MS = 1000.0
SCROLL_LIMIT_MS = 200.0
CHAT_ID = 100001

_LAST_SHOWN = """(last) => {
  const node = document.querySelector(`.msg[data-id="${last}"]`);
  if (!node) return false;
  const box = node.getBoundingClientRect();
  return box.height > 0 && box.bottom <= window.innerHeight + 1 ? performance.now() : false;
}"""

_SCROLL_UP = """() => new Promise((resolve) => {
  const box = document.getElementById("messages");
  const first = box.querySelector(".msg").dataset.id;
  const watcher = new MutationObserver(() => {
    if (box.querySelector(".msg").dataset.id !== first) {
      watcher.disconnect();
      requestAnimationFrame(() => resolve(performance.now() - began));
    }
  });
  watcher.observe(box, { childList: true });
  const began = performance.now();
  box.scrollTop = 0;
})"""


def _card(n: int) -> str:
    return (
        f"📰 <b>Latest stories</b>\n\n<b>{n}. Night trains return to the northern line "
        f"after a six-year pause</b>\n<i>Updated 1 Apr 2025, 19:05 UTC</i>\n"
        "• A sleeper service between Valmere and Port Ismer restarts on May 2 &amp; runs "
        "three times a week.\n• Tickets start at €39 for a seat.\n"
        f"<blockquote expandable>Operations will be reviewed after one year.</blockquote>\n"
        f'Full story: <a href="https://t.me/story_bot?start=s_{n}">/story_{n:08x}</a> '
        f"<code>#{n}</code>"
    )


async def _fill(server: Any, messages: int) -> int:
    """``messages`` messages in the demo chat; the last one's id."""
    from bot.sandbox.params import Params

    keyboard = json.dumps({"inline_keyboard": [
        [{"text": f"📖 {i}", "callback_data": f"s:{i}"} for i in range(1, 6)],
        [{"text": "Older ›", "callback_data": "o:1"}]]})
    last = 0
    for n in range(messages):
        if n % 2 == 0:
            post = await server.user_message(f"/latest page {n}", user_id=CHAT_ID)
            last = post.message.message_id
        else:
            sent = await server.bot_api.call("sendMessage", Params({
                "chat_id": CHAT_ID, "text": _card(n), "parse_mode": "HTML",
                "reply_markup": keyboard}))
            last = int(sent["message_id"])
    server.state.pending.clear()  # no bot reads these updates
    return last


async def _measure(url: str, last: int, runs: int) -> tuple[list[float], list[float]]:
    from playwright.async_api import async_playwright

    cold: list[float] = []
    scroll: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            for _ in range(runs):
                context = await browser.new_context(viewport={"width": 1100, "height": 820})
                page = await context.new_page()
                await page.goto(f"{url}#user={CHAT_ID}&chat={CHAT_ID}", wait_until="commit")
                shown = await page.wait_for_function(_LAST_SHOWN, arg=last, polling="raf",
                                                     timeout=30_000)
                cold.append(float(await shown.json_value()))
                await page.wait_for_selector("body[data-ready='1']")
                scroll.append(float(await page.evaluate(_SCROLL_UP)))
                await context.close()
        finally:
            await browser.close()
    return cold, scroll


async def _run(messages: int, runs: int) -> dict[str, Any]:
    from bot.sandbox import SandboxOptions, SandboxServer
    from bot.sandbox.web import WebChat
    from bot.sandbox.world import PEOPLE, populate_world

    server = SandboxServer(SandboxOptions())
    server.web_chat = WebChat(server, {p.id: p.role for p in PEOPLE})
    populate_world(server)
    async with server:
        began = time.perf_counter()
        last = await _fill(server, messages)
        filled = time.perf_counter() - began
        cold, scroll = await _measure(server.web_url, last, runs)
    cold_median = statistics.median(cold)
    scroll_median = statistics.median(scroll)
    return {
        "benchmark": "web_chat",
        "messages": messages,
        "runs": runs,
        "browser": CHROMIUM,
        "cold_load_ms": rnd(cold_median, 1),
        "scroll_older_ms": rnd(scroll_median, 1),
        "cold_load_runs_ms": [rnd(v, 1) for v in cold],
        "scroll_older_runs_ms": [rnd(v, 1) for v in scroll],
        "limits_ms": {"cold_load": COLD_LOAD_LIMIT_MS, "scroll_older": SCROLL_LIMIT_MS},
        "within_limits": cold_median <= COLD_LOAD_LIMIT_MS and scroll_median <= SCROLL_LIMIT_MS,
        "fill_seconds": rnd(filled, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/web_chat.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(json.dumps({"benchmark": "web_chat", "error": f"{CHROMIUM} is not installed"}))
        return 1
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    print(json.dumps(asyncio.run(_run(args.messages, args.runs))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
