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
    items=30,
    onedrives=0,
    faults=Faults(latency=0.03),
)


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.is_file() else 0


@pytest.mark.parametrize("version", ["v5", "v8"])
async def test_a_resumable_veeam_walk_survives_sigterm_and_sigkill(
    tmp_path: Path, version: str
) -> None:
    out, state = tmp_path / "walk.jsonl", tmp_path / "state"
    config = attrs.evolve(SLOW, api_version=version)
    async with open_simulator(config) as sim:
        command = (
            "veeam-walk", sim.url, "--out", str(out), "--state", str(state),
            "--concurrency", "2", "--search", "a", "--quiet",
            "--username", sim.username, "--password", sim.password,
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
        assert sim.stats.sessions_stopped == sim.stats.sessions_started == 2

        second = await start()  # SIGKILL: its sessions are left working
        await wait_for_lines(out, second, _lines(out) + 10)
        second.kill()
        await second.wait()
        assert sim.stats.sessions_started == 4  # the stopped ones could not be reused
        assert sim.stats.sessions_stopped == 2

        status, _out, err = await halnav_process(*command)  # reuses the working sessions
        assert status == 0, err
        assert sim.stats.sessions_started == 4
        assert await session_states(sim) == ["Stopped"] * 4
        per_session = sim.count_documents()
    summary = summary_of(err)
    assert summary["resumed"]
    assert summary["complete"]
    history = json.loads((state / "veeam.json").read_text())["sessions"]
    assert sorted(history) == sorted(f"{org}/vex" for org in sim.organization_ids)
    assert all(len(ids) == 2 for ids in history.values())  # run 2's session was reused

    def normalized(url: str) -> str:
        for org, ids in history.items():  # org: "id/vex"
            for session_id in ids:
                url = url.replace(f"/{session_id}/", f"/org:{org}/")
        assert not re.search(r"/RestoreSessions/[0-9a-f-]{36}/", url, re.IGNORECASE), url
        return url

    records = list(halnav.read_records(out))
    docs = Counter(normalized(r.url) for r in records if isinstance(r, halnav.DocumentRecord))
    assert len(docs) == per_session * 2
    assert max(docs.values()) == 1
    searches = Counter(normalized(r.url) for r in records if isinstance(r, halnav.ActionRecord))
    assert len(searches) == 2 * SLOW.mailboxes
    assert max(searches.values()) == 1


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
        assert sim.stats.sessions_started == 1
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
        assert sim.stats.sessions_started == sim.stats.sessions_stopped == 1
        per_session = sim.count_documents()
    assert sim.config.tenant_assertion not in err
    docs = [r for r in halnav.read_records(out) if isinstance(r, halnav.DocumentRecord)]
    assert len(docs) == per_session
    assert summary_of(err)["complete"]


async def test_veeam_walk_type_all_walks_every_workload_and_names_the_refused(
    tmp_path: Path,
) -> None:
    """--type all: the types the organization backs up; each is counted; a type the server
    cannot explore is named, not walked, and the exit status says so (3)."""
    config = SimulatorConfig(organizations=1, mailboxes=2, folders=1, items=2, onedrives=2)
    async with open_simulator(config) as sim:
        status, _out, err = await halnav_process(
            "veeam-walk", sim.url, "--type", "all", "--out", str(tmp_path / "w.jsonl"),
            "--quiet", "--username", sim.username, "--password", sim.password,
        )  # fmt: skip
        started = sim.stats.sessions_started
        assert sim.stats.sessions_stopped == started
    assert status == 3, err
    summary = summary_of(err)
    by_type = summary["documents_by_type"]
    assert sorted(by_type) == ["veod", "vex"]
    assert all(count > 0 for count in by_type.values())
    assert summary["documents"] == sum(by_type.values())
    assert [r["session"].rpartition("/")[2] for r in summary["refused"]] == ["vesp"]
    assert "vesp was not walked: the server refused to explore it" in err
    assert started == 2
