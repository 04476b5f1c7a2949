"""The passive graph index (``halnav._graph``): nodes, aliases, edges, actions, export."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import halnav
from halnav import Action, Document, Link
from halnav._graph import Graph, GraphStatistics, Node
from halnav._urls import canonical_url

BASE = "https://vbo.example:4443/v5"
ORG = f"{BASE}/restoresessions/1ae9/organization"
MAILBOXES = f"{ORG}/mailboxes"


def doc(
    url: str,
    links: dict[str, str | list[str]] | None = None,
    *,
    self_url: str | None = None,
    actions: tuple[str, ...] = (),
    templated: dict[str, str] | None = None,
    items: tuple[Document, ...] = (),
    embedded: dict[str, tuple[Document, ...]] | None = None,
) -> Document:
    """A Document with the given links (``self`` added when ``self_url`` is given)."""
    table: dict[str, tuple[Link, ...]] = {}
    if self_url is not None:
        table["self"] = (Link(self_url, "self", url),)
    for rel, hrefs in (links or {}).items():
        many = [hrefs] if isinstance(hrefs, str) else hrefs
        table[rel] = tuple(Link(href, rel, url) for href in many)
    for rel, href in (templated or {}).items():
        table[rel] = (Link(href, rel, url, templated=True),)
    return Document(
        url=url,
        links=MappingProxyType(table),
        actions=MappingProxyType({n: Action(n, "POST", f"{url}/action", url) for n in actions}),
        items=items,
        embedded=MappingProxyType(embedded or {}),
    )


@pytest.fixture
def graph() -> Graph:
    """An organization with two mailboxes, one of them fetched."""
    g = Graph()
    g.add(
        doc(ORG, {"mailboxes": MAILBOXES}, self_url=ORG, actions=("exporttoPst", "search")),
    )
    g.add(
        doc(MAILBOXES, {"mailbox": [f"{MAILBOXES}/m1", f"{MAILBOXES}/m2"], "up": ORG}),
        parent=ORG,
        rel="mailboxes",
    )
    g.add(
        doc(f"{MAILBOXES}/m1", {"folders": f"{MAILBOXES}/m1/folders"}, self_url=f"{MAILBOXES}/m1")
    )
    return g


# -- identity ----------------------------------------------------------------------


def test_request_url_and_self_are_one_node() -> None:
    """A request URL whose answer names another self becomes an alias of that one node."""
    g = Graph()
    request = f"{BASE}/RestoreSessions/0800/Organization"
    url = g.add(doc(request, {"mailboxes": MAILBOXES}, self_url=ORG), request_url=request)
    assert url == ORG
    assert len(g) == 2  # the organization and the mailboxes it links to
    assert g.resolve(request) == ORG
    assert g.resolve(ORG) == ORG
    assert request in g
    assert g.is_fetched(request)
    assert g.neighbors(request, "mailboxes") == (MAILBOXES,)
    assert g.statistics().aliases == 1
    assert g.to_json()["aliases"] == {request: ORG}


def test_self_differing_in_host_case_and_default_port_is_the_same_node() -> None:
    """``HTTPS://VBO.example:443/x`` and ``https://vbo.example/x`` are one node, no alias."""
    g = Graph()
    url = g.add(
        doc("https://vbo.example/v5/jobs", self_url="HTTPS://VBO.Example:443/v5/jobs"),
        request_url="https://vbo.example/v5/jobs#top",
    )
    assert url == "https://vbo.example/v5/jobs"
    assert len(g) == 1
    assert g.statistics().aliases == 0
    assert g.resolve("https://VBO.EXAMPLE:443/v5/jobs") == url


def test_alias_of_a_linked_node_retargets_its_incoming_edges() -> None:
    """A linked URL that turns out to be an alias: edges to it now reach the canonical node."""
    g = Graph()
    g.add(doc(ORG, {"mailboxes": f"{MAILBOXES}?offset=0"}, self_url=ORG))
    assert g.neighbors(ORG, "mailboxes") == (f"{MAILBOXES}?offset=0",)
    g.add(
        doc(f"{MAILBOXES}?offset=0", self_url=MAILBOXES),
        request_url=f"{MAILBOXES}?offset=0",
        parent=ORG,
        rel="mailboxes",
    )
    assert g.neighbors(ORG, "mailboxes") == (MAILBOXES,)
    assert g.predecessors(MAILBOXES) == (ORG,)
    stats = g.statistics()
    assert stats == GraphStatistics(nodes=2, fetched=2, edges=3, aliases=1)
    assert list(g.edges()) == [
        (ORG, "self", ORG),
        (ORG, "mailboxes", MAILBOXES),
        (MAILBOXES, "self", MAILBOXES),
    ]


