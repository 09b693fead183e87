"""Shared helpers: a story factory and checks every rendered part must pass.

The grapheme check here is written independently of ``bot.render.split`` so a bug there
is not mirrored in the test.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from hypothesis import strategies as st

from bot.render import count_entities, message_problems, utf16_len, visible_text
from bot.stories.model import Story, StoryBody

FAMILY = "👨‍👩‍👧"  # 8 UTF-16 units, one grapheme
FLAGS = "🇩🇪🇫🇷"
SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
ATOMS = st.sampled_from(
    [
        " ", " ", "\n", "\n\n", ". ", "! ", "word", "Wort", "<b>", "&amp;", "&", '"', "'",
        "e\u0301", "n\u0303\u0323", FAMILY, "👨‍👩‍👧‍👦", "👍🏽", "❤️", "#️⃣", FLAGS, "🇯🇵",
        SCOTLAND, "\u00a0", "日本語", "한국어", "\u0915\u093f", "\r\n", "\u2028",
    ]
)  # fmt: skip
# Arbitrary story text, rich in what breaks renderers: markup characters, emoji sequences,
# combining marks, no-break and odd spaces, mixed with arbitrary characters.
TEXT = st.lists(ATOMS | st.text(max_size=4), max_size=60).map("".join)

T0 = datetime(2025, 3, 31, 9, 15, tzinfo=UTC)


def make_story(**fields: Any) -> Story:
    """A small valid story; keyword arguments replace any field."""
    values: dict[str, Any] = {
        "id": "001_5f0c2a9e41d7b3c8",
        "key": "5f0c2a9e41d7b3c8",
        "seq": 1,
        "title": "Central bank holds rates",
        "published": datetime(2025, 3, 31, 7, 40, tzinfo=UTC),
        "updated": T0,
        "highlights": ("Rates stay at 4.25%.", "Inflation fell to 2.8%."),
        "story": ("First paragraph.", "Second paragraph."),
        "opinions": ("An opinion.",),
        "source": "001_5f0c2a9e41d7b3c8.txt",
    }
    values.update(fields)
    texts = (values.pop("highlights"), values.pop("story"), values.pop("opinions"))
    return Story(**values, body=StoryBody(*texts))


class _Recorder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def assert_valid_part(part: str, *, limit: int = 4096, max_entities: int = 100) -> None:
    """The part passes the renderer's own check and parses cleanly with the stdlib parser."""
    assert message_problems(part, limit=limit, max_entities=max_entities) == [], part
    recorder = _Recorder()
    recorder.feed(part)
    recorder.close()
    assert recorder.errors == [] and recorder.stack == [], part
    assert "".join(recorder.data) == visible_text(part)
    assert utf16_len(visible_text(part)) <= limit
    assert count_entities(part) <= max_entities
    assert visible_text(part).strip()


def _extends(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or unicodedata.combining(char) > 0
        or code in (0x200D, 0x200C)
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def grapheme_starts(text: str) -> set[int]:
    """Start offsets of the (approximate) grapheme clusters of ``text``, plus its end."""
    starts = {0, len(text)}
    flags_before = 0  # regional indicators in a row just before i
    for i in range(1, len(text)):
        before, char = text[i - 1], text[i]
        flags_before = flags_before + 1 if _regional(before) else 0
        joined = (
            _extends(char)
            or before == "\u200d"
            or (before, char) == ("\r", "\n")
            or (_regional(char) and flags_before % 2 == 1)
        )
        if not joined:
            starts.add(i)
    return starts


def strip_footer(text: str, index: int, count: int) -> str:
    """The visible text of part ``index`` without its "(i/n)" footer."""
    if count == 1:
        return text
    footer = f"\n\n({index}/{count})"
    assert text.endswith(footer), text[-40:]
    return text[: -len(footer)]


def assert_covers(parts: list[str], reference: str, starts: Iterable[int] = ()) -> None:
    """The parts' visible texts, in order, are ``reference`` cut at grapheme boundaries,
    with only white space dropped at the cuts: nothing lost, nothing duplicated.

    ``starts`` are offsets where a separately rendered block begins: a boundary even when
    the block opens with a character that would join the separator before it."""
    boundaries = grapheme_starts(reference) | set(starts)
    pos = 0
    for index, part in enumerate(parts, start=1):
        # Telegram trims a message's outer white space, so it may differ at the cuts
        text = strip_footer(visible_text(part), index, len(parts)).strip()
        while pos < len(reference) and reference[pos].isspace():
            pos += 1
        assert reference.startswith(text, pos), (index, text[:60], reference[pos : pos + 60])
        assert pos in boundaries and pos + len(text) in boundaries, (index, pos)
        pos += len(text)
    assert not reference[pos:].strip(), reference[pos : pos + 60]


def max_cluster_units(text: str) -> int:
    """UTF-16 size of the biggest grapheme cluster of ``text``."""
    starts = sorted(grapheme_starts(text))
    return max((utf16_len(text[a:b]) for a, b in itertools.pairwise(starts)), default=0)
