"""Immutable values for parsed HAL documents: ``Link``, ``Action``, ``Document``.

No I/O and no wire rules live here (those are in ``_convert``); this module only
holds the values and the synchronous lookups on them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final, cast
from urllib.parse import urljoin

import attrs
import uritemplate

from ._urls import short_label
from .errors import (
    ActionNotFoundError,
    FormError,
    LinkNotFoundError,
    MissingVariablesError,
    UnsafeLinkError,
    printable,
)

__all__ = [
    "EMPTY",
    "Action",
    "Answer",
    "Document",
    "Form",
    "FormProperty",
    "LazyActions",
    "Link",
    "Selector",
    "parse_selector",
]

EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})

# Operators whose variables sit in the query part: leaving them out is normal use.
_OPTIONAL_OPERATORS: Final = frozenset({"?", "&"})


@functools.lru_cache(maxsize=4096)
def _template(href: str) -> tuple[uritemplate.URITemplate, frozenset[str], frozenset[str]]:
    """Parse a URI template once; return it with its required and all variable names."""
    template = uritemplate.URITemplate(href)
    required: set[str] = set()
    for variable in template.variables:
        if variable.operator.value not in _OPTIONAL_OPERATORS:
            required.update(variable.variable_names)
    return template, frozenset(required), frozenset(template.variable_names)


def _as_template_value(value: object) -> object:
    # uritemplate drops 0 and False as if they were undefined (HAL-NOTES section 7):
    # Veeam paging starts at offset=0, so scalars are turned into strings first.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return [_as_template_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _as_template_value(v) for k, v in value.items()}
    return value


@attrs.frozen(repr=False)
class Link:
    """One HAL link object.

    ``href`` is absolute (resolved when parsed) unless the link is templated and
    the template starts with an expression; ``context`` is the URL of the
    document the link came from. Properties other than ``href``/``templated``
    are in ``props`` (``name``, ``title``, ``type``, ``deprecation``,
    ``profile``, ``hreflang`` have their own accessors; unknown ones are kept).

    >>> link = Link("https://h/v5/m{?offset,limit}", "mailboxes", "https://h/v5/o", True)
    >>> link.expand(offset=0, limit=30)
    'https://h/v5/m?offset=0&limit=30'

    Raises (``expand``): MissingVariablesError.
    """

    href: str
    rel: str
    context: str
    templated: bool = False
    props: Mapping[str, Any] = EMPTY

    @property
    def name(self) -> str | None:
        """The link's ``name`` (a secondary key among links that share a rel)."""
        return self._prop("name")

    @property
    def title(self) -> str | None:
        """The human-readable ``title``."""
        return self._prop("title")

    @property
    def type(self) -> str | None:
        """The media type hint (``type``)."""
        return self._prop("type")

    @property
    def deprecation(self) -> str | None:
        """A URL explaining the deprecation, when the server deprecates this link."""
        return self._prop("deprecation")

    @property
    def profile(self) -> str | None:
        """The ``profile`` URI (RFC 6906)."""
        return self._prop("profile")

    @property
    def hreflang(self) -> str | None:
        """The language of the target (``hreflang``)."""
        return self._prop("hreflang")

    def _prop(self, key: str) -> str | None:
        value = self.props.get(key)
        return value if isinstance(value, str) else None

    @property
    def variables(self) -> frozenset[str]:
        """All variable names of a templated link (empty when not templated)."""
        return _template(self.href)[2] if self.templated else frozenset()

    def expand(self, **variables: object) -> str:
        """Return the absolute URL with ``variables`` filled in.

        Variables of path-style expressions (``{id}``, ``{/id}``, ``{+p}``) are
        required; query expressions (``{?q}``, ``{&q}``) may be left out.
        A link that is not templated takes no variables.

        Raises:
            MissingVariablesError: a required variable is missing, or a given
                variable is not in the template.
            UnsafeLinkError: the expanded URL is not a valid URL.
        """
        if not self.templated:
            if variables:
                raise MissingVariablesError(self.href, (), (), unknown=variables)
            return self.href
        template, required, names = _template(self.href)
        missing = required.difference(variables)
        unknown = set(variables).difference(names)
        if missing or unknown:
            raise MissingVariablesError(self.href, missing, names, unknown=unknown)
        values = {k: _as_template_value(v) for k, v in variables.items() if v is not None}
        expanded = template.expand(cast(Any, values))
        try:
            return urljoin(self.context, expanded)
        except ValueError as exc:  # urlsplit refuses e.g. a broken IPv6 authority
            raise UnsafeLinkError(self.href, f"not a valid URL ({exc})") from exc

    def __repr__(self) -> str:
        extra = " templated" if self.templated else ""
        name = self.name
        if name is not None:
            extra += f" name={name!r}"
        return printable(f"<Link {self.rel} -> {self.href}{extra}>")