def test_alias_of_a_fetched_node_merges_its_edges_and_actions() -> None:
    """A node fetched on its own and later found to be an alias hands over what it had."""
    g = Graph()
    g.add(doc(f"{ORG}/old", {"next": f"{ORG}/n"}, actions=("start",)))
    g.add(doc(f"{ORG}/old", {"prev": f"{ORG}/p"}, self_url=ORG), request_url=f"{ORG}/old")
    assert set(g.neighbors(ORG)) == {ORG, f"{ORG}/n", f"{ORG}/p"}
    assert g.actions(ORG) == ("start",)
    assert g.statistics() == GraphStatistics(nodes=3, fetched=1, edges=3, aliases=1)


def test_key_function_applies_after_canonical_url() -> None:
    """A ``key`` (the Veeam profile case-folds paths) merges URLs differing in path case."""
    g = Graph(key=str.lower)
    g.add(doc(f"{BASE}/Jobs", {"Job": f"{BASE}/Jobs/A"}, self_url=f"{BASE}/Jobs"))
    assert g.resolve(f"{BASE}/JOBS") == f"{BASE}/jobs"
    assert g.neighbors(f"{BASE}/jobs", "job") == (f"{BASE}/jobs/a",)


# -- edges ---------------------------------------------------------------------------


def test_edges_by_rel(graph: Graph) -> None:
    """Every non-templated link is an edge labelled by its rel."""
    assert graph.neighbors(MAILBOXES, "mailbox") == (f"{MAILBOXES}/m1", f"{MAILBOXES}/m2")
    assert graph.neighbors(MAILBOXES, "up") == (ORG,)
    assert graph.neighbors(ORG, "MAILBOXES") == (MAILBOXES,)  # rels compare case-insensitively
    assert graph.neighbors(ORG, "nope") == ()
    assert graph.neighbors("https://unknown.example/") == ()
    assert (ORG, "self", ORG) in set(graph.edges())


def test_parent_rel_records_the_edge_walked() -> None:
    """``parent``/``rel`` add the edge by which the walk reached the document."""
    g = Graph()
    g.add(doc(f"{MAILBOXES}/m1"), parent=ORG, rel="mailbox")
    assert g.neighbors(ORG, "mailbox") == (f"{MAILBOXES}/m1",)
    assert not g.is_fetched(ORG)
    assert g.is_fetched(f"{MAILBOXES}/m1")
    with pytest.raises(ValueError, match="needs the rel"):
        g.add(doc(f"{MAILBOXES}/m2"), parent=ORG)


def test_readding_adds_no_duplicate_edges(graph: Graph) -> None:
    """Adding the same documents again leaves nodes and edges as they were."""
    before = graph.statistics()
    edges = list(graph.edges())
    graph.add(doc(ORG, {"mailboxes": MAILBOXES}, self_url=ORG, actions=("search", "exporttoPst")))
    graph.add(
        doc(MAILBOXES, {"mailbox": [f"{MAILBOXES}/m1", f"{MAILBOXES}/m1"], "up": ORG}),
        parent=ORG,
        rel="mailboxes",
    )
    assert graph.statistics() == before
    assert list(graph.edges()) == edges


def test_templated_links_are_not_edges_but_exported() -> None:
    """A templated link is listed under ``templates``, never as an edge."""
    g = Graph()
    g.add(doc(ORG, self_url=ORG, templated={"search": f"{ORG}/search{{?q}}"}))
    assert g.neighbors(ORG) == (ORG,)
    assert g.to_json()["templates"] == [
        {"source": ORG, "rel": "search", "href": f"{ORG}/search{{?q}}"}
    ]


