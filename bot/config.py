"""Typed, validated settings: a YAML file plus the environment (the token only from there).

Lookup order for the file: ``--config PATH``, else ``$BOT_CONFIG``, else ``config/bot.yaml``
if present, else the embedded defaults. Every problem is one :class:`ConfigError` naming the
key path (``delivery.scan_seconds: must be a number from 1 to 3600, got 0.0001``); every
numeric setting has a range (:data:`BOUNDS`). Unknown keys are errors too, because a
misspelt key silently falling back to a default is worse than a refusal.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml

from bot.errors import ConfigError
from bot.preferences import is_civil_zone

__all__ = [
    "BOUNDS",
    "DEFAULT_CONFIG_PATH",
    "STORY_INDEX_NAME",
    "TOKEN_ENV",
    "WEBHOOK_PORTS",
    "WEBHOOK_SECRET_ENV",
    "Bounds",
    "BriefingSettings",
    "DatabaseSettings",
    "DeliverySettings",
    "MonitoringSettings",
    "Settings",
    "StoriesSettings",
    "TelegramSettings",
    "WebhookSettings",
    "bundled_story_folder",
    "load_settings",
    "parse_clock_time",
    "parse_zone",
    "read_token",
    "read_webhook_secret",
    "story_index_path",
]

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
#: The only ports Telegram posts webhook updates to.
WEBHOOK_PORTS: Final = (443, 80, 88, 8443)
DEFAULT_WEBHOOK_LISTEN = "127.0.0.1"
DEFAULT_WEBHOOK_PORT = 8443
CONFIG_ENV = "BOT_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/bot.yaml")
DEFAULT_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/bot.sqlite3"
STORY_INDEX_NAME = "story-index.sqlite3"
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def bundled_story_folder() -> Path:
    """The sample stories shipped inside the package (the default story folder)."""
    return Path(__file__).resolve().parent / "samples"


def parse_zone(name: str, key: str = "timezone") -> ZoneInfo:
    """An IANA zone by exact name; a clear error naming ``key`` otherwise.

    ``localtime`` and ``Factory`` load, but are not zones: the first is whatever the
    server's clock is set to (so times would move with the machine), the second "-00".
    """
    if not is_civil_zone(name):
        raise ConfigError(key, f"{name!r} is not a place's time zone (use an IANA name such "
                               "as 'Europe/Berlin' or 'UTC')")
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(key, f"unknown time zone {name!r} (use an IANA name such as "
                               "'Europe/Berlin' or 'UTC')") from exc


def parse_clock_time(text: str, key: str = "time") -> time:
    """``HH:MM`` (24-hour) as a :class:`datetime.time`."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise ConfigError(key, f"expected a time like 08:00, got {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


# The HTTP client under python-telegram-bot (see bot/telegram/transport.py).
HttpClient = Literal["aiohttp", "httpx"]


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Webhook mode: Telegram posts each update to ``url``, the public HTTPS address of a
    reverse proxy, which terminates TLS and forwards to ``listen``:``port`` and ``path``,
    where python-telegram-bot's own webhook server answers."""

    url: str
    path: str
    listen: str = DEFAULT_WEBHOOK_LISTEN
    port: int = DEFAULT_WEBHOOK_PORT


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    base_url: str = DEFAULT_BASE_URL
    admin_ids: frozenset[int] = frozenset()
    commands_per_minute: int = 20
    button_presses_per_minute: int = 60  # its own budget: paging takes many quick taps
    http_client: HttpClient = "aiohttp"
    story_parts_at_once: int = 5
    webhook: WebhookSettings | None = None  # None: long polling


@dataclass(frozen=True, slots=True)
class StoriesSettings:
    folder: Path = field(default_factory=bundled_story_folder)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    # With watching on, the full rescan is only the safety net (and what counts on network
    # file systems, where inotify does not fire).
    rescan_seconds: float = 600.0
    watch: bool = True
    index_path: Path | None = None  # None: see story_index_path()


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = DEFAULT_DATABASE_URL


@dataclass(frozen=True, slots=True)
class BriefingSettings:
    default_time: time = time(8, 0)
    default_timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    top_n: int = 8
    send_when_empty: bool = False
    catch_up_hours: float = 12.0


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    rate_per_second: float = 25.0
    per_chat_per_second: float = 1.0
    per_group_per_minute: int = 20
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    resend_uncertain: bool = True
    scan_seconds: float = 60.0
    # The cap; the sender adapts below it (Sender.inflight_target): 1,000/s at 150 ms
    # (paid broadcasts with Telegram far away) needs about 400.
    concurrency: int = 400
    progress_interval_seconds: float = 5.0
    lease_seconds: float = 30.0
    give_up_seconds: float = 300.0
    # Telegram's paid broadcasts (enabled for the bot in @BotFather, a balance of at least
    # 10,000 Stars): ``/broadcast paid …`` then sends at up to ``paid_rate_per_second``,
    # each message above the free 30/s costing ``paid_star_price`` Stars.
    paid_broadcast: bool = False
    paid_rate_per_second: float = 1000.0
    paid_star_price: float = 0.1


@dataclass(frozen=True, slots=True)
class MonitoringSettings:
    """``/healthz`` and ``/metrics`` over HTTP; off unless ``port`` is set."""

    port: int | None = None
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Settings:
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    stories: StoriesSettings = field(default_factory=StoriesSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    briefing: BriefingSettings = field(default_factory=BriefingSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    log_level: str = "INFO"
    source: Path | None = None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bounds:
    """The values an operator may give a numeric setting, both ends included."""

    low: float
    high: float
    whole: bool = False


# Every numeric setting, by key path. The ends are what an operator would expect: beyond
# them a value is a typo or a trap (a due scan every 0.0001 s burns a core; 1e300 seconds
# overflows a timer; a concurrency of 10**22 overflows the sender).
BOUNDS: Mapping[str, Bounds] = {
    "telegram.commands_per_minute": Bounds(1, 600, whole=True),
    "telegram.button_presses_per_minute": Bounds(1, 600, whole=True),
    "telegram.story_parts_at_once": Bounds(1, 50, whole=True),
    "stories.rescan_seconds": Bounds(1, 86400),
    "briefing.top_n": Bounds(1, 50, whole=True),
    "briefing.catch_up_hours": Bounds(0.25, 24),
    "delivery.rate_per_second": Bounds(0.1, 1000),
    "delivery.per_chat_per_second": Bounds(0.01, 30),
    "delivery.per_group_per_minute": Bounds(1, 600, whole=True),
    "delivery.max_attempts": Bounds(1, 100, whole=True),
    "delivery.backoff_seconds": Bounds(0.1, 600),
    "delivery.backoff_max_seconds": Bounds(1, 3600),
    "delivery.scan_seconds": Bounds(1, 3600),
    "delivery.concurrency": Bounds(1, 1000, whole=True),
    "delivery.progress_interval_seconds": Bounds(1, 3600),
    "delivery.lease_seconds": Bounds(5, 3600),
    "delivery.give_up_seconds": Bounds(10, 86400),
    "delivery.paid_rate_per_second": Bounds(1, 1000),  # Telegram's paid limit is 1,000/s
    "delivery.paid_star_price": Bounds(0.01, 10),
    "monitoring.port": Bounds(1, 65535, whole=True),
}
_PORT_EXAMPLE = 8080


class _Section:
    """Reads one mapping of the YAML file, remembering which keys were used."""

    def __init__(self, data: Any, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(path or "<root>", "must be a mapping of keys to values")
        self._data: Mapping[str, Any] = data
        self._path = path
        self._used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def get(self, name: str, default: T, convert: Callable[[Any, str], T]) -> T:
        self._used.add(name)
        if name not in self._data or self._data[name] is None:
            return default
        return convert(self._data[name], self.key(name))

    def number(self, name: str, default: float) -> float:
        """A number within :data:`BOUNDS`; the default is the example in the refusal."""
        return self.get(name, default, lambda v, k: float(_bounded(v, k, default)))

    def whole(self, name: str, default: int) -> int:
        """A whole number within :data:`BOUNDS`."""
        return self.get(name, default, lambda v, k: int(_bounded(v, k, default)))

    def section(self, name: str) -> _Section:
        self._used.add(name)
        return _Section(self._data.get(name), self.key(name))

    def finish(self) -> None:
        unknown = sorted(str(k) for k in self._data if k not in self._used)
        if unknown:
            raise ConfigError(self.key(unknown[0]), "unknown key (check the spelling against "
                                                    "config/bot.example.yaml)")


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "must be a non-empty string")
    return value.strip()


def _bounded(value: Any, key: str, example: float, bounds: Bounds | None = None) -> float:
    """``value`` if it is a number within ``bounds`` (default ``BOUNDS[key]``), else a
    one-line refusal.

    A string gets "must be a number, e.g. 25" rather than a range: YAML reads ``1e9`` (no
    dot) as text, and "must be from 1 to 3600, got '1e9'" would send the reader hunting.
    """
    bounds = bounds or BOUNDS[key]
    kind = "a whole number" if bounds.whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be {kind}, e.g. {example:g}, got {value!r}")
    # Written so that NaN (every comparison false) is refused too.
    if not bounds.low <= value <= bounds.high or (bounds.whole and value != int(value)):
        raise ConfigError(key, f"must be {kind} from {bounds.low:g} to {bounds.high:g}, "
                               f"got {value!r}")
    return value


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _zone(value: Any, key: str) -> ZoneInfo:
    return parse_zone(_string(value, key), key)


def _clock(value: Any, key: str) -> time:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a quoted time like \"08:00\", got {value!r}")
    return parse_clock_time(value, key)


def _base_url(value: Any, key: str) -> str:
    url = _string(value, key)
    if not re.match(r"^https?://[^\s/]+(/\S*)?/bot$", url):
        raise ConfigError(key, "must be an http(s) URL ending in /bot, e.g. "
                               "https://api.telegram.org/bot")
    return url


def _http_client(value: Any, key: str) -> HttpClient:
    if value == "aiohttp" or value == "httpx":
        return value  # type: ignore[no-any-return]
    raise ConfigError(key, f"must be aiohttp or httpx, got {value!r}")


_WEBHOOK_PORT = Bounds(1, 65535, whole=True)
_WEBHOOK_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_MAKE_SECRET = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _webhook_url(value: Any, key: str) -> str:
    """The public URL Telegram posts to: HTTPS on a port Telegram uses. A loopback host is
    never Telegram's target, only the sandbox's: there plain http and any port are fine."""
    url = _string(value, key)
    example = "e.g. https://bot.example.org/telegram"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(key, f"not a URL: {url!r}; write the full public address, "
                               f"{example}") from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host or re.search(r"\s", url):
        raise ConfigError(key, f"must be the full public URL Telegram posts to, {example}; "
                               f"got {url!r}")
    if parts.username is not None or parts.fragment:
        raise ConfigError(key, f"must not hold a user name or a #fragment, {example}")
    if _is_loopback(host):
        return url
    if parts.scheme != "https":
        raise ConfigError(key, f"must be an https:// URL: Telegram posts updates only over "
                               f"HTTPS (plain http only for a loopback host, in tests); "
                               f"got {url!r}")
    if port is not None and port not in WEBHOOK_PORTS:
        raise ConfigError(key, f"port {port} is one Telegram does not post to; use 443, 80, "
                               "88 or 8443 there (the reverse proxy forwards to "
                               "telegram.webhook.port)")
    return url


def _webhook_path(value: Any, key: str) -> str:
    path = _string(value, key)
    if not _WEBHOOK_PATH.fullmatch(path):
        raise ConfigError(key, f"must be a path such as /telegram (letters, digits and "
                               f"._~/-, starting with /), got {path!r}")
    return path


def _listen_address(value: Any, key: str) -> str:
    address = _string(value, key)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ConfigError(key, f"must be an IP address to listen on, e.g. 127.0.0.1 (a "
                               f"reverse proxy on this machine) or 0.0.0.0, got "
                               f"{address!r}") from None


def _webhook_settings(section: _Section) -> WebhookSettings | None:
    """``telegram.webhook``; None (long polling) unless ``url`` is set."""
    url = section.get("url", None, _webhook_url)
    path = section.get("path", None, _webhook_path)
    listen = section.get("listen", DEFAULT_WEBHOOK_LISTEN, _listen_address)
    port = section.get("port", DEFAULT_WEBHOOK_PORT, lambda v, k: int(
        _bounded(v, k, DEFAULT_WEBHOOK_PORT, _WEBHOOK_PORT)))
    if url is None:
        return None
    if path is None:  # where the proxy forwards to is, by default, where Telegram posts
        path = urlsplit(url).path or "/"
        if not _WEBHOOK_PATH.fullmatch(path):
            raise ConfigError(section.key("path"), f"the path of telegram.webhook.url, "
                                                   f"{path!r}, cannot be served: set a path "
                                                   "such as /telegram (letters, digits and "
                                                   "._~/-)")
    return WebhookSettings(url=url, path=path, listen=listen, port=port)


def _admin_ids(value: Any, key: str) -> frozenset[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(key, "must be a list of numeric Telegram user ids, e.g. [12345]")
    return frozenset(value)


def _folder(value: Any, key: str) -> Path:
    return Path(_string(value, key)).expanduser()


def story_index_path(settings: Settings) -> Path:
    """Where the story index lives: ``stories.index_path``, else ``story-index.sqlite3``
    beside a SQLite database file, else ``data/story-index.sqlite3``. Each machine keeps
    its own; deleting it loses nothing (it is rebuilt from the folder)."""
    if settings.stories.index_path is not None:
        return settings.stories.index_path
    prefix = "sqlite+aiosqlite:///"
    url = settings.database.url
    if url.startswith(prefix):
        database = url.removeprefix(prefix).split("?", 1)[0]
        if database and database != ":memory:" and not database.startswith("file:"):
            return Path(database).parent / STORY_INDEX_NAME
    return Path("data") / STORY_INDEX_NAME


def _database_url(value: Any, key: str) -> str:
    url = _string(value, key)
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(key, "must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return url


def _log_level(value: Any, key: str) -> str:
    level = _string(value, key).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(key, "must be one of DEBUG, INFO, WARNING, ERROR")
    return level


def _check_catch_up(briefing: BriefingSettings, delivery: DeliverySettings) -> None:
    """A briefing is found up to one scan late; a catch-up window shorter than that would
    skip briefings on an ordinary day, not only after downtime."""
    if briefing.catch_up_hours * 3600 < 2 * delivery.scan_seconds:
        raise ConfigError("briefing.catch_up_hours", (
            f"must be at least twice delivery.scan_seconds "
            f"({2 * delivery.scan_seconds / 3600:.2g} hours), or briefings found by a "
            f"scan are skipped as late; got {briefing.catch_up_hours:g}"))


def _check_paid_rate(delivery: DeliverySettings) -> None:
    """A paid broadcast no faster than the free rate would pay Stars for nothing."""
    if delivery.paid_broadcast and delivery.paid_rate_per_second <= delivery.rate_per_second:
        raise ConfigError("delivery.paid_rate_per_second", (
            f"must be above delivery.rate_per_second ({delivery.rate_per_second:g}) when "
            f"delivery.paid_broadcast is true, or paid broadcasts are no faster than free "
            f"ones; got {delivery.paid_rate_per_second:g}"))


def settings_from_mapping(data: Any, source: Path | None = None) -> Settings:
    """Validate a parsed YAML document into :class:`Settings`."""
    root = _Section(data, "")
    d = Settings()

    tg = root.section("telegram")
    wh = tg.section("webhook")
    webhook = _webhook_settings(wh)
    wh.finish()
    telegram = TelegramSettings(
        base_url=tg.get("base_url", d.telegram.base_url, _base_url),
        admin_ids=tg.get("admin_ids", d.telegram.admin_ids, _admin_ids),
        commands_per_minute=tg.whole("commands_per_minute", d.telegram.commands_per_minute),
        button_presses_per_minute=tg.whole("button_presses_per_minute",
                                           d.telegram.button_presses_per_minute),
        http_client=tg.get("http_client", d.telegram.http_client, _http_client),
        story_parts_at_once=tg.whole("story_parts_at_once", d.telegram.story_parts_at_once),
        webhook=webhook,
    )
    tg.finish()

    st = root.section("stories")
    stories = StoriesSettings(
        folder=st.get("folder", d.stories.folder, _folder),
        timezone=st.get("timezone", d.stories.timezone, _zone),
        rescan_seconds=st.number("rescan_seconds", d.stories.rescan_seconds),
        watch=st.get("watch", d.stories.watch, _boolean),
        index_path=st.get("index_path", d.stories.index_path, _folder),
    )
    st.finish()

    db = root.section("database")
    database = DatabaseSettings(url=db.get("url", d.database.url, _database_url))
    db.finish()

    br = root.section("briefing")
    briefing = BriefingSettings(
        default_time=br.get("default_time", d.briefing.default_time, _clock),
        default_timezone=br.get("default_timezone", d.briefing.default_timezone, _zone),
        top_n=br.whole("top_n", d.briefing.top_n),
        send_when_empty=br.get("send_when_empty", d.briefing.send_when_empty, _boolean),
        catch_up_hours=br.number("catch_up_hours", d.briefing.catch_up_hours),
    )
    br.finish()

    dl = root.section("delivery")
    dd = d.delivery
    delivery = DeliverySettings(
        rate_per_second=dl.number("rate_per_second", dd.rate_per_second),
        per_chat_per_second=dl.number("per_chat_per_second", dd.per_chat_per_second),
        per_group_per_minute=dl.whole("per_group_per_minute", dd.per_group_per_minute),
        max_attempts=dl.whole("max_attempts", dd.max_attempts),
        backoff_seconds=dl.number("backoff_seconds", dd.backoff_seconds),
        backoff_max_seconds=dl.number("backoff_max_seconds", dd.backoff_max_seconds),
        resend_uncertain=dl.get("resend_uncertain", dd.resend_uncertain, _boolean),
        scan_seconds=dl.number("scan_seconds", dd.scan_seconds),
        concurrency=dl.whole("concurrency", dd.concurrency),
        progress_interval_seconds=dl.number("progress_interval_seconds",
                                            dd.progress_interval_seconds),
        lease_seconds=dl.number("lease_seconds", dd.lease_seconds),
        give_up_seconds=dl.number("give_up_seconds", dd.give_up_seconds),
        paid_broadcast=dl.get("paid_broadcast", dd.paid_broadcast, _boolean),
        paid_rate_per_second=dl.number("paid_rate_per_second", dd.paid_rate_per_second),
        paid_star_price=dl.number("paid_star_price", dd.paid_star_price),
    )
    dl.finish()
    _check_paid_rate(delivery)
    _check_catch_up(briefing, delivery)

    mo = root.section("monitoring")
    monitoring = MonitoringSettings(
        port=mo.get("port", d.monitoring.port,
                    lambda v, k: int(_bounded(v, k, _PORT_EXAMPLE))),
        host=mo.get("host", d.monitoring.host, _string),
    )
    mo.finish()

    log_level = root.get("log_level", d.log_level, _log_level)
    root.finish()
    return Settings(telegram=telegram, stories=stories, database=database, briefing=briefing,
                    delivery=delivery, monitoring=monitoring, log_level=log_level, source=source)


def resolve_config_path(explicit: Path | None) -> Path | None:
    """Which file to read, by the documented lookup order (None: embedded defaults)."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_settings(explicit: Path | None = None) -> Settings:
    """Load and validate settings; raises :class:`ConfigError` with the key path."""
    path = resolve_config_path(explicit)
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(str(path), f"not valid YAML{where}") from exc
    return settings_from_mapping(data, source=path)


def read_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The bot token, only ever from ``TELEGRAM_BOT_TOKEN``."""
    value = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
    return value or None


def read_webhook_secret(environ: Mapping[str, str] | None = None) -> str:
    """The webhook's secret token, only ever from ``TELEGRAM_WEBHOOK_SECRET``.

    Webhook mode needs one: without it anyone who finds the URL could post updates that
    look like an admin's. The refusal never repeats the value.
    """
    value = (environ if environ is not None else os.environ).get(WEBHOOK_SECRET_ENV, "")
    value = value.strip()
    if not value:
        raise ConfigError(WEBHOOK_SECRET_ENV, "not set; webhook mode (telegram.webhook.url) "
                                              "needs it so that only Telegram can post "
                                              f"updates; {_MAKE_SECRET}")
    if not _WEBHOOK_SECRET.fullmatch(value):
        raise ConfigError(WEBHOOK_SECRET_ENV, f"must be 1 to 256 characters of A-Z, a-z, "
                                              f"0-9, _ and - (Telegram's rule), but the one "
                                              f"set has {len(value)} characters; "
                                              f"{_MAKE_SECRET}")
    return value
