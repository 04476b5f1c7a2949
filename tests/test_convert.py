"""The wire rules (HAL draft-11, HAL-FORMS, Veeam) and the cattrs converter (``halnav._convert``)."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

import halnav
from halnav import Document
from halnav._convert import decode_json, make_converter, parse_document
from halnav.errors import DocumentError, HalnavError, LimitExceededError
from halnav.lowlevel import ParseOptions

URL = "https://h/v5/a/b"


def links_of(doc: Document, rel: str) -> list[str]:
    """The hrefs of ``rel``, in order."""
    return [link.href for link in doc.links_for(rel)]


# -- link objects ------------------------------------------------------------------


def test_single_link_object_becomes_one_tuple() -> None:
    """A rel holding one link object is normalised to a one-element tuple."""
    doc = halnav.parse({"_links": {"next": {"href": "https://h/n"}}}, URL)
    assert isinstance(doc.links["next"], tuple)
    assert links_of(doc, "next") == ["https://h/n"]


def test_link_array_keeps_order() -> None:
    """A rel holding an array keeps every link in order."""
    doc = halnav.parse({"_links": {"item": [{"href": "/1"}, {"href": "/2"}, {"href": "/1"}]}}, URL)
    assert links_of(doc, "item") == ["https://h/1", "https://h/2", "https://h/1"]
    assert all(link.rel == "item" for link in doc.links["item"])


def test_empty_link_array() -> None:
    """An empty array is an empty tuple, and the rel is not listed in ``rels``."""
    doc = halnav.parse({"_links": {"item": []}}, URL)
    assert doc.links["item"] == ()
    assert doc.rels == ()


@pytest.mark.parametrize(("raw", "templated"), [(True, True), ("true", False), (1, False)])
def test_templated_only_when_json_true(raw: object, templated: bool) -> None:
    """``templated`` counts only when it is JSON true (not "true", not 1)."""
    doc = halnav.parse({"_links": {"s": {"href": "/s{?q}", "templated": raw}}}, URL)
    link = doc.link("s")
    assert link.templated is templated
    assert "templated" not in link.props


def test_untemplated_braces_are_flagged() -> None:
    """An href with braces but no ``templated: true`` is kept as is and reported."""
    doc = halnav.parse({"_links": {"s": {"href": "/s{?q}"}}}, URL)
    assert not doc.link("s").templated
    assert doc.problems == ("$._links.s: href looks templated but templated is not true",)


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("../x", "https://h/v5/x"),
        ("/x", "https://h/x"),
        ("x", "https://h/v5/a/x"),
        ("?q=1", "https://h/v5/a/b?q=1"),
        ("#frag", "https://h/v5/a/b#frag"),
        ("", "https://h/v5/a/b"),
        ("https://other/x", "https://other/x"),
    ],
)
def test_relative_href_resolved_against_document_url(href: str, expected: str) -> None:
    """Relative hrefs resolve per RFC 3986 against the document URL."""
    doc = halnav.parse({"_links": {"r": {"href": href}}}, URL)
    assert doc.link("r").href == expected
    assert doc.link("r").context == URL


def test_embedded_hrefs_resolve_against_embedded_self() -> None:
    """An embedded resource's relative hrefs resolve against its own self (ketting #395)."""
    doc = halnav.parse(
        {
            "_embedded": {
                "m": {"_links": {"self": {"href": "/v5/mailboxes/7/"}, "items": {"href": "items"}}}
            }
        },
        URL,
    )
    (mailbox,) = doc.embedded["m"]
    assert mailbox.url == "https://h/v5/mailboxes/7/"
    assert mailbox.link("items").href == "https://h/v5/mailboxes/7/items"
    assert mailbox.link("items").context == "https://h/v5/mailboxes/7/"


def test_an_embedded_relative_self_resolves_against_the_parent_once() -> None:
    """The embedded ``self`` is resolved against the carrier; its other hrefs against it."""
    doc = halnav.parse(
        {"_embedded": {"m": {"_links": {"self": {"href": "m/1"}, "up": {"href": "x"}}}}},
        "https://h/v5/o",
    )
    (mailbox,) = doc.embedded["m"]
    assert mailbox.url == mailbox.link("self").href == "https://h/v5/m/1"
    assert mailbox.link("up").href == "https://h/v5/m/x"


def test_link_base_eve_style() -> None:
    """With ``link_base``, Eve's ``people/ID`` resolves against the API root."""
    eve = {"_links": {"self": {"href": "people/5"}, "parent": {"href": "/"}}, "_id": "5"}
    naive = halnav.parse(eve, "http://eve.test/people/5")
    assert naive.link("self").href == "http://eve.test/people/people/5"
    doc = halnav.parse(eve, "http://eve.test/people/5", link_base="http://eve.test/")
    assert doc.link("self").href == "http://eve.test/people/5"
    assert doc.link("parent").href == "http://eve.test/"


def test_link_base_veeam_v6_without_leading_slash() -> None:
    """With ``link_base``, Veeam v6 ``v6/restoresessions/...`` resolves from the server root."""
    body = {
        "_links": {"self": {"href": "v6/restoresessions/X/organization"}},
        "_embedded": {
            "mailboxes": [
                {
                    "_links": {
                        "self": {"href": "v6/restoresessions/X/organization/mailboxes/M1"},
                        "items": {"href": "v6/restoresessions/X/organization/mailboxes/M1/items"},
                    }
                }
            ]
        },
    }
    url = "https://vbo:4443/v6/restoresessions/X/organization"
    doc = halnav.parse(body, url, link_base="https://vbo:4443/")
    assert doc.self_url == "https://vbo:4443/v6/restoresessions/X/organization"
    (mailbox,) = doc.embedded["mailboxes"]
    assert mailbox.url == "https://vbo:4443/v6/restoresessions/X/organization/mailboxes/M1"
    assert mailbox.link("items").href == mailbox.url + "/items"


def test_protocol_relative_href_changes_origin() -> None:
    """``//evil.test/x`` resolves to another origin; parse keeps it, the transport scopes credentials."""
    doc = halnav.parse({"_links": {"x": {"href": "//evil.test/x"}}}, "https://h/a/b")
    assert doc.link("x").href == "https://evil.test/x"


