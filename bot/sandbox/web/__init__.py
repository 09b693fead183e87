"""The sandbox's web chat: a Telegram-like page served by the sandbox server itself.

``WebChat(server, roles, bot_clock).add_routes(app)`` adds ``/`` (the page), its static
files (``static/``: plain HTML, CSS and JavaScript, no build step, nothing fetched from
elsewhere) and ``/web/api/...``; ``SandboxServer(options, web=WebChat(...))`` does it for
you. See ``bot/sandbox/README.md``.
"""

from bot.sandbox.web.routes import CONTENT_SECURITY_POLICY, BotClock, WebChat

__all__ = ["CONTENT_SECURITY_POLICY", "BotClock", "WebChat"]
