"""Document, Link and Action lookups, selectors and template expansion (``halnav._model``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import uritemplate
from seed import REQUEST_URL, SEED_JSON, shared_seed_json

import halnav
from halnav import Document, Link
from halnav.errors import ActionNotFoundError, LinkNotFoundError, MissingVariablesError

ORG = "https://abc.tech.local:4443/v5/RestoreSessions/1ae9f2e8-02ba-49c6-9dbd-d0c17cceaf4c/organization"


@pytest.fixture
def seed_doc() -> Document:
    """The seed organization document, parsed from its raw bytes."""
    return halnav.parse(SEED_JSON.encode(), REQUEST_URL)


# -- the seed document ---------------------------------------------------------


def test_embedded_seed_matches_shared_page() -> None:
    """The embedded seed JSON equals the JSON extracted from the shared HTML page."""
    shared = shared_seed_json()
    if shared is None:
        pytest.skip(
            "the Veeam seed page (../shared/seed/*.txt, the docs page halnav's seed JSON was "
            "taken from) is not next to this clone; the embedded copy is tested by the others"
        )
    assert json.loads(SEED_JSON) == shared


def test_seed_rels_and_actions(seed_doc: Document) -> None:
    """The seed has rels mailboxes and self, and actions exporttoPst and search."""
    assert seed_doc.rels == ("mailboxes", "self")
    assert seed_doc.action_names == ("exporttoPst", "search")


def test_seed_actions_post_to_absolute_target(seed_doc: Document) -> None:
    """Both seed actions POST to the absolute .../organization/action URL."""
    for name in ("exporttoPst", "search"):
        action = seed_doc.action(name)
        assert action.method == "POST"
        assert action.target == ORG + "/action"
        assert action.target.startswith("https://")
        assert action.target.endswith("/organization/action")
        assert action.source == "_actions"
        assert action.context == REQUEST_URL


def test_seed_state_is_exactly_id_and_name(seed_doc: Document) -> None:
    """The state holds only the domain fields, no reserved keys."""
    assert dict(seed_doc.state) == {
        "id": "673b91dc-b4a7-4d49-8318-04ef47c0ac50",
        "name": "westsupport.onmicrosoft.com (6/26/2017 3:07:39 PM)",
    }
    assert seed_doc["id"] == "673b91dc-b4a7-4d49-8318-04ef47c0ac50"


def test_seed_identity(seed_doc: Document) -> None:
    """The url is the request URL; self_url and canonical_url are the self href."""
    assert seed_doc.url == REQUEST_URL
    assert seed_doc.self_url == ORG
    assert seed_doc.canonical_url == ORG
    assert seed_doc.link("mailboxes").href == ORG + "/mailboxes"
    assert seed_doc.link("mailboxes").context == REQUEST_URL


def test_action_lookup_is_case_insensitive(seed_doc: Document) -> None:
    """``action("exportToPst")`` finds the action the server spells ``exporttoPst``."""
    assert seed_doc.action("exportToPst").name == "exporttoPst"
    assert seed_doc.find_action("EXPORTTOPST") is seed_doc.actions["exporttoPst"]


def test_find_action_missing_is_none(seed_doc: Document) -> None:
    """``find_action`` returns None for an unknown action."""
    assert seed_doc.find_action("nope") is None


def test_action_missing_lists_available(seed_doc: Document) -> None:
    """``action`` raises ActionNotFoundError listing the actions present."""
    with pytest.raises(ActionNotFoundError) as info:
        seed_doc.action("nope")
    assert "exporttoPst, search" in str(info.value)
    assert info.value.available == ("exporttoPst", "search")
    assert info.value.url == REQUEST_URL


def test_link_missing_lists_rels_and_url(seed_doc: Document) -> None:
    """``link`` raises LinkNotFoundError naming the document URL and the rels present."""
    with pytest.raises(LinkNotFoundError) as info:
        seed_doc.link("mailbox")
    message = str(info.value)
    assert "mailboxes, self" in message
    assert REQUEST_URL in message
    assert "'mailbox'" in message
    assert isinstance(info.value, LookupError)


def test_seed_repr(seed_doc: Document) -> None:
    """The repr shortens the URL, names the resource (cut at 40) and lists rels and actions."""
    assert repr(seed_doc) == (
        "<Document .../0800471b-d0e2-422b-9d7c-35d15661c3fb/Organization "
        "'westsupport.onmicrosoft.com (6/26/2017 …' "
        "rels=[mailboxes, self] actions=[exporttoPst, search]>"
    )


def test_repr_names_the_resource_from_its_state() -> None:
    """A mailbox shows its name, a message its subject; a server's control characters do not
    reach the terminal through it."""
    mailbox = halnav.parse({"email": "alice@contoso.com", "id": "m1"}, "https://h/m/m1")
    item = halnav.parse({"subject": "Q3\x1b[2J  invoice", "name": ""}, "https://h/i/1")
    assert mailbox.title == "alice@contoso.com"
    assert repr(mailbox) == "<Document https://h/m/m1 'alice@contoso.com' rels=[]>"
    assert item.title == "Q3\x1b[2J invoice"
    assert "\x1b" not in repr(item)
    assert halnav.parse({"name": 3}, "https://h/x").title is None


# -- reprs and small accessors -------------------------------------------------


def test_repr_short_url_items_and_embedded() -> None:
    """A short URL is shown whole; item counts and embedded rels appear in the repr."""
    doc = halnav.parse({"_embedded": {"item": [{"a": 1}, {"a": 2}]}}, "https://h/v5/o")
    assert repr(doc) == "<Document https://h/v5/o rels=[] items=2 embedded=[item]>"


def test_repr_short_url_keeps_query() -> None:
    """A shortened URL keeps its query string."""
    doc = halnav.parse({}, "https://h/v5/a/b/c?offset=0")
    assert repr(doc) == "<Document .../b/c?offset=0 rels=[]>"


def test_link_and_action_reprs() -> None:
    """Link and Action reprs show rel, href, templated and name."""
    link = Link("https://h/x{?q}", "search", "https://h/", True, {"name": "n"})
    assert repr(link) == "<Link search -> https://h/x{?q} templated name='n'>"
    assert repr(Link("https://h/x", "a", "https://h/")) == "<Link a -> https://h/x>"
    doc = halnav.parse({"_actions": {"go": {"uri": "/go"}}}, "https://h/")
    assert repr(doc.action("go")) == "<Action go POST https://h/go>"


def test_link_property_accessors() -> None:
    """Link accessors read string props and give None for absent or non-string ones."""
    props = {
        "name": "n",
        "title": "t",
        "type": "application/hal+json",
        "deprecation": "https://h/dep",
        "profile": "https://h/p",
        "hreflang": "en",
    }
    link = Link("https://h/x", "a", "https://h/", props=props)
    assert (link.name, link.title, link.type) == ("n", "t", "application/hal+json")
    assert (link.deprecation, link.profile, link.hreflang) == ("https://h/dep", "https://h/p", "en")
    assert Link("https://h/x", "a", "https://h/", props={"name": 3}).name is None


def test_document_is_not_iterable_but_indexable() -> None:
    """Iterating a Document is refused; ``doc[key]`` reads state."""
    doc = halnav.parse({"a": 1}, "https://h/")
    assert doc["a"] == 1
    with pytest.raises(TypeError, match="explicitly"):
        iter(doc)


def test_self_url_absent() -> None:
    """Without a self link, self_url is None and canonical_url is the fetch URL."""
    doc = halnav.parse({}, "https://h/x")
    assert doc.self_url is None
    assert doc.canonical_url == "https://h/x"


# -- selectors -------------------------------------------------------------------

ITEMS: dict[str, Any] = {
    "_links": {
        "self": {"href": "/list"},
        "item": [
            {"href": "/a", "name": "x", "title": "Alpha"},
            {"href": "/b", "name": "y", "title": "Beta", "hidden": True},
            {"href": "/c", "title": "Gamma"},
        ],
        "empty": [],
    }
}


@pytest.fixture
def items_doc() -> Document:
    """A document with three ``item`` links and one empty rel."""
    return halnav.parse(ITEMS, "https://h/list")


@pytest.mark.parametrize(
    ("selector", "hrefs"),
    [
        ("item", ["/a", "/b", "/c"]),
        ("item[0]", ["/a"]),
        ("item[1]", ["/b"]),
        ("item[-1]", ["/c"]),
        ("item[3]", []),
        ("item[-4]", []),
        ("item[name:x]", ["/a"]),
        ("item[name:y]", ["/b"]),
        ("item[title:Gamma]", ["/c"]),
        ("item[title:Nope]", []),
        ("item[hidden:true]", ["/b"]),
        ("nope", []),
        ("nope[0]", []),
    ],
)
def test_links_for_selectors(items_doc: Document, selector: str, hrefs: list[str]) -> None:
    """Index, negative index, out-of-range and property selectors pick the right links."""
    assert [link.href for link in items_doc.links_for(selector)] == [
        "https://h" + href for href in hrefs
    ]


def test_selector_absent_property_does_not_match_none(items_doc: Document) -> None:
    """``rel[name:None]`` does not match links that have no name."""
    assert items_doc.links_for("item[name:None]") == ()


def test_find_link_vs_link_vs_links_for(items_doc: Document) -> None:
    """find_link gives the first or None, link the first or raises, links_for all or ()."""
    assert items_doc.find_link("item") is items_doc.links["item"][0]
    assert items_doc.link("item[name:y]").href == "https://h/b"
    assert items_doc.find_link("item[name:z]") is None
    assert items_doc.links_for("item[name:z]") == ()
    with pytest.raises(LinkNotFoundError, match=r"item\[name:z\]"):
        items_doc.link("item[name:z]")


def test_empty_rel_not_in_rels(items_doc: Document) -> None:
    """A rel with an empty array is kept in ``links`` but is not listed in ``rels``."""
    assert items_doc.links["empty"] == ()
    assert items_doc.rels == ("item", "self")
    assert items_doc.find_link("empty") is None


def test_iana_rel_is_case_insensitive(items_doc: Document) -> None:
    """``Self`` and ``ITEM`` find ``self`` and ``item`` (RFC 8288)."""
    assert items_doc.link("Self").href == "https://h/list"
    assert items_doc.link("ITEM[1]").href == "https://h/b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("item", halnav.lowlevel.Selector("item")),
        ("item[2]", halnav.lowlevel.Selector("item", index=2)),
        ("item[-1]", halnav.lowlevel.Selector("item", index=-1)),
        ("item[name:x]", halnav.lowlevel.Selector("item", key="name", value="x")),
        ("acme:w[title:a b]", halnav.lowlevel.Selector("acme:w", key="title", value="a b")),
        ("item[]", halnav.lowlevel.Selector("item[]")),
    ],
)
def test_parse_selector(text: str, expected: halnav.lowlevel.Selector) -> None:
    """Selectors parse into rel, index or key/value, and print back as written."""
    assert halnav.lowlevel.parse_selector(text) == expected
    assert str(expected) == text


# -- CURIEs and embedded lookups -------------------------------------------------

CURIED: dict[str, Any] = {
    "_links": {
        "curies": [{"name": "acme", "href": "https://docs.acme.com/rels/{rel}", "templated": True}],
        "acme:widgets": {"href": "/widgets"},
        "https://docs.acme.com/rels/gadgets": {"href": "/gadgets"},
        "https://example.com/rel": {"href": "/plain"},
    },
    "_embedded": {"acme:widgets": [{"_links": {"self": {"href": "/widgets/1"}}}]},
}


@pytest.fixture
def curied() -> Document:
    """A document declaring the ``acme`` CURIE."""
    return halnav.parse(CURIED, "https://api.test/")


def test_curie_compact_and_expanded_find_link(curied: Document) -> None:
    """``acme:widgets`` and its expanded URI both find the link."""
    compact = curied.link("acme:widgets")
    assert compact.href == "https://api.test/widgets"
    assert curied.link("https://docs.acme.com/rels/widgets") is compact


def test_curie_compact_finds_expanded_key(curied: Document) -> None:
    """A link keyed by the expanded URI is found by its compact form."""
    assert curied.link("acme:gadgets").href == "https://api.test/gadgets"


def test_curies_is_not_a_rel(curied: Document) -> None:
    """``curies`` is recorded as prefix -> template, not as a navigable rel."""
    assert "curies" not in curied.rels
    assert curied.find_link("curies") is None
    assert dict(curied.curies) == {"acme": "https://docs.acme.com/rels/{rel}"}


def test_undeclared_colon_rel_is_not_a_curie(curied: Document) -> None:
    """A URI rel (``https://example.com/rel``) is found as is and not expanded as a curie."""
    assert curied.link("https://example.com/rel").href == "https://api.test/plain"
    assert "https" not in curied.curies
    assert curied.find_link("acme:rel") is None
    assert curied.find_link("https://docs.acme.com/rels/rel") is None


def test_embedded_for_accepts_curie_forms(curied: Document) -> None:
    """``embedded_for`` finds embedded documents under compact or expanded rels."""
    (widget,) = curied.embedded_for("acme:widgets")
    assert widget.url == "https://api.test/widgets/1"
    assert curied.embedded_for("https://docs.acme.com/rels/widgets") == (widget,)
    assert curied.embedded_for("acme:nope") == ()


def test_embedded_for_finds_an_embedded_only_rel_in_any_case_and_form() -> None:
    """A rel only ``_embedded`` has (no link, no ``self``): case and CURIE forms still work."""
    doc = halnav.parse(
        {
            "_links": {"curies": [{"name": "ex", "href": "http://r/{rel}", "templated": True}]},
            "_embedded": {"ex:Orders": [{"n": 1}]},
        },
        "https://h/",
    )
    assert "ex:Orders" not in doc.links
    (order,) = doc.embedded_for("ex:Orders")
    assert doc.embedded_for("ex:orders") == doc.embedded_for("http://r/Orders") == (order,)


# -- expansion ---------------------------------------------------------------------

ORACLE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("https://h/x{?a,b}", {"a": "1", "b": "two words"}),
    ("https://h/x{?a,b}", {"a": "1"}),
    ("https://h/x?fixed=1{&x}", {"x": "y/z"}),
    ("https://h/users{/id}", {"id": "AAAA=="}),
    ("https://h/users{/id*}", {"id": ["a", "b"]}),
    ("https://h/files/{+path}", {"path": "a/b c/d"}),
    ("https://h/doc{#f}", {"f": "sec 1"}),
    ("https://h/q{?list*}", {"list": ["red", "green"]}),
    ("https://h/q{?keys*}", {"keys": {"k1": "v1", "k2": "v 2"}}),
    ("https://h/q{?keys}", {"keys": {"k1": "v1"}}),
    ("https://h/p/{var:3}", {"var": "value"}),
    ("https://h/p{/var:1,id}", {"var": "value", "id": "7"}),
    ("https://h/m{;x,y}", {"x": "1", "y": "2"}),
    ("https://h/{.ext}", {"ext": "json"}),
]


