"""The wire rules: HAL + HAL-FORMS + Veeam ``_actions`` JSON to ``Document`` and back.

Every rule about what the JSON looks like lives here, not on the models:

* ``parse_document`` turns decoded JSON into a ``Document`` (HAL draft-11,
  HAL-FORMS, Veeam ``_actions`` and page envelopes, a lenient mode for sloppy
  servers). It is hand-written rather than a chain of cattrs hooks because it
  is the hottest path of a bulk walk (benchmarked against ``json.loads``) and
  because every value needs the document URL as context.
* ``make_converter`` returns the cattrs converter that turns documents,
  links and actions into JSON-ready data and structures a document's ``state``
  into your own attrs classes with the Veeam reading rules (string booleans,
  Json.NET dates), see ``structure_state``.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, Final, TypeVar
from urllib.parse import quote, urljoin

import attrs
import cattrs

from ._config import Limits
from ._model import EMPTY, Action, Document, Form, FormProperty, LazyActions, Link
from ._urls import origin_of
from .errors import DocumentError, LimitExceededError

__all__ = [
    "ParseOptions",
    "decode_json",
    "make_converter",
    "parse",
    "parse_document",
    "structure_state",
]

T = TypeVar("T")

_RESERVED: Final = ("_links", "_embedded", "_actions", "_templates")
_LINK_KNOWN: Final = frozenset({"href", "templated"})
_HTTP_PREFIXES: Final = ("http://", "https://")
_FORMS_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@attrs.frozen(kw_only=True)
class ParseOptions:
    """How tolerant a parse is, and against what relative hrefs resolve.

    ``lenient`` accepts string links (``"self": "http://..."``), a list-valued
    ``_embedded`` and a single-object ``curies``. ``link_base`` resolves
    relative hrefs against an API root instead of the document URL (Eve, and
    Veeam v6+ hrefs such as ``v6/restoresessions/...``). ``pin_origin``
    (``scheme://host:port``) replaces the origin of every absolute href, for
    servers that advertise another host name than the one you reach them
    by (Veeam's configured public name). The limits guard
    against hostile documents: ``max_items`` bounds the page items and embedded
    resources of one document, ``max_pointer_bytes`` the URLs made up for those without
    ``self`` (each is its carrier's URL plus a JSON pointer, so a long rel times many
    items would otherwise cost far more memory than the document's size).
    """

    lenient: bool = False
    link_base: str | None = None
    pin_origin: str | None = None
    max_json_depth: int = 128
    max_links: int = 100_000
    max_href_length: int = 8192
    max_items: int = 100_000
    max_pointer_bytes: int = 32 * 1024 * 1024
    keep_source: bool = False

    @classmethod
    def of(
        cls,
        limits: Limits | None = None,
        *,
        lenient: bool = False,
        link_base: str | None = None,
        pin_origin: str | None = None,
        keep_source: bool = False,
    ) -> ParseOptions:
        """The parse policy of ``parse`` and ``Navigator``: the one place their options meet.

        The size limits come from ``limits`` (the public home of ``max_json_depth``,
        ``max_links``, ``max_href_length`` and ``max_items``); ``pin_origin`` may be
        any URL of the origin. All defaults give the shared ``DEFAULT_OPTIONS``.
        """
        limits = limits or _DEFAULT_LIMITS
        if (
            not (lenient or keep_source)
            and link_base is None
            and pin_origin is None
            and limits == _DEFAULT_LIMITS
        ):
            return DEFAULT_OPTIONS
        return cls(
            lenient=lenient,
            link_base=link_base,
            pin_origin=origin_of(pin_origin) if pin_origin else None,
            max_json_depth=limits.max_json_depth,
            max_links=limits.max_links,
            max_href_length=limits.max_href_length,
            max_items=limits.max_items,
            keep_source=keep_source,
        )


DEFAULT_OPTIONS: Final = ParseOptions()
_DEFAULT_LIMITS: Final = Limits()


def decode_json(data: bytes | str, url: str) -> Any:
    """``json.loads`` with failures turned into ``DocumentError`` naming ``url``.

    Raises:
        DocumentError: the bytes are not UTF-8 JSON or nest too deeply.
    """
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        # json says "Unterminated string starting at"; the position completes that phrase.
        where = f"{exc.msg} {exc.pos}" if exc.msg.endswith(" at") else f"{exc.msg} at {exc.pos}"
        raise DocumentError(url, "$", f"malformed JSON: {where}") from exc
    except UnicodeDecodeError as exc:
        raise DocumentError(url, "$", f"body is not UTF-8: {exc.reason}") from exc
    except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise DocumentError(url, "$", f"malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise DocumentError(url, "$", "JSON nests too deeply") from exc


def parse(
    data: bytes | str | Mapping[str, Any],
    url: str,
    *,
    lenient: bool = False,
    link_base: str | None = None,
    pin_origin: str | None = None,
    limits: Limits | None = None,
    keep_source: bool = False,
) -> Document:
    """Parse a HAL (or Veeam) JSON document fetched from ``url``.

    ``data`` is the raw body (bytes or str) or an already decoded mapping. The
    options mean what they mean for ``Navigator``: ``lenient`` accepts string
    links and list-valued ``_embedded``, ``link_base`` resolves relative hrefs
    against an API root, ``pin_origin`` replaces the origin of absolute hrefs, and
    ``limits`` gives the size limits (``max_json_depth``, ``max_links``,
    ``max_href_length``, ``max_items``); ``keep_source`` keeps the JSON as it came in
    ``Document.source`` (for lossless output; it costs about the document's size again).

    >>> doc = parse(b'{"_links": {"self": {"href": "/o"}}, "name": "x"}', "https://h/v5/o")
    >>> doc.link("self").href, doc.state["name"]
    ('https://h/o', 'x')

    Raises:
        DocumentError: malformed JSON, or a structure HAL does not allow
            (the error says where: ``$._links.self.href``).
        LimitExceededError: the document passes one of the size limits.
    """
    options = ParseOptions.of(
        limits, lenient=lenient, link_base=link_base, pin_origin=pin_origin, keep_source=keep_source
    )
    if isinstance(data, bytes | bytearray | str):
        return parse_document(decode_json(data, url), url, options, owned=True)
    return parse_document(data, url, options, owned=False)


class _Parser:
    """One parse: carries the options and the running link count across the recursion."""

    __slots__ = ("items_seen", "links_seen", "options", "pointer_bytes", "root_url")

    def __init__(self, options: ParseOptions, root_url: str) -> None:
        self.options = options
        self.root_url = root_url
        self.links_seen = 0
        self.items_seen = 0
        self.pointer_bytes = 0

    def fail(self, path: str, reason: str) -> DocumentError:
        return DocumentError(self.root_url, path, reason)

    # -- hrefs ------------------------------------------------------------
    def resolve(self, href: str, base: str, path: str) -> str:
        if len(href) > self.options.max_href_length:
            raise LimitExceededError(self.root_url, f"href at {path}", self.options.max_href_length)
        if href.startswith(_HTTP_PREFIXES):
            url = href
        elif (joined := _simple_join(base, href)) is not None:
            url = joined
        else:
            try:
                url = urljoin(base, href)
            except ValueError as exc:  # urlsplit refuses e.g. '//[x' (a broken IPv6 host)
                raise self.fail(path, f"invalid href {href[:80]!r}: {exc}") from exc
        pin = self.options.pin_origin
        if pin is not None and not url.startswith(pin + "/"):
            scheme_end = url.find("://")
            if scheme_end > 0:
                path_start = url.find("/", scheme_end + 3)
                url = pin + (url[path_start:] if path_start > 0 else "/")
        return url

    # -- links ------------------------------------------------------------
    def link(
        self, raw: Any, rel: str, base: str, context: str, path: str, problems: list[str]
    ) -> Link | None:
        if isinstance(raw, str):
            if not self.options.lenient:
                raise self.fail(path, f"expected a link object, got a string {raw[:80]!r}")
            raw = {"href": raw}
        elif not isinstance(raw, dict):
            if self.options.lenient:  # "next": null on a last page (Django REST framework)
                problems.append(f"{path}: {type(raw).__name__} where a link was expected; no link")
                return None
            raise self.fail(path, f"expected a link object, got {type(raw).__name__}")
        href = raw.get("href")
        if not isinstance(href, str):
            if not self.options.lenient:  # HAL: href is REQUIRED, a string
                got = "no href" if href is None else f"a {type(href).__name__} href"
                raise self.fail(path, f"a link needs a string href, got {got}")
            problems.append(f"{path}: no string href; link ignored")
            return None
        templated = raw.get("templated") is True  # only JSON true counts (HAL section 5.2)
        if templated and href.startswith("{"):
            resolved = href  # resolved after expansion, see Link.expand
            if len(href) > self.options.max_href_length:
                raise LimitExceededError(
                    self.root_url, f"href at {path}", self.options.max_href_length
                )
        else:
            resolved = self.resolve(href, base, path)
            if not templated and "{" in href and "}" in href:
                problems.append(f"{path}: href looks templated but templated is not true")
        if len(raw) == 1 or (len(raw) == 2 and "templated" in raw):
            props: Mapping[str, Any] = EMPTY
        else:
            extra = {k: v for k, v in raw.items() if k not in _LINK_KNOWN}
            props = MappingProxyType(extra)
            if _deeper_than(extra, self.options.max_json_depth):
                raise LimitExceededError(
                    self.root_url, f"JSON nesting at {path}", self.options.max_json_depth
                )
        return Link(resolved, rel, context, templated, props)

    def links(
        self, raw: Any, base: str, context: str, doc_path: str, problems: list[str]
    ) -> tuple[dict[str, tuple[Link, ...]], dict[str, str]]:
        """Parse ``_links``; error paths are built from ``doc_path`` only when needed."""
        if not isinstance(raw, dict):
            raise self.fail(
                f"{doc_path}._links", f"_links must be an object, got {type(raw).__name__}"
            )
        out: dict[str, tuple[Link, ...]] = {}
        curies: dict[str, str] = {}
        fast = self.options.pin_origin is None
        max_len = self.options.max_href_length
        for rel, value in raw.items():
            # Fast path for the overwhelmingly common {"href": "http(s)://..."}: no path
            # strings are built and nothing is resolved (the slow path does both).
            if fast and type(value) is dict and len(value) == 1:
                href = value.get("href")
                if (
                    type(href) is str
                    and href.startswith(_HTTP_PREFIXES)
                    and len(href) <= max_len
                    and "{" not in href
                ):
                    self.links_seen += 1
                    out[rel] = (Link(href, rel, context),)
                    continue
            where = f"{doc_path}._links.{rel}"
            if value is None and self.options.lenient:
                problems.append(f"{where}: null; no link")  # no such rel, not an empty one
                continue
            if rel == "curies":
                self.curies(value, base, where, curies)
                continue
            if isinstance(value, list):
                self.links_seen += len(value)
                self.check_link_count()
                found = []
                for i, item in enumerate(value):
                    link = self.link(item, rel, base, context, f"{where}[{i}]", problems)
                    if link is not None:
                        found.append(link)
                out[rel] = tuple(found)
            else:
                self.links_seen += 1
                link = self.link(value, rel, base, context, where, problems)
                out[rel] = (link,) if link is not None else ()
        self.check_link_count()
        return out, curies

    def check_link_count(self) -> None:
        if self.links_seen > self.options.max_links:
            raise LimitExceededError(self.root_url, "links in one document", self.options.max_links)

    def curies(self, raw: Any, base: str, path: str, out: dict[str, str]) -> None:
        if isinstance(raw, dict) and self.options.lenient:
            raw = [raw]  # willdurand/Hateoas sends a single object
        if not isinstance(raw, list):
            raise self.fail(path, "curies must be an array of link objects")
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(f"{path}[{i}]", "expected a link object")
            name, href = item.get("name"), item.get("href")
            if not isinstance(name, str) or not isinstance(href, str) or "{rel}" not in href:
                raise self.fail(f"{path}[{i}]", "a curie needs a name and an href with {rel}")
            head, _, tail = href.partition("{rel}")
            out[name] = self.resolve(head, base, path) + "{rel}" + tail

    # -- actions ----------------------------------------------------------
    def veeam_actions(
        self, raw: Any, base: str, context: str, doc_path: str
    ) -> Mapping[str, Action]:
        """Parse Veeam ``_actions``; error paths are built only when something is wrong.

        When every entry is the plain ``{"uri": "http(s)://...", "method": "..."}`` shape
        the entries are checked here and the Action objects built on first access
        (``LazyActions``); anything else is built now, with its errors.
        """
        if not isinstance(raw, dict):
            raise self.fail(
                f"{doc_path}._actions", f"_actions must be an object, got {type(raw).__name__}"
            )
        if self.options.pin_origin is None:
            max_len = self.options.max_href_length
            for value in raw.values():
                if type(value) is not dict or len(value) != 2:
                    break
                target, method = value.get("uri"), value.get("method")
                if not (
                    type(target) is str
                    and type(method) is str
                    and method
                    and target.startswith(_HTTP_PREFIXES)
                    and len(target) <= max_len
                ):
                    break
            else:
                return LazyActions(raw, context)
        out: dict[str, Action] = {}
        for name, value in raw.items():
            where = f"{doc_path}._actions.{name}"
            if not isinstance(value, dict):
                raise self.fail(where, f"expected an action object, got {type(value).__name__}")
            target = value.get("uri", value.get("href"))
            if not isinstance(target, str):
                raise self.fail(where, "an action needs a string 'uri' (or 'href')")
            method = value.get("method")
            method = method.upper() if isinstance(method, str) and method else "POST"
            extra = {k: v for k, v in value.items() if k not in {"uri", "href", "method"}}
            out[name] = Action(
                name=name,
                method=method,
                target=self.resolve(target, base, where),
                context=context,
                extra=MappingProxyType(extra) if extra else EMPTY,
            )
        return out

    def forms(
        self, raw: Any, base: str, context: str, self_href: str | None, path: str
    ) -> dict[str, Action]:
        if not isinstance(raw, dict):
            raise self.fail(path, f"_templates must be an object, got {type(raw).__name__}")
        out: dict[str, Action] = {}
        for name, value in raw.items():
            where = f"{path}.{name}"
            if not isinstance(value, dict):
                raise self.fail(where, "expected a HAL-FORMS template object")
            target: str | None = None
            raw_target = value.get("target")
            if isinstance(raw_target, str) and raw_target:
                try:
                    target = self.resolve(raw_target, base, f"{where}.target")
                except DocumentError:
                    target = None  # HAL-FORMS: an invalid target means self.href
            if target is None:
                target = self_href
            if target is None:
                continue  # HAL-FORMS: no target and no self, so the template is ignored
            method = value.get("method")
            method = method.upper() if isinstance(method, str) else ""
            if method not in _FORMS_METHODS:
                method = "GET"  # HAL-FORMS: empty or unknown methods are GET
            content_type = value.get("contentType")
            title = value.get("title")
            out[name] = Action(
                name=name,
                method=method,
                target=target,
                context=context,
                form=Form(
                    content_type=content_type
                    if isinstance(content_type, str) and content_type
                    else "application/json",
                    title=title if isinstance(title, str) else None,
                    properties=self.form_properties(value.get("properties"), f"{where}.properties"),
                ),
            )
        return out

    def form_properties(self, raw: Any, path: str) -> tuple[FormProperty, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(path, "properties must be an array")
        out = []
        known = {"name", "prompt", "required", "readOnly", "type", "value", "regex", "templated"}
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue  # HAL-FORMS: a property without a name is ignored
            options = item.get("options")
            out.append(
                FormProperty(
                    name=item["name"],
                    prompt=item.get("prompt") if isinstance(item.get("prompt"), str) else None,
                    required=item.get("required") is True,
                    read_only=item.get("readOnly") is True,
                    type=item["type"] if isinstance(item.get("type"), str) else "text",
                    value=item.get("value", ""),
                    regex=item.get("regex") if isinstance(item.get("regex"), str) else None,
                    templated=item.get("templated") is True,
                    options=MappingProxyType(options) if isinstance(options, dict) else None,
                    extra=MappingProxyType(
                        {k: v for k, v in item.items() if k not in known and k != "options"}
                    ),
                )
            )
        return tuple(out)

    # -- documents --------------------------------------------------------
    def self_href(self, raw_links: Any, base: str, path: str) -> str | None:
        """The document's ``self`` href, resolved (None: it has none that is usable)."""
        raw_self = raw_links.get("self") if isinstance(raw_links, dict) else None
        if isinstance(raw_self, list) and raw_self:
            raw_self = raw_self[0]  # servers SHOULD NOT, but do, send self as an array
        if isinstance(raw_self, str) and self.options.lenient:
            raw_self = {"href": raw_self}
        if not isinstance(raw_self, dict) or not isinstance(raw_self.get("href"), str):
            return None
        href: str = raw_self["href"]
        if self.options.pin_origin is not None or not href.startswith(_HTTP_PREFIXES):
            href = self.resolve(href, base, f"{path}._links.self.href")
        return href

    def document(
        self,
        raw: Any,
        url: str,
        base: str,
        parent_curies: Mapping[str, str],
        path: str,
        depth: int,
        owned: bool,
        index: int = -1,
    ) -> Document:
        """``index`` >= 0: an array element, and ``url`` the array's JSON pointer URL (the
        element's own pointer URL is built only if it has no ``self``: see item_pointer)."""
        if depth > self.options.max_json_depth:
            raise LimitExceededError(self.root_url, f"_embedded nesting at {path}", depth - 1)
        if not isinstance(raw, dict):
            raise self.fail(path, f"expected a JSON object, got {type(raw).__name__}")
        state: dict[str, Any] = raw if owned else dict(raw)
        problems: list[str] = []
        raw_links = state.pop("_links", None)
        raw_embedded = state.pop("_embedded", None)
        raw_actions = state.pop("_actions", None)
        raw_templates = state.pop("_templates", None)
        links: dict[str, tuple[Link, ...]] = {}
        curies: Mapping[str, str] = parent_curies
        self_href: str | None = None
        if raw_links is not None:
            # An embedded resource's hrefs resolve against its own self (ketting #395).
            self_href = self.self_href(raw_links, base, path)
            if self_href is not None and path != "$":
                url = self_href
                if self.options.link_base is None:
                    base = self_href
        if index >= 0 and self_href is None:
            url = self.item_pointer(url, index)
        if raw_links is not None:
            links, own_curies = self.links(raw_links, base, url, path, problems)
            if own_curies:
                curies = {**parent_curies, **own_curies}
            own = links.get("self") if base == self_href else None
            if own and own[0].href != self_href:
                # The self href resolves against the parent, not against itself: "m/1"
                # on https://h/o is https://h/m/1 (resolved again it would be .../m/m/1).
                assert self_href is not None
                links["self"] = (attrs.evolve(own[0], href=self_href), *own[1:])

        actions: Mapping[str, Action] = EMPTY
        if raw_actions is not None:
            actions = self.veeam_actions(raw_actions, base, url, path)
        if raw_templates is not None:
            templates = self.forms(raw_templates, base, url, self_href, f"{path}._templates")
            actions = {**actions, **templates}

        embedded: dict[str, tuple[Document, ...]] = {}
        if raw_embedded is not None:
            embedded = self.embedded(raw_embedded, url, base, curies, path, depth, owned, links)

        items: tuple[Document, ...] = ()
        results = state.get("results")
        raw_items = state.get("_items")
        if (
            isinstance(results, list)
            and ("offset" in state or "limit" in state)
            and _all_objects(results)
        ):
            del state["results"]  # a Veeam page envelope: results are the page items
            items = self.item_list(
                results,
                self.pointer(url, "results"),
                base,
                curies,
                f"{path}.results",
                depth,
                owned,
                indexed=True,
            )
        elif isinstance(raw_items, list) and _all_objects(raw_items):
            del state["_items"]  # Eve
            items = self.item_list(
                raw_items,
                self.pointer(url, "_items"),
                base,
                curies,
                f"{path}._items",
                depth,
                owned,
                indexed=True,
            )
        elif len(embedded) == 1:
            only = next(iter(raw_embedded.values())) if isinstance(raw_embedded, dict) else None
            if only is None or isinstance(only, list):  # None: a lenient list-valued _embedded
                items = next(iter(embedded.values()))

        # Bound the nesting of the state too: json.dumps/repr of a document nested a thousand
        # deep would hit the recursion limit far from here (when a walk writes its record).
        room = self.options.max_json_depth - depth
        for value in state.values():
            if (type(value) is dict or type(value) is list) and _deeper_than(value, room):
                raise LimitExceededError(
                    self.root_url, f"JSON nesting at {path}", self.options.max_json_depth
                )

        return Document(  # positional: the same order as the fields, and measurably faster
            url,
            MappingProxyType(state),
            MappingProxyType(links) if links else EMPTY,
            actions if type(actions) is LazyActions else _read_only(actions),
            MappingProxyType(embedded) if embedded else EMPTY,
            items,
            MappingProxyType(dict(curies)) if curies else EMPTY,
            tuple(problems) if problems else (),
            None,
            None,
            raw if self.options.keep_source else None,
        )

    def collection(self, raw: list[Any], url: str, base: str, owned: bool) -> Document:
        """A top-level JSON array of objects: a collection whose elements are its page items.

        Many JSON APIs answer a list as a bare array (Veeam v5-v7 ``GET /Organizations``);
        it becomes a Document with no state and no links whose ``items`` are the elements
        (identified by ``url#/0``, ``url#/1``, ... unless they have a ``self``).
        """
        items = self.item_list(raw, self.pointer(url), base, EMPTY, "$", 0, owned, indexed=True)
        source = raw if self.options.keep_source else None
        return Document(url, EMPTY, EMPTY, EMPTY, EMPTY, items, EMPTY, (), None, None, source)

    def item_list(
        self,
        raw: list[Any],
        pointer: str,
        base: str,
        curies: Mapping[str, str],
        where: str,
        depth: int,
        owned: bool,
        *,
        indexed: bool,
    ) -> tuple[Document, ...]:
        # Items without a self are identified by ``pointer``: their parent's URL plus a
        # JSON pointer (RFC 6901) from the nearest ancestor that has a URL of its own.
        self.items_seen += len(raw)
        if self.items_seen > self.options.max_items:
            raise LimitExceededError(
                self.root_url,
                f"items and embedded resources in one document (at {where})",
                self.options.max_items,
            )
        if not indexed:  # a single embedded object, not an array
            return (self.document(raw[0], pointer, base, curies, where, depth + 1, owned),)
        document = self.document  # a list comprehension, not a generator: this is the hot loop
        return tuple(
            [
                document(item, pointer, base, curies, f"{where}[{i}]", depth + 1, owned, i)
                for i, item in enumerate(raw)
            ]
        )

    def pointer(self, url: str, *keys: str) -> str:
        """``url`` extended by a JSON pointer to ``keys`` (see item_pointer)."""
        return self.counted(_pointer(url, *keys))

    def item_pointer(self, pointer: str, index: int) -> str:
        """The URL of an array element without ``self``: ``pointer`` plus ``/index``.

        Such an element keeps a string of its own, as long as its carrier's URL plus the
        quoted rels on the way. Their total in one document is bounded
        (``max_pointer_bytes``), so that no small document costs much memory; elements
        with a ``self`` build none.
        """
        return self.counted(f"{pointer}/{index}")

    def counted(self, url: str) -> str:
        self.pointer_bytes += len(url)
        if self.pointer_bytes > self.options.max_pointer_bytes:
            raise LimitExceededError(
                self.root_url,
                "bytes of the URLs of items without self in one document",
                self.options.max_pointer_bytes,
            )
        return url

    def embedded(
        self,
        raw: Any,
        url: str,
        base: str,
        curies: Mapping[str, str],
        path: str,
        depth: int,
        owned: bool,
        links: dict[str, tuple[Link, ...]],
    ) -> dict[str, tuple[Document, ...]]:
        where = f"{path}._embedded"
        if isinstance(raw, list):
            if not self.options.lenient:
                raise self.fail(where, "_embedded must be an object keyed by rel, got an array")
            raw = {"item": raw}
        if not isinstance(raw, dict):
            raise self.fail(where, f"_embedded must be an object, got {type(raw).__name__}")
        out: dict[str, tuple[Document, ...]] = {}
        for rel, value in raw.items():
            indexed = isinstance(value, list)
            docs = self.item_list(
                value if indexed else [value],
                self.pointer(url, "_embedded", rel),
                base,
                curies,
                f"{where}.{rel}",
                depth,
                owned,
                indexed=indexed,
            )
            out[rel] = docs
            # Servers embed without a matching link (ketting #409): synthesise one from each
            # embedded self, skipping hrefs the rel already links to (and repeats).
            known = {link.href for link in links.get(rel, ())}
            extra = []
            for doc in docs:
                self_url = doc.self_url
                if self_url is not None and self_url not in known:
                    known.add(self_url)
                    extra.append(Link(self_url, rel, url))
            if extra:
                links[rel] = links.get(rel, ()) + tuple(extra)
        return out


def _all_objects(values: list[Any]) -> bool:
    return all(isinstance(value, dict) for value in values)


def _deeper_than(value: Any, room: int) -> bool:
    """Whether ``value`` nests containers more than ``room`` levels deep (iterative)."""
    stack = [(value, room)]
    while stack:
        current, left = stack.pop()
        if left < 0:
            return True
        children = current.values() if type(current) is dict else current
        stack.extend(
            (child, left - 1) for child in children if type(child) is dict or type(child) is list
        )
    return False


def _read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    if not mapping:
        return EMPTY
    return mapping if type(mapping) is MappingProxyType else MappingProxyType(dict(mapping))


def _simple_join(base: str, href: str) -> str | None:
    """``urljoin(base, href)`` for the two shapes Veeam v6+ write, without urllib; else None.

    ``/v6/...`` (root-relative) is ``base``'s origin + ``href``; ``v6/...`` against a base
    that ends in ``/`` (the profile's ``link_base``) is ``base + href``. Anything urljoin
    would treat differently (``//host``, dot segments, a scheme, ``?``/``#`` only, a
    backslash, a base with a query) takes the general path. urljoin gives the same result
    for both shapes (tests/test_convert.py checks it on a table).
    """
    if not href or "/." in href or href[0] in ".?#" or "\\" in href:
        return None
    if not base.startswith(_HTTP_PREFIXES) or "?" in base or "#" in base:
        return None
    if href[0] == "/":
        if href.startswith("//"):
            return None
        slash = base.find("/", base.index("://") + 3)
        return (base if slash < 0 else base[:slash]) + href
    if base.endswith("/") and ":" not in href.partition("/")[0]:
        return base + href
    return None


def _pointer(url: str, *keys: str) -> str:
    """``url`` extended by a JSON pointer (RFC 6901) to ``keys``, as a URI fragment."""
    tokens = "".join(
        "/" + quote(key.replace("~", "~0").replace("/", "~1"), safe="~:@!$&'()*+,;=")
        for key in keys
    )
    return url + tokens if "#" in url else url + "#" + tokens


def parse_document(
    data: Any, url: str, options: ParseOptions = DEFAULT_OPTIONS, *, owned: bool = False
) -> Document:
    """Build a ``Document`` from decoded JSON fetched from ``url``.

    ``owned=True`` lets the parser take the decoded dicts apart in place
    instead of copying them (for JSON it just decoded itself).

    Raises:
        DocumentError: the JSON is not a resource object HAL allows.
        LimitExceededError: a size limit in ``options`` was exceeded.
    """
    parser = _Parser(options, url)
    base = options.link_base or url
    owned = owned and not options.keep_source  # the source must stay as it came
    try:
        if type(data) is list and _all_objects(data):
            return parser.collection(data, url, base, owned)
        return parser.document(data, url, base, EMPTY, "$", 0, owned)
    except RecursionError as exc:
        raise DocumentError(url, "$", "document nests too deeply") from exc


# -- the cattrs converter ----------------------------------------------------

_NET_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _parse_datetime(value: Any, _type: type) -> datetime:
    """Json.NET dates (``2017-06-29T07:42:21.191694Z``, 7 fractional digits) or RFC 1123."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a date string, got {value!r}")
    match = _NET_DATE.match(value)
    if match:
        head, frac, zone = match.groups()
        text = head + (frac[:7] if frac else "")  # Json.NET writes 7 digits; Python takes 6
        parsed = datetime.fromisoformat(text)
        if zone == "Z":
            return parsed.replace(tzinfo=UTC)
        if zone:
            return datetime.fromisoformat(text + zone)
        return parsed
    return parsedate_to_datetime(value)


def _parse_bool(value: Any, _type: type) -> bool:
    """Veeam sends ``"true"``/``"False"`` strings as often as JSON booleans."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r}")


def _unstructure_link(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"href": link.href}
    if link.templated:
        out["templated"] = True
    out.update(link.props)
    return out


def _unstructure_property(prop: FormProperty) -> dict[str, Any]:
    out: dict[str, Any] = dict(prop.extra)
    out.update(
        name=prop.name,
        required=prop.required,
        readOnly=prop.read_only,
        type=prop.type,
        value=prop.value,
        templated=prop.templated,
    )
    if prop.prompt is not None:
        out["prompt"] = prop.prompt
    if prop.regex is not None:
        out["regex"] = prop.regex
    if prop.options is not None:
        out["options"] = dict(prop.options)
    return out


def _unstructure_action(action: Action) -> dict[str, Any]:
    if action.source == "_templates":  # HAL-FORMS shape
        out: dict[str, Any] = {
            "method": action.method,
            "target": action.target,
            "contentType": action.content_type,
            "properties": [_unstructure_property(p) for p in action.properties],
        }
        if action.title is not None:
            out["title"] = action.title
        return out
    return {**action.extra, "method": action.method, "uri": action.target}


def _unstructure_document(doc: Document) -> Any:
    if (
        doc.items
        and not (doc.state or doc.links or doc.actions or doc.embedded)
        and not any("#/_items/" in d.url for d in doc.items)  # Eve says so where it can
    ):
        return [_unstructure_document(d) for d in doc.items]  # a bare-array collection
    out = dict(doc.state)
    links: dict[str, Any] = {
        rel: [_unstructure_link(link) for link in links] for rel, links in doc.links.items()
    }
    if doc.curies:
        links["curies"] = [
            {"name": name, "href": href, "templated": True} for name, href in doc.curies.items()
        ]
    if links:
        out["_links"] = links
    for source in ("_actions", "_templates"):
        actions = {
            name: _unstructure_action(a) for name, a in doc.actions.items() if a.source == source
        }
        if actions:
            out[source] = actions
    if doc.embedded:
        out["_embedded"] = {
            rel: _unstructure_embedded(rel, docs, docs is doc.items)
            for rel, docs in doc.embedded.items()
        }
    if doc.items and not any(docs is doc.items for docs in doc.embedded.values()):
        # Veeam's page envelope has offset/limit beside its results; else Eve's _items.
        key = "results" if "offset" in doc.state or "limit" in doc.state else "_items"
        out[key] = [_unstructure_document(d) for d in doc.items]
    return out


def _unstructure_embedded(rel: str, docs: tuple[Document, ...], page: bool) -> Any:
    """An ``_embedded`` rel's value: an array when it is the page's items (the one array a
    HAL page embeds) or has several documents; else one object, as a server sends a
    single resource (one without ``self`` says which by its made-up URL: no array index)."""
    if len(docs) == 1 and not page:
        only = docs[0]
        if only.self_url is not None or only.url.endswith(_pointer("#", "_embedded", rel)[1:]):
            return _unstructure_document(only)
    return [_unstructure_document(d) for d in docs]


def make_converter() -> cattrs.Converter:
    """A cattrs converter with halnav's wire rules registered.

    Unstructures ``Document``/``Link``/``Action`` to JSON-ready data, and
    structures a document's state into your attrs classes with the Veeam
    reading rules: booleans also from ``"true"``/``"False"`` strings, datetimes
    from Json.NET ISO strings or RFC 1123, enums by value or name in any case, and an
    enum value the class does not know kept as the raw value (a newer server's
    ``errorCode`` must not lose the document).
    """
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook_func(_is_enum, _structure_enum)
    converter.register_structure_hook(bool, _parse_bool)
    converter.register_structure_hook(datetime, _parse_datetime)
    converter.register_unstructure_hook(Link, _unstructure_link)
    converter.register_unstructure_hook(Action, _unstructure_action)
    converter.register_unstructure_hook(Document, _unstructure_document)
    return converter


def _is_enum(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, enum.Enum)


def _structure_enum(value: Any, cls: type[enum.Enum]) -> Any:
    """``cls(value)``, else the member whose value or name matches in any case, else
    ``value`` itself: an unknown enum value is kept, not fatal."""
    with contextlib.suppress(ValueError):
        return cls(value)
    if isinstance(value, str):
        lowered = value.lower()
        for member in cls:
            if member.name.lower() == lowered or str(member.value).lower() == lowered:
                return member
    return value


_CONVERTER: Final = make_converter()


def structure_state(doc: Document, cls: type[T], *, converter: cattrs.Converter | None = None) -> T:
    """Structure ``doc.state`` into ``cls`` (an attrs class or any type cattrs knows).

    Unknown keys are ignored and a ``null`` for a field that has a default is that field
    absent (tolerant reader: Veeam writes ``null`` where a value is merely missing).

    Raises:
        DocumentError: the state does not fit ``cls``; says which field.
    """
    state = dict(doc.state)
    if attrs.has(cls):
        for field in attrs.fields(cls):
            name = field.alias or field.name
            if field.default is not attrs.NOTHING and state.get(name, 0) is None:
                del state[name]
    try:
        return (converter or _CONVERTER).structure(state, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        name = getattr(cls, "__name__", repr(cls))  # unions and aliases have no __name__
        raise DocumentError(doc.url, "$", f"state does not fit {name}: {detail}") from exc


def unstructure(value: Any) -> Any:
    """JSON-ready data for a Document, Link or Action: HAL that :func:`parse` reads back
    into an equal document (absolute hrefs, ``_embedded`` nested, page items as Veeam's
    ``results`` beside ``offset``/``limit``, else Eve's ``_items``, or a bare array).
    ``Document.source`` is the JSON as sent."""
    return _CONVERTER.unstructure(value)
