"""Walks on a real Dask cluster (issue 15): worker processes on loopback, a worker SIGKILLed
mid-walk, and the command line; every document exactly once, as in an uninterrupted walk."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_cli import clean_env, halnav_process
from test_cli_signals import session_states

import halnav
from halnav import veeam
from halnav._records import encode_line
from halnav.simulator import Faults, Simulator, SimulatorConfig, open_simulator

distributed = pytest.importorskip(
    "distributed", reason="the cluster tests need Dask: pip install 'halnav[dask]'"
)
from halnav import cluster  # noqa: E402  needs distributed

CONFIG = SimulatorConfig(organizations=3, mailboxes=3, folders=2, items=6, onedrives=0)


@contextlib.asynccontextmanager
async def sessions(sim: Simulator) -> AsyncIterator[list[str]]:
    """A working Exchange session per organization: its Organization URLs (the roots)."""
    async with (
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        contextlib.AsyncExitStack() as stack,
    ):
        opened = [
            await stack.enter_async_context(veeam.explore(nav, org)) for org in sim.organization_ids
        ]
        yield [f"{session.url}/Organization" for session in opened]


def expected(sim: Simulator, roots: list[str]) -> set[str]:
    found: set[str] = set()
    for root in roots:
        found |= sim.expected_documents(root.split("/")[-2])
    return found


def documents(path: Path) -> Counter[str]:
    return Counter(
        record.url
        for record in halnav.read_records(path)
        if isinstance(record, halnav.DocumentRecord)
    )


async def a_shard_being_written(shards: Path, begun: str = "records.jsonl") -> str:
    """Wait until a shard in ``shards`` is walking (its file or directory ``begun`` is
    there) and not committed: its key. Fails (rather than hangs) after 60 s."""

    async def writing() -> str:
        while True:
            for path in shards.glob(f"*/{begun}"):
                key = path.relative_to(shards).parts[0]
                if not (shards / key / "done.json").exists():
                    return key
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(writing(), 60)


@contextlib.asynccontextmanager
async def dask_processes(folder: Path, workers: int = 2) -> AsyncIterator[tuple[Any, Path]]:
    """A real ``dask scheduler`` and ``workers`` ``dask worker`` processes (no nanny: a
    killed worker stays dead) on loopback: a client of it, and the file of their logs."""
    file, log = folder / "scheduler.json", folder / "dask.log"
    dask = (sys.executable, "-m", "dask")
    started: list[asyncio.subprocess.Process] = []
    with log.open("wb") as sink:

        async def start(*args: str) -> None:
            quiet = asyncio.subprocess.DEVNULL
            process = await asyncio.create_subprocess_exec(
                *dask, *args, stdin=quiet, stdout=sink, stderr=sink, env=clean_env()
            )
            started.append(process)

        try:
            await start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--dashboard-address", ":0",
                        "--scheduler-file", str(file))  # fmt: skip

            async def written() -> None:
                while not file.exists():  # noqa: ASYNC110  a file, not a task
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(written(), 60)
            for n in range(workers):
                await start("worker", "--scheduler-file", str(file), "--nthreads", "1",
                            "--no-nanny", "--no-dashboard", "--name", f"w{n}")  # fmt: skip
            address = json.loads(file.read_text())["address"]
            async with distributed.Client(address, asynchronous=True) as client:
                await client.wait_for_workers(workers, timeout=60)
                yield client, log
        finally:
            for process in reversed(started):
                if process.returncode is None:
                    process.terminate()
            for process in started:
                try:
                    await asyncio.wait_for(process.wait(), 5)  # else kill: a test harness
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def kill_the_worker_of(client: Any, key: str) -> list[tuple[str, str, str | None]]:
    """SIGKILL the worker running the shard ``key``; the scheduler's tasks before it."""

    def _shard_tasks(dask_scheduler: Any) -> list[tuple[str, str, str | None]]:
        """On the scheduler (pickled by value: nested): each task's key, the repr of what it
        runs, and the worker running it."""
        return [
            (str(key), repr(task.run_spec), task.processing_on and task.processing_on.address)
            for key, task in dask_scheduler.tasks.items()
        ]

    tasks: list[tuple[str, str, str | None]] = await client.run_on_scheduler(_shard_tasks)
    address = next(where for name, _spec, where in tasks if name == f"halnav-shard-{key}")
    assert address is not None
    pids = await client.run(os.getpid)
    os.kill(pids[address], signal.SIGKILL)
    return tasks


