"""Bot messages as terminal text: a pure formatter, no I/O.

Telegram HTML becomes readable text: bold ``**x**`` (or ANSI bold), italic ``_x_``,
links ``text (url)``, blockquote lines prefixed ``│ ``, entities unescaped; inline
buttons are listed numbered across the keyboard, ``[1] ‹ Newer  [2] Older ›``.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.sandbox.state import MessageVersion, StoredMessage

__all__ = ["format_buttons", "format_html", "format_message", "format_version"]

_TOKEN_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>")
_HREF_RE = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_PLAIN_MARKS = {
    "b": ("**", "**"),
    "strong": ("**", "**"),
    "i": ("_", "_"),
    "em": ("_", "_"),
    "s": ("~~", "~~"),
    "strike": ("~~", "~~"),
    "del": ("~~", "~~"),
    "code": ("`", "`"),
    "tg-spoiler": ("||", "||"),
    "span": ("||", "||"),
}
_ANSI_MARKS = {
    "b": ("\x1b[1m", "\x1b[22m"),
    "strong": ("\x1b[1m", "\x1b[22m"),
    "i": ("\x1b[3m", "\x1b[23m"),
    "em": ("\x1b[3m", "\x1b[23m"),
    "u": ("\x1b[4m", "\x1b[24m"),
    "ins": ("\x1b[4m", "\x1b[24m"),
    "s": ("\x1b[9m", "\x1b[29m"),
    "strike": ("\x1b[9m", "\x1b[29m"),
    "del": ("\x1b[9m", "\x1b[29m"),
    "code": ("\x1b[2m", "\x1b[22m"),
    "tg-spoiler": ("\x1b[7m", "\x1b[27m"),
    "span": ("\x1b[7m", "\x1b[27m"),
}
QUOTE_PREFIX = "│ "


@dataclass
class _Link:
    url: str
    start: int  # index in the output parts where the link text starts


def _href(attrs: str) -> str:
    match = _HREF_RE.search(attrs)
    if not match:
        return ""
    return html_lib.unescape(next(g for g in match.groups() if g is not None))


def format_html(source: str, *, ansi: bool = False) -> str:
    """Telegram HTML as terminal text; lenient, so it never fails on bad markup."""
    marks = _ANSI_MARKS if ansi else _PLAIN_MARKS
    parts: list[str] = []
    links: list[_Link] = []
    quote_depth = 0
    position = 0

    def emit(text: str) -> None:
        if quote_depth:
            text = text.replace("\n", "\n" + QUOTE_PREFIX)
        parts.append(text)

    for match in _TOKEN_RE.finditer(source):
        emit(html_lib.unescape(source[position : match.start()]))
        position = match.end()
        closing, tag, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if tag == "blockquote":
            if closing:
                quote_depth = max(0, quote_depth - 1)
            else:
                so_far = "".join(parts)
                at_line_start = not so_far or so_far.endswith("\n")
                parts.append(QUOTE_PREFIX if at_line_start else "\n" + QUOTE_PREFIX)
                quote_depth += 1
        elif tag == "a":
            if not closing:
                links.append(_Link(url=_href(attrs), start=len(parts)))
            elif links:
                link = links.pop()
                text = "".join(parts[link.start :])
                if link.url and link.url != text and not link.url.startswith("tg://user"):
                    parts.append(f" ({link.url})")
        elif tag in marks:
            if tag == "span" and "tg-spoiler" not in attrs:
                continue
            parts.append(marks[tag][1 if closing else 0])
    emit(html_lib.unescape(source[position:]))
    return "".join(parts)


def format_buttons(rows: Sequence[Sequence[dict[str, Any]]], *, first: int = 1) -> str:
    """Inline keyboard rows as ``[1] ‹ Newer  [2] Older ›`` lines, numbered across rows."""
    lines: list[str] = []
    number = first
    for row in rows:
        cells: list[str] = []
        for button in row:
            label = str(button.get("text", ""))
            if "url" in button:
                label += f" ({button['url']})"
            cells.append(f"[{number}] {label}")
            number += 1
        if cells:
            lines.append("  ".join(cells))
    return "\n".join(lines)


def format_version(version: MessageVersion, *, photo: bool = False, ansi: bool = False) -> str:
    """One version of a message (the original or an edit) as the terminal shows it."""
    body = format_html(version.html, ansi=ansi) if version.html is not None else version.text
    if photo:
        body = "[photo]" + (f" {body}" if body else "")
    rows = version.reply_markup.get("inline_keyboard") if version.reply_markup else None
    buttons = format_buttons(rows) if isinstance(rows, list) else ""
    return f"{body}\n{buttons}" if buttons else body


def format_message(message: StoredMessage, *, ansi: bool = False) -> str:
    """A stored bot (or user) message as the terminal shows it now: text, then its buttons."""
    return format_version(message.version(), photo=message.photo_file_id is not None, ansi=ansi)