@attrs.frozen
class FormProperty:
    """One HAL-FORMS property, with the defaults the HAL-FORMS spec gives."""

    name: str
    prompt: str | None = None
    required: bool = False
    read_only: bool = False
    type: str = "text"
    value: Any = ""
    regex: str | None = None
    templated: bool = False
    options: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = EMPTY


@attrs.frozen
class Form:
    """The HAL-FORMS part of an action: body encoding, title and properties."""

    content_type: str = "application/json"
    title: str | None = None
    properties: tuple[FormProperty, ...] = ()


@attrs.frozen(repr=False)
class Action:
    """Something a resource lets you do: a Veeam ``_actions`` entry or a HAL-FORMS template.

    ``target`` is the absolute URL to send to, ``method`` is upper case.
    HAL-FORMS templates carry a :class:`Form` (``content_type``, ``title``,
    ``properties`` read through to it); Veeam actions have none and send JSON.
    ``extra`` keeps unknown properties of a Veeam action.
    """

    name: str
    method: str
    target: str
    context: str
    form: Form | None = None
    extra: Mapping[str, Any] = EMPTY

    @property
    def content_type(self) -> str:
        """The body encoding (``application/json`` unless a HAL-FORMS template says otherwise)."""
        return self.form.content_type if self.form is not None else "application/json"

    @property
    def title(self) -> str | None:
        """The HAL-FORMS title, if any."""
        return self.form.title if self.form is not None else None

    @property
    def properties(self) -> tuple[FormProperty, ...]:
        """The HAL-FORMS properties (empty for Veeam actions)."""
        return self.form.properties if self.form is not None else ()

    @property
    def source(self) -> str:
        """``"_templates"`` for HAL-FORMS, ``"_actions"`` for Veeam actions."""
        return "_templates" if self.form is not None else "_actions"

    def __repr__(self) -> str:
        return printable(f"<Action {self.name} {self.method} {self.target}>")


def fill_form(action: Action, body: Any) -> Any:
    """``body`` as a HAL-FORMS template says it is sent (HAL-NOTES rules 16-17): each
    property not in it that has a ``value`` gets that value; a ``required`` property
    missing (or empty), a ``readOnly`` one given another value, or a string its ``regex``
    does not match whole, is a :class:`~halnav.FormError`. A Veeam action (no form), or
    a body that is not an object, is sent as it is.

    >>> form = Form(properties=(FormProperty("q", required=True), FormProperty("n", value=30)))
    >>> search = Action("search", "POST", "https://h/s", "https://h/", form=form)
    >>> fill_form(search, {"q": "invoice"})
    {'q': 'invoice', 'n': 30}
    >>> fill_form(search, {})
    Traceback (most recent call last):
    halnav.errors.FormError: the form 'search' of https://h/ was not sent: q is required
    """
    form = action.form
    if form is None or not form.properties or not (body is None or isinstance(body, Mapping)):
        return body
    filled = dict(body or {})
    problems = []
    for prop in form.properties:
        given = prop.name in filled
        if not given and prop.value not in ("", None) and not prop.templated:
            filled[prop.name] = prop.value
        value = filled.get(prop.name)
        if prop.read_only and given and value != prop.value:
            problems.append(f"{prop.name} is read-only (its value is {prop.value!r})")
        elif prop.required and value in ("", None):
            problems.append(f"{prop.name} is required")
        elif (
            prop.regex is not None
            and isinstance(value, str)
            and given
            and _fullmatch(prop.regex, value) is False
        ):
            # Not the value: it may be a password (a HAL-FORMS type="password" with a regex).
            problems.append(f"{prop.name}: the value given does not match {prop.regex!r}")
    if problems:
        raise FormError(action.context, action.name, problems)
    return filled if filled or body is not None else None


