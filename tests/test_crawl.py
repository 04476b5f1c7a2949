"""The crawler: completeness, failures as records, scope, actions, resume after SIGKILL, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import walks
from aiohttp import web
from aiohttp.test_utils import TestServer
from walks import SMALL, Walk, explored, navigator, of_kind, read_records, written

import halnav
from halnav import (
    ActionRecord,
    ActionRule,
    Crawler,
    CrawlStatistics,
    DocumentRecord,
    ErrorInfo,
    FailureRecord,
    Limits,
    Scope,
    crawl,
    veeam,
)
from halnav.simulator import Faults

# -- a small HAL app with every kind of failure ------------------------------------------------


class FaultyApp:
    """A HAL API whose links lead to good documents, errors, a page and another origin."""

    def __init__(self, other: str = "http://127.0.0.1:9/") -> None:
        self.other = other
        self.hits: Counter[str] = Counter()
        self.app = web.Application(middlewares=[self.count])
        self.app.router.add_get("/api", self.root)
        self.app.router.add_get("/api/chain/{n}", self.chain)
        self.app.router.add_get("/api/missing", self.missing)
        self.app.router.add_get("/api/boom", self.boom)
        self.app.router.add_get("/api/bad", self.bad)
        self.app.router.add_get("/api/slow", self.slow)
        self.app.router.add_get("/api/page", self.page)
        self.app.router.add_get("/api/things/{n}", self.thing)

    @web.middleware
    async def count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.hits[request.path_qs] += 1
        response: web.StreamResponse = await handler(request)
        return response

    async def root(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "root",
                "_links": {
                    "self": {"href": "/api"},
                    "chain": {"href": "/api/chain/1"},
                    "missing": {"href": "/api/missing"},
                    "boom": {"href": "/api/boom"},
                    "bad": {"href": "/api/bad"},
                    "slow": {"href": "/api/slow"},
                    "page": {"href": "/api/page"},
                    "search": {"href": "/api/things{?q}", "templated": True},
                    "elsewhere": {"href": self.other},
                },
                "_embedded": {
                    "note": [
                        {"text": "has a self", "_links": {"self": {"href": "/api/notes/1"}}},
                        {"text": "no self"},
                    ]
                },
            }
        )

    async def chain(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        links: dict[str, Any] = {"self": {"href": f"/api/chain/{n}"}, "root": {"href": "/api"}}
        if n < 3:
            links["down"] = {"href": f"/api/chain/{n + 1}"}
        return web.json_response({"n": n, "_links": links})

    async def missing(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "Thing not found."}, status=404)

    async def boom(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "It broke."}, status=500)

    async def bad(self, request: web.Request) -> web.Response:
        return web.Response(text='{"_links": {', content_type="application/json")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"late": True})

    async def page(self, request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        size, total = 3, 5
        results: list[dict[str, Any]] = [
            {"n": n, "_links": {"self": {"href": f"/api/things/{n}"}}}
            for n in range(offset, min(offset + size, total))
        ]
        if offset == 0:
            results.append({"anonymous": True})
        links = {
            "self": {"href": f"/api/page?offset={offset}&limit={size}"},
            "first": {"href": f"/api/page?offset=0&limit={size}"},
        }
        if offset + size < total:
            links["next"] = {"href": f"/api/page?offset={offset + size}&limit={size}"}
        return web.json_response(
            {"offset": offset, "limit": size, "results": results, "_links": links}
        )

    async def thing(self, request: web.Request) -> web.Response:
        n = request.match_info["n"]
        return web.json_response({"n": int(n), "_links": {"self": {"href": f"/api/things/{n}"}}})


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[TestServer]:
    """Serve ``app`` on 127.0.0.1 for the block."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def faulty() -> AsyncIterator[tuple[FaultyApp, str, FaultyApp]]:
    """The faulty app (its root URL) and a second app on another origin that it links to."""
    other = FaultyApp()
    async with serving(other.app) as other_server:
        app = FaultyApp(str(other_server.make_url("/api")))
        async with serving(app.app) as server:
            yield app, str(server.make_url("/api")), other


