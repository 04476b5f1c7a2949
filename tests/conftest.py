"""Fixtures shared by the test modules: real aiohttp servers on 127.0.0.1 and transports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from halnav import _crawl
from halnav._config import Limits
from halnav._transport import Transport

#: Quick retries and short timeouts, so failure paths run in milliseconds.
FAST = Limits(
    backoff_base=0.01,
    backoff_max=0.05,
    connect_timeout=2.0,
    read_timeout=2.0,
    total_timeout=10.0,
)


@pytest.fixture(autouse=True)
def _quick_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The end-of-walk retry of transient failures waits 1 s; tests need not."""
    monkeypatch.setattr(_crawl, "_RETRY_PAUSE", 0.01)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
    """Start aiohttp apps on 127.0.0.1:0; close them all at the end."""
    servers: list[TestServer] = []

    async def start(app: web.Application, **kwargs: Any) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def make_transport() -> AsyncIterator[Callable[..., Transport]]:
    """Build transports (``FAST`` limits unless given) and close them all at the end."""
    made: list[Transport] = []

    def make(**kwargs: Any) -> Transport:
        kwargs.setdefault("limits", FAST)
        transport = Transport(**kwargs)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.aclose()
