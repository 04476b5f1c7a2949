"""Hostile servers on 127.0.0.1 (issue 14): single values give halnav errors only
(finding 6); echoed secrets are redacted in every spelling (finding 2); ..."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from aiohttp import web
from test_outcomes import start

import halnav
from halnav import veeam
from halnav.errors import AuthenticationError, HTTPStatusError, LimitExceededError


async def test_a_retry_after_date_past_any_year_is_no_crash() -> None:
    async def busy(_request: web.Request) -> web.Response:
        date = "Fri, 31 Dec 9999999999999999999 23:59:59 GMT"
        return web.json_response({"message": "later"}, status=429, headers={"Retry-After": date})

    app = web.Application()
    app.router.add_get("/{tail:.*}", busy)
    runner, port = await start(app)
    try:
        async with halnav.Navigator(
            f"http://127.0.0.1:{port}/", limits=halnav.Limits(retries=1)
        ) as nav:
            with pytest.raises(HTTPStatusError) as raised:
                await nav.get("/x")
        assert raised.value.status == 429
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("expires_in", ["9" * 400, 10**400, "1e999"])
async def test_an_absurd_token_lifetime_is_no_crash(expires_in: object) -> None:
    """A 400-digit ``expires_in`` (a JSON number or a string): the token is used, and
    renewed when the server says it expired."""

    async def token(_request: web.Request) -> web.Response:
        body = f'{{"access_token": "t", "token_type": "bearer", "expires_in": {expires_in!r}}}'
        return web.Response(text=body.replace("'", '"'), content_type="application/json")

    async def doc(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer t"
        return web.json_response({"_links": {"self": {"href": "/doc"}}})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/doc", doc)
    runner, port = await start(app)
    base = f"http://127.0.0.1:{port}"
    try:
        auth = halnav.password_auth(f"{base}/token", "u", "p")
        async with halnav.Navigator(base + "/", auth=auth) as nav:
            assert (await nav.get("/doc")).self_url == f"{base}/doc"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("paged", [False, True], ids=["next-only", "offset-pages"])
async def test_a_collection_whose_next_never_ends_stops_at_max_pages(paged: bool) -> None:
    """A server whose next links never end (finding 9): paginate stops at
    ``Limits.max_pages`` with a halnav error, one page at a time or reading ahead."""
    served: list[str] = []

    async def page(request: web.Request) -> web.Response:
        served.append(request.path_qs)
        n = int(request.query.get("offset" if paged else "p", "0"))
        step = 2 if paged else 1
        items = [{"_links": {"self": {"href": f"/i/{n}-{k}"}}} for k in range(step)]
        nxt = f"/c?offset={n + step}&limit={step}" if paged else f"/c?p={n + 1}"
        body: dict[str, Any] = {
            "_links": {"self": {"href": request.path_qs}, "next": {"href": nxt}}
        }
        body.update({"offset": n, "limit": step, "results": items} if paged else {})
        if not paged:
            body["_embedded"] = {"item": items}
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/c", page)
    runner, port = await start(app)
    try:
        limits = halnav.Limits(max_pages=40, readahead=4)
        async with halnav.Navigator(f"http://127.0.0.1:{port}/", limits=limits) as nav:
            got: list[halnav.Document] = []

            async def read_all() -> None:
                async for item in nav.paginate("/c"):
                    got.append(item)  # noqa: PERF401  the items before the error count

            with pytest.raises(LimitExceededError, match="pages of one collection") as raised:
                await read_all()
        assert raised.value.limit == 40
        assert len(got) == 40 * (2 if paged else 1)  # the items of 40 pages, then the error
        assert len(served) <= 40 + 4  # at most one read-ahead window past the limit
    finally:
        await runner.cleanup()


# -- finding 2: redaction ---------------------------------------------------------------------


async def _token_server(answer: Callable[[dict[str, str]], web.Response]) -> tuple[Any, str]:
    """A token endpoint answering ``answer(form)``; documents 401 the first access token."""

    async def token(request: web.Request) -> web.Response:
        return answer(dict(await request.post()))  # type: ignore[arg-type]

    async def doc(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") == "Bearer first-access-token":
            return web.json_response({"message": "expired"}, status=401)
        return web.json_response({"_links": {"self": {"href": "/doc"}}})

    async def root(_request: web.Request) -> web.Response:
        return web.json_response({"_links": {"self": {"href": "/"}, "doc": {"href": "/doc"}}})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/doc", doc)
    app.router.add_get("/", root)
    runner, port = await start(app)
    return runner, f"http://127.0.0.1:{port}"


def _pieces(secret: str, size: int = 5) -> list[str]:
    """Every ``size``-character piece of ``secret``: none may show."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(lambda pw: "x" * 190 + " " + pw, id="past-the-cut"),
        pytest.param(lambda pw: "password=" + quote_plus(pw), id="form-encoded"),
        pytest.param(lambda pw: json.dumps({"password": pw}), id="json-escaped"),
        pytest.param(lambda pw: " ".join(pw.split()), id="whitespace-collapsed"),
    ],
)
async def test_an_echoed_password_is_redacted_in_every_spelling(
    echo: Callable[[str], str],
) -> None:
    password = 'Zq  "xv" & kj/secret!9'

    def answer(_form: dict[str, str]) -> web.Response:
        return web.json_response({"error_description": echo(password)}, status=400)

    runner, base = await _token_server(answer)
    try:
        auth = halnav.password_auth(f"{base}/token", "tech\\admin", password)
        async with halnav.Navigator(base + "/", auth=auth) as nav:
            with pytest.raises(AuthenticationError) as raised:
                await nav.get("/doc")
        shown = f"{raised.value} {raised.value!r}"
        assert "***" in shown
        assert not [piece for piece in _pieces(password) if piece in shown], shown
    finally:
        await runner.cleanup()


