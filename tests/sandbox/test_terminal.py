"""The terminal formatter and the HTML parser: tables plus hypothesis properties."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.sandbox.html import HtmlParseError, command_entities, parse_html, utf16_len
from bot.sandbox.state import MessageVersion, StoredMessage
from bot.sandbox.terminal import format_buttons, format_html, format_message, format_version

TAGS = ["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "tg-spoiler"]
TAG_RE = re.compile(r"</?[a-z][a-z-]*(\s[^<>]*)?>")


def bot_message(html_text: str, rows: list[list[dict[str, str]]] | None = None) -> StoredMessage:
    parsed = parse_html(html_text)
    return StoredMessage(
        chat_id=1,
        message_id=1,
        date=0,
        from_bot=True,
        sender_id=2,
        text=parsed.text,
        html=html_text,
        entities=parsed.entities,
        reply_markup={"inline_keyboard": rows} if rows else None,
    )


@pytest.mark.parametrize(
    ("source", "plain", "ansi"),
    [
        ("<b>Bold</b> text", "**Bold** text", "\x1b[1mBold\x1b[22m text"),
        ("<i>it</i>", "_it_", "\x1b[3mit\x1b[23m"),
        ('<a href="https://x.org/?a=1&amp;b=2">read</a>', "read (https://x.org/?a=1&b=2)", None),
        ('<a href="https://x.org">https://x.org</a>', "https://x.org", None),
        ("&lt;tag&gt; &amp; &quot;q&quot; &#65;", '<tag> & "q" A', None),
        ("Intro\n<blockquote>line 1\nline 2</blockquote>", "Intro\n│ line 1\n│ line 2", None),
        ("<blockquote expandable>q</blockquote>", "│ q", None),
    ],
)
def test_format_html_table(source: str, plain: str, ansi: str | None) -> None:
    assert format_html(source) == plain
    if ansi is not None:
        assert format_html(source, ansi=True) == ansi


def test_buttons_are_numbered_across_the_keyboard() -> None:
    rows = [
        [{"text": "‹ Newer", "callback_data": "n"}, {"text": "Older ›", "callback_data": "o"}],
        [{"text": "Site", "url": "https://example.org"}],
    ]
    message = bot_message("<b>Title</b>", rows)
    assert format_message(message) == (
        "**Title**\n[1] ‹ Newer  [2] Older ›\n[3] Site (https://example.org)"
    )
    assert format_buttons([]) == ""


def test_each_version_of_a_message_is_shown_as_it_was() -> None:
    """An edit can change the text, the markup or only the buttons: a version shows what
    that version had, and a photo stays a photo."""
    original = MessageVersion(text="Sending", html="<b>Sending</b>", entities=(),
                              reply_markup={"inline_keyboard": [[{"text": "Cancel",
                                                                  "callback_data": "c"}]]},
                              date=0)
    done = MessageVersion(text="Done", html=None, entities=(), reply_markup=None, date=1)
    assert format_version(original) == "**Sending**\n[1] Cancel"
    assert format_version(done) == "Done"
    assert format_version(done, photo=True) == "[photo] Done"
    message = bot_message("<i>Now</i>", [[{"text": "Older ›", "callback_data": "o"}]])
    message.edits.append(original)
    assert format_message(message) == "_Now_\n[1] Older ›"  # the current version


safe_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@st.composite
def telegram_html(draw: st.DrawFn) -> tuple[str, str, str]:
    """Valid Telegram HTML, its visible text, and what the terminal shows minus styling."""
    pieces: list[tuple[str, str, str]] = []
    for _ in range(draw(st.integers(0, 5))):
        text = draw(safe_text)
        tag = draw(st.sampled_from([*TAGS, "a", None]))
        escaped = html.escape(text, quote=draw(st.booleans()))
        if tag is None:
            pieces.append((escaped, text, text))
        elif tag == "a":
            url = f"https://e.org/{len(text)}"
            shown = text if text == url else f"{text} ({url})"
            pieces.append((f'<a href="{url}">{escaped}</a>', text, shown))
        else:
            pieces.append((f"<{tag}>{escaped}</{tag}>", text, text))
    return tuple("".join(p[i] for p in pieces) for i in range(3))  # type: ignore[return-value]


ANSI_RE = re.compile(r"\x1b\[[0-9]+m")


@given(telegram_html())
def test_formatter_unescapes_and_never_shows_a_tag(sample: tuple[str, str, str]) -> None:
    source, visible, expected = sample
    assert parse_html(source).text == visible
    # With ANSI styling, removing the escape codes leaves exactly the visible text (plus
    # link targets): every entity is unescaped and no tag survives.
    assert ANSI_RE.sub("", format_html(source, ansi=True)) == expected
    plain = format_html(source)
    if not TAG_RE.search(visible):
        assert TAG_RE.search(plain) is None


@given(st.text(max_size=200), st.booleans())
def test_formatter_never_crashes(source: str, ansi: bool) -> None:
    assert isinstance(format_html(source, ansi=ansi), str)


@given(st.text(max_size=200))
def test_parser_either_parses_or_raises_telegram_error(source: str) -> None:
    try:
        parsed = parse_html(source)
    except HtmlParseError as err:
        assert str(err).startswith("can't parse entities: ")
    else:
        for entity in parsed.entities:
            assert entity["offset"] >= 0
            assert entity["offset"] + entity["length"] <= utf16_len(parsed.text)


def test_parser_entities_use_utf16_offsets() -> None:
    parsed = parse_html("😀 <b>x</b>")
    assert parsed.entities == ({"type": "bold", "offset": 3, "length": 1},)


def test_command_entities() -> None:
    assert command_entities("/start") == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert command_entities("not/acommand") == []
    assert command_entities("😀 /help@story_bot")[0]["offset"] == 3
