"""What a reader sees in the web chat, in headless Chromium: cards, buttons that press,
edits in place, story text that stays text, and what the bot pushes arriving live."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from playwright.async_api import Locator, Page, expect

from bot.sandbox.session import BotBriefingClock
from bot.sandbox.state import DEMO_USER_ID
from bot.sandbox.web import CONTENT_SECURITY_POLICY
from bot.sandbox.world import GROUP_ADMIN_ID, GROUP_ID, READER_ID
from tests.browser.conftest import ARTEFACTS, HOSTILE_TITLE, WebSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")
WAIT = 15_000  # ms: the bot's answer, through its rate limiter, on a loaded machine


async def say(page: Page, text: str) -> None:
    """Type ``text`` into the composer and send it, as a person does."""
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await expect(page.locator("#text")).to_have_value("", timeout=WAIT)


async def reply_to(page: Page, text: str) -> Locator:
    """Send ``text``; the bot's first message after it (earlier tests share the chat)."""
    replies = page.locator(".msg:not(.out)")
    before = await replies.count()
    await say(page, text)
    reply = replies.nth(before)
    await expect(reply).to_be_visible(timeout=WAIT)
    return reply


async def test_latest_shows_cards_with_bold_titles_and_buttons_that_work(
        web: WebSandbox) -> None:
    page = await web.page()
    card = await reply_to(page, "/latest")
    titles = card.locator(".text strong").filter(has_text=re.compile(r"^\d+\. "))
    assert await titles.count() == 5  # one bold title a card, the newest first
    first_title = (await titles.nth(0).inner_text()).removeprefix("1. ")
    assert first_title == HOSTILE_TITLE
    buttons = card.locator(".kb-button")
    assert "Older ›" in await buttons.all_inner_texts()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / "web-chat-latest.png"))

    second = (await titles.nth(1).inner_text()).removeprefix("2. ")
    replies = page.locator(".msg:not(.out)")
    before = await replies.count()
    await buttons.nth(1).click()  # card 2's button opens that story
    story = replies.nth(before)
    await expect(story).to_be_visible(timeout=WAIT)
    await expect(story.locator(".text strong").first).to_have_text(second, timeout=WAIT)
    await page.close()


async def test_older_edits_the_message_in_place(web: WebSandbox) -> None:
    page = await web.page()
    card = await reply_to(page, "/latest")
    await expect(card).to_contain_text("1–5 of")
    message_id = await card.get_attribute("data-id")
    count = await page.locator(".msg").count()
    await page.evaluate("document.querySelector('#messages').dataset.sameDocument = 'yes'")

    await card.get_by_role("button", name="Older ›").click()

    same = page.locator(f".msg[data-id='{message_id}']")
    await expect(same).to_contain_text("6–10 of", timeout=WAIT)
    await expect(same.locator(".edited")).to_have_text("edited")
    await expect(same.get_by_role("button", name="‹ Newer")).to_be_visible()
    assert await page.locator(".msg").count() == count  # replaced, not added
    assert await page.evaluate("document.querySelector('#messages').dataset.sameDocument") \
        == "yes"
    await page.close()


async def test_a_story_title_with_markup_renders_as_text_and_runs_nothing(
        web: WebSandbox) -> None:
    page = await web.page()
    response = await page.request.get(web.url)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    card = await reply_to(page, "/latest")
    title = card.locator(".text strong", has_text="Mayor")
    await expect(title).to_have_text(f"1. {HOSTILE_TITLE}", timeout=WAIT)
    messages = page.locator("#messages")
    assert await messages.locator("script").count() == 0
    assert await messages.locator("img").count() == 0
    assert await page.evaluate("typeof window.__injected") == "undefined"
    # The highlight's "<b>" is story text too: shown, not made bold.
    await expect(card.locator(".text")).to_contain_text("The <b>bridge</b> opened")
    await page.close()


