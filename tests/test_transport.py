"""Transport against real aiohttp servers on 127.0.0.1: limits, retries, errors, files, TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

import halnav
from halnav._auth import BearerAuth
from halnav._config import Limits
from halnav._transport import (
    Redirect,
    Response,
    RetryPlan,
    Transport,
    hop_headers,
    plan_redirect,
    retry_failure,
    retry_status,
    without_body_headers,
)
from halnav.errors import (
    ConnectError,
    HTTPStatusError,
    InsecureTLSWarning,
    LimitExceededError,
    RequestTimeoutError,
    StateError,
    TLSError,
    TransportError,
    UnsafeLinkError,
)

FAST = Limits(
    backoff_base=0.01,
    backoff_max=0.05,
    connect_timeout=2.0,
    read_timeout=2.0,
    total_timeout=10.0,
)

Serve = Callable[..., Awaitable[TestServer]]
MakeTransport = Callable[..., Transport]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def app_with(*routes: tuple[str, str, Handler]) -> web.Application:
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app


class Gauge:
    """Counts requests and the most that were in progress at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.count = 0

    async def hold(self, seconds: float) -> None:
        self.count += 1
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


def slow_app(gauge: Gauge, seconds: float) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await gauge.hold(seconds)
        return web.json_response({"ok": True})

    return app_with(("GET", "/{tail:.*}", handler))


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.perf
async def test_requests_overlap(serve: Serve, make_transport: MakeTransport) -> None:
    """20 requests to a 200 ms endpoint run concurrently, not one after another."""
    gauge = Gauge()
    server = await serve(slow_app(gauge, 0.2))
    transport = make_transport()
    started = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(transport.request("GET", str(server.make_url(f"/{i}"))))
            for i in range(20)
        ]
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 * 20 * 0.2
    assert all(t.result().status == 200 for t in tasks)
    assert gauge.peak > 1


async def test_per_host_limit_holds(serve: Serve, make_transport: MakeTransport) -> None:
    """No more than Limits.per_host requests reach one origin at once."""
    gauge = Gauge()
    server = await serve(slow_app(gauge, 0.05))
    transport = make_transport(limits=Limits(concurrency=20, per_host=3, backoff_base=0.01))
    async with asyncio.TaskGroup() as tg:
        for i in range(12):
            tg.create_task(transport.request("GET", str(server.make_url(f"/{i}"))))
    assert gauge.peak == 3
    assert transport.statistics().max_in_flight == 3


async def test_global_limit_across_origins(serve: Serve, make_transport: MakeTransport) -> None:
    """Limits.concurrency bounds requests in flight over all origins together."""
    gauge = Gauge()
    first = await serve(slow_app(gauge, 0.05))
    second = await serve(slow_app(gauge, 0.05))
    transport = make_transport(limits=Limits(concurrency=4, backoff_base=0.01))
    async with asyncio.TaskGroup() as tg:
        for i in range(10):
            for server in (first, second):
                tg.create_task(transport.request("GET", str(server.make_url(f"/{i}"))))
    assert gauge.peak == 4
    assert gauge.count == 20


async def test_limits_hold_on_a_borrowed_session(serve: Serve) -> None:
    """The per-origin limit is enforced by the transport even on a borrowed, unlimited session."""
    gauge = Gauge()
    server = await serve(slow_app(gauge, 0.05))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        transport = Transport(session=session, limits=Limits(concurrency=10, per_host=2))
        async with asyncio.TaskGroup() as tg:
            for i in range(8):
                tg.create_task(transport.request("GET", str(server.make_url(f"/{i}"))))
        await transport.aclose()
        assert not session.closed
    assert gauge.peak == 2


# --- retries -------------------------------------------------------------------------------