@pytest.mark.parametrize(("href", "values"), ORACLE_CASES)
def test_expand_matches_uritemplate(href: str, values: dict[str, Any]) -> None:
    """Expansion agrees with uritemplate on string values (RFC 6570 levels 1-4)."""
    link = Link(href, "r", "https://h/", True)
    assert link.expand(**values) == uritemplate.expand(href, values)


def test_expand_offset_zero() -> None:
    """``offset=0`` expands to ``offset=0``, where plain uritemplate gives ``offset=``."""
    href = "https://h/v5/m{?offset,limit}"
    link = Link(href, "m", "https://h/v5/o", True)
    assert link.expand(offset=0, limit=30) == "https://h/v5/m?offset=0&limit=30"
    assert uritemplate.expand(href, offset=0, limit=30) == "https://h/v5/m?offset=&limit=30"


def test_expand_booleans_and_numbers() -> None:
    """Booleans expand as true/false, numbers as their decimal text, in lists and maps too."""
    link = Link("https://h/s{?deep,ratio,ids,opts*}", "s", "https://h/", True)
    assert link.expand(deep=False, ratio=0.5, ids=[0, 1], opts={"x": True}) == (
        "https://h/s?deep=false&ratio=0.5&ids=0,1&x=true"
    )


def test_expand_none_is_undefined() -> None:
    """A None value expands to nothing, like an undefined variable."""
    link = Link("https://h/s{?a,b}", "s", "https://h/", True)
    assert link.expand(a=None, b="1") == "https://h/s?b=1"