def test_items_and_embedded_become_fetched_nodes_with_edges() -> None:
    """Page items get ``item`` edges, embedded documents their rel; both count as fetched."""
    body = {
        "offset": 0,
        "limit": 30,
        "_links": {"self": {"href": "/v5/jobs"}},
        "_embedded": {"owner": {"_links": {"self": {"href": "/v5/users/1"}}, "name": "x"}},
        "results": [
            {"id": 1, "_links": {"self": {"href": "/v5/jobs/1"}}},
            {"id": 2, "_links": {"self": {"href": "/v5/jobs/2"}, "log": {"href": "/v5/logs/2"}}},
            {"id": 3},
        ],
    }
    page = halnav.parse(json.dumps(body).encode(), f"{BASE}/jobs?offset=0")
    g = Graph()
    url = g.add(page, request_url=f"{BASE}/jobs?offset=0")
    assert url == f"{BASE}/jobs"
    items = g.neighbors(url, "item")
    assert items[:2] == (f"{BASE}/jobs/1", f"{BASE}/jobs/2")
    assert len(items) == 3
    selfless = items[2]
    assert "#" in selfless
    assert g.resolve(selfless) == selfless  # a self-less item keeps its JSON pointer
    assert g.is_fetched(selfless)
    assert g.neighbors(url, "owner") == (f"{BASE}/users/1",)
    assert g.is_fetched(f"{BASE}/users/1")
    assert g.neighbors(f"{BASE}/jobs/2", "log") == (f"{BASE}/logs/2",)
    assert not g.is_fetched(f"{BASE}/logs/2")


def test_hal_embedded_array_is_indexed_once() -> None:
    """An ``_embedded`` array that is also the page's items gives edges by its rel only."""
    body = {
        "_links": {"self": {"href": "/v5/users"}},
        "_embedded": {
            "users": [{"_links": {"self": {"href": f"/v5/users/{i}"}}} for i in range(3)]
        },
    }
    g = Graph()
    url = g.add(halnav.parse(json.dumps(body).encode(), f"{BASE}/users"))
    assert g.neighbors(url, "users") == tuple(f"{BASE}/users/{i}" for i in range(3))
    assert g.neighbors(url, "item") == ()


def test_neighbors_and_predecessors(graph: Graph) -> None:
    """Neighbors are outgoing targets; predecessors are the other nodes linking in."""
    assert graph.neighbors(ORG) == (ORG, MAILBOXES)
    assert graph.predecessors(ORG) == (MAILBOXES,)
    assert graph.predecessors(f"{MAILBOXES}/m2") == (MAILBOXES,)
    assert graph.predecessors("https://unknown.example/") == ()


def test_find_by_rel_action_and_fetched(graph: Graph) -> None:
    """``find`` filters nodes by an outgoing rel, an action name (any case) and fetched state."""
    assert list(graph.find(rel="mailbox")) == [MAILBOXES]
    assert list(graph.find(action="EXPORTTOPST")) == [ORG]
    assert list(graph.find(action="nope")) == []
    assert list(graph.find(rel="nope")) == []
    assert set(graph.find(fetched=False)) == {f"{MAILBOXES}/m2", f"{MAILBOXES}/m1/folders"}
    assert set(graph.find(fetched=True)) == {ORG, MAILBOXES, f"{MAILBOXES}/m1"}
    assert list(graph.find(rel="self", action="search", fetched=True)) == [ORG]


def test_actions_latest_fetch_wins(graph: Graph) -> None:
    """Actions are sorted names from the latest fetch of a node."""
    assert graph.actions(ORG) == ("exporttoPst", "search")
    graph.add(doc(ORG, self_url=ORG, actions=("restore",)))
    assert graph.actions(ORG) == ("restore",)
    graph.add(doc(ORG, self_url=ORG))
    assert graph.actions(ORG) == ()
    assert graph.actions("https://unknown.example/") == ()


def test_node_view_and_unknown_node(graph: Graph) -> None:
    """``node`` builds a value; an unknown URL raises KeyError naming it."""
    assert graph.node(ORG) == Node(
        url=ORG,
        fetched=True,
        links=(("self", ORG), ("mailboxes", MAILBOXES)),
        actions=("exporttoPst", "search"),
    )
    assert graph.node(f"{MAILBOXES}/m2").fetched is False
    with pytest.raises(KeyError, match=r"unknown\.example"):
        graph.node("https://unknown.example/x")
    # A path prefix that was never linked is not a node.
    assert f"{BASE}/restoresessions" not in graph
    assert 42 not in graph


def test_statistics_and_repr(graph: Graph) -> None:
    """Statistics count nodes, fetched nodes, edges and aliases; repr summarises them."""
    assert graph.statistics() == GraphStatistics(nodes=5, fetched=3, edges=7, aliases=0)
    assert len(graph) == 5
    assert repr(graph) == "<Graph nodes=5 fetched=3 edges=7>"


