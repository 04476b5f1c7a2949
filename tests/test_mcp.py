"""halnav.mcp: the MCP facade run as a real child process, driven by the SDK's own client
over stdio, against a small real HAL server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("mcp")

from aiohttp import web
from aiohttp.test_utils import TestServer
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent, TextResourceContents

import halnav
import halnav.mcp

TOTAL = 25
LIMIT = 10
TOKEN = "tok-3f9a1c77e2b54d0c9e"
ROOT = Path(__file__).resolve().parents[1]


class HalApp:
    """A HAL API with a Veeam-style paged collection, named and templated links, a
    read-only action, a data-changing action, a HAL-FORMS template, and two endpoints that
    echo the caller's credentials (in a document and in an error)."""

    def __init__(self) -> None:
        self.searches: list[Any] = []
        self.restores = 0
        self.updates = 0
        self.auth: set[str | None] = set()
        self.app = web.Application(middlewares=[self.record_auth])
        self.app.router.add_get("/api", self.root)
        self.app.router.add_get("/api/items", self.items)
        self.app.router.add_get("/api/items/{n}", self.item)
        self.app.router.add_post("/api/search", self.search)
        self.app.router.add_post("/api/restore", self.restore)
        self.app.router.add_put("/api/things/1", self.update)
        self.app.router.add_get("/api/echo", self.echo)
        self.app.router.add_get("/api/fail", self.fail)

    @web.middleware
    async def record_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.auth.add(request.headers.get("Authorization"))
        response: web.StreamResponse = await handler(request)
        return response

    async def root(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "root",
                "description": "x" * 1000,
                "_links": {
                    "self": {"href": "/api"},
                    "items": {"href": f"/api/items?offset=0&limit={LIMIT}", "title": "Items"},
                    "item": {"href": "/api/items/{n}", "templated": True},
                    "many": [{"href": f"/api/items/{n}", "name": f"i{n}"} for n in range(5)],
                    "echo": {"href": "/api/echo"},
                    "fail": {"href": "/api/fail"},
                },
                "_actions": {
                    "search": {"uri": "/api/search", "method": "POST"},
                    "restore": {"uri": "/api/restore", "method": "POST"},
                },
                "_templates": {
                    "update": {
                        "method": "PUT",
                        "target": "/api/things/1",
                        "title": "Update the thing",
                        "properties": [{"name": "title", "prompt": "Title", "required": True}],
                    }
                },
            },
            content_type="application/hal+json",
        )

    def _item(self, n: int) -> dict[str, Any]:
        return {"n": n, "name": f"item {n}", "_links": {"self": {"href": f"/api/items/{n}"}}}

    async def items(self, request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(LIMIT)))
        links: dict[str, Any] = {"self": {"href": f"/api/items?offset={offset}&limit={limit}"}}
        if offset + limit < TOTAL:
            links["next"] = {"href": f"/api/items?offset={offset + limit}&limit={limit}"}
        results = [self._item(n) for n in range(offset, min(offset + limit, TOTAL))]
        return web.json_response(
            {"offset": offset, "limit": limit, "results": results, "_links": links}
        )

    async def item(self, request: web.Request) -> web.Response:
        return web.json_response(self._item(int(request.match_info["n"])))

    async def search(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.searches.append(body)
        return web.json_response({"query": body, "hits": 2, "_links": {"self": {"href": "/api"}}})

    async def restore(self, request: web.Request) -> web.Response:
        self.restores += 1
        return web.json_response({"restored": True}, status=201)

    async def update(self, request: web.Request) -> web.Response:
        self.updates += 1
        return web.json_response({"updated": True})

    async def echo(self, request: web.Request) -> web.Response:
        # A careless server that shows the caller its own credentials.
        return web.json_response({"authorization": request.headers.get("Authorization")})

    async def fail(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"message": f"{auth} may not read this"}, status=403)


@pytest.fixture
async def hal() -> AsyncIterator[tuple[HalApp, str]]:
    app = HalApp()
    server = TestServer(app.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield app, str(server.make_url("/api"))
    finally:
        await server.close()


@asynccontextmanager
async def mcp_server(
    url: str,
    log: Path,
    *,
    token: str | None = None,
    allow_actions: bool = False,
    records: Path | None = None,
) -> AsyncIterator[ClientSession]:
    """``halnav.mcp.run_stdio(url, ...)`` in a child process, as an initialised session."""
    options = {"token": token, "allow_actions": allow_actions, "records": records and str(records)}
    code = (
        "import asyncio, json, sys, halnav.mcp as m; "
        "asyncio.run(m.run_stdio(sys.argv[1], **json.loads(sys.argv[2])))"
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-c", code, url, json.dumps(options)], cwd=str(ROOT)
    )
    with log.open("w", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=20) as session,
        ):
            await session.initialize()
            yield session