def scripted(
    statuses: list[int], headers: dict[str, str] | None = None
) -> tuple[web.Application, list[str]]:
    """An app answering the scripted statuses in turn, then 200; records the methods seen."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.method)
        if len(seen) <= len(statuses):
            return web.json_response(
                {"message": "busy"}, status=statuses[len(seen) - 1], headers=headers
            )
        return web.json_response({"ok": True})

    return app_with(("*", "/x", handler)), seen


async def test_retries_502_503_then_succeeds(serve: Serve, make_transport: MakeTransport) -> None:
    """A GET that meets 503 then 502 is retried and returns the 200."""
    app, seen = scripted([503, 502])
    server = await serve(app)
    transport = make_transport()
    response = await transport.request("GET", str(server.make_url("/x")))
    assert response.status == 200
    assert len(seen) == 3
    stats = transport.statistics()
    assert (stats.retries, stats.requests, stats.responses, stats.errors) == (2, 3, 3, 0)


async def test_gives_up_after_retries_with_a_note(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """When retries run out, the HTTPStatusError notes how many attempts were made."""
    app, seen = scripted([503] * 10)
    server = await serve(app)
    transport = make_transport(limits=Limits(retries=2, backoff_base=0.01))
    with pytest.raises(HTTPStatusError) as info:
        await transport.request("GET", str(server.make_url("/x")))
    assert info.value.status == 503
    assert "after 3 attempts" in info.value.__notes__
    assert len(seen) == 3


@pytest.mark.perf
async def test_retry_after_seconds_is_honoured(serve: Serve, make_transport: MakeTransport) -> None:
    """A 503 with Retry-After: 1 makes the retry wait about one second."""
    app, seen = scripted([503], {"Retry-After": "1"})
    server = await serve(app)
    transport = make_transport()
    started = time.monotonic()
    response = await transport.request("GET", str(server.make_url("/x")))
    assert response.status == 200
    assert 0.9 <= time.monotonic() - started < 3.0
    assert len(seen) == 2


@pytest.mark.perf
async def test_retry_after_http_date_is_honoured(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A 429 with an HTTP-date Retry-After waits until about that time."""
    when = datetime.now(UTC) + timedelta(seconds=2)
    app, seen = scripted([429], {"Retry-After": format_datetime(when, usegmt=True)})
    server = await serve(app)
    transport = make_transport()
    started = time.monotonic()
    response = await transport.request("GET", str(server.make_url("/x")))
    assert response.status == 200
    assert 0.5 <= time.monotonic() - started < 3.5
    assert len(seen) == 2


@pytest.mark.perf
async def test_retry_after_beyond_the_limit_is_not_waited_for(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A Retry-After longer than max_retry_after raises at once, with a note."""
    app, seen = scripted([503], {"Retry-After": "3600"})
    server = await serve(app)
    transport = make_transport(limits=Limits(max_retry_after=5, backoff_base=0.01))
    started = time.monotonic()
    with pytest.raises(HTTPStatusError) as info:
        await transport.request("GET", str(server.make_url("/x")))
    assert time.monotonic() - started < 1
    assert any("max_retry_after" in note for note in info.value.__notes__)
    assert len(seen) == 1


async def test_post_not_retried_on_503(serve: Serve, make_transport: MakeTransport) -> None:
    """A POST meeting a 503 without Retry-After is not repeated."""
    app, seen = scripted([503])
    server = await serve(app)
    transport = make_transport()
    with pytest.raises(HTTPStatusError) as info:
        await transport.request("POST", str(server.make_url("/x")), json={"a": 1})
    assert info.value.status == 503
    assert seen == ["POST"]


async def test_post_retried_on_429_with_retry_after(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A POST meeting 429 with Retry-After is repeated once the server allows it."""
    app, seen = scripted([429], {"Retry-After": "0"})
    server = await serve(app)
    transport = make_transport()
    response = await transport.request("POST", str(server.make_url("/x")), json={"a": 1})
    assert response.status == 200
    assert seen == ["POST", "POST"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_post_retried_when_connection_refused(make_transport: MakeTransport) -> None:
    """A POST whose connection was refused (never sent) is retried until the server is up."""
    port = free_port()
    seen: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"ok": True}, status=201)

    runner = web.AppRunner(app_with(("POST", "/x", handler)))
    await runner.setup()
    transport = make_transport(limits=Limits(retries=30, backoff_base=0.02, backoff_max=0.05))

    async def start_later() -> None:
        await asyncio.sleep(0.15)
        await web.TCPSite(runner, "127.0.0.1", port).start()

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(start_later())
            call = tg.create_task(
                transport.request("POST", f"http://127.0.0.1:{port}/x", json={"a": 1})
            )
    finally:
        await runner.cleanup()
    assert call.result().status == 201
    assert seen == [b'{"a": 1}']
    assert transport.statistics().retries >= 1