# -- canonical URLs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://vbo.example:4443/v5/a", "https://vbo.example:4443/v5/a"),
        ("HTTPS://VBO.Example:4443/v5/A", "https://vbo.example:4443/v5/A"),
        ("https://vbo.example:443/v5/a", "https://vbo.example/v5/a"),
        ("http://vbo.example:80/v5/a", "http://vbo.example/v5/a"),
        ("http://vbo.example:443/v5/a", "http://vbo.example:443/v5/a"),
        ("https://vbo.example:/x", "https://vbo.example/x"),
        ("https://vbo.example", "https://vbo.example/"),
        ("https://vbo.example?x=1", "https://vbo.example/?x=1"),
        ("https://h/folders/AAMk%3D?id=Ab%3d#frag", "https://h/folders/AAMk%3D?id=Ab%3d"),
        ("https://User:PW@H.example/x", "https://User:PW@h.example/x"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("urn:Example:X#y", "urn:Example:X"),
        ("/relative/Path#f", "/relative/Path"),
    ],
)
def test_canonical_url_rules(url: str, expected: str) -> None:
    """Scheme and host lower-cased, default port, fragment dropped; path and query kept."""
    assert canonical_url(url) == expected


@given(
    st.builds(
        "{}://{}{}{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "Https", "ftp"]),
        st.from_regex(r"[A-Za-z0-9.\-]{1,12}(:[0-9]{0,4})?", fullmatch=True),
        st.text(alphabet="/abcAB%3D=-_", max_size=20),
        st.sampled_from(["", "?q=A%3D", "?"]),
        st.sampled_from(["", "#", "#frag"]),
    )
    | st.text(max_size=40)
)
def test_canonical_url_is_idempotent(url: str) -> None:
    """Canonicalising a canonical URL changes nothing."""
    once = canonical_url(url)
    assert canonical_url(once) == once


# -- export -------------------------------------------------------------------------------


def test_to_json_round_trips(graph: Graph) -> None:
    """``to_json`` is plain JSON data listing every node and edge."""
    data = graph.to_json()
    assert json.loads(json.dumps(data)) == data
    assert {n["url"] for n in data["nodes"]} == {
        ORG,
        MAILBOXES,
        f"{MAILBOXES}/m1",
        f"{MAILBOXES}/m2",
        f"{MAILBOXES}/m1/folders",
    }
    assert {"url": ORG, "fetched": True, "actions": ["exporttoPst", "search"]} in data["nodes"]
    assert [(e["source"], e["rel"], e["target"]) for e in data["edges"]] == list(graph.edges())
    assert data["aliases"] == {}


def _quoted_graph() -> Graph:
    g = Graph()
    g.add(doc(ORG, {"weird": f'{BASE}/q"uote\\d', "mailboxes": MAILBOXES}, self_url=ORG))
    return g


def test_to_dot_has_every_edge_and_escapes_quotes(graph: Graph) -> None:
    """The DOT output has a labelled edge per graph edge but loops (``self``), and escapes
    ``"`` and ``\\``."""
    dot = graph.to_dot()
    assert dot.startswith("digraph halnav {")
    drawn = [(s, r, t) for s, r, t in graph.edges() if s != t]
    assert len(drawn) < graph.statistics().edges  # the fixture has self links
    assert dot.count(" -> ") == len(drawn)
    assert "self" not in {r for s, r, t in drawn}
    for _, rel, _ in drawn:
        assert f'[label="{rel}"]' in dot
    quoted = _quoted_graph().to_dot()
    assert 'label="https://vbo.example:4443/v5/q\\"uote\\\\d"' in quoted


def test_to_mermaid_has_every_edge_and_escapes_quotes(graph: Graph) -> None:
    """The Mermaid flowchart has an edge per graph edge but loops; quotes become ``#quot;``;
    ``labels`` put a person's names on the nodes."""
    text = graph.to_mermaid()
    assert text.startswith("flowchart LR\n")
    assert text.count(" -->|") == sum(1 for s, _r, t in graph.edges() if s != t)
    assert '|"self"|' not in text
    named = graph.to_mermaid(labels={f"{MAILBOXES}/m1": "alice@contoso.com"})
    assert '["alice@contoso.com"]' in named
    assert 'n0 -->|"mailboxes"| n1' in text
    quoted = _quoted_graph().to_mermaid()
    assert "#quot;" in quoted
    assert '"uote' not in quoted


