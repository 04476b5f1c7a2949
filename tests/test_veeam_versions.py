"""The Veeam profile against the simulator in every REST API version (v5 to v8).

The v6-v8 simulators are held to Veeam's OpenAPI specifications: every route they serve
exists in the spec, and every answer these tests receive validates against the
operation's response schema (``tests/contract.py``). The client is proven against those
simulators through its public API only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import attrs
import pytest
from aiohttp import web
from contract import (
    SPEC_DIR,
    ContractRecorder,
    recording_middleware,
    requires_specs,
    route_in_spec,
)
from test_cli import access_token

import halnav
from halnav import Download, veeam
from halnav.errors import HalnavError, HTTPStatusError
from halnav.simulator import Faults, Simulator, SimulatorConfig, open_simulator, routes

ALL_VERSIONS = ("v5", "v6", "v7", "v8")
CONFIG = SimulatorConfig(organizations=2, mailboxes=2, folders=2, subfolders=1, items=4)


@contextlib.asynccontextmanager
async def simulated(
    version: str, config: SimulatorConfig = CONFIG
) -> AsyncIterator[tuple[Simulator, ContractRecorder]]:
    """A simulator of ``version`` whose every v6+ answer is checked against the spec at exit
    (when the specs are there: a clone without ``shared/`` beside it runs the rest)."""
    recorder = ContractRecorder()
    checked = version != "v5" and SPEC_DIR.is_dir()
    middlewares = [recording_middleware(recorder)] if checked else []
    config = attrs.evolve(config, api_version=version)
    async with open_simulator(config, middlewares=middlewares) as sim:
        yield sim, recorder
    if checked:
        assert recorder.check() > 0


@requires_specs
@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
def test_every_simulator_route_exists_in_the_spec(version: str) -> None:
    """A route the spec does not have would let the client pass against a server that lies."""
    served = routes(version)
    assert len(served) > 30
    missing = [
        f"{method} {path}" for method, path in served if not route_in_spec(version, method, path)
    ]
    assert missing == []


def test_v5_serves_no_v6_endpoints_and_v6_no_v5_ones() -> None:
    """The per-version route table: v5 has .../Action, v6+ the dedicated endpoints."""
    v5 = {path.lower() for _method, path in routes("v5")}
    v6 = {path.lower() for _method, path in routes("v6")}
    assert "v5/organizations/{org}/action" in v5
    assert "v5/organizations/{org}/explore" not in v5
    assert "v6/organizations/{org}/explore" in v6
    assert "v6/organizations/{org}/action" not in v6
    assert not any(path.startswith("v6/token/logout") for path in v6)
    assert "v7/token/logout" in {path.lower() for _m, path in routes("v7")}


@requires_specs
@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_main_journey_on_every_version(version: str, tmp_path: Path) -> None:
    """Detect the version, list organizations, explore every workload of each, walk, search,
    export, stop."""
    async with simulated(version) as (sim, _recorder):
        async with veeam.open_navigator(
            sim.url, username=sim.username, password=sim.password
        ) as nav:
            done = await veeam.walk(
                nav,
                output=tmp_path / "walk.jsonl",
                search_query="subject:invoice",
                export_dir=tmp_path / "pst",
                export_limit=None,
            )
            assert nav.version == version
        assert sorted(done.organizations) == sorted(sim.organization_ids)
        orgs = len(sim.organization_ids)
        per_type = {kind: sim.count_documents(kind) * orgs for kind in veeam.SESSION_TYPES}
        assert done.documents_by_type == per_type
        assert done.crawl.documents == sum(per_type.values())
        assert done.crawl.failures == 0
        assert done.crawl.action_failures == 0
        mailboxes = CONFIG.mailboxes * CONFIG.organizations
        others = 0 if version == "v5" else (CONFIG.onedrives + CONFIG.sites + CONFIG.teams) * orgs
        assert sim.stats.searches == mailboxes + others
        assert done.unsearched == (() if version != "v5" else ("veod", "vesp", "vet"))
        assert len(list((tmp_path / "pst").iterdir())) == mailboxes
        assert sim.stats.sessions_started == sim.stats.sessions_stopped == len(done.sessions)
        assert sim.stats.logouts == (1 if version in ("v7", "v8") else 0)
        records = [json.loads(line) for line in (tmp_path / "walk.jsonl").read_text().splitlines()]
        assert all(record.get("status", 200) == 200 for record in records)


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_explicit_version_and_url_version_skip_detection(version: str) -> None:
    """``version=`` (or a /vN/ URL) is used as given: no probe of the other versions."""
    async with open_simulator(SimulatorConfig(api_version=version)) as sim:
        for nav in (
            veeam.open_navigator(
                sim.url, username=sim.username, password=sim.password, version=version
            ),
            veeam.open_navigator(sim.api + "Organizations", token="x"),
        ):
            assert nav.version == version
            await nav.aclose()
        assert sim.stats.requests == 0


async def test_detection_fails_clearly_on_a_server_that_is_not_veeam() -> None:
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(HalnavError, match="no Veeam Backup for Microsoft 365 REST API"):
            async with veeam.open_navigator(f"http://127.0.0.1:{port}", token="t") as nav:
                await nav.get("Organizations")
    finally:
        await runner.cleanup()


@requires_specs
async def test_v8_organizations_are_read_on_every_page() -> None:
    """35 tenants on a v8 server: two pages of organizations, all 35 are returned."""
    config = SimulatorConfig(organizations=35, mailboxes=1, folders=1, items=1)
    async with (
        simulated("v8", config) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        found = await veeam.organizations(nav)
        assert [org["id"] for org in found] == sim.organization_ids
        assert len(found) == 35


@requires_specs
@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_refresh_mid_walk_sends_the_antiforgery_cookie(version: str, tmp_path: Path) -> None:
    """Tokens expire during the walk; each refresh carries the grant's antiforgery cookie."""
    config = SimulatorConfig(
        organizations=1,
        mailboxes=2,
        folders=2,
        items=30,
        token_lifetime=0.4,
        faults=Faults(latency=0.01),
    )
    async with simulated(version, config) as (sim, _recorder):
        async with veeam.open_navigator(
            sim.url, username=sim.username, password=sim.password
        ) as nav:
            done = await veeam.walk(nav, output=tmp_path / "walk.jsonl", types=["vex"])
        assert done.crawl.failures == 0
        assert done.crawl.documents == sim.count_documents("vex")
        assert sim.stats.token_grants == 1
        assert sim.stats.token_refreshes >= 1
        assert sim.stats.antiforgery_refusals == 0