async def test_a_short_password_is_redacted_where_it_stands_alone_only() -> None:
    """Redacting "re" everywhere would garble the message and tell the password."""

    def answer(_form: dict[str, str]) -> web.Response:
        text = "No HTTP resource here: the password re is wrong"
        return web.json_response({"message": text}, status=400)

    runner, base = await _token_server(answer)
    try:
        auth = halnav.password_auth(f"{base}/token", "tech\\admin", "re")
        async with halnav.Navigator(base + "/", auth=auth) as nav:
            with pytest.raises(AuthenticationError) as raised:
                await nav.get("/doc")
        assert "No HTTP resource here: the password *** is wrong" in str(raised.value)
    finally:
        await runner.cleanup()


async def test_a_refresh_token_echoed_by_a_failing_refresh_is_redacted(tmp_path: Path) -> None:
    refresh = "refresh-token-that-must-not-show-0123456789"

    def answer(form: dict[str, str]) -> web.Response:
        if form.get("grant_type") == "refresh_token":
            message = f"cannot refresh with {form['refresh_token']} now"
            return web.json_response({"message": message}, status=500)
        body = {
            "access_token": "first-access-token",
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": 3600,
        }
        return web.json_response(body)

    runner, base = await _token_server(answer)
    out = tmp_path / "walk.jsonl"
    try:
        auth = halnav.password_auth(f"{base}/token", "u", "a-long-password")
        async with halnav.Navigator(base + "/", auth=auth) as nav:
            with pytest.raises(AuthenticationError) as raised:
                await nav.get("/doc")
        assert "cannot refresh with *** now" in str(raised.value)
        auth = halnav.password_auth(f"{base}/token", "u", "a-long-password")
        async with halnav.Navigator(base + "/", auth=auth) as nav:
            await halnav.crawl(nav, [f"{base}/"], output=out)
        assert '"type":"AuthenticationError"' in out.read_text()  # the failure record
        assert refresh not in out.read_text()
    finally:
        await runner.cleanup()


# -- finding 3: the request's headers in an error's cause --------------------------------------


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 2OO OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n{}"],
    ids=["bad-status", "bad-length"],
)
async def test_a_malformed_answer_leaves_no_token_in_the_error_or_its_causes(answer: bytes) -> None:
    token = "bearer-token-that-must-not-show-42"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with halnav.Navigator(
            f"http://127.0.0.1:{port}/", auth=token, limits=halnav.Limits(retries=0)
        ) as nav:
            with pytest.raises(halnav.errors.TransportError) as raised:
                await nav.get("/doc")
    finally:
        server.close()
        await server.wait_closed()
    error = raised.value
    shown = "".join(traceback.format_exception(error))
    chain: list[BaseException] = []
    link: BaseException | None = error
    while link is not None:
        chain.append(link)
        link = link.__cause__ or link.__context__
    shown += " ".join(repr(exc) + repr(vars(exc)) for exc in chain)
    assert len(chain) > 1  # the cause is kept, for --debug
    assert token not in shown


