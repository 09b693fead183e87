"""The web chat in a real browser: Debian's headless Chromium driven by Playwright.

Why Playwright rather than Selenium: its async API runs on the test's own event loop, next
to the in-process sandbox and bot, so one loop drives server, bot and browser with no
threads; its locators wait for what a reader would wait for (``expect(...)`` retries
until the page shows it), so no test sleeps; and it talks to the browser over the
DevTools protocol, with no driver binary to match. It never downloads a browser here:
``executable_path`` points at ``/usr/bin/chromium`` (``playwright install`` is never run).

Without that browser or package every test here is skipped, with the reason shown.
One sandbox, bot and browser per module (they take about a second to start); each test
opens its own page.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from bot.config import Settings, StoriesSettings
from bot.sandbox.session import RunningSandbox, running_sandbox
from tests.conftest import STORIES

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
#: Screenshots kept for people to look at (git-ignored).
ARTEFACTS = ROOT / "tmp" / "artefacts"
#: The sandbox's clock at the start: the morning after the sample stories.
START = datetime(2025, 4, 2, 7, 0, tzinfo=UTC)
HOSTILE_TITLE = ('Mayor <script>window.__injected = "script"</script> opens '
                 '<img src=x onerror="window.__injected = \'img\'"> the bridge')
_HOSTILE_STORY = f"""Apr 2, 2025, 6:00 AM
Apr 2, 2025, 6:00 AM

{HOSTILE_TITLE}

Highlights
  • The <b>bridge</b> opened at dawn & the mayor spoke.
Story

The bridge over the river opened this morning after three years of work.

Opinions

You've reached the end"""


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"no browser: {CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return ("no browser driver: the playwright package is not installed "
                "(pip install -e '.[dev]')")
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class WebSandbox:
    """The sandbox (with the web chat and its world), the bot, and a browser."""

    sandbox: RunningSandbox
    browser: Browser

    @property
    def url(self) -> str:
        return self.sandbox.server.web_url

    async def page(self) -> Page:
        """A fresh page showing the web chat, ready (the chat list and its chat loaded)."""
        page = await self.browser.new_page(viewport={"width": 1100, "height": 820})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(self.url)
        await page.wait_for_selector("body[data-ready='1']")
        assert not errors, errors
        return page


def story_folder_with_hostile_title(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source in STORIES.glob("*.txt"):
        shutil.copy(source, folder / source.name)
    (folder / "099_deadbeefdeadbeef.txt").write_text(_HOSTILE_STORY, encoding="utf-8")
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WebSandbox]:
    from playwright.async_api import async_playwright

    base = tmp_path_factory.mktemp("web")
    folder = story_folder_with_hostile_title(base / "stories")
    settings = replace(Settings(), stories=replace(StoriesSettings(), folder=folder))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PTB_TIMEDELTA", "true")  # PTB 22 warns otherwise; warnings are errors
        async with running_sandbox(settings, base, now=START, web=True) as sandbox, \
                async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
            try:
                yield WebSandbox(sandbox, browser)
            finally:
                await browser.close()