@contextlib.asynccontextmanager
async def local_cluster(workers: int = 2) -> AsyncIterator[Any]:
    async with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            asynchronous=True,
        ) as running,
        distributed.Client(running, asynchronous=True) as client,
    ):  # fmt: skip
        yield client


async def test_a_walk_on_two_worker_processes_writes_every_document_once(tmp_path: Path) -> None:
    out = tmp_path / "merged.jsonl"
    async with open_simulator(CONFIG) as sim, sessions(sim) as roots, local_cluster() as client:
        make = cluster.NavigatorRecipe(
            veeam.open_navigator, sim.url, username=sim.username, password=sim.password
        )
        done = await cluster.crawl_on_cluster(client, make, roots, output=out)
        pids = set((await client.run(os.getpid)).values())
        want = expected(sim, roots)
        grants = sim.stats.token_grants
    assert done.complete
    written = documents(out)
    assert set(written) == want
    assert max(written.values()) == 1
    assert done.documents == len(want)
    assert len(pids) == 2
    assert grants >= 2  # each worker logged in on its own (plus the driver's login)
    assert all(shard.key not in str(shard.root) for shard in done.shards)


async def test_a_worker_killed_mid_walk_loses_and_doubles_nothing(tmp_path: Path) -> None:
    out, state = tmp_path / "merged.jsonl", tmp_path / "state"
    slow = SimulatorConfig(
        organizations=4, mailboxes=3, folders=2, items=8, onedrives=0, faults=Faults(latency=0.02)
    )
    async with open_simulator(slow) as sim, sessions(sim) as roots, local_cluster() as client:
        make = cluster.NavigatorRecipe(
            veeam.open_navigator, sim.url, username=sim.username, password=sim.password
        )
        walking = asyncio.ensure_future(
            cluster.crawl_on_cluster(client, make, roots, output=out, state_dir=state)
        )
        victim = next(iter((await client.run(os.getpid)).values()))
        shards = state / "shards"

        await a_shard_being_written(shards)
        os.kill(victim, signal.SIGKILL)
        done = await asyncio.wait_for(walking, 120)
        survivors = set((await client.run(os.getpid)).values())
        want = expected(sim, roots)
    assert victim not in survivors  # it was killed (and its nanny started another)
    assert done.complete, done.shards
    assert done.duplicates == 0  # the re-run shard replaced the killed run's records
    written = documents(out)
    assert set(written) == want
    assert max(written.values()) == 1
    assert all((shard / "done.json").exists() for shard in shards.iterdir())


async def test_the_command_line_on_a_cluster_and_on_local_workers(tmp_path: Path) -> None:
    async with open_simulator(CONFIG) as sim, sessions(sim) as roots:
        login = ("--username", sim.username, "--password", sim.password, "--quiet")
        async with local_cluster() as client:
            address = client.scheduler.address
            on_cluster = await halnav_process(
                "crawl", *roots, "--scheduler", address, "--out", str(tmp_path / "a.jsonl"),
                "--graph", str(tmp_path / "a.json"), *login,
            )  # fmt: skip
        alone = await halnav_process(
            "crawl", *roots, "--out", str(tmp_path / "c.jsonl"),
            "--graph", str(tmp_path / "c.json"), *login,
        )  # fmt: skip
        assert alone[0] == 0, alone[2]
        state = tmp_path / "state"
        local = ("crawl", *roots, "--workers", "2", "--out", str(tmp_path / "b.jsonl"),
                 "--state", str(state), *login)  # fmt: skip
        first = await halnav_process(*local)
        again = await halnav_process(*local)
        want = expected(sim, roots)
    for (status, _out, err), name in ((on_cluster, "a"), (first, "b"), (again, "b")):
        assert status == 0, err
        written = documents(tmp_path / f"{name}.jsonl")
        assert set(written) == want
        assert max(written.values()) == 1
    summary = json.loads(again[2].splitlines()[-1].removeprefix("summary "))
    assert summary["shards_skipped"] == len(roots)  # committed shards are not walked again
    # --graph on a cluster: drawn from the merged records, as a walk on one machine draws it
    merged, single = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "c"))
    assert {node["url"] for node in merged["nodes"]} == {node["url"] for node in single["nodes"]}
    assert len(merged["edges"]) == len(single["edges"]) > 0
    assert sim.password not in on_cluster[2] + first[2]


