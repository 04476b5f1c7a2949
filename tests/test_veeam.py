"""The Veeam profile driven against the embedded simulator through the real client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

import halnav
from halnav import veeam
from halnav.errors import AuthenticationError, HTTPStatusError
from halnav.simulator import SimulatorConfig, open_simulator

SMALL = SimulatorConfig(organizations=2, mailboxes=2, folders=2, items=35)


async def test_main_journey_token_explore_walk_search_export_stop(tmp_path: Path) -> None:
    """Token, explore, walk org -> mailboxes -> folders -> items across pages, search, PST, stop."""
    async with (
        open_simulator(SMALL) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        orgs = await veeam.organizations(nav)
        assert [o["id"] for o in orgs] == sim.organization_ids
        async with veeam.explore(nav, orgs[0]) as session:
            org = await session.organization()
            assert org.rels == ("mailboxes", "self")
            assert org.action_names == ("exporttoPst", "search")
            mailboxes = [m async for m in nav.paginate(await nav.follow(org, "mailboxes"))]
            assert len(mailboxes) == 2
            folders = [f async for f in nav.paginate(await nav.follow(mailboxes[0], "folders"))]
            assert len(folders) == 2
            items = [i async for i in nav.paginate(await nav.follow(folders[0], "items"))]
            # 35 items at 30 per page: the walk crossed a page boundary and lost nothing.
            assert len(items) == 35
            assert len({i["id"] for i in items}) == 35
            subject = str(items[0]["subject"])
            hits = await nav.act(mailboxes[0], "search", json=veeam.search(f'subject:"{subject}"'))
            assert isinstance(hits, halnav.Document)
            assert hits.items
            assert all(subject.lower() in str(h["subject"]).lower() for h in hits.items)
            pst = tmp_path / "mailbox.pst"
            export = await nav.act(mailboxes[0], "exportToPst", json=veeam.export_pst(), to=pst)
            assert isinstance(export, halnav.Download)
            assert export.path == pst
            assert pst.stat().st_size == export.size > 0
            assert sim.stats.sessions_stopped == 0
        assert sim.stats.sessions_stopped == 1
        with pytest.raises(HTTPStatusError) as after:
            await nav.get(org.url)
    assert after.value.status == 500
    assert after.value.detail  # the server's {"message"} is carried


async def test_seed_document_shape_key_by_key() -> None:
    """The Organization resource has exactly the seed's keys, links and actions."""
    async with (
        open_simulator(SMALL) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
    assert sorted(org.state) == ["id", "name"]
    assert str(org["name"]).count(".onmicrosoft.com (") == 1
    assert org.link("self").href.lower().endswith(f"/v5/restoresessions/{session.id}/organization")
    assert org.link("mailboxes").href.lower().endswith("/organization/mailboxes")
    for name in ("exporttoPst", "search"):
        action = org.action(name)
        assert action.method == "POST"
        assert action.target.lower().endswith("/organization/action")
        assert action.target.startswith("http")


async def test_explore_stops_the_session_on_error_and_on_cancel() -> None:
    """The restore session is stopped when the block raises and when its task is cancelled."""
    async with (
        open_simulator(SMALL) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        with pytest.raises(RuntimeError, match="boom"):
            async with veeam.explore(nav, sim.organization_ids[0]):
                raise RuntimeError("boom")
        assert sim.stats.sessions_stopped == 1

        entered = asyncio.Event()

        async def hold() -> None:
            async with veeam.explore(nav, sim.organization_ids[1]):
                entered.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(hold())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sim.stats.sessions_stopped == 2
        assert sim.stats.sessions_started == 2


async def test_action_bodies_are_wrapped_once() -> None:
    """Options are wrapped as {name: options}; an already wrapped body is sent as is."""
    async with (
        open_simulator(SMALL) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        wrapped = await nav.act(org, "search", json={"query": "subject:invoice"})
        whole = await nav.act(org, "SEARCH", json=veeam.search("subject:invoice"))
    assert isinstance(wrapped, halnav.Document)
    assert isinstance(whole, halnav.Document)
    assert [d.url for d in wrapped.items] == [d.url for d in whole.items]
    assert wrapped.items


async def test_rebase_links_moves_foreign_host_links_onto_the_server() -> None:
    """Links advertised under another host are rebased only when asked; else they carry no token."""
    config = SimulatorConfig(
        mailboxes=1, folders=1, items=1, public_base_url="https://vbo.invalid:4443"
    )
    async with open_simulator(config) as sim:
        async with (
            veeam.open_navigator(
                sim.url, username=sim.username, password=sim.password, rebase_links=True
            ) as nav,
            veeam.explore(nav, sim.organization_ids[0]) as session,
        ):
            org = await session.organization()
            assert org.link("mailboxes").href.startswith(sim.url)
            mailboxes = await nav.follow(org, "mailboxes")
            assert mailboxes.items
        async with (
            veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
            veeam.explore(nav, sim.organization_ids[0]) as session,
        ):
            org = await session.organization()
            assert org.link("mailboxes").href.startswith("https://vbo.invalid:4443/")


async def test_root_relative_v6_style_links_resolve_against_the_server_root() -> None:
    """v6-style hrefs (/v5/... and v5/... without a slash) resolve against the server root."""
    config = SimulatorConfig(mailboxes=2, folders=1, items=1, root_relative_links=True)
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        org = await session.organization()
        mailboxes = [m async for m in nav.paginate(await nav.follow(org, "mailboxes"))]
    assert org.link("mailboxes").href.startswith(sim.url + "/v5/")
    assert len(mailboxes) == 2


async def test_wrong_password_is_a_clear_error_without_the_password() -> None:
    """Bad credentials raise AuthenticationError carrying the server's reason, never the password."""
    async with open_simulator(SMALL) as sim:
        secret = "not-the-Passw0rd-xyzzy"
        async with veeam.open_navigator(sim.url, username=sim.username, password=secret) as nav:
            with pytest.raises(AuthenticationError) as err:
                await nav.get("Organizations")
    assert err.value.status == 400
    assert secret not in str(err.value)
    assert secret not in repr(err.value)


def test_open_navigator_validates_its_arguments() -> None:
    """A non-http server URL or half a credential pair is refused up front."""
    with pytest.raises(ValueError, match="server URL"):
        veeam.open_navigator("vbo:4443")
    with pytest.raises(ValueError, match="both username and password"):
        veeam.open_navigator("https://vbo:4443", username="u")
    body = veeam.restore_to_original(username="u", password="p", changedItems=True)
    assert body == {
        "restoretoOriginallocation": {"changedItems": True, "userName": "u", "userPassword": "p"}
    }
    assert veeam.export_pst(content_keywords="x", pst_size_limit_bytes=10) == {
        "exporttoPst": {"contentKeyword": "x", "enablePstSizeLimit": True, "pstSizeLimitBytes": 10}
    }
    assert veeam.export_pst() == {"exporttoPst": None}


async def test_walk_of_chosen_organizations_writes_each_document_once(tmp_path: Path) -> None:
    """veeam.walk explores only the chosen organizations, writes every document once, stops."""
    out = tmp_path / "walk.jsonl"
    async with (
        open_simulator(SMALL) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        steps: list[str] = []
        done = await veeam.walk(
            nav,
            output=out,
            organization_ids=sim.organization_ids[:1],
            say=steps.append,
            types=["vex"],
        )
        assert (sim.stats.sessions_started, sim.stats.sessions_stopped) == (1, 1)
        expected = sim.expected_documents(done.sessions[0])
    urls = [json.loads(line)["url"] for line in out.read_text().splitlines()]
    assert done.organizations == (sim.organization_ids[0],)
    assert done.crawl.documents == len(urls) == len(set(urls))
    assert set(urls) == set(expected)
    assert steps
    assert steps[-1].startswith("stopping 1 restore session")


async def test_a_cancel_while_the_session_starts_stops_the_session_it_started() -> None:
    """Ctrl-C while the explore request is at the server: the server starts the session
    whether or not the answer is read, so explore waits for it and stops it."""

    @web.middleware
    async def answer_late(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)  # the session exists from here
        if request.method == "POST" and request.path.lower().endswith("/action"):
            await asyncio.sleep(0.5)
        return response

    config = SimulatorConfig(organizations=1, mailboxes=1)
    entered = False

    async def use(nav: halnav.Navigator, org: str) -> None:
        nonlocal entered
        async with veeam.explore(nav, org):
            entered = True

    async with (
        open_simulator(config, middlewares=[answer_late]) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
    ):
        await veeam.organizations(nav)  # logged in: the next request is the start
        task = asyncio.create_task(use(nav, sim.organization_ids[0]))
        await asyncio.sleep(0.2)  # the session is started; its answer is on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        listing = await nav.get("RestoreSessions")
        states = [str(item["state"]) async for item in nav.paginate(listing)]
    assert not entered
    assert states == ["Stopped"]


async def test_a_cancel_while_a_refused_start_is_answered_leaves_nothing_to_stop() -> None:
    """The start the cancel waited for is refused (a 500): nothing started, nothing to stop,
    and the cancel goes on."""

    @web.middleware
    async def refuse_late(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "POST" and request.path.lower().endswith("/action"):
            await asyncio.sleep(0.5)
            return web.json_response({"message": "no"}, status=500)
        return await handler(request)

    config = SimulatorConfig(organizations=1, mailboxes=1)
    async with (
        open_simulator(config, middlewares=[refuse_late]) as sim,
        veeam.open_navigator(
            sim.url, username=sim.username, password=sim.password,
            limits=halnav.Limits(retries=0),
        ) as nav,
    ):  # fmt: skip
        await veeam.organizations(nav)

        async def use() -> None:
            async with veeam.explore(nav, sim.organization_ids[0]):
                pass

        task = asyncio.create_task(use())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        listing = await nav.get("RestoreSessions")
        states = [str(item["state"]) async for item in nav.paginate(listing)]
    assert states == []
