"""Profile the client side of a benchmark row with cProfile (the server runs in its own process).

    python benchmarks/profile_client.py crawl [--mailboxes 40] [--latency 0]
    python benchmarks/profile_client.py baseline [--mailboxes 40]
    python benchmarks/profile_client.py paginate [--items 10000] [--latency 0.02]
    python benchmarks/profile_client.py actions [--actions 500] [--latency 0.05]

Prints the top functions by cumulative and by own time, and the wall/CPU of the
profiled run (profiling inflates CPU; compare shares, not seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

import aiohttp

import halnav
from halnav import Limits, veeam

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline
from _server import simulator
from run import WALK_SHAPE, restore_session


async def _profiled(args: argparse.Namespace, profile: cProfile.Profile) -> None:
    if args.what in ("crawl", "baseline"):
        options = {**WALK_SHAPE, "mailboxes": args.mailboxes, "latency": args.latency}
    elif args.what == "paginate":
        options = {"mailboxes": 1, "folders": 1, "items": args.items, "latency": args.latency}
    else:
        options = {"mailboxes": args.actions, "folders": 1, "items": 1, "latency": args.latency}
    with simulator(**options) as server:
        async with restore_session(server) as session:
            limits = Limits(concurrency=args.concurrency, readahead=args.readahead)
            async with (
                veeam.open_navigator(
                    server.url,
                    username=server.username,
                    password=server.password,
                    limits=limits,
                    graph=args.graph,
                ) as nav,
                aiohttp.ClientSession() as http,
            ):
                await nav.get(session.url)
                token = await baseline.fetch_token(
                    http, server.api, server.username, server.password
                )
                targets: list[halnav.Document] = []
                url = ""
                if args.what == "actions":
                    org = await nav.get(session.seed)
                    targets = [m async for m in nav.paginate(await nav.follow(org, "mailboxes"))]
                elif args.what == "paginate":
                    org = await nav.get(session.seed)
                    mailbox = (await nav.follow(org, "mailboxes")).items[0]
                    folder = (await nav.follow(mailbox, "folders")).items[0]
                    url = folder.link("items").href
                cpu, wall, server_cpu = (
                    time.process_time(),
                    time.perf_counter(),
                    server.cpu_seconds(),
                )
                profile.enable()
                if args.what == "crawl":
                    summary = await halnav.crawl(nav, [session.seed])
                    print(f"documents: {summary.documents}")
                elif args.what == "baseline":
                    result = await baseline.crawl(http, [session.seed], token=token)
                    print(f"documents: {result.documents}")
                elif args.what == "paginate":
                    count = 0
                    async for _ in nav.paginate(url):
                        count += 1
                    print(f"items: {count}")
                else:
                    body = veeam.search("invoice")
                    async with asyncio.TaskGroup() as group:
                        for mailbox in targets:
                            group.create_task(nav.act(mailbox, "search", json=body))
                profile.disable()
                after = server.cpu_seconds()
                print(
                    f"wall {time.perf_counter() - wall:.3f} s, client CPU "
                    f"{time.process_time() - cpu:.3f} s, server CPU "
                    f"{(after or 0) - (server_cpu or 0):.2f} s"
                )


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", choices=["crawl", "baseline", "paginate", "actions"])
    parser.add_argument("--mailboxes", type=int, default=40)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--actions", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--readahead", type=int, default=32)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--graph", action="store_true", help="keep the navigator's link graph")
    args = parser.parse_args()
    profile = cProfile.Profile()
    asyncio.run(_profiled(args, profile))
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