async def test_retry_budget_stops_retries(serve: Serve, make_transport: MakeTransport) -> None:
    """Once the transport-wide retry budget is spent, failures are raised without retrying."""
    app, seen = scripted([503] * 100)
    server = await serve(app)
    transport = make_transport(
        limits=Limits(retries=5, retry_budget=0.0, retry_budget_min=2, backoff_base=0.01)
    )
    with pytest.raises(HTTPStatusError) as first:
        await transport.request("GET", str(server.make_url("/x")))
    assert len(seen) == 3
    assert any("retry budget" in note for note in first.value.__notes__)
    with pytest.raises(HTTPStatusError) as second:
        await transport.request("GET", str(server.make_url("/x")))
    assert len(seen) == 4
    assert any("retry budget" in note for note in second.value.__notes__)
    stats = transport.statistics()
    assert (stats.retries, stats.retry_budget_spent, stats.errors) == (2, 2, 2)


# --- failures ------------------------------------------------------------------------------


async def test_read_timeout(serve: Serve, make_transport: MakeTransport) -> None:
    """A server that answers too slowly raises RequestTimeoutError, which is a TimeoutError."""

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="late")

    server = await serve(app_with(("GET", "/slow", handler)))
    transport = make_transport(limits=Limits(read_timeout=0.1, retries=0))
    with pytest.raises(RequestTimeoutError) as info:
        await transport.request("GET", str(server.make_url("/slow")))
    assert isinstance(info.value, TimeoutError)
    assert "read timeout" in str(info.value)
    assert "/slow" in str(info.value)


async def test_dropped_connection_is_connect_error(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A server that closes the connection without answering raises ConnectError."""
    seen: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(1)
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.05)
        return web.Response(text="never sent")

    server = await serve(app_with(("GET", "/drop", handler)))
    transport = make_transport(limits=Limits(retries=1, backoff_base=0.01))
    with pytest.raises(ConnectError) as info:
        await transport.request("GET", str(server.make_url("/drop")))
    # aiohttp itself resends an idempotent request once when a connection drops
    # (stale keep-alive recovery), so the server may see 2 per transport attempt.
    assert len(seen) in (2, 4)
    assert "after 2 attempts" in info.value.__notes__


async def test_status_error_carries_server_message(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A 404 becomes HTTPStatusError with the status and the Veeam {"Message"} text."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"Message": "Restore session not found."}, status=404)

    server = await serve(app_with(("GET", "/missing", handler)))
    transport = make_transport()
    with pytest.raises(HTTPStatusError) as info:
        await transport.request("GET", str(server.make_url("/missing")))
    assert info.value.status == 404
    assert info.value.detail == "Restore session not found."
    assert "HTTP 404: Restore session not found." in str(info.value)


async def test_status_error_detail_from_text_body(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """Without a JSON explanation the detail is a one-line excerpt of the text body."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="bad\nthing " + "x" * 500, status=400)

    server = await serve(app_with(("GET", "/bad", handler)))
    transport = make_transport()
    with pytest.raises(HTTPStatusError) as info:
        await transport.request("GET", str(server.make_url("/bad")))
    assert info.value.detail.startswith("bad thing xxx")
    assert len(info.value.detail) <= 200
    assert "\n" not in info.value.detail


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_limit(serve: Serve, make_transport: MakeTransport, chunked: bool) -> None:
    """A JSON body larger than max_response_bytes raises LimitExceededError (with or without length)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.json_response({"x": "y" * 5000})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 500)
        await response.write_eof()
        return response

    server = await serve(app_with(("GET", "/big", handler)))
    transport = make_transport(limits=Limits(max_response_bytes=1000))
    with pytest.raises(LimitExceededError) as info:
        await transport.request("GET", str(server.make_url("/big")))
    assert info.value.limit == 1000
    assert info.value.what == "response body"


# --- downloads -----------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 1200  # 300 KiB, several chunks


async def test_download_streams_to_file(
    serve: Serve, make_transport: MakeTransport, tmp_path: Path
) -> None:
    """A binary answer is written to `to` completely, with no temporary file left."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/octet-stream")

    server = await serve(app_with(("POST", "/export", handler)))
    transport = make_transport()
    target = tmp_path / "mailbox.pst"
    response = await transport.request("POST", str(server.make_url("/export")), json={}, to=target)
    assert target.read_bytes() == PAYLOAD
    assert response.body == b""
    assert response.path == target
    assert response.size == len(PAYLOAD)
    assert response.content_type == "application/octet-stream"
    assert [p.name for p in tmp_path.iterdir()] == ["mailbox.pst"]
    assert "mailbox.pst" in repr(response)


