"""HAL servers written by others: OAuth2 clients, null links, collection ends, 201 Location.

Each server here is a small real aiohttp app on 127.0.0.1 shaped like what other people
run: an OAuth2 authorization server that accepts only HTTP Basic client authentication
and rotates refresh tokens, a Django REST framework style HAL API with ``null`` links and
page numbers that end in 404, and an API that answers a POST with 201 and ``Location``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote_plus

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_cli import halnav_process

import halnav
from halnav import ClientCredentialsGrant, Navigator, ProviderAuth, password_auth
from halnav.errors import AuthenticationError

CLIENT_ID, CLIENT_SECRET = "halnav-app", "s3cr3t/with:odd+chars"
USER, PASSWORD = "alice", "Al1ce-pw!"


@attrs.define
class AuthServer:
    """Basic-only client authentication, 1 s tokens, single-use rotating refresh tokens."""

    lifetime: float = 1.0
    access: dict[str, float] = attrs.Factory(dict)  # token -> expiry (monotonic)
    refresh: set[str] = attrs.Factory(set)
    grants: list[str] = attrs.Factory(list)
    api_calls: int = 0

    def client_ok(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        decoded = base64.b64decode(value).decode()
        client, _, secret = decoded.partition(":")
        return (unquote_plus(client), unquote_plus(secret)) == (CLIENT_ID, CLIENT_SECRET)

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if not self.client_ok(request):
            return web.json_response(
                {"error": "invalid_client", "error_description": "A secret must be specified"},
                status=400,
            )
        grant = form.get("grant_type", "")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (USER, PASSWORD):
                return web.json_response({"error": "invalid_grant"}, status=400)
        elif grant == "refresh_token":
            old = form.get("refresh_token", "")
            if old not in self.refresh:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self.refresh.discard(old)  # rotation: a refresh token works once
        elif grant != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        self.grants.append(grant)
        access = secrets.token_urlsafe(16)
        self.access[access] = time.monotonic() + self.lifetime
        body: dict[str, object] = {"access_token": access, "expires_in": self.lifetime}
        if grant != "client_credentials":
            new = secrets.token_urlsafe(16)
            self.refresh.add(new)
            body["refresh_token"] = new
        return web.json_response(body)

    async def api(self, request: web.Request) -> web.Response:
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        if self.access.get(token, 0) < time.monotonic():
            return web.json_response({"detail": "expired"}, status=401)
        self.api_calls += 1
        n = request.match_info["n"]
        return web.json_response({"n": n, "_links": {"self": {"href": f"/api/things/{n}"}}})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/o/token/", self.token)
        app.router.add_get("/api/things/{n}", self.api)
        return app


@pytest.fixture
async def auth_server() -> AsyncIterator[tuple[AuthServer, str]]:
    state = AuthServer()
    server = TestServer(state.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield state, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_a_confidential_client_logs_in_with_basic_and_refreshes_once_under_load(
    auth_server: tuple[AuthServer, str],
) -> None:
    """20 requests at expiry: exactly one refresh (single flight), with the rotated token."""
    state, base = auth_server
    auth = password_auth(
        f"{base}/o/token/", USER, PASSWORD, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    async with Navigator(f"{base}/api/", auth=auth) as nav:
        await nav.get("things/0")
        assert state.grants == ["password"]
        await asyncio.sleep(0.6)  # past the refresh point (half of the 1 s lifetime)
        docs = await asyncio.gather(*(nav.get(f"things/{n}") for n in range(1, 21)))
        assert [doc["n"] for doc in docs] == [str(n) for n in range(1, 21)]
        assert state.grants == ["password", "refresh_token"]
        await asyncio.sleep(0.6)
        await nav.get("things/21")  # the rotated refresh token works; the old one would not
        assert state.grants == ["password", "refresh_token", "refresh_token"]
        assert CLIENT_SECRET not in repr(auth)


async def test_without_client_authentication_the_server_says_why(
    auth_server: tuple[AuthServer, str],
) -> None:
    state, base = auth_server
    async with Navigator(
        f"{base}/api/", auth=password_auth(f"{base}/o/token/", USER, PASSWORD)
    ) as nav:
        with pytest.raises(AuthenticationError, match="A secret must be specified"):
            await nav.get("things/0")
    form = password_auth(
        f"{base}/o/token/",
        USER,
        PASSWORD,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_auth="form",
    )
    async with Navigator(f"{base}/api/", auth=form) as nav:
        with pytest.raises(AuthenticationError, match="A secret must be specified") as info:
            await nav.get("things/0")  # this server accepts Basic only
    assert CLIENT_SECRET not in str(info.value)
    assert state.grants == []


async def test_client_credentials_grant_for_a_service_account(
    auth_server: tuple[AuthServer, str],
) -> None:
    state, base = auth_server
    grant = ClientCredentialsGrant(
        f"{base}/o/token/", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    async with Navigator(f"{base}/api/", auth=ProviderAuth(grant)) as nav:
        assert (await nav.get("things/5"))["n"] == "5"
    assert state.grants == ["client_credentials"]


async def test_cli_client_credentials_from_the_environment(
    auth_server: tuple[AuthServer, str],
) -> None:
    """--token-url and --client-id on the command line, the secret from the environment."""
    _state, base = auth_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALNAV_")}
    env["HALNAV_CLIENT_SECRET"] = CLIENT_SECRET
    status, out, err = await halnav_process(
        "get",
        f"{base}/api/things/9",
        "--token-url",
        f"{base}/o/token/",
        "--client-id",
        CLIENT_ID,
        "--json",
        env=env,
    )
    assert status == 0, err
    assert json.loads(out)["n"] == "9"
    assert CLIENT_SECRET not in out + err


# -- a Django REST framework style HAL API ----------------------------------------------

PAGES, PER_PAGE = 5, 10


def drf_app() -> tuple[web.Application, list[str]]:
    """``/items/?page=N`` with ``previous``/``next`` null at the ends; page 6 is a 404."""
    hits: list[str] = []

    async def items(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        page = int(request.query.get("page", "1"))
        if not 1 <= page <= PAGES:
            return web.json_response({"detail": "Invalid page."}, status=404)
        links = {
            "self": {"href": f"/items/?page={page}"},
            "next": {"href": f"/items/?page={page + 1}"} if page < PAGES else None,
            "previous": {"href": f"/items/?page={page - 1}"} if page > 1 else None,
        }
        first = (page - 1) * PER_PAGE
        embedded = [
            {"id": n, "_links": {"self": {"href": f"/items/{n}/"}}}
            for n in range(first, first + PER_PAGE)
        ]
        return web.json_response(
            {"count": PAGES * PER_PAGE, "_links": links, "_embedded": {"items": embedded}}
        )

    app = web.Application()
    app.router.add_get("/items/", items)
    return app, hits


async def test_lenient_paginate_over_page_numbers_ends_without_an_error() -> None:
    app, hits = drf_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        root = str(server.make_url("/items/?page=1"))
        async with Navigator(root, lenient=True) as nav:
            ids = [item["id"] async for item in nav.paginate(root)]
            assert ids == list(range(PAGES * PER_PAGE))
            # Strict mode names the null link instead of guessing.
        async with Navigator(root) as strict:
            with pytest.raises(halnav.DocumentError, match=r"\$\._links\.previous"):
                await strict.get(root)
    finally:
        await server.close()
    assert any("page=6" in hit for hit in hits)  # read ahead past the end: ended cleanly


async def test_a_lenient_walk_reaches_every_item_of_a_null_linked_collection(
    tmp_path: Path,
) -> None:
    app, _hits = drf_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        root = str(server.make_url("/items/?page=1"))
        async with Navigator(root, lenient=True) as nav:
            summary = await halnav.crawl(nav, [root], output=tmp_path / "walk.jsonl")
    finally:
        await server.close()
    assert summary.complete
    assert summary.documents == PAGES + PAGES * PER_PAGE


# -- 201 Created with Location ----------------------------------------------------------


def orders_app() -> web.Application:
    async def root(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "_links": {"self": {"href": "/"}},
                "_templates": {"default": {"method": "POST", "target": "/orders"}},
            }
        )

    async def create(request: web.Request) -> web.Response:
        return web.json_response({"id": 7}, status=201, headers={"Location": "orders/7"})

    async def order(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": 7, "state": "new", "_links": {"self": {"href": "/orders/7"}}}
        )

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_post("/orders", create)
    app.router.add_get("/orders/7", order)
    return app


async def test_the_location_of_a_201_is_one_attribute_away() -> None:
    server = TestServer(orders_app(), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with Navigator(base + "/") as nav:
            doc = await nav.get("/")
            created = await nav.act(doc, "default", json={"item": "x"})
            assert isinstance(created, halnav.Document)
            assert created.answer is not None
            assert created.answer.status == 201
            assert created.location == f"{base}/orders/7"  # resolved against the request URL
            assert created.answer.headers["location"] == "orders/7"
            assert (await nav.get(created.location))["state"] == "new"
            status, _out, err = await halnav_process(
                "act", base + "/", "default", "--body", "{}", "--yes"
            )
    finally:
        await server.close()
    assert status == 0, err
    assert f"halnav: HTTP 201; Location: {base}/orders/7" in err
