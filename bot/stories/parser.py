"""The story file parser: bytes in, a :class:`Story` or a :class:`StoryError` with its line.

It follows STORY_FORMAT.md rule by rule; the rule numbers appear in comments. The parser is
on the cold-load path for whole folders, so it makes one pass over the lines and uses plain
string operations where a regular expression is not needed.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.errors import StoryError
from bot.stories.model import Story
from bot.stories.naming import key_from_name
from bot.stories.timestamps import looks_like_timestamp, read_timestamp

__all__ = ["MAX_STORY_BYTES", "parse_story"]

MAX_STORY_BYTES = 1024 * 1024
_WHITE = " \t"
_RUNS = re.compile(r"[ \t]+")
_HEADINGS = ("highlights", "story", "opinions")
_FOOTERS = frozenset({"you've reached the end", "you’ve reached the end"})
_BULLETS = frozenset("•-*·")
_TITLE, _HIGHLIGHTS, _STORY, _OPINIONS = -1, 0, 1, 2


def _clean(text: str) -> str:
    """Rule 9: runs of space/tab become one space; no white space at either end."""
    if "  " in text or "\t" in text:  # the regex only when needed: this is the hot path
        text = _RUNS.sub(" ", text)
    return text.strip(_WHITE)


def _bullet_text(line: str) -> str | None:
    """Rule 5: the text of a bullet line, or None if the line is not a bullet."""
    body = line.lstrip(_WHITE)
    if len(body) > 2 and body[0] in _BULLETS and body[1] in _WHITE:
        return _clean(body[2:])
    return None


def _blocks(lines: list[str]) -> list[str]:
    """Rules 6 and 7: blank-line separated blocks, each joined with one space."""
    blocks: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            blocks.append(_clean(" ".join(current)))
            current = []
    if current:
        blocks.append(_clean(" ".join(current)))
    return blocks


def parse_story(data: bytes, name: str, tz: ZoneInfo) -> Story:
    """Parse one story file named ``name`` (relative to the story folder)."""
    story_id, key, seq = key_from_name(name.rsplit("/", 1)[-1])
    if len(data) > MAX_STORY_BYTES:
        raise StoryError(f"file too large ({len(data)} bytes; the limit is 1 MiB)")
    # Rule 1: UTF-8, BOM dropped, \r\n -> \n, split on \n only, trailing white space ignored.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoryError("not valid UTF-8", 1) from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = [line.rstrip(_WHITE) for line in text.split("\n")]

    first = next((i for i, line in enumerate(lines) if line), None)
    if first is None:
        raise StoryError("empty file", 1)

    # Rule 2: one or two timestamp lines; a third is an error.
    times: list[datetime] = []
    index = first
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
        raise StoryError("expected a timestamp like 'Mar 30, 2025, 12:01 AM'", first + 1)
    last_stamp_line = index  # 1-based line of the last timestamp

    title: list[str] = []
    sections: list[list[str]] = [[], [], []]
    highlights: list[str] = []
    section = _TITLE
    for number, line in enumerate(lines[index:], start=index + 1):
        stripped = line.lstrip(_WHITE)
        if len(stripped) <= 22:
            lowered = stripped.lower()
            if lowered in _FOOTERS:  # Rule 8: the footer ends the story.
                if section == _TITLE and not title:
                    raise StoryError("missing title", number)
                break
            if lowered in _HEADINGS:  # Rule 4: each heading once, in order.
                position = _HEADINGS.index(lowered)
                if position <= section:
                    raise StoryError(f"heading {stripped!r} repeated or out of order", number)
                if section == _TITLE and not title:
                    raise StoryError("missing title", number)
                section = position
                continue
        if section == _TITLE:
            if line:
                title.append(line)
        elif section == _HIGHLIGHTS:
            if not line:
                continue
            bullet = _bullet_text(line)
            if bullet is not None:
                highlights.append(bullet)
            elif highlights:
                highlights[-1] = _clean(f"{highlights[-1]} {line}")
            else:
                raise StoryError("text before the first highlight bullet", number)
        else:
            sections[section].append(line)
    else:
        if section == _TITLE and not title:
            raise StoryError("missing title", last_stamp_line)

    paragraphs = _blocks(sections[_STORY])
    if not highlights and not paragraphs:  # Rule 10.
        raise StoryError("no highlights and no story text", 1)
    return Story(
        id=story_id,
        key=key,
        seq=seq,
        title=_clean(" ".join(title)),
        published=min(times),
        updated=max(times),
        highlights=tuple(highlights),
        story=tuple(paragraphs),
        opinions=tuple(_blocks(sections[_OPINIONS])),
        source=name,
    )