async def test_actions_run_on_a_cluster_as_on_one_machine(tmp_path: Path) -> None:
    """``crawl --action search --workers 2``: each shard searches what it walks; the merged
    actions are those of the same walk on one machine, each once."""
    async with open_simulator(CONFIG) as sim, sessions(sim) as roots:
        common = ("--action", "search", "--action-json", '{"query": "subject:invoice"}',
                  "--username", sim.username, "--password", sim.password, "--quiet")  # fmt: skip
        spread = await halnav_process(
            "crawl", *roots, "--workers", "2", "--out", str(tmp_path / "a.jsonl"), *common
        )
        alone = await halnav_process("crawl", *roots, "--out", str(tmp_path / "b.jsonl"), *common)
    assert spread[0] == alone[0] == 0, spread[2] + alone[2]
    assert json.loads(spread[2].splitlines()[-1].removeprefix("summary "))["shards"] == len(roots)

    def searched(path: Path) -> Counter[tuple[str, str, int]]:
        return Counter(
            (record.url, record.action, len(record.items or ()))
            for record in halnav.read_records(path)
            if isinstance(record, halnav.ActionRecord)
        )

    on_cluster = searched(tmp_path / "a.jsonl")
    assert on_cluster == searched(tmp_path / "b.jsonl")
    assert len(on_cluster) >= len(roots)
    assert max(on_cluster.values()) == 1
    assert sum(hits for _url, _name, hits in on_cluster) > 0


async def test_exports_on_a_cluster_go_to_a_folder_per_shard(tmp_path: Path) -> None:
    """Shards export in parallel: each into ``--export-dir/<shard key>/``, so two shards'
    ``Inbox.pst`` never meet; every record's path names its file."""
    pst = tmp_path / "pst"
    async with open_simulator(CONFIG) as sim, sessions(sim) as roots:
        status, _out, err = await halnav_process(
            "crawl", *roots, "--workers", "2", "--out", str(tmp_path / "a.jsonl"),
            "--action", "exporttoPst", "--action-on", "mailbox", "--action-limit", "1",
            "--export-dir", str(pst), "--username", sim.username, "--password", sim.password,
            "--quiet",
        )  # fmt: skip
    assert status == 0, err
    paths = [
        Path(str(record.result["path"]))
        for record in halnav.read_records(tmp_path / "a.jsonl")
        if isinstance(record, halnav.ActionRecord) and record.result is not None
    ]
    assert len(paths) == len(roots)  # one per shard (--action-limit counts per shard)
    assert len({path.parent for path in paths}) == len(roots)
    assert all(path.parent.parent == pst and path.read_bytes()[:4] == b"!BDN" for path in paths)


async def test_one_organization_split_by_mailboxes_spreads_and_keeps_every_record_once(
    tmp_path: Path,
) -> None:
    """--split mailboxes: the head, the mailbox pages and each mailbox are shards; the merge
    has the single-machine walk's documents, each once, in one connected walk."""
    config = SimulatorConfig(
        organizations=1, mailboxes=7, folders=2, items=5, onedrives=0, default_limit=3
    )
    split, single = tmp_path / "split.jsonl", tmp_path / "single.jsonl"
    async with open_simulator(config) as sim, sessions(sim) as roots, local_cluster() as client:
        make = cluster.NavigatorRecipe(
            veeam.open_navigator, sim.url, username=sim.username, password=sim.password
        )
        done = await cluster.crawl_on_cluster(
            client, make, roots, output=split, state_dir=tmp_path / "state", split="mailboxes"
        )
        async with make() as nav:
            await halnav.crawl(nav, roots, output=single)
        want = expected(sim, roots)
    assert done.complete
    assert len(done.shards) == 1 + 1 + config.mailboxes  # head, collection, each mailbox
    written = documents(split)
    assert set(written) == want
    assert max(written.values()) == 1

    def records(path: Path) -> dict[str, halnav.DocumentRecord]:
        return {r.url: r for r in halnav.read_records(path) if isinstance(r, halnav.DocumentRecord)}

    merged, alone = records(split), records(single)
    # Each mailbox is recorded as an item of its page, as the single walk records it (the
    # collection shard comes before the mailbox shards), and every record's parent is a
    # document of the merged walk: one connected walk, not pieces.
    mailboxes = [url for url in alone if re.search(r"/mailboxes/[^/?]+$", url)]
    assert len(mailboxes) == config.mailboxes
    for url in mailboxes:
        assert (merged[url].parent, merged[url].rel) == (alone[url].parent, alone[url].rel)
    assert all(r.parent in merged for r in merged.values() if r.parent is not None)