def _fullmatch(pattern: str, value: str) -> bool | None:
    """Whether ``value`` matches ``pattern`` whole (HTML5 ``pattern``); None when the server's
    pattern is not one Python reads (then it is not checked)."""
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return None


class LazyActions(Mapping[str, Action]):
    """A read-only mapping of Veeam actions whose ``Action`` values are built on first access.

    The parser has already checked every entry (``{"uri": absolute URL, "method": str}``);
    building three Action objects per page item that nobody looks at was a measurable part
    of a walk's CPU time, so they are made when asked for.
    """

    __slots__ = ("_built", "_context", "_raw")

    def __init__(self, raw: Mapping[str, Mapping[str, str]], context: str) -> None:
        self._raw = raw
        self._context = context
        self._built: dict[str, Action] | None = None

    def __getitem__(self, name: str) -> Action:
        built = self._built
        if built is None:
            built = self._built = {}
        action = built.get(name)
        if action is None:
            value = self._raw[name]
            action = built[name] = Action(
                name, value["method"].upper(), value["uri"], self._context
            )
        return action

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def names(self) -> tuple[str, ...]:
        """The action names, without building any Action (the graph indexes only those)."""
        return tuple(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __repr__(self) -> str:
        return f"LazyActions({dict(self)!r})"


@attrs.frozen
class Selector:
    """A parsed rel selector: ``rel``, ``rel[2]``, ``rel[name:x]``, ``rel[prop:value]``."""

    rel: str
    index: int | None = None
    key: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        if self.index is not None:
            return f"{self.rel}[{self.index}]"
        if self.key is not None:
            return f"{self.rel}[{self.key}:{self.value}]"
        return self.rel


_SELECTOR = re.compile(
    r"^(?P<rel>.+?)\[(?:(?P<all>\*)|(?P<index>-?\d+)|(?P<key>[^:\]]+):(?P<value>[^\]]*))\]$"
)


@functools.lru_cache(maxsize=1024)
def parse_selector(text: str) -> Selector:
    """Parse ``rel``, ``rel[0]``, ``rel[name:x]`` (any link property may be the key: ``name``,
    ``title``, ``type``, ``profile``, ``hreflang``...) or ``rel[*]`` (every link, as ``rel``)."""
    match = _SELECTOR.match(text)
    if match is None:
        return Selector(text)
    if match["all"] is not None:
        return Selector(match["rel"])
    if match["index"] is not None:
        return Selector(match["rel"], index=int(match["index"]))
    return Selector(match["rel"], key=match["key"], value=match["value"])


def _prop_text(props: Mapping[str, Any], key: str) -> str | None:
    """A link property as selector text: JSON spelling for booleans, None when absent."""
    value = props.get(key)
    if value is None:  # absent must not match the text "None"
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@attrs.frozen
class Answer:
    """What HTTP said about an action's answer (``send``/``act``/``invoke``).

    ``location`` is the ``Location`` header resolved against the request URL (a 201's
    created resource, a 202's status monitor), else ``None``; ``headers`` are the
    response headers (case-insensitive). ``request`` is the request that was answered:
    what :meth:`~halnav.Navigator.paginate` needs to ask for the next page of an answer
    whose pages no GET reaches (a search paged by POSTing again).
    """

    status: int
    headers: Mapping[str, str] = EMPTY
    location: str | None = None
    request: ActionRequest | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ActionRequest:
    """A request an action sent: method, URL, JSON body (never in the repr) and query."""

    method: str
    url: str
    json: Any = attrs.field(default=None, repr=False)
    params: Mapping[str, str] = EMPTY


# Actions that only read data or copy it out; any other may change data on the server.
_READ_ONLY_ACTIONS: Final = ("search", "export", "save", "explore")
_READ_ONLY_METHODS: Final = ("GET", "HEAD", "OPTIONS")


def changes_data(name: str, method: str | None = None) -> bool:
    """Whether the action ``name`` (sent with ``method``, if known) may change data.

    A GET, HEAD or OPTIONS only reads, and so do the actions named ``search*``,
    ``export*``, ``save*`` and ``explore*`` (Veeam's read-only actions copy data out); any
    other action may restore, send, delete or update. The command line asks before those
    (or wants ``--yes``), and ``halnav mcp`` refuses them unless ``--allow-actions``.

    >>> changes_data("exportToPst", "POST"), changes_data("restore", "POST")
    (False, True)
    >>> changes_data("delete", "GET")
    False
    """
    if method is not None and method.upper() in _READ_ONLY_METHODS:
        return False
    return not name.lower().startswith(_READ_ONLY_ACTIONS)


# The state fields that name a resource for a person (Document.title), first found wins.
_TITLE_FIELDS: Final = ("name", "displayName", "email", "subject", "title")


@attrs.frozen(repr=False)
class Document:
    """A parsed HAL resource.

    ``url`` is where it was fetched (for embedded resources and page items:
    their ``self``, or the parent's URL plus a JSON path when they have none).
    ``state`` holds the domain fields without the reserved keys (``_links``,
    ``_embedded``, ``_actions``, ``_templates``, and a Veeam page's ``results``).
    ``links`` maps each rel to its links (always a tuple), ``actions`` each
    action name to its Action, ``embedded`` each rel to its embedded Documents,
    ``items`` the page items (Veeam ``results``, Eve ``_items``, or the single
    array in ``_embedded``). ``curies`` maps prefixes to their templates.
    ``problems`` lists what a tolerant parse skipped. ``answer`` (status, headers,
    ``location``) is set when the document is the answer of an action. ``source`` is the
    JSON as the server sent it, kept only on request.

    >>> doc.link("mailboxes").href                  # doctest: +SKIP
    >>> doc.find_link("nope") is None               # doctest: +SKIP
    >>> doc.action("exportToPst").method            # doctest: +SKIP

    Raises (``link``/``action``): LinkNotFoundError, ActionNotFoundError.
    """

    url: str
    state: Mapping[str, Any] = EMPTY
    links: Mapping[str, tuple[Link, ...]] = EMPTY
    actions: Mapping[str, Action] = EMPTY
    embedded: Mapping[str, tuple[Document, ...]] = EMPTY
    items: tuple[Document, ...] = ()
    curies: Mapping[str, str] = EMPTY
    problems: tuple[str, ...] = ()
    answer: Answer | None = attrs.field(default=None, eq=False)
    """Set on the answer of an action (``send``/``act``/``invoke``): status, headers, Location."""
    deprecated: Mapping[str, str] | None = attrs.field(default=None, eq=False, repr=False)
    """The response said this resource is deprecated: its ``Deprecation`` (RFC 9745) and
    ``Sunset`` (RFC 8594) header values, and the ``deprecation`` link, by those names;
    ``None`` when it said nothing."""
    source: Any = attrs.field(default=None, eq=False, repr=False)
    """The JSON this document was parsed from, untouched (relative hrefs, ``results``,
    ``_embedded`` state and all), when the parse was asked to keep it
    (``keep_source=True``); else ``None``. What ``halnav get --json`` prints."""

    # -- identity ---------------------------------------------------------
    @property
    def location(self) -> str | None:
        """The ``Location`` of the action answer this document is (``None`` otherwise)."""
        return self.answer.location if self.answer is not None else None

    @property
    def self_url(self) -> str | None:
        """The ``self`` href, if the document has one."""
        links = self.links.get("self")
        return links[0].href if links else None

    @property
    def canonical_url(self) -> str:
        """``self`` when present, else the URL it was fetched from."""
        return self.self_url or self.url

    # -- links ------------------------------------------------------------
    @property
    def rels(self) -> tuple[str, ...]:
        """Rels with at least one link, sorted (``curies`` is not a rel)."""
        return tuple(sorted(rel for rel, links in self.links.items() if links))

    def _rel_key(self, rel: str, keys: Mapping[str, object] | None = None) -> str | None:
        """The key in ``keys`` (``links`` by default) for ``rel``, in any case and in CURIE
        compact or expanded form."""
        keys = self.links if keys is None else keys
        if rel in keys:
            return rel
        lowered = rel.lower()
        for key in keys:
            if key.lower() == lowered:  # IANA rels compare case-insensitively (RFC 8288)
                return key
        for prefix, template in self.curies.items():
            head, _, tail = template.partition("{rel}")
            if rel.startswith(head) and rel.endswith(tail) and len(rel) >= len(head) + len(tail):
                compact = f"{prefix}:{rel[len(head) : len(rel) - len(tail)]}"
                if compact in keys:
                    return compact
            if rel.startswith(prefix + ":"):  # compact form given; links may use the expanded one
                expanded = head + rel[len(prefix) + 1 :] + tail
                if expanded in keys:
                    return expanded
        return None

    def links_for(self, selector: str) -> tuple[Link, ...]:
        """All links matching ``selector`` (``rel``, ``rel[0]``, ``rel[name:x]``); may be empty."""
        sel = parse_selector(selector)
        key = self._rel_key(sel.rel)
        if key is None:
            return ()
        links = self.links[key]
        if sel.index is not None:
            try:
                return (links[sel.index],)
            except IndexError:
                return ()
        if sel.key is not None:
            return tuple(link for link in links if _prop_text(link.props, sel.key) == sel.value)
        return links

    def find_link(self, selector: str) -> Link | None:
        """The first link matching ``selector``, or None."""
        links = self.links_for(selector)
        return links[0] if links else None

    def link(self, selector: str) -> Link:
        """The first link matching ``selector``.

        Raises:
            LinkNotFoundError: nothing matches; the error lists the rels present.
        """
        links = self.links_for(selector)
        if not links:
            raise LinkNotFoundError(self.url, selector, self._near(selector))
        return links[0]

    def _near(self, selector: str) -> tuple[str, ...]:
        """What a missed selector could have been: for ``rel[key:value]`` or ``rel[N]`` on a
        rel that is there, its links by that key or index; else the rels."""
        sel = parse_selector(selector)
        key = self._rel_key(sel.rel)
        if key is None or (sel.key is None and sel.index is None):
            return self.rels
        links = self.links[key]
        if sel.index is not None:
            return (f"{sel.rel}[0..{len(links) - 1}]",)
        assert sel.key is not None
        found = [_prop_text(link.props, sel.key) for link in links]
        return tuple(f"{sel.rel}[{sel.key}:{value}]" for value in found if value is not None)

    # -- actions ----------------------------------------------------------
    @property
    def action_names(self) -> tuple[str, ...]:
        """Names of the actions this document offers, sorted."""
        return tuple(sorted(self.actions))

    def find_action(self, name: str) -> Action | None:
        """The action called ``name`` (case-insensitive: ``exportToPst`` finds ``exporttoPst``)."""
        action = self.actions.get(name)
        if action is not None:
            return action
        lowered = name.lower()
        for key, candidate in self.actions.items():
            if key.lower() == lowered:
                return candidate
        return None

    def action(self, name: str) -> Action:
        """The action called ``name``, matched case-insensitively.

        Raises:
            ActionNotFoundError: no such action; the error lists those present.
        """
        action = self.find_action(name)
        if action is None:
            raise ActionNotFoundError(self.url, name, self.actions)
        return action

    # -- embedded ---------------------------------------------------------
    def embedded_for(self, rel: str) -> tuple[Document, ...]:
        """Embedded documents under ``rel`` (in any case, CURIE forms accepted); may be empty."""
        if rel in self.embedded:
            return self.embedded[rel]
        key = self._rel_key(rel, self.embedded)
        return self.embedded.get(key, ()) if key is not None else ()

    # -- display ----------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        """``doc["name"]`` reads a state field."""
        return self.state[key]

    def __iter__(self) -> Iterator[str]:
        raise TypeError("iterate over doc.state, doc.links or doc.items explicitly")

    @property
    def title(self) -> str | None:
        """What a person calls this resource, from its state: ``name``, ``displayName``,
        ``email``, ``subject`` or ``title`` (the first that is a non-empty string). The CLI's
        page items, the graph's labels, the REPL's reprs and the agent facade all show it."""
        state = self.state
        for field in _TITLE_FIELDS:
            value = state.get(field)
            if type(value) is str and value.strip():
                return " ".join(value.split())
        return None

    def __repr__(self) -> str:
        parts = [f"<Document {short_label(self.url)}"]
        title = self.title
        if title is not None:
            parts.append(repr(title if len(title) <= 40 else title[:39] + "…"))
        parts.append(f"rels=[{', '.join(self.rels)}]")
        if self.actions:
            parts.append(f"actions=[{', '.join(self.action_names)}]")
        if self.items:
            parts.append(f"items={len(self.items)}")
        if self.embedded:
            parts.append(f"embedded=[{', '.join(sorted(self.embedded))}]")
        return printable(" ".join(parts) + ">")  # a server's rels cannot drive a terminal
