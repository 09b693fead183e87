"""The page's renderer against the sandbox's parser, for any Telegram HTML: every entity
becomes exactly one element holding exactly the text the entity covers (UTF-16 offsets,
so emoji do not shift them), and the text as a whole is the visible text, nothing added,
nothing taken as markup."""

from __future__ import annotations

import html
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sandbox.html import parse_html
from tests.browser.conftest import CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import Page

_TAGS = {
    "bold": "strong", "italic": "em", "underline": "u", "strikethrough": "s",
    "spoiler": "span", "code": "code", "pre": "pre", "text_link": "a",
    "blockquote": "blockquote", "expandable_blockquote": "blockquote",
}
_RENDER = """([text, entities]) => {
  const box = document.createElement("div");
  SandboxRender.renderEntities(box, text, entities);
  const made = [...box.querySelectorAll("*")].filter((n) => !(n.tagName === "CODE" &&
      n.parentElement.tagName === "PRE") && !n.classList.contains("command"));
  return { text: box.textContent,
           elements: made.map((n) => [n.tagName.toLowerCase(), n.textContent]) };
}"""

words = st.lists(st.sampled_from([*"ab <>&\"'\n", "😀", "é", "/x"]), min_size=1,
                max_size=8).map("".join)


def _leaf(text: str) -> str:
    return html.escape(text, quote=False)


def _wrap(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    simple = st.sampled_from(["b", "i", "u", "s", "tg-spoiler", "blockquote"])
    return st.one_of(
        st.builds(lambda tag, body: f"<{tag}>{body}</{tag}>", simple, inner),
        st.builds(lambda body: f'<a href="https://example.org/?q=1&amp;r=2">{body}</a>', inner),
        st.builds(lambda body: f"<blockquote expandable>{body}</blockquote>", inner),
        st.builds(lambda body: f"<code>{_leaf(body)}</code>", words),
        st.builds(lambda body: f'<pre><code class="language-py">{_leaf(body)}</code></pre>',
                  words),
        st.lists(inner, min_size=2, max_size=3).map("".join),
    )


telegram_html = st.recursive(words.map(_leaf), _wrap, max_leaves=8)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[offset * 2:(offset + length) * 2].decode("utf-16-le")


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        page.set_content("<!doctype html><div id='app'></div>")
        script = resources.files("bot.sandbox.web") / "static" / "app.js"
        page.add_script_tag(content=script.read_text(encoding="utf-8"))
        page.wait_for_function("() => window.SandboxRender !== undefined")
        yield page
        browser.close()


@settings(max_examples=80, deadline=None)
@given(source=telegram_html)
def test_each_entity_is_one_element_over_exactly_its_text(page: Page, source: str) -> None:
    parsed = parse_html(source)
    entities: list[dict[str, Any]] = list(parsed.entities)
    shown = page.evaluate(_RENDER, [parsed.text, entities])
    assert shown["text"] == parsed.text
    ordered = sorted(entities, key=lambda e: (e["offset"], -e["length"]))
    assert shown["elements"] == [
        [_TAGS[e["type"]], _utf16_slice(parsed.text, e["offset"], e["length"])]
        for e in ordered]


_LINKS = """(hrefs) => hrefs.map((href) => {
  const box = document.createElement("div");
  SandboxRender.renderEntities(box, "link", [{type: "text_link", offset: 0, length: 4, url: href}]);
  const node = box.firstChild;
  return [node.tagName.toLowerCase(), node.className, node.getAttribute("href"),
          node.dataset.start === undefined ? null : node.dataset.start];
})"""


def test_links_go_only_where_links_may_go(page: Page) -> None:
    shown = page.evaluate(_LINKS, [
        "javascript:window.__injected=1", "data:text/html,<script>1</script>",
        "https://example.org/a", "tg://resolve?domain=other_bot"])
    assert shown == [
        ["span", "link-refused", None, None],
        ["span", "link-refused", None, None],
        ["a", "", "https://example.org/a", None],
        ["a", "", "tg://resolve?domain=other_bot", None],
    ]  # deep links to the bot itself: test_web_chat.py follows one
