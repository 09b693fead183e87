"""Fixtures: a running sandbox server and a real PTB ``Bot`` talking to it over HTTP."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.sandbox import SandboxOptions, SandboxServer


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (an error here) when RetryAfter.retry_after is read as an int.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture(scope="session")
def tls_context() -> ssl.SSLContext:
    # Building httpx's default TLS context costs ~0.15 s per client; share one.
    return ssl.create_default_context()


def make_request(tls: ssl.SSLContext, read_timeout: float = 5.0) -> HTTPXRequest:
    """A PTB HTTP request object reusing one TLS context (the sandbox is plain HTTP)."""
    return HTTPXRequest(read_timeout=read_timeout, httpx_kwargs={"verify": tls})


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxOptions()) as running:
        yield running


@pytest.fixture
async def bot(server: SandboxServer, tls_context: ssl.SSLContext) -> AsyncIterator[Bot]:
    client = Bot(
        "123:ABC",
        base_url=server.base_url,
        request=make_request(tls_context),
        get_updates_request=make_request(tls_context, read_timeout=10.0),
    )
    async with client:
        yield client
