"""Large exports: built for minutes before the first byte, streamed for long, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
from test_cli import halnav_process

import halnav
from halnav import Limits, veeam
from halnav._exports import Exports
from halnav.errors import DocumentError, LimitExceededError, RequestTimeoutError
from halnav.simulator import SimulatorConfig, open_simulator

# One mailbox of 2 folders x 8 items at 64 KiB each: a ~1 MiB PST in 16 chunks.
BIG = SimulatorConfig(
    organizations=1, mailboxes=1, folders=2, items=8, onedrives=0, pst_bytes_per_item=64 * 1024
)
SIZE = 512 + 16 * 64 * 1024


@asynccontextmanager
async def mailbox(
    config: SimulatorConfig, limits: Limits
) -> AsyncIterator[tuple[halnav.Navigator, halnav.Document]]:
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(
            sim.url, username=sim.username, password=sim.password, limits=limits
        ) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        yield nav, (await nav.follow(org, "mailboxes")).items[0]


async def test_an_export_built_for_longer_than_the_read_timeout_arrives(tmp_path: Path) -> None:
    """Actions wait answer_timeout for their first byte, not read_timeout: a PST built for
    1.5 s arrives under a 0.5 s read timeout; a 0.5 s answer timeout names itself."""
    slow = attrs.evolve(BIG, export_build_seconds=1.5)
    target = tmp_path / "m.pst"
    seen: list[tuple[int, int | None]] = []
    limits = Limits(read_timeout=0.5, total_timeout=0.5, retries=0)
    async with mailbox(slow, limits) as (nav, box):
        answer = await nav.act(
            box, "exporttoPst", json=veeam.export_pst(), to=target,
            progress=lambda size, total: seen.append((size, total)),
        )  # fmt: skip
    assert isinstance(answer, halnav.Download)
    assert answer.size == SIZE == target.stat().st_size
    assert seen[-1] == (SIZE, SIZE)
    assert len(seen) > 1  # the counter moves as the chunks come

    impatient = Limits(answer_timeout=0.5, retries=0)
    async with mailbox(slow, impatient) as (nav, box):
        with pytest.raises(RequestTimeoutError, match="answer_timeout"):
            await nav.act(box, "exporttoPst", json=veeam.export_pst(), to=tmp_path / "x.pst")
    assert [p.name for p in tmp_path.iterdir()] == ["m.pst"]  # only the first, whole export


async def test_transfer_bound_stall_and_size_cap_leave_no_file(tmp_path: Path) -> None:
    throttled = attrs.evolve(BIG, export_bytes_per_second=256 * 1024)  # ~4 s for the PST
    cases = [
        (Limits(transfer_timeout=0.5, retries=0), RequestTimeoutError, "transfer_timeout"),
        (Limits(read_timeout=0.1, retries=0), RequestTimeoutError, "stalled"),
        (Limits(max_download_bytes=100_000, retries=0), LimitExceededError, "download"),
    ]
    for limits, error, words in cases:
        async with mailbox(throttled, limits) as (nav, box):
            with pytest.raises(error, match=words):
                await nav.act(box, "exporttoPst", json=veeam.export_pst(), to=tmp_path / "m.pst")
        assert list(tmp_path.iterdir()) == [], words


async def test_a_binary_answer_without_out_is_refused_at_its_headers() -> None:
    async with mailbox(BIG, Limits()) as (nav, box):
        with pytest.raises(DocumentError, match="not JSON; give a file"):
            await nav.act(box, "exporttoPst", json=veeam.export_pst(), binary=False)
        kept = await nav.act(box, "exporttoPst", json=veeam.export_pst())  # the library default
        assert isinstance(kept, halnav.Download)
        assert len(kept.body) == SIZE

    async with (
        open_simulator(BIG) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        status, _out, err = await halnav_process(
            "act", session.organization_url, "exporttoPst", "--username", sim.username,
            "--password", sim.password, "--veeam",
        )  # fmt: skip
        assert status == 1, err
        assert "application/octet-stream" in err
        assert f"{SIZE:,} bytes" in err
        assert "--out FILE" in err


async def test_a_walk_counts_the_bytes_of_exports_in_flight(tmp_path: Path) -> None:
    """A walk's statistics count an export's bytes as they come, not only when it ends."""
    throttled = attrs.evolve(BIG, export_bytes_per_second=1024 * 1024)  # ~1 s for the PST
    seen: list[halnav.CrawlStatistics] = []
    rule = halnav.ActionRule(
        name="exporttoPst", json=veeam.export_pst(), export_dir=str(tmp_path / "pst"),
        where=veeam.is_mailbox,
    )  # fmt: skip
    async with (
        open_simulator(throttled) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        summary = await halnav.crawl(
            nav, [session.organization_url], actions=[rule], progress=seen.append,
            progress_interval=0.05,
        )  # fmt: skip
    assert summary.actions == 1
    during = [s.exporting for s in seen if s.exporting]
    assert during  # some snapshots saw the download in flight
    assert all(0 < size <= SIZE for size in during)
    assert seen[-1].exporting == 0
    assert seen[-1].bytes_exported == SIZE


# -- issue 14, finding 7: export files -------------------------------------------------------


async def test_a_resume_state_cannot_send_an_export_outside_the_export_dir(tmp_path: Path) -> None:
    """The state is data: a pending export whose path was changed to point elsewhere is
    exported into --export-dir all the same."""
    config = attrs.evolve(BIG, pst_bytes_per_item=16)
    out, state, pst, elsewhere = (tmp_path / n for n in ("w.jsonl", "state", "pst", "elsewhere"))
    rule = halnav.ActionRule(
        name="exporttoPst", json=veeam.export_pst(), export_dir=str(pst), where=veeam.is_mailbox
    )
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        root = f"{session.url}/Organization"
        await halnav.crawl(nav, [root], output=out, state_dir=state, actions=[rule])
        (exported,) = pst.iterdir()
        exported.unlink()
        with sqlite3.connect(next(state.glob("*.sqlite*"))) as db:
            changed = db.execute(
                "UPDATE frontier SET done = 0, path = ? WHERE kind = 'action'",
                (str(elsewhere / "stolen"),),
            ).rowcount
        assert changed == 1
        await halnav.crawl(nav, [root], output=out, state_dir=state, actions=[rule])
    assert not elsewhere.exists()
    assert [p.suffix for p in pst.iterdir()] == [".pst"]


async def test_an_exports_file_name_is_committed_before_its_file_exists(tmp_path: Path) -> None:
    """When an export's file is placed, the resume state on disk already names it: a run
    killed then (before the next commit) resumes into that file, not a second one beside
    it (which a walk on a cluster whose worker was SIGKILLed showed)."""
    config = attrs.evolve(BIG, pst_bytes_per_item=16)
    out, state, pst = tmp_path / "w.jsonl", tmp_path / "state", tmp_path / "pst"
    rule = halnav.ActionRule(
        name="exporttoPst", json=veeam.export_pst(), export_dir=str(pst), where=veeam.is_mailbox
    )
    stored: list[list[str]] = []

    class Look:
        """At the export's answer (its file in place), what the state on disk says."""

        def event(self, event: object) -> None:
            if isinstance(event, halnav.ActionAnswered):
                database = state / "state.sqlite3"  # the resume store's file
                with contextlib.closing(sqlite3.connect(database)) as db:
                    rows = db.execute("SELECT path FROM frontier WHERE kind = 'action'")
                    stored.append([str(path) for (path,) in rows])

    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        root = f"{session.url}/Organization"
        await halnav.crawl(nav, [root], output=out, state_dir=state, actions=[rule], sinks=[Look()])
    (exported,) = pst.iterdir()
    assert stored == [[str(exported.with_suffix(""))]]


