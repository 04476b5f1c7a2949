"""The command line against a simulator of every REST API version, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from test_cli import halnav_process

import halnav
from halnav import veeam
from halnav.simulator import SimulatorConfig, open_simulator

VERSIONS = ("v5", "v6", "v7", "v8")
CONFIG = SimulatorConfig(organizations=2, mailboxes=2, folders=2, subfolders=1, items=3)


@pytest.mark.parametrize("version", VERSIONS)
async def test_veeam_walk_runs_to_completion_on_every_version(version: str, tmp_path: Path) -> None:
    """The done-when command: every organization explored, walked, searched, exported, stopped.

    The version is detected without a flag.
    """
    out, exports = tmp_path / "walk.jsonl", tmp_path / "pst"
    config = attrs.evolve(CONFIG, api_version=version)
    async with open_simulator(config) as sim:
        status, stdout, stderr = await halnav_process(
            "veeam-walk",
            sim.url,
            "--username",
            sim.username,
            "--password",
            sim.password,
            "--out",
            str(out),
            "--search",
            "subject:invoice",
            "--export-dir",
            str(exports),
            "--export-limit",
            "all",
        )
        assert status == 0, stderr
        stats = sim.stats
        sessions = CONFIG.organizations * len(veeam.SESSION_TYPES)  # every workload by default
        assert stats.sessions_started == stats.sessions_stopped == sessions
        per_org = sum(sim.count_documents(kind) for kind in veeam.SESSION_TYPES)
        expected = per_org * CONFIG.organizations
    records = list(halnav.read_records(out))
    documents = [r for r in records if isinstance(r, halnav.DocumentRecord)]
    assert len(documents) == expected
    assert not [r for r in records if isinstance(r, halnav.FailureRecord)]
    assert not [r for r in records if isinstance(r, halnav.ActionRecord) and r.failed]
    mailboxes = CONFIG.organizations * CONFIG.mailboxes
    assert len(list(exports.iterdir())) == mailboxes  # --export-limit all: every one
    # Every mailbox; on v6+ every OneDrive, site and team too (v5 has no search there).
    others = CONFIG.onedrives + CONFIG.sites + CONFIG.teams if version != "v5" else 0
    assert stats.searches == mailboxes + CONFIG.organizations * others
    assert f"{expected}" in stderr + stdout


@pytest.mark.parametrize("version", ["v5", "v8"])
async def test_orgs_start_stop_give_every_example_its_url(version: str) -> None:
    """veeam-orgs lists ids, veeam-start prints the session and its Organization URL, which
    `halnav get` reads; veeam-stop stops it (then the URL answers 500)."""
    config = SimulatorConfig(organizations=3, mailboxes=1, folders=1, items=1, api_version=version)
    async with open_simulator(config) as sim:
        login = ("--username", sim.username, "--password", sim.password)
        status, out, err = await halnav_process("veeam-orgs", sim.url, *login)
        assert status == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["ID", "NAME"]
        assert [line.split()[0] for line in lines[1:]] == sim.organization_ids
        status, out, err = await halnav_process("veeam-orgs", sim.url, "--json", *login)
        assert [json.loads(line)["id"] for line in out.splitlines()] == sim.organization_ids

        org = sim.organization_ids[1]
        status, out, err = await halnav_process(
            "veeam-start", sim.url, "--org", org, "--json", *login
        )
        assert status == 0, err
        started = json.loads(out)
        assert started["state"] == "Working"
        assert started["organization"].startswith(f"{sim.url}/{version}/RestoreSessions/")
        status, out, err = await halnav_process("get", started["organization"], "--json", *login)
        assert status == 0, err
        assert json.loads(out)["id"] == org
        assert sim.stats.sessions_stopped == 0

        status, out, err = await halnav_process("veeam-stop", sim.url, started["id"], *login)
        assert status == 0, err
        assert out.strip() == f"stopped restore session {started['id']}"
        assert sim.stats.sessions_stopped == 1
        status, _out, err = await halnav_process("get", started["organization"], *login)
        assert status != 0
        assert "HTTP 500" in err


async def test_api_version_flag_is_checked_and_used() -> None:
    """--api-version v6 against a v8 server speaks v6 paths (which the v8 sim does not have)."""
    config = SimulatorConfig(organizations=1, mailboxes=1, folders=1, items=1, api_version="v8")
    async with open_simulator(config) as sim:
        login = ("--username", sim.username, "--password", sim.password)
        status, _out, err = await halnav_process(
            "veeam-orgs", sim.url, "--api-version", "v6", *login
        )
        assert status != 0
        assert "/v6/token" in err
        status, _out, err = await halnav_process(
            "veeam-orgs", sim.url, "--api-version", "v9", *login
        )
        assert status == 2
        assert "invalid choice" in err


async def test_demo_runs_on_v8(tmp_path: Path) -> None:
    status, out, err = await halnav_process(
        "demo", "--out", str(tmp_path / "demo"), "--api-version", "v8", "--organizations", "2"
    )
    assert status == 0, err
    assert "/v8/" in out
    assert "8 started, 8 stopped" in out