def test_percent_encoded_ids_preserved() -> None:
    """Percent-encoded ids (``AAAA%3D%3D``) survive byte for byte, absolute or relative."""
    doc = halnav.parse(
        {
            "_links": {
                "abs": {"href": "https://h/v5/folders/AAAA%3D%3D/items"},
                "rel": {"href": "folders/AAAA%3D%3D/items?x=%2F"},
            }
        },
        "https://h/v5/o",
    )
    assert doc.link("abs").href == "https://h/v5/folders/AAAA%3D%3D/items"
    assert doc.link("rel").href == "https://h/v5/folders/AAAA%3D%3D/items?x=%2F"


def test_unknown_link_properties_kept() -> None:
    """Unknown link properties (``hints``) and the known optional ones are kept in ``props``."""
    doc = halnav.parse(
        {"_links": {"x": {"href": "/x", "name": "n", "hints": {"allow": ["GET"]}}}}, URL
    )
    link = doc.link("x")
    assert dict(link.props) == {"name": "n", "hints": {"allow": ["GET"]}}
    assert link.name == "n"


def test_link_without_a_string_href_is_an_error_strictly_and_a_problem_leniently() -> None:
    """HAL requires a string href: strict parsing names the path (issue 14, finding 11:
    ``{"self": {"href": 5}}`` used to parse to a document without self, in silence);
    lenient parsing skips the link and lists it in ``problems``."""
    for body, path, got in (
        ({"_links": {"self": {"href": 5}}}, r"\$\._links\.self", "a int href"),
        ({"_links": {"a": {"title": "no href"}}}, r"\$\._links\.a", "no href"),
        ({"_links": {"b": [{"href": "/b"}, {"href": 3}]}}, r"\$\._links\.b\[1\]", "a int"),
    ):
        with pytest.raises(DocumentError, match=path) as raised:
            halnav.parse(body, URL)
        assert got in str(raised.value)
    doc = halnav.parse(
        {"_links": {"a": {"title": "no href"}, "b": [{"href": "/b"}, {"href": 3}]}},
        URL,
        lenient=True,
    )
    assert doc.links["a"] == ()
    assert links_of(doc, "b") == ["https://h/b"]
    assert doc.problems == (
        "$._links.a: no string href; link ignored",
        "$._links.b[1]: no string href; link ignored",
    )


def test_document_without_links_is_a_document() -> None:
    """A resource with no ``_links`` is still a Document with its state."""
    doc = halnav.parse(b'{"name": "x"}', URL)
    assert doc.rels == ()
    assert dict(doc.state) == {"name": "x"}
    assert doc.url == URL


def test_null_links_treated_as_absent() -> None:
    """``"_links": null`` is the same as no links."""
    assert halnav.parse({"_links": None}, URL).links == {}


def test_reserved_keys_removed_from_state_and_others_kept() -> None:
    """Only the reserved keys leave ``state``; ``_meta`` and ``_etag`` stay (App. B.4)."""
    doc = halnav.parse(
        {"_links": {}, "_embedded": {}, "_actions": {}, "_templates": {}, "_meta": 1, "_etag": "e"},
        URL,
    )
    assert dict(doc.state) == {"_meta": 1, "_etag": "e"}


def test_mapping_input_is_not_mutated() -> None:
    """Parsing a decoded mapping leaves the caller's dict intact."""
    body: dict[str, Any] = {
        "_links": {"self": {"href": "/x"}},
        "offset": 0,
        "results": [{"a": 1}],
        "_embedded": {"e": [{"b": 2}]},
    }
    snapshot = json.dumps(body, sort_keys=True)
    halnav.parse(body, URL)
    assert json.dumps(body, sort_keys=True) == snapshot


# -- CURIEs --------------------------------------------------------------------------


def test_curie_resolution_and_lookup() -> None:
    """CURIE hrefs are resolved; compact and expanded rels both find the link."""
    doc = halnav.parse(
        {
            "_links": {
                "curies": [{"name": "acme", "href": "/rels/{rel}", "templated": True}],
                "acme:widgets": {"href": "/widgets"},
            }
        },
        "https://docs.acme.com/api",
    )
    assert doc.curies == {"acme": "https://docs.acme.com/rels/{rel}"}
    assert doc.link("https://docs.acme.com/rels/widgets").href == "https://docs.acme.com/widgets"
    assert doc.rels == ("acme:widgets",)


def test_embedded_curies_override_parent() -> None:
    """An embedded resource's own curies override the parent's for links inside it."""
    doc = halnav.parse(
        {
            "_links": {
                "curies": [{"name": "acme", "href": "https://old.test/{rel}", "templated": True}],
            },
            "_embedded": {
                "child": {
                    "_links": {
                        "curies": [
                            {"name": "acme", "href": "https://new.test/{rel}", "templated": True}
                        ],
                        "acme:w": {"href": "https://h/w"},
                    }
                },
                "sibling": {"_links": {"acme:w": {"href": "https://h/s"}}},
            },
        },
        URL,
    )
    (child,) = doc.embedded["child"]
    (sibling,) = doc.embedded["sibling"]
    assert child.find_link("https://new.test/w") is not None
    assert child.find_link("https://old.test/w") is None
    assert sibling.find_link("https://old.test/w") is not None
    assert doc.curies == {"acme": "https://old.test/{rel}"}


def test_curies_single_object_lenient_only() -> None:
    """A single-object ``curies`` is accepted when lenient and a DocumentError when strict."""
    body = {
        "_links": {
            "curies": {"name": "a", "href": "https://d/{rel}"},
            "a:x": {"href": "/x"},
        }
    }
    assert halnav.parse(body, URL, lenient=True).link("https://d/x").href == "https://h/x"
    with pytest.raises(DocumentError) as info:
        halnav.parse(body, URL)
    assert info.value.path == "$._links.curies"