@pytest.mark.parametrize("version", ["v7", "v8"])
async def test_a_refresh_without_the_antiforgery_cookie_is_refused(version: str) -> None:
    """The simulator's check is real: the same refresh without the cookie is a 400."""
    async with (
        simulated(version) as (sim, _recorder),
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        form = {"grant_type": "password", "username": sim.username, "password": sim.password}
        async with http.post(sim.api + "token", data=form) as response:
            assert response.status == 200
            assert ".AspNetCore.Antiforgery" in response.headers["Set-Cookie"]
            refresh = (await response.json())["refresh_token"]
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        async with http.post(sim.api + "token", data=form) as response:
            assert response.status == 400
            assert "antiforgery" in (await response.json())["error_description"]
        assert sim.stats.antiforgery_refusals == 1


@requires_specs
@pytest.mark.parametrize("version", ["v6", "v7", "v8"])
async def test_action_bodies_are_bare_on_v6_and_wrapped_ones_are_refused(
    version: str, tmp_path: Path
) -> None:
    """The profile sends RESTSearchOptions/RESTExportFolderToPst; a v5 body is a 400."""
    async with (
        simulated(version) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        assert org.actions == {}  # RESTBackupOrganization has no _actions
        mailbox = (await nav.follow(org, "mailboxes")).items[0]
        assert set(mailbox.actions) == {"exportToPst", "search", "restore"}
        hits = await nav.act(mailbox, "search", json=veeam.search("subject:invoice"))
        assert not isinstance(hits, Download)
        assert "setId" in hits.state
        # The organization-level search and export no _actions advertises.
        everywhere = await nav.act(org, "search", json=veeam.search("subject:invoice"))
        assert not isinstance(everywhere, Download)
        assert len(everywhere.items) >= len(hits.items)
        pst = await nav.act(
            org,
            "exporttoPst",
            json=veeam.export_pst(content_keywords="invoice"),
            to=tmp_path / "org.pst",
        )
        assert isinstance(pst, Download)
        assert (tmp_path / "org.pst").read_bytes().startswith(b"!BDN")
        # A v5-style body goes nowhere on v6+: the simulator checks bodies as strictly as
        # the spec's schemas allow.
        with pytest.raises(HTTPStatusError, match="unknown property 'search'"):
            await nav.send("POST", mailbox.action("search").target, json={"search": {"query": "x"}})


async def test_v5_refuses_a_bare_body_and_advertises_organization_actions() -> None:
    async with (
        simulated("v5") as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        assert set(org.actions) == {"exporttoPst", "search"}
        with pytest.raises(HTTPStatusError, match="exactly one key"):
            await nav.send("POST", org.action("search").target, json={"query": "x", "limit": 1})


@requires_specs
@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_restore_reports_its_outcome_on_every_version(version: str) -> None:
    """v5-v7 answer statistics; v8 answers {sessionId} and is followed until it ends."""
    async with (
        simulated(version) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        mailbox = (await nav.follow(org, "mailboxes")).items[0]
        body = veeam.restore_to_original(username="admin@tenant", password="s3cret!")
        outcome = await veeam.restore(nav, mailbox, body, poll=0.05)
        items = CONFIG.folders * (1 + CONFIG.subfolders) * CONFIG.items
        if version == "v8":
            assert outcome.session_id is not None
            assert (outcome.state, outcome.result) == ("Stopped", "Success")
            assert outcome.statistics["restoredItemsCount"] == items
        else:
            assert outcome.session_id is None
            assert outcome.statistics["createdItemsCount"] == items
        assert sim.stats.restores == 1


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_a_stopped_session_answers_500(version: str) -> None:
    """After a stop, the session's resources answer 500 (v5 fact, kept in every version)."""
    async with (
        simulated(version) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        session = await veeam.start_session(nav, sim.organization_ids[0])
        await session.stop()
        with pytest.raises(HTTPStatusError) as raised:
            await session.organization()
        assert raised.value.status == 500
        attached = await veeam.attach(nav, session.id)
        assert attached.document["state"] == "Stopped"


async def every_hit_in_one_page(nav: halnav.Navigator, mailbox: halnav.Document) -> list[str]:
    """The ids of every hit of the search "a" of ``mailbox``, asked for as one big page."""
    everything = (
        await nav.invoke(mailbox, "search", json=veeam.search("a"), params={"limit": "10000"})
    ).answer
    assert isinstance(everything, halnav.Document)
    return [hit["id"] for hit in everything.items]


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_search_hits_reads_every_page_of_hits(version: str) -> None:
    """A mailbox search with more hits than a page: every hit, each once, on every version."""
    config = SimulatorConfig(organizations=1, mailboxes=1, folders=2, items=60)
    async with (
        simulated(version, config) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        mailbox = (await nav.follow(org, "mailboxes")).items[0]
        expected = await every_hit_in_one_page(nav, mailbox)
        assert len(expected) > 30  # more than one default page
        ids = [hit["id"] async for hit in veeam.search_hits(nav, mailbox, "a", page_size=25)]
        assert ids == expected


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_paginate_on_a_search_answer_reads_every_hit(version: str) -> None:
    """``nav.paginate`` on the answer of ``act(..., "search")`` pages it by POSTing again
    (v5's next names the POST-only action URI, v6+ give no next); a plain Navigator,
    which does not know that convention, stops after the first page instead of failing."""
    config = SimulatorConfig(organizations=1, mailboxes=1, folders=2, items=60)
    async with (
        simulated(version, config) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        mailbox = (await nav.follow(org, "mailboxes")).items[0]
        expected = await every_hit_in_one_page(nav, mailbox)
        first = await nav.act(mailbox, "search", json=veeam.search("a"))
        assert isinstance(first, halnav.Document)
        assert 0 < len(first.items) < len(expected)
        assert [hit["id"] async for hit in nav.paginate(first)] == expected
        assert repr(first.answer).count("subject") == 0  # the body is not in the repr

        assert first.answer is not None
        assert first.answer.request is not None
        sent = first.answer.request.json  # the body as this version wants it
        async with halnav.Navigator(nav.url(""), auth=await access_token(sim)) as plain:
            alone = await plain.act(mailbox, "search", json=sent)
            assert isinstance(alone, halnav.Document)
            hits = [hit["id"] async for hit in plain.paginate(alone)]
            assert hits == expected[: len(alone.items)]


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_a_walk_records_every_hit_of_every_search(version: str, tmp_path: Path) -> None:
    """A crawl's search rule pages each answer to the end: each record holds every hit,
    the summary counts them; ``max_items`` cuts a record short and says so."""
    config = SimulatorConfig(organizations=1, mailboxes=2, folders=2, items=40, onedrives=0)
    async with (
        simulated(version, config) as (sim, _recorder),
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        mailboxes = (await nav.follow(org, "mailboxes")).items
        expected = {}
        for mailbox in mailboxes:
            expected[mailbox.canonical_url] = await every_hit_in_one_page(nav, mailbox)
        assert min(len(ids) for ids in expected.values()) > 30  # more than one page each
        rules = [halnav.ActionRule(name="search", json=veeam.search("a"), where=veeam.is_mailbox)]
        out = tmp_path / "walk.jsonl"
        summary = await halnav.crawl(nav, [session.organization_url], output=out, actions=rules)
        capped = tmp_path / "capped.jsonl"
        rules = [attrs.evolve(rules[0], max_items=5)]
        cut = await halnav.crawl(nav, [session.organization_url], output=capped, actions=rules)
    found = {
        r.url: [item["state"]["id"] for item in r.items or ()]
        for r in halnav.read_records(out)
        if isinstance(r, halnav.ActionRecord)
    }
    assert found == expected
    assert dict(summary.action_items) == {"search": sum(map(len, expected.values()))}
    short = [r for r in halnav.read_records(capped) if isinstance(r, halnav.ActionRecord)]
    assert [(len(r.items or ()), r.truncated) for r in short] == [(5, True), (5, True)]
    assert dict(cut.action_items) == {"search": 10}
    assert (cut.truncated, cut.complete) == (2, False)  # capped as asked: not complete
    assert (summary.truncated, summary.complete) == (0, True)


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_a_tenant_and_an_operator_explore_their_own_organization(version: str) -> None:
    """jwt-bearer (tenants, every version) and operator (v6+) logins: the session is of the
    organization the login names, administrator routes are refused, the assertion leaks
    nowhere."""
    config = SimulatorConfig(organizations=3, mailboxes=2, folders=1, items=1, onedrives=0)
    async with simulated(version, config) as (sim, _recorder):
        org_id = sim.organization_ids[1]
        secret = sim.config.tenant_assertion
        logins = [(org_id, False)]
        if version != "v5":
            logins.append((f"user-7.{org_id}", True))
        for client, operator in logins:
            async with veeam.open_navigator(
                sim.url, client_id=client, assertion=secret, operator=operator
            ) as nav:
                mine = await nav.get("Organization")
                assert mine["id"] == org_id
                async with veeam.explore(nav, None) as session:
                    org = await session.organization()
                    mailboxes = await nav.follow(org, "mailboxes")
                    assert len(mailboxes.items) == 2
                with pytest.raises(HTTPStatusError) as refused:
                    await veeam.organizations(nav)
                assert refused.value.status == 403
                assert secret not in repr(nav)
        with pytest.raises(HalnavError) as wrong:
            async with veeam.open_navigator(sim.url, client_id=org_id, assertion="forged") as nav:
                await nav.get("Organization")
        assert "forged" not in str(wrong.value)
        if version == "v5":  # no operator grant before v6
            with pytest.raises(HalnavError, match="not supported"):
                async with veeam.open_navigator(
                    sim.url, client_id=f"u.{org_id}", assertion=secret, operator=True
                ) as nav:
                    await nav.get("Organization")
