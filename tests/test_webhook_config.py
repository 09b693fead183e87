"""Webhook settings and the webhook secret: what an operator may write, and the one line
that refuses anything else; the secret kept out of every log line."""

from __future__ import annotations

import logging

import pytest
import yaml

from bot.config import (
    WEBHOOK_SECRET_ENV,
    WebhookSettings,
    read_webhook_secret,
    settings_from_mapping,
)
from bot.errors import ConfigError
from bot.telegram.redaction import (
    REDACTED,
    REDACTED_SECRET,
    TokenRedactingFilter,
    install_token_redaction,
)

TOKEN = "123456789:AAHsecretSECRETsecret0123456789abcdef"
SECRET = "wh_Secret-0123456789abcdefABCDEF"


def webhook(text: str) -> WebhookSettings | None:
    return settings_from_mapping(yaml.safe_load(text)).telegram.webhook


def test_no_url_means_long_polling() -> None:
    assert settings_from_mapping({}).telegram.webhook is None
    # Local settings kept while the URL is commented out: still polling, not an error.
    assert webhook("telegram: {webhook: {listen: 0.0.0.0, port: 9000}}") is None


def test_defaults_listen_on_this_machine_at_8443_under_the_urls_path() -> None:
    assert webhook("telegram: {webhook: {url: 'https://bot.example.org/tg/hook'}}") == \
        WebhookSettings(url="https://bot.example.org/tg/hook", path="/tg/hook",
                        listen="127.0.0.1", port=8443)
    assert webhook("telegram: {webhook: {url: 'https://bot.example.org'}}") == \
        WebhookSettings(url="https://bot.example.org", path="/")


@pytest.mark.parametrize("port", [443, 80, 88, 8443])
def test_every_port_telegram_posts_to_is_taken(port: int) -> None:
    url = f"https://bot.example.org:{port}/hook"
    assert webhook(f"telegram: {{webhook: {{url: '{url}'}}}}") == \
        WebhookSettings(url=url, path="/hook")


def test_listen_port_and_path_can_differ_from_the_public_url() -> None:
    got = webhook("telegram:\n  webhook:\n    url: https://bot.example.org:88/public\n"
                  "    listen: '::'\n    port: 9000\n    path: /private/tg\n")
    assert got == WebhookSettings(url="https://bot.example.org:88/public", path="/private/tg",
                                  listen="::", port=9000)


@pytest.mark.parametrize("url", ["http://127.0.0.1:34567/hook", "http://localhost:9/x",
                                 "http://[::1]:12345/hook", "https://127.0.0.2:1234/"])
