"""Property tests for the parser: it never fails with anything but a HalnavError."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import halnav
from halnav.errors import DocumentError, HalnavError

URL = "https://h.test/v5/a/b"

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys that steer the parser, mixed with arbitrary text so the structures collide.
KEYS = st.one_of(
    st.sampled_from(
        [
            "_links",
            "_embedded",
            "_actions",
            "_templates",
            "_items",
            "results",
            "offset",
            "limit",
            "self",
            "href",
            "templated",
            "curies",
            "name",
            "uri",
            "method",
            "target",
            "properties",
        ]
    ),
    st.text(max_size=8),
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["/x", "../y", "//evil.test/z", "{/id}", "https://h/{?q}", "?q", "//[x"]),
)

JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=30,
)
# Objects shaped like a resource (reserved key -> rel -> link-ish value), so the
# generator reaches the link, action and template code and not only the root checks.
LINKISH = st.one_of(
    SCALARS, st.dictionaries(KEYS, SCALARS, max_size=4), st.lists(st.dictionaries(KEYS, SCALARS))
)
RESOURCE = st.dictionaries(
    KEYS, st.one_of(JSON, st.dictionaries(KEYS, LINKISH, max_size=4)), max_size=5
)


def parse_outcome(data: Any, *, lenient: bool) -> None:
    """Parse ``data``; only a Document or a HalnavError may come out."""
    try:
        doc = halnav.parse(data, URL, lenient=lenient)
    except HalnavError:
        return
    assert isinstance(doc, halnav.Document)


@SETTINGS
@given(st.one_of(JSON, RESOURCE), st.booleans())
@example({"_links": {"x": {"href": "//[x"}}}, False)
def test_any_json_value_parses_or_raises_halnav_error(value: Any, lenient: bool) -> None:
    """Any JSON value, decoded or as bytes, gives a Document or a HalnavError."""
    parse_outcome(value, lenient=lenient)
    parse_outcome(json.dumps(value).encode(), lenient=lenient)


@SETTINGS
@given(st.binary(max_size=200))
@example(b"1" * 5000)  # longer than Python's int-string limit: a ValueError inside json.loads
def test_random_bytes_parse_or_document_error(data: bytes) -> None:
    """Random bytes give a Document or a DocumentError."""
    try:
        doc = halnav.parse(data, URL)
    except DocumentError:
        return
    assert isinstance(doc, halnav.Document)


# -- HAL-shaped documents ------------------------------------------------------------

SEGMENT = st.text(alphabet="abcxyz019-_~%", min_size=1, max_size=6)
RELATIVE = st.builds(
    lambda prefix, segs: prefix + "/".join(segs),
    st.sampled_from(["", "/", "./", "../", "../../"]),
    st.lists(SEGMENT, min_size=1, max_size=3),
)
ABSOLUTE = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["h.test", "other.test:8443"]),
    RELATIVE,
)
HREF = st.one_of(RELATIVE, ABSOLUTE, st.builds(lambda q: "?q=" + q, SEGMENT))
REL = st.one_of(
    st.sampled_from(["self", "next", "item", "acme:w", "https://rels.test/r"]),
    st.text(alphabet="abcdefgh", min_size=1, max_size=6),
)


@st.composite
def link_values(draw: st.DrawFn) -> Any:
    """A link object, or an array (possibly empty) of them."""

    def one() -> dict[str, Any]:
        link: dict[str, Any] = {"href": draw(HREF)}
        if draw(st.booleans()):
            link["href"] += "{?page}"
            link["templated"] = True
        if draw(st.booleans()):
            link["name"] = draw(SEGMENT)
        return link

    if draw(st.booleans()):
        return one()
    return [one() for _ in range(draw(st.integers(0, 3)))]


@st.composite
def hal_documents(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A HAL resource with random rels, hrefs, curies and optional embedded resources."""
    links: dict[str, Any] = {rel: draw(link_values()) for rel in draw(st.sets(REL, max_size=6))}
    if draw(st.booleans()):
        links["curies"] = [{"name": "acme", "href": "https://d.test/{rel}", "templated": True}]
    doc: dict[str, Any] = {"_links": links, "n": draw(st.integers())}
    if depth < 2 and draw(st.booleans()):
        doc["_embedded"] = {
            rel: draw(st.lists(hal_documents(depth + 1), max_size=2))
            for rel in draw(st.sets(REL, max_size=2))
        }
    return doc


def expected_rels(raw_links: dict[str, Any]) -> set[str]:
    """The generated rels that have at least one link, without ``curies``."""
    return {
        rel
        for rel, value in raw_links.items()
        if rel != "curies" and (not isinstance(value, list) or value)
    }


def check_document(doc: halnav.Document, raw: dict[str, Any]) -> None:
    """Every href is absolute http(s); rels are what was generated (plus synthesised ones)."""
    for links in doc.links.values():
        for link in links:
            assert urlsplit(link.href).scheme in {"http", "https"}, link
            assert urlsplit(link.href).netloc, link
    synthesised = set()
    for rel, docs in doc.embedded.items():
        if any(child.self_url is not None for child in docs):
            synthesised.add(rel)
    assert set(doc.rels) - synthesised == expected_rels(raw["_links"]) - synthesised
    assert expected_rels(raw["_links"]) <= set(doc.rels)
    for rel, raw_children in raw.get("_embedded", {}).items():
        for child, raw_child in zip(doc.embedded[rel], raw_children, strict=True):
            check_document(child, raw_child)


@SETTINGS
@given(hal_documents(), st.booleans())
def test_hal_shaped_documents(raw: dict[str, Any], lenient: bool) -> None:
    """Generated HAL documents parse with absolute http(s) hrefs and the generated rels."""
    text = json.dumps(raw)
    doc = halnav.parse(text, URL, lenient=lenient)
    check_document(doc, json.loads(text))
    if "_embedded" not in raw:
        assert set(doc.rels) == expected_rels(raw["_links"])
