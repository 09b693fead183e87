"""The story file parser: bytes in, a :class:`Story` or a :class:`StoryError` with its line.

It follows STORY_FORMAT.md rule by rule; the rule numbers appear in comments. The parser is
on the cold-load path for whole folders, so it is written for CPython's costs:

- A story in the usual layout is recognised by one regular expression, which runs in C;
  its highlights, paragraphs and opinions are normalised only when first used.
- Any other text is read by the rules: it is split into lines once, one cheap pass finds
  the headings and the footer, and each section is read from its slice of lines. Errors
  come in line order, because each section is read before the heading that ends it is
  checked.

A property test checks that the two ways give the same story wherever the first applies.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from bot.errors import StoryError
from bot.stories.model import Story, StoryBody
from bot.stories.naming import key_from_name
from bot.stories.timestamps import looks_like_timestamp, read_timestamp

__all__ = ["MAX_STORY_BYTES", "parse_story"]

MAX_STORY_BYTES = 1024 * 1024
_WHITE = " \t"
_RUNS = re.compile(r"[ \t]{2,}|\t")
_BULLETS = frozenset("•-*·")
_TITLE, _HIGHLIGHTS, _STORY, _OPINIONS, _FOOTER = -1, 0, 1, 2, 3
# Rules 4 and 8: a line that is one of these once white space is removed, in any case.
_MARKS = {
    "highlights": _HIGHLIGHTS,
    "story": _STORY,
    "opinions": _OPINIONS,
    "you've reached the end": _FOOTER,
    "you’ve reached the end": _FOOTER,
}
_USUAL_MARKS = {"Highlights": _HIGHLIGHTS, "Story": _STORY, "Opinions": _OPINIONS,
                "You've reached the end": _FOOTER, **_MARKS}  # looked up as they are
_LONGEST_MARK = max(map(len, _MARKS))

# The usual layout: the timestamps on the first lines, an empty line, the title, then
# Highlights (bullets only), Story, optional Opinions and an optional footer; each heading
# alone on its line, no line of only white space. Text lines are never headings: the
# lookahead refuses a heading in any case or spacing (ASCII case-insensitivity is exactly
# `line.lower() == word` for these words; Unicode's would also take "ſtory").
_STAMP = (r"[ \t]*[A-Za-z]+[ \t]+[0-9]{1,2},[ \t]*[0-9]{4},[ \t]*[0-9]{1,2}:[0-9]{2}"
          r"[ \t]*[AaPp][Mm][ \t]*")
_NOT_MARK = r"(?![ \t]*(?:highlights|story|opinions|you['’]ve reached the end)[ \t]*\n)"
_TEXT_LINE = _NOT_MARK + r"[ \t]*[^ \t\n][^\n]*"  # a line with some text
_TYPICAL = re.compile(
    rf"(?P<first>{_STAMP})\n(?:(?P<second>{_STAMP})\n)?\n+"
    rf"(?P<title>{_TEXT_LINE}(?:\n{_TEXT_LINE})*)\n\n*"
    r"highlights\n(?P<highlights>(?:[ \t]*[•*·-][ \t]+[^ \t\n][^\n]*\n)+)\n*"
    rf"story\n(?P<story>(?:\n|{_TEXT_LINE}\n)*)"
    rf"(?:opinions\n(?P<opinions>(?:\n|{_TEXT_LINE}\n)*))?"
    r"(?:you['’]ve reached the end\n[\s\S]*)?",
    re.IGNORECASE | re.ASCII,
)


def _clean(text: str) -> str:
    """Rule 9: each run of white space becomes one space; no white space at either end."""
    text = text.strip(_WHITE)
    if "  " in text or "\t" in text:  # the regex only when needed: this is the hot path
        text = _RUNS.sub(" ", text)
    return text


def _blocks(lines: list[str]) -> list[str]:
    """Rules 6 and 7: blank-line separated blocks, each joined with one space."""
    blocks: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip(_WHITE):
            current.append(line)
        elif current:
            blocks.append(_clean(" ".join(current)))
            current = []
    if current:
        blocks.append(_clean(" ".join(current)))
    return blocks


def _highlights(lines: list[str], first: int) -> list[str]:
    """Rule 5: the bullets of a highlights section whose first line is number ``first``."""
    bullets: list[str] = []
    for number, line in enumerate(lines, first):
        body = line.strip(_WHITE)
        if not body:
            continue
        if len(body) > 2 and body[0] in _BULLETS and body[1] in _WHITE:
            bullets.append(body[2:])
        elif bullets:
            bullets[-1] = f"{bullets[-1]} {body}"
        else:
            raise StoryError("text before the first highlight bullet", number)
    return [_clean(bullet) for bullet in bullets]


def _timestamps(lines: list[str], tz: ZoneInfo) -> tuple[list[datetime], int]:
    """Rule 2: the times of the timestamp lines and the index of the line after them."""
    index = 0
    while not lines[index].strip(_WHITE):
        index += 1
        if index == len(lines):
            raise StoryError("empty file", 1)
    times: list[datetime] = []
    while index < len(lines) and (shape := looks_like_timestamp(lines[index])):
        if len(times) == 2:
            raise StoryError("more than two timestamp lines", index + 1)
        moment = read_timestamp(shape, tz)
        if moment is None:
            raise StoryError(f"not a real date or time: {lines[index].strip(_WHITE)!r}",
                             index + 1)
        times.append(moment)
        index += 1
    if not times:
        raise StoryError("expected a timestamp like 'Mar 30, 2025, 12:01 AM'", index + 1)
    return times, index


def _marks(lines: list[str], start: int) -> list[tuple[int, int]]:
    """``(line index, section)`` of every heading from ``start`` on, then of the end: the
    first footer, else a footer just past the last line."""
    marks: list[tuple[int, int]] = []
    for index, line in enumerate(lines[start:], start):
        # A long line with no white space at either end is text; most lines are.
        if len(line) > _LONGEST_MARK and line[0] not in _WHITE and line[-1] not in _WHITE:
            continue
        kind = _USUAL_MARKS.get(line)
        if kind is None:
            if not line:
                continue
            kind = _MARKS.get(line.strip(_WHITE).lower())
            if kind is None:
                continue
        marks.append((index, kind))
        if kind == _FOOTER:  # Rule 8: the footer ends the story.
            return marks
    marks.append((len(lines), _FOOTER))
    return marks


def _typical_texts(highlights: str, story: str, opinions: str | None
                   ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Rules 5, 6, 7 and 9 on the sections of a story in the usual layout."""
    bullets = tuple(_clean(line.strip(_WHITE)[2:]) for line in highlights.split("\n")[:-1])
    return (bullets, tuple(_blocks(story.split("\n"))),
            tuple(_blocks(opinions.split("\n"))) if opinions else ())


