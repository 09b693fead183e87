"""Telegram-HTML primitives: escaping, visible length, entity count and a validity check.

Telegram limits a message by its *visible* text (tags removed, escapes decoded) measured in
UTF-16 code units, and shows at most 100 formatting entities. Everything the renderer
produces is measured with these functions, and tests check every part with
``message_problems``.
"""

from __future__ import annotations

import html as _stdlib_html
import re
from types import MappingProxyType
from typing import Final

__all__ = [
    "ALLOWED_TAGS",
    "TELEGRAM_ENTITY_LIMIT",
    "TELEGRAM_TEXT_LIMIT",
    "count_entities",
    "escape",
    "message_problems",
    "utf16_len",
    "visible_length",
    "visible_text",
]

TELEGRAM_TEXT_LIMIT: Final = 4096
"""Maximum visible length of a message, in UTF-16 code units."""

TELEGRAM_ENTITY_LIMIT: Final = 100
"""Maximum number of formatting entities Telegram shows in one message."""

ALLOWED_TAGS: Final = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
        "a", "code", "pre", "blockquote", "tg-spoiler",
    }
)  # fmt: skip
"""Tags Telegram's HTML parse mode accepts (``span class="tg-spoiler"`` is not used here)."""

_ALLOWED_ATTRIBUTES: Final = MappingProxyType(
    {
        "a": frozenset({"href"}),
        "blockquote": frozenset({"expandable"}),
        "code": frozenset({"class"}),
    }
)

_TAG_RE: Final = re.compile(r"<[^<>]*>")
_TOKEN_RE: Final = re.compile(
    r"(?P<tag><(?P<close>/)?(?P<name>[a-z][a-z0-9-]*)(?P<attrs>(?:\s+[^<>]*)?)>)"
    r"|(?P<escape>&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)"
    r"|(?P<text>[^<>&]+)"
    r"|(?P<bad>[<>&])"
)
_ATTR_RE: Final = re.compile(r'\s+([a-z-]+)(?:="([^"<>]*)")?')
# Tags whose content Telegram shows verbatim: no other entity may start inside them.
_VERBATIM: Final = frozenset({"code", "pre"})


def escape(text: str) -> str:
    """Escape ``<``, ``>`` and ``&`` so story text is shown literally; quotes need no escape
    outside attributes, and leaving them keeps the markup short."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts (non-BMP characters count 2)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def visible_text(html: str) -> str:
    """The text a reader sees: tags removed, escapes decoded."""
    return _stdlib_html.unescape(_TAG_RE.sub("", html))


def visible_length(html: str) -> int:
    """Visible length in UTF-16 code units, as Telegram checks it against 4096."""
    return utf16_len(visible_text(html))


def count_entities(html: str) -> int:
    """Formatting entities in ``html``: one per tag pair.

    Escaped text never contains ``<``, so counting opening tags is enough and cheap.
    """
    return html.count("<") - html.count("</")


def message_problems(
    html: str,
    *,
    limit: int = TELEGRAM_TEXT_LIMIT,
    max_entities: int = TELEGRAM_ENTITY_LIMIT,
) -> list[str]:
    """Everything that would make Telegram reject or mangle ``html``; empty when valid.

    Checks: only allowed tags and attributes, balanced and properly nested, no entity
    opened inside ``code``/``pre`` (except ``code`` in ``pre``) or blockquote in
    blockquote, every ``<``, ``>``, ``&`` of text escaped, visible text non-empty and within
    ``limit`` UTF-16 units, at most ``max_entities`` entities.
    """
    problems: list[str] = []
    stack: list[str] = []
    entities = 0
    for match in _TOKEN_RE.finditer(html):
        if match["bad"] is not None:
            problems.append(f"unescaped {match['bad']!r} at {match.start()}")
        elif match["tag"] is not None:
            name = match["name"]
            if name not in ALLOWED_TAGS:
                problems.append(f"tag <{name}> not allowed at {match.start()}")
                continue
            if match["close"]:
                if match["attrs"]:
                    problems.append(f"closing tag </{name}> with attributes")
                if not stack or stack[-1] != name:
                    problems.append(f"</{name}> at {match.start()} does not close {stack}")
                else:
                    stack.pop()
                continue
            for attr, _value in _ATTR_RE.findall(match["attrs"]):
                if attr not in _ALLOWED_ATTRIBUTES.get(name, frozenset()):
                    problems.append(f"attribute {attr!r} not allowed on <{name}>")
            if stack and stack[-1] in _VERBATIM and not (name == "code" and stack[-1] == "pre"):
                problems.append(f"<{name}> inside <{stack[-1]}>")
            if name == "blockquote" and "blockquote" in stack:
                problems.append("blockquote inside blockquote")
            stack.append(name)
            entities += 1
    if stack:
        problems.append(f"unclosed tags {stack}")
    length = visible_length(html)
    if not visible_text(html).strip():
        problems.append("no visible text")
    if length > limit:
        problems.append(f"visible text is {length} UTF-16 units, limit {limit}")
    if entities > max_entities:
        problems.append(f"{entities} entities, limit {max_entities}")
    return problems
