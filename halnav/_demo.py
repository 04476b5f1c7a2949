"""``halnav demo``: halnav's main job, end to end, on the embedded Veeam simulator.

Starts the simulator on a free loopback port, logs in with the Veeam password
grant, lists the organizations, explores each one (one restore session each,
entered on one :class:`contextlib.AsyncExitStack` so every session is stopped
whatever happens), walks all their Organization resources in ONE concurrent
crawl that also searches every mailbox and exports one mailbox to PST, writes
the API map (Mermaid) and the link graph (Graphviz), stops the sessions and
returns a :class:`DemoSummary`::

    summary = await run_demo(Path("halnav-demo"))
    print("\\n".join(summary.lines()))
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

import attrs

import halnav
from halnav import veeam
from halnav.simulator import Faults, Simulator, SimulatorConfig, open_simulator
from halnav.veeam import is_mailbox

__all__ = ["DEFAULT_QUERY", "DemoSummary", "is_mailbox", "run_demo"]

#: Matches the simulator's "Invoice <word> #n" subjects (about one item in twelve).
DEFAULT_QUERY: Final = "subject:invoice"
_EXPORT_PATTERNS: Final = ("*.pst", "*.zip", "*.msg", "*.download")
_NOISY_LOGGERS: Final = ("aiohttp", "aiohttp.access", "aiohttp.server", "aiohttp.web", "halnav")


@attrs.frozen
class DemoSummary:
    """What the demo did; ``lines()`` is the printed summary."""

    simulator: str
    organizations: int
    sessions_started: int
    sessions_stopped: int
    documents: int
    documents_by_type: Mapping[str, int]
    """By restore session type: vex Exchange, veod OneDrive, vesp SharePoint, vet Teams."""
    failures: int
    failures_by_type: Mapping[str, int]
    searches: int
    search_hits: int
    """Every hit of every search (all pages)."""
    query: str
    unsearched: tuple[str, ...]
    """Walked restore session types the API version cannot search (v5: all but vex)."""
    exports: tuple[tuple[Path, int], ...]  # (path, bytes) of each exported file
    actions: int
    action_failures: int
    crawl_seconds: float
    elapsed: float
    out: Path
    walk: Path
    graph: Path
    graph_nodes: int
    graph_edges: int
    api_map: Path
    """The walk collapsed into resource kinds (Mermaid): the picture worth opening."""
    map_kinds: int
    map_rels: int

    def lines(self) -> list[str]:
        """The human-readable summary, one fact per line."""
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(self.failures_by_type.items()))
        workloads = ", ".join(f"{k} {v}" for k, v in self.documents_by_type.items())
        exports = [f"{path} ({size:,} bytes)" for path, size in self.exports] or ["(none)"]
        rate = self.documents / self.crawl_seconds if self.crawl_seconds > 0 else 0.0
        return [
            f"halnav demo against the embedded Veeam simulator at {self.simulator}",
            f"  organizations explored  {self.organizations}",
            f"  restore sessions        {self.sessions_started} started, "
            f"{self.sessions_stopped} stopped",
            f"  documents walked        {self.documents} in {self.crawl_seconds:.2f} s "
            f"({rate:,.0f}/s, one crawl over all organizations)",
            f"  by workload             {workloads}",
            f"  searches run            {self.searches} ({self.query!r}: {self.search_hits} hits)"
            + (f"; not searchable here: {', '.join(self.unsearched)}" if self.unsearched else ""),
            f"  PST exported            {exports[0]}",
            *(f"                          {line}" for line in exports[1:]),
            f"  failures                {self.failures}"
            + (f" ({by_type})" if by_type else "")
            + f", action failures {self.action_failures}",
            f"  elapsed                 {self.elapsed:.2f} s",
            f"  walk records            {self.walk}",
            f"  API map (Mermaid)       {self.api_map} ({self.map_kinds} kinds of resource, "
            f"{self.map_rels} rels)",
            f"  link graph (Graphviz)   {self.graph} ({self.graph_nodes} nodes, "
            f"{self.graph_edges} edges)",
            f"  exports                 {self.out / 'exports'}",
        ]


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Keep the simulator's and aiohttp's log lines off the terminal while the demo runs."""
    saved = []
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate


@attrs.frozen
class _Walk:
    """What the walk output says about the actions."""

    searches: int
    hits: int
    exports: tuple[tuple[Path, int], ...]