# -- finding 5: every request has a bound on its whole duration -------------------------------


def test_every_request_is_bounded_by_default() -> None:
    limits = halnav.Limits()
    assert limits.total_timeout is not None
    assert limits.answer_timeout is not None
    assert limits.transfer_timeout is not None


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_server_that_trickles_its_answer_is_cut_off(method: str) -> None:
    """One byte every 0.2 s never trips the read timeout; the total bound ends it."""

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for byte in b'{"_links": {"self": {"href": "/x"}}}':
            await response.write(bytes([byte]))
            await asyncio.sleep(0.2)
        await response.write_eof()
        return response

    async def entry(_request: web.Request) -> web.Response:
        actions = {"go": {"uri": "/x", "method": "POST"}}
        return web.json_response({"_links": {"self": {"href": "/"}}, "_actions": actions})

    app = web.Application()
    app.router.add_route("*", "/x", trickle)
    app.router.add_get("/", entry)
    runner, port = await start(app)
    limits = halnav.Limits(read_timeout=5.0, total_timeout=1.0, retries=0)
    try:
        async with halnav.Navigator(f"http://127.0.0.1:{port}/", limits=limits) as nav:
            doc = await nav.get("/")
            request = nav.get("/x") if method == "GET" else nav.act(doc, "go")
            with pytest.raises(halnav.errors.RequestTimeoutError) as raised:
                await request
        assert "total timeout" in str(raised.value)
    finally:
        await runner.cleanup()


# -- finding 12: credential headers are scoped like auth= --------------------------------------


async def test_a_header_given_to_the_navigator_goes_only_to_trusted_origins() -> None:
    seen: dict[str, dict[str, str]] = {}

    def app_for(name: str, links: dict[str, Any]) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            seen[name] = dict(request.headers)
            return web.json_response({"_links": {"self": {"href": str(request.url)}, **links}})

        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        return app

    other_runner, other_port = await start(app_for("other", {}))
    link = {"away": {"href": f"http://127.0.0.1:{other_port}/b"}}
    runner, port = await start(app_for("entry", link))
    headers = {"X-Api-Key": "api-key-that-stays-home", "Accept-Language": "de"}
    try:
        async with halnav.Navigator(f"http://127.0.0.1:{port}/", headers=headers) as nav:
            entry = await nav.get("/")
            await nav.follow(entry, "away")
    finally:
        await runner.cleanup()
        await other_runner.cleanup()
    assert seen["entry"]["X-Api-Key"] == "api-key-that-stays-home"
    assert "X-Api-Key" not in seen["other"]
    assert seen["other"]["Accept-Language"] == "de"  # content negotiation goes everywhere


# -- finding 8: a server writes only its own origin's documents --------------------------------


async def test_a_server_cannot_write_or_suppress_another_origins_documents(
    tmp_path: Path,
) -> None:
    def app_of(routes: dict[str, Callable[[], dict[str, Any]]]) -> web.Application:
        app = web.Application()
        for path, body in routes.items():

            async def handler(_request: web.Request, body: Any = body) -> web.Response:
                return web.json_response(body())

            app.router.add_get(path, handler)
        return app

    real_runner, real_port = await start(
        app_of(
            {
                "/": lambda: {"_links": {"self": {"href": "/"}, "real": {"href": "/real"}}},
                "/real": lambda: {"name": "real", "_links": {"self": {"href": "/real"}}},
            }
        )
    )
    real = f"http://127.0.0.1:{real_port}"
    claim = {"_links": {"self": {"href": f"{real}/real"}}}
    evil_runner, evil_port = await start(
        app_of(
            {
                "/": lambda: {
                    "_links": {"self": {"href": "/"}, "fake": {"href": "/fake"}},
                    "_embedded": {"item": [{"name": "forged-embedded", **claim}]},
                },
                "/fake": lambda: {"name": "forged-self", **claim},
            }
        )
    )
    evil = f"http://127.0.0.1:{evil_port}"
    out = tmp_path / "walk.jsonl"
    try:
        async with halnav.Navigator(f"{evil}/") as nav:
            # The evil origin first, so its claims come before the real document.
            await halnav.crawl(nav, [f"{evil}/", f"{real}/"], output=out, workers=1)
    finally:
        await real_runner.cleanup()
        await evil_runner.cleanup()
    records = [r for r in halnav.read_records(out) if isinstance(r, halnav.DocumentRecord)]
    by_url = {r.url: r for r in records}
    assert [r.state.get("name") for r in records if r.url == f"{real}/real"] == ["real"]
    assert by_url[f"{evil}/fake"].state["name"] == "forged-self"  # kept under its own URL
    assert not [r for r in records if r.state.get("name") == "forged-embedded" and r.embedded]


