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
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import halnav_process

import halnav
from halnav import veeam
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


@contextlib.asynccontextmanager
async def local_cluster(workers: int = 2) -> AsyncIterator[Any]:
    async with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            asynchronous=True,
        ) as running,
        distributed.Client(running, asynchronous=True) as client,
    ):  # fmt: skip
        yield client


async def test_a_walk_on_two_worker_processes_writes_every_document_once(tmp_path: Path) -> None:
    out = tmp_path / "merged.jsonl"
    async with open_simulator(CONFIG) as sim, sessions(sim) as roots, local_cluster() as client:
        make = functools.partial(
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
        make = functools.partial(
            veeam.open_navigator, sim.url, username=sim.username, password=sim.password
        )
        walking = asyncio.ensure_future(
            cluster.crawl_on_cluster(client, make, roots, output=out, state_dir=state)
        )
        victim = next(iter((await client.run(os.getpid)).values()))
        shards = state / "shards"

        async def writing() -> None:
            while not list(shards.glob("*/.records.jsonl.*.part")):  # noqa: ASYNC110  files
                await asyncio.sleep(0.05)  # until a shard is being written

        await asyncio.wait_for(writing(), 60)  # a failure, not a hang, if none ever is
        os.kill(victim, signal.SIGKILL)
        done = await asyncio.wait_for(walking, 120)
        survivors = set((await client.run(os.getpid)).values())
        want = expected(sim, roots)
    assert victim not in survivors  # it was killed (and its nanny started another)
    assert done.complete, done.shards
    written = documents(out)
    assert set(written) == want
    assert max(written.values()) == 1
    assert not list(shards.glob("*/.*.part"))  # the killed run's partial records are gone


async def test_the_command_line_on_a_cluster_and_on_local_workers(tmp_path: Path) -> None:
    async with open_simulator(CONFIG) as sim, sessions(sim) as roots:
        login = ("--username", sim.username, "--password", sim.password, "--quiet")
        async with local_cluster() as client:
            address = client.scheduler.address
            on_cluster = await halnav_process(
                "crawl", *roots, "--scheduler", address, "--out", str(tmp_path / "a.jsonl"),
                *login,
            )  # fmt: skip
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
    assert sim.password not in on_cluster[2] + first[2]


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
        make = functools.partial(
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
