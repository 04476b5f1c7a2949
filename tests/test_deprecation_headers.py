"""Responses that say a resource is going away: ``Deprecation`` (RFC 9745), ``Sunset``
(RFC 8594) and a ``deprecation`` link: warned about, and recorded by walks."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import halnav
from halnav.errors import DeprecatedResourceWarning

SUNSET = "Sat, 01 May 2027 00:00:00 GMT"


def _app() -> web.Application:
    async def root(_request: web.Request) -> web.Response:
        return web.json_response({"_links": {"self": {"href": "/"}, "old": {"href": "/old"}}})

    async def old(_request: web.Request) -> web.Response:
        headers = {
            "Deprecation": "@1735689600",
            "Sunset": SUNSET,
            "Link": '<https://docs.test/migrate>; rel="deprecation"',
        }
        return web.json_response({"_links": {"self": {"href": "/old"}}}, headers=headers)

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/old", old)
    return app


async def test_a_deprecated_resource_warns_and_says_why() -> None:
    async with TestServer(_app(), host="127.0.0.1") as server:
        root = str(server.make_url("/"))
        async with halnav.Navigator(root) as nav:
            with pytest.warns(DeprecatedResourceWarning, match=r"/old is deprecated") as caught:
                old = await nav.follow(root, "old")
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a resource that says nothing: no warning
                fresh = await nav.get(root)
    assert caught[0].filename == __file__
    assert old.deprecated == {
        "deprecation": "@1735689600",
        "sunset": SUNSET,
        "link": "https://docs.test/migrate",
    }
    assert fresh.deprecated is None


async def test_a_walk_records_and_counts_deprecated_documents(tmp_path: Path) -> None:
    out = tmp_path / "walk.jsonl"
    async with TestServer(_app(), host="127.0.0.1") as server:
        root = str(server.make_url("/"))
        async with halnav.Navigator(root) as nav:
            with pytest.warns(DeprecatedResourceWarning):
                summary = await halnav.crawl(nav, [root], output=out)
    records = [r for r in halnav.read_records(out) if isinstance(r, halnav.DocumentRecord)]
    marked = {r.url.rsplit("/", 1)[1]: r.deprecated for r in records}
    assert marked[""] is None
    assert marked["old"] is not None
    assert marked["old"]["sunset"] == SUNSET
    assert summary.deprecated == 1