# -- finding 6, the rest: single values that are not what they claim -------------------------


async def test_odd_page_numbers_methods_locations_and_hosts_give_halnav_errors_only() -> None:
    async def entry(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "_links": {
                    "self": {"href": "/"},
                    "next": {"href": "/page?offset=\u0663\u0660&limit=\u00b2"},
                    "long": {"href": "/page?offset=" + "9" * 5000 + "&limit=1"},
                    "idn": {"href": "http://b\u00fccher.invalid/x"},
                },
                "results": [{"n": 1}],
                "limit": 1,
                "_actions": {
                    "spaced": {"uri": "/act", "method": "PO ST"},
                    "located": {"uri": "/act", "method": "POST"},
                },
            }
        )

    async def page(request: web.Request) -> web.Response:
        return web.json_response(
            {"_links": {"self": {"href": str(request.rel_url)}}, "results": []}
        )

    async def act(_request: web.Request) -> web.Response:
        # aiohttp writes headers as UTF-8; the client decodes them the same way: é survives.
        return web.json_response({}, status=201, headers={"Location": "/caf\u00e9"})

    app = web.Application()
    app.router.add_get("/", entry)
    app.router.add_get("/page", page)
    app.router.add_post("/act", act)
    runner, port = await start(app)
    base = f"http://127.0.0.1:{port}"
    try:
        async with halnav.Navigator(f"{base}/", limits=halnav.Limits(retries=0)) as nav:
            doc = await nav.get("/")
            assert len([item async for item in nav.paginate(doc)]) == 1  # next is walked
            await nav.follow(doc, "long")
            with pytest.raises(halnav.DocumentError, match=r"\$\._actions\.spaced\.method"):
                await nav.act(doc, "spaced")
            answer = await nav.act(doc, "located")
            assert isinstance(answer, halnav.Document)
            assert answer.location == f"{base}/caf%C3%A9"
            with pytest.raises(halnav.errors.ConnectError) as raised:
                await nav.follow(doc, "idn")
            assert "xn--bcher-kva.invalid" in str(raised.value)  # IDNA, not percent-quoted
    finally:
        await runner.cleanup()


async def test_a_raw_byte_in_a_location_header_is_sent_back_as_that_byte() -> None:
    asked: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        asked.append(head.split(b" ", 2)[1])
        status = b"302 Found\r\nLocation: /caf\xe9" if head.startswith(b"GET /a ") else b"200 OK"
        body = b'{"_links": {"self": {"href": "/b"}}}'
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )  # fmt: skip
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with halnav.Navigator(f"http://127.0.0.1:{port}/") as nav:
            doc = await nav.get("/a")
    finally:
        server.close()
        await server.wait_closed()
    assert asked == [b"/a", b"/caf%E9"]
    assert doc.url.endswith("/caf%E9")


async def test_an_organization_without_an_id_is_a_document_error() -> None:
    async def orgs(_request: web.Request) -> web.Response:
        return web.json_response([{"name": "no id here"}])

    async def token(_request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t", "token_type": "bearer"})

    app = web.Application()
    app.router.add_get("/v5/Organizations", orgs)
    app.router.add_post("/v5/token", token)
    runner, port = await start(app)
    try:
        async with veeam.open_navigator(
            f"http://127.0.0.1:{port}", username="u", password="p", version="v5"
        ) as nav:
            with pytest.raises(halnav.DocumentError, match=r"\$\[0\]\.id"):
                await veeam.organizations(nav)
    finally:
        await runner.cleanup()