def text_of(result: CallToolResult) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed with structured content."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    content = result.structured_content
    assert isinstance(content, dict)
    return cast(dict[str, Any], content)


async def fail(session: ClientSession, tool: str, **arguments: Any) -> str:
    """Call ``tool``; it must fail as a tool error; its message."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    return text_of(result)


async def read_json(session: ClientSession, uri: str) -> Any:
    """A resource's JSON."""
    result = await session.read_resource(uri)
    (content,) = result.contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "application/json"
    return json.loads(content.text)


def test_import_halnav_does_not_import_mcp() -> None:
    """``import halnav`` loads neither halnav.mcp nor the SDK (the extra stays optional)."""
    code = "import sys, halnav; print('mcp' in sys.modules, 'halnav.mcp' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == ["False", "False"]


async def test_build_server_offers_the_fixed_tools_and_the_graph() -> None:
    """The server object lists exactly the fixed tools and the graph map resource; the walk
    resource only when records are given."""
    async with halnav.Navigator("https://h/api/") as nav:
        server = halnav.mcp.build_server(nav, "https://h/api/")
        assert [tool.name for tool in await server.list_tools()] == list(halnav.mcp.TOOLS)
        uris = [str(resource.uri) for resource in await server.list_resources()]
        assert uris == [halnav.mcp.GRAPH_URI]
        walked = halnav.mcp.build_server(nav, "https://h/api/", records="walk.jsonl")
        uris = [str(resource.uri) for resource in await walked.list_resources()]
        assert uris == [halnav.mcp.GRAPH_URI, halnav.mcp.WALK_URI]


async def test_reading_tools(hal: tuple[HalApp, str], tmp_path: Path) -> None:
    """Over stdio: the tool list is the fixed set; get, links, follow (selectors, templates),
    actions and page return the API's data; the graph map resource is JSON of what was seen."""
    app, api = hal
    async with mcp_server(api, tmp_path / "server.log") as session:
        listed = await session.list_tools()
        assert sorted(tool.name for tool in listed.tools) == sorted(halnav.mcp.TOOLS)

        root = await call(session, "get", url=api)
        assert root["url"] == api
        assert root["state"]["name"] == "root"
        assert root["state"]["description"].startswith("x" * 200 + "… (1000 chars)")
        assert root["rels"] == ["echo", "fail", "item", "items", "many", "self"]
        assert sorted(root["actions"]) == ["restore", "search", "update"]
        assert root["items"] == 0

        page = await call(session, "get", url="/api/items?offset=0&limit=10")
        assert page["items"] == LIMIT
        assert page["first_items"][0] == {"url": api + "/items/0", "title": "item 0"}

        links = (await call(session, "links"))["links"]
        by_rel = {(link["rel"], link["name"]): link for link in links}
        assert by_rel["items", None]["title"] == "Items"
        assert by_rel["item", None]["templated"] is True
        assert by_rel["many", "i3"]["href"] == api + "/items/3"

        third = await call(session, "follow", rels=["many[name:i3]"])
        assert third["url"] == api + "/items/3"
        first = await call(session, "follow", url=api, rels=["items", "item[0]"])
        assert first["state"]["n"] == 0
        seventh = await call(session, "follow", rels=["item"], variables={"n": 7})
        assert seventh["state"] == {"n": 7, "name": "item 7"}

        actions = {a["name"]: a for a in (await call(session, "actions", url=api))["actions"]}
        assert actions["search"] == {
            "name": "search",
            "method": "POST",
            "target": api + "/search",
            "title": None,
            "content_type": "application/json",
            "changes_data": False,
            "allowed": True,
            "properties": [],
        }
        assert actions["restore"]["changes_data"] is True
        assert actions["restore"]["allowed"] is False
        update = actions["update"]
        assert (update["method"], update["title"]) == ("PUT", "Update the thing")
        assert update["properties"][0]["name"] == "title"
        assert update["properties"][0]["required"] is True

        items_url = api + "/items?offset=0&limit=10"
        some = await call(session, "page", url=items_url, max_items=15)
        assert [item["title"] for item in some["items"]] == [f"item {n}" for n in range(15)]
        assert some["more"] is True
        rest = await call(session, "page", url=items_url, offset_pages=2)
        assert [item["url"] for item in rest["items"]] == [
            f"{api}/items/{n}" for n in range(20, TOTAL)
        ]
        assert rest["more"] is False
        past = await call(session, "page", url=items_url, offset_pages=9)
        assert past["items"] == []

        graph = await read_json(session, halnav.mcp.GRAPH_URI)
        templates = {kind["template"] for kind in graph["kinds"]}
        assert any(template.endswith("/api") for template in templates)
        assert {rel["rel"] for rel in graph["rels"]} >= {"items", "many"}
    assert app.searches == []


