"""Security: credentials only reach trusted origins, unsafe links are refused, secrets never leak.

Two real servers on 127.0.0.1: ``home`` (the API: trusted, with a token
endpoint) and ``other`` (another port, so another origin) which records every
header it receives. Credentials come in three forms: a bearer token
(``auth="..."``), the OAuth2 password grant with refresh, and a caller-supplied
``Authorization`` header (``Navigator(headers=...)``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer
from test_outcomes import start

import halnav
from halnav import ActionRule, Navigator, Scope, crawl, password_auth
from halnav._transport import Transport
from halnav.errors import (
    AuthenticationError,
    HalnavError,
    InsecureTLSWarning,
    TLSError,
    UnsafeLinkError,
)
from halnav.simulator import SimulatorConfig, open_simulator

SENSITIVE = ("Authorization", "Cookie", "Proxy-Authorization")
# Distinctive values: a match anywhere can only be a leak.
PASSWORD = "pw-Zq7!x-PASSWORD-5e1c"
STATIC_TOKEN = "tok-STATIC-0b9d44"
HEADER_TOKEN = "tok-HEADER-7aa310"
ACCESS = ("tok-ACCESS-1-c0ffee", "tok-ACCESS-2-decaf0", "tok-ACCESS-3-f00d55")
REFRESH = ("tok-REFRESH-1-beef01", "tok-REFRESH-2-beef02", "tok-REFRESH-3-beef03")
SECRETS = (PASSWORD, STATIC_TOKEN, HEADER_TOKEN, *ACCESS, *REFRESH)


@attrs.define
class Seen:
    """One request a server received."""

    host: str
    path: str
    headers: dict[str, str]


class Origin:
    """A HAL server that records every request and serves what the test put in ``docs``.

    ``docs`` maps a path to a JSON body; ``redirects`` a path to ``(status,
    Location)``; ``POST /token`` is an OAuth2 password / refresh grant whose
    first access token stops working after ``token_uses`` requests; with
    ``require_auth`` other paths answer 401 without a valid token.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.docs: dict[str, Any] = {}
        self.redirects: dict[str, tuple[int, str]] = {}
        self.errors: dict[str, tuple[int, dict[str, str]]] = {}
        self.raw: dict[str, str] = {}  # path -> a body served as is (torn JSON)
        self.cookies: dict[str, str] = {}  # path -> "name=value" set with its answer
        self.grants: list[dict[str, str]] = []
        self.token_uses: int | None = None
        self.valid: dict[str, int] = {}  # access token -> requests it served
        self.echo_password = False
        self.require_auth = False
        self.app = web.Application()
        self.app.router.add_post("/token", self.token)
        self.app.router.add_route("*", "/{tail:.*}", self.any)

    def url_of(self, server: BaseTestServer, path: str) -> str:
        """The absolute URL of ``path`` on ``server``."""
        return str(server.make_url(path))

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.grants.append(form)
        n = len(self.grants) - 1
        if form.get("grant_type") == "password" and form.get("password") != PASSWORD:
            detail = "invalid_grant"
            if self.echo_password:  # a careless server that echoes what it got
                detail = f"bad password {form.get('password')!r} for {form.get('username')}"
            return web.json_response(
                {"error": "invalid_grant", "error_description": detail}, status=400
            )
        self.valid[ACCESS[n]] = 0
        return web.json_response(
            {
                "access_token": ACCESS[n],
                "refresh_token": REFRESH[n],
                "expires_in": 3600,
                "token_type": "bearer",
            }
        )

    def authorized(self, header: str) -> bool:
        token = header.removeprefix("Bearer ")
        if token in (STATIC_TOKEN, HEADER_TOKEN):
            return True
        if token not in self.valid:
            return False
        self.valid[token] += 1
        if (
            token == ACCESS[0]
            and self.token_uses is not None
            and self.valid[token] > self.token_uses
        ):
            del self.valid[token]  # expired
            return False
        return True

    async def any(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.host, request.path_qs, dict(request.headers)))
        path = request.path_qs
        if path in self.redirects:
            status, location = self.redirects[path]
            return web.Response(status=status, headers={"Location": location})
        if self.require_auth and not self.authorized(request.headers.get("Authorization", "")):
            return web.json_response(
                {"message": "Authorization has been denied for this request."},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if path in self.errors:
            status, error = self.errors[path]
            return web.json_response(error, status=status)
        if path in self.raw:
            return web.Response(text=self.raw[path], content_type="application/json")
        if request.method == "POST":
            return web.json_response({"answer": "done", "_links": {"self": {"href": path}}})
        default = {"_links": {"self": {"href": path}}, "path": path}
        response = web.json_response(self.docs.get(path, default))
        if path in self.cookies:
            name, _, value = self.cookies[path].partition("=")
            response.set_cookie(name, value)
        return response


@attrs.frozen
class Servers:
    """The trusted API (``home``) and another origin (``other``), both recording."""

    home: Origin
    home_server: BaseTestServer
    other: Origin
    other_server: BaseTestServer
    home_port: int
    other_port: int

    def home_url(self, path: str) -> str:
        return self.home.url_of(self.home_server, path)

    def other_url(self, path: str) -> str:
        return self.other.url_of(self.other_server, path)


@contextlib.asynccontextmanager
async def servers() -> AsyncIterator[Servers]:
    """Serve a trusted API and another origin on 127.0.0.1."""
    home, other = Origin(), Origin()
    async with (
        TestServer(home.app, host="127.0.0.1") as home_server,
        TestServer(other.app, host="127.0.0.1") as other_server,
    ):
        assert home_server.port is not None
        assert other_server.port is not None
        yield Servers(home, home_server, other, other_server, home_server.port, other_server.port)


AUTH_KINDS = ["token", "password", "header"]


def navigator(s: Servers, kind: str, **options: Any) -> Navigator:
    """A navigator of the home API with credentials of ``kind``."""
    entry = s.home_url("/api/")
    if kind == "token":
        return Navigator(entry, auth=STATIC_TOKEN, **options)
    if kind == "password":
        return Navigator(
            entry, auth=password_auth(s.home_url("/token"), "admin", PASSWORD), **options
        )
    return Navigator(entry, headers={"Authorization": f"Bearer {HEADER_TOKEN}"}, **options)


def credentials(seen: list[Seen]) -> list[tuple[str, str, str]]:
    """(host, path, header) of every sensitive header in ``seen``."""
    return [
        (s.host, s.path, name)
        for s in seen
        for name in SENSITIVE
        if any(h.lower() == name.lower() for h in s.headers)
    ]


def home_credentials(s: Servers) -> list[str]:
    """Paths of requests that reached home *as 127.0.0.1* with an Authorization header."""
    return [
        seen.path
        for seen in s.home.seen
        if seen.host == f"127.0.0.1:{s.home_port}" and "Authorization" in seen.headers
    ]


# -- credentials stay home ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", AUTH_KINDS)
async def test_links_to_other_origins_get_no_credentials(kind: str) -> None:
    """Absolute, protocol-relative, other-spelling and userinfo links never carry credentials."""
    async with servers() as s:
        p1, p2 = s.home_port, s.other_port
        followed = {
            "absolute": f"http://127.0.0.1:{p2}/absolute",
            "protocol-relative": f"//127.0.0.1:{p2}/protocol-relative",
            "upper-case": f"HTTP://127.0.0.1:{p2}/upper-case",
            # The same server under another name is another origin: no credentials either.
            "localhost": f"http://localhost:{p1}/api/as-localhost",
        }
        refused = {
            "userinfo": f"http://api@127.0.0.1:{p2}/userinfo",
            "userinfo-port": f"http://127.0.0.1:{p1}@127.0.0.1:{p2}/userinfo-port",
            "user-password": f"http://admin:hunter2-pw@127.0.0.1:{p2}/user-password",
        }
        s.home.docs["/api/"] = {
            "_links": {
                "self": {"href": "/api/"},
                "own": {"href": "/api/own"},
                **{rel: {"href": href} for rel, href in {**followed, **refused}.items()},
            }
        }
        async with navigator(s, kind) as nav:
            root = await nav.get("")
            await nav.follow(root, "own")
            for rel in followed:
                await nav.follow(root, rel)
            for rel, href in refused.items():
                with pytest.raises(UnsafeLinkError, match="credentials in the URL") as info:
                    await nav.follow(root, rel)
                assert href.rsplit("/", 1)[1] in str(info.value)  # names the URL
                assert "hunter2" not in str(info.value)
    assert sorted(seen.path for seen in s.other.seen) == [
        "/absolute",
        "/protocol-relative",
        "/upper-case",
    ]
    assert credentials(s.other.seen) == []
    assert [seen.path for seen in s.home.seen if seen.host.startswith("localhost")] == [
        "/api/as-localhost"
    ]
    assert credentials([seen for seen in s.home.seen if seen.host.startswith("localhost")]) == []
    assert home_credentials(s) == ["/api/", "/api/own"]  # credentials were on, at home


@pytest.mark.parametrize("kind", AUTH_KINDS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_to_other_origins_get_no_credentials(kind: str, status: int) -> None:
    """A 301/302/303/307/308 to another origin (absolute or protocol-relative) drops credentials."""
    async with servers() as s:
        s.home.redirects["/api/away"] = (status, s.other_url("/landed"))
        s.home.redirects["/api/away-relative"] = (status, f"//127.0.0.1:{s.other_port}/rel")
        s.other.redirects["/bounce"] = (status, s.home_url("/api/back"))
        s.home.docs["/api/"] = {
            "_links": {
                "self": {"href": "/api/"},
                "away": {"href": "/api/away"},
                "relative": {"href": "/api/away-relative"},
                "bounce": {"href": s.other_url("/bounce")},
            }
        }
        async with navigator(s, kind) as nav:
            root = await nav.get("")
            assert (await nav.follow(root, "away")).state["path"] == "/landed"
            assert (await nav.follow(root, "relative")).state["path"] == "/rel"
            assert (await nav.follow(root, "bounce")).state["path"] == "/api/back"
    assert [seen.path for seen in s.other.seen] == ["/landed", "/rel", "/bounce"]
    assert credentials(s.other.seen) == []
    # Credentials went to home only, and again when a redirect brought the request back.
    assert home_credentials(s) == ["/api/", "/api/away", "/api/away-relative", "/api/back"]


@pytest.mark.parametrize("kind", AUTH_KINDS)
async def test_crawl_across_origins_sends_no_credentials_there(kind: str, tmp_path: Path) -> None:
    """A walk with same_origin=False fetches the other origin, but never with credentials."""
    async with servers() as s:
        s.home.docs["/api/"] = {
            "_links": {
                "self": {"href": "/api/"},
                "out": {"href": s.other_url("/o/1")},
                "mine": {"href": "/api/mine"},
            }
        }
        s.other.docs["/o/1"] = {
            "_links": {
                "self": {"href": "/o/1"},
                "deeper": {"href": "/o/2"},
                "home": {"href": s.home_url("/api/via-other")},
            }
        }
        async with navigator(s, kind) as nav:
            summary = await crawl(
                nav,
                [""],
                scope=Scope(same_origin=False),
                output=tmp_path / "walk.jsonl",
            )
    assert summary.failures == 0
    assert sorted(seen.path for seen in s.other.seen) == ["/o/1", "/o/2"]
    assert credentials(s.other.seen) == []
    assert sorted(home_credentials(s)) == ["/api/", "/api/mine", "/api/via-other"]


async def test_cookies_stay_with_the_trusted_origin() -> None:
    """A session cookie of the API goes back to it only, never to another port of its host."""
    async with servers() as s:
        home = f"http://localhost:{s.home_port}"
        other = f"http://localhost:{s.other_port}"
        s.home.cookies["/api/"] = "session=cookie-SECRET-1f2e"
        s.other.cookies["/planted"] = "session=planted-by-other"
        s.home.docs["/api/"] = {
            "_links": {
                "self": {"href": "/api/"},
                "again": {"href": "/api/again"},
                "other": {"href": f"{other}/planted"},
                "later": {"href": f"{home}/api/later"},
            }
        }
        async with Navigator(f"{home}/api/", auth=STATIC_TOKEN) as nav:
            root = await nav.get("")
            await nav.follow(root, "again")
            await nav.follow(root, "other")
            await nav.follow(root, "later")
    assert credentials(s.other.seen) == []
    sent = {seen.path: seen.headers.get("Cookie") for seen in s.home.seen}
    assert sent == {
        "/api/": None,
        "/api/again": "session=cookie-SECRET-1f2e",
        "/api/later": "session=cookie-SECRET-1f2e",  # the other origin planted nothing
    }


# -- unsafe schemes -----------------------------------------------------------------------------

UNSAFE = [
    "file:///etc/passwd",
    "javascript:alert(document.cookie)",
    "data:application/json,%7B%7D",
    "ftp://127.0.0.1/pub/x",
]


@pytest.mark.parametrize("href", UNSAFE)
async def test_unsafe_schemes_are_refused_by_get_follow_and_act(href: str) -> None:
    """file:, javascript:, data: and ftp: links are refused with an UnsafeLinkError naming them."""
    async with servers() as s:
        s.home.docs["/api/"] = {
            "_links": {"self": {"href": "/api/"}, "evil": {"href": href}},
            "_actions": {"evil": {"uri": href, "method": "POST"}},
            "_templates": {"form": {"method": "POST", "target": href}},
        }
        async with navigator(s, "token") as nav:
            root = await nav.get("")
            requests = len(s.home.seen)
            with pytest.raises(UnsafeLinkError) as by_get:
                await nav.get(href)
            with pytest.raises(UnsafeLinkError) as by_follow:
                await nav.follow(root, "evil")
            with pytest.raises(UnsafeLinkError) as by_act:
                await nav.act(root, "evil", json={})
            with pytest.raises(UnsafeLinkError) as by_form:
                await nav.act(root, "form", json={})
            with pytest.raises(UnsafeLinkError) as by_send:
                await nav.send("GET", href)
    for info in (by_get, by_follow, by_act, by_form, by_send):
        assert href in str(info.value)
        assert "http" in str(info.value)  # says what would be allowed
    assert len(s.home.seen) == requests  # nothing was sent anywhere
    assert s.other.seen == []


async def test_crawl_records_unsafe_links_as_failures_without_fetching(tmp_path: Path) -> None:
    """A walk records each unsafe link as an UnsafeLinkError failure and requests none of them."""
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("file-content-must-not-appear")
    links = [secret_file.as_uri(), *UNSAFE]
    async with servers() as s:
        s.home.docs["/api/"] = {
            "_links": {
                "self": {"href": "/api/"},
                "evil": [{"href": href} for href in links],
            }
        }
        async with navigator(s, "token") as nav:
            everywhere = await crawl(
                nav, [""], scope=Scope(same_origin=False), output=tmp_path / "all.jsonl"
            )
            same_origin = await crawl(nav, [""], output=tmp_path / "same.jsonl")
    records = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    failures = {r["url"]: r["error"] for r in records if "error" in r}
    assert sorted(failures) == sorted(halnav.lowlevel.canonical_url(href) for href in links)
    for url, error in failures.items():
        assert error["type"] == "UnsafeLinkError"
        assert url in error["message"]
    assert everywhere.failures_by_type == {"UnsafeLinkError": len(links)}
    assert "file-content-must-not-appear" not in (tmp_path / "all.jsonl").read_text()
    # On the roots' origin only (the default), they are out of scope: neither fetched nor failed.
    assert same_origin.failures == 0
    assert [seen.path for seen in s.home.seen] == ["/api/", "/api/"]


# -- secrets never leak -------------------------------------------------------------------------


def leaks(text: str | bytes) -> list[str]:
    """The secrets found in ``text``."""
    data = text.encode() if isinstance(text, str) else text
    return [secret for secret in SECRETS if secret.encode() in data]


def describe(exc: BaseException) -> str:
    """Everything an error shows: str, repr, notes, and the same for its causes."""
    parts = [str(exc), repr(exc), *getattr(exc, "__notes__", [])]
    if isinstance(exc, BaseExceptionGroup):
        parts.extend(describe(inner) for inner in exc.exceptions)
    if exc.__cause__ is not None:
        parts.append(describe(exc.__cause__))
    return "\n".join(parts)


async def capture(
    errors: list[BaseException],
    call: Callable[[], Any],
    kind: type[BaseException] = HalnavError,
) -> None:
    """Await ``call()`` and keep the error it raises (it must raise a ``kind``)."""
    with pytest.raises(kind) as info:
        await call()
    errors.append(info.value)


async def test_secrets_never_appear_in_logs_errors_reprs_outputs_or_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Password, tokens and refresh tokens appear in no log, error, repr, record, export or state."""
    caplog.set_level(logging.DEBUG)  # every logger: halnav.*, aiohttp.*, the test servers
    errors: list[BaseException] = []
    texts: list[str] = []
    async with servers() as s:
        s.home.require_auth = True
        s.home.token_uses = 4  # the first access token dies mid-walk: a refresh happens
        s.home.docs["/api/"] = {
            "_links": {
                "self": {"href": "/api/"},
                "items": {"href": "/api/items?offset=0&limit=2"},
                "broken": {"href": "/api/broken"},
                "missing": {"href": "/api/missing"},
                "torn": {"href": "/api/torn"},
                "out": {"href": s.other_url("/elsewhere")},
                "script": {"href": "javascript:alert(1)"},
                "template": {"href": "/api/things/{id}", "templated": True},
            },
            "_actions": {"search": {"uri": "/api/search-action", "method": "POST"}},
        }
        s.home.docs["/api/items?offset=0&limit=2"] = {
            "offset": 0,
            "limit": 2,
            "results": [{"_links": {"self": {"href": f"/api/items/{n}"}}} for n in range(2)],
            "_links": {"self": {"href": "/api/items?offset=0&limit=2"}},
        }
        s.home.errors["/api/broken"] = (500, {"message": "the server broke"})
        s.home.errors["/api/missing"] = (404, {"message": "no such thing"})
        s.home.raw["/api/torn"] = '{"_links": {"self"'
        auth = password_auth(s.home_url("/token"), "tech\\admin", PASSWORD)
        async with Navigator(s.home_url("/api/"), auth=auth) as nav:
            summary = await crawl(
                nav,
                [""],
                output=tmp_path / "walk.jsonl",
                state_dir=tmp_path / "state",
                scope=Scope(same_origin=False),
                actions=[ActionRule(name="search", json={"query": "x"})],
            )
            root = await nav.get("")
            await capture(errors, lambda: nav.get("broken"))
            await capture(errors, lambda: nav.get("missing"))
            await capture(errors, lambda: nav.get("torn"))
            await capture(errors, lambda: nav.follow(root, "script"))
            await capture(errors, lambda: nav.follow(root, "template"))
            await capture(errors, lambda: nav.follow(root, "nothing"))
            await capture(errors, lambda: nav.act(root, "nothing"))
            await capture(errors, lambda: nav.get(f"http://u:{PASSWORD}@127.0.0.1:1/x"))
            await capture(errors, lambda: nav.follow_all(root, "broken"), ExceptionGroup)
            texts += [repr(nav), repr(nav.graph), repr(nav.statistics())]
            graph = nav.graph
        texts += [repr(auth), repr(auth.provider), str(auth)]
        # A refused grant whose server echoes the password back.
        s.home.echo_password = True
        wrong = password_auth(s.home_url("/token"), "admin", f"{PASSWORD}-wrong")
        async with Navigator(s.home_url("/api/"), auth=wrong) as nav:
            await capture(errors, lambda: nav.get(""))
        assert isinstance(errors[-1], AuthenticationError)
        assert "***" in str(errors[-1])
        # The transport and its responses.
        transport = Transport(
            auth=halnav.BearerAuth(STATIC_TOKEN), trusted_origins=[s.home_url("/")]
        )
        async with contextlib.aclosing(transport):
            response = await transport.request("GET", s.home_url("/api/"))
            texts += [repr(transport), repr(response), repr(halnav.BearerAuth(STATIC_TOKEN))]
    # The walk really ran with credentials, refreshed once, and failed where it should.
    assert [g["grant_type"] for g in s.home.grants[:2]] == ["password", "refresh_token"]
    assert summary.documents >= 4
    assert summary.failures >= 4
    assert summary.actions == 1
    # Nothing anywhere.
    texts += [describe(exc) for exc in errors]
    texts += [caplog.text, *(record.getMessage() for record in caplog.records)]
    texts += [json.dumps(graph.to_json()), graph.to_dot(), graph.to_mermaid()]
    graph.write(tmp_path / "graph.json")
    assert caplog.records  # DEBUG logging was on and produced lines
    for text in texts:
        assert leaks(text) == [], text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"walk.jsonl", "state.sqlite3", "graph.json"}
    for path in files:
        assert leaks(path.read_bytes()) == [], path


# -- TLS ----------------------------------------------------------------------------------------


async def test_tls_verified_by_default_cafile_trusts_insecure_warns() -> None:
    """A self-signed server fails naming --cafile/--insecure; cafile works; insecure warns."""
    async with open_simulator(SimulatorConfig(tls=True)) as sim:
        assert sim.url.startswith("https://")
        assert sim.cafile is not None
        async with Navigator(sim.api) as nav:
            with pytest.raises(TLSError) as info:
                await nav.get("Organizations")
        message = str(info.value)
        assert "--cafile" in message
        assert "--insecure" in message
        assert sim.url in message
        auth = password_auth(f"{sim.api}token", sim.username, sim.password)
        async with Navigator(sim.api, auth=auth, cafile=sim.cafile) as nav:
            assert (await nav.get("Organizations")).items
        insecure = Navigator(sim.api, auth=auth, insecure=True)
        with pytest.warns(InsecureTLSWarning, match="insecure"):
            await insecure.open()
        async with insecure as nav:
            assert (await nav.get("Organizations")).items


async def test_307_with_a_body_to_another_origin_is_refused() -> None:
    """A 307/308 that would resend a POST body to an untrusted origin is refused; none arrives."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    received: list[bytes] = []

    async def sink(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({})

    other_app = web.Application()
    other_app.router.add_route("*", "/{tail:.*}", sink)
    other = TestServer(other_app, host="127.0.0.1")
    await other.start_server()
    try:

        async def bounce(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(str(other.make_url("/steal")))

        home_app = web.Application()
        home_app.router.add_post("/action", bounce)
        home = TestServer(home_app, host="127.0.0.1")
        await home.start_server()
        try:
            doc = halnav.parse(
                {"_actions": {"restore": {"uri": "/action", "method": "POST"}}},
                str(home.make_url("/x")),
            )
            async with halnav.Navigator(str(home.make_url("/")), auth="tok-307") as nav:
                with pytest.raises(halnav.errors.TransportError, match="another origin"):
                    await nav.act(doc, "restore", json={"userPassword": "pw-307"})
        finally:
            await home.close()
    finally:
        await other.close()
    assert received == []


async def test_a_token_echoed_in_an_error_body_is_redacted() -> None:
    """A server that echoes the bearer token in an error body does not put it in the error."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"message": f"bad header: {request.headers.get('Authorization')}"}, status=403
        )

    app = web.Application()
    app.router.add_get("/x", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with halnav.Navigator(str(server.make_url("/")), auth="tok-echo-4242") as nav:
            with pytest.raises(halnav.errors.HTTPStatusError) as err:
                await nav.get("x")
    finally:
        await server.close()
    assert err.value.status == 403
    assert "bad header: Bearer ***" in str(err.value)
    assert "tok-echo-4242" not in str(err.value)
    assert "tok-echo-4242" not in repr(err.value)


def test_crawl_roots_with_credentials_in_the_url_are_refused() -> None:
    """A crawl root with user:password@ is refused up front, without echoing the password."""
    nav = halnav.Navigator("http://127.0.0.1:9/")
    with pytest.raises(ValueError, match=r"must not carry credentials") as err:
        halnav.Crawler(nav, ["http://admin:s3cret-root@127.0.0.1:9/x"])
    assert "s3cret-root" not in str(err.value)
    assert "127.0.0.1:9" in str(err.value)


async def test_an_action_body_goes_only_to_a_trusted_origin(tmp_path: Path) -> None:
    """A document on A advertises an action whose URI is on B: its body (a restore's
    userPassword) is not sent there - by act, or by a same-origin walk - unless B is
    trusted (issue 14, finding 1)."""
    got: list[bytes] = []

    async def elsewhere(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.json_response({"ok": True})

    other = web.Application()
    other.router.add_post("/restore", elsewhere)
    other_runner, other_port = await start(other)
    b = f"http://127.0.0.1:{other_port}"

    async def document(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "_links": {"self": {"href": "/doc"}},
                "_actions": {"restore": {"uri": f"{b}/restore", "method": "POST"}},
            }
        )

    home = web.Application()
    home.router.add_get("/doc", document)
    home_runner, home_port = await start(home)
    a = f"http://127.0.0.1:{home_port}"
    body = {"restore": {"userPassword": "hunter2"}}
    try:
        async with halnav.Navigator(a + "/", auth="token-A") as nav:
            doc = await nav.get("/doc")
            with pytest.raises(UnsafeLinkError, match="not trusted"):
                await nav.act(doc, "restore", json=body)
            rule = halnav.ActionRule(name="restore", json=body)
            out = tmp_path / "walk.jsonl"
            summary = await halnav.crawl(nav, ["/doc"], output=out, actions=[rule])
        assert summary.action_failures == 1
        (record,) = [r for r in halnav.read_records(out) if isinstance(r, halnav.ActionRecord)]
        assert record.error is not None
        assert record.error.type == "UnsafeLinkError"
        assert got == []  # nothing reached B
        async with halnav.Navigator(a + "/", auth="token-A", trusted_origins=[b]) as nav:
            await nav.act(await nav.get("/doc"), "restore", json=body)
        assert len(got) == 1  # widened by the user: sent
    finally:
        await home_runner.cleanup()
        await other_runner.cleanup()