def test_write_by_suffix(graph: Graph, tmp_path: Path) -> None:
    """``write`` picks JSON, DOT or Mermaid by suffix and refuses other suffixes."""
    graph.write(tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text(encoding="utf-8")) == graph.to_json()
    graph.write(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == graph.to_dot()
    for name in ("g.mmd", "g.mermaid"):
        graph.write(str(tmp_path / name))
        assert (tmp_path / name).read_text(encoding="utf-8") == graph.to_mermaid()
    with pytest.raises(ValueError, match=r"\.json, \.dot, \.mmd, \.mermaid"):
        graph.write(tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


# -- compactness --------------------------------------------------------------------------


def _benchmark() -> Any:
    """``benchmarks/graph_memory.py`` as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "graph_memory.py"
    spec = importlib.util.spec_from_file_location("graph_memory", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.perf
def test_graph_is_more_compact_than_a_dict_of_edge_lists() -> None:
    """50,000 Veeam-like documents take fewer bytes in a Graph than in a dict of edge lists."""
    result = _benchmark().measure(50_000)
    assert result["nodes_per_doc"] > 2
    assert result["edges_per_doc"] == 3
    assert result["graph_bytes_per_doc"] < result["baseline_bytes_per_doc"], result


@pytest.mark.perf
def test_benchmark_tracemalloc_agrees_with_the_sizeof_walk() -> None:
    """The two ways the benchmark measures bytes agree within 10% on a small graph."""
    bench = _benchmark()
    walked = bench.measure(3_000)
    traced = bench.measure(3_000, method="tracemalloc")
    for key in ("graph_bytes_per_doc", "baseline_bytes_per_doc"):
        assert abs(walked[key] - traced[key]) < 0.1 * traced[key], (key, walked, traced)


# -- scaling: nothing on the add path is quadratic -----------------------------------------


def _cpu(run: Any) -> float:
    """The best of three CPU times of ``run()`` (the box may be shared)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def _aliased_walk(n: int) -> Graph:
    """``n`` fetches whose request URL differs from the ``self`` they answer with."""
    g = Graph()
    for i in range(n):
        self_url = f"{MAILBOXES}/m{i}"
        g.add(doc(f"{MAILBOXES}/M{i}", self_url=self_url), request_url=f"{MAILBOXES}/M{i}")
    return g


@pytest.mark.perf
def test_20000_aliases_are_added_in_linear_time() -> None:
    """Adding an alias does not look at the others: 4x the aliases, well under 8x the time."""
    assert _aliased_walk(20_000).statistics().aliases == 20_000
    small = _cpu(lambda: _aliased_walk(5_000))
    large = _cpu(lambda: _aliased_walk(20_000))
    assert large < 8 * small, (small, large)


@pytest.mark.perf
def test_wide_sources_are_added_in_linear_time() -> None:
    """A document with 20,000 links, or 20,000 ``parent`` edges to one node, stays linear."""

    def links(n: int) -> None:
        Graph().add(doc(ORG, {"mailbox": [f"{MAILBOXES}/m{i}" for i in range(n)]}))

    def parents(n: int) -> None:
        g = Graph()
        for i in range(n):
            g.add(doc(f"{MAILBOXES}/m{i}"), parent=MAILBOXES, rel="mailbox")

    for build in (links, parents):
        small = _cpu(lambda build=build: build(5_000))
        large = _cpu(lambda build=build: build(20_000))
        assert large < 8 * small, (build.__name__, small, large)


def test_wide_nodes_deduplicate_like_narrow_ones() -> None:
    """Past the size where a node's edges get a set, re-adding still adds nothing twice."""
    members = [f"{MAILBOXES}/m{i}" for i in range(200)]
    g = Graph()
    g.add(doc(MAILBOXES, {"mailbox": [*members, *members[:50]]}))
    assert g.statistics().edges == 200
    g.add(doc(MAILBOXES, {"mailbox": members[::-1]}))
    for member in members[:100]:
        g.add(doc(member), parent=MAILBOXES, rel="mailbox")
    g.add(doc(f"{MAILBOXES}/new"), parent=MAILBOXES, rel="mailbox")
    assert g.neighbors(MAILBOXES, "mailbox") == (*members, f"{MAILBOXES}/new")
    assert g.statistics().edges == 201


def test_page_items_in_a_wide_page_are_indexed_once() -> None:
    """A 300-item page re-added (and its items added on their own) gains no edge."""
    body = {
        "offset": 0,
        "limit": 300,
        "_links": {"self": {"href": f"{MAILBOXES}/m1/items?offset=0"}},
        "results": [
            {
                "id": i,
                "_links": {
                    "self": {"href": f"{MAILBOXES}/m1/items/{i}"},
                    "mailbox": {"href": f"{MAILBOXES}/m1"},
                },
                "_actions": {"savetoMsg": {"uri": f"{MAILBOXES}/m1/items/{i}/action"}},
            }
            for i in range(300)
        ],
    }
    page = halnav.parse(json.dumps(body).encode(), f"{MAILBOXES}/m1/items?offset=0")
    g = Graph()
    url = g.add(page, request_url=f"{MAILBOXES}/m1/items?offset=0")
    before = g.statistics()
    assert before == GraphStatistics(nodes=302, fetched=301, edges=1 + 300 * 3, aliases=0)
    g.add(page)
    for item in page.items[:10]:
        g.add(item)
    assert g.statistics() == before
    assert g.neighbors(url, "item") == tuple(f"{MAILBOXES}/m1/items/{i}" for i in range(300))
    assert g.actions(f"{MAILBOXES}/m1/items/7") == ("savetoMsg",)  # parsed (lazy) actions


def test_an_alias_follows_its_node_when_that_node_is_merged() -> None:
    """A -> B, then B (a node) turns out to be an alias of C: A now resolves to C."""
    g = Graph()
    a, b, c = (f"{ORG}/{name}" for name in "abc")
    g.add(doc(a, {"x": f"{ORG}/x"}, self_url=b), request_url=a)
    g.add(doc(b, {"y": f"{ORG}/y"}, self_url=c), request_url=b)
    assert g.resolve(a) == c
    assert g.resolve(b) == c
    assert g.to_json()["aliases"] == {a: c, b: c}
    assert set(g.neighbors(a)) == {c, f"{ORG}/x", f"{ORG}/y"}
    assert g.statistics() == GraphStatistics(nodes=3, fetched=1, edges=3, aliases=2)


def test_a_re_pointed_alias_leaves_its_followers_where_they_were() -> None:
    """A -> B -> C by a merge; B later answers with D: B -> D, while A stays at C."""
    g = Graph()
    a, b, c, d = (f"{ORG}/{name}" for name in "abcd")
    g.add(doc(a, self_url=b), request_url=a)
    g.add(doc(b, self_url=c), request_url=b)
    g.add(doc(b, self_url=d), request_url=b)
    assert (g.resolve(a), g.resolve(b)) == (c, d)
    assert g.to_json()["aliases"] == {a: c, b: d}


def test_a_link_with_a_fragment_never_reaches_a_json_pointer_node() -> None:
    """``page#/results/0`` names a self-less item only verbatim; as an href it is the page."""
    body = {"offset": 0, "limit": 1, "_links": {"self": {"href": "/v5/jobs"}}, "results": [{}]}
    g = Graph()
    url = g.add(halnav.parse(json.dumps(body).encode(), f"{BASE}/jobs"))
    (item,) = g.neighbors(url, "item")
    assert item.startswith(f"{url}#")
    g.add(doc(f"{BASE}/other", {"back": item, "up": f"{BASE}/JOBS#x"}))
    assert g.neighbors(f"{BASE}/other", "back") == (url,)
    assert g.resolve(item) == item


def test_host_only_hrefs_are_canonicalised_after_deeper_ones() -> None:
    """``https://host`` (a cached prefix of ``https://host/x``) still becomes ``https://host/``."""
    g = Graph()
    g.add(doc("https://vbo.example/v5/a", {"root": "https://vbo.example"}))
    g.add(doc("https://vbo.example", {"v5": "https://vbo.example/v5"}))
    assert g.neighbors("https://vbo.example/v5/a", "root") == ("https://vbo.example/",)
    assert g.resolve("https://vbo.example") == "https://vbo.example/"
    assert "https://vbo.example/" in g
    assert {n["url"] for n in g.to_json()["nodes"]} == {
        "https://vbo.example/v5/a",
        "https://vbo.example/",
        "https://vbo.example/v5",
    }


def test_benchmark_times_pages_of_items() -> None:
    """The page micro-benchmark indexes every item with its three links and ``item`` edge."""
    result = _benchmark().measure_pages(40)
    assert result["add_us_per_doc"] > 0
    assert 3.9 < result["edges_per_doc"] <= 4, result


# -- the graph against a naive model -------------------------------------------------------

_URLS = [f"https://h/n{i}" for i in range(6)]
_RELS = ["a", "b"]


class GraphAgainstAModel(RuleBasedStateMachine):
    """``Graph`` and a naive model of it (dicts and sets, edges resolved when read) under
    random adds, page items, request URLs that become aliases (merging what a node held)
    and parent edges; they must agree after every step. Any speed work on the graph's
    columns is checked against this."""

    def __init__(self) -> None:
        super().__init__()
        self.graph = Graph()
        self.alias: dict[str, str] = {}  # an alias URL -> the URL it resolves through
        self.known: set[str] = set()
        self.fetched: set[str] = set()
        self.actions: dict[str, set[str]] = {}
        self.edges: set[tuple[str, str, str]] = set()  # raw (source, rel, target)

    def resolve(self, url: str) -> str:
        while url in self.alias:
            url = self.alias[url]
        return url

    def index(self, document: Document) -> str:
        """What Graph.add does to one document and its items, in the model."""
        self_links = document.links.get("self")
        node = self.resolve(self_links[0].href if self_links else document.url)
        self.known.add(node)
        self.fetched.add(node)
        self.actions[node] = set(document.actions)
        for rel, group in document.links.items():
            for link in group:
                self.known.add(link.href)
                self.edges.add((node, rel, link.href))
        for item in document.items:
            self.edges.add((node, "item", self.index(item)))
        return node

    @rule(
        url=st.sampled_from(_URLS),
        own_self=st.booleans(),
        links=st.lists(st.tuples(st.sampled_from(_RELS), st.sampled_from(_URLS)), max_size=4),
        actions=st.frozensets(st.sampled_from(["save", "search"])),
        items=st.lists(st.sampled_from(_URLS), max_size=2, unique=True),
        request=st.none() | st.sampled_from(_URLS),
        parent=st.none() | st.tuples(st.sampled_from(_URLS), st.sampled_from(_RELS)),
    )
    def add(
        self,
        url: str,
        own_self: bool,
        links: list[tuple[str, str]],
        actions: frozenset[str],
        items: list[str],
        request: str | None,
        parent: tuple[str, str] | None,
    ) -> None:
        if request is not None and request in self.alias:
            request = None  # re-pointing an alias is not modelled
        if parent is not None and parent[0] not in self.known:
            parent = None  # a parent is a node the walk met
        grouped: dict[str, list[str]] = {}
        for rel, href in links:
            grouped.setdefault(rel, []).append(href)
        table: dict[str, str | list[str]] = dict(grouped)
        page = tuple(doc(f"{url}#item", self_url=item) for item in items)
        added = doc(
            url, table, self_url=url if own_self else None, actions=tuple(actions), items=page
        )
        got = self.graph.add(
            added,
            request_url=request,
            parent=parent[0] if parent else None,
            rel=parent[1] if parent else None,
        )
        node = self.index(added)
        assert got == node
        if request is not None and self.resolve(request) != node:
            old = self.resolve(request)
            if old in self.known and old in self.fetched:  # a fetched node merges into it
                if not self.actions.get(node):
                    self.actions[node] = self.actions.get(old, set())
                self.fetched.discard(old)
            self.alias[request] = node
            self.known.add(request)
        if parent is not None:
            self.edges.add((parent[0], parent[1], node))

    @invariant()
    def they_agree(self) -> None:
        graph = self.graph
        nodes = {self.resolve(url) for url in self.known}
        assert len(graph) == len(nodes)
        for url in self.known:
            node = self.resolve(url)
            assert graph.resolve(url) == node
            assert graph.is_fetched(url) == (node in self.fetched)
            assert set(graph.actions(url)) == (
                self.actions.get(node, set()) if node in self.fetched else set()
            )
            out = {
                (rel, self.resolve(dst))
                for src, rel, dst in self.edges
                if self.resolve(src) == node
            }
            assert set(graph.node(url).links) == out
            assert set(graph.neighbors(url)) == {dst for _rel, dst in out}


TestGraphAgainstAModel = GraphAgainstAModel.TestCase
TestGraphAgainstAModel.settings = settings(max_examples=150, stateful_step_count=12, deadline=None)