def test_a_loopback_url_may_be_plain_http_on_any_port(url: str) -> None:
    """Telegram never posts to this machine; the sandbox does, wherever the bot listens."""
    got = webhook(f"telegram: {{webhook: {{url: '{url}'}}}}")
    assert got is not None and got.url == url


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"url": "http://bot.example.org/hook"},
         "telegram.webhook.url: must be an https:// URL: Telegram posts updates only over "
         "HTTPS (plain http only for a loopback host, in tests); got "
         "'http://bot.example.org/hook'"),
        ({"url": "https://bot.example.org:8080/hook"},
         "telegram.webhook.url: port 8080 is one Telegram does not post to; use 443, 80, 88 or "
         "8443 there (the reverse proxy forwards to telegram.webhook.port)"),
        ({"url": "https://bot.example.org:99999/hook"},
         "telegram.webhook.url: not a URL: 'https://bot.example.org:99999/hook'; write the "
         "full public address, e.g. https://bot.example.org/telegram"),
        ({"url": "bot.example.org/hook"},
         "telegram.webhook.url: must be the full public URL Telegram posts to, e.g. "
         "https://bot.example.org/telegram; got 'bot.example.org/hook'"),
        ({"url": "https://user:pw@bot.example.org/hook"},
         "telegram.webhook.url: must not hold a user name or a #fragment, e.g. "
         "https://bot.example.org/telegram"),
        ({"url": 443},
         "telegram.webhook.url: must be a non-empty string"),
        ({"url": "https://bot.example.org/hook", "path": "telegram"},
         "telegram.webhook.path: must be a path such as /telegram (letters, digits and ._~/-, "
         "starting with /), got 'telegram'"),
        ({"url": "https://bot.example.org/a(b)"},
         "telegram.webhook.path: the path of telegram.webhook.url, '/a(b)', cannot be "
         "served: set a path such as /telegram (letters, digits and ._~/-)"),
        ({"url": "https://bot.example.org/hook", "listen": "localhost"},
         "telegram.webhook.listen: must be an IP address to listen on, e.g. 127.0.0.1 (a "
         "reverse proxy on this machine) or 0.0.0.0, got 'localhost'"),
        ({"url": "https://bot.example.org/hook", "port": 0},
         "telegram.webhook.port: must be a whole number from 1 to 65535, got 0"),
        ({"url": "https://bot.example.org/hook", "port": "8443x"},
         "telegram.webhook.port: must be a whole number, e.g. 8443, got '8443x'"),
        ({"url": "https://bot.example.org/hook", "secret": "abc"},
         "telegram.webhook.secret: unknown key (check the spelling against "
         "config/bot.example.yaml)"),
    ],
)
def test_bad_webhook_settings_are_one_line_naming_the_key(settings: dict[str, object],
                                                          line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"telegram": {"webhook": settings}})
    assert str(caught.value) == line


# -- the secret -------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", ["a", "A-z_0-9", "x" * 256, SECRET])
def test_a_secret_of_telegrams_alphabet_is_taken(secret: str) -> None:
    assert read_webhook_secret({WEBHOOK_SECRET_ENV: secret}) == secret
    assert read_webhook_secret({WEBHOOK_SECRET_ENV: f" {secret}\n"}) == secret


def test_a_missing_secret_is_refused_with_how_to_make_one() -> None:
    for environ in ({}, {WEBHOOK_SECRET_ENV: "  "}):
        with pytest.raises(ConfigError) as caught:
            read_webhook_secret(environ)
        assert str(caught.value) == (
            "TELEGRAM_WEBHOOK_SECRET: not set; webhook mode (telegram.webhook.url) needs it so "
            "that only Telegram can post updates; make one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'")


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "ümlaut", "x" * 257,
                                    "tab\tinside"])
def test_a_secret_outside_telegrams_rule_is_refused_without_repeating_it(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_webhook_secret({WEBHOOK_SECRET_ENV: secret})
    message = str(caught.value)
    assert message.startswith("TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters of A-Z, "
                              "a-z, 0-9, _ and - (Telegram's rule)")
    assert secret not in message


def test_the_secret_is_redacted_like_the_token() -> None:
    redactor = TokenRedactingFilter(TOKEN, SECRET)
    text = f"setWebhook {{'secret_token': '{SECRET}'}} via /bot{TOKEN}/setWebhook"
    assert redactor.redact(text) == (
        f"setWebhook {{'secret_token': '{REDACTED_SECRET}'}} via /bot{REDACTED}/setWebhook")
    short = TokenRedactingFilter(TOKEN, "k")  # Telegram allows one character: hide it too
    assert "k" not in short.redact("kept").replace(REDACTED_SECRET, "")


def test_no_log_record_shows_the_secret_at_any_level() -> None:
    logger = logging.getLogger("test.webhook.redaction")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        install_token_redaction(TOKEN, logger, webhook_secret=SECRET)
        [redactor] = handler.filters
        record = logger.makeRecord(logger.name, logging.DEBUG, __file__, 1,
                                   "Calling setWebhook with %s", ({"secret_token": SECRET},),
                                   None)
        assert isinstance(redactor, TokenRedactingFilter) and redactor.filter(record)
        assert SECRET not in record.getMessage()
        assert REDACTED_SECRET in record.getMessage()
    finally:
        logger.removeHandler(handler)