async def test_partial_downloads_of_dead_runs_are_removed(tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE
    )
    dead = (await child.communicate())[0].decode().strip()  # its pid: a process now gone
    pst = tmp_path / "pst"
    pst.mkdir()
    stale = pst / f".someone.download.{dead}.k2j3h4.part"
    live = pst / f".other.download.{os.getpid()}.a1b2c3.part"
    stale.write_bytes(b"mailbox data")
    live.write_bytes(b"still being written")
    async with mailbox(BIG, Limits()) as (nav, box):
        rule = halnav.ActionRule(
            name="exporttoPst", json=veeam.export_pst(), export_dir=str(pst), limit=1
        )
        await halnav.crawl(nav, [box.url], output=tmp_path / "w.jsonl", actions=[rule])
    assert not stale.exists()
    assert live.exists()  # its writer (this process) is alive
    assert [p.suffix for p in pst.iterdir() if not p.name.startswith(".")] == [".pst"]


def test_reserving_names_reads_the_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 exports of one stem beside 2,000 files of it: each name distinct and new, the
    directory listed once (it was listed again for every candidate: quadratic)."""
    for n in range(2000):
        (tmp_path / (f"export-{n}.pst" if n else "export.pst")).touch()
    listings = 0
    real = os.listdir

    def counting(path: str | os.PathLike[str]) -> list[str]:
        nonlocal listings
        listings += 1
        return real(path)

    monkeypatch.setattr(os, "listdir", counting)
    exports = Exports()
    doc = halnav.parse(b'{"_links": {}}', "https://h/x")
    names = [exports.reserve(str(tmp_path), doc) for _ in range(2000)]
    assert len(set(names)) == 2000
    assert names[0] == str(tmp_path / "export-2000")
    assert listings == 1
