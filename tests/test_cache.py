"""The HTTP cache (RFC 9111, a private cache): fresh answers reused, stale ones revalidated,
unsafe methods invalidating, bounded, in memory or on disk."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_cli import cli

import halnav
from halnav import veeam
from halnav._cache import CachedAnswer, conditional_headers, freshness, storable
from halnav._transport import Transport
from halnav.simulator import SimulatorConfig, open_simulator


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ({"Cache-Control": "max-age=60"}, 60.0),
        ({"Cache-Control": "private, max-age=5"}, 5.0),
        ({"Cache-Control": "no-cache, max-age=60"}, None),  # revalidate every time
        ({"Cache-Control": "max-age=abc"}, 0.0),  # malformed: stale
        ({"Expires": "Thu, 01 Jan 2026 00:01:00 GMT", "Date": "Thu, 01 Jan 2026 00:00:00 GMT"}, 60.0),
        ({"Expires": "0"}, 0.0),  # an Expires that does not parse: already expired
        ({}, None),  # says nothing: not fresh (no heuristics), revalidated if it can be
    ],
)  # fmt: skip
def test_freshness(headers: dict[str, str], lifetime: float | None) -> None:
    assert freshness(headers) == lifetime


@pytest.mark.parametrize(
    ("method", "status", "request_headers", "response_headers", "expected"),
    [
        ("GET", 200, {}, {}, True),
        ("GET", 200, {}, {"Cache-Control": "private"}, True),  # halnav is a private cache
        ("GET", 200, {}, {"Cache-Control": "no-store"}, False),
        ("GET", 200, {"Cache-Control": "no-store"}, {}, False),
        ("GET", 200, {}, {"Vary": "Accept-Encoding"}, True),
        ("GET", 200, {}, {"Vary": "Accept-Language"}, True),  # stored with its variant
        ("GET", 200, {}, {"Vary": "*"}, False),
        ("GET", 200, {}, {"Vary": "Accept, Authorization"}, False),  # signed after lookup
        ("POST", 200, {}, {}, False),
        ("GET", 404, {}, {}, False),
    ],
)
def test_what_may_be_stored(
    method: str, status: int, request_headers: dict[str, str],
    response_headers: dict[str, str], expected: bool,
) -> None:  # fmt: skip
    assert storable(method, status, request_headers, response_headers) is expected


def test_revalidation_sends_both_validators() -> None:
    answer = CachedAnswer("https://h/a", 200, {"ETag": '"x"', "Last-Modified": "Mon"}, "", b"", 0)
    assert conditional_headers(answer) == {"If-None-Match": '"x"', "If-Modified-Since": "Mon"}


class Origin:
    """A server with ETags; ``max_age`` says how long its answers stay fresh."""

    def __init__(self, max_age: int | None) -> None:
        self.max_age = max_age
        self.version = 1
        self.gets = 0
        self.not_modified = 0
        self.app = web.Application()
        self.app.router.add_get("/doc", self.doc)
        self.app.router.add_post("/doc", self.change)
        self.app.router.add_delete("/doc", self.delete)
        self.app.router.add_get("/private", self.private)

    def _etag(self) -> str:
        return f'"v{self.version}"'

    async def doc(self, request: web.Request) -> web.Response:
        self.gets += 1
        headers = {"ETag": self._etag()}
        if self.max_age is not None:
            headers["Cache-Control"] = f"max-age={self.max_age}"
        if request.headers.get("If-None-Match") == self._etag():
            self.not_modified += 1
            return web.Response(status=304, headers=headers)
        body = {"version": self.version, "_links": {"self": {"href": "/doc"}}}
        return web.json_response(body, headers=headers)

    async def change(self, _request: web.Request) -> web.Response:
        self.version += 1
        return web.json_response(
            {"_links": {"invalidates": {"href": "/private"}}}, headers={"Location": "/doc"}
        )

    async def delete(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def private(self, _request: web.Request) -> web.Response:
        self.gets += 1
        return web.json_response({"secret": self.version}, headers={"Cache-Control": "no-store"})


async def test_fresh_answers_are_reused_and_stale_ones_revalidated() -> None:
    origin = Origin(max_age=None)  # never fresh: every GET revalidates
    async with TestServer(origin.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with halnav.Navigator(url, cache=True) as nav:
            first = await nav.get(url)
            again = await nav.get(url)  # 304: the stored body, parsed again
            stats = nav.statistics().transport
    assert first.state["version"] == again.state["version"] == 1
    assert origin.gets == 2
    assert origin.not_modified == 1
    assert stats.revalidated == 1
    assert stats.cache_hits == 0

    fresh = Origin(max_age=60)
    async with TestServer(fresh.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with halnav.Navigator(url, cache=True) as nav:
            await nav.get(url)
            await nav.get(url)
            await nav.get(url)
            hits = nav.statistics().transport.cache_hits
    assert fresh.gets == 1  # fresh: no request at all
    assert hits == 2


async def test_an_unsafe_method_and_an_invalidates_link_forget_what_they_changed() -> None:
    origin = Origin(max_age=60)
    async with TestServer(origin.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with contextlib.aclosing(Transport(cache=halnav.MemoryCache())) as transport:
            await transport.request("GET", url)
            await transport.request("GET", url)
            assert origin.gets == 1
            await transport.request("POST", url, json={})  # succeeded: /doc is forgotten
            changed = await transport.request("GET", url)
            assert origin.gets == 2
            assert b'"version": 2' in changed.body
            private = str(server.make_url("/private"))
            await transport.request("GET", private)
            await transport.request("GET", private)
            assert origin.gets == 4  # no-store: never kept


async def test_the_cache_is_bounded() -> None:
    cache = halnav.MemoryCache(max_entries=100, max_bytes=1000)
    for n in range(10):
        cache.put(CachedAnswer(f"https://h/{n}", 200, {}, "", b"x" * 300, 0.0))
    assert len(cache) == 3  # 900 bytes: the most recent three
    assert cache.get("https://h/9") is not None
    assert cache.get("https://h/0") is None
    cache.put(CachedAnswer("https://h/big", 200, {}, "", b"x" * 2000, 0.0))
    assert cache.get("https://h/big") is None  # larger than the whole bound: not kept


async def test_a_walk_run_again_with_a_disk_cache_revalidates_instead_of_refetching(
    tmp_path: Path,
) -> None:
    """With validators on the simulator, a second crawl of an unchanged tree, in a new
    process-like navigator over the same SqliteCache, gets 304s and no bodies."""
    config = SimulatorConfig(organizations=1, mailboxes=3, folders=2, items=10, validators=True)
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        orgs = await veeam.organizations(nav)
        async with veeam.explore(nav, str(orgs[0]["id"])) as session:
            root = f"{session.url}/Organization"
            bytes_by_run = []
            for run in range(2):
                cache = halnav.SqliteCache(tmp_path / "cache.sqlite3")
                async with veeam.open_navigator(
                    sim.url, username=sim.username, password=sim.password, cache=cache
                ) as walker:
                    sim.reset_stats()
                    summary = await halnav.crawl(walker, [root], output=tmp_path / f"{run}.jsonl")
                    bytes_by_run.append(walker.statistics().transport.bytes_received)
                    gets = sim.stats.requests
                    revalidated = walker.statistics().transport.revalidated
                cache.close()
                assert summary.complete
    assert revalidated >= gets - 3  # the second run: nearly every GET a 304 (token, probes aside)
    assert sim.stats.not_modified == revalidated
    assert bytes_by_run[1] < bytes_by_run[0] / 5
    first = (tmp_path / "0.jsonl").read_text().splitlines()
    second = (tmp_path / "1.jsonl").read_text().splitlines()
    assert sorted(first) == sorted(second)  # the same walk, from the cache's bodies
    assert (tmp_path / "cache.sqlite3").stat().st_mode & 0o777 == 0o600


async def test_the_cli_cache_option_makes_a_second_get_a_304(tmp_path: Path) -> None:
    """`halnav get URL --cache FILE` twice: the second GET revalidates and gets a 304."""
    origin = Origin(max_age=None)
    async with TestServer(origin.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        for _ in range(2):
            assert await cli("get", url, "--cache", str(tmp_path / "c.sqlite3")) == 0
    assert origin.gets == 2
    assert origin.not_modified == 1


class Varying:
    """A server whose answers vary on ``Accept-Language`` (or on what ``vary`` says)."""

    def __init__(self, vary: str = "Accept-Language", age: str | None = None) -> None:
        self.vary = vary
        self.age = age
        self.gets = 0
        self.app = web.Application()
        self.app.router.add_get("/doc", self.doc)

    async def doc(self, request: web.Request) -> web.Response:
        self.gets += 1
        headers = {"Cache-Control": "max-age=60", "Vary": self.vary}
        if self.age is not None:
            headers["Age"] = self.age
        language = request.headers.get("Accept-Language", "none")
        return web.json_response({"language": language}, headers=headers)


async def test_an_answer_with_vary_is_reused_only_for_the_same_request_headers() -> None:
    origin = Varying()
    async with TestServer(origin.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with contextlib.aclosing(Transport(cache=halnav.MemoryCache())) as transport:

            async def language(value: str) -> str:
                answer = await transport.request("GET", url, headers={"Accept-Language": value})
                return str(json.loads(answer.body)["language"])

            assert await language("en") == "en"
            assert await language("en") == "en"
            assert origin.gets == 1  # the same variant: from the cache
            assert await language("de") == "de"  # another variant: never the stored one
            assert origin.gets == 2
            assert await language("de") == "de"
            assert origin.gets == 2  # one entry per URL: the newest variant is kept
            assert await language("en") == "en"
            assert origin.gets == 3


@pytest.mark.parametrize("vary", ["*", "Authorization"])
async def test_an_answer_varying_on_what_the_cache_cannot_compare_is_not_stored(vary: str) -> None:
    origin = Varying(vary)
    async with TestServer(origin.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with contextlib.aclosing(Transport(cache=halnav.MemoryCache())) as transport:
            await transport.request("GET", url)
            await transport.request("GET", url)
    assert origin.gets == 2


async def test_the_age_an_upstream_cache_sent_counts_and_a_cached_answer_says_its_age() -> None:
    aged = Varying(age="60")  # max-age=60 and already 60 s old upstream: stale on arrival
    async with TestServer(aged.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with contextlib.aclosing(Transport(cache=halnav.MemoryCache())) as transport:
            await transport.request("GET", url)
            await transport.request("GET", url)
    assert aged.gets == 2
    young = Varying(age="5")
    async with TestServer(young.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with contextlib.aclosing(Transport(cache=halnav.MemoryCache())) as transport:
            await transport.request("GET", url)
            again = await transport.request("GET", url)
    assert young.gets == 1
    assert 5 <= int(again.headers["Age"]) < 60  # the upstream 5 s plus its time here


class Carrier:
    """A page that embeds its items (with ``Cache-Control`` as ``cache_control`` says), one
    of them with a ``self`` on another origin; the items answer with an ``ETag``."""

    def __init__(self, cache_control: str | None = "max-age=60", vary: str | None = None) -> None:
        self.cache_control = cache_control
        self.vary = vary
        self.requests: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/page", self.page)
        self.app.router.add_get("/items/{n}", self.item)
        self.app.router.add_put("/items/{n}", self.change)

    async def page(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        items = [
            {"n": n, "from": "page", "_links": {"self": {"href": f"/items/{n}"}}} for n in (1, 2)
        ]
        items.append({"n": 3, "_links": {"self": {"href": "http://elsewhere.invalid/items/3"}}})
        body = {"_links": {"self": {"href": "/page"}}, "_embedded": {"item": items}}
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        if self.vary:
            headers["Vary"] = self.vary
        return web.json_response(body, headers=headers)

    async def change(self, request: web.Request) -> web.Response:
        self.requests.append(f"PUT {request.path}")
        return web.Response(status=204)

    async def item(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        n = int(request.match_info["n"])
        body = {"n": n, "from": "item", "_links": {"self": {"href": f"/items/{n}"}}}
        return web.json_response(body, headers={"ETag": f'"{n}"'})


async def test_embedded_copies_in_a_fresh_answer_become_cache_entries_when_asked() -> None:
    origin = Carrier()
    cache = halnav.MemoryCache()
    async with TestServer(origin.app, host="127.0.0.1") as server:
        page_url = str(server.make_url("/page"))
        async with halnav.Navigator(page_url, cache=cache, cache_embedded=True) as nav:
            await nav.get(str(server.make_url("/items/2")))  # its own answer, with an ETag
            page = await nav.get(page_url)
            one = await nav.get(str(server.make_url("/items/1")))
            two = await nav.get(str(server.make_url("/items/2")))
            hits = nav.statistics().transport.cache_hits
        stored = cache.get(str(server.make_url("/items/1")))
    assert origin.requests == ["/items/2", "/page", "/items/2"]  # /items/1 from the page
    assert one == page.embedded["item"][0]  # the copy, read back whole
    assert one.state["from"] == "page"
    assert two.state["from"] == "item"  # the URL's own answer was not replaced by a copy
    assert hits == 1
    assert stored is not None
    assert "ETag" not in stored.headers  # the page's validator is not the item's
    assert cache.get("http://elsewhere.invalid/items/3") is None  # no entry for another origin


@pytest.mark.parametrize(
    ("cache_embedded", "cache_control"),
    [(False, "max-age=60"), (True, None), (True, "no-store"), (True, "max-age=0")],
)
async def test_embedded_copies_are_not_entries_unless_asked_and_the_carrier_is_fresh(
    cache_embedded: bool, cache_control: str | None
) -> None:
    origin = Carrier(cache_control)
    async with TestServer(origin.app, host="127.0.0.1") as server:
        page_url = str(server.make_url("/page"))
        async with halnav.Navigator(page_url, cache=True, cache_embedded=cache_embedded) as nav:
            await nav.get(page_url)
            await nav.get(str(server.make_url("/items/1")))
    assert origin.requests == ["/page", "/items/1"]


def test_a_cache_file_of_an_earlier_halnav_is_read_and_written(tmp_path: Path) -> None:
    """The disk format gained variants, in a table of its own: a file an earlier halnav
    wrote is taken over once and its table left as it was, for that halnav to go on."""
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE answers (url TEXT PRIMARY KEY, status INTEGER, headers TEXT, "
            "content_type TEXT, body BLOB, stored REAL, used REAL)"
        )
        db.execute(
            "INSERT INTO answers VALUES ('https://h/a', 200, '{}', 'application/json', "
            "X'7b7d', 1.0, 1.0)"
        )
        db.commit()
    for _run in range(2):  # taken over once: what this halnav forgot does not come back
        cache = halnav.SqliteCache(path)
        try:
            old = cache.get("https://h/a")
            assert old is not None
            assert (old.body, old.variant) == (b"{}", "")
            cache.put(CachedAnswer("https://h/b", 200, {"Vary": "Accept"}, "", b"[]", 2.0, "v1"))
            assert cache.get("https://h/b") == CachedAnswer(
                "https://h/b", 200, {"Vary": "Accept"}, "", b"[]", 2.0, "v1"
            )
            cache.forget("https://h/b")
        finally:
            cache.close()
    cache = halnav.SqliteCache(path)
    cache.forget("https://h/a")
    cache.close()
    assert halnav.SqliteCache(path).get("https://h/a") is None
    with contextlib.closing(sqlite3.connect(path)) as db:  # an earlier halnav's table, as it was
        assert db.execute("SELECT url FROM answers").fetchall() == [("https://h/a",)]
        db.execute("INSERT INTO answers VALUES ('https://h/c', 200, '{}', '', X'', 1.0, 1.0)")


async def test_resource_events_say_what_changed() -> None:
    """``nav.subscribe``: ``update`` for each new representation (not for one from the
    cache), ``stale`` for what a POST changed (its URL, Location, ``invalidates``),
    ``delete`` for a DELETE's URL; the returned function unsubscribes."""
    origin = Origin(max_age=60)
    events: list[tuple[str, str, bool]] = []
    async with TestServer(origin.app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        private = str(server.make_url("/private"))
        async with halnav.Navigator(url, cache=True) as nav:
            off = nav.subscribe(lambda e: events.append((e.kind, e.url, e.document is not None)))
            await nav.get(url)
            await nav.get(url)  # fresh in the cache: nothing new
            await nav.send("POST", url, json={})
            await nav.get(url)  # forgotten by the POST: fetched again, a new version
            await nav.send("DELETE", url)
            off()
            await nav.send("DELETE", url)
    assert events == [
        ("update", url, True),
        ("stale", url, False),
        ("stale", private, False),  # the answer's invalidates link
        ("update", url, True),
        ("delete", url, False),
    ]


async def test_a_write_is_not_undone_by_the_copies_of_a_cached_carrier() -> None:
    """PUT an embedded item, then read the page again from the cache: its (old) copy of the
    item does not go back into the cache; the item is fetched."""
    origin = Carrier()
    async with TestServer(origin.app, host="127.0.0.1") as server:
        page, item = str(server.make_url("/page")), str(server.make_url("/items/1"))
        async with halnav.Navigator(page, cache=True, cache_embedded=True) as nav:
            await nav.get(page)
            await nav.send("PUT", item, json={"n": 1})
            await nav.get(page)  # fresh: from the cache
            after = await nav.get(item)
    assert origin.requests == ["/page", "PUT /items/1", "/items/1"]
    assert after.state["from"] == "item"


async def test_a_carrier_that_varies_gives_no_copies() -> None:
    origin = Carrier(vary="Accept-Language")
    async with TestServer(origin.app, host="127.0.0.1") as server:
        page, item = str(server.make_url("/page")), str(server.make_url("/items/1"))
        async with halnav.Navigator(page, cache=True, cache_embedded=True) as nav:
            await nav.get(page)
            await nav.get(item)
    assert origin.requests == ["/page", "/items/1"]


async def test_a_body_that_does_not_parse_is_not_answered_again_from_the_cache() -> None:
    """A fresh (max-age) 200 whose JSON is cut off: the next GET asks the server again."""
    answers = ['{"cut": ', '{"whole": true}']

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(
            text=answers.pop(0), content_type="application/json",
            headers={"Cache-Control": "max-age=300"},
        )  # fmt: skip

    app = web.Application()
    app.router.add_get("/doc", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with halnav.Navigator(url, cache=True) as nav:
            with pytest.raises(halnav.DocumentError):
                await nav.get(url)
            again = await nav.get(url)
    assert again.state == {"whole": True}
    assert answers == []


async def test_a_write_whose_answer_does_not_parse_still_says_what_it_changed() -> None:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(text="{oops", content_type="application/json")

    app = web.Application()
    app.router.add_post("/doc", handle)
    events: list[tuple[str, str]] = []
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/doc"))
        async with halnav.Navigator(url) as nav:
            nav.subscribe(lambda e: events.append((e.kind, e.url)))
            with pytest.raises(halnav.DocumentError):
                await nav.send("POST", url, json={})
    assert events == [("stale", url)]


def test_the_disk_cache_is_bounded_too(tmp_path: Path) -> None:
    """Every 256 writes the file goes back under its bounds, the oldest answers first (a
    tenth a round deleted less than a walk wrote: the file grew without end)."""
    cache = halnav.SqliteCache(tmp_path / "c.sqlite3", max_entries=50, max_bytes=10_000)
    try:
        for n in range(1024):
            cache.put(CachedAnswer(f"https://h/{n}", 200, {}, "", b"x" * 10, float(n)))
        with contextlib.closing(sqlite3.connect(tmp_path / "c.sqlite3")) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM answers_v2").fetchone()
        assert count <= 50
        assert cache.get("https://h/1023") is not None  # the newest stay
        assert cache.get("https://h/0") is None
        for n in range(256):  # bodies over max_bytes: trimmed by size too
            cache.put(CachedAnswer(f"https://h/big{n}", 200, {}, "", b"y" * 1000, 0.0))
        with contextlib.closing(sqlite3.connect(tmp_path / "c.sqlite3")) as db:
            (size,) = db.execute("SELECT SUM(LENGTH(body)) FROM answers_v2").fetchone()
        assert size <= 10_000
    finally:
        cache.close()