def _no_secret(text: str, sim: Simulator) -> None:
    assert sim.password not in text
    assert "Bearer " not in text


async def test_real_dask_processes_a_killed_worker_and_an_uninterrupted_walk_agree(
    tmp_path: Path,
) -> None:
    """The issue's "done when": ``crawl ROOTS --scheduler`` on a ``dask scheduler`` and two
    ``dask worker`` processes, one SIGKILLed mid-walk, writes the documents of a walk that
    was never interrupted, each once; no secret reaches the scheduler or its log."""
    out, state, single = tmp_path / "merged.jsonl", tmp_path / "state", tmp_path / "single.jsonl"
    slow = SimulatorConfig(
        organizations=4, mailboxes=3, folders=2, items=8, onedrives=0, faults=Faults(latency=0.02)
    )
    async with (
        open_simulator(slow) as sim,
        sessions(sim) as roots,
        dask_processes(tmp_path) as (client, log),
    ):
        walking = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "halnav", "crawl", *roots, "--scheduler",
            client.scheduler.address, "--out", str(out), "--state", str(state),
            "--username", sim.username, "--password", sim.password, "--quiet",
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=clean_env(),
        )  # fmt: skip
        key = await a_shard_being_written(state / "shards")
        tasks = await kill_the_worker_of(client, key)
        _out, err = await asyncio.wait_for(walking.communicate(), 120)
        async with veeam.open_navigator(
            sim.url, username=sim.username, password=sim.password
        ) as nav:
            await halnav.crawl(nav, roots, output=single)
        survivors = len(await client.run(os.getpid))
    assert walking.returncode == 0, err
    assert survivors == 1
    summary = json.loads(err.decode().splitlines()[-1].removeprefix("summary "))
    assert summary["duplicates"] == 0  # the re-run shard replaced the killed run's records
    written, alone = documents(out), documents(single)
    assert set(written) == set(alone) == expected(sim, roots)
    assert max(written.values()) == 1
    assert all(name.startswith("halnav-shard-") for name, _spec, _where in tasks)
    assert len(tasks) == len(roots)
    _no_secret(" ".join(f"{name} {spec}" for name, spec, _where in tasks), sim)
    _no_secret(log.read_text() + err.decode(), sim)


async def test_veeam_walk_on_real_dask_processes_reuses_a_killed_workers_sessions(
    tmp_path: Path,
) -> None:
    """``veeam-walk --scheduler``: a shard per organization, searching and exporting; a
    worker SIGKILLed mid-walk leaves its restore session working, the re-run shard reuses
    it and stops it: no session is started twice, all end Stopped, nothing doubled."""
    out, state, exports = tmp_path / "walk.jsonl", tmp_path / "state", tmp_path / "pst"
    slow = SimulatorConfig(
        organizations=3, mailboxes=3, folders=2, items=8, onedrives=0, faults=Faults(latency=0.02)
    )
    async with open_simulator(slow) as sim, dask_processes(tmp_path) as (client, log):
        walking = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "halnav", "veeam-walk", sim.url, "--scheduler",
            client.scheduler.address, "--out", str(out), "--state", str(state),
            "--type", "vex", "--search", "a", "--export-dir", str(exports),
            "--export-limit", "0", "--username", sim.username, "--password", sim.password,
            "--quiet", stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )  # fmt: skip
        # Its crawl has begun: its restore session is recorded (a kill between the explore
        # and that record would leave a session no run knows of).
        key = await a_shard_being_written(state / "shards", "state/crawl")
        await kill_the_worker_of(client, key)
        _out, err = await asyncio.wait_for(walking.communicate(), 120)
        states = await session_states(sim)
        started = sim.stats.sessions_started
        per_org = sim.count_documents("vex")
        organizations = sim.organization_ids
    assert walking.returncode == 0, err.decode()
    assert started == slow.organizations  # the dead worker's session was reused
    assert states == ["Stopped"] * slow.organizations
    records = list(halnav.read_records(out))
    docs = Counter(r.url for r in records if isinstance(r, halnav.DocumentRecord))
    assert len(docs) == per_org * slow.organizations
    assert max(docs.values()) == 1
    acted = Counter((r.url, r.action) for r in records if isinstance(r, halnav.ActionRecord))
    assert max(acted.values()) == 1
    assert sum(1 for _url, name in acted if name == "exporttoPst") == 9  # every mailbox once
    for org in organizations:  # each organization's exports in its own folder
        assert sorted(p.suffix for p in (exports / org).iterdir()) == [".pst"] * slow.mailboxes
    summary = json.loads(err.decode().splitlines()[-1].removeprefix("summary "))
    assert summary["sessions_stopped"] == slow.organizations
    assert summary["documents"] == len(docs)
    _no_secret(log.read_text() + err.decode(), sim)


