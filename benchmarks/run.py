"""halnav's benchmarks: every figure is a ratio against a baseline measured in the same run.

    python benchmarks/run.py [--quick] [--json out.json] [--only NAME,...]

Rows (``--only`` takes these names): latency, deep, cpu, walk-memory, peers, parse,
memory, pagination, actions, cluster (needs the ``dask`` extra). See
``benchmarks/README.md`` for what each one measures.
The simulator always runs in its own process (``_server.py``); client CPU is
``time.process_time()`` of this process around each client run; client runs
alternate halnav / baseline and the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs

import halnav
from halnav import Limits, Navigator, veeam

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline  # benchmarks/ is not a package: its modules import as top-level names
import peers
from _output import default_output
from _server import Server, count_documents, simulator

HERE = Path(__file__).resolve().parent
ROW_NAMES = (
    "latency",
    "deep",
    "cpu",
    "walk-memory",
    "peers",
    "parse",
    "memory",
    "pagination",
    "actions",
    "cluster",
    "cache",
)


@attrs.frozen
class Sizes:
    """How big each row is (full run vs ``--quick``)."""

    reps: int
    cpu_reps: int  # the CPU row is the noisiest on a shared box
    walk_mailboxes: int  # latency + peers rows: folders=10, items=10 -> 126 docs per mailbox
    cpu_mailboxes: int
    peer_seconds: float
    peer_documents: int
    parse_mailboxes: int  # 5 pages of 30 items per mailbox
    memory_docs: int
    pagination_items: int
    actions: int
    deep_items: int  # the deep-collections row: items per folder (30 per page)
    walk_memory_mailboxes: int  # the walk-memory row's big walk (126 docs per mailbox)
    cluster_rounds: int  # the cluster row: walks on 1 and on 2 workers, best of each


FULL = Sizes(
    reps=3,
    cpu_reps=5,
    walk_mailboxes=40,  # 5,043 documents
    cpu_mailboxes=160,  # 20,167 documents
    peer_seconds=12.0,
    peer_documents=5_043,
    parse_mailboxes=10,  # 50 pages
    memory_docs=1_000_000,
    pagination_items=10_000,
    actions=500,
    deep_items=1_500,  # 50 pages per folder
    walk_memory_mailboxes=800,  # 100,828 documents (vs 5,043)
    cluster_rounds=5,
)
QUICK = Sizes(
    reps=2,
    cpu_reps=2,
    walk_mailboxes=8,
    cpu_mailboxes=16,
    peer_seconds=2.0,
    peer_documents=1_011,
    parse_mailboxes=2,
    memory_docs=10_000,
    pagination_items=1_500,
    actions=100,
    deep_items=600,
    walk_memory_mailboxes=160,
    cluster_rounds=1,
)
WALK_SHAPE: dict[str, Any] = {"folders": 10, "items": 10, "subfolders": 0, "onedrives": 0}
WALK_LATENCY = 0.02
DEEP_LATENCY = 0.1  # what a real Veeam server answers in, or slower
DEEP_SHAPE: dict[str, Any] = {"mailboxes": 3, "folders": 1, "subfolders": 0, "onedrives": 0}
WALK_CONCURRENCY = 64
PAGINATION_READAHEAD = 32
ACTION_LATENCY = 0.05
ACTION_CONCURRENCY = 50


@attrs.define
class Row:
    """One line of the table (and one object of the JSON)."""

    name: str
    title: str
    figure: float
    baseline: float
    unit: str
    baseline_label: str
    ratio: float
    goal: str  # ">= 0.95" or "<= 1.3"
    met: bool
    details: dict[str, Any] = attrs.Factory(dict)
    notes: list[str] = attrs.Factory(list)


def _met(ratio: float, goal: str) -> bool:
    op, _, value = goal.partition(" ")
    return ratio >= float(value) if op == ">=" else ratio <= float(value)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@attrs.frozen
class Run:
    """One client run: documents reached, wall seconds, client CPU seconds, server CPU seconds."""

    documents: int
    seconds: float
    cpu: float
    server_cpu: float | None
    requests: int = 0


@contextlib.contextmanager
def _clock(server: Server | None) -> Iterator[dict[str, float | None]]:
    """Wall, client-process CPU and server-process CPU of the block."""
    gc.collect()
    out: dict[str, float | None] = {}
    server_before = server.cpu_seconds() if server else None
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - wall_before
    out["cpu"] = time.process_time() - cpu_before
    server_after = server.cpu_seconds() if server else None
    out["server_cpu"] = (
        server_after - server_before
        if server_after is not None and server_before is not None
        else None
    )


def _run(clock: dict[str, float | None], documents: int, requests: int = 0) -> Run:
    seconds, cpu = clock["seconds"], clock["cpu"]
    assert seconds is not None
    assert cpu is not None
    return Run(documents, seconds, cpu, clock["server_cpu"], requests)


# -- setup shared by the walks ----------------------------------------------------------------


@attrs.frozen
class Session:
    """A running restore session: where the walks start."""

    server: Server
    nav: Navigator
    url: str
    seed: str


@contextlib.asynccontextmanager
async def restore_session(server: Server) -> AsyncIterator[Session]:
    """Explore the first organization once (halnav.veeam); stop the session afterwards."""
    async with veeam.open_navigator(
        server.url, username=server.username, password=server.password
    ) as nav:
        org = (await veeam.organizations(nav))[0]
        async with veeam.explore(nav, org) as session:
            yield Session(server, nav, session.url, f"{session.url}/Organization")


def _halnav_navigator(server: Server, limits: Limits, *, graph: bool = True) -> Navigator:
    return veeam.open_navigator(
        server.url, username=server.username, password=server.password, limits=limits, graph=graph
    )


async def halnav_walk(session: Session, *, concurrency: int, graph: bool = False) -> Run:
    """``halnav.crawl`` from the Organization; the token grant is done before the clock starts.

    ``graph=False`` is how ``halnav crawl`` runs without ``--graph`` (the baseline keeps no
    graph either); the CPU row also measures ``graph=True``, the library's default.
    """
    navigator = _halnav_navigator(session.server, Limits(concurrency=concurrency), graph=graph)
    async with navigator as nav:
        await nav.get(session.url)  # setup: token grant + first connection (baseline: same)
        with _clock(session.server) as clock:
            summary = await halnav.crawl(nav, [session.seed])
        requests = nav.statistics().documents - 1
    if summary.failures:
        raise RuntimeError(f"halnav crawl had {summary.failures} failures")
    return _run(clock, summary.documents, requests)


async def baseline_walk(session: Session, *, concurrency: int) -> Run:
    """The hand-written aiohttp BFS crawler (``baseline.py``), same setup outside the clock."""
    server = session.server
    async with aiohttp.ClientSession() as http:
        token = await baseline.fetch_token(http, server.api, server.username, server.password)
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(session.url, headers=headers) as response:  # setup, as for halnav
            await response.read()
        with _clock(server) as clock:
            result = await baseline.crawl(
                http, [session.seed], token=token, concurrency=concurrency
            )
    return _run(clock, result.documents, result.requests)


async def alternate(
    reps: int, first: Callable[[], Awaitable[Run]], second: Callable[[], Awaitable[Run]]
) -> tuple[list[Run], list[Run]]:
    """Run ``first`` and ``second`` ``reps`` times each, alternating (which goes first swaps)."""
    a: list[Run] = []
    b: list[Run] = []
    for rep in range(reps):
        if rep % 2 == 0:
            a.append(await first())
            b.append(await second())
        else:
            b.append(await second())
            a.append(await first())
    return a, b


def _runs_detail(runs: list[Run]) -> list[dict[str, Any]]:
    return [
        {
            "documents": r.documents,
            "requests": r.requests,
            "seconds": round(r.seconds, 4),
            "client_cpu": round(r.cpu, 4),
            "server_cpu": None if r.server_cpu is None else round(r.server_cpu, 3),
        }
        for r in runs
    ]


def _check_counts(hal: list[Run], base: list[Run], expected: int) -> list[str]:
    counts = sorted({r.documents for r in hal} | {r.documents for r in base})
    line = (
        f"documents: halnav {[r.documents for r in hal]}, baseline {[r.documents for r in base]}, "
        f"simulator says {expected}"
    )
    if counts != [expected]:
        raise AssertionError(f"the walks disagree: {line}")
    return [line]


# -- rows ---------------------------------------------------------------------------------------


async def row_walks(sizes: Sizes, only: set[str]) -> list[Row]:
    """Rows 1 (latency-bound walk) and 3 (peers) share one 20 ms simulator."""
    rows: list[Row] = []
    options = {**WALK_SHAPE, "mailboxes": sizes.walk_mailboxes, "latency": WALK_LATENCY}
    with simulator(**options) as server:
        expected = count_documents(server.config)
        async with restore_session(server) as session:
            hal, base = await alternate(
                sizes.reps,
                lambda: halnav_walk(session, concurrency=WALK_CONCURRENCY),
                lambda: baseline_walk(session, concurrency=WALK_CONCURRENCY),
            )
            notes = _check_counts(hal, base, expected)
            hal_rate = _median([r.documents / r.seconds for r in hal])
            base_rate = _median([r.documents / r.seconds for r in base])
            if "latency" in only:
                ratio = hal_rate / base_rate
                rows.append(
                    Row(
                        name="latency",
                        title=f"latency-bound walk ({expected:,} docs, 20 ms, c=64)",
                        figure=hal_rate,
                        baseline=base_rate,
                        unit="docs/s",
                        baseline_label="aiohttp BFS",
                        ratio=ratio,
                        goal=">= 0.95",
                        met=_met(ratio, ">= 0.95"),
                        details={
                            "simulator": options,
                            "halnav_runs": _runs_detail(hal),
                            "baseline_runs": _runs_detail(base),
                        },
                        notes=notes,
                    )
                )
            if "peers" in only:
                rows.extend(await _peer_rows(session, sizes, hal_rate, hal))
    return rows


async def row_deep(sizes: Sizes) -> Row:
    """Deep collections at realistic latency: folders of many pages, 100 ms per request.

    The hand-written loop follows ``next`` one page at a time (a collection's pages are
    sequential); halnav's walk fetches the following pages of a page that shows its
    ``offset``/``limit`` in parallel when it has idle capacity.
    """
    options = {**DEEP_SHAPE, "items": sizes.deep_items, "latency": DEEP_LATENCY}
    with simulator(**options) as server:
        expected = count_documents(server.config)
        async with restore_session(server) as session:
            hal, base = await alternate(
                sizes.reps,
                lambda: halnav_walk(session, concurrency=WALK_CONCURRENCY),
                lambda: baseline_walk(session, concurrency=WALK_CONCURRENCY),
            )
    notes = _check_counts(hal, base, expected)
    hal_s = _median([r.seconds for r in hal])
    base_s = _median([r.seconds for r in base])
    notes.append(
        f"requests: halnav {[r.requests for r in hal]}, baseline {[r.requests for r in base]} "
        "(halnav's extra requests are pages read ahead past a collection's end)"
    )
    ratio = base_s / hal_s
    pages = -(-sizes.deep_items // 30)
    return Row(
        name="deep",
        title=f"deep collections ({expected:,} docs, {pages} pages/folder, 100 ms, c=64)",
        figure=hal_s,
        baseline=base_s,
        unit="s",
        baseline_label="aiohttp BFS, next one by one",
        ratio=ratio,
        goal=">= 4",
        met=_met(ratio, ">= 4"),
        details={
            "simulator": options,
            "halnav_runs": _runs_detail(hal),
            "baseline_runs": _runs_detail(base),
        },
        notes=notes,
    )


async def _peer_rows(session: Session, sizes: Sizes, hal_rate: float, hal: list[Run]) -> list[Row]:
    server = session.server
    token = await asyncio.to_thread(peers.fetch_token, server.api, server.username, server.password)
    results: dict[str, list[peers.PeerResult]] = {"restnavigator": [], "halchemy": []}
    peer_reps = 1 if sizes.reps < 3 else 2
    for _ in range(peer_reps):
        results["restnavigator"].append(
            await asyncio.to_thread(
                peers.restnavigator_walk,
                session.seed,
                token=token,
                max_documents=sizes.peer_documents,
                max_seconds=sizes.peer_seconds,
            )
        )
        results["halchemy"].append(
            await asyncio.to_thread(
                peers.halchemy_walk,
                server.api,
                session.seed,
                token=token,
                max_documents=sizes.peer_documents,
                max_seconds=sizes.peer_seconds,
            )
        )
    rows = []
    for library, runs in results.items():
        rate = _median([r.rate for r in runs])
        ratio = hal_rate / rate
        rows.append(
            Row(
                name=f"peers:{library}",
                title=f"peers: {library} (same walk, sequential)",
                figure=hal_rate,
                baseline=rate,
                unit="docs/s",
                baseline_label=library,
                ratio=ratio,
                goal=">= 40",
                met=_met(ratio, ">= 40"),
                details={
                    "runs": [attrs.asdict(r) for r in runs],
                    "cap": {"documents": sizes.peer_documents, "seconds": sizes.peer_seconds},
                    "halnav_runs": _runs_detail(hal),
                },
                notes=[
                    runs[0].note,
                    f"{library} reached {[r.documents for r in runs]} documents with "
                    f"{[r.requests for r in runs]} GETs in {[round(r.seconds, 1) for r in runs]} s "
                    f"(complete: {[r.complete for r in runs]}); halnav figure from the latency row",
                ],
            )
        )
    return rows


async def row_cpu(sizes: Sizes) -> Row:
    """Row 2: client CPU seconds per document, no latency, ~20,000 documents."""
    options = {**WALK_SHAPE, "mailboxes": sizes.cpu_mailboxes}
    with simulator(**options) as server:
        expected = count_documents(server.config)
        async with restore_session(server) as session:
            hal, base = await alternate(
                sizes.cpu_reps,
                lambda: halnav_walk(session, concurrency=WALK_CONCURRENCY),
                lambda: baseline_walk(session, concurrency=WALK_CONCURRENCY),
            )
            with_graph, base_again = await alternate(
                sizes.cpu_reps,
                lambda: halnav_walk(session, concurrency=WALK_CONCURRENCY, graph=True),
                lambda: baseline_walk(session, concurrency=WALK_CONCURRENCY),
            )
    notes = _check_counts(hal, base, expected)
    hal_us = _median([r.cpu / r.documents * 1e6 for r in hal])
    base_us = _median([r.cpu / r.documents * 1e6 for r in base])
    ratio = hal_us / base_us
    graph_us = _median([r.cpu / r.documents * 1e6 for r in with_graph])
    base_again_us = _median([r.cpu / r.documents * 1e6 for r in base_again])
    notes.append(
        "halnav runs as `halnav crawl` without --graph (graph=False); with the link graph "
        f"on (the library default, or --graph): {graph_us:.1f} vs {base_again_us:.1f} us/doc "
        f"= {graph_us / base_again_us:.2f}x"
    )
    return Row(
        name="cpu",
        title=f"client CPU per document ({expected:,} docs, 0 ms)",
        figure=hal_us,
        baseline=base_us,
        unit="us/doc",
        baseline_label="aiohttp BFS",
        ratio=ratio,
        goal="<= 1.3",
        met=_met(ratio, "<= 1.3"),
        details={
            "simulator": options,
            "halnav_runs": _runs_detail(hal),
            "baseline_runs": _runs_detail(base),
            "halnav_graph_runs": _runs_detail(with_graph),
            "baseline_runs_again": _runs_detail(base_again),
        },
        notes=notes,
    )


async def _fetch_corpus(sizes: Sizes) -> tuple[list[tuple[bytes, str]], list[tuple[bytes, str]]]:
    """Real simulator pages (30 items each) and single documents, fetched once as bytes."""
    options = {"folders": 5, "items": 30, "mailboxes": sizes.parse_mailboxes, "onedrives": 0}
    pages: list[tuple[bytes, str]] = []
    singles: list[tuple[bytes, str]] = []
    with simulator(**options) as server:
        async with restore_session(server) as session, aiohttp.ClientSession() as http:
            token = await baseline.fetch_token(http, server.api, server.username, server.password)
            headers = {"Authorization": f"Bearer {token}"}

            async def get(url: str) -> bytes:
                async with http.get(url, headers=headers) as response:
                    response.raise_for_status()
                    return await response.read()

            seed = await get(session.seed)
            singles.append((seed, session.seed))
            mailboxes_url = json.loads(seed)["_links"]["mailboxes"]["href"]
            mailboxes = json.loads(await get(mailboxes_url))["results"]
            for mailbox in mailboxes:
                self_url = mailbox["_links"]["self"]["href"]
                singles.append((await get(self_url), self_url))
                url: str | None = mailbox["_links"]["items"]["href"]
                first = True
                while url is not None:  # the mailbox's items: 5 full pages of 30
                    body = await get(url)
                    pages.append((body, url))
                    page = json.loads(body)
                    if first:
                        for item in page["results"][:3]:
                            item_url = item["_links"]["self"]["href"]
                            singles.append((await get(item_url), item_url))
                            folder_url = item["_links"]["folder"]["href"]
                            singles.append((await get(folder_url), folder_url))
                        first = False
                    url = page["_links"].get("next", {}).get("href")
    return pages, singles


def _time_parse(corpus: list[tuple[bytes, str]], reps: int) -> tuple[float, float]:
    """Best seconds per pass over ``corpus``: (halnav.parse, json.loads), alternating."""
    parse, loads = halnav.parse, json.loads

    def hal() -> None:
        for body, url in corpus:
            parse(body, url)

    def plain() -> None:
        for body, _ in corpus:
            loads(body)

    hal_timer, json_timer = timeit.Timer(hal), timeit.Timer(plain)
    number = max(1, int(0.2 / max(hal_timer.timeit(1), 1e-6)))  # ~0.2 s per halnav sample
    hal_best = json_best = float("inf")
    for _ in range(reps):
        hal_best = min(hal_best, hal_timer.timeit(number) / number)
        json_best = min(json_best, json_timer.timeit(number) / number)
    return hal_best, json_best


async def row_parse(sizes: Sizes) -> Row:
    """Row 4: ``halnav.parse(bytes, url)`` vs ``json.loads(bytes)`` on real simulator bodies."""
    pages, singles = await _fetch_corpus(sizes)
    reps = 7 if sizes.reps >= 3 else 3
    page_hal, page_json = _time_parse(pages, reps)
    single_hal, single_json = _time_parse(singles, reps)
    page_bytes = sum(len(b) for b, _ in pages)
    single_bytes = sum(len(b) for b, _ in singles)
    hal_total, json_total = page_hal + single_hal, page_json + single_json
    total_bytes = page_bytes + single_bytes
    ratio = hal_total / json_total
    return Row(
        name="parse",
        title=f"parse cost ({len(pages)} pages x 30 items + {len(singles)} docs)",
        figure=hal_total / total_bytes * 1e9,
        baseline=json_total / total_bytes * 1e9,
        unit="ns/byte",
        baseline_label="json.loads",
        ratio=ratio,
        goal="<= 3",
        met=_met(ratio, "<= 3"),
        details={
            "pages": len(pages),
            "page_bytes_avg": page_bytes / len(pages),
            "page_us": {
                "halnav": page_hal / len(pages) * 1e6,
                "json": page_json / len(pages) * 1e6,
            },
            "page_ratio": page_hal / page_json,
            "singles": len(singles),
            "single_bytes_avg": single_bytes / len(singles),
            "single_us": {
                "halnav": single_hal / len(singles) * 1e6,
                "json": single_json / len(singles) * 1e6,
            },
            "single_ratio": single_hal / single_json,
        },
        notes=[
            f"per page: halnav {page_hal / len(pages) * 1e6:.0f} us, json.loads "
            f"{page_json / len(pages) * 1e6:.0f} us ({page_hal / page_json:.2f}x); per single "
            f"document: {single_hal / len(singles) * 1e6:.0f} us vs "
            f"{single_json / len(singles) * 1e6:.0f} us ({single_hal / single_json:.2f}x)"
        ],
    )


def row_memory(sizes: Sizes) -> Row:
    """Row 5: ``graph_memory.measure(n)`` (bytes per document of the Graph vs a naive dict)."""
    import graph_memory

    started = time.perf_counter()
    result = graph_memory.measure(sizes.memory_docs)
    wall = time.perf_counter() - started
    ratio = result["ratio"]
    return Row(
        name="memory",
        title=f"graph memory ({sizes.memory_docs:,} docs)",
        figure=result["graph_bytes_per_doc"],
        baseline=result["baseline_bytes_per_doc"],
        unit="bytes/doc",
        baseline_label="dict[url, list]",
        ratio=ratio,
        goal="<= 0.5",
        met=_met(ratio, "<= 0.5"),
        details={**result, "wall_seconds": wall},
        notes=[
            f"graph_memory.measure({sizes.memory_docs:,}) took {wall:.0f} s"
            + (
                ""
                if sizes.memory_docs >= 1_000_000
                else f"; 1,000,000 would take about {wall * 1e6 / sizes.memory_docs:.0f} s "
                "(--memory-docs 1000000)"
            )
        ],
    )


WALK_MEMORY_SMALL = 40  # mailboxes: 5,043 documents
WALK_MEMORY_GOAL = 100.0  # bytes per document (issue 11)


async def _peak_kib(*args: str) -> int:
    """Peak RSS (KiB) of ``benchmarks/peak_rss.py ARGS`` in a fresh process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "peak_rss.py"),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    text = err.decode(errors="replace")
    peak = [line for line in text.splitlines() if line.startswith("PEAK ")]
    if proc.returncode not in (0, None) or not peak:
        raise RuntimeError(f"peak_rss.py {args[0]} failed ({proc.returncode}): {text[-500:]}")
    return int(peak[-1].split()[1])