def test_expand_missing_path_variable() -> None:
    """A missing path variable raises MissingVariablesError naming it and listing all variables."""
    link = Link("https://h/u{/id}{?q}", "u", "https://h/", True)
    with pytest.raises(MissingVariablesError) as info:
        link.expand(q="x")
    assert info.value.missing == ("id",)
    assert info.value.wanted == ("id", "q")
    assert "needs id" in str(info.value)
    assert "it takes: id, q" in str(info.value)


def test_expand_unknown_variable() -> None:
    """An unknown variable raises MissingVariablesError with ``.unknown``."""
    link = Link("https://h/u{?q}", "u", "https://h/", True)
    with pytest.raises(MissingVariablesError) as info:
        link.expand(q="1", qq="2")
    assert info.value.unknown == ("qq",)
    assert info.value.missing == ()
    assert "does not take qq" in str(info.value)


def test_expand_query_variables_optional() -> None:
    """Query variables (``{?..}``, ``{&..}``) may all be left out."""
    link = Link("https://h/u?x=1{&a}{?b}", "u", "https://h/", True)
    assert link.expand() == "https://h/u?x=1"


def test_expand_relative_template_resolved_after_expansion() -> None:
    """A template starting with an expression is resolved against the context once expanded."""
    doc = halnav.parse(
        {"_links": {"find": {"href": "{/id}{?q}", "templated": True}}}, "https://h/v5/items"
    )
    link = doc.link("find")
    assert link.href == "{/id}{?q}"
    assert link.expand(id="7", q="a") == "https://h/7?q=a"


