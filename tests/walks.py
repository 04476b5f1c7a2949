"""Helpers the walk tests share (test_crawl, test_faults, test_readahead): a simulator with
an explored restore session, its navigator, and the records a walk wrote."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import crawl_child

import halnav
from halnav import ActionRecord, DocumentRecord, FailureRecord, Record, veeam
from halnav.simulator import Simulator, SimulatorConfig, open_simulator

SMALL = SimulatorConfig(mailboxes=3, folders=2, subfolders=1, items=40)

R = TypeVar("R", DocumentRecord, FailureRecord, ActionRecord)


@attrs.frozen
class Walk:
    """A simulator with one explored restore session: the walk's root URL (the
    organization's own ``self`` href, so a failure of the root is recorded under the URL its
    document would have had) and the documents the simulator says it holds."""

    sim: Simulator
    session_id: str
    root: str
    expected: frozenset[str]


@contextlib.asynccontextmanager
async def explored(config: SimulatorConfig = SMALL) -> AsyncIterator[Walk]:
    """Serve ``config``, explore its first organization, stop the session at the end."""
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        expected = frozenset(sim.expected_documents(session.id))
        (root,) = (url for url in expected if url.endswith("/organization"))
        yield Walk(sim, session.id, root, expected)


def navigator(sim: Simulator, **options: Any) -> halnav.Navigator:
    """A Veeam navigator with the simulator's credentials (``options`` go to it)."""
    return veeam.open_navigator(sim.url, username=sim.username, password=sim.password, **options)


def read_records(path: Path) -> list[Record]:
    """Every record of a walk's output, read with halnav's reader (fails on a torn line)."""
    return list(halnav.read_records(path))


def of_kind(records: Iterable[Record], kind: type[R]) -> list[R]:
    """The records of one kind, in order."""
    return [r for r in records if isinstance(r, kind)]


def written(records: Iterable[Record]) -> list[str]:
    """URLs of the document records, in order (with repeats, if any)."""
    return [r.url for r in of_kind(records, DocumentRecord)]


def failed(records: Iterable[Record]) -> list[str]:
    """URLs of the failure records, in order (with repeats, if any)."""
    return [r.url for r in of_kind(records, FailureRecord)]


async def run_child(walk: Walk, out: Path, state: Path, kill_at: int | None, *flags: str) -> int:
    """Run tests/crawl_child.py on ``walk`` (``flags`` go to it); SIGKILL it once ``out``
    holds ``kill_at`` lines."""
    return await crawl_child.run_child(walk.sim.url, walk.root, out, state, kill_at, *flags)