def quick_navigator(root: str) -> halnav.Navigator:
    """No retries and a short timeout, so failures come fast."""
    return halnav.Navigator(root, limits=Limits(retries=0, total_timeout=0.3))


async def test_a_body_cut_off_once_is_tried_again_and_the_walk_is_complete(
    tmp_path: Path,
) -> None:
    """A 200 whose JSON is cut in half (a proxy, a restarting server) is tried once more at
    the end of the walk, like a 503: the second answer is whole, the walk complete."""
    cuts: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/root":
            body = {"_links": {"self": {"href": "/root"}, "a": {"href": "/a"}}}
            return web.json_response(body)
        whole = json.dumps({"name": "a", "_links": {"self": {"href": "/a"}}})
        if not cuts:
            cuts.append(request.path)
            return web.Response(text=whole[: len(whole) // 2], content_type="application/json")
        return web.Response(text=whole, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    out = tmp_path / "walk.jsonl"
    async with serving(app) as server:
        root = str(server.make_url("/root"))
        async with quick_navigator(root) as nav:
            summary = await Crawler(nav, [root], output=out).run()
    assert cuts == ["/a"]
    assert summary.complete
    assert summary.failures == 0
    assert [r.state.get("name") for r in of_kind(read_records(out), DocumentRecord)] == [
        None, "a",
    ]  # fmt: skip


@pytest.mark.parametrize("readahead", [1, 32])
async def test_a_next_that_never_ends_stops_after_three_empty_pages(
    tmp_path: Path, readahead: int
) -> None:
    """A server whose empty pages always link a next one: the walk follows three empty
    pages in a row, then stops following, says where, and is not complete."""

    async def handle(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "0"))
        links: dict[str, Any] = {
            "self": {"href": f"/list?page={page}"},
            "next": {"href": f"/list?page={page + 1}"},
        }
        items = [{"n": n, "_links": {"self": {"href": f"/doc/{n}"}}} for n in range(5)]
        body = {"_links": links, "_embedded": {"item": items if page == 0 else []}}
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/list", handle)
    out = tmp_path / "walk.jsonl"
    async with serving(app) as server:
        root = str(server.make_url("/list?page=0"))
        limits = Limits(retries=0, readahead=readahead)
        async with halnav.Navigator(root, limits=limits) as nav:
            summary = await asyncio.wait_for(Crawler(nav, [root], output=out).run(), 30)
    pages = sorted(r.url for r in of_kind(read_records(out), DocumentRecord) if "list" in r.url)
    numbers = [int(url.rsplit("=", 1)[1]) for url in pages]
    assert summary.failures == 0
    if readahead == 1:
        assert numbers == [0, 1, 2, 3]
        assert summary.endless == (pages[-1],)
        assert not summary.complete
    else:  # pages read ahead and found empty are no pages: the chain may end sooner
        assert numbers[0] == 0
        assert max(numbers) <= 3 + 2  # three empty in a row, the two read ahead at most


# -- completeness ------------------------------------------------------------------------------


async def test_walk_reaches_every_expected_document_once(tmp_path: Path) -> None:
    """A walk of a session's Organization writes exactly the simulator's expected documents."""
    out = tmp_path / "walk.jsonl"
    async with explored() as walk:
        expected = walk.sim.expected_documents(walk.session_id)
        assert len(expected) == walk.sim.count_documents()
        async with navigator(walk.sim) as nav:
            requests_before = walk.sim.stats.requests
            summary = await crawl(nav, [walk.root], output=out)
            requests = walk.sim.stats.requests - requests_before
    urls = written(read_records(out))
    assert len(urls) == len(set(urls))
    assert set(urls) == expected
    assert summary.documents == len(expected)
    assert summary.complete
    assert not summary.resumed
    assert summary.failures == 0
    # Page items are not fetched again: far fewer requests than documents.
    assert requests < len(expected) / 3


async def test_records_have_the_documented_shape(tmp_path: Path) -> None:
    """Document records carry url/status/depth/parent/rel/state/links/actions, items inline."""
    out = tmp_path / "walk.jsonl"
    async with explored() as walk, navigator(walk.sim) as nav:
        await crawl(nav, [walk.root], output=str(out))
    records = {r.url: r for r in of_kind(read_records(out), DocumentRecord)}
    root = records[walk.root]  # the seed page's casing: .../RestoreSessions/{id}/organization
    assert root.depth == 0
    assert root.parent is None
    assert root.rel is None
    assert root.status == 200
    assert root.embedded is False
    assert set(root.actions) == {"exporttoPst", "search"}
    assert root.actions["search"]["method"] == "POST"
    page_url = root.links["mailboxes"][0] + "?offset=0&limit=30"
    page = records[page_url]
    assert page.rel == "mailboxes"
    assert page.depth == 1
    assert page.state == {"offset": 0, "limit": 30}
    assert page.items is not None
    assert len(page.items) == 3
    mailbox = records[page.items[0]]
    assert mailbox.embedded is True
    assert mailbox.rel == "item"
    assert mailbox.parent == page_url
    assert mailbox.depth == 2
    assert "@" in mailbox.state["email"]


# -- failures ----------------------------------------------------------------------------------


async def test_failures_are_records_and_the_walk_goes_on(tmp_path: Path) -> None:
    """404, 500, malformed JSON and a timeout become failure records; the rest is complete."""
    out = tmp_path / "walk.jsonl"
    seen: list[CrawlStatistics] = []
    async with faulty() as (app, root, other), quick_navigator(root) as nav:
        crawler = Crawler(nav, [root], output=out, progress=seen.append, progress_interval=0.05)
        summary = await crawler.run()
    records = read_records(out)
    failures = {r.url.rsplit("/", 1)[1]: r for r in of_kind(records, FailureRecord)}
    assert set(failures) == {"missing", "boom", "bad", "slow"}
    assert failures["missing"].error.type == "HTTPStatusError"
    assert failures["missing"].error.status == 404
    assert "Thing not found." in failures["missing"].error.message
    assert failures["missing"].rel == "missing"
    assert failures["missing"].depth == 1
    assert failures["missing"].parent == root
    assert failures["boom"].error.status == 500
    assert failures["bad"].error == ErrorInfo(
        type="DocumentError", status=None, message=failures["bad"].error.message
    )
    assert "malformed JSON" in failures["bad"].error.message
    assert failures["slow"].error.type == "RequestTimeoutError"
    assert failures["slow"].error.status is None

    urls = written(records)
    base = root.removesuffix("/api")
    assert sorted(urls) == sorted(
        [
            root,
            f"{base}/api/chain/1",
            f"{base}/api/chain/2",
            f"{base}/api/chain/3",
            f"{base}/api/notes/1",
            f"{base}/api/page?offset=0&limit=3",
            f"{base}/api/page?offset=3&limit=3",
            *(f"{base}/api/things/{n}" for n in range(5)),
        ]
    )
    by_url = {r.url: r for r in of_kind(records, DocumentRecord)}
    assert by_url[f"{base}/api/notes/1"].rel == "note"
    assert by_url[f"{base}/api/notes/1"].embedded is True
    assert by_url[root].inline == [
        {"rel": "note", "state": {"text": "no self"}, "links": {}, "actions": {}}
    ]
    assert by_url[f"{base}/api/page?offset=0&limit=3"].inline[0]["state"] == {"anonymous": True}
    assert by_url[f"{base}/api/page?offset=3&limit=3"].depth == 1  # next adds no depth
    assert by_url[f"{base}/api/things/4"].depth == 2
    assert not any(path.startswith("/api/things") for path in app.hits)  # items: no refetch
    assert "/api/things" not in app.hits  # a templated link is never sent
    assert not other.hits  # another origin

    # Statistics and summary agree with the records.
    assert summary.documents == len(urls) == crawler.statistics().documents
    assert summary.failures == 4 == crawler.statistics().failures
    assert dict(summary.failures_by_type) == {
        "HTTPStatusError": 2,
        "DocumentError": 1,
        "RequestTimeoutError": 1,
    }
    # Finished, but with failures: not complete. The other origin's link was held back.
    assert summary.finished
    assert not summary.complete
    assert list(summary.offsite_links.values()) == [1]
    assert summary.output == str(out)
    with pytest.raises(halnav.errors.StateError):
        await crawler.run()
    assert seen
    assert seen[-1] == crawler.statistics()
    assert seen[-1].queued == 0
    assert seen[-1].in_flight == 0


async def test_output_stream_and_no_output() -> None:
    """A text stream gets the same records; with no output only the counters are kept."""
    stream = io.StringIO()
    async with faulty() as (_app, root, _other), quick_navigator(root) as nav:
        streamed = await crawl(nav, [root], output=stream, scope=Scope(max_depth=1))
    lines = [halnav.parse_record(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == streamed.documents + streamed.failures
    assert streamed.output is None
    async with faulty() as (_app, root, _other), quick_navigator(root) as nav:
        silent = await crawl(nav, [root], scope=Scope(max_depth=1))
        assert nav.graph.is_fetched(root)
    assert silent.documents == streamed.documents


# -- scope -------------------------------------------------------------------------------------


async def test_scope_allow_and_deny_rels(tmp_path: Path) -> None:
    """allow_rels limits the walk to those rels; deny_rels removes rels from it."""
    async with faulty() as (app, root, _other):
        async with quick_navigator(root) as nav:
            out = tmp_path / "allow.jsonl"
            await crawl(nav, [root], output=out, scope=Scope(allow_rels=frozenset({"chain"})))
        assert sorted(u.rsplit("/", 2)[-2:][-1] for u in written(read_records(out))) == [
            "1",
            "api",
        ]
        app.hits.clear()
        async with quick_navigator(root) as nav:
            out = tmp_path / "deny.jsonl"
            deny = frozenset({"first", "prev", "last", "missing", "boom", "bad", "slow", "note"})
            summary = await crawl(nav, [root], output=out, scope=Scope(deny_rels=deny))
        records = read_records(out)
        assert summary.failures == 0
        assert not of_kind(records, FailureRecord)
        assert not any(u.endswith("/api/notes/1") for u in written(records))
        assert "/api/missing" not in app.hits


async def test_scope_max_depth(tmp_path: Path) -> None:
    """max_depth stops the walk at that depth (next hops add none, items one)."""
    out = tmp_path / "walk.jsonl"
    async with faulty() as (_app, root, _other), quick_navigator(root) as nav:
        await crawl(nav, [root], output=out, scope=Scope(max_depth=1))
    by_url = {r.url: r for r in of_kind(read_records(out), DocumentRecord)}
    assert max(r.depth or 0 for r in by_url.values()) == 1
    assert any(u.endswith("/api/chain/1") for u in by_url)
    assert not any(u.endswith("/api/chain/2") for u in by_url)
    assert any(u.endswith("offset=3&limit=3") for u in by_url)  # the second page, same depth
    assert not any("/api/things/" in u for u in by_url)  # its items would be at depth 2


async def test_a_walk_stopped_before_its_first_record_resumes(tmp_path: Path) -> None:
    """A walk whose state was begun but that wrote no record (refused at its first fetch,
    or killed then; a cluster shard re-run after its worker died) resumes: the output it
    never created (``replace=True`` creates it at the first record) is no error."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    async with explored() as walk:
        sim = walk.sim
        wrong = veeam.open_navigator(sim.url, username=sim.username, password="wrong")
        async with wrong as nav:
            with pytest.raises(halnav.errors.AuthenticationError):
                await crawl(nav, [walk.root], output=out, state_dir=state, replace=True)
        assert not out.exists()
        assert state.is_dir()
        async with navigator(walk.sim) as nav:
            done = await crawl(nav, [walk.root], output=out, state_dir=state, replace=True)
        expected = sim.expected_documents(walk.session_id)
    assert done.complete
    urls = written(read_records(out))
    assert len(urls) == len(set(urls))
    assert set(urls) == expected


async def test_a_walk_run_again_replaces_its_output_unless_told_to_append(
    tmp_path: Path,
) -> None:
    """The library does what the CLI does: a new walk into the same file replaces it (two
    runs gave every record twice); ``replace=False`` appends."""
    out = tmp_path / "walk.jsonl"
    async with explored() as walk, navigator(walk.sim) as nav:
        await crawl(nav, [walk.root], output=out)
        once = out.read_bytes().count(b"\n")
        await crawl(nav, [walk.root], output=out)
        assert out.read_bytes().count(b"\n") == once
        await crawl(nav, [walk.root], output=out, replace=False)
    assert out.read_bytes().count(b"\n") == 2 * once
    assert once == len(walk.sim.expected_documents(walk.session_id))


async def test_scope_max_documents_then_resume(tmp_path: Path) -> None:
    """max_documents writes that many documents, complete=False; a resume finishes the walk."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    async with explored() as walk:
        expected = walk.sim.expected_documents(walk.session_id)
        async with navigator(walk.sim) as nav:
            first = await crawl(
                nav, [walk.root], output=out, state_dir=state, scope=Scope(max_documents=50)
            )
        assert first.documents == 50
        assert not first.complete
        assert len(written(read_records(out))) == 50
        async with navigator(walk.sim) as nav:
            second = await crawl(
                nav, [walk.root], output=out, state_dir=state, scope=Scope(max_documents=100)
            )
        assert second.resumed
        assert second.documents == 150
        async with navigator(walk.sim) as nav:
            last = await crawl(nav, [walk.root], output=out, state_dir=state)
    assert last.complete
    urls = written(read_records(out))
    assert len(urls) == len(set(urls)) == last.documents
    assert set(urls) == expected


async def test_scope_same_origin(tmp_path: Path) -> None:
    """Links to another origin are followed only with same_origin=False."""
    async with faulty() as (_app, root, other), quick_navigator(root) as nav:
        await crawl(nav, [root], output=tmp_path / "a.jsonl", scope=Scope(max_depth=1))
        assert not other.hits
        await crawl(
            nav,
            [root],
            output=tmp_path / "b.jsonl",
            scope=Scope(max_depth=1, same_origin=False),
        )
        assert other.hits["/api"] == 1


async def test_follow_templated_expands_optional_templates(tmp_path: Path) -> None:
    """follow_templated fetches templates whose variables are all optional, expanded empty."""
    async with faulty() as (app, root, _other), quick_navigator(root) as nav:
        await crawl(
            nav,
            [root],
            output=tmp_path / "walk.jsonl",
            scope=Scope(max_depth=1, follow_templated=True),
        )
    assert app.hits["/api/things"] == 1


# -- actions -----------------------------------------------------------------------------------


async def test_search_action_runs_on_every_mailbox(tmp_path: Path) -> None:
    """A search rule runs once per mailbox and records the simulator's real hits."""
    out = tmp_path / "walk.jsonl"
    query = {"query": "subject:#4"}
    async with explored() as walk, navigator(walk.sim) as nav:
        summary = await crawl(
            nav,
            [walk.root],
            output=out,
            actions=[ActionRule(name="Search", json=query, rels=frozenset({"item"}))],
            scope=Scope(allow_rels=frozenset({"mailboxes", "item", "next"})),
        )
        records = read_records(out)
        hits = [r for r in of_kind(records, ActionRecord) if r.action == "Search"]
        assert len(hits) == 3 == summary.actions
        assert summary.action_failures == 0
        mailboxes = {r.url for r in of_kind(records, DocumentRecord) if "email" in r.state}
        assert {r.url for r in hits} == mailboxes
        for record in hits:
            assert record.status == 200
            assert record.items is not None
            mailbox = await nav.get(record.url)
            direct = await nav.act(mailbox, "search", json=query)
            assert isinstance(direct, halnav.Document)
            want = [item.self_url for item in direct.items]
            assert [item["url"] for item in record.items] == want
            assert len(want) == 8  # "#4" and "#40" in each of four folders
            assert all("#4" in item["state"]["subject"] for item in record.items)
            assert record.result == {"offset": 0, "limit": 30}


async def test_export_pst_limit_one_never_overwrites(tmp_path: Path) -> None:
    """exporttoPst with export_dir and limit=1 writes one file, beside an existing one."""
    out, exports = tmp_path / "walk.jsonl", tmp_path / "pst"
    async with explored() as walk, navigator(walk.sim) as nav:
        mailboxes = await nav.follow(await nav.get(walk.root), "mailboxes")
        first = mailboxes.items[0]
        exports.mkdir()
        (exports / f"{first['email']}.pst").write_bytes(b"someone else's")
        rule = ActionRule(
            name="exportToPst",
            export_dir=str(exports),
            rels=frozenset({"item"}),
            limit=1,
            where=veeam.is_mailbox,
        )
        crawler = Crawler(nav, [walk.root], output=out, actions=[rule])
        summary = await crawler.run()
    config = walk.sim.config
    size = 512 + config.pst_bytes_per_item * config.folders * (1 + config.subfolders) * config.items
    files = sorted(p.name for p in exports.iterdir())
    assert files == [f"{first['email']}-1.pst", f"{first['email']}.pst"]
    assert (exports / f"{first['email']}-1.pst").stat().st_size == size
    assert (exports / f"{first['email']}.pst").read_bytes() == b"someone else's"
    (record,) = of_kind(read_records(out), ActionRecord)
    assert record.url == first.canonical_url
    assert record.result == {
        "path": str(exports / f"{first['email']}-1.pst"),
        "bytes": size,
        "content_type": "application/octet-stream",
    }
    assert summary.actions == 1
    assert crawler.statistics().bytes_exported == size


async def test_action_failures_are_records(tmp_path: Path) -> None:
    """An action the server refuses becomes an action record with an error."""
    out = tmp_path / "walk.jsonl"
    config = attrs.evolve(SMALL, outlook_installed=False)
    async with explored(config) as walk, navigator(walk.sim) as nav:
        rule = ActionRule(
            name="exporttoPst", export_dir=str(tmp_path), limit=2, where=veeam.is_mailbox
        )
        summary = await crawl(nav, [walk.root], output=out, actions=[rule])
    failed = of_kind(read_records(out), ActionRecord)
    assert len(failed) == 2 == summary.action_failures
    error = failed[0].error
    assert failed[0].failed
    assert error is not None
    assert failed[0].result is None
    assert error.type == "HTTPStatusError"
    assert error.status == 500
    assert "Outlook" in error.message
    assert not list(tmp_path.glob("*.pst"))


# -- resume ------------------------------------------------------------------------------------


async def run_child(walk: Walk, out: Path, state: Path, kill_at: int | None) -> int:
    """The shared child walk, committing every 50 records."""
    return await walks.run_child(walk, out, state, kill_at, "--commit-records", "50")


@pytest.mark.parametrize(
    ("kills", "name"),
    [
        ((0.2,), "walk.jsonl"),
        ((0.6,), "walk.jsonl"),
        ((0.3, 0.7), "walk.jsonl"),
        ((0.4,), "walk.jsonl.gz"),  # gzip members: a commit's offset is a member's end
        ((0.2, 0.6), "walk.jsonl.gz"),
    ],
)
async def test_resume_after_sigkill_writes_each_document_once(
    tmp_path: Path, kills: tuple[float, ...], name: str
) -> None:
    """A walk SIGKILLed at some point and re-run writes every expected document exactly once."""
    out, state = tmp_path / name, tmp_path / "state"
    config = attrs.evolve(SMALL, mailboxes=4, faults=Faults(latency=0.01))
    async with explored(config) as walk:
        expected = walk.sim.expected_documents(walk.session_id)
        for fraction in kills:
            code = await run_child(walk, out, state, int(len(expected) * fraction))
            assert code == -signal.SIGKILL  # it was killed mid-walk, not finished
            with contextlib.closing(sqlite3.connect(state / "state.sqlite3")) as db:
                (offset,) = db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
                (pending,) = db.execute("SELECT COUNT(*) FROM frontier WHERE done = 0").fetchone()
            assert 0 < int(offset) <= out.stat().st_size  # a real mid-walk state to resume
            assert pending > 0
        assert await run_child(walk, out, state, None) == 0
    records = read_records(out)
    urls = written(records)
    assert Counter(urls).most_common(1)[0][1] == 1
    assert set(urls) == expected
    assert not of_kind(records, FailureRecord)


async def test_resume_truncates_uncommitted_records(tmp_path: Path) -> None:
    """Bytes after the committed offset (records of unfinished items) are cut on resume."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    async with explored() as walk:
        async with navigator(walk.sim) as nav:
            await crawl(
                nav, [walk.root], output=out, state_dir=state, scope=Scope(max_documents=10)
            )
        with out.open("a", encoding="utf-8") as file:
            file.write('{"url": "uncommitted"}\n{"torn": ')
        async with navigator(walk.sim) as nav:
            summary = await crawl(nav, [walk.root], output=out, state_dir=state)
        expected = walk.sim.expected_documents(walk.session_id)
    urls = written(read_records(out))
    assert sorted(urls) == sorted(expected)
    assert summary.resumed
    assert summary.complete
    assert summary.documents == len(expected)


async def test_state_needs_a_path_and_the_same_roots(tmp_path: Path) -> None:
    """state_dir refuses a stream output, and a state of other roots or another output."""
    async with faulty() as (_app, root, _other), quick_navigator(root) as nav:
        with pytest.raises(ValueError, match="file path"):
            Crawler(nav, [root], output=io.StringIO(), state_dir=tmp_path / "s")
        with pytest.raises(ValueError, match="file path"):
            Crawler(nav, [root], state_dir=tmp_path / "s")
        out = tmp_path / "walk.jsonl"
        await crawl(nav, [root], output=out, state_dir=tmp_path / "s", scope=Scope(max_depth=0))
        other = root + "/chain/1"
        with pytest.raises(ValueError, match=r"chain/1") as info:
            await crawl(nav, [other], output=out, state_dir=tmp_path / "s")
        assert root in str(info.value)
        with pytest.raises(ValueError, match="output"):
            await crawl(nav, [root], output=tmp_path / "x.jsonl", state_dir=tmp_path / "s")
    assert {p.name for p in (tmp_path / "s").iterdir()} <= {
        "lock",
        "state.sqlite3",
        "state.sqlite3-wal",
        "state.sqlite3-shm",
    }


# -- cancellation ------------------------------------------------------------------------------


def cancel_midway(sim_url: str, root: str, out: Path, state: Path) -> None:
    """In a fresh event loop: start a walk, cancel it, check that nothing is left running."""

    async def main() -> None:
        async with veeam.open_navigator(
            sim_url,
            username=SMALL.username,
            password=SMALL.password,
            limits=Limits(concurrency=4),
        ) as nav:
            midway = asyncio.Event()

            def progress(stats: CrawlStatistics) -> None:
                if stats.documents >= 40:
                    midway.set()

            crawler = Crawler(
                nav, [root], output=out, state_dir=state, progress=progress, progress_interval=0.01
            )
            task = asyncio.create_task(crawler.run())
            await midway.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


async def test_cancel_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    """Cancelling a walk leaves no task, a flushed output and a state that resumes exactly."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    config = attrs.evolve(SMALL, faults=Faults(latency=0.02))
    async with explored(config) as walk:
        # The crawl runs in its own loop (a thread): the simulator's server tasks live in this one.
        await asyncio.to_thread(cancel_midway, walk.sim.url, walk.root, out, state)
        partial = written(read_records(out))  # every line is whole JSON
        assert 40 <= len(partial) < len(walk.sim.expected_documents(walk.session_id))
        async with navigator(walk.sim) as nav:
            summary = await crawl(nav, [walk.root], output=out, state_dir=state)
        expected = walk.sim.expected_documents(walk.session_id)
    urls = written(read_records(out))
    assert len(urls) == len(set(urls)) == summary.documents
    assert set(urls) == expected


def test_public_names() -> None:
    """The crawler's names are exported from halnav."""
    for name in ("crawl", "Crawler", "Scope", "ActionRule", "CrawlStatistics", "CrawlSummary"):
        assert name in halnav.__all__