def test_expand_untemplated() -> None:
    """A non-templated link expands to its href and refuses variables."""
    link = Link("https://h/x", "x", "https://h/")
    assert link.expand() == "https://h/x"
    assert link.variables == frozenset()
    with pytest.raises(MissingVariablesError) as info:
        link.expand(a=1)
    assert info.value.unknown == ("a",)


def test_variables_property() -> None:
    """``variables`` lists every variable of the template."""
    link = Link("https://h/{a}/x{/b}{?c,d}{&e}", "x", "https://h/", True)
    assert link.variables == frozenset({"a", "b", "c", "d", "e"})


def test_veeam_actions_are_built_lazily_and_equal_eager_ones() -> None:
    """Plain Veeam actions parse to a read-only LazyActions equal to eagerly built Actions."""
    raw = {
        "_links": {"self": {"href": "https://h/v5/x"}},
        "_actions": {"search": {"uri": "https://h/v5/x/action", "method": "post"}},
    }
    doc = halnav.parse(raw, "https://h/v5/x")
    assert type(doc.actions).__name__ == "LazyActions"
    assert "search" in doc.actions
    assert "nope" not in doc.actions
    assert len(doc.actions) == 1
    action = doc.actions["search"]
    assert action is doc.actions["search"]  # built once
    assert (action.name, action.method, action.target) == (
        "search",
        "POST",
        "https://h/v5/x/action",
    )
    assert "search" in repr(doc.actions)
    with pytest.raises(KeyError):
        doc.actions["nope"]
    assert not hasattr(doc.actions, "__setitem__")
    # An entry with an extra key is not the plain shape: everything is built eagerly.
    raw["_actions"]["other"] = {"uri": "/a", "method": "GET", "hint": "x"}
    eager = halnav.parse(raw, "https://h/v5/x")
    assert type(eager.actions).__name__ == "mappingproxy"
    assert eager.actions["search"] == action


def test_selectors_pick_links_by_any_property_or_all_of_them() -> None:
    """``rel[title:x]``, ``rel[type:x]``, ``rel[hreflang:x]``, ``rel[profile:x]``, ``rel[*]``."""
    doc = halnav.parse(
        {"_links": {"self": {"href": "/d"}, "alt": [
            {"href": "/en", "hreflang": "en", "type": "text/html", "title": "English"},
            {"href": "/de", "hreflang": "de", "type": "application/json", "profile": "/p/v2"},
        ]}},
        "https://h/d",
    )  # fmt: skip
    assert doc.link("alt[hreflang:de]").href == "https://h/de"
    assert doc.link("alt[title:English]").href == "https://h/en"
    assert doc.link("alt[type:application/json]").href == "https://h/de"
    assert doc.link("alt[profile:/p/v2]").href == "https://h/de"
    assert [link.href for link in doc.links_for("alt[*]")] == ["https://h/en", "https://h/de"]
    assert halnav.lowlevel.parse_selector("alt[*]") == halnav.lowlevel.Selector("alt")
