"""The demo: halnav's main job end to end on the embedded simulator, as a function and a command."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import halnav
from halnav._demo import run_demo


async def test_run_demo_walks_searches_exports_and_stops_every_session(tmp_path: Path) -> None:
    """run_demo: no failures, every session stopped, hits, a PST, consistent records and graph."""
    said: list[str] = []
    summary = await run_demo(tmp_path, organizations=2, mailboxes=3, say=said.append)
    assert summary.failures == 0
    assert summary.action_failures == 0
    assert summary.organizations == 2
    assert summary.sessions_started == summary.sessions_stopped == 2 * 4  # every workload
    assert list(summary.documents_by_type) == ["vex", "veod", "vesp", "vet"]
    assert sum(summary.documents_by_type.values()) == summary.documents
    assert summary.searches == 2 * 3  # one per mailbox
    assert summary.search_hits >= 1
    ((pst, size),) = summary.exports
    assert pst.parent == tmp_path / "exports"
    assert pst.suffix == ".pst"
    assert pst.stat().st_size == size > 0
    records = list(halnav.read_records(summary.walk))
    assert len(records) == summary.documents + summary.actions
    assert all(record.url for record in records)
    assert summary.graph.read_text().startswith("digraph halnav {")
    drawn = summary.api_map.read_text()
    assert drawn.startswith("flowchart LR")
    assert 5 <= summary.map_kinds <= 60  # a few dozen kinds, not thousands of documents
    assert drawn.count("-->") == summary.map_rels <= 500  # within what Mermaid draws
    assert "/mailboxes/{id}" in drawn.lower()
    assert any("explored 8 restore sessions (vex, veod, vesp, vet)" in line for line in said)
    text = "\n".join(summary.lines())
    assert "8 started, 8 stopped" in text
    assert "not searchable here: veod, vesp, vet" in text  # v5: said, not skipped in silence
    assert str(pst) in text


async def test_run_demo_again_replaces_the_earlier_output(tmp_path: Path) -> None:
    """A second run into the same directory starts from an empty walk and one export."""
    first = await run_demo(tmp_path, organizations=1, mailboxes=2, items=5)
    second = await run_demo(tmp_path, organizations=1, mailboxes=2, items=5)
    assert second.documents == first.documents
    assert len(second.walk.read_text().splitlines()) == second.documents + second.actions
    assert len(list((tmp_path / "exports").glob("*.pst"))) == 1


async def test_demo_command_exits_0(tmp_path: Path) -> None:
    """`halnav demo --out DIR` in a real process exits 0 and prints the summary, no log noise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALNAV_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "halnav",
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--organizations",
        "2",
        "--mailboxes",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out_bytes, err_bytes = await asyncio.wait_for(proc.communicate(), timeout=60)
    out, err = out_bytes.decode(), err_bytes.decode()
    assert proc.returncode == 0, err
    assert "organizations explored  2" in out
    assert "8 started, 8 stopped" in out
    assert str(tmp_path / "demo" / "walk.jsonl") in out
    assert err == ""
    assert (tmp_path / "demo" / "map.mmd").read_text().startswith("flowchart")
    assert "API map (Mermaid)" in out