@pytest.mark.parametrize(
    "curie",
    [["not an object"], [{"name": "a", "href": "https://d/no-placeholder"}], [{"href": "/{rel}"}]],
)
def test_bad_curie_is_document_error(curie: object) -> None:
    """A curie that is not an object with a name and a ``{rel}`` href is a DocumentError."""
    with pytest.raises(DocumentError, match=r"\$\._links\.curies\[0\]"):
        halnav.parse({"_links": {"curies": curie}}, URL)


# -- embedded ------------------------------------------------------------------------


def test_embedded_recursion_twice() -> None:
    """Embedded resources nest (twice here) and keep their own links and state."""
    doc = halnav.parse(
        {
            "_embedded": {
                "a": {
                    "_links": {"self": {"href": "/a"}},
                    "n": 1,
                    "_embedded": {
                        "b": {
                            "_links": {"self": {"href": "b2"}},
                            "_embedded": {"c": [{"_links": {"self": {"href": "c3"}}, "n": 3}]},
                        }
                    },
                }
            }
        },
        URL,
    )
    (a,) = doc.embedded["a"]
    (b,) = a.embedded["b"]
    (c,) = b.embedded["c"]
    assert (a.url, b.url, c.url) == ("https://h/a", "https://h/b2", "https://h/c3")
    assert a["n"] == 1
    assert c["n"] == 3


def test_embedded_without_self_kept_with_pointer_url() -> None:
    """Embedded resources without self are kept; their url is the parent URL plus a JSON pointer."""
    doc = halnav.parse(
        {"_embedded": {"one": {"x": 1}, "many": [{"x": 2}, {"x": 3}]}}, "https://h/p"
    )
    (one,) = doc.embedded["one"]
    assert one.url == "https://h/p#/_embedded/one"
    assert [d.url for d in doc.embedded["many"]] == [
        "https://h/p#/_embedded/many/0",
        "https://h/p#/_embedded/many/1",
    ]
    assert [d["x"] for d in doc.embedded["many"]] == [2, 3]


def test_nested_anonymous_embedded_pointer_is_one_fragment() -> None:
    """A nested anonymous resource gets one well-formed pointer, and rels are escaped (RFC 6901)."""
    doc = halnav.parse({"_embedded": {"a": [{"_embedded": {"b/c~d": {"x": 1}}}]}}, "https://h/p")
    (inner,) = doc.embedded["a"][0].embedded["b/c~d"]
    assert inner.url == "https://h/p#/_embedded/a/0/_embedded/b~1c~0d"
    assert inner.url.count("#") == 1


def test_anonymous_embedded_links_resolve_against_parent() -> None:
    """An embedded resource without self resolves its hrefs against the parent's base."""
    doc = halnav.parse({"_embedded": {"e": {"_links": {"x": {"href": "x"}}}}}, "https://h/a/b")
    assert doc.embedded["e"][0].link("x").href == "https://h/a/x"


def test_link_synthesised_for_embedded_self() -> None:
    """An embedded self with no matching link becomes a link under the embedding rel."""
    doc = halnav.parse(
        {"_embedded": {"item": [{"_links": {"self": {"href": "/i/1"}}}, {"x": 1}]}}, URL
    )
    assert links_of(doc, "item") == ["https://h/i/1"]
    assert doc.link("item").context == URL


def test_no_duplicate_synthesised_link() -> None:
    """No link is synthesised when the rel already links to the embedded self, nor twice."""
    doc = halnav.parse(
        {
            "_links": {"item": {"href": "/i/1"}},
            "_embedded": {
                "item": [
                    {"_links": {"self": {"href": "/i/1"}}},
                    {"_links": {"self": {"href": "/i/2"}}},
                    {"_links": {"self": {"href": "/i/2"}}},
                ]
            },
        },
        URL,
    )
    assert links_of(doc, "item") == ["https://h/i/1", "https://h/i/2"]


def test_embedded_self_as_array_is_identity() -> None:
    """An embedded self sent as an array still names the resource and its synthesised link."""
    doc = halnav.parse({"_embedded": {"e": {"_links": {"self": [{"href": "/e/1"}]}}}}, URL)
    assert doc.embedded["e"][0].url == "https://h/e/1"
    assert links_of(doc, "e") == ["https://h/e/1"]


def test_embedded_list_strict_and_lenient() -> None:
    """A list-valued ``_embedded`` is a DocumentError when strict and the page items when lenient."""
    body = {"_embedded": [{"_links": {"self": {"href": "/1"}}}, {"x": 2}]}
    with pytest.raises(DocumentError) as info:
        halnav.parse(body, URL)
    assert info.value.path == "$._embedded"
    doc = halnav.parse(body, URL, lenient=True)
    assert [d.url for d in doc.embedded["item"]] == ["https://h/1", URL + "#/_embedded/item/1"]
    assert doc.items == doc.embedded["item"]


@pytest.mark.parametrize("embedded", [3, "x", [1]])
def test_embedded_wrong_type(embedded: object) -> None:
    """``_embedded`` that is neither an object (nor, leniently, a list of objects) is an error."""
    with pytest.raises(DocumentError, match=r"_embedded"):
        halnav.parse({"_embedded": embedded}, URL, lenient=True)


# -- Veeam _actions -----------------------------------------------------------------


def test_actions_with_uri_or_href() -> None:
    """Veeam actions take their target from ``uri`` or from ``href``, resolved."""
    doc = halnav.parse(
        {"_actions": {"a": {"uri": "/a", "method": "PUT"}, "b": {"href": "b", "method": "delete"}}},
        URL,
    )
    assert (doc.action("a").target, doc.action("a").method) == ("https://h/a", "PUT")
    assert (doc.action("b").target, doc.action("b").method) == ("https://h/v5/a/b", "DELETE")


@pytest.mark.parametrize("method", [None, "", 5])
def test_veeam_action_method_defaults_to_post(method: object) -> None:
    """A Veeam action without a usable method is a POST."""
    raw: dict[str, Any] = {"uri": "/go"}
    if method is not None:
        raw["method"] = method
    doc = halnav.parse({"_actions": {"go": raw}}, URL)
    assert doc.action("go").method == "POST"


