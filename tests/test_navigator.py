"""Navigator behaviour against a small real HAL server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import halnav
from halnav.errors import (
    ActionNotFoundError,
    DeprecatedLinkWarning,
    DocumentError,
    HTTPStatusError,
    LinkNotFoundError,
    MissingVariablesError,
    StateError,
    UnsafeLinkError,
)

TOTAL_ITEMS = 95
PAGE = 10


class HalApp:
    """A HAL API with pages, templates, embedded resources, actions and a slow endpoint."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.slow_arrived = asyncio.Event()  # set when a request reaches /api/slow
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.app = web.Application(middlewares=[self.count])
        self.app.router.add_get("/api", self.root)
        self.app.router.add_get("/api/items", self.items)
        self.app.router.add_get("/api/hal-items", self.hal_items)
        self.app.router.add_get("/api/items/{n}", self.item)
        self.app.router.add_get("/api/search", self.search)
        self.app.router.add_get("/api/old", self.old)
        self.app.router.add_get("/api/slow", self.slow)
        self.app.router.add_get("/api/broken", self.broken)
        self.app.router.add_get("/api/html", self.html)
        self.app.router.add_post("/api/action", self.action)

    @web.middleware
    async def count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.path_qs
        self.hits[key] = self.hits.get(key, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self.in_flight -= 1

    async def root(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "root",
                "_links": {
                    "self": {"href": "/api"},
                    "items": {"href": "/api/items?offset=0&limit=10"},
                    "hal-items": {"href": "/api/hal-items"},
                    "search": {"href": "/api/search{?q}", "templated": True},
                    "item": {"href": "/api/items/{n}", "templated": True},
                    "old": {"href": "/api/old", "deprecation": "https://docs.test/old"},
                    "many": [{"href": f"/api/items/{n}", "name": f"i{n}"} for n in range(5)],
                    "inline": {"href": "/api/items/42"},
                    "broken": {"href": "/api/broken"},
                    "html": {"href": "/api/html"},
                },
                "_embedded": {"inline": {"n": 42, "_links": {"self": {"href": "/api/items/42"}}}},
                "_actions": {
                    "export": {"uri": "/api/action", "method": "POST"},
                    "search": {"uri": "/api/action", "method": "POST"},
                },
            },
            content_type="application/hal+json",
        )

    def _item(self, n: int) -> dict[str, Any]:
        return {
            "n": n,
            "_links": {"self": {"href": f"/api/items/{n}"}, "same": {"href": f"/api/items/{n}"}},
        }

    async def items(self, request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "10"))
        results = [self._item(n) for n in range(offset, min(offset + limit, TOTAL_ITEMS))]
        links: dict[str, Any] = {
            "self": {"href": f"/api/items?offset={offset}&limit={limit}"},
            "first": {"href": f"/api/items?offset=0&limit={limit}"},
        }
        if offset + limit < TOTAL_ITEMS:
            links["next"] = {"href": f"/api/items?offset={offset + limit}&limit={limit}"}
        if offset:
            links["prev"] = {"href": f"/api/items?offset={max(0, offset - limit)}&limit={limit}"}
        return web.json_response(
            {"offset": offset, "limit": limit, "results": results, "_links": links}
        )

    async def hal_items(self, request: web.Request) -> web.Response:
        # A HAL page with only an opaque "next" cursor: must be walked one page at a time.
        cursor = int(request.query.get("cursor", "0"))
        items = [self._item(n) for n in range(cursor, min(cursor + 7, 20))]
        links: dict[str, Any] = {"self": {"href": f"/api/hal-items?cursor={cursor}"}}
        if cursor + 7 < 20:
            links["next"] = {"href": f"/api/hal-items?cursor={cursor + 7}"}
        return web.json_response({"_embedded": {"item": items}, "_links": links})

    async def item(self, request: web.Request) -> web.Response:
        return web.json_response(self._item(int(request.match_info["n"])))

    async def search(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"q": request.query.get("q"), "_links": {"self": {"href": request.path_qs}}}
        )

    async def old(self, request: web.Request) -> web.Response:
        return web.json_response({"_links": {"self": {"href": "/api/old"}}})

    async def slow(self, request: web.Request) -> web.Response:
        self.slow_arrived.set()
        await asyncio.sleep(0.2)
        return web.json_response({"slow": True, "_links": {"self": {"href": "/api/slow"}}})

    async def broken(self, request: web.Request) -> web.Response:
        return web.Response(text='{"_links": {', content_type="application/json")

    async def html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    async def action(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if "export" in body:
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await response.prepare(request)
            for _ in range(8):
                await response.write(b"x" * 65536)
            await response.write_eof()
            return response
        return web.json_response({"echo": body, "_links": {"self": {"href": "/api/action"}}})


@pytest.fixture
async def hal() -> AsyncIterator[tuple[HalApp, str]]:
    app = HalApp()
    server = TestServer(app.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield app, str(server.make_url("/api"))
    finally:
        await server.close()


async def test_get_resolves_paths_against_entry(hal: tuple[HalApp, str]) -> None:
    """A relative path resolves against the entry URL and parses into a Document."""
    _app, api = hal
    async with halnav.Navigator(api + "/") as nav:
        doc = await nav.get("items/3")
    assert doc.state["n"] == 3
    assert doc.url.endswith("/api/items/3")


async def test_concurrent_gets_share_one_request(hal: tuple[HalApp, str]) -> None:
    """Twenty concurrent gets of one URL make exactly one request (single-flight)."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        docs = await asyncio.gather(*(nav.get(api + "/slow") for _ in range(20)))
        assert nav.statistics().shared_gets == 19
    assert app.hits["/api/slow"] == 1
    assert all(doc is docs[0] for doc in docs)


async def test_a_fetch_kept_out_of_the_graph_joins_it_when_indexed_or_shared(
    hal: tuple[HalApp, str],
) -> None:
    """``fetch(url, index=False)`` leaves ``nav.graph`` alone until ``index``; a get that
    shares its request (and wants the graph) adds the document itself."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        item = await nav.fetch(api + "/items/1", index=False)
        assert nav.graph.statistics().nodes == 0
        nav.index(item)
        assert nav.graph.is_fetched(item.url)
        quiet, shared = await asyncio.gather(
            nav.fetch(api + "/slow", index=False), nav.get(api + "/slow")
        )
        assert nav.statistics().shared_gets == 1
        assert nav.graph.is_fetched(shared.url)
    assert app.hits["/api/slow"] == 1
    assert quiet.document is shared


async def test_single_flight_released_after_error(hal: tuple[HalApp, str]) -> None:
    """A failed shared get raises in every waiter and the next get tries again."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        results = await asyncio.gather(
            *(nav.get(api + "/broken") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, DocumentError) for r in results)
        with pytest.raises(DocumentError):
            await nav.get(api + "/broken")
    assert app.hits["/api/broken"] == 2


async def test_single_flight_survives_owner_cancellation(hal: tuple[HalApp, str]) -> None:
    """Cancelling the task that owns a shared request lets the waiters fetch for themselves."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        owner = asyncio.create_task(nav.get(api + "/slow"))
        await asyncio.wait_for(app.slow_arrived.wait(), 10)  # the owner's request is out
        waiter = asyncio.create_task(nav.get(api + "/slow"))
        for _ in range(20):  # event-loop turns, not time: the waiter joins the shared get
            await asyncio.sleep(0)
        assert app.hits["/api/slow"] == 1  # it joined, it did not send its own
        owner.cancel()
        doc = await waiter
        with pytest.raises(asyncio.CancelledError):
            await owner
    assert doc.state["slow"] is True
    assert app.hits["/api/slow"] == 2


async def test_follow_chain_with_templates(hal: tuple[HalApp, str]) -> None:
    """follow() expands templated links with the variables each template names."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        found = await nav.follow(api, "search", q="a b")
        item = await nav.follow(api, "item", n=7)
    assert found.state["q"] == "a b"
    assert item.state["n"] == 7
    assert app.hits["/api/items/7"] == 1


async def test_follow_rejects_unused_and_missing_variables(hal: tuple[HalApp, str]) -> None:
    """A variable no template takes, or a missing required one, is a MissingVariablesError."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        root = await nav.get()
        with pytest.raises(MissingVariablesError) as unused:
            await nav.follow(root, "search", q="x", nope=1)
        with pytest.raises(MissingVariablesError) as missing:
            await nav.follow(root, "item")
    assert unused.value.unknown == ("nope",)
    assert missing.value.missing == ("n",)


async def test_follow_selectors_and_missing_rel(hal: tuple[HalApp, str]) -> None:
    """Selectors pick among links; a missing rel names what was available."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        third = await nav.follow(api, "many[2]")
        named = await nav.follow(api, "many[name:i4]")
        with pytest.raises(LinkNotFoundError) as err:
            await nav.follow(api, "mailboxes")
    assert third.state["n"] == 2
    assert named.state["n"] == 4
    assert "available: " in str(err.value)
    assert "many" in err.value.available


async def test_follow_uses_embedded_copy_unless_fresh(hal: tuple[HalApp, str]) -> None:
    """An _embedded copy is used instead of a fetch; fresh=True fetches anyway."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        cached = await nav.follow(api, "inline")
        assert "/api/items/42" not in app.hits
        fetched = await nav.follow(api, "inline", fresh=True)
    assert cached.state["n"] == fetched.state["n"] == 42
    assert app.hits["/api/items/42"] == 1


async def test_deprecated_link_warns_with_url(hal: tuple[HalApp, str]) -> None:
    """Traversing a link that carries deprecation warns with the link's URL."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        with pytest.warns(DeprecatedLinkWarning, match=r"/api/old.*docs.test/old"):
            await nav.follow(api, "old")


async def test_unexpanded_template_and_bad_scheme_refused(hal: tuple[HalApp, str]) -> None:
    """A URL that still holds a template, or is not http(s), never reaches the wire."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        with pytest.raises(UnsafeLinkError, match="template"):
            await nav.get(api + "/items/{n}")
        for bad in ("file:///etc/passwd", "javascript:alert(1)", "data:text/plain,x"):
            with pytest.raises(UnsafeLinkError, match="http"):
                await nav.get(bad)
    assert not any("{" in key for key in app.hits)


async def test_paginate_reads_ahead_in_parallel(hal: tuple[HalApp, str]) -> None:
    """paginate() yields every item once in order and fetches pages concurrently."""
    app, api = hal
    app.delay = 0.05
    async with halnav.Navigator(api, limits=halnav.Limits(readahead=4)) as nav:
        items = [doc.state["n"] async for doc in nav.paginate(api + "/items?offset=0&limit=10")]
    assert items == list(range(TOTAL_ITEMS))
    assert app.max_in_flight > 1
    pages = [key for key in app.hits if key.startswith("/api/items?")]
    # 10 pages hold the items; read-ahead may overshoot by less than one window (4).
    assert 10 <= len(pages) < 10 + 4
    assert all(count == 1 for key, count in app.hits.items() if key.startswith("/api/items?"))


async def test_paginate_walks_opaque_next_links(hal: tuple[HalApp, str]) -> None:
    """HAL pages with an opaque cursor are walked via next, items from _embedded, in order."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        items = [doc.state["n"] async for doc in nav.paginate(api + "/hal-items")]
    assert items == list(range(20))
    assert sum(1 for key in app.hits if key.startswith("/api/hal-items")) == 3


async def test_follow_all_fans_out_over_links(hal: tuple[HalApp, str]) -> None:
    """follow_all fetches every link of a rel concurrently and keeps link order."""
    app, api = hal
    app.delay = 0.05
    async with halnav.Navigator(api) as nav:
        docs = await nav.follow_all(api, "many")
    assert [d.state["n"] for d in docs] == [0, 1, 2, 3, 4]
    assert app.max_in_flight >= 4


async def test_follow_all_over_page_items(hal: tuple[HalApp, str]) -> None:
    """On a page, follow_all follows the rel from each item."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        page = await nav.get(api + "/items?offset=0&limit=3")
        docs = await nav.follow_all(page, "same")
    assert [d.state["n"] for d in docs] == [0, 1, 2]


async def test_graph_aliases_request_url_and_self(hal: tuple[HalApp, str]) -> None:
    """The request URL and the document's self are one graph node."""
    _app, api = hal
    async with halnav.Navigator(api + "/") as nav:
        await nav.get(api + "/items/3?via=query")
        await nav.get(api)
        graph = nav.graph
    assert graph.resolve(api + "/items/3?via=query") == graph.resolve(api + "/items/3")
    assert graph.is_fetched(api + "/items/3")
    assert api + "/items/3" in graph.neighbors(api, "many")


async def test_act_returns_document_and_streams_binary(
    hal: tuple[HalApp, str], tmp_path: Path
) -> None:
    """A JSON action answer is a Document; a binary one streams to the target path."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        root = await nav.get()
        answer = await nav.act(root, "search", json={"search": {"query": "x"}})
        invoked = await nav.invoke(root, "search", json={"search": {"query": "y"}})
        target = tmp_path / "out.pst"
        download = await nav.act(root, "EXPORT", json={"export": None}, to=target)
        with pytest.raises(ActionNotFoundError, match="export, search"):
            await nav.act(root, "restore")
    assert isinstance(answer, halnav.Document)
    assert answer.state["echo"] == {"search": {"query": "x"}}
    assert isinstance(invoked, halnav.Invoked)  # invoke: the answer and its status
    assert invoked.status == 200
    assert isinstance(invoked.answer, halnav.Document)
    assert invoked.answer.state["echo"] == {"search": {"query": "y"}}
    assert isinstance(download, halnav.Download)
    assert download.path == target
    assert target.stat().st_size == 8 * 65536
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pst"]


async def test_action_body_hook_wraps_body(hal: tuple[HalApp, str]) -> None:
    """action_body rewrites the body before sending (the Veeam one-key convention)."""
    _app, api = hal
    async with halnav.Navigator(api, action_body=lambda action, body: {action.name: body}) as nav:
        root = await nav.get()
        answer = await nav.act(root, "search", json={"query": "x"})
    assert isinstance(answer, halnav.Document)
    assert answer.state["echo"] == {"search": {"query": "x"}}


async def test_errors_name_url_and_expectation(hal: tuple[HalApp, str]) -> None:
    """Malformed JSON, HTML and 404 answers give typed errors naming the URL."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        with pytest.raises(DocumentError, match=r"/api/broken.*malformed JSON"):
            await nav.get(api + "/broken")
        with pytest.raises(DocumentError, match=r"/api/html.*text/html"):
            await nav.get(api + "/html")
        with pytest.raises(HTTPStatusError) as err:
            await nav.get(api + "/missing")
    assert err.value.status == 404
    assert "/api/missing" in str(err.value)


async def test_lifecycle_lazy_open_and_closed_state(hal: tuple[HalApp, str]) -> None:
    """A Navigator opens on first use, closes idempotently and refuses use after close."""
    _app, api = hal
    nav = halnav.Navigator(api)
    assert "unopened" in repr(nav)
    await nav.get()
    assert "open" in repr(nav)
    await nav.aclose()
    await nav.aclose()
    with pytest.raises(StateError):
        await nav.get()


def test_auth_without_origin_is_refused() -> None:
    """Credentials without an entry or trusted origin are refused up front."""
    with pytest.raises(StateError, match="trusted_origins"):
        halnav.Navigator(auth="secret-token")


async def test_statistics_count_documents(hal: tuple[HalApp, str]) -> None:
    """statistics() counts fetched documents and actions."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        root = await nav.get()
        await nav.follow(root, "many[0]")
        await nav.act(root, "search", json={"q": 1})
        stats = nav.statistics()
    assert (stats.documents, stats.actions) == (2, 1)
    assert stats.transport.requests >= 3
    assert json.dumps(stats.documents)


async def test_unclosed_navigator_warns(hal: tuple[HalApp, str]) -> None:
    """A Navigator garbage-collected while open warns ResourceWarning naming itself."""
    import gc
    import warnings

    _app, api = hal
    nav = halnav.Navigator(api)
    await nav.get()
    session = nav._transport.session  # closed by hand below, once the warning was seen
    assert session is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del nav
        for _ in range(3):  # the session and its connector go in later collections
            gc.collect()
            await asyncio.sleep(0)
    await session.close()
    assert any(
        issubclass(w.category, ResourceWarning) and "unclosed <Navigator" in str(w.message)
        for w in caught
    )


async def test_follow_all_uses_embedded_copies_and_checks_variables(
    hal: tuple[HalApp, str],
) -> None:
    """follow_all takes embedded copies unless fresh, expands templates, refuses unused vars."""
    app, api = hal
    async with halnav.Navigator(api) as nav:
        root = await nav.get()
        (cached,) = await nav.follow_all(root, "inline")
        assert "/api/items/42" not in app.hits
        (fetched,) = await nav.follow_all(root, "inline", fresh=True)
        assert app.hits["/api/items/42"] == 1
        (seven,) = await nav.follow_all(root, "item", n=7)
        with pytest.raises(MissingVariablesError) as unused:
            await nav.follow_all(root, "many", nope=1)
    assert cached.state["n"] == fetched.state["n"] == 42
    assert seven.state["n"] == 7
    assert unused.value.unknown == ("nope",)


async def test_follow_all_warns_on_a_deprecated_link_like_follow(hal: tuple[HalApp, str]) -> None:
    """follow and follow_all share one hop resolver: both warn, naming the caller's line."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        for step in (nav.follow, nav.follow_all):
            with pytest.warns(DeprecatedLinkWarning, match=r"/api/old") as caught:
                await step(api, "old")
            assert caught[0].filename == __file__  # stacklevel points here, not into halnav


async def test_follow_steps_into_page_items_and_names_them_when_out_of_range(
    hal: tuple[HalApp, str],
) -> None:
    """``item`` / ``item[N]`` select a page item (items are not links); a miss lists the range."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        second = await nav.follow(api, "items", "item[1]")
        first_same = await nav.follow(api, "items", "item", "same")
        with pytest.raises(LinkNotFoundError) as missing:
            await nav.follow(api, "items", "item[10]")
        with pytest.raises(LinkNotFoundError) as not_a_rel:
            await nav.follow(api, "items", "nope")
    assert second.state["n"] == 1
    assert first_same.state["n"] == 0
    assert missing.value.available == ("item[0..9]",)
    assert not any("select one" in note for note in missing.value.__notes__)  # said once
    assert "item[0] .. item[9] select one" in "\n".join(not_a_rel.value.__notes__)


async def test_follow_selects_a_page_item_by_a_state_field(hal: tuple[HalApp, str]) -> None:
    """``item[n:3]`` is the item whose ``n`` is 3; a miss lists the values there (#36.5)."""
    _app, api = hal
    async with halnav.Navigator(api) as nav:
        third = await nav.follow(api, "items", "item[n:3]")
        with pytest.raises(LinkNotFoundError) as missing:
            await nav.follow(api, "items", "item[n:99]")
    assert third.state["n"] == 3
    assert missing.value.available[:2] == ("... 5 more", "item[n:0]")


async def test_variables_for_a_template_win_over_its_embedded_copy() -> None:
    """An embedded copy stands for the link as it is; given variables ask for another URL."""
    body = {
        "_links": {"self": {"href": "/r"}, "find": {"href": "/r/find{?q}", "templated": True}},
        "_embedded": {"find": {"q": None, "_links": {"self": {"href": "/r/find"}}}},
    }
    hits: list[str] = []

    async def find(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        return web.json_response({"q": request.query.get("q")})

    app = web.Application()
    app.router.add_get("/r/find", find)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("/r"))
        doc = halnav.parse(body, base)
        async with halnav.Navigator(base) as nav:
            copy = await nav.follow(doc, "find")
            asked = await nav.follow(doc, "find", q="x")
    assert copy.state["q"] is None
    assert asked.state["q"] == "x"
    assert hits == ["/r/find?q=x"]
