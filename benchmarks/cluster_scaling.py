"""How a walk on a Dask cluster scales: the same shards on 1 and on 2 local worker processes.

    python benchmarks/cluster_scaling.py [ROOTS] [LATENCY_MS]

ROOTS = 1 walks one organization of 24 mailboxes split by mailbox (``split="mailboxes"``).

The simulator runs in its own process; ROOTS restore sessions (default 8) are explored and
walked with ``halnav.cluster.crawl_on_cluster`` on a ``LocalCluster`` of one worker, then
of two (one thread each), twice each, alternating; the best wall time of each is reported
with the documents per second and the ratio. With 0 ms latency the walk is CPU-bound, and on
a 2-core machine the simulator competes with the workers for the same two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import tempfile
import time
from pathlib import Path

import distributed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import simulator

from halnav import cluster, veeam


async def _walk(
    server_url: str, user: str, password: str, roots: list[str], workers: int, split: str | None
) -> tuple[float, int]:
    make = functools.partial(veeam.open_navigator, server_url, username=user, password=password)
    async with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            asynchronous=True,
        ) as running,
        distributed.Client(running, asynchronous=True) as client,
    ):  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            done = await cluster.crawl_on_cluster(
                client, make, roots, output=Path(folder) / "merged.jsonl", split=split
            )
            took = time.perf_counter() - started
    assert done.complete, done.shards
    return took, done.documents


async def main(count: int, latency: float) -> None:
    # One root: a single organization of 24 mailboxes, split by mailbox (--split mailboxes).
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
            best: dict[int, float] = {}
            documents = 0
            for workers in (1, 2, 1, 2):
                took, documents = await _walk(
                    server.url, server.username, server.password, roots, workers, split
                )
                best[workers] = min(best.get(workers, took), took)
    one, two = best[1], best[2]
    what = "1 organization split by mailbox" if split else f"{count} roots"
    print(f"{what}, {documents} documents, {latency * 1000:.0f} ms latency")
    print(f"  1 worker:  {one:.2f} s ({documents / one:,.0f} docs/s)")
    print(f"  2 workers: {two:.2f} s ({documents / two:,.0f} docs/s)")
    print(f"  scaling:   {one / two:.2f}x (goal >= 1.6x)")


if __name__ == "__main__":
    roots = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    latency = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    asyncio.run(main(roots, latency))