@contextlib.asynccontextmanager
async def _report_stops(sim: Simulator, tell: Callable[[str], None]) -> AsyncIterator[None]:
    """When the demo is cut short, say how many restore sessions were stopped all the same."""
    try:
        yield
    except BaseException:
        stats = sim.stats
        tell(
            f"restore sessions: {stats.sessions_started} started, {stats.sessions_stopped} stopped"
        )
        raise


def _read_walk(path: Path) -> _Walk:
    searches = hits = 0
    exports = []
    for record in halnav.read_records(path):
        if not isinstance(record, halnav.ActionRecord) or record.result is None:
            continue  # documents, failures and failed actions
        action, result = record.action.lower(), record.result
        if action == "search":
            searches += 1
            hits += len(record.items or ())  # every page of hits
        elif action == "exporttopst" and result.get("path"):
            exports.append((Path(result["path"]), int(result.get("bytes") or 0)))
    return _Walk(searches, hits, tuple(exports))


def _clear_exports(directory: Path) -> None:
    """Remove an earlier run's export files (only those: ``out`` may hold anything else)."""
    if directory.is_dir():
        for pattern in _EXPORT_PATTERNS:
            for path in directory.glob(pattern):
                path.unlink(missing_ok=True)


async def run_demo(
    out: str | Path = "halnav-demo",
    *,
    organizations: int = 3,
    mailboxes: int = 4,
    folders: int = 3,
    subfolders: int = 1,
    items: int = 40,
    latency: float = 0.0,
    api_version: str = "v5",
    query: str = DEFAULT_QUERY,
    progress: Callable[[halnav.CrawlStatistics], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Run the demo with its output in ``out`` (created; an earlier run's files are replaced).

    ``say`` receives a line per step as it happens; ``progress`` the crawl's statistics.

    Raises:
        HalnavError: a step failed (the sessions are stopped all the same).
        OSError: ``out`` cannot be written.
    """
    started = time.monotonic()
    tell = say or (lambda _text: None)
    out = Path(out)
    exports = out / "exports"
    walk = out / "walk.jsonl"
    graph_path = out / "graph.dot"
    map_path = out / "map.mmd"
    out.mkdir(parents=True, exist_ok=True)
    walk.unlink(missing_ok=True)  # the crawler appends: start from an empty file
    _clear_exports(exports)
    config = SimulatorConfig(
        organizations=organizations,
        mailboxes=mailboxes,
        folders=folders,
        subfolders=subfolders,
        items=items,
        faults=Faults(latency=latency),
        api_version=api_version,
    )
    with _quiet_logs():
        async with open_simulator(config) as sim, _report_stops(sim, tell):
            tell(
                f"simulator: {sim.api} ({organizations} organizations, {mailboxes} mailboxes each)"
            )
            async with veeam.open_navigator(
                sim.url, username=sim.username, password=sim.password
            ) as nav:
                orgs = await veeam.organizations(nav)
                tell(f"logged in as {sim.username}; organizations: {len(orgs)}")
                done_walk = await veeam.walk(
                    nav,
                    output=walk,
                    organization_ids=[str(org["id"]) for org in orgs],
                    search_query=query,
                    export_dir=exports,
                    export_limit=1,
                    progress=progress,
                    say=tell,
                )  # every workload the organizations back up: Exchange, OneDrive, SharePoint, Teams
                summary = done_walk.crawl
                nav.graph.write(graph_path)
                nav.graph.write(map_path, as_map=True)
                graph_stats = nav.graph.statistics()
                api = nav.graph.to_map()
            stats = sim.stats
            sessions_started, sessions_stopped = stats.sessions_started, stats.sessions_stopped
    done = _read_walk(walk)
    return DemoSummary(
        simulator=sim.url,
        organizations=len(orgs),
        sessions_started=sessions_started,
        sessions_stopped=sessions_stopped,
        documents=summary.documents,
        documents_by_type=done_walk.documents_by_type,
        failures=summary.failures,
        failures_by_type=summary.failures_by_type,
        searches=done.searches,
        search_hits=done.hits,
        query=query,
        unsearched=done_walk.unsearched,
        exports=done.exports,
        actions=summary.actions,
        action_failures=summary.action_failures,
        crawl_seconds=summary.elapsed,
        elapsed=time.monotonic() - started,
        out=out,
        walk=walk,
        graph=graph_path,
        graph_nodes=graph_stats.nodes,
        graph_edges=graph_stats.edges,
        api_map=map_path,
        map_kinds=len(api.kinds),
        map_rels=len(api.rels),
    )
