"""The walk reads the pages of a deep collection ahead, with idle capacity only."""

from __future__ import annotations

from pathlib import Path

from walks import explored, navigator, read_records, written

from halnav import Limits, crawl
from halnav.simulator import SimulatorConfig

DEEP = SimulatorConfig(organizations=1, mailboxes=1, folders=1, subfolders=0, items=300)
PAGES = 10  # 300 items, 30 per page: the folder's items and the mailbox's items


async def test_deep_collections_are_read_ahead_and_nothing_extra_is_written(
    tmp_path: Path,
) -> None:
    """Pages past a collection's end cost a request each and write nothing."""
    out = tmp_path / "walk.jsonl"
    async with explored(DEEP) as walk:
        expected = walk.sim.expected_documents(walk.session_id)
        walk.sim.reset_stats()
        async with navigator(walk.sim, limits=Limits(concurrency=16), version="v5") as nav:
            summary = await crawl(nav, [walk.root], output=out)
        requests = walk.sim.stats.requests
        pages_fetched = walk.sim.count_documents(include_pages=True) - walk.sim.count_documents(
            include_pages=False
        )
    urls = written(read_records(out))
    assert set(urls) == expected
    assert len(urls) == len(set(urls)) == summary.documents
    assert summary.complete
    # Every page was fetched once, plus a bounded number read past the two deep ends.
    waste = requests - pages_fetched - 2  # the token grant, and the root (not a page)
    assert 0 < waste <= 2 * Limits().readahead


async def test_a_walk_without_idle_capacity_reads_nothing_ahead() -> None:
    """One worker is always busy: not one request is spent past a collection's end."""
    async with explored(DEEP) as walk:
        walk.sim.reset_stats()
        async with navigator(walk.sim, version="v5") as nav:
            summary = await crawl(nav, [walk.root], workers=1)
        requests = walk.sim.stats.requests
        pages = walk.sim.count_documents(include_pages=True) - walk.sim.count_documents(
            include_pages=False
        )
    assert summary.complete
    assert requests == pages + 2  # + the token grant and the root
    assert summary.documents == walk.sim.count_documents()
    assert pages >= PAGES * 2
