"""Auth middlewares against real aiohttp servers: bearer, password grant, refresh, scoping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from halnav._auth import (
    BearerAuth,
    PasswordGrant,
    ProviderAuth,
    _lifetime,
    password_auth,
)
from halnav._config import Limits
from halnav._http import error_detail
from halnav._transport import Transport
from halnav.errors import AuthenticationError, HTTPStatusError, StateError, UnsafeLinkError

FAST = Limits(backoff_base=0.01, backoff_max=0.05, connect_timeout=2, read_timeout=2)
USER = "tech\\administrator"
PASSWORD = "p@ss w&rd=%3D"  # characters that must survive form encoding

Serve = Callable[[web.Application], Awaitable[TestServer]]
MakeTransport = Callable[..., Transport]


class VeeamLike:
    """A /v5/token endpoint and a bearer-protected API, counting what they see."""

    def __init__(
        self, *, expires_in: float | None = 3600, refuse_refresh: bool = False, delay: float = 0
    ) -> None:
        self.expires_in = expires_in
        self.refuse_refresh = refuse_refresh
        self.delay = delay
        self.grants: list[dict[str, str]] = []
        self.token_content_types: list[str] = []
        self.raw_bodies: list[bytes] = []
        self.valid: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.unauthorized = 0
        self.api_headers: list[str | None] = []
        self.reject_all = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v5/token", self.token)
        app.router.add_route("*", "/v5/{tail:.*}", self.api)
        return app

    async def token(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.raw_bodies.append(raw)
        self.token_content_types.append(request.content_type)
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        self.grants.append(form)
        await asyncio.sleep(self.delay)
        grant = form.get("grant_type")
        if grant == "password":
            if form.get("username") != USER or form.get("password") != PASSWORD:
                return web.json_response(
                    {
                        "error": "invalid_grant",
                        "error_description": "The user name or password is incorrect.",
                    },
                    status=400,
                )
        elif grant == "refresh_token":
            if self.refuse_refresh or form.get("refresh_token") not in self.refresh_tokens:
                return web.json_response(
                    {"error": "invalid_grant", "error_description": "Refresh token expired."},
                    status=400,
                )
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        n = len(self.grants)
        access, refresh = f"AQAAANCMnd8-access-{n}", f"refresh-{n}"
        self.valid.add(access)
        self.refresh_tokens.add(refresh)
        body: dict[str, object] = {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "userName": USER,
        }
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body)

    async def api(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        self.api_headers.append(header)
        await asyncio.sleep(self.delay)
        token = (header or "").removeprefix("Bearer ")
        if self.reject_all or token not in self.valid:
            self.unauthorized += 1
            return web.json_response(
                {"Message": "Authorization has been denied for this request."},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return web.json_response({"ok": True})


async def veeam_transport(
    serve: Serve, make_transport: MakeTransport, veeam: VeeamLike, **kwargs: Any
) -> tuple[Transport, TestServer]:
    server = await serve(veeam.app())
    root = str(server.make_url("/"))
    auth = password_auth(str(server.make_url("/v5/token")), USER, PASSWORD, **kwargs)
    return make_transport(auth=auth, trusted_origins=[root]), server


# --- bearer --------------------------------------------------------------------------------


async def test_bearer_header_sent(serve: Serve, make_transport: MakeTransport) -> None:
    """BearerAuth sends Authorization: Bearer <token> to a trusted origin."""
    veeam = VeeamLike()
    veeam.valid.add("static-token")
    server = await serve(veeam.app())
    transport = make_transport(
        auth=BearerAuth("static-token"), trusted_origins=[str(server.make_url("/"))]
    )
    response = await transport.request("GET", str(server.make_url("/v5/Jobs")))
    assert response.status == 200
    assert veeam.api_headers == ["Bearer static-token"]


def test_reprs_hide_secrets() -> None:
    """No repr shows a token or a password."""
    bearer = BearerAuth("static-token")
    grant = PasswordGrant("https://vbo:4443/v5/token", USER, PASSWORD)
    transport = Transport(auth=bearer, trusted_origins=["https://vbo:4443"])
    assert repr(bearer) == "BearerAuth(token='***')"
    for text in (repr(bearer), repr(grant), repr(ProviderAuth(grant)), repr(transport)):
        assert "static-token" not in text
        assert PASSWORD not in text
    assert "password='***'" in repr(grant)


# --- password grant ------------------------------------------------------------------------


async def test_password_grant_form_body(serve: Serve, make_transport: MakeTransport) -> None:
    """The token request is a form-encoded grant_type=password&username=..&password=.. POST."""
    veeam = VeeamLike()
    transport, server = await veeam_transport(serve, make_transport, veeam)
    await transport.request("GET", str(server.make_url("/v5/Organizations")))
    assert veeam.grants == [{"grant_type": "password", "username": USER, "password": PASSWORD}]
    assert veeam.token_content_types == ["application/x-www-form-urlencoded"]
    assert veeam.raw_bodies[0].startswith(b"grant_type=password&username=tech%5Cadministrator&")
    assert veeam.api_headers == ["Bearer AQAAANCMnd8-access-1"]


async def test_extra_form_fields(serve: Serve, make_transport: MakeTransport) -> None:
    """`extra` fields are added to the grant without overriding the standard ones."""
    veeam = VeeamLike()
    transport, server = await veeam_transport(
        serve,
        make_transport,
        veeam,
        extra={"disable_antiforgery_token": "true", "grant_type": "nope"},
    )
    await transport.request("GET", str(server.make_url("/v5/Organizations")))
    assert veeam.grants[0]["grant_type"] == "password"
    assert veeam.grants[0]["disable_antiforgery_token"] == "true"


async def test_refresh_stampede_makes_one_token_request(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """64 concurrent requests that all meet 401 for an expired token share one refresh."""
    veeam = VeeamLike(delay=0.02)
    transport, server = await veeam_transport(serve, make_transport, veeam)
    await transport.request("GET", str(server.make_url("/v5/warmup")))
    assert len(veeam.grants) == 1
    veeam.valid.clear()  # the server expires the token; the client still believes in it
    async with asyncio.TaskGroup() as tg:
        calls = [
            tg.create_task(transport.request("GET", str(server.make_url(f"/v5/items/{i}"))))
            for i in range(64)
        ]
    assert all(call.result().status == 200 for call in calls)
    assert len(veeam.grants) == 2
    assert veeam.grants[1] == {"grant_type": "refresh_token", "refresh_token": "refresh-1"}
    assert veeam.unauthorized == 64


async def test_initial_token_is_single_flight(serve: Serve, make_transport: MakeTransport) -> None:
    """Many first requests at once cause a single password grant."""
    veeam = VeeamLike(delay=0.02)
    transport, server = await veeam_transport(serve, make_transport, veeam)
    async with asyncio.TaskGroup() as tg:
        for i in range(20):
            tg.create_task(transport.request("GET", str(server.make_url(f"/v5/items/{i}"))))
    assert len(veeam.grants) == 1
    assert veeam.unauthorized == 0


async def test_proactive_refresh_before_expiry(serve: Serve, make_transport: MakeTransport) -> None:
    """A token close to its expiry is refreshed before use, without meeting a 401."""
    veeam = VeeamLike(expires_in=100)
    now = [1000.0]
    transport, server = await veeam_transport(
        serve, make_transport, veeam, refresh_margin=10, clock=lambda: now[0]
    )
    await transport.request("GET", str(server.make_url("/v5/a")))
    now[0] += 89.9  # 0.1 s before expires_in - refresh_margin
    await transport.request("GET", str(server.make_url("/v5/b")))
    assert len(veeam.grants) == 1  # still fresh
    now[0] += 0.2  # now within the margin: refreshed before use
    await transport.request("GET", str(server.make_url("/v5/c")))
    assert [g["grant_type"] for g in veeam.grants] == ["password", "refresh_token"]
    assert veeam.unauthorized == 0
    assert veeam.api_headers[-1] == "Bearer AQAAANCMnd8-access-2"


async def test_refused_refresh_falls_back_to_password(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """When the refresh grant is refused, a password grant gets a new token."""
    veeam = VeeamLike(refuse_refresh=True)
    transport, server = await veeam_transport(serve, make_transport, veeam)
    await transport.request("GET", str(server.make_url("/v5/a")))
    veeam.valid.clear()
    response = await transport.request("GET", str(server.make_url("/v5/b")))
    assert response.status == 200
    assert [g["grant_type"] for g in veeam.grants] == ["password", "refresh_token", "password"]


async def test_bad_credentials(
    serve: Serve, make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused credentials raise AuthenticationError with the server's text, never the password."""
    caplog.set_level(logging.DEBUG)
    veeam = VeeamLike()
    server = await serve(veeam.app())
    token_url = str(server.make_url("/v5/token"))
    auth = password_auth(token_url, USER, "wrong " + PASSWORD)
    transport = make_transport(auth=auth, trusted_origins=[str(server.make_url("/"))])
    with pytest.raises(AuthenticationError) as info:
        await transport.request("GET", str(server.make_url("/v5/a")))
    error = info.value
    assert (error.status, error.method, error.url) == (400, "POST", token_url)
    assert error.detail == "The user name or password is incorrect."
    for text in (str(error), repr(error), *getattr(error, "__notes__", ()), caplog.text):
        assert PASSWORD not in text
    assert veeam.api_headers == []