async def test_json_answer_is_not_written_to_file(
    serve: Serve, make_transport: MakeTransport, tmp_path: Path
) -> None:
    """With `to`, a JSON answer is still returned in memory and no file is written."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"state": "done"}, content_type="application/hal+json")

    server = await serve(app_with(("GET", "/x", handler)))
    transport = make_transport()
    response = await transport.request("GET", str(server.make_url("/x")), to=tmp_path / "f")
    assert response.body == b'{"state": "done"}'
    assert response.path is None
    assert list(tmp_path.iterdir()) == []


def dropping_app(
    written: asyncio.Event | None = None, release: asyncio.Event | None = None
) -> web.Application:
    """Announces 300 KiB, sends 100 KiB, then drops (or waits for `release`)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(PAYLOAD)
        await response.prepare(request)
        await response.write(PAYLOAD[: 100 * 1024])
        if written is not None:
            written.set()
        if release is not None:
            await release.wait()
        assert request.transport is not None
        request.transport.close()
        return response

    return app_with(("GET", "/file", handler))


async def test_download_dropped_midway_leaves_nothing(
    serve: Serve, make_transport: MakeTransport, tmp_path: Path
) -> None:
    """A connection dropped mid-download raises ConnectError and leaves no file or .part."""
    server = await serve(dropping_app())
    transport = make_transport(limits=Limits(retries=1, backoff_base=0.01))
    target = tmp_path / "data.bin"
    with pytest.raises(ConnectError):
        await transport.request("GET", str(server.make_url("/file")), to=target)
    assert list(tmp_path.iterdir()) == []


async def test_download_cancelled_leaves_nothing(
    serve: Serve, make_transport: MakeTransport, tmp_path: Path
) -> None:
    """Cancelling a download midway removes the partial file."""
    written, release = asyncio.Event(), asyncio.Event()
    server = await serve(dropping_app(written, release))
    transport = make_transport()
    target = tmp_path / "data.bin"
    task = asyncio.create_task(transport.request("GET", str(server.make_url("/file")), to=target))
    await written.wait()
    for _ in range(100):  # wait until the client has started its .part file
        if any(tmp_path.iterdir()):
            break
        await asyncio.sleep(0.01)
    assert [p.name.endswith(".part") for p in tmp_path.iterdir()] == [True]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert list(tmp_path.iterdir()) == []


