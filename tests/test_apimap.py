"""The API map (resource kinds and the rels between them) and the drawings of a walk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import cli, served

import halnav
from halnav import veeam
from halnav._apimap import api_map, url_template
from halnav.cli import main
from halnav.simulator import SimulatorConfig


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("https://vbo:4443/v5/Organizations", "/v5/Organizations"),
        ("https://vbo:4443/v5/Organizations?offset=30&limit=30", "/v5/Organizations"),
        ("https://h/v8/organizations/3c1d8ee2-4f3a-4bc2-9d3e-6c0a6f2d1b77", "/v8/organizations/{id}"),
        ("https://h/v5/x/mailboxes/alice@contoso.com/folders", "/v5/x/mailboxes/{id}/folders"),
        ("https://h/v5/x/folders/AAAAAOHu2iJ2zxXtodddisuVPRoBAGA-RoRXvp6nx5SmJu7lHs8AAAAAAQ4AAA%3D%3D",
         "/v5/x/folders/{id}"),
        ("https://h/api/orders/42/lines", "/api/orders/{id}/lines"),
        ("https://h/api/v2.1/status", "/api/v2.1/status"),  # a version is not an id
        ("https://h/api/items#/_embedded/item/3", "/api/items#/_embedded/item/{n}"),
        ("https://h", "/"),
    ],
)  # fmt: skip
def test_url_templates_replace_ids_and_keep_kinds(url: str, template: str) -> None:
    assert url_template(url) == template


def test_the_map_counts_kinds_and_leaves_out_paging_within_a_kind() -> None:
    """Two mailboxes are one kind; ``self``/``next`` inside a kind are no rels; others count."""
    base = "https://h/v5/s/1/organization"
    nodes = [
        (f"{base}/mailboxes", True, ()),
        (f"{base}/mailboxes?offset=30", True, ()),
        (f"{base}/mailboxes/alice@x", True, ("search", "exporttoPst")),
        (f"{base}/mailboxes/bob@x", False, ()),
    ]
    edges = [
        (f"{base}/mailboxes", "self", f"{base}/mailboxes"),
        (f"{base}/mailboxes", "next", f"{base}/mailboxes?offset=30"),
        (f"{base}/mailboxes", "item", f"{base}/mailboxes/alice@x"),
        (f"{base}/mailboxes?offset=30", "item", f"{base}/mailboxes/bob@x"),
        (f"{base}/mailboxes/alice@x", "parent", f"{base}/mailboxes"),
    ]
    drawn = api_map(nodes, edges)
    kinds = {kind.template: kind for kind in drawn.kinds}
    page = "/v5/s/{id}/organization/mailboxes"
    one = "/v5/s/{id}/organization/mailboxes/{id}"
    assert kinds[page] == halnav.ResourceKind(page, 2, 0, ())
    assert kinds[one] == halnav.ResourceKind(one, 1, 1, ("exporttoPst", "search"))
    assert drawn.rels == ((page, "item", one, 2), (one, "parent", page, 1))
    text = drawn.to_mermaid()
    assert text.count("-->") == 2
    assert '|"item (2)"|' in text
    assert "actions: exporttoPst, search" in text
    assert drawn.to_dot().count(" -> ") == 2


async def test_graph_map_of_a_veeam_walk_is_small_and_names_the_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`halnav graph walk.jsonl --map`: a few kinds with their actions, every format."""
    walk = tmp_path / "walk.jsonl"
    async with served() as s:
        assert await cli("crawl", s.org, "-o", str(walk), "-q", "--veeam", *s.login) == 0
    documents = sum(1 for line in walk.read_text().splitlines() if '"status"' in line)
    assert main(["graph", str(walk), "--map", "-o", str(tmp_path / "map.json")]) == 0
    data = json.loads((tmp_path / "map.json").read_text())
    templates = {kind["template"].lower(): kind for kind in data["kinds"]}
    mailbox = templates["/v5/restoresessions/{id}/organization/mailboxes/{id}"]
    assert mailbox["fetched"] == 2
    assert "search" in [a.lower() for a in mailbox["actions"]]
    assert len(data["kinds"]) < documents / 3  # collapsed, not one node per document
    assert main(["graph", str(walk), "--map", "-o", str(tmp_path / "map.mmd")]) == 0
    assert "kinds" in capsys.readouterr().out
    assert (tmp_path / "map.mmd").read_text().startswith("flowchart LR")
    assert main(["graph", str(walk), "-o", str(tmp_path / "full.mmd")]) == 0
    full = (tmp_path / "full.mmd").read_text()
    assert '|"self"|' not in full  # no loops in a picture
    names = [
        record.state["name"]
        for record in halnav.read_records(walk)
        if isinstance(record, halnav.DocumentRecord) and "email" in record.state
    ]
    assert names
    assert all(f'["{name}"]' in full for name in names)  # by name, not a base64 URL tail