def test_veeam_action_extra_kept() -> None:
    """Unknown action keys are kept in ``extra``."""
    doc = halnav.parse({"_actions": {"go": {"uri": "/go", "hint": 1}}}, URL)
    assert dict(doc.action("go").extra) == {"hint": 1}
    assert doc.action("go").content_type == "application/json"


@pytest.mark.parametrize(
    ("actions", "path"),
    [
        ([], "$._actions"),
        ({"go": "uri"}, "$._actions.go"),
        ({"go": {"method": "POST"}}, "$._actions.go"),
    ],
)
def test_bad_actions(actions: object, path: str) -> None:
    """Malformed ``_actions`` raise DocumentError with the path."""
    with pytest.raises(DocumentError) as info:
        halnav.parse({"_actions": actions}, URL)
    assert info.value.path == path


# -- HAL-FORMS -----------------------------------------------------------------------

SELF = {"self": {"href": "/v5/things/1"}}


def forms(templates: object, links: object = SELF) -> Document:
    """Parse a HAL-FORMS document with ``templates`` and ``links``."""
    return halnav.parse({"_links": links, "_templates": templates}, URL)


@pytest.mark.parametrize("method", ["", "FROB", None, 7])
def test_forms_method_defaults_to_get(method: object) -> None:
    """An empty, missing or unknown HAL-FORMS method is GET."""
    template: dict[str, Any] = {"title": "t"}
    if method is not None:
        template["method"] = method
    assert forms({"default": template}).action("default").method == "GET"


def test_forms_method_upper_cased() -> None:
    """Spring-style lower-case ``post`` is POST."""
    assert forms({"default": {"method": "post"}}).action("default").method == "POST"


def test_forms_defaults_and_source() -> None:
    """contentType defaults to application/json; a missing target is the self href."""
    action = forms({"default": {"method": "PUT", "title": "Edit"}}).action("default")
    assert action.content_type == "application/json"
    assert action.target == "https://h/v5/things/1"
    assert action.source == "_templates"
    assert action.title == "Edit"
    assert action.properties == ()


def test_forms_content_type_kept() -> None:
    """An explicit contentType is kept."""
    action = forms(
        {"f": {"method": "POST", "contentType": "application/x-www-form-urlencoded"}}
    ).action("f")
    assert action.content_type == "application/x-www-form-urlencoded"


def test_forms_relative_target_resolved() -> None:
    """A relative target on the root resolves against the document URL (as its links do)."""
    assert forms({"s": {"target": "search?x=1"}}).action("s").target == "https://h/v5/a/search?x=1"


def test_forms_embedded_target_resolved_against_embedded_self() -> None:
    """A template inside an embedded resource resolves against that resource (ketting #393)."""
    doc = halnav.parse(
        {
            "_embedded": {
                "e": {"_links": {"self": {"href": "/x/y/"}}, "_templates": {"d": {"target": "z"}}}
            }
        },
        URL,
    )
    assert doc.embedded["e"][0].action("d").target == "https://h/x/y/z"


def test_forms_no_target_no_self_ignored() -> None:
    """A template with no target and no self is ignored; one with a target is kept."""
    doc = forms({"lost": {"method": "POST"}, "kept": {"target": "/t"}}, links={})
    assert doc.action_names == ("kept",)


@pytest.mark.parametrize("target", [42, "", "//[broken"])
def test_forms_invalid_target_falls_back_to_self(target: object) -> None:
    """A non-string, empty or unparsable target means the self href."""
    assert forms({"d": {"target": target}}).action("d").target == "https://h/v5/things/1"


def test_forms_overlong_target_is_limit_error() -> None:
    """An over-long target is still a LimitExceededError, not a silent fallback."""
    body = {"_links": SELF, "_templates": {"d": {"target": "/" + "t" * 50}}}
    with pytest.raises(LimitExceededError):
        parse_document(body, URL, ParseOptions(max_href_length=20))


def test_forms_property_defaults() -> None:
    """HAL-FORMS property defaults: required/readOnly False, type text, value empty."""
    (prop,) = forms({"d": {"properties": [{"name": "q"}]}}).action("d").properties
    assert (prop.name, prop.required, prop.read_only, prop.type, prop.value) == (
        "q",
        False,
        False,
        "text",
        "",
    )
    assert (prop.prompt, prop.regex, prop.templated, prop.options) == (None, None, False, None)


def test_forms_property_values_and_nameless_ignored() -> None:
    """Given property fields are read; a property without a name is ignored."""
    props = [
        {"prompt": "no name"},
        "junk",
        {
            "name": "size",
            "prompt": "Size",
            "required": True,
            "readOnly": True,
            "type": "number",
            "value": 3,
            "regex": "^[0-9]+$",
            "templated": True,
            "options": {"inline": ["1", "2"]},
            "min": 1,
        },
    ]
    (prop,) = forms({"d": {"properties": props}}).action("d").properties
    assert prop.name == "size"
    assert (prop.prompt, prop.required, prop.read_only, prop.type, prop.value) == (
        "Size",
        True,
        True,
        "number",
        3,
    )
    assert (prop.regex, prop.templated) == ("^[0-9]+$", True)
    assert prop.options == {"inline": ["1", "2"]}
    assert prop.extra == {"min": 1}


@pytest.mark.parametrize(
    ("templates", "path"),
    [
        ([], "$._templates"),
        ({"d": "x"}, "$._templates.d"),
        ({"d": {"properties": {"name": "q"}}}, "$._templates.d.properties"),
    ],
)
def test_bad_templates(templates: object, path: str) -> None:
    """Malformed ``_templates`` raise DocumentError with the path."""
    with pytest.raises(DocumentError) as info:
        forms(templates)
    assert info.value.path == path


def test_templates_and_actions_merge() -> None:
    """Veeam actions and HAL-FORMS templates both appear in ``actions``."""
    doc = halnav.parse(
        {"_links": SELF, "_actions": {"a": {"uri": "/a"}}, "_templates": {"default": {}}}, URL
    )
    assert doc.action_names == ("a", "default")


