"""How a walk on a Dask cluster scales: the same shards on 1 and on 2 local worker processes.

    python benchmarks/cluster_scaling.py [ROOTS] [LATENCY_MS]

ROOTS = 1 walks one organization of 24 mailboxes split by mailbox (``split="mailboxes"``).

The simulator runs in its own process; ROOTS restore sessions (default 8) are explored and
walked with ``halnav.cluster.crawl_on_cluster`` on a ``LocalCluster`` of one worker, then
of two (one thread each), three times each, alternating; the best wall time of each is reported
with the documents per second and the ratio. With 0 ms latency the walk is CPU-bound, and on
a 2-core machine the simulator competes with the workers for the same two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import distributed
import psutil  # type: ignore[import-untyped]  # installed with distributed, no stubs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import simulator

from halnav import cluster, veeam


@dataclasses.dataclass
class Run:
    """One walk: wall time, documents, and CPU seconds of the server, workers and driver."""

    took: float
    documents: int
    server_cpu: float
    worker_cpu: float
    driver_cpu: float


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def _walk(server: Any, roots: list[str], workers: int, split: str | None) -> Run:
    make = cluster.NavigatorRecipe(
        veeam.open_navigator, server.url, username=server.username, password=server.password
    )
    async with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            asynchronous=True,
        ) as running,
        distributed.Client(running, asynchronous=True) as client,
    ):  # fmt: skip
        pids = list((await client.run(os.getpid)).values())
        for module in ("halnav.cluster", "halnav.veeam"):  # a long-lived cluster's workers
            await client.run(importlib.import_module, module)  # have halnav imported already
        with tempfile.TemporaryDirectory() as folder:
            server_cpu, worker_cpu = _cpu(server.pid), sum(_cpu(pid) for pid in pids)
            driver_cpu, started = time.process_time(), time.perf_counter()
            done = await cluster.crawl_on_cluster(
                client, make, roots, output=Path(folder) / "merged.jsonl", split=split
            )
            took = time.perf_counter() - started
            driver_cpu = time.process_time() - driver_cpu
            server_cpu = _cpu(server.pid) - server_cpu
            worker_cpu = sum(_cpu(pid) for pid in pids) - worker_cpu
    assert done.complete, done.shards
    return Run(took, done.documents, server_cpu, worker_cpu, driver_cpu)


async def measure(count: int, latency: float, rounds: int = 3) -> dict[int, Run]:
    """The best of ``rounds`` walks on 1 and on 2 workers, alternating: ``{workers: Run}``.
    ``count`` = 1: one organization of 24 mailboxes, split by mailbox (``--split
    mailboxes``); else ``count`` restore sessions of 6 mailboxes, one shard each."""
    split = "mailboxes" if count == 1 else None
    mailboxes = 24 if count == 1 else 6
    with simulator(
        organizations=count, mailboxes=mailboxes, folders=3, items=30, onedrives=0,
        latency=latency,
    ) as server:  # fmt: skip
        async with (
            veeam.open_navigator(
                server.url, username=server.username, password=server.password
            ) as nav,
            contextlib.AsyncExitStack() as stack,
        ):
            opened = [
                await stack.enter_async_context(veeam.explore(nav, org))
                for org in server.organization_ids
            ]
            roots = [f"{session.url}/Organization" for session in opened]
            best: dict[int, Run] = {}
            for workers in (1, 2) * rounds:
                run = await _walk(server, roots, workers, split)
                if workers not in best or run.took < best[workers].took:
                    best[workers] = run
    return best


def ceiling(run: Run) -> float:
    """The best scaling two workers can reach on two cores the server shares: with S and W
    the server's and the workers' CPU per document, one worker runs at best at 1/max(S, W)
    and two at 2/(S + W)."""
    answering, walking = run.server_cpu / run.documents, run.worker_cpu / run.documents
    return 2 * max(answering, walking) / (answering + walking)


async def main(count: int, latency: float) -> None:
    best = await measure(count, latency)
    one, two = best[1], best[2]
    what = "1 organization split by mailbox" if count == 1 else f"{count} roots"
    print(f"{what}, {one.documents} documents, {latency * 1000:.0f} ms latency")
    for workers, run in sorted(best.items()):
        per_doc = 1e6 / run.documents
        print(
            f"  {workers} worker{'s' if workers > 1 else ' '}: {run.took:.2f} s "
            f"({run.documents / run.took:,.0f} docs/s); CPU per document: server "
            f"{run.server_cpu * per_doc:.0f} us, workers {run.worker_cpu * per_doc:.0f} us, "
            f"driver {run.driver_cpu * per_doc:.0f} us"
        )
    print(f"  scaling:   {one.took / two.took:.2f}x (goal >= 1.6x; this box's ceiling with the"
          f" server on the same 2 cores: {ceiling(two):.2f}x)")  # fmt: skip


if __name__ == "__main__":
    roots = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    latency = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    asyncio.run(main(roots, latency))
