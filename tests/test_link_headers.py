"""Links from HTTP ``Link`` headers (RFC 8288), merged with HAL links (HAL-NOTES rule 12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import halnav
from halnav._http import parse_link_header


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (['<https://h/2>; rel="next"'], [("https://h/2", {"rel": "next"})]),
        (["</1>; rel=first, </9>; rel=last"], [("/1", {"rel": "first"}), ("/9", {"rel": "last"})]),
        (['<a>; rel="next prev"'], [("a", {"rel": "next prev"})]),
        (['<x>; REL=item; title="a, b; c"'], [("x", {"rel": "item", "title": "a, b; c"})]),
        (["<x>; rel=a; rel=b"], [("x", {"rel": "a"})]),  # the first of a repeated one wins
        (['<x>; rel="q\\"uote"'], [("x", {"rel": 'q"uote'})]),
        (["<a>; rel=one", "<b>; rel=two"], [("a", {"rel": "one"}), ("b", {"rel": "two"})]),
        (["garbage, <c>; rel=self"], [("c", {"rel": "self"})]),  # a malformed value skipped
        (["<https://h/;a,b>; rel=x"], [("https://h/;a,b", {"rel": "x"})]),  # commas in <>
        ([""], []),
    ],
)
def test_link_header_values_parse_as_rfc_8288_says(
    values: list[str], expected: list[tuple[str, dict[str, str]]]
) -> None:
    assert parse_link_header(values) == expected


async def test_header_links_join_the_documents_links_and_a_walk_follows_them(
    tmp_path: Path,
) -> None:
    """A GitHub-style API: JSON bodies, paging only in ``Link``. The navigator merges the
    header links (several rels in one value, unquoted rels, no duplicates of body links,
    ``anchor`` for another resource left out) and a crawl walks every page."""

    async def page(request: web.Request) -> web.Response:
        n = int(request.query.get("page", "1"))
        links = [f'</items?page={n + 1}>; rel="next"'] if n < 3 else []
        links.append("</items?page=1>; rel=first")
        links.append('</items?page=1>; rel="start first"')  # first twice: one link
        links.append('</other>; rel=describedby; anchor="/somewhere-else"')
        body = {
            "page": n,
            "_links": {"self": {"href": f"/items?page={n}"}, "first": {"href": "/items?page=1"}},
        }
        return web.json_response(body, headers={"Link": ", ".join(links)})

    app = web.Application()
    app.router.add_get("/items", page)
    async with TestServer(app, host="127.0.0.1") as server:
        root = str(server.make_url("/items"))
        async with halnav.Navigator(root) as nav:
            doc = await nav.get(root + "?page=1")
            second = await nav.follow(doc, "next")
            summary = await halnav.crawl(nav, [root + "?page=1"], output=tmp_path / "w.jsonl")
    assert doc.link("next").href == root + "?page=2"
    assert len(doc.links_for("first")) == 1  # the body's and the headers' are one
    assert doc.link("start").href.endswith("/items?page=1")
    assert "describedby" not in doc.rels
    assert any("is about '/somewhere-else'" in problem for problem in doc.problems)
    assert second.state["page"] == 2
    assert summary.documents == 3
    assert summary.complete