async def test_error_status_is_never_written(
    serve: Serve, make_transport: MakeTransport, tmp_path: Path
) -> None:
    """A 4xx answer to a download raises HTTPStatusError and writes nothing."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=b"no such item", status=404, content_type="application/octet-stream"
        )

    server = await serve(app_with(("GET", "/file", handler)))
    transport = make_transport()
    with pytest.raises(HTTPStatusError):
        await transport.request("GET", str(server.make_url("/file")), to=tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


# --- redirects and credential scoping ------------------------------------------------------


class Recorder:
    """Records the headers and raw paths an app received."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []

    async def handler(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        self.paths.append(request.raw_path)
        return web.json_response({"method": request.method, "body": (await request.text())})


async def test_cross_origin_redirect_drops_credentials(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A redirect to another origin carries neither the auth token nor caller's Authorization/Cookie."""
    other = Recorder()
    second = await serve(app_with(("*", "/{tail:.*}", other.handler)))
    home = Recorder()

    async def go(request: web.Request) -> web.Response:
        home.headers.append(dict(request.headers))
        raise web.HTTPFound(str(second.make_url("/landing")))

    first = await serve(app_with(("GET", "/go", go)))
    transport = make_transport(
        auth=BearerAuth("s3cret-token"), trusted_origins=[str(first.make_url("/"))]
    )
    response = await transport.request(
        "GET", str(first.make_url("/go")), headers={"Cookie": "session=abc"}
    )
    assert response.url == str(second.make_url("/landing"))
    assert home.headers[0]["Authorization"] == "Bearer s3cret-token"
    assert home.headers[0]["Cookie"] == "session=abc"
    assert "Authorization" not in other.headers[0]
    assert "Cookie" not in other.headers[0]
    assert transport.statistics().redirects == 1


async def test_same_origin_redirect_keeps_credentials(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A redirect within the trusted origin keeps sending the token."""
    landing = Recorder()

    async def go(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/landing")

    server = await serve(app_with(("GET", "/go", go), ("GET", "/landing", landing.handler)))
    transport = make_transport(auth=BearerAuth("tok"), trusted_origins=[str(server.make_url("/"))])
    await transport.request("GET", str(server.make_url("/go")))
    assert landing.headers[0]["Authorization"] == "Bearer tok"


async def test_link_to_other_origin_gets_no_token(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A request to an untrusted origin is made, but without credentials."""
    other = Recorder()
    server = await serve(app_with(("GET", "/{tail:.*}", other.handler)))
    transport = make_transport(auth=BearerAuth("tok"), trusted_origins=["https://api.example:4443"])
    response = await transport.request("GET", str(server.make_url("/x")))
    assert response.status == 200
    assert "Authorization" not in other.headers[0]


async def test_redirect_303_turns_post_into_get(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A 303 after a POST is followed with a GET without body; a 307 keeps method and body."""
    target = Recorder()

    async def see_other(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/target")

    async def temporary(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/target")

    server = await serve(
        app_with(
            ("POST", "/303", see_other),
            ("POST", "/307", temporary),
            ("*", "/target", target.handler),
        )
    )
    transport = make_transport()
    after_303 = await transport.request("POST", str(server.make_url("/303")), json={"a": 1})
    after_307 = await transport.request("POST", str(server.make_url("/307")), json={"a": 1})
    assert (after_303.method, after_303.body) == ("GET", b'{"method": "GET", "body": ""}')
    assert after_307.method == "POST"
    assert after_307.body == b'{"method": "POST", "body": "{\\"a\\": 1}"}'


async def test_redirect_loop_is_bounded(serve: Serve, make_transport: MakeTransport) -> None:
    """More than 10 redirects raise TransportError."""

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    server = await serve(app_with(("GET", "/loop", loop)))
    transport = make_transport()
    with pytest.raises(TransportError, match="redirects"):
        await transport.request("GET", str(server.make_url("/loop")))
    assert transport.statistics().requests == 11


@pytest.mark.parametrize(
    "url",
    ["ftp://example.test/x", "file:///etc/passwd", "//evil.test/x", "javascript:alert(1)", "/rel"],
)
async def test_non_http_scheme_is_refused(make_transport: MakeTransport, url: str) -> None:
    """Anything but an absolute http(s) URL raises UnsafeLinkError before any I/O."""
    transport = make_transport()
    with pytest.raises(UnsafeLinkError):
        await transport.request("GET", url)
    assert transport.statistics().requests == 0


async def test_userinfo_url_refused_without_echoing_password(make_transport: MakeTransport) -> None:
    """A URL with user:password is refused and the password is not in the message."""
    transport = make_transport()
    with pytest.raises(UnsafeLinkError) as info:
        await transport.request("GET", "https://me:hunter2@api.example/x")
    assert "hunter2" not in str(info.value)


def test_trust_compares_resolved_origins() -> None:
    """Trust is by scheme, lowercased host and effective port; userinfo and //-tricks do not pass."""
    transport = Transport(trusted_origins=["https://API.example:443/v5/whatever"])
    assert transport.is_trusted("https://api.example/x")
    assert transport.is_trusted("https://api.example:443/y")
    assert not transport.is_trusted("http://api.example/x")
    assert not transport.is_trusted("https://api.example:4443/x")
    assert not transport.is_trusted("https://api.example@evil.test/")
    assert not transport.is_trusted("//evil.test/x")
    assert not transport.is_trusted("https://api.example.evil.test/")
    assert "https://api.example" in repr(transport)


async def test_percent_encoding_survives(serve: Serve, make_transport: MakeTransport) -> None:
    """%3D in ids reaches the server's raw path unchanged, and params are added to the query."""
    rec = Recorder()
    server = await serve(app_with(("GET", "/{tail:.*}", rec.handler)))
    transport = make_transport()
    url = f"{server.make_url('/')}v5/Mailboxes/AAMk%3D%3D/Folders/a%2Fb?x=%3D"
    response = await transport.request("GET", url, params={"offset": "0"})
    assert rec.paths == ["/v5/Mailboxes/AAMk%3D%3D/Folders/a%2Fb?x=%3D&offset=0"]
    assert response.url.endswith("/v5/Mailboxes/AAMk%3D%3D/Folders/a%2Fb?x=%3D&offset=0")


async def test_headers_accept_and_user_agent(serve: Serve, make_transport: MakeTransport) -> None:
    """The HAL Accept header and User-Agent are sent; caller headers override case-insensitively;
    a client-wide header other than content negotiation goes to trusted origins (issue 14)."""
    rec = Recorder()
    server = await serve(app_with(("GET", "/{tail:.*}", rec.handler)))
    origin = str(server.make_url("/")).rstrip("/")
    transport = make_transport(headers={"X-Tenant": "t1"}, trusted_origins=[origin])
    await transport.request("GET", str(server.make_url("/a")))
    await transport.request("GET", str(server.make_url("/b")), headers={"accept": "text/csv"})
    assert rec.headers[0]["Accept"].startswith("application/hal+json")
    assert rec.headers[0]["User-Agent"] == f"halnav/{halnav.__version__}"
    assert rec.headers[0]["X-Tenant"] == "t1"
    assert rec.headers[1]["Accept"] == "text/csv"


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed; cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_server(serve: Serve, certificate: tuple[Path, Path]) -> TestServer:
    """An https server using the self-signed certificate."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    rec = Recorder()
    return await serve(app_with(("GET", "/{tail:.*}", rec.handler)), ssl=context)


async def test_tls_verification_on_by_default(
    tls_server: TestServer, make_transport: MakeTransport
) -> None:
    """A self-signed server fails with TLSError that explains cafile and insecure."""
    transport = make_transport()
    with pytest.raises(TLSError) as info:
        await transport.request("GET", str(tls_server.make_url("/x")))
    message = str(info.value)
    assert "cafile" in message
    assert "insecure" in message
    assert str(tls_server.make_url("/x")) in message
    assert transport.statistics().retries == 0


async def test_tls_cafile(
    tls_server: TestServer, make_transport: MakeTransport, certificate: tuple[Path, Path]
) -> None:
    """cafile= trusts the server's certificate."""
    transport = make_transport(cafile=str(certificate[0]))
    response = await transport.request("GET", str(tls_server.make_url("/x")))
    assert response.status == 200


async def test_tls_insecure_warns(tls_server: TestServer, make_transport: MakeTransport) -> None:
    """insecure=True skips verification and warns InsecureTLSWarning once at open."""
    transport = make_transport(insecure=True)
    with pytest.warns(InsecureTLSWarning):
        await transport.open()
    response = await transport.request("GET", str(tls_server.make_url("/x")))
    assert response.status == 200


async def test_tls_insecure_on_borrowed_session(
    tls_server: TestServer, certificate: tuple[Path, Path]
) -> None:
    """TLS options also apply to a borrowed session (passed per request)."""
    async with aiohttp.ClientSession() as session:
        transport = Transport(session=session, cafile=str(certificate[0]))
        response = await transport.request("GET", str(tls_server.make_url("/x")))
        await transport.aclose()
    assert response.status == 200


# --- lifecycle -----------------------------------------------------------------------------


async def test_borrowed_session_is_not_closed(serve: Serve) -> None:
    """aclose() leaves a borrowed session open; the owned one is closed."""
    rec = Recorder()
    server = await serve(app_with(("GET", "/{tail:.*}", rec.handler)))
    async with aiohttp.ClientSession() as session:
        borrowed = Transport(session=session)
        await borrowed.request("GET", str(server.make_url("/x")))
        await borrowed.aclose()
        await borrowed.aclose()
        assert not session.closed
        assert "borrowed" in repr(borrowed)
        assert "closed" in repr(borrowed)
    owned = Transport()
    assert "unopened" in repr(owned)
    await owned.request("GET", str(server.make_url("/x")))
    own_session = owned.session
    assert own_session is not None
    assert "open owned" in repr(owned)
    await owned.aclose()
    assert own_session.closed
    with pytest.raises(StateError):
        await owned.request("GET", str(server.make_url("/x")))


async def test_response_and_statistics(serve: Serve, make_transport: MakeTransport) -> None:
    """Responses expose status, headers, media type and size; statistics count them."""
    rec = Recorder()
    server = await serve(app_with(("GET", "/{tail:.*}", rec.handler)))
    transport = make_transport()
    response = await transport.request("GET", str(server.make_url("/x")))
    assert isinstance(response, Response)
    assert response.headers["content-type"].startswith("application/json")
    assert response.content_type == "application/json"
    assert response.size == len(response.body) > 0
    stats = transport.statistics()
    assert stats.requests == stats.responses == 1
    assert stats.bytes_received == response.size
    assert stats.in_flight == 0


# -- the retry decisions, as tables ---------------------------------------------------------

_LIMITS = Limits(retries=2, max_retry_after=60.0)


@pytest.mark.parametrize(
    ("status", "idempotent", "retry_after", "attempt", "expected"),
    [
        (503, True, None, 1, RetryPlan(retry=True)),  # a GET on 503: backoff
        (502, True, None, 2, RetryPlan(retry=True)),
        (504, True, None, 3, RetryPlan(retry=False)),  # past retries=2 extra attempts
        (500, True, None, 1, RetryPlan(retry=False)),  # 500 is not transient
        (404, True, None, 1, RetryPlan(retry=False)),
        (503, False, None, 1, RetryPlan(retry=False)),  # a POST without Retry-After
        (503, False, "7", 1, RetryPlan(retry=True, wait=7.0)),  # the server asked: any method
        (429, False, "0", 1, RetryPlan(retry=True, wait=0.0)),
        (429, True, None, 1, RetryPlan(retry=True)),  # a GET on 429 without one: backoff
        (429, False, None, 1, RetryPlan(retry=False)),  # a POST on 429 without one: no
        (502, True, "5", 1, RetryPlan(retry=True)),  # Retry-After counts on 429/503 only
        (503, True, "soon", 1, RetryPlan(retry=True)),  # unreadable: backoff, as without it
        (
            429,
            True,
            "3600",
            1,
            RetryPlan(
                retry=False,
                note="the server asked to retry after 3600 s, longer than "
                "Limits.max_retry_after=60 s",
            ),
        ),
        (429, True, "30", 3, RetryPlan(retry=False)),  # asked nicely, but out of attempts
    ],
)
def test_the_retry_decision_for_an_error_status(
    status: int, idempotent: bool, retry_after: str | None, attempt: int, expected: RetryPlan
) -> None:
    """retry_status is a pure function of the answer, the method and the attempt."""
    plan = retry_status(
        status, idempotent=idempotent, retry_after=retry_after, attempt=attempt, limits=_LIMITS
    )
    assert plan == expected


@pytest.mark.parametrize(
    ("error", "idempotent", "unsent", "attempt", "expected"),
    [
        (ConnectError("GET", "https://h/", "refused"), True, False, 1, True),
        (ConnectError("GET", "https://h/", "refused"), True, False, 3, False),  # past retries
        (ConnectError("POST", "https://h/", "refused"), False, True, 1, True),  # never sent
        (RequestTimeoutError("POST", "https://h/", "read"), False, False, 1, False),  # maybe ran
        (RequestTimeoutError("GET", "https://h/", "read"), True, False, 2, True),
        (TLSError("GET", "https://h/", "bad certificate"), True, True, 1, False),  # same again
    ],
)
def test_the_retry_decision_for_a_request_without_an_answer(
    error: TransportError, idempotent: bool, unsent: bool, attempt: int, expected: bool
) -> None:
    """retry_failure: idempotent or unsent requests, no TLS failure, within the retries."""
    decided = retry_failure(
        error, idempotent=idempotent, unsent=unsent, attempt=attempt, limits=_LIMITS
    )
    assert decided is expected


REFUSED = "refusing to resend the body to another origin"


@pytest.mark.parametrize(
    ("status", "method", "has_body", "elsewhere", "expected"),
    [
        (301, "POST", True, False, Redirect("GET", keep_body=False)),
        (302, "PUT", True, True, Redirect("GET", keep_body=False)),  # the body stays behind
        (303, "POST", True, False, Redirect("GET", keep_body=False)),
        (303, "GET", False, False, Redirect("GET", keep_body=False)),
        (302, "HEAD", False, False, Redirect("HEAD")),  # HEAD stays HEAD
        (307, "POST", True, False, Redirect("POST")),  # same or trusted origin: body resent
        (308, "PUT", False, True, Redirect("PUT")),  # no body, nothing to protect
        (307, "POST", True, True, Redirect("POST", refuses=REFUSED)),
        (308, "PATCH", True, True, Redirect("PATCH", refuses=REFUSED)),
    ],
)
def test_the_redirect_decision(
    status: int, method: str, has_body: bool, elsewhere: bool, expected: Redirect
) -> None:
    """plan_redirect: RFC 9110's method rewrite, and no body to an untrusted other origin."""
    plan = plan_redirect(status, method, has_body=has_body, untrusted_elsewhere=elsewhere)
    assert plan == expected


@pytest.mark.parametrize(
    ("headers", "elsewhere", "kept"),
    [
        ({"Authorization": "t", "Accept": "a"}, True, {"Accept"}),
        ({"cookie": "c", "Proxy-Authorization": "p", "X": "x"}, True, {"X"}),  # any case
        ({"Authorization": "t", "Accept": "a"}, False, {"Authorization", "Accept"}),
        ({"Accept": "a"}, True, {"Accept"}),
    ],
)
def test_credentials_stay_with_the_first_and_trusted_origins(
    headers: dict[str, str], elsewhere: bool, kept: set[str]
) -> None:
    """hop_headers strips the three credential headers on a hop to an untrusted other origin."""
    sent = CIMultiDict(headers)
    hop = hop_headers(sent, untrusted_elsewhere=elsewhere)
    assert {name.lower() for name in hop} == {name.lower() for name in kept}
    assert dict(sent) == headers  # the caller's headers are never changed
    trimmed = without_body_headers(CIMultiDict({"Content-Type": "application/json", **headers}))
    assert "Content-Type" not in trimmed


async def test_proxies_come_from_the_environment_as_for_curl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY routes requests through a proxy (its credentials to it only); NO_PROXY not."""
    seen: list[tuple[str, str | None, str | None]] = []

    async def forward(request: web.Request) -> web.Response:
        # A forward proxy gets the absolute URL; this one answers for the origin itself.
        seen.append((str(request.url), request.headers.get("Proxy-Authorization"), request.host))
        return web.json_response({"via": "proxy"})

    proxy_app = web.Application()
    proxy_app.router.add_route("*", "/{tail:.*}", forward)

    async def direct(_request: web.Request) -> web.Response:
        return web.json_response({"via": "direct"})

    origin_app = web.Application()
    origin_app.router.add_get("/x", direct)
    async with (
        TestServer(proxy_app, host="127.0.0.1") as proxy,
        TestServer(origin_app, host="127.0.0.1") as origin,
    ):
        port = proxy.port
        monkeypatch.setenv("HTTP_PROXY", f"http://agent:pr0xy-s3cret@127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", f"127.0.0.1:{origin.port}")
        async with contextlib.aclosing(Transport()) as transport:
            via_proxy = await transport.request("GET", "http://api.invalid/v5/x")
            bypassed = await transport.request("GET", str(origin.make_url("/x")))
        async with contextlib.aclosing(Transport(proxies_from_env=False)) as transport:
            with pytest.raises(ConnectError):
                await transport.request("GET", "http://api.invalid/v5/x")
    assert via_proxy.body == b'{"via": "proxy"}'
    assert bypassed.body == b'{"via": "direct"}'
    assert len(seen) == 1
    url, proxy_auth, host = seen[0]
    assert url == "http://api.invalid/v5/x"
    assert host == "api.invalid"
    assert proxy_auth == "Basic " + base64.b64encode(b"agent:pr0xy-s3cret").decode()
