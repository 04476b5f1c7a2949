"""veeam-walk as a real job: resumable with --state across SIGTERM and SIGKILL, nothing lost
or doubled; organizations by name; export paths in the summary."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import attrs
import pytest
from test_cli import clean_env, halnav_process
from test_cli_signals import WAIT, session_states, summary_of, wait_for_lines

import halnav
from halnav import veeam
from halnav.simulator import Faults, SimulatorConfig, open_simulator

SLOW = SimulatorConfig(
    organizations=2,
    mailboxes=3,
    folders=2,
    subfolders=0,
    items=6,
    onedrives=1,
    documents=2,
    sites=1,
    teams=1,
    channels=2,
    faults=Faults(latency=0.03),
)


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.is_file() else 0


@pytest.mark.parametrize("version", ["v5", "v6", "v7", "v8"])
async def test_a_resumable_veeam_walk_of_every_workload_survives_sigterm_and_sigkill(
    tmp_path: Path, version: str
) -> None:
    """The issue's job: --type all --search --export-dir --export-limit 0 --state, killed
    twice and run again: every workload walked, every hit and every mailbox's PST recorded
    exactly once, every session stopped."""
    out, state, exports = tmp_path / "walk.jsonl", tmp_path / "state", tmp_path / "pst"
    config = attrs.evolve(SLOW, api_version=version)
    kinds = veeam.SESSION_TYPES
    sessions = config.organizations * len(kinds)
    async with open_simulator(config) as sim:
        command = (
            "veeam-walk", sim.url, "--out", str(out), "--state", str(state), "--type", "all",
            "--concurrency", "2", "--search", "a", "--export-dir", str(exports),
            "--export-limit", "0", "--quiet", "--username", sim.username,
            "--password", sim.password,
        )  # fmt: skip

        async def start() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "halnav", *command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env(),
            )  # fmt: skip

        first = await start()  # SIGTERM: the sessions are stopped, the state committed
        await wait_for_lines(out, first, 5)
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), WAIT)
        assert first.returncode == 143
        assert sim.stats.sessions_stopped == sim.stats.sessions_started == sessions

        second = await start()  # SIGKILL: its sessions are left working
        await wait_for_lines(out, second, _lines(out) + 10)
        second.kill()
        await second.wait()
        assert sim.stats.sessions_started == 2 * sessions  # stopped ones cannot be reused
        assert sim.stats.sessions_stopped == sessions

        status, _out, err = await halnav_process(*command)  # reuses the working sessions
        assert status == 0, err
        assert sim.stats.sessions_started == 2 * sessions
        assert await session_states(sim) == ["Stopped"] * (2 * sessions)
        per_org = {kind: sim.count_documents(kind) for kind in kinds}
    summary = summary_of(err)
    assert summary["resumed"]
    assert summary["complete"]
    history = json.loads((state / "veeam.json").read_text())["sessions"]
    assert sorted(history) == sorted(f"{o}/{k}" for o in sim.organization_ids for k in kinds)
    assert all(len(ids) == 2 for ids in history.values())  # run 2's session was reused

    def normalized(url: str) -> str:
        for org, ids in history.items():  # org: "id/vex"
            for session_id in ids:
                url = url.replace(f"/{session_id}/", f"/org:{org}/")
        assert not re.search(r"/RestoreSessions/[0-9a-f-]{36}/", url, re.IGNORECASE), url
        return url

    records = list(halnav.read_records(out))
    docs = Counter(normalized(r.url) for r in records if isinstance(r, halnav.DocumentRecord))
    assert max(docs.values()) == 1
    for kind, count in per_org.items():  # every document of every workload, once
        assert sum(1 for url in docs if f"/{kind}/" in url) == count * config.organizations
    acted = [r for r in records if isinstance(r, halnav.ActionRecord)]
    assert not [r for r in acted if r.failed]
    searches = Counter(normalized(r.url) for r in acted if r.action == "search")
    searched = config.mailboxes  # v5 has no search outside Exchange
    if version != "v5":
        searched += config.onedrives + config.sites + config.teams
    assert len(searches) == config.organizations * searched
    assert max(searches.values()) == 1
    pst = Counter(normalized(r.url) for r in acted if r.action == "exporttoPst")
    assert len(pst) == config.organizations * config.mailboxes  # every mailbox, once
    assert max(pst.values()) == 1
    assert sorted(p.suffix for p in exports.iterdir()) == [".pst"] * len(pst)


async def test_veeam_walk_takes_organizations_by_name_and_lists_its_exports(
    tmp_path: Path,
) -> None:
    config = SimulatorConfig(organizations=3, mailboxes=2, folders=1, items=2, onedrives=0)
    async with open_simulator(config) as sim:
        login = ("--username", sim.username, "--password", sim.password)
        async with veeam.open_navigator(
            sim.url, username=sim.username, password=sim.password
        ) as nav:
            orgs = await veeam.organizations(nav)
        name = str(orgs[1]["name"])
        status, _out, err = await halnav_process(
            "veeam-walk", sim.url, "--org", name.upper(), "--out", str(tmp_path / "w.jsonl"),
            "--export-dir", str(tmp_path / "pst"), "--export-limit", "0", "--quiet", *login,
        )  # fmt: skip
        assert status == 0, err
        assert sim.stats.sessions_started == len(veeam.SESSION_TYPES)  # one org, every workload
        wrong = await halnav_process("veeam-walk", sim.url, "--org", "nobody", *login)
    summary = summary_of(err)
    assert summary["organizations"] == 1
    exports = summary["exports"]
    assert len(exports) == 2
    assert all(Path(path).is_file() and path.endswith(".pst") for path in exports)
    assert [line for line in err.splitlines() if line.startswith("explored")] == []  # --quiet
    assert wrong[0] == 1
    assert "is no organization's id or name" in wrong[2]
    assert name in wrong[2]


async def test_a_tenant_walks_its_own_organization_from_the_command_line(
    tmp_path: Path,
) -> None:
    config = SimulatorConfig(
        organizations=2, mailboxes=2, folders=1, items=2, onedrives=0, api_version="v7"
    )
    out = tmp_path / "w.jsonl"
    async with open_simulator(config) as sim:
        org_id = sim.organization_ids[1]
        status, _out, err = await halnav_process(
            "veeam-walk", sim.url, "--client-id", org_id, "--assertion", "-", "--out", str(out),
            "--search", "a", "--quiet", stdin=sim.config.tenant_assertion.encode() + b"\n",
        )  # fmt: skip
        assert status == 0, err
        kinds = veeam.SESSION_TYPES  # its organization's every workload
        assert sim.stats.sessions_started == sim.stats.sessions_stopped == len(kinds)
        per_org = sum(sim.count_documents(kind) for kind in kinds)
    assert sim.config.tenant_assertion not in err
    docs = [r for r in halnav.read_records(out) if isinstance(r, halnav.DocumentRecord)]
    assert len(docs) == per_org
    assert summary_of(err)["complete"]


async def test_veeam_walk_type_all_walks_every_workload_and_names_the_refused(
    tmp_path: Path,
) -> None:
    """--type all: the types the organization backs up (no Teams here), each counted; a type
    asked for that the server cannot explore is named, not walked, and exits 3."""
    config = SimulatorConfig(
        organizations=1, mailboxes=2, folders=1, items=2, onedrives=2, workloads=("vex", "veod", "vesp")
    )  # fmt: skip
    async with open_simulator(config) as sim:
        login = ("--quiet", "--username", sim.username, "--password", sim.password)
        status, _out, err = await halnav_process(
            "veeam-walk", sim.url, "--type", "all", "--out", str(tmp_path / "w.jsonl"), *login
        )  # fmt: skip
        started = sim.stats.sessions_started
        assert sim.stats.sessions_stopped == started == 3
        assert status == 0, err
        summary = summary_of(err)
        by_type = summary["documents_by_type"]
        assert by_type == {kind: sim.count_documents(kind) for kind in ("vex", "veod", "vesp")}
        assert summary["documents"] == sum(by_type.values())
        status, _out, err = await halnav_process(
            "veeam-walk", sim.url, "--type", "vex", "--type", "vet", *login,
            "--out", str(tmp_path / "w2.jsonl"),
        )  # fmt: skip
        assert sim.stats.sessions_stopped == sim.stats.sessions_started == 4
    assert status == 3, err
    summary = summary_of(err)
    assert list(summary["documents_by_type"]) == ["vex"]
    assert [r["session"].rpartition("/")[2] for r in summary["refused"]] == ["vet"]
    assert "vet was not walked: the server refused to explore it" in err
    assert "no Teams backup" in err
