"""A local Telegram Bot API server ("the sandbox") for demos, tests and benchmarks.

The real bot talks to it over HTTP through PTB's ``base_url``; tests and the terminal chat
play the users. Main entry points:

* :class:`SandboxServer` (``bot.sandbox.server``) -- ``async with SandboxServer(options)
  as server``; ``server.base_url`` for PTB; user side: ``user_message``,
  ``edit_user_message``, ``user_photo``, ``press_button``, ``inline_query``, ``add_chat``,
  ``bot_added``/``bot_removed``/``block_bot``/``deactivate_user``/``migrate_group``;
  inspection: ``messages``/``bot_messages``/``calls``/``commands``; waiting:
  ``wait_idle(update_id)``, ``wait_reply(update_id, chat_id)``; faults: ``inject(Fault(..))``,
  ``set_flood_limits(FloodLimits(..))``; ``set_now``; ``reset``.
* :class:`SandboxOptions` / :class:`BotIdentity` / :class:`FloodLimits` -- settings.
* :class:`Fault` / :class:`FaultKind` -- injected errors (429, 403, 400, migration, 5xx, slow).
* :func:`run_chat` (``bot.sandbox.chat``) -- the terminal conversation driver.
* :func:`format_message` (``bot.sandbox.terminal``) -- a bot message as terminal text.
* ``python -m bot.sandbox.server --port N`` -- standalone, with the ``/sandbox/...`` HTTP
  user-side API documented in ``bot/sandbox/README.md``; :class:`SandboxClient` drives it.
"""

from bot.sandbox.chat import ScriptedChat, run_chat
from bot.sandbox.client import SandboxClient
from bot.sandbox.faults import ApiError, Fault, FaultKind
from bot.sandbox.flood import FloodLimits
from bot.sandbox.html import HtmlParseError, ParsedText, parse_html, utf16_len
from bot.sandbox.options import BotIdentity, SandboxOptions
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import DEMO_USER_ID, CallRecord, ChatType, MemberStatus, StoredMessage
from bot.sandbox.terminal import format_message
from bot.sandbox.user_api import ButtonPress, InlineRun, RoundTrip, UserPost

__all__ = [
    "DEMO_USER_ID",
    "ApiError",
    "BotIdentity",
    "ButtonPress",
    "CallRecord",
    "ChatType",
    "Fault",
    "FaultKind",
    "FloodLimits",
    "HtmlParseError",
    "InlineRun",
    "MemberStatus",
    "ParsedText",
    "RoundTrip",
    "SandboxClient",
    "SandboxOptions",
    "SandboxServer",
    "ScriptedChat",
    "StoredMessage",
    "UserPost",
    "format_message",
    "parse_html",
    "run_chat",
    "utf16_len",
]
