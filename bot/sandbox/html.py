"""Telegram-HTML parsing as the Bot API does it: visible text plus message entities.

Telegram accepts a small, fixed set of tags and only four named character references;
anything else makes the whole request fail with ``can't parse entities``. The sandbox
uses this parser to reject exactly what Telegram would reject and to store what a user
actually sees. Offsets and lengths are in UTF-16 code units, like the real API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HtmlParseError",
    "ParsedText",
    "command_entities",
    "parse_html",
    "plain_text",
    "utf16_len",
]

# Tag name -> entity type. ``a``, ``code``, ``pre``, ``span``, ``blockquote`` and
# ``tg-emoji`` are refined by their attributes below.
_TAG_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES: dict[str, str] = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^<>]*?)?)\s*(/?)>", re.DOTALL)
_ATTR_RE = re.compile(
    r"""([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
_COMMAND_RE = re.compile(r"(?<![^\s])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![^\s])")
_PREFIX = "can't parse entities: "


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(err)`` is Telegram's own wording."""

    def __init__(self, detail: str) -> None:
        super().__init__(_PREFIX + detail)
        self.detail = detail


@dataclass(frozen=True)
class ParsedText:
    """What a user sees: the visible text and its entities (Bot API ``MessageEntity`` dicts).

    ``entity_count`` counts every entity found, even beyond the 100 Telegram displays.
    """

    text: str
    entities: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    entity_count: int = 0

    @property
    def length(self) -> int:
        """Length of the visible text in UTF-16 code units (what Telegram limits)."""
        return utf16_len(self.text)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: characters outside the BMP (most emoji) count 2."""
    return len(text.encode("utf-16-le")) // 2


def plain_text(text: str) -> ParsedText:
    """A message sent without ``parse_mode``: the text is shown as is."""
    return ParsedText(text=text)


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _decode_entities(chunk: str, source: str, start: int) -> str:
    """Replace character references in ``chunk``; unknown named ones are an error."""
    out: list[str] = []
    pos = 0
    for match in _ENTITY_RE.finditer(chunk):
        out.append(chunk[pos : match.start()])
        name = match.group(1)
        if name.startswith(("#x", "#X")):
            code = int(name[2:], 16)
        elif name.startswith("#"):
            code = int(name[1:])
        elif name in _NAMED_ENTITIES:
            out.append(_NAMED_ENTITIES[name])
            pos = match.end()
            continue
        else:
            offset = _byte_offset(source, start + match.start())
            raise HtmlParseError(f'unsupported HTML entity "&{name};" at byte offset {offset}')
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            offset = _byte_offset(source, start + match.start())
            raise HtmlParseError(f"invalid character reference at byte offset {offset}")
        out.append(chr(code))
        pos = match.end()
    out.append(chunk[pos:])
    return "".join(out)


@dataclass
class _Open:
    tag: str
    entity: dict[str, Any]
    start: int  # UTF-16 offset of the entity start
    source_index: int


def _attributes(raw: str, source: str, start: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTR_RE.finditer(raw):
        value = next((g for g in match.group(2, 3, 4) if g is not None), "")
        attrs[match.group(1).lower()] = _decode_entities(value, source, start)
    return attrs


def _entity_for(tag: str, attrs: dict[str, str], stack: list[_Open], offset: int) -> dict[str, Any]:
    kind = _TAG_TYPES[tag]
    entity: dict[str, Any] = {"type": kind}
    if tag == "a":
        href = attrs.get("href", "")
        match = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if match:
            entity = {"type": "text_mention", "user": {"id": int(match.group(1))}}
        else:
            entity["url"] = href
    elif tag == "span":
        if attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(f'unsupported start tag "span" at byte offset {offset}')
    elif tag == "tg-emoji":
        emoji_id = attrs.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise HtmlParseError(f"custom emoji identifier expected at byte offset {offset}")
        entity["custom_emoji_id"] = emoji_id
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif tag == "code" and stack and stack[-1].tag == "pre":
        language = attrs.get("class", "")
        if language.startswith("language-") and len(language) > len("language-"):
            stack[-1].entity["language"] = language.removeprefix("language-")
    return entity


def parse_html(source: str) -> ParsedText:
    """Parse Telegram HTML into visible text and entities, or raise :class:`HtmlParseError`.

    Accepted: ``b strong i em u ins s strike del a(href) code(class) pre
    blockquote(expandable) tg-spoiler span(class="tg-spoiler") tg-emoji(emoji-id)``,
    properly nested, and the references ``&lt; &gt; &amp; &quot; &#NN; &#xHH;``.
    A ``<`` always starts a tag; a lone ``&`` or ``>`` is plain text.
    """
    text_parts: list[str] = []
    utf16_pos = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    index = 0
    while index < len(source):
        lt = source.find("<", index)
        chunk_end = len(source) if lt == -1 else lt
        if chunk_end > index:
            chunk = _decode_entities(source[index:chunk_end], source, index)
            text_parts.append(chunk)
            utf16_pos += utf16_len(chunk)
        if lt == -1:
            break
        offset = _byte_offset(source, lt)
        match = _TAG_RE.match(source, lt)
        if match is None:
            name = re.match(r"</?([^\s>/]*)", source[lt:])
            tag = name.group(1) if name else ""
            raise HtmlParseError(f'unsupported start tag "{tag}" at byte offset {offset}')
        closing, tag, raw_attrs, self_closing = (
            match.group(1) == "/",
            match.group(2).lower(),
            match.group(3),
            match.group(4) == "/",
        )
        if tag not in _TAG_TYPES:
            kind = "end" if closing else "start"
            raise HtmlParseError(f'unsupported {kind} tag "{tag}" at byte offset {offset}')
        if closing:
            if not stack:
                raise HtmlParseError(f'unexpected end tag "{tag}" at byte offset {offset}')
            top = stack.pop()
            if top.tag != tag:
                raise HtmlParseError(
                    f'unmatched end tag at byte offset {offset}, expected "</{top.tag}>", '
                    f'found "</{tag}>"'
                )
            length = utf16_pos - top.start
            if length > 0:
                top.entity["offset"] = top.start
                top.entity["length"] = length
                entities.append(top.entity)
        else:
            if self_closing:
                raise HtmlParseError(f'unsupported start tag "{tag}/" at byte offset {offset}')
            if (
                stack
                and stack[-1].tag in ("code", "pre")
                and not (stack[-1].tag == "pre" and tag == "code")
            ):
                raise HtmlParseError(
                    f'tag "{tag}" is not allowed inside "{stack[-1].tag}" at byte offset {offset}'
                )
            attrs = _attributes(raw_attrs, source, lt)
            entity = _entity_for(tag, attrs, stack, offset)
            stack.append(_Open(tag=tag, entity=entity, start=utf16_pos, source_index=lt))
        index = match.end()
    if stack:
        raise HtmlParseError(f'can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    # A ``code`` directly inside ``pre`` only carries the language: it is not its own entity.
    merged = [
        e
        for e in entities
        if not (
            e["type"] == "code"
            and any(
                p["type"] == "pre" and p["offset"] == e["offset"] and p["length"] == e["length"]
                for p in entities
            )
        )
    ]
    merged.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText(text="".join(text_parts), entities=tuple(merged), entity_count=len(merged))


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities the way Telegram marks them in a user's message."""
    result: list[dict[str, Any]] = []
    for match in _COMMAND_RE.finditer(text):
        result.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group(0)),
            }
        )
    return result
