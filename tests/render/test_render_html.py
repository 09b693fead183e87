"""Escaping, UTF-16 measurement, entity counting and the validity check."""

from __future__ import annotations

import pytest

from bot.render import count_entities, escape, message_problems, utf16_len, visible_text
from bot.render.html import visible_length


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<b>&", "&lt;b&gt;&amp;"),
        ('AT&T\'s "deal"', 'AT&amp;T\'s "deal"'),
        ("&amp;", "&amp;amp;"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_escape_shows_text_literally(text: str, escaped: str) -> None:
    assert escape(text) == escaped
    assert visible_text(escape(text)) == text


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("abc", 3),
        ("é", 1),
        ("e\u0301", 2),
        ("👍", 2),
        ("👍🏽", 4),
        ("🇩🇪", 4),
        ("👨‍👩‍👧‍👦", 11),
        ("€", 1),
        ("", 0),
    ],
)
def test_utf16_len_counts_code_units(text: str, units: int) -> None:
    assert utf16_len(text) == units


@pytest.mark.parametrize(
    ("html", "length", "entities"),
    [
        ("<b>1. Title</b>\nbody", 13, 1),
        ("&lt;b&gt;&amp;", 4, 0),
        ("<blockquote expandable>a\n\nb</blockquote>", 4, 1),
        ("<b><i>👍</i></b>", 2, 2),
        ('<a href="https://example.org/?a=1&amp;b=2">x</a>', 1, 1),
    ],
)
def test_visible_length_and_entities(html: str, length: int, entities: int) -> None:
    assert visible_length(html) == length
    assert count_entities(html) == entities


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<b>x</b>", None),
        ("<blockquote expandable>x</blockquote>", None),
        ("<tg-spoiler>x</tg-spoiler><s>y</s><u>z</u><code>c</code><pre><code>p</code></pre>", None),
        ("<div>x</div>", "not allowed"),
        ("<b>x", "unclosed"),
        ("<b><i>x</b></i>", "does not close"),
        ("x</b>", "does not close"),
        ("a < b", "unescaped"),
        ("a & b", "unescaped"),
        ("&nbsp;", "unescaped"),
        ('<b class="x">y</b>', "attribute"),
        ("<blockquote>a<blockquote>b</blockquote></blockquote>", "blockquote inside"),
        ("<code><b>x</b></code>", "inside <code>"),
        ("<b></b>", "no visible text"),
        ("   ", "no visible text"),
        ("x" * 4097, "limit 4096"),
        ("<b>x</b>" * 101, "101 entities"),
    ],
)
def test_message_problems(html: str, problem: str | None) -> None:
    problems = message_problems(html)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_message_problems_counts_utf16_units() -> None:
    assert message_problems("👍" * 2048) == []
    assert message_problems("👍" * 2049) != []
    assert message_problems("x" * 50, limit=40) != []
