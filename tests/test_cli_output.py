"""What the command line prints for scripts and people: lossless JSON, usage errors, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_cli import cli, served

from halnav.cli import main

HTML_404 = (
    "<!DOCTYPE HTML>\n<html lang='en'><head><title>Error response</title></head>"
    "<body><p>Message: File not found.</p></body></html>"
)


async def test_follow_json_keeps_the_page_items_as_the_server_sent_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`follow ... mailboxes --json | jq '.results[].email'` sees the mailboxes (review #4)."""
    async with served() as s:
        assert await cli("follow", s.org, "mailboxes", "--json", *s.login) == 0
        page = json.loads(capsys.readouterr().out)
        assert await cli("follow", s.org, "mailboxes", "item[1]", "--json", *s.login) == 0
        second = json.loads(capsys.readouterr().out)
    emails = [mailbox["email"] for mailbox in page["results"]]
    assert len(emails) == 2
    assert all("@" in email for email in emails)
    assert isinstance(page["_links"]["self"], dict)  # a single link stays an object
    assert second == page["results"][1]  # an item is its element of the page, untouched


async def test_get_json_keeps_embedded_state_and_relative_hrefs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A HAL document's ``_embedded`` resources keep their state; hrefs stay as written."""
    body = {
        "_links": {"self": {"href": "/orders"}},
        "_embedded": {"orders": [{"id": 1, "status": "open"}, {"id": 2, "name": "second"}]},
        "results": [],
        "offset": 0,
    }

    async def orders(_request: web.Request) -> web.Response:
        return web.json_response(body, content_type="application/hal+json")

    app = web.Application()
    app.router.add_get("/orders", orders)
    async with TestServer(app, host="127.0.0.1") as server:
        assert await cli("get", str(server.make_url("/orders")), "--json") == 0
    assert json.loads(capsys.readouterr().out) == body


async def test_act_json_prints_the_search_hits(capsys: pytest.CaptureFixture[str]) -> None:
    """`act ... search -d BODY --json` prints the answer with its ``results`` (review #4)."""
    async with served() as s:
        code = await cli("act", s.org, "search", "-d", '{"query": "a"}', "--json", *s.login)
        assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["results"]
    assert {"offset", "limit", "results"} <= set(answer)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["get", "/relative"], "expected an absolute http:// or https:// URL"),
        (["follow", "http://127.0.0.1:9/", "x", "--var", "q"], "--var expects NAME=VALUE"),
        (["crawl", "http://127.0.0.1:9/", "--graph", "g.svg"], "--graph g.svg"),
        (["graph", "walk.jsonl", "-o", "g.png"], "-o g.png"),
        (["act", "http://127.0.0.1:9/", "search", "--json", '{"query": "x"}'], "-d/--body"),
        (["get", "http://127.0.0.1:9/", "--token", "t", "--username", "u"], "not both"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command line that is wrong exits 2, like argparse's own errors (review #26)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("halnav: error: ")
    assert message in err[0]


async def test_an_html_error_page_is_summarised_by_its_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`HTTP 404 Not Found`, not the page's markup squeezed into one line (review #28)."""

    async def missing(_request: web.Request) -> web.Response:
        return web.Response(status=404, text=HTML_404, content_type="text/html")

    app = web.Application()
    app.router.add_get("/missing", missing)
    async with TestServer(app, host="127.0.0.1") as server:
        assert await cli("get", str(server.make_url("/missing"))) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith("HTTP 404 Not Found")
    assert "<" not in err


def _walk_with_failures(path: Path) -> None:
    records = [
        {"url": "https://h/a", "status": 200, "depth": 0, "state": {}, "links": {}},
        *(
            {"url": f"https://h/busy{i}", "depth": 1, "parent": "https://h/a", "rel": "x",
             "error": {"type": "HTTPStatusError", "status": 503, "message": "HTTP 503: busy"}}
            for i in range(4)
        ),
        {"url": "https://h/gone", "depth": 1, "parent": "https://h/a", "rel": "x",
         "error": {"type": "ConnectError", "status": None, "message": "cannot connect"}},
        {"url": "https://h/a", "action": "search", "status": 500,
         "error": {"type": "HTTPStatusError", "status": 500, "message": "HTTP 500: boom"}},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_failures_groups_a_walks_failures_by_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`halnav failures walk.jsonl`: counts by HTTP status or error type, a few URLs each."""
    walk = tmp_path / "walk.jsonl"
    _walk_with_failures(walk)
    assert main(["failures", str(walk), "--urls", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"6 failures in {walk}:"
    kinds = [line.split(None, 1) for line in out if line[:8].strip().isdigit()]
    assert kinds == [
        ["4", "HTTP 503 Service Unavailable"],
        ["1", "ConnectError"],
        ["1", "HTTP 500 Internal Server Error"],
    ]
    assert "          ... and 2 more" in out
    assert "          https://h/a (search)" in out
    assert main(["failures", str(walk), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["url"] for line in lines][-1] == "https://h/a (search)"
    assert len(lines) == 6


def test_failures_of_a_clean_walk_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walk = tmp_path / "walk.jsonl"
    walk.write_text('{"url": "https://h/a", "status": 200, "state": {}}\n', encoding="utf-8")
    assert main(["failures", str(walk)]) == 0
    assert capsys.readouterr().out.strip() == f"no failures in {walk}"
