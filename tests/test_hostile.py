"""Hostile single values from a real server on 127.0.0.1: halnav errors only (issue 14,
finding 6)."""

from __future__ import annotations

import pytest
from aiohttp import web
from test_outcomes import start

import halnav
from halnav.errors import HTTPStatusError


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
