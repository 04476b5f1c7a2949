"""Honest outcomes of a bulk walk: exit codes, `complete`, outages, output safety.

Every test drives the real CLI in a child process (or the real Crawler) against real
servers on 127.0.0.1: the Veeam simulator, or a small HAL app that can be stopped and
started again on the same port mid-walk.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from test_cli import clean_env, halnav_process, served

import halnav
from halnav import Crawler, Navigator, Scope, _crawl
from halnav.errors import ConnectError, HTTPStatusError, StateError
from halnav.simulator import SimulatorConfig, open_simulator

PAGES, PER_PAGE = 12, 10


def hal_app(
    latency: float = 0.0, broken: frozenset[int] = frozenset()
) -> tuple[web.Application, list[str]]:
    """``/list?page=N``: 10 links to ``/doc/K`` each and ``next``; ``/doc/K`` is a leaf
    (``/doc/0`` also links to another origin; the ``broken`` ones answer 404)."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        if latency:
            await asyncio.sleep(latency)
        if request.path == "/list":
            page = int(request.query.get("page", "0"))
            links: dict[str, object] = {
                "self": {"href": f"/list?page={page}"},
                "item": [{"href": f"/doc/{page * PER_PAGE + i}"} for i in range(PER_PAGE)],
            }
            if page + 1 < PAGES:
                links["next"] = {"href": f"/list?page={page + 1}"}
            return web.json_response({"page": page, "_links": links})
        if request.path.startswith("/doc/"):
            number = int(request.path.rsplit("/", 1)[1])
            if number in broken:
                return web.json_response({"message": "gone"}, status=404)
            body = {"n": number, "_links": {"self": {"href": request.path}}}
            if number == 0:
                body["_links"]["elsewhere"] = {"href": "http://127.0.0.1:9/x"}  # type: ignore[index]
            return web.json_response(body)
        return web.json_response({"message": "no such thing"}, status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app, hits


async def start(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    return runner, runner.addresses[0][1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def documents(path: Path) -> list[str]:
    """URLs of the document records of a walk's output, in order."""
    return [r.url for r in halnav.read_records(path) if isinstance(r, halnav.DocumentRecord)]


ALL_DOCS = PAGES + PAGES * PER_PAGE


# -- a walk that cannot start --------------------------------------------------------


async def test_wrong_password_exits_1_keeps_the_output_and_the_walk_resumes(
    tmp_path: Path,
) -> None:
    """No 'complete' after a refused login; --state keeps the root pending, not finished."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    out.write_text("yesterday\n")
    async with served() as s:
        args = ["crawl", s.org, "--out", str(out), "--state", str(state)]
        status, _out, err = await halnav_process(
            *args, "--username", s.sim.username, "--password", "Wr0ng-S3cret-7431"
        )
        assert status == 1, err
        assert err.startswith("halnav: error: ")
        assert "password is incorrect" in err
        assert "summary" not in err
        assert out.read_text() == "yesterday\n"  # nothing was walked: nothing replaced
        status, _out, err = await halnav_process(
            *args, "--username", s.sim.username, "--password", s.sim.password
        )
        assert status == 0, err
        assert '"complete": true' in err
        assert len(documents(out)) == s.sim.count_documents()


@pytest.mark.parametrize("case", ["refused", "untrusted-tls"])
async def test_a_server_that_cannot_be_reached_exits_1(case: str) -> None:
    if case == "refused":
        status, _out, err = await halnav_process(
            "crawl", f"http://127.0.0.1:{free_port()}/", "--retries", "0"
        )
        assert "ConnectError" in err or "connect" in err.lower()
    else:
        async with open_simulator(SimulatorConfig(tls=True)) as sim:
            status, _out, err = await halnav_process(
                "crawl", sim.api + "Organizations", "--token", "t", "--retries", "0"
            )
        assert "certificate" in err.lower()
    assert status == 1, err
    assert len(err.strip().splitlines()) == 1
    assert '"complete"' not in err


async def test_output_paths_are_checked_before_the_first_request(tmp_path: Path) -> None:
    app, hits = hal_app()
    runner, port = await start(app)
    try:
        root = f"http://127.0.0.1:{port}/list"
        status, _out, err = await halnav_process(
            "crawl", root, "--out", str(tmp_path / "no" / "such" / "walk.jsonl")
        )
        assert status == 1
        assert "does not exist" in err
        status, _out, err = await halnav_process(
            "crawl",
            root,
            "--out",
            str(tmp_path / "w.jsonl"),
            "--graph",
            str(tmp_path / "x" / "g.mmd"),
        )
        assert status == 1
        assert "--graph" in err
        afile = tmp_path / "afile"
        afile.write_text("x")
        commands = [  # act: before the export runs, not when its answer arrives
            ("act", root, "exporttoPst", "--out", str(tmp_path / "no" / "o.pst")),
            ("crawl", root, "--action", "exporttoPst", "--export-dir", str(afile), "--yes"),
            ("crawl", root, "--out", str(tmp_path / "w.jsonl"), "--state", str(afile / "s")),
        ]
        for command, option, said in zip(
            commands, ("--out", "--export-dir", "--state"),
            ("does not exist", "is a file", "is a file"), strict=True,
        ):  # fmt: skip
            status, _out, err = await halnav_process(*command)
            assert status == 1, err
            assert f"{option} " in err, err
            assert said in err, err
        assert hits == []
    finally:
        await runner.cleanup()


# -- failures, offsite links, stdout --------------------------------------------------


async def test_failures_give_exit_3_and_offsite_links_are_named(tmp_path: Path) -> None:
    """A 404 leaf: finished, not complete, exit 3; the other-origin link is named."""
    app, _hits = hal_app(broken=frozenset({7}))
    runner, port = await start(app)
    try:
        out = tmp_path / "walk.jsonl"
        status, _stdout, err = await halnav_process(
            "crawl", f"http://127.0.0.1:{port}/list", "--out", str(out)
        )
    finally:
        await runner.cleanup()
    assert status == 3, err
    summary = json.loads(err.split("summary ", 1)[1].splitlines()[0])
    assert summary["complete"] is False
    assert summary["finished"] is True
    assert summary["failures"] == 1
    assert summary["offsite_links"] == {"http://127.0.0.1:9": 1}
    assert "1 links to other origins were not followed: http://127.0.0.1:9 (1)" in err
    assert "--rebase-links" in err
    assert "--any-origin" in err


async def test_out_dash_is_stdout_and_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    app, _hits = hal_app(latency=0.002)
    runner, port = await start(app)
    try:
        root = f"http://127.0.0.1:{port}/list"
        status, stdout, err = await halnav_process("crawl", root, "--out", "-")
        assert status == 0, err
        assert len(stdout.splitlines()) == ALL_DOCS
        assert not (Path.cwd() / "-").exists()
        proc = await asyncio.create_subprocess_shell(
            f"{sys.executable} -m halnav crawl {root} | head -n 1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        head, head_err = await asyncio.wait_for(proc.communicate(), 30)
        assert len(head.splitlines()) == 1
        assert b"Broken pipe" not in head_err
        assert b"Errno" not in head_err
    finally:
        await runner.cleanup()


# -- an outage mid-walk ---------------------------------------------------------------


async def test_an_outage_stops_the_walk_and_the_same_command_resumes_it(tmp_path: Path) -> None:
    """The server goes away mid-walk: exit 4 with the frontier kept; it comes back on the
    same port; the same command finishes the walk; every document exactly once."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    port = free_port()
    app, hits = hal_app(latency=0.01)
    runner, _ = await start(app, port)
    args = (
        "crawl",
        f"http://127.0.0.1:{port}/list",
        "--out",
        str(out),
        "--state",
        str(state),
        "--concurrency",
        "4",
        "--retries",
        "0",
        "--graph",
        str(tmp_path / "graph.json"),
    )
    child = asyncio.create_task(halnav_process(*args))
    try:
        for _ in range(2000):
            if len(hits) >= 40:
                break
            await asyncio.sleep(0.005)
        assert len(hits) >= 40
    finally:
        await runner.cleanup()  # the server goes away mid-walk
    status, _stdout, err = await asyncio.wait_for(child, 60)
    assert status == 4, err
    assert "walk stopped early: the server stopped answering" in err
    assert "run the same command again to resume it" in err
    first = list(halnav.read_records(out))
    # The outage became pending work, not failures.
    assert all(isinstance(r, halnav.DocumentRecord) for r in first)
    assert len(first) < ALL_DOCS

    app, _hits = hal_app()
    runner, _ = await start(app, port)  # back, on the same port
    try:
        status, _stdout, err = await halnav_process(*args)
    finally:
        await runner.cleanup()
    assert status == 0, err
    urls = Counter(documents(out))
    assert len(urls) == ALL_DOCS
    assert max(urls.values()) == 1
    # The graph of the resumed walk holds both runs' parts, not only the last one.
    graph = json.loads((tmp_path / "graph.json").read_text())
    fetched = {node["url"] for node in graph["nodes"] if node["fetched"]}
    assert fetched == set(urls)


# -- the state directory --------------------------------------------------------------


async def test_a_state_directory_in_use_is_refused_and_changed_options_are_errors(
    tmp_path: Path,
) -> None:
    app, _hits = hal_app(latency=0.02)
    runner, port = await start(app)
    root = f"http://127.0.0.1:{port}/list"
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    try:
        async with Navigator(root) as nav:
            first = asyncio.create_task(Crawler(nav, [root], output=out, state_dir=state).run())
            await asyncio.sleep(0.1)
            with pytest.raises(StateError, match="in use by another walk"):
                await Crawler(nav, [root], output=out, state_dir=state).run()
            await first
            with pytest.raises(ValueError, match="max_depth differ"):
                await Crawler(
                    nav, [root], output=out, state_dir=state, scope=Scope(max_depth=1)
                ).run()
            # max_documents may change between runs: it is a per-run cap.
            await Crawler(
                nav, [root], output=out, state_dir=state, scope=Scope(max_documents=5)
            ).run()
    finally:
        await runner.cleanup()


async def test_a_resume_with_another_action_filter_is_refused(tmp_path: Path) -> None:
    """An action rule's ``where`` is part of the walk (``--action-on``): a resume names it by
    its ``where_key``, and refuses another one, or one where there was none."""
    app, _hits = hal_app()
    runner, port = await start(app)
    root = f"http://127.0.0.1:{port}/list"
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"

    def rules(key: str | None) -> list[halnav.ActionRule]:
        return [halnav.ActionRule(name="search", where=lambda _doc: True, where_key=key)]

    try:
        async with Navigator(root) as nav:
            await Crawler(nav, [root], output=out, state_dir=state, actions=rules("kinds=a")).run()
            for other in ("kinds=b", None):
                with pytest.raises(ValueError, match="actions differ"):
                    await Crawler(
                        nav, [root], output=out, state_dir=state, actions=rules(other)
                    ).run()
            with pytest.raises(ValueError, match="actions differ"):
                await Crawler(nav, [root], output=out, state_dir=state, actions=[
                    halnav.ActionRule(name="search")
                ]).run()  # fmt: skip
            again = await Crawler(
                nav, [root], output=out, state_dir=state, actions=rules("kinds=a")
            ).run()
    finally:
        await runner.cleanup()
    assert again.resumed


def test_a_state_an_earlier_version_wrote_is_compared_without_the_action_filter() -> None:
    """States written before rules stored their ``where`` resume with any filter; a state
    that stored one (even none: None) is compared with it."""
    rule = {"name": "search", "json": None, "where": "kinds=mailbox"}
    old = {"actions": [{"name": "search", "json": None}]}
    assert _crawl._as_stored({"actions": [rule]}, old) == old
    new = {"actions": [{"name": "search", "json": None, "where": None}]}
    assert _crawl._as_stored({"actions": [rule]}, new) == {"actions": [rule]}
    assert _crawl._as_stored({"depth": 1}, old) == {"depth": 1}


# -- scope -----------------------------------------------------------------------------


async def test_allowing_a_rel_keeps_its_collection_whole() -> None:
    """--allow-rel mailboxes from the organization: every mailboxes page and every mailbox."""
    config = SimulatorConfig(organizations=1, mailboxes=45, folders=1, items=1)
    async with served(config) as s:
        status, stdout, err = await halnav_process(
            "crawl", s.org, *s.login, "--allow-rel", "mailboxes", "--out", "-"
        )
    assert status == 0, err
    written = [json.loads(line) for line in stdout.splitlines()]
    mailboxes = [r for r in written if r.get("rel") == "item"]
    pages = [r for r in written if "/mailboxes?" in str(r["url"])]
    assert len(mailboxes) == 45
    assert len(pages) == 2  # 30 + 15
    assert not [r for r in written if "/folders" in str(r["url"])]


# -- records ---------------------------------------------------------------------------


async def test_records_are_strict_json_whatever_the_server_sends(tmp_path: Path) -> None:
    """A lone surrogate, NaN, Infinity and U+2028 from the server: the walk goes on, and
    every line is strict JSON (JSON.parse in a browser would accept it)."""
    body = '{"text": "bad \\ud800 end", "nan": NaN, "inf": -Infinity, "sep": "a\u2028b"}'

    async def weird(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", weird)
    runner, port = await start(app)
    out = tmp_path / "walk.jsonl"
    try:
        async with Navigator(f"http://127.0.0.1:{port}/") as nav:
            summary = await halnav.crawl(nav, ["/"], output=out)
    finally:
        await runner.cleanup()
    assert summary.documents == 1
    raw = out.read_bytes()
    raw.decode("utf-8")  # valid UTF-8
    assert b"\xe2\x80\xa8" not in raw  # U+2028 escaped
    text = raw.decode()

    def no_constants(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    (record,) = [json.loads(line, parse_constant=no_constants) for line in text.splitlines()]
    assert record["state"]["text"] == "bad \ud800 end"
    assert record["state"]["nan"] is None
    assert record["state"]["inf"] is None
    assert record["state"]["sep"] == "a\u2028b"


def test_exit_codes_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |", "| 130 |", "| 141 |", "| 143 |"):
        assert code in readme, code


async def test_compressed_output_is_gzip_and_reads_back(tmp_path: Path) -> None:
    app, _hits = hal_app()
    runner, port = await start(app)
    out = tmp_path / "walk.jsonl.gz"
    try:
        status, _stdout, err = await halnav_process(
            "crawl", f"http://127.0.0.1:{port}/list", "--out", str(out)
        )
    finally:
        await runner.cleanup()
    assert status == 0, err
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert len([r for r in halnav.read_records(out) if isinstance(r, halnav.DocumentRecord)]) == (
        ALL_DOCS
    )


async def test_an_action_that_ran_nowhere_is_named() -> None:
    """--action NAME that no document offers: the walk says so instead of nothing."""
    app, _hits = hal_app()
    runner, port = await start(app)
    try:
        status, _stdout, err = await halnav_process(
            "crawl",
            f"http://127.0.0.1:{port}/list",
            "--action",
            "frobnicate",
            "--yes",
            "--out",
            "-",
        )
    finally:
        await runner.cleanup()
    assert status == 0, err
    assert "action 'frobnicate' ran on no document" in err
    summary = json.loads(err.split("summary ", 1)[1].splitlines()[0])
    assert summary["actions"] == 0


async def test_a_transient_failure_retried_on_resume_is_no_failure_any_more(
    tmp_path: Path,
) -> None:
    """A fetch that fails with 500 until the end of the walk is a failure (by type, too);
    once the server answers it, the resumed walk is complete and counts no failure."""
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    healthy = False

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/":
            links = {"self": {"href": "/"}, "item": [{"href": f"/doc/{i}"} for i in range(5)]}
            return web.json_response({"_links": links})
        if request.path == "/doc/3" and not healthy:
            return web.json_response({"message": "busy"}, status=500)
        return web.json_response({"_links": {"self": {"href": request.path}}})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner, port = await start(app)
    limits = halnav.Limits(retries=0)
    try:
        async with Navigator(f"http://127.0.0.1:{port}/", limits=limits) as nav:
            first = await Crawler(nav, ["/"], output=out, state_dir=state).run()
        healthy = True
        async with Navigator(f"http://127.0.0.1:{port}/", limits=limits) as nav:
            again = await Crawler(nav, ["/"], output=out, state_dir=state).run()
    finally:
        await runner.cleanup()
    assert (first.documents, first.failures) == (5, 1), first
    assert dict(first.failures_by_type) == {"HTTPStatusError": 1}
    assert not first.complete
    assert again.resumed
    assert (again.documents, again.failures, dict(again.failures_by_type)) == (6, 0, {})
    assert again.complete
    assert sorted(documents(out)) == sorted(
        [f"http://127.0.0.1:{port}/"] + [f"http://127.0.0.1:{port}/doc/{i}" for i in range(5)]
    )


# -- the outage decisions, on their own --------------------------------------------------------


def _fetch(n: int) -> _crawl._Fetch:
    return _crawl._Fetch(f"https://h/{n}", 1, "https://h/", "item")


def test_outage_decisions_hold_back_record_and_stop() -> None:
    """Pure decisions: a 404 is recorded now; a 500 is held back and recorded only after
    its last attempt; outage-like failures in a row stop the walk and stay pending."""
    down = ConnectError("GET", "https://h/", "refused")
    outage = _crawl._Outage(3)
    assert outage.failed(_fetch(0), HTTPStatusError("GET", "https://h/0", 404, "gone"))
    busy = HTTPStatusError("GET", "https://h/1", 500, "busy")
    assert not outage.failed(_fetch(1), busy)
    assert not outage.failed(_fetch(2), down)
    outage.succeeded()  # a success between: no run of three
    assert not outage.failed(_fetch(3), down)
    assert not outage.failed(_fetch(4), down)
    assert outage.stopped is None
    retry = outage.last_round()
    assert [w.url for w in retry] == [f"https://h/{n}" for n in (1, 2, 3, 4)]
    assert not outage.failed(retry[0], busy)  # the last attempt fails again
    assert outage.settle(len(retry)) == [(retry[0], busy)]  # three got through: recorded
    assert outage.stopped is None

    gone = _crawl._Outage(3)
    for n in range(3):
        assert not gone.failed(_fetch(n), down)
    assert gone.stopped is not None
    assert "3 requests in a row failed" in gone.stopped
    assert not gone.failed(_fetch(9), down)  # after the stop: pending too
    assert len(gone.deferred) == 4

    end = _crawl._Outage(None)
    assert not end.failed(_fetch(0), down)
    assert not end.failed(_fetch(1), down)
    retry = end.last_round()
    for work in retry:
        assert not end.failed(work, down)
    assert end.settle(len(retry)) == []  # every last attempt failed: an outage, kept
    assert end.stopped is not None
    assert "the last 2 requests failed" in end.stopped
    assert [w.url for w in end.deferred] == ["https://h/0", "https://h/1"]