def _moment(line: str, tz: ZoneInfo) -> datetime | None:
    shape = looks_like_timestamp(line)
    return read_timestamp(shape, tz) if shape else None


def _typical(text: str, tz: ZoneInfo) -> tuple[str, datetime, datetime, StoryBody] | None:
    """Title, times and (deferred) body of a story in the usual layout, else None."""
    match = _TYPICAL.fullmatch(text if text.endswith("\n") else f"{text}\n")
    if match is None:
        return None
    first, second, title = match.group("first", "second", "title")
    published = _moment(first, tz)
    updated = published if second is None or second == first else _moment(second, tz)
    if published is None or updated is None:
        return None  # not a real time: the rules name the line
    if updated < published:
        published, updated = updated, published
    body = StoryBody.deferred(partial(_typical_texts, *match.group(
        "highlights", "story", "opinions")))
    return _clean(title.replace("\n", " ")), published, updated, body


def parse_story(data: bytes, name: str, tz: ZoneInfo) -> Story:
    """Parse one story file named ``name`` (relative to the story folder)."""
    story_id, key, seq = key_from_name(name.rsplit("/", 1)[-1])
    if len(data) > MAX_STORY_BYTES:
        raise StoryError(f"file too large ({len(data)} bytes; the limit is 1 MiB)")
    # Rule 1: UTF-8, BOM dropped, \r\n -> \n, split on \n only.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoryError("not valid UTF-8", 1) from exc
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    typical = _typical(text, tz)
    if typical is not None:
        return Story(story_id, key, seq, *typical, name)
    return Story(story_id, key, seq, *_by_the_rules(text, tz), name)


def _by_the_rules(text: str, tz: ZoneInfo) -> tuple[str, datetime, datetime, StoryBody]:
    """Title, times and body of any story text, line by line, rule by rule."""
    lines = text.split("\n")
    times, after = _timestamps(lines, tz)
    title = ""
    highlights: list[str] = []
    sections: list[list[str]] = [[], [], []]
    section, start = _TITLE, after
    for index, kind in _marks(lines, after):
        if section == _TITLE:
            title = _clean(" ".join(lines[start:index]))
            if not title:  # Rule 3: on the first heading or footer, else the last timestamp.
                raise StoryError("missing title", index + 1 if index < len(lines) else after)
        elif section == _HIGHLIGHTS:
            highlights = _highlights(lines[start:index], start + 1)
        else:
            sections[section] = lines[start:index]
        if kind == _FOOTER:
            break
        if kind <= section:  # Rule 4: each heading once, in order.
            heading = lines[index].strip(_WHITE)
            raise StoryError(f"heading {heading!r} repeated or out of order", index + 1)
        section, start = kind, index + 1

    paragraphs = _blocks(sections[_STORY])
    if not highlights and not paragraphs:  # Rule 10.
        raise StoryError("no highlights and no story text", 1)
    return title, min(times), max(times), StoryBody(
        tuple(highlights), tuple(paragraphs), tuple(_blocks(sections[_OPINIONS])))