async def test_halnav_errors_are_tool_errors_without_secrets(
    hal: tuple[HalApp, str], tmp_path: Path
) -> None:
    """A missing rel, a failed request and a foreign URL are tool errors with halnav's
    one-line message; the token is sent to the API but shows in no result and no log."""
    app, api = hal
    log = tmp_path / "server.log"
    async with mcp_server(api, log, token=TOKEN) as session:
        message = await fail(session, "follow", url=api, rels=["mailboxes"])
        assert "no link 'mailboxes'" in message
        assert "available:" in message
        assert "\n" not in message
        assert "Traceback" not in message

        message = await fail(session, "get", url="/api/fail")
        assert "403" in message
        assert TOKEN not in message

        message = await fail(session, "get", url="https://elsewhere.test/api")
        assert "not on the entry's origin" in message

        echoed = await call(session, "get", url="/api/echo")
        assert echoed["state"]["authorization"] == "Bearer ***"
        assert TOKEN not in json.dumps(await call(session, "follow", rels=["echo"]))
        assert TOKEN not in json.dumps(await read_json(session, halnav.mcp.GRAPH_URI))
    assert f"Bearer {TOKEN}" in app.auth  # the API did get the token
    assert TOKEN not in log.read_text(encoding="utf-8")


async def test_act_is_read_only_by_default(hal: tuple[HalApp, str], tmp_path: Path) -> None:
    """Without allow_actions, a read-only action runs and a data-changing one (a Veeam
    action or a HAL-FORMS PUT) is refused before anything is sent."""
    app, api = hal
    async with mcp_server(api, tmp_path / "server.log") as session:
        answer = await call(session, "act", url=api, action="search", body={"q": "x"})
        assert answer["status"] == 200
        assert answer["document"]["state"] == {"query": {"q": "x"}, "hits": 2}

        message = await fail(session, "act", url=api, action="restore", body={})
        assert "refused" in message
        assert "read-only" in message
        assert "--allow-actions" in message
        message = await fail(session, "act", url=api, action="update", body={"title": "t"})
        assert "refused" in message

        message = await fail(session, "act", url=api, action="frobnicate")
        assert "frobnicate" in message
    assert app.searches == [{"q": "x"}]
    assert (app.restores, app.updates) == (0, 0)


async def test_act_runs_with_allow_actions_and_the_walk_is_a_resource(
    hal: tuple[HalApp, str], tmp_path: Path
) -> None:
    """With allow_actions, a data-changing action runs; a walk's records given at start
    are served as halnav://walk."""
    app, api = hal
    records = tmp_path / "walk.jsonl"
    async with halnav.Navigator(api) as nav:
        await halnav.crawl(nav, [api + "/items?offset=0&limit=10"], output=str(records))
    async with mcp_server(
        api, tmp_path / "server.log", allow_actions=True, records=records
    ) as session:
        actions = (await call(session, "actions", url=api))["actions"]
        assert all(action["allowed"] for action in actions)
        answer = await call(session, "act", url=api, action="restore", body={"id": 1})
        assert answer["status"] == 201
        assert answer["document"]["state"] == {"restored": True}
        answer = await call(session, "act", url=api, action="update", body={"title": "t"})
        assert answer["method"] == "PUT"

        walk = await read_json(session, halnav.mcp.WALK_URI)
        assert walk["documents"] >= TOTAL
        assert walk["failures"] == 0
        assert walk["map"]["kinds"]
    assert (app.restores, app.updates) == (1, 1)


async def test_halnav_mcp_on_the_command_line(hal: tuple[HalApp, str], tmp_path: Path) -> None:
    """`halnav mcp URL --token-file F`: the same server, its login from the CLI's options."""
    app, url = hal
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "halnav", "mcp", url, "--token-file", str(token_file)],
        cwd=str(ROOT),
    )
    with (tmp_path / "log").open("w", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=20) as session,
        ):
            await session.initialize()
            tools = sorted(tool.name for tool in (await session.list_tools()).tools)
            root = await call(session, "get")
    assert tools == sorted(halnav.mcp.TOOLS)
    assert root["state"]["name"] == "root"
    assert f"Bearer {TOKEN}" in app.auth  # the token went to the API...
    assert TOKEN not in (tmp_path / "log").read_text(encoding="utf-8")  # ...and nowhere else