async def test_persistent_401_is_authentication_error(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """A 401 that survives one refresh raises AuthenticationError; the request is tried twice."""
    veeam = VeeamLike()
    transport, server = await veeam_transport(serve, make_transport, veeam)
    await transport.request("GET", str(server.make_url("/v5/a")))
    veeam.reject_all = True
    with pytest.raises(AuthenticationError) as info:
        await transport.request("GET", str(server.make_url("/v5/b")))
    assert info.value.status == 401
    assert "Authorization has been denied" in info.value.detail
    assert [g["grant_type"] for g in veeam.grants] == ["password", "refresh_token"]
    assert veeam.unauthorized == 2


async def test_custom_token_provider(serve: Serve, make_transport: MakeTransport) -> None:
    """Any TokenProvider works: on 401 it is asked once for a forced refresh."""

    class Rotating:
        def __init__(self) -> None:
            self.calls: list[bool] = []
            self.token = "old"

        async def get_token(self, *, force_refresh: bool = False) -> str:
            self.calls.append(force_refresh)
            if force_refresh:
                self.token = "new"
            return self.token

    veeam = VeeamLike()
    veeam.valid.add("new")
    server = await serve(veeam.app())
    provider = Rotating()
    transport = make_transport(
        auth=ProviderAuth(provider), trusted_origins=[str(server.make_url("/"))]
    )
    response = await transport.request("GET", str(server.make_url("/v5/a")))
    assert response.status == 200
    assert veeam.api_headers == ["Bearer old", "Bearer new"]
    assert provider.calls == [False, False, True]


async def test_401_without_auth_is_plain_status_error(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """Without auth a 401 is an HTTPStatusError, not an AuthenticationError."""
    veeam = VeeamLike()
    server = await serve(veeam.app())
    transport = make_transport()
    with pytest.raises(HTTPStatusError) as info:
        await transport.request("GET", str(server.make_url("/v5/a")))
    assert not isinstance(info.value, AuthenticationError)
    assert "Authorization has been denied" in str(info.value)


# --- scoping -------------------------------------------------------------------------------


async def test_token_never_sent_to_untrusted_origin(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """Requests to an untrusted origin carry no token and do not even trigger a grant."""
    veeam = VeeamLike()
    home = await serve(veeam.app())
    stranger = VeeamLike()
    elsewhere = await serve(stranger.app())
    auth = password_auth(str(home.make_url("/v5/token")), USER, PASSWORD)
    transport = make_transport(auth=auth, trusted_origins=[str(home.make_url("/"))])
    with pytest.raises(HTTPStatusError, match="HTTP 401"):
        await transport.request("GET", str(elsewhere.make_url("/v5/a")))
    assert stranger.api_headers == [None]
    assert veeam.grants == []
    await transport.request("GET", str(home.make_url("/v5/a")))
    with pytest.raises(HTTPStatusError, match="HTTP 401"):
        await transport.request("GET", str(elsewhere.make_url("/v5/b")))
    assert stranger.api_headers == [None, None]


async def test_untrusted_token_url_is_refused(serve: Serve, make_transport: MakeTransport) -> None:
    """A token endpoint on an untrusted origin never receives the password."""
    api = VeeamLike()
    home = await serve(api.app())
    stranger = VeeamLike()
    elsewhere = await serve(stranger.app())
    auth = password_auth(str(elsewhere.make_url("/v5/token")), USER, PASSWORD)
    transport = make_transport(auth=auth, trusted_origins=[str(home.make_url("/"))])
    with pytest.raises(UnsafeLinkError, match="not trusted"):
        await transport.request("GET", str(home.make_url("/v5/a")))
    assert stranger.grants == []
    assert api.api_headers == []


async def test_unbound_grant_is_a_state_error() -> None:
    """A PasswordGrant used outside a transport says how to use it."""
    grant = PasswordGrant("https://vbo:4443/v5/token", USER, PASSWORD)
    with pytest.raises(StateError, match="not bound"):
        await grant.get_token()


# --- pure helpers --------------------------------------------------------------------------


def test_lifetime_from_expires_forms() -> None:
    """Expiry comes from expires_in, else .expires in RFC 1123 or ISO 8601."""
    soon = datetime.now(UTC) + timedelta(seconds=100)
    assert _lifetime({"expires_in": 3599}) == 3599
    assert _lifetime({"expires_in": "60"}) == 60
    rfc = _lifetime({".expires": format_datetime(soon, usegmt=True)})
    iso = _lifetime({".expires": soon.isoformat().replace("+00:00", "Z")})
    assert rfc is not None
    assert 95 < rfc <= 100
    assert iso is not None
    assert 95 < iso <= 100
    assert _lifetime({".expires": "garbage"}) is None
    assert _lifetime({}) is None


def test_error_detail_sources() -> None:
    """The detail comes from message / detail / title / error_description / error, else text."""
    assert error_detail("application/json", b'{"MESSAGE": "m"}') == "m"
    problem = b'{"title": "t", "detail": "d"}'
    assert error_detail("application/problem+json", problem) == "d"
    oauth = b'{"error": "invalid_grant", "error_description": "nope"}'
    assert error_detail("application/json", oauth) == "nope"
    assert error_detail("text/plain", b"line one\n  line two") == "line one line two"
    assert len(error_detail("text/plain", b"x" * 1000)) == 200
    page = b"<!DOCTYPE HTML>\n<html><head><title>Error response</title></head></html>"
    assert error_detail("text/html", page) == ""  # markup: the status's phrase says it
    assert error_detail("", page) == ""  # an untyped HTML page too
    assert error_detail("", b"") == ""


async def test_a_short_lived_token_is_refreshed_at_half_its_lifetime(
    serve: Serve, make_transport: MakeTransport
) -> None:
    """The margin is capped at half the lifetime: a 40 s token is not refreshed on every call."""
    veeam = VeeamLike(expires_in=40)
    now = [0.0]
    transport, server = await veeam_transport(serve, make_transport, veeam, clock=lambda: now[0])
    await transport.request("GET", str(server.make_url("/v5/a")))
    now[0] = 19.9  # the default 60 s margin would refresh at once; half of 40 s is 20 s
    await transport.request("GET", str(server.make_url("/v5/b")))
    assert len(veeam.grants) == 1
    now[0] = 20.1
    await transport.request("GET", str(server.make_url("/v5/c")))
    assert [g["grant_type"] for g in veeam.grants] == ["password", "refresh_token"]