async def _walk_peaks(mailboxes: int) -> tuple[int, int, int]:
    """``(documents, halnav peak KiB, baseline peak KiB)`` of one walk of each."""
    options = {**WALK_SHAPE, "mailboxes": mailboxes}
    with simulator(**options) as server:
        documents = count_documents(server.config)
        async with restore_session(server) as session:
            credentials = ("--username", server.username, "--password", server.password)
            hal = await _peak_kib(
                "halnav", "crawl", session.seed, *credentials, "--out", "/dev/null", "--quiet"
            )
            base = await _peak_kib(
                "baseline", server.api, server.username, server.password, session.seed
            )
    return documents, hal, base


async def row_walk_memory(sizes: Sizes) -> Row:
    """Memory a walk adds per document: peak RSS of ``halnav crawl`` (the CLI, records to
    /dev/null) over a big walk minus a small one, against the hand-written loop's."""
    small = await _walk_peaks(WALK_MEMORY_SMALL)
    big = await _walk_peaks(sizes.walk_memory_mailboxes)
    docs = big[0] - small[0]
    hal = (big[1] - small[1]) * 1024 / docs
    base = (big[2] - small[2]) * 1024 / docs
    goal = f"<= {WALK_MEMORY_GOAL:.0f} B"
    return Row(
        name="walk-memory",
        title=f"walk memory growth ({small[0]:,} -> {big[0]:,} docs)",
        figure=hal,
        baseline=base,
        unit="bytes/doc",
        baseline_label="aiohttp BFS, set of URLs",
        ratio=hal / base if base > 0 else float("nan"),
        goal=goal,
        met=hal <= WALK_MEMORY_GOAL,
        details={
            "small": {"documents": small[0], "halnav_kib": small[1], "baseline_kib": small[2]},
            "big": {"documents": big[0], "halnav_kib": big[1], "baseline_kib": big[2]},
        },
        notes=[
            "the goal is absolute (bytes per document); the ratio is against the hand-written "
            "loop, whose set of URL strings grows with every document",
            "benchmarks/crawl_memory.py 4000 measures the issue's 500,000-document walk",
        ],
    )


