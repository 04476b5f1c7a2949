"""Actions where the user means them: dry runs, a yes before changing data, where to act."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import access_token, halnav_process, served

import halnav
from halnav import veeam
from halnav.simulator import SimulatorConfig, open_simulator

SMALL = SimulatorConfig(organizations=1, mailboxes=2, folders=1, items=3, onedrives=0)


async def _an_item(url: str, token: str) -> str:
    async with halnav.Navigator(url, auth=token) as nav:
        org = await nav.get(url)
        mailbox = (await nav.follow(org, "mailboxes")).items[0]
        folder = (await nav.follow(mailbox, "folders")).items[0]
        return (await nav.follow(folder, "items")).items[0].canonical_url


async def test_act_that_changes_data_needs_yes_and_dry_run_sends_nothing() -> None:
    async with served(SMALL) as walk:
        token = await access_token(walk.sim)
        item = await _an_item(walk.org, token)
        base = ("act", item, "restoretoOriginallocation", "--token", token, "--veeam")
        status, _out, err = await halnav_process(*base)
        assert status == 1, err
        assert "may change data on the server" in err
        assert "--yes" in err
        assert walk.sim.stats.restores == 0

        status, out, err = await halnav_process(*base, "--dry-run")
        assert status == 0, err
        assert out.lower().startswith(f"post {item}/action\n".lower())
        assert json.loads(out.split("\n", 1)[1]) == {"restoretoOriginallocation": None}
        assert "nothing was sent" in err
        assert walk.sim.stats.restores == 0

        status, _out, err = await halnav_process(*base, "--yes")
        assert status == 0, err
        assert walk.sim.stats.restores == 1

        # A read-only action runs without asking.
        searches = walk.sim.stats.searches
        status, _out, err = await halnav_process(
            "act", walk.org, "search", "-d", '{"query": "x"}', "--token", token, "--veeam"
        )
        assert status == 0, err
        assert walk.sim.stats.searches == searches + 1


async def test_crawl_dry_run_prints_every_action_request_and_sends_none(tmp_path: Path) -> None:
    out = tmp_path / "walk.jsonl"
    async with served(SMALL) as walk:
        token = await access_token(walk.sim)
        args = ("crawl", walk.org, "--out", str(out), "--token", token, "--veeam", "--quiet")
        searches = walk.sim.stats.searches
        status, _stdout, err = await halnav_process(
            *args, "--action", "search", "--action-json", '{"query": "x"}',
            "--action-rel", "item", "--dry-run",
        )  # fmt: skip
        assert status == 0, err
        planned = [line for line in err.splitlines() if line.startswith("halnav: dry run: POST")]
        # --action-rel item: page items only (the mailboxes, folders and items), not the org.
        records = list(halnav.read_records(out))
        reached = [r for r in records if isinstance(r, halnav.DocumentRecord) and r.rel == "item"]
        offering = [r for r in reached if any(k.lower() == "search" for k in r.actions)]
        assert len(planned) == len(offering) > 0
        assert all('{"search": {"query": "x"}}' in line for line in planned)
        assert not [r for r in records if isinstance(r, halnav.ActionRecord)]
        assert walk.sim.stats.searches == searches  # nothing sent
        summary = json.loads(err.rsplit("summary ", 1)[1])
        assert summary["planned"] == len(planned)

        # A real run of an action that changes data is refused without --yes, before any GET.
        requests = walk.sim.stats.requests
        status, _stdout, err = await halnav_process(*args, "--action", "restoretoOriginallocation")
        assert status == 1, err
        assert "may change data" in err
        assert walk.sim.stats.requests == requests
        with_state = await halnav_process(
            *args, "--action", "search", "--dry-run", "--state", str(tmp_path / "s")
        )
        assert with_state[0] == 2  # a usage error
        assert "cannot be resumed" in with_state[2]


async def test_an_action_no_document_offered_names_those_they_did(tmp_path: Path) -> None:
    async with served(SMALL) as walk:
        token = await access_token(walk.sim)
        status, _out, err = await halnav_process(
            "crawl", walk.org, "--out", str(tmp_path / "w.jsonl"), "--token", token,
            "--veeam", "--quiet", "--action", "searhc", "--yes",
        )  # fmt: skip
    assert status == 0, err
    note = next(line for line in err.splitlines() if "ran on no document" in line)
    assert "'searhc'" in note
    assert "the documents offered" in note
    assert "search" in note.split("offered", 1)[1]


async def test_veeam_walk_dry_run_starts_no_session() -> None:
    config = SimulatorConfig(organizations=2, mailboxes=1, folders=1, items=1, onedrives=0)
    async with open_simulator(config) as sim:
        status, out, err = await halnav_process(
            "veeam-walk", sim.url, "--username", sim.username, "--password", sim.password,
            "--search", "invoice", "--export-dir", "pst", "--export-limit", "0", "--dry-run",
        )  # fmt: skip
        assert status == 0, err
        assert sim.stats.sessions_started == 0
    lines = out.splitlines()
    explores = [line for line in lines if line.startswith("POST ")]
    assert len(explores) == 2 * len(veeam.SESSION_TYPES)  # each organization, each workload
    assert all(line.split()[1].endswith("/Action") for line in explores)  # v5, the default
    assert sorted(json.loads(line.split(" ", 2)[2])["explore"]["type"] for line in explores) == (
        sorted(veeam.SESSION_TYPES * 2)
    )
    assert any("search" in line and "on every mailbox" in line for line in lines)  # v5
    assert any("exportToPst on every mailbox" in line for line in lines)
    assert "8 restore sessions would be started" in err


@pytest.mark.parametrize("version", ["v5", "v8"])
async def test_action_on_a_kind_runs_on_those_resources_only(tmp_path: Path, version: str) -> None:
    """'Search every mailbox': --action-on mailbox, not the organization, folders or items."""
    config = SimulatorConfig(
        organizations=1, mailboxes=3, folders=2, items=2, onedrives=0, api_version=version
    )
    out = tmp_path / "walk.jsonl"
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        status, _out, err = await halnav_process(
            "crawl", session.organization_url, "--out", str(out), "--quiet",
            "--username", sim.username, "--password", sim.password,
            "--action", "search", "--action-json", '{"query": "a"}', "--action-on", "mailbox",
        )  # fmt: skip
        mailboxes = (await nav.follow(await session.organization(), "mailboxes")).items
    assert status == 0, err
    searched = sorted(r.url for r in halnav.read_records(out) if isinstance(r, halnav.ActionRecord))
    assert searched == sorted(m.canonical_url for m in mailboxes)
    assert {veeam.kind_of(m) for m in mailboxes} == {"mailbox"}