def test_svg_needs_graphviz_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Graphviz's dot on the PATH, .svg is a clear error and writes nothing."""
    walk = tmp_path / "walk.jsonl"
    walk.write_text('{"url": "https://h/a", "status": 200, "state": {}, "links": {}}\n')
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    assert main(["graph", str(walk), "-o", str(tmp_path / "g.svg")]) == 1
    assert "needs Graphviz's dot on the PATH" in capsys.readouterr().err
    assert not (tmp_path / "g.svg").exists()


def test_a_mermaid_file_beyond_what_mermaid_draws_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """600 edges in a .mmd: written as asked, with a warning naming the map and .dot."""
    walk = tmp_path / "walk.jsonl"
    links = {"item": [f"https://h/items/{i}" for i in range(600)]}
    walk.write_text(json.dumps({"url": "https://h/items", "status": 200, "state": {},
                                "links": links}) + "\n")  # fmt: skip
    assert main(["graph", str(walk), "-o", str(tmp_path / "g.mmd")]) == 0
    err = capsys.readouterr().err
    assert "600 edges; Mermaid draws at most 500" in err
    assert "--map" in err
    assert (tmp_path / "g.mmd").read_text().count("-->") == 600


async def test_the_offline_graph_has_the_live_graphs_nodes_edges_and_aliases(
    tmp_path: Path,
) -> None:
    """A record names the URL it was fetched by when its ``self`` said another, so
    `halnav graph walk.jsonl` aliases like the live graph: no phantom nodes (review #16);
    a page record's ``items`` are its ``item`` edges, also to items met on an earlier page."""
    out = tmp_path / "walk.jsonl"
    # 40 items a folder: several pages each, so the walk reads pages ahead, and past the
    # end of each folder (those empty pages have no record, and must not be in the graph).
    config = SimulatorConfig(organizations=1, mailboxes=2, folders=2, subfolders=0, items=40)
    async with (
        served(config) as s,
        veeam.open_navigator(s.sim.url, username=s.sim.username, password=s.sim.password) as nav,
    ):
        await nav.get(s.org)  # logged in: from here, every request is a GET of the walk
        s.sim.reset_stats()
        await halnav.crawl(nav, [s.org], output=out)
        live = nav.graph.statistics()
        gets = s.sim.stats.requests
    offline = halnav.graph_from_records(out).graph.statistics()
    assert live.aliases > 0  # the walk met documents whose self differs from their link
    fetched = [
        r
        for r in halnav.read_records(out)
        if isinstance(r, halnav.DocumentRecord) and not r.embedded
    ]
    assert gets > len(fetched)  # pages read past a folder's end: fetched, and no record
    assert (offline.nodes, offline.fetched, offline.aliases, offline.edges) == (
        live.nodes, live.fetched, live.aliases, live.edges,
    )  # fmt: skip
    requested = [
        r for r in halnav.read_records(out) if isinstance(r, halnav.DocumentRecord) and r.requested
    ]
    assert len(requested) == live.aliases
