"""Fixtures shared by the test modules: real aiohttp servers on 127.0.0.1 and transports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
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


# -- the spec contract over the whole suite ---------------------------------------------
# Every answer a v6-v8 simulator gives any test in this session is recorded and, when the
# session ends, validated against Veeam's OpenAPI document of that version (tests/contract.py).
# A breach fails the run even when every test passed. Answers to paths the spec does not
# have at all (a test asking for an unknown path on purpose) are left out if they are 404.

_SUITE_ANSWERS = None
if (Path(__file__).resolve().parents[2] / "shared" / "veeam").is_dir():
    import contract

    from halnav.simulator import _app as _sim_app

    _SUITE_ANSWERS = contract.ContractRecorder()
    _make_app = _sim_app.make_app

    def _recording_make_app(config: Any, *, middlewares: Any = ()) -> web.Application:
        version = config.api_version
        if version in contract.VERSIONS:
            assert _SUITE_ANSWERS is not None
            recorder = contract.recording_middleware(_SUITE_ANSWERS, versions=(version,))
            middlewares = (*middlewares, recorder)
        return _make_app(config, middlewares=middlewares)

    _sim_app.make_app = _recording_make_app


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SUITE_ANSWERS is None or not len(_SUITE_ANSWERS):
        return
    import contract

    kept = contract.ContractRecorder()
    for answer in _SUITE_ANSWERS.answers:
        unknown = contract.find_operation(answer.version, answer.method, answer.path) is None
        if not (unknown and answer.status == 404):
            kept.record(*answer)
    try:
        checked = kept.check()
    except contract.ContractError as error:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nVeeam spec contract (whole suite): FAILED\n{error}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"Veeam spec contract (whole suite): {checked} v6-v8 simulator answers valid"
        )