# -- lenient mode ---------------------------------------------------------------------


def test_string_link_lenient() -> None:
    """A bare string link is accepted when lenient (drf-hal-json)."""
    doc = halnav.parse(
        {"_links": {"self": "/x", "item": ["/1", {"href": "/2"}]}}, URL, lenient=True
    )
    assert doc.self_url == "https://h/x"
    assert links_of(doc, "item") == ["https://h/1", "https://h/2"]


def test_string_link_strict_names_path() -> None:
    """A bare string link is a DocumentError naming ``$._links.self`` when strict."""
    with pytest.raises(DocumentError) as info:
        halnav.parse({"_links": {"self": "/x"}}, URL)
    assert info.value.path == "$._links.self"
    assert "$._links.self" in str(info.value)
    assert URL in str(info.value)


def test_string_self_lenient_names_embedded() -> None:
    """In lenient mode an embedded resource's string self is its identity."""
    doc = halnav.parse({"_embedded": {"e": {"_links": {"self": "/e/1"}}}}, URL, lenient=True)
    assert doc.embedded["e"][0].url == "https://h/e/1"


@pytest.mark.parametrize("link", [3, None, True, [None, {"href": "/a"}]])
def test_non_object_link_is_error_when_strict_and_no_link_when_lenient(link: object) -> None:
    """A link that is neither an object nor a string (DRF writes ``"next": null`` on a last
    page) is a DocumentError naming its path when strict; lenient, it is no link."""
    with pytest.raises(DocumentError) as info:
        halnav.parse({"_links": {"x": link, "self": {"href": "/s"}}}, URL)
    assert info.value.path in ("$._links.x", "$._links.x[0]")
    doc = halnav.parse({"_links": {"x": link, "self": {"href": "/s"}}}, URL, lenient=True)
    expected = ["https://h/a"] if isinstance(link, list) else []
    assert [found.href for found in doc.links.get("x", ())] == expected
    assert doc.find_link("self") is not None
    assert doc.problems


# -- pages ----------------------------------------------------------------------------


def test_veeam_page_envelope() -> None:
    """A Veeam page: ``results`` become Documents in ``items``; offset/limit stay in state."""
    doc = halnav.parse(
        {
            "offset": 0,
            "limit": 2,
            "results": [
                {"id": "1", "_links": {"self": {"href": "/v5/m/1"}}},
                {"id": "2"},
            ],
            "_links": {
                "first": {"href": "/v5/m?offset=0&limit=2"},
                "prev": {"href": "/v5/m?offset=0&limit=2"},
                "self": {"href": "/v5/m?offset=0&limit=2"},
                "next": {"href": "/v5/m?offset=2&limit=2"},
            },
        },
        "https://h/v5/m?offset=0&limit=2",
    )
    assert dict(doc.state) == {"offset": 0, "limit": 2}
    assert [item["id"] for item in doc.items] == ["1", "2"]
    assert doc.items[0].url == "https://h/v5/m/1"
    assert doc.items[1].url == "https://h/v5/m?offset=0&limit=2#/results/1"
    assert doc.link("next").href == "https://h/v5/m?offset=2&limit=2"
    assert doc.rels == ("first", "next", "prev", "self")


def test_results_without_page_keys_is_state() -> None:
    """``results`` without offset/limit, or holding non-objects, stays plain state."""
    plain = halnav.parse({"results": [{"a": 1}]}, URL)
    assert plain.items == ()
    assert plain.state["results"] == [{"a": 1}]
    scalars = halnav.parse({"limit": 1, "results": [1, 2]}, URL)
    assert scalars.items == ()
    assert scalars.state["results"] == [1, 2]


def test_eve_items() -> None:
    """Eve's ``_items`` become the page items and leave the state."""
    doc = halnav.parse(
        {"_items": [{"_id": "a", "_links": {"self": {"href": "people/a"}}}], "_meta": {"total": 1}},
        "http://eve.test/people",
        link_base="http://eve.test/",
    )
    assert [item.url for item in doc.items] == ["http://eve.test/people/a"]
    assert dict(doc.state) == {"_meta": {"total": 1}}


def test_hal_page_single_embedded_array() -> None:
    """A HAL page whose ``_embedded`` holds one array exposes it as ``items``."""
    doc = halnav.parse({"_embedded": {"orders": [{"n": 1}, {"n": 2}]}}, URL)
    assert [item["n"] for item in doc.items] == [1, 2]
    assert doc.items == doc.embedded["orders"]


def test_single_embedded_object_is_not_a_page() -> None:
    """One embedded object, or several embedded rels, give no items."""
    assert halnav.parse({"_embedded": {"owner": {"n": 1}}}, URL).items == ()
    assert halnav.parse({"_embedded": {"a": [{}], "b": [{}]}}, URL).items == ()


# -- malformed documents --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        (b"{not json", "$", "malformed JSON"),
        (b"\xff\xfe\xfd", "$", ""),
        ("[1, 2]", "$", "expected a JSON object, got list"),
        ('[{"a": 1}, 2]', "$", "expected a JSON object, got list"),
        ("null", "$", "expected a JSON object, got NoneType"),
        ('{"_links": []}', "$._links", "_links must be an object"),
        ('{"_links": "x"}', "$._links", "_links must be an object"),
        ("1" * 5000, "$", "malformed JSON"),
        ('{"_links": {"x": {"href": "//[bad"}}}', "$._links.x", "invalid href"),
    ],
)
def test_malformed_documents(body: bytes | str, path: str, reason: str) -> None:
    """Malformed JSON, a non-object root or bad ``_links`` raise DocumentError with URL and path."""
    with pytest.raises(DocumentError) as info:
        halnav.parse(body, URL)
    assert info.value.path == path
    assert reason in info.value.reason
    assert str(info.value).startswith(f"bad HAL document at {URL}: {path}: ")


def test_decode_json_deep_nesting() -> None:
    """JSON nesting beyond the interpreter's recursion limit is a DocumentError."""
    with pytest.raises(DocumentError, match="nests too deeply"):
        decode_json("[" * 100_000 + "]" * 100_000, URL)