async def test_a_briefing_arrives_live_after_a_clock_jump(web: WebSandbox) -> None:
    page = await web.page()
    subscribed = await reply_to(page, "/subscribe 08:00 UTC")
    await expect(subscribed).to_contain_text("Next briefing")
    due = await BotBriefingClock(web.sandbox.app).next_briefing(DEMO_USER_ID, None)
    assert due is not None

    await page.click("#clock-before-briefing")  # the clock control's own shortcut
    minute_before = (due - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
    await expect(page.locator("#clock-now")).to_contain_text(minute_before, timeout=WAIT)
    assert await page.locator(".msg", has_text="Your briefing").count() == 0

    await page.fill("#clock-input", (due + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S"))
    await page.click("#clock-jump")
    briefing = page.locator(".msg:not(.out)", has_text="Your briefing")
    await expect(briefing).to_be_visible(timeout=WAIT)  # pushed: the page was not reloaded
    await page.close()


async def test_a_broadcast_progress_message_updates_live(web: WebSandbox) -> None:
    server = web.sandbox.server
    for reader in (READER_ID, GROUP_ADMIN_ID):
        post = await server.user_message("/subscribe 21:00 UTC", user_id=reader)
        async with asyncio.timeout(15):
            while not web.sandbox.handled(post.update_id):  # noqa: ASYNC110 - the hook polls
                await asyncio.sleep(0.05)
    page = await web.page()
    await page.evaluate("window.__sameDocument = true")
    await reply_to(page, "/broadcast The bridge opens on Monday")
    preview = page.locator(".msg:not(.out)",
                           has=page.get_by_role("button", name="Cancel")).last
    await expect(preview).to_be_visible(timeout=WAIT)
    send = preview.locator(".kb-button").first
    await expect(send).to_contain_text("Send")
    await send.click()

    status = page.locator(".msg:not(.out)", has_text="Broadcast #").last
    # The status message becomes the progress bar, then the report: edits pushed live.
    await expect(status).to_contain_text(re.compile(r"ETA|done in"), timeout=WAIT)
    await expect(status.locator(".edited")).to_be_visible()
    assert await page.evaluate("window.__sameDocument") is True  # live, not reloaded
    await page.close()


async def test_the_composer_offers_commands_and_inline_results_and_deep_links_open_the_bot(
        web: WebSandbox) -> None:
    page = await web.page()
    await page.select_option("#acting-user", str(GROUP_ADMIN_ID))  # act as Gwen
    await expect(page.locator("#acting-role")).to_have_text("administrator of the groups")
    chats = page.locator("#chat-list .chat-item-title")
    await expect(chats).to_have_text(["Story Bot", "Reading Club", "Newsroom Forum"])
    await page.click(f"#chat-list li[data-chat-id='{GROUP_ID}']")  # Reading Club
    await expect(page.locator("#chat-title")).to_have_text("Reading Club")
    await page.fill("#text", "/lat")
    await expect(page.locator("#popup .item-title")).to_have_text(["/latest"], timeout=WAIT)

    await page.fill("#text", "@story_bot bridge")
    result = page.locator("#popup .item", has_text="Mayor")
    await expect(result.locator(".item-title")).to_have_text(HOSTILE_TITLE, timeout=WAIT)
    await result.click()
    sent = page.locator(".msg.out", has_text="via @story_bot").last
    await expect(sent).to_be_visible(timeout=WAIT)

    assert await sent.locator(".sender").inner_text() == "Gwen via @story_bot"
    await sent.get_by_role("link", name="Open the full story").click()  # a deep link
    await expect(page.locator("#chat-title")).to_have_text("Story Bot")
    await expect(page.locator(".msg.out").last).to_contain_text("/start ", timeout=WAIT)
    written = [m for m in web.sandbox.server.messages(GROUP_ADMIN_ID) if not m.from_bot]
    assert written[-1].text.startswith("/start ")  # sent as Gwen, in Gwen's chat
    story = page.locator(".msg:not(.out) .text strong", has_text="Mayor").last
    await expect(story).to_have_text(HOSTILE_TITLE, timeout=WAIT)
    await page.close()