async def _items_url(session: Session) -> str:
    nav = session.nav
    org = await nav.get(session.seed)
    mailbox = (await nav.follow(org, "mailboxes")).items[0]
    folder = (await nav.follow(mailbox, "folders")).items[0]
    return folder.link("items").href


async def row_pagination(sizes: Sizes) -> Row:
    """Row 6: one folder of N items, 20 ms: ``nav.paginate`` vs following ``next`` serially."""
    n = sizes.pagination_items
    options = {
        "mailboxes": 1,
        "folders": 1,
        "items": n,
        "onedrives": 0,
        "latency": WALK_LATENCY,
    }
    with simulator(**options) as server:
        async with restore_session(server) as session:
            url = await _items_url(session)

            async def pages_with(readahead: int) -> Run:
                async with _halnav_navigator(server, Limits(readahead=readahead)) as nav:
                    await nav.get(session.url)
                    with _clock(server) as clock:
                        count = 0
                        async for _item in nav.paginate(url):
                            count += 1
                    return _run(clock, count, nav.statistics().documents - 1)

            async def serial() -> Run:
                async with aiohttp.ClientSession() as http:
                    token = await baseline.fetch_token(
                        http, server.api, server.username, server.password
                    )
                    with _clock(server) as clock:
                        count = await baseline.walk_pages(http, url, token=token)
                    return _run(clock, count, -(-n // 30))

            hal, base = await alternate(
                sizes.reps, lambda: pages_with(PAGINATION_READAHEAD), serial
            )
            default = [await pages_with(Limits().readahead) for _ in range(max(1, sizes.reps - 1))]
    counts = {r.documents for r in [*hal, *base, *default]}
    if counts != {n}:
        raise AssertionError(f"pagination item counts differ from {n}: {sorted(counts)}")
    hal_s, base_s, default_s = (_median([r.seconds for r in runs]) for runs in (hal, base, default))
    ratio = base_s / hal_s
    server_per_page = _median(
        [r.server_cpu / -(-n // 30) for r in base if r.server_cpu is not None]
    )
    return Row(
        name="pagination",
        title=f"deep pagination ({n:,} items, 20 ms, readahead={PAGINATION_READAHEAD})",
        figure=hal_s,
        baseline=base_s,
        unit="s",
        baseline_label="serial next",
        ratio=ratio,
        goal=">= 10",
        met=_met(ratio, ">= 10"),
        details={
            "simulator": options,
            "halnav_runs": _runs_detail(hal),
            "baseline_runs": _runs_detail(base),
            "default_readahead": Limits().readahead,
            "default_readahead_runs": _runs_detail(default),
            "default_readahead_speedup": base_s / default_s,
            "server_cpu_per_page_s": server_per_page,
        },
        notes=[
            f"all runs got {n:,} items; speedup is baseline seconds / halnav seconds",
            f"with the default Limits(readahead={Limits().readahead}): {default_s:.2f} s, "
            f"{base_s / default_s:.1f}x",
            f"server CPU per page of 30 items: {server_per_page * 1e3:.2f} ms "
            f"(floor for any client: {server_per_page * -(-n // 30):.2f} s of server CPU)",
        ],
    )


async def row_actions(sizes: Sizes) -> Row:
    """Row 7: N ``search`` actions, 50 ms latency, concurrency 50, vs the ideal N/50 x 50 ms."""
    n = sizes.actions
    options = {
        "mailboxes": n,
        "folders": 1,
        "items": 1,
        "onedrives": 0,
        "latency": ACTION_LATENCY,
    }
    ideal = n / ACTION_CONCURRENCY * ACTION_LATENCY
    with simulator(**options) as server:
        async with restore_session(server) as session:
            org = await session.nav.get(session.seed)
            mailboxes = [
                m async for m in session.nav.paginate(await session.nav.follow(org, "mailboxes"))
            ]
            assert len(mailboxes) == n
            body = veeam.search("invoice")
            limits = Limits(concurrency=ACTION_CONCURRENCY, per_host=ACTION_CONCURRENCY)
            runs: list[Run] = []
            raw: list[Run] = []
            async with _halnav_navigator(server, limits) as nav:

                async def batch(targets: list[halnav.Document]) -> Run:
                    with _clock(server) as clock:
                        async with asyncio.TaskGroup() as group:
                            tasks = [
                                group.create_task(nav.act(m, "search", json=body)) for m in targets
                            ]
                    if not all(isinstance(t.result(), halnav.Document) for t in tasks):
                        raise AssertionError("a search answered something that is not a page")
                    return _run(clock, len(tasks), len(tasks))

                await batch(mailboxes[:ACTION_CONCURRENCY])  # setup: token + 50 connections
                async with aiohttp.ClientSession() as http:
                    token = await baseline.fetch_token(
                        http, server.api, server.username, server.password
                    )
                    for _ in range(sizes.reps):
                        runs.append(await batch(mailboxes))
                        raw.append(await _raw_actions(server, http, token, mailboxes))
    seconds = _median([r.seconds for r in runs])
    raw_seconds = _median([r.seconds for r in raw])
    server_ms = _median(
        [r.server_cpu / r.documents * 1e3 for r in runs if r.server_cpu is not None]
    )
    client_ms = _median([r.cpu / r.documents * 1e3 for r in runs])
    ratio = seconds / ideal
    return Row(
        name="actions",
        title=f"concurrent actions ({n} search, 50 ms, c=50)",
        figure=seconds,
        baseline=ideal,
        unit="s",
        baseline_label="ideal",
        ratio=ratio,
        goal="<= 1.1",
        met=_met(ratio, "<= 1.1"),
        details={
            "simulator": options,
            "halnav_runs": _runs_detail(runs),
            "aiohttp_runs": _runs_detail(raw),
        },
        notes=[
            f"ideal = {n}/{ACTION_CONCURRENCY} x {ACTION_LATENCY * 1e3:.0f} ms; a hand-written "
            f"aiohttp loop (Semaphore(50)) took {raw_seconds:.3f} s ({raw_seconds / ideal:.2f}x) "
            "on the same server",
            "one warm-up batch of 50 (token grant, 50 connections) is not timed",
            f"per action: server CPU {server_ms:.2f} ms, halnav client CPU {client_ms:.2f} ms; "
            f"the server alone needs {server_ms * n / 1e3:.2f} s of one core for {n} actions",
        ],
    )


async def _raw_actions(
    server: Server, http: aiohttp.ClientSession, token: str, mailboxes: list[halnav.Document]
) -> Run:
    """The same POSTs from a plain aiohttp loop: what the server allows any client."""
    semaphore = asyncio.Semaphore(ACTION_CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}
    body = veeam.search("invoice")

    async def one(url: str) -> None:
        async with semaphore, http.post(url, json=body, headers=headers) as response:
            response.raise_for_status()
            json.loads(await response.read())

    urls = [m.action("search").target for m in mailboxes]
    with _clock(server) as clock:
        async with asyncio.TaskGroup() as group:
            for url in urls:
                group.create_task(one(url))
    return _run(clock, len(urls), len(urls))


# -- the command ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "halnav": halnav.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    """The result table, one line per row."""
    header = ("benchmark", "halnav", "baseline", "ratio", "goal", "met?")
    lines = [
        (
            r.title,
            f"{_fmt(r.figure)} {r.unit}",
            f"{_fmt(r.baseline)} {r.unit} ({r.baseline_label})",
            f"{r.ratio:.2f}x",
            r.goal,
            "met" if r.met else "MISSED",
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out.extend(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)
    return "\n".join(out)


CLUSTER_GOAL = 1.6


async def row_cluster(sizes: Sizes) -> list[Row]:
    """A CPU-bound walk of one organization split by mailbox on a local Dask cluster of two
    worker processes, against the same shards on one (``cluster_scaling.py 1 0``)."""
    try:
        import cluster_scaling  # imports distributed (the dask extra)
    except ImportError:
        return []  # no Dask here: no row (the table says which rows ran)
    best = await cluster_scaling.measure(1, 0.0, rounds=sizes.cluster_rounds)
    one, two = best[1], best[2]
    rate_one, rate_two = one.documents / one.took, two.documents / two.took
    ratio = rate_two / rate_one
    return [
        Row(
            name="cluster",
            title=f"cluster: 2 workers vs 1 ({one.documents:,} docs, 1 org split, 0 ms)",
            figure=rate_two,
            baseline=rate_one,
            unit="docs/s",
            baseline_label="1 worker",
            ratio=ratio,
            goal=f">= {CLUSTER_GOAL}",
            met=ratio >= CLUSTER_GOAL,
            details={str(workers): dataclasses.asdict(run) for workers, run in best.items()},
            notes=[
                "the simulator shares the two cores with the workers: with its CPU per "
                "document, two workers can reach at most "
                f"{cluster_scaling.ceiling(two):.2f}x here (benchmarks/cluster_scaling.py)"
            ],
        )
    ]


async def _cached_walk(session: Any, cache: Any) -> tuple[float, int, int]:
    """One crawl of the session's Organization with ``cache``: seconds, bytes, requests."""
    async with veeam.open_navigator(
        session.server.url, username=session.server.username,
        password=session.server.password, cache=cache,
        limits=Limits(concurrency=WALK_CONCURRENCY), graph=False,
    ) as nav:  # fmt: skip
        await nav.get(session.url)  # the token grant, before the clock starts
        started = time.perf_counter()
        await halnav.crawl(nav, [session.seed])
        seconds = time.perf_counter() - started
        wire = nav.statistics().transport
    return seconds, wire.bytes_received, wire.requests


async def row_cache(sizes: Sizes) -> Row:
    """A second walk of an unchanged tree with an HTTP cache on disk (issue 18).

    The simulator sends ETags (``--validators``, not Veeam behaviour). The first walk fills
    a ``SqliteCache``; the second, with a new navigator over the same file (what a walk run
    again tomorrow does), revalidates every document: 304s, no bodies. The figure is the
    bytes the second walk received against the first's; with ``max-age`` (answers still
    fresh) the second walk sends no request at all.
    """
    import tempfile

    options = {**WALK_SHAPE, "mailboxes": sizes.walk_mailboxes, "latency": WALK_LATENCY,
               "validators": True}  # fmt: skip
    runs: dict[str, list[tuple[float, int, int]]] = {}
    for label, max_age in (("revalidated", None), ("fresh", 300)):
        with simulator(**options, max_age=max_age) as server:
            async with restore_session(server) as session:
                with tempfile.TemporaryDirectory() as folder:
                    cache = halnav.SqliteCache(Path(folder) / "cache.sqlite3")
                    try:
                        runs[label] = [await _cached_walk(session, cache) for _ in range(2)]
                    finally:
                        cache.close()
    (first_s, first_b, first_r), (second_s, second_b, second_r) = runs["revalidated"]
    (_, _, _), (fresh_s, fresh_b, fresh_r) = runs["fresh"]
    ratio = second_b / first_b
    return Row(
        name="cache",
        title=f"cache: a walk run again ({WALK_LATENCY * 1000:.0f} ms, revalidated by ETag)",
        figure=second_b,
        baseline=first_b,
        unit="bytes",
        baseline_label="the first walk",
        ratio=ratio,
        goal="<= 0.2",
        met=_met(ratio, "<= 0.2"),
        details={"simulator": options, "runs": runs},
        notes=[
            f"first walk {first_s:.2f} s, {first_r} requests; again {second_s:.2f} s, "
            f"{second_r} requests (304s): {first_s / second_s:.2f}x faster",
            f"with max-age=300 (still fresh) the walk again took {fresh_s:.2f} s with "
            f"{fresh_r} requests and {fresh_b:,} bytes",
        ],
    )


async def run(sizes: Sizes, only: set[str], log: Callable[[str], None]) -> list[Row]:
    """Every selected row, in table order."""
    rows: list[Row] = []
    steps: list[tuple[set[str], Callable[[], Awaitable[list[Row]]]]] = [
        ({"latency", "peers"}, lambda: row_walks(sizes, only)),
        ({"deep"}, lambda: _one(row_deep(sizes))),
        ({"cpu"}, lambda: _one(row_cpu(sizes))),
        ({"walk-memory"}, lambda: _one(row_walk_memory(sizes))),
        ({"parse"}, lambda: _one(row_parse(sizes))),
        ({"memory"}, lambda: _one(asyncio.to_thread(row_memory, sizes))),
        ({"pagination"}, lambda: _one(row_pagination(sizes))),
        ({"actions"}, lambda: _one(row_actions(sizes))),
        ({"cluster"}, lambda: row_cluster(sizes)),
        ({"cache"}, lambda: _one(row_cache(sizes))),
    ]
    for names, step in steps:
        if not names & only:
            continue
        started = time.perf_counter()
        new = await step()
        for row in new:
            log(
                f"  {row.title}: {_fmt(row.figure)} vs {_fmt(row.baseline)} {row.unit} "
                f"= {row.ratio:.2f}x ({'met' if row.met else 'MISSED'} {row.goal}) "
                f"[{time.perf_counter() - started:.0f} s]"
            )
        rows.extend(new)
    order = {name: i for i, name in enumerate(ROW_NAMES)}
    rows.sort(key=lambda r: order[r.name.partition(":")[0]])
    return rows


async def _one(row: Awaitable[Row]) -> list[Row]:
    return [await row]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the rows, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (< 1 min)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="output file (default: benchmarks/results.json for a full run of every row; a "
        "--quick or --only run writes benchmarks/results-quick.json, which git ignores, so the "
        "tracked full results stay as they are)",
    )
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(ROW_NAMES)}")
    parser.add_argument(
        "--memory-docs", type=int, default=None, help="documents for the memory row"
    )
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()} or set(ROW_NAMES)
    unknown = only - set(ROW_NAMES)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {','.join(ROW_NAMES)}")
    sizes = QUICK if args.quick else FULL
    if args.json is None:
        args.json = default_output(
            quick=args.quick, rows=only, every=ROW_NAMES, memory_docs=args.memory_docs
        )
    if args.memory_docs is not None:
        sizes = attrs.evolve(sizes, memory_docs=args.memory_docs)
    info = machine()
    print(
        f"machine: {info['cores']} cores, Python {info['python']} ({info['implementation']}), "
        f"aiohttp {info['aiohttp']}, halnav {info['halnav']}, load {info['load_average']}"
    )
    selected = ",".join(n for n in ROW_NAMES if n in only)
    print(f"mode: {'quick' if args.quick else 'full'}; rows: {selected}")
    started = time.perf_counter()
    rows = asyncio.run(run(sizes, only, lambda line: print(line, flush=True)))
    elapsed = time.perf_counter() - started
    print()
    print(table(rows))
    print()
    for row in rows:
        for note in row.notes:
            print(f"  [{row.name}] {note}")
    print(f"\ntotal {elapsed:.0f} s; load average now {[round(x, 2) for x in os.getloadavg()]}")
    result = {
        "machine": info,
        "mode": "quick" if args.quick else "full",
        "sizes": attrs.asdict(sizes),
        "seconds": round(elapsed, 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": [attrs.asdict(row) for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