def test_huge_nesting_in_state() -> None:
    """Deeply nested state is a DocumentError or a LimitExceededError, never a RecursionError."""
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(DocumentError):
        halnav.parse(deep, URL)
    value: dict[str, Any] = {}
    node = value
    for _ in range(10_000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(LimitExceededError, match="JSON nesting"):
        halnav.parse({"deep": value}, URL)
    shallow: dict[str, Any] = {"a": {"b": [1, {"c": 2}]}}
    assert halnav.parse({"deep": shallow}, URL).state["deep"] is shallow


def test_deep_embedded_beyond_recursion_limit_is_document_error() -> None:
    """Embedded nesting beyond the interpreter's stack is a DocumentError, not a RecursionError."""
    body: dict[str, Any] = {}
    node = body
    for _ in range(2000):
        child: dict[str, Any] = {}
        node["_embedded"] = {"e": child}
        node = child
    with pytest.raises(DocumentError, match="nests too deeply"):
        parse_document(body, URL, ParseOptions(max_json_depth=10**6))


# -- limits ---------------------------------------------------------------------------


def test_max_links_counts_arrays_and_singles() -> None:
    """More links than ``max_links`` raise LimitExceededError (arrays and single links count)."""
    array = {"_links": {"item": [{"href": f"/{i}"} for i in range(6)]}}
    singles = {"_links": {f"r{i}": {"href": f"/{i}"} for i in range(6)}}
    options = ParseOptions(max_links=5)
    for body in (array, singles):
        with pytest.raises(LimitExceededError) as info:
            parse_document(body, URL, options)
        assert info.value.limit == 5
    assert len(parse_document(array, URL, ParseOptions(max_links=6)).links["item"]) == 6


def test_max_items_counts_page_items_and_embedded_resources() -> None:
    page = {"offset": 0, "limit": 3, "results": [{"n": i} for i in range(3)]}
    embedded = {"_embedded": {"a": [{}, {}], "b": {"c": 1}}}
    for body, count in ((page, 3), (embedded, 3)):
        with pytest.raises(LimitExceededError, match="items and embedded") as info:
            parse_document(json.loads(json.dumps(body)), URL, ParseOptions(max_items=count - 1))
        assert info.value.limit == count - 1
        assert parse_document(body, URL, ParseOptions(max_items=count)).url == URL


def test_items_without_self_cost_memory_in_proportion_to_the_document() -> None:
    """A long rel times many self-less items: each item's URL repeats the quoted rel, so
    their total is bounded (this 68 KiB document used to cost 624 MiB)."""
    rel = "r" * 34_000
    body = json.dumps({"_embedded": {rel: [{}] * 11_000}}, separators=(",", ":")).encode()
    assert len(body) < 70_000
    with pytest.raises(LimitExceededError, match="items without self") as info:
        halnav.parse(body, URL)
    assert info.value.limit == 32 * 1024 * 1024
    small = halnav.parse(json.dumps({"_embedded": {rel: [{}] * 100}}).encode(), URL)
    assert small.embedded[rel][99].url == f"{URL}#/_embedded/{rel}/99"


def test_items_with_self_build_no_pointer_url() -> None:
    """Only self-less items pay for a pointer URL: 11,000 items with self and a long rel
    parse within the same budget."""
    rel = "r" * 34_000
    items = [{"_links": {"self": {"href": f"https://h/i/{i}"}}} for i in range(11_000)]
    doc = halnav.parse(json.dumps({"_embedded": {rel: items}}).encode(), URL)
    assert doc.embedded[rel][10_999].url == "https://h/i/10999"


@pytest.mark.parametrize("href", ["/" + "a" * 20, "{/x}" + "a" * 20])
def test_max_href_length(href: str) -> None:
    """An href longer than ``max_href_length`` raises LimitExceededError, templated or not."""
    body = {"_links": {"x": {"href": href, "templated": True}}}
    with pytest.raises(LimitExceededError, match="href at"):
        parse_document(body, URL, ParseOptions(max_href_length=10))
    assert parse_document(body, URL, ParseOptions(max_href_length=30)).link("x").templated


def test_max_embedded_depth() -> None:
    """Embedded nesting deeper than ``max_depth`` raises LimitExceededError."""
    body: dict[str, Any] = {"n": 0}
    node = body
    for i in range(1, 4):
        child: dict[str, Any] = {"n": i}
        node["_embedded"] = {"e": child}
        node = child
    with pytest.raises(LimitExceededError, match="_embedded nesting") as info:
        parse_document(body, URL, ParseOptions(max_json_depth=2))
    assert info.value.limit == 2
    doc = parse_document(body, URL, ParseOptions(max_json_depth=3))
    assert doc.embedded["e"][0].embedded["e"][0].embedded["e"][0]["n"] == 3


def test_limit_error_is_halnav_error() -> None:
    """LimitExceededError is a HalnavError."""
    assert issubclass(LimitExceededError, HalnavError)


# -- the cattrs converter -----------------------------------------------------------


@attrs.frozen
class Org:
    """A target class for ``structure_state``."""

    id: str
    enabled: bool
    archived: bool
    created: datetime
    modified: datetime | None = None


def test_structure_state_veeam_rules() -> None:
    """String booleans, Json.NET dates (7 digits + Z) and RFC 1123 dates structure; extras ignored."""
    doc = halnav.parse(
        {
            "id": "o1",
            "enabled": "true",
            "archived": "False",
            "created": "2017-06-29T07:42:21.1916945Z",
            "modified": "Thu, 29 Jun 2017 07:42:21 GMT",
            "unknown": {"x": 1},
            "_links": {"self": {"href": "/o1"}},
        },
        URL,
    )
    org = halnav.structure_state(doc, Org)
    assert org == Org(
        id="o1",
        enabled=True,
        archived=False,
        created=datetime(2017, 6, 29, 7, 42, 21, 191694, tzinfo=UTC),
        modified=datetime(2017, 6, 29, 7, 42, 21, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-06-29T07:42:21Z", datetime(2017, 6, 29, 7, 42, 21, tzinfo=UTC)),
        (
            "2017-06-29T07:42:21.5+02:00",
            datetime(2017, 6, 29, 7, 42, 21, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2017-06-29T07:42:21", datetime(2017, 6, 29, 7, 42, 21)),
    ],
)
def test_structure_dates(text: str, expected: datetime) -> None:
    """ISO dates with Z, an offset or no zone structure to the matching datetime."""
    converter = make_converter()
    assert converter.structure(text, datetime) == expected
    assert converter.structure(expected, datetime) is expected


@pytest.mark.parametrize(
    ("state", "fragment"),
    [
        (
            {"id": "o", "enabled": "yes", "archived": False, "created": "2017-06-29T07:42:21Z"},
            "expected bool @ $.enabled",
        ),
        (
            {"id": "o", "enabled": True, "archived": False, "created": 5},
            "expected datetime @ $.created",
        ),
        (
            {"id": "o", "enabled": True, "archived": False, "created": "not a date"},
            "expected datetime @ $.created",
        ),
        ({"id": "o", "enabled": True}, "required field missing @ $.archived"),
    ],
)
def test_structure_state_wrong_type(state: dict[str, Any], fragment: str) -> None:
    """A state that does not fit raises DocumentError naming the class."""
    doc = halnav.parse(state, URL)
    with pytest.raises(DocumentError, match=r"state does not fit Org") as info:
        halnav.structure_state(doc, Org)
    assert fragment in str(info.value)
    assert info.value.url == URL


def test_structure_state_plain_types_and_unions() -> None:
    """``structure_state`` handles non-class targets and names them in errors."""
    doc = halnav.parse({"a": 1}, URL)
    assert halnav.structure_state(doc, dict[str, int]) == {"a": 1}
    with pytest.raises(DocumentError, match="state does not fit"):
        halnav.structure_state(doc, int | None)  # type: ignore[arg-type]  # a union on purpose


def test_unstructure_round_trip_seedlike() -> None:
    """``parse(unstructure(doc), url)`` gives equal links, actions, curies and state."""
    body = {
        "id": "o1",
        "_links": {
            "self": {"href": "/o1"},
            "curies": [{"name": "acme", "href": "https://d/{rel}", "templated": True}],
            "acme:w": [{"href": "/w{?q}", "templated": True, "title": "W"}],
            "item": [],
        },
        "_actions": {"go": {"uri": "/go", "method": "PUT", "hint": 1}},
        "_templates": {
            "default": {
                "method": "post",
                "target": "/t",
                "title": "T",
                "contentType": "application/x-www-form-urlencoded",
                "properties": [
                    {"name": "q", "prompt": "Q", "regex": "x", "options": {"inline": []}, "z": 1},
                    {"name": "r"},
                ],
            },
            "untitled": {"target": "u"},
        },
    }
    doc = halnav.parse(body, URL)
    wire = halnav.unstructure(doc)
    again = halnav.parse(json.loads(json.dumps(wire)), URL)
    assert again.links == doc.links
    assert again.actions == doc.actions
    assert again.state == doc.state
    assert again.curies == doc.curies
    assert again.link("https://d/w").href == "https://h/w{?q}"


@pytest.mark.parametrize(
    "body",
    [
        {   # _embedded: arrays, a single object, nesting, a rel that needs escaping
            "_links": {"self": {"href": "/o"}},
            "_embedded": {
                "m": [{"_links": {"self": {"href": "m/1"}}, "n": 1,
                       "_embedded": {"k": {"z": 2}, "a/b": [{"q": 1}, {"q": 2}]}}],
                "one": {"title": "no self"},
            },
        },
        {"offset": 0, "results": [{"id": 1, "_links": {"self": {"href": "/r/1"}}}, {"id": 2}]},
        {"_embedded": {"item": [{"id": 1, "_links": {"self": {"href": "/r/1"}}}]}},  # HAL page
        {"_embedded": {"author": {"_links": {"self": {"href": "/a/1"}}}}},  # one, not a page
        {"_embedded": {"a": [{"_links": {"self": {"href": "/a/1"}}}], "b": [{"n": 1}]}},
        {"_items": [{"_id": 1, "_links": {"self": {"href": "people/1"}}}, {"_id": 2}]},  # Eve
        [{"id": 1}, {"id": 2, "_links": {"self": {"href": "/x/2"}}}],  # a bare-array collection
    ],
)  # fmt: skip
def test_unstructure_keeps_embedded_resources_and_page_items(body: Any) -> None:
    """What ``unstructure`` writes parses back into an equal document, ``_embedded`` and
    page items included (the cache stores embedded copies this way)."""
    doc = halnav.parse(body, URL)
    again = halnav.parse(json.loads(json.dumps(halnav.unstructure(doc))), URL)
    assert again == doc
    assert [d.url for d in again.items] == [d.url for d in doc.items]
    assert {rel: [d.url for d in docs] for rel, docs in again.embedded.items()} == {
        rel: [d.url for d in docs] for rel, docs in doc.embedded.items()
    }


def test_unstructure_link_and_action() -> None:
    """Links unstructure to HAL link objects, Veeam actions to ``{method, uri}``."""
    doc = halnav.parse({"_links": {"s": {"href": "/s{?q}", "templated": True, "name": "n"}}}, URL)
    assert halnav.unstructure(doc.link("s")) == {
        "href": "https://h/s{?q}",
        "templated": True,
        "name": "n",
    }
    seed = halnav.parse({"_actions": {"a": {"uri": "/a"}}}, URL)
    assert halnav.unstructure(seed.action("a")) == {"method": "POST", "uri": "https://h/a"}
    assert halnav.unstructure(halnav.parse({}, URL)) == {}


def test_pin_origin_moves_links_and_actions_onto_one_origin() -> None:
    """pin_origin rewrites the origin of every absolute href and action target."""
    from halnav._convert import ParseOptions, parse_document

    raw = {
        "_links": {"self": {"href": "https://internal:4443/v5/x"}, "up": {"href": "/v5"}},
        "_actions": {"go": {"uri": "https://internal:4443/v5/x/action", "method": "POST"}},
    }
    doc = parse_document(
        raw, "https://public:4443/v5/x", ParseOptions(pin_origin="https://public:4443")
    )
    assert doc.link("self").href == "https://public:4443/v5/x"
    assert doc.link("up").href == "https://public:4443/v5"
    assert doc.action("go").target == "https://public:4443/v5/x/action"


def test_deep_link_property_is_refused() -> None:
    """An unknown link property nested beyond max_depth is a LimitExceededError."""
    value: dict[str, Any] = {}
    node = value
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    raw = {"_links": {"x": {"href": "/x", "hint": value}}}
    with pytest.raises(LimitExceededError, match="JSON nesting at"):
        halnav.parse(raw, URL)


def test_pin_origin_on_a_bare_origin_href() -> None:
    """An href that is only an origin is pinned to the pinned origin's root."""
    doc = parse_document(
        {"_links": {"home": {"href": "https://internal:4443"}}},
        "https://public:4443/v5/x",
        ParseOptions(pin_origin="https://public:4443"),
    )
    assert doc.link("home").href == "https://public:4443/"


def test_a_top_level_array_is_a_collection_of_page_items() -> None:
    """Veeam v5-v7 ``GET /Organizations`` answers a bare array: its objects are page items."""
    body = b'[{"id": "a", "_links": {"self": {"href": "/v7/Organizations/a"}}}, {"id": "b"}]'
    doc = halnav.parse(body, "https://vbo:4443/v7/Organizations")
    assert dict(doc.state) == {}
    assert doc.rels == ()
    assert [item["id"] for item in doc.items] == ["a", "b"]
    assert doc.items[0].url == "https://vbo:4443/v7/Organizations/a"
    assert doc.items[1].url == "https://vbo:4443/v7/Organizations#/1"
    assert halnav.parse(b"[]", "https://vbo:4443/v7/Organizations").items == ()


class Kind(enum.Enum):
    """A target enum for ``structure_state``."""

    VEX = "Vex"
    VEOD = "Veod"


@attrs.frozen
class Session:
    """Veeam fields that a server may null or extend."""

    id: str
    type: Kind
    details: str = ""
    result: str | None = "Success"


def test_structure_state_is_tolerant_of_nulls_and_unknown_enum_values() -> None:
    """A null is an absent field (its default), enums match in any case, and an enum value
    the class does not know (a newer server's) is kept instead of losing the document."""
    doc = halnav.parse({"id": "s", "type": "vex", "details": None, "result": None}, URL)
    assert halnav.structure_state(doc, Session) == Session(id="s", type=Kind.VEX)
    newer = halnav.parse({"id": "s", "type": "Vet"}, URL)
    assert halnav.structure_state(newer, Session).type == "Vet"  # type: ignore[comparison-overlap]
    with pytest.raises(DocumentError, match="required field missing"):
        halnav.structure_state(halnav.parse({"type": "Vex"}, URL), Session)


@pytest.mark.parametrize(
    "base",
    [
        "https://vbo:4443/",
        "https://vbo:4443/v6/RestoreSessions/1/organization",
        "http://h",
        "http://h/a/b/",
    ],
)
@pytest.mark.parametrize(
    "href",
    [
        "/v6/RestoreSessions/1/organization/mailboxes?offset=0&limit=30",
        "v6/RestoreSessions/1/organization/mailboxes",
        "/a/../b",
        "./x",
        "../x",
        "//other/x",
        "?q=1",
        "#frag",
        "mailto:x@y",
        "a:b/c",
        "x/y%3D%3D",
        "/",
        "",
        "a\\b",
    ],
)
def test_the_fast_href_join_agrees_with_urljoin(base: str, href: str) -> None:
    """Where the fast path answers at all, it answers what urljoin does."""
    from urllib.parse import urljoin

    from halnav._convert import _simple_join

    fast = _simple_join(base, href)
    if fast is not None:
        assert fast == urljoin(base, href)
    if href.startswith("/v6/") or (base.endswith("/") and href.startswith("v6/")):
        assert fast is not None  # the shapes Veeam v6+ write do take the fast path


def test_parse_takes_the_navigators_options_and_limits() -> None:
    """``parse`` and ``Navigator`` share one policy: ``pin_origin`` and ``Limits`` mean the same."""
    body = {"_links": {"self": {"href": "https://public.name:4443/v6/o"}, "a": {"href": "/v6/a"}}}
    pinned = halnav.parse(body, "https://10.0.0.5:4443/v6/o", pin_origin="https://10.0.0.5:4443/x")
    assert pinned.url == "https://10.0.0.5:4443/v6/o"
    assert ParseOptions.of() is ParseOptions.of(halnav.Limits())  # the shared default policy
    with pytest.raises(LimitExceededError, match="links in one document"):
        halnav.parse(body, URL, limits=halnav.Limits(max_links=1))
    assert halnav.parse(body, URL, limits=halnav.Limits(max_links=2)).rels == ("a", "self")


def test_keep_source_keeps_the_json_untouched_for_every_document() -> None:
    """``keep_source``: each document, item and embedded one holds its JSON as it came."""
    body: dict[str, Any] = {
        "offset": 0,
        "limit": 2,
        "results": [{"email": "a@x", "_links": {"self": {"href": "/m/a"}}}, {"email": "b@x"}],
        "_links": {"self": {"href": "/m"}},
        "_embedded": {"owner": {"name": "o", "_links": {"self": {"href": "/o"}}}},
    }
    text = json.dumps(body)
    doc = halnav.parse(text, URL, keep_source=True)
    assert doc.source == body  # the parse took nothing out of it
    assert doc.items[0].source == body["results"][0]
    assert doc.items[1].source == {"email": "b@x"}
    assert doc.embedded["owner"][0].source == body["_embedded"]["owner"]
    assert "results" not in doc.state  # the parsed view is unchanged
    assert halnav.parse(text, URL).source is None  # off by default: no second copy
    array = halnav.parse('[{"id": 1}]', URL, keep_source=True)
    assert array.source == [{"id": 1}]