def _counting_app(delay: float) -> tuple[web.Application, Callable[[], int]]:
    """Six roots of four children each; every answer takes ``delay``. Also returns the most
    requests it ever had in flight at once."""
    in_flight = most = 0

    async def answer(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(delay)
        finally:
            in_flight -= 1
        path = request.path
        children = [] if "/c/" in path else [{"href": f"{path}/c/{n}"} for n in range(4)]
        body = {"_links": {"self": {"href": path}, "item": children}}
        return web.json_response(body, content_type="application/hal+json")

    app = web.Application()
    app.router.add_get("/r/{root}", answer)
    app.router.add_get("/r/{root}/c/{child}", answer)
    return app, lambda: most


async def test_per_host_holds_across_the_workers_of_a_cluster(tmp_path: Path) -> None:
    """``per_host=2`` on two workers walking six roots: never more than two requests at the
    server at once (and, without it, more)."""

    async def walk(client: Any, per_host: int | None) -> tuple[cluster.ClusterSummary, int]:
        app, most = _counting_app(0.05)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            base = str(server.make_url(""))
            roots = [f"{base}/r/{n}" for n in range(6)]
            make = functools.partial(halnav.Navigator, base)
            output = tmp_path / f"{per_host}.jsonl"
            done = await cluster.crawl_on_cluster(
                client, make, roots, output=output, per_host=per_host
            )
        finally:
            await server.close()
        return done, most()

    async with local_cluster() as client:
        free, unbounded = await walk(client, None)
        held, bounded = await walk(client, 2)
    assert free.complete
    assert held.complete
    assert free.documents == held.documents == 6 * 5
    assert unbounded > 2
    assert bounded == 2


async def test_a_failed_shard_is_data_and_its_secrets_stay_out_of_the_logs(
    tmp_path: Path,
) -> None:
    """A shard whose login fails is named in the summary with the error that stopped it (the
    error itself crossed from the worker: it pickles); the worker's log of the failure and
    the recipe's repr show no secret (a partial's repr would)."""
    wrong = "not-the-password-4711"
    async with (
        open_simulator(CONFIG) as sim,
        sessions(sim) as roots,
        dask_processes(tmp_path, workers=1) as (client, log),
    ):
        recipe = cluster.NavigatorRecipe(
            veeam.open_navigator, sim.url, username=sim.username, password=wrong
        )
        done = await cluster.crawl_on_cluster(
            client, recipe, roots[:1], output=tmp_path / "out.jsonl", retries=0
        )
        await asyncio.sleep(0.5)  # the worker's log lines reach the file
    assert not done.complete
    (shard,) = done.shards
    assert shard.error is not None
    assert shard.error.startswith("AuthenticationError: POST "), shard.error
    text = log.read_text()
    assert "Compute Failed" in text  # Dask logged the failed task
    assert "Failed to serialize" not in text
    _no_secret(text + shard.error + repr(recipe), sim)
    assert wrong not in text + shard.error + repr(recipe)
    assert wrong in repr(functools.partial(veeam.open_navigator, password=wrong))


class Trees:
    """Two HAL trees, ``/a`` and ``/b``: ``/T/list?page=N`` (10 item links and ``next``, 6
    pages) and ``/T/doc/K``, whose action ``mark`` POSTs ``/T/mark/K``. While ``failing``,
    ``/b`` answers its GETs 503 after the 15th."""

    PAGES, PER_PAGE = 6, 10

    def __init__(self) -> None:
        self.failing = True
        self.b_hits = 0
        self.marked: Counter[str] = Counter()  # successful POSTs of each document's "mark"
        self.app = web.Application()
        self.app.router.add_get("/{tree}/{tail:.*}", self.handle)
        self.app.router.add_post("/{tree}/mark/{n}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        tree = request.match_info["tree"]
        if tree == "b" and request.method == "GET":  # its actions keep working
            self.b_hits += 1
            if self.failing and self.b_hits > 15:
                return web.json_response({"message": "down"}, status=503)
        if request.method == "POST":
            self.marked[request.path] += 1
            return web.json_response({"marked": True})
        if request.path.endswith("/list"):
            page = int(request.query.get("page", "0"))
            links: dict[str, Any] = {
                "self": {"href": f"/{tree}/list?page={page}"},
                "item": [
                    {"href": f"/{tree}/doc/{page * self.PER_PAGE + i}"}
                    for i in range(self.PER_PAGE)
                ],
            }
            if page + 1 < self.PAGES:
                links["next"] = {"href": f"/{tree}/list?page={page + 1}"}
            return web.json_response({"_links": links})
        n = request.path.rsplit("/", 1)[1]
        mark = {"uri": f"/{tree}/mark/{n}", "method": "POST"}
        return web.json_response(
            {"_links": {"self": {"href": request.path}}, "_actions": {"mark": mark}}
        )


async def test_a_shard_the_server_stopped_answering_is_not_committed_and_walks_again(
    tmp_path: Path,
) -> None:
    """A shard whose walk stops because its server stopped answering exits 4 like a walk on
    one machine, and is not committed: the same command run again skips the shard that
    finished and walks the stopped one, and every document is written once."""
    trees = Trees()
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    async with TestServer(trees.app, host="127.0.0.1") as server:
        roots = [str(server.make_url(f"/{tree}/list")) for tree in ("a", "b")]
        command = ("crawl", *roots, "--workers", "1", "--retries", "0", "--out", str(out),
                   "--state", str(state), "--quiet", "--action", "mark", "--yes")  # fmt: skip
        status, _out, err = await halnav_process(*command)
        assert status == 4, err
        assert f"shard {roots[1]} stopped early: the server stopped answering" in err
        assert "run the same command again to walk it again" in err
        first = json.loads(err.splitlines()[-1].removeprefix("summary "))
        assert (first["shards_stopped"], first["complete"]) == (1, False)
        assert len(list((state / "shards").glob("*/done.json"))) == 1  # only /a's
        trees.failing = False
        status, _out, err = await halnav_process(*command)
    assert status == 0, err
    again = json.loads(err.splitlines()[-1].removeprefix("summary "))
    assert (again["shards_skipped"], again["shards_stopped"], again["complete"]) == (1, 0, True)
    written = documents(out)
    per_tree = Trees.PAGES * (Trees.PER_PAGE + 1)
    assert len(written) == 2 * per_tree
    assert max(written.values()) == 1
    # The rerun resumed the stopped shard's actions: none that succeeded ran again.
    assert trees.marked
    assert max(trees.marked.values()) == 1


def test_the_merge_reads_each_records_identity_from_its_head() -> None:
    """The merge's identity of a record (URL, and action name) and its kind, read from the
    line's head, agree with parsing the whole line, also for escapes, non-ASCII, and a URL
    longer than the head."""
    long = "http://h/" + "x" * 9000
    odd = 'http://h/a"b\\c/é/\u2028/😀'
    lines = [
        encode_line({"url": odd, "status": 200, "depth": 0, "state": {}}),
        encode_line({"url": odd, "action": 'se"arch', "status": 200, "result": {}}),
        encode_line({"url": odd, "depth": 1, "parent": None, "rel": "x", "error": {}}),
        encode_line({"url": long, "status": 200}),
        encode_line({"url": long, "action": "save", "error": {}}),
        b'{"status": 200, "url": "http://h/reordered"}\n',
    ]
    assert [cluster._identity(line) for line in lines] == [
        (odd, "document"),
        (f'{odd}\nse"arch', "action"),
        (odd, "failure"),
        (long, "document"),
        (f"{long}\nsave", "action"),
        ("http://h/reordered", "document"),
    ]
