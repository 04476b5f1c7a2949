"""``Navigator``: get, follow, paginate and act on a HAL API, concurrently and safely."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import mimetypes
import os
import re
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, Self
from urllib.parse import quote, urljoin

import aiohttp
import attrs

from ._auth import Auth, BearerAuth
from ._cache import HttpCache, MemoryCache
from ._config import Lifecycle, Limits
from ._convert import ParseOptions, decode_json, parse_document, unstructure
from ._graph import Graph
from ._http import is_json_type, parse_link_header
from ._model import (
    Action,
    ActionRequest,
    Answer,
    Document,
    Link,
    Selector,
    fill_form,
    parse_selector,
)
from ._transport import (
    _SAFE,
    _URL_SAFE,
    Response,
    Transport,
    TransportStatistics,
    changed_by,
    retry_after_seconds,
)
from ._urls import DEFAULT_PORTS, origin_of
from .errors import (
    DeprecatedLinkWarning,
    DeprecatedResourceWarning,
    DocumentError,
    LimitExceededError,
    LinkNotFoundError,
    MissingVariablesError,
    StateError,
    UnsafeLinkError,
    printable,
)

__all__ = [
    "ActionBody",
    "ActionResolver",
    "Download",
    "Fetched",
    "Navigator",
    "NavigatorStatistics",
    "ResourceEvent",
]


#: Rewrites an action's body before it is sent: ``(action, body) -> body``.
#: The Veeam profile uses it to wrap options as ``{"<actionName>": options}``.
ActionBody = Callable[[Action, Any], Any]

#: Finds an action a document does not advertise itself: ``(doc, name) -> Action | None``.
#: The Veeam profile uses it for action names that changed between API versions and for the
#: v6+ organization-level search and export that no ``_actions`` lists.
ActionResolver = Callable[[Document, str], Action | None]


@attrs.frozen
class Download:
    """A non-JSON action response: streamed to ``path``, or in ``body`` when no path was given."""

    url: str
    status: int
    content_type: str
    size: int
    path: Path | None = None
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    location: str | None = None
    """The ``Location`` header resolved against the request URL, if any."""

    def __repr__(self) -> str:
        where = f" -> {self.path}" if self.path is not None else ""
        return printable(f"<Download {self.content_type or '?'} {self.size} bytes{where}>")


@attrs.frozen
class Fetched:
    """A fetched document with its HTTP status, final URL and the URL that was requested."""

    document: Document
    status: int
    url: str
    request_url: str


@attrs.frozen
class ResourceEvent:
    """What :meth:`Navigator.subscribe` callbacks get: a resource changed.

    ``kind`` is ``"update"`` (a GET brought a new representation of ``url``: ``document``;
    not for answers from the HTTP cache), ``"stale"`` (an unsafe method that succeeded
    changed ``url``: the request's URL, its same-origin ``Location``/``Content-Location``,
    the answer's ``invalidates`` links; what you hold of it is out of date) or
    ``"delete"`` (a DELETE of ``url`` succeeded).
    """

    kind: Literal["update", "stale", "delete"]
    url: str
    document: Document | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Invoked:
    """An action's answer with its HTTP status (``Navigator.invoke``): ``answer`` is the
    JSON answer as a Document, or the binary one as a Download."""

    status: int
    answer: Document | Download


@attrs.frozen
class NavigatorStatistics:
    """Counters of one Navigator, from ``Navigator.statistics()``."""

    documents: int
    actions: int
    shared_gets: int
    transport: TransportStatistics


def _encoded(doc: Document) -> bytes:
    """``doc`` as the compact HAL JSON a cache entry holds."""
    return json.dumps(unstructure(doc), separators=(",", ":")).encode()


def _is_json(response: Response) -> bool:
    """A JSON answer; one with no ``Content-Type`` is read as JSON (servers leave it out)."""
    content_type = response.content_type
    return not content_type or is_json_type(content_type)


# Status values that mean "not yet" in the status resources APIs poll (any case).
_RUNNING: Final = frozenset(
    {"accepted", "inprogress", "in_progress", "notstarted", "not_started", "pending",
     "processing", "queued", "running", "started", "waiting", "working"}
)  # fmt: skip


def _running(doc: Document) -> bool:
    """Whether a status monitor's document says the work still runs."""
    for field in ("status", "state"):
        value = doc.state.get(field)
        if isinstance(value, str) and value.lower().replace(" ", "") in _RUNNING:
            return True
    return False


def _check_used(chain: str, variables: Mapping[str, Any], used: set[str]) -> None:
    """A variable that no template on the chain took is a mistake worth saying."""
    unused = set(variables) - used
    if unused:
        raise MissingVariablesError(chain, (), sorted(used), unknown=sorted(unused))


def _page_item(doc: Document, index: int) -> Document:
    try:
        return doc.items[index]
    except IndexError:
        raise LinkNotFoundError(
            doc.url, f"item[{index}]", [f"item[0..{len(doc.items) - 1}]"]
        ) from None


_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside halnav: a warning raised deep in a
    fetch (get, follow, a crawl's worker) names the caller's line, however it got there."""
    frame = inspect.currentframe()
    level = 0
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return max(level, 1)


def _deprecated(doc: Document, headers: Mapping[str, str]) -> Document:
    """``doc`` marked with its response's ``Deprecation``/``Sunset`` headers (and its
    ``deprecation`` link), with a :class:`DeprecatedResourceWarning` naming them."""
    notice = {name.lower(): headers[name] for name in ("Deprecation", "Sunset") if name in headers}
    link = doc.find_link("deprecation")
    if link is not None:
        notice["link"] = link.href
    said = "; ".join(f"{name}: {value}" for name, value in notice.items())
    warnings.warn(
        f"{doc.url} is deprecated ({said})", DeprecatedResourceWarning, stacklevel=_callers_level()
    )
    return attrs.evolve(doc, deprecated=MappingProxyType(notice))


def _with_header_links(doc: Document, headers: Sequence[str], url: str) -> Document:
    """``doc`` with the links of its ``Link`` headers (RFC 8288) merged into its own.

    Each rel of a header link (``rel="next prev"`` is two) becomes a link like a HAL one,
    its target resolved against the response URL; a link the body already has (same rel
    and href) is not added twice. A header link whose ``anchor`` names another resource
    is about that resource, not this one: it is left out, and ``problems`` says so.
    """
    links = {rel: list(found) for rel, found in doc.links.items()}
    problems = list(doc.problems)
    for target, params in parse_link_header(headers):
        href = urljoin(url, target)
        anchor = params.get("anchor")
        if anchor is not None and urljoin(url, anchor) not in (url, doc.url):
            problems.append(f"Link header {target!r} is about {anchor!r}: not indexed")
            continue
        props = {k: v for k, v in params.items() if k not in ("rel", "anchor", "rev")}
        for rel in params.get("rel", "").split():
            existing = links.setdefault(rel, [])
            if all(link.href != href for link in existing):
                existing.append(Link(href, rel, doc.url, False, MappingProxyType(props)))
    merged = {rel: tuple(found) for rel, found in links.items() if found}
    return attrs.evolve(doc, links=MappingProxyType(merged), problems=tuple(problems))


def _page_item_where(doc: Document, key: str, value: str) -> Document:
    """The first page item whose state ``key`` is ``value`` (exactly, else in any case)."""
    texts = [
        None if item.state.get(key) is None else str(item.state.get(key)) for item in doc.items
    ]
    for wanted in (value, value.casefold()):
        for item, text in zip(doc.items, texts, strict=True):
            if text is not None and (text if wanted is value else text.casefold()) == wanted:
                return item
    present = [f"item[{key}:{text}]" for text in texts if text is not None]
    shown = present[:5] + ([f"... {len(present) - 5} more"] if len(present) > 5 else [])
    raise LinkNotFoundError(doc.url, f"item[{key}:{value}]", shown or [f"no item has {key!r}"])


def _check_url(url: str) -> None:
    # The scheme only: the transport names what else is wrong (a port out of range...).
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in DEFAULT_PORTS:
        raise UnsafeLinkError(url, "only http and https links are followed")
    if "{" in url and "}" in url:
        raise UnsafeLinkError(url, "it still contains a URI template expression; expand it first")


class Navigator:
    """Navigate a HAL (or Veeam) API: ``get``, ``follow``, ``follow_all``, ``paginate``, ``act``.

    Use it as an async context manager, or lazily (it opens on first use;
    call ``await nav.aclose()`` when done)::

        async with Navigator("https://vbo:4443/v5/", auth=token) as nav:
            org = await nav.get("RestoreSessions/0800471b-.../Organization")
            mailboxes = await nav.follow(org, "mailboxes")
            async for mailbox in nav.paginate(mailboxes):
                print(mailbox["email"])

    ``entry`` is the API root that relative paths resolve against; its origin
    (and ``trusted_origins``) are the only places credentials are sent.
    ``auth`` is an :class:`halnav.Auth` (or a plain token string). A
    ``session`` you pass is borrowed and never closed by the Navigator.
    Every fetched document is indexed in ``nav.graph`` unless ``graph=False``.
    ``prefer_embedded`` uses ``_embedded`` copies instead of fetching
    (override per call with ``fresh=True``). ``lenient`` and ``link_base``
    are the parser options (see :func:`halnav.parse`); ``pin_origin`` moves
    every absolute href onto that origin (for servers that advertise an
    internal host name in their links). ``keep_source`` keeps each document's JSON as
    the server sent it in ``Document.source`` (what ``halnav get --json`` prints; about
    twice a document's memory, so off by default). ``cache`` keeps GET answers as RFC 9111
    has a private cache keep them (``True``: a :class:`~halnav.MemoryCache`; or a
    :class:`~halnav.SqliteCache` so a walk run again revalidates; default none): fresh ones
    are reused with no request, stale ones revalidated with their ``ETag``/``Last-Modified``.
    ``cache_embedded`` also stores each ``_embedded`` resource and page item with a
    same-origin ``self``, found in a fresh answer, as the answer of that ``self`` (fresh
    as long as the answer that carried it; off by default, as HAL lets an embedded copy
    be partial): a later ``get`` of it needs no request.
    ``action_body``
    rewrites action bodies (the Veeam profile wraps them). ``host_slots`` shares
    the per-origin limit with other processes: called once per origin
    (``"https://vbo:4443"``), it returns a reusable async context manager held around
    each request attempt there (:mod:`halnav.cluster` passes a cluster-wide semaphore).

    Raises (constructor): StateError when ``auth`` is given without an
    ``entry`` or ``trusted_origins`` (halnav would not know where credentials
    may go).
    """

    def __init__(
        self,
        entry: str | None = None,
        *,
        auth: Auth | str | None = None,
        session: aiohttp.ClientSession | None = None,
        limits: Limits | None = None,
        cafile: str | None = None,
        insecure: bool = False,
        trusted_origins: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        lenient: bool = False,
        link_base: str | None = None,
        pin_origin: str | None = None,
        keep_source: bool = False,
        cache: HttpCache | bool | None = None,
        cache_embedded: bool = False,
        prefer_embedded: bool = True,
        graph: Graph | bool = True,
        action_body: ActionBody | None = None,
        action_resolver: ActionResolver | None = None,
        host_slots: Callable[[str], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        self._entry = entry
        self._limits = limits or Limits()
        if isinstance(auth, str):
            auth = BearerAuth(auth)
        trusted = [origin_of(entry)] if entry else []
        trusted.extend(trusted_origins)
        if auth is not None and not trusted:
            raise StateError(
                "auth was given but neither entry nor trusted_origins: "
                "halnav only sends credentials to origins you name"
            )
        self._transport = Transport(
            limits=self._limits,
            session=session,
            auth=auth,
            trusted_origins=trusted,
            cafile=cafile,
            insecure=insecure,
            headers=headers,
            host_slots=host_slots,
            # Not "cache or None": an empty MemoryCache has len() 0, and is still a cache.
            cache=MemoryCache() if cache is True else (None if cache is False else cache),
        )
        self._options = ParseOptions.of(
            self._limits,
            lenient=lenient,
            link_base=link_base,
            pin_origin=pin_origin,
            keep_source=keep_source,
        )
        self._prefer_embedded = prefer_embedded
        self._cache_embedded = cache_embedded and self._transport.cached
        self._graph: Graph | None = (
            graph if isinstance(graph, Graph) else (Graph() if graph else None)
        )
        self._action_body = action_body
        self._action_resolver = action_resolver
        self._state = Lifecycle.UNOPENED
        # A request in flight per URL: what it fetched, and whether it joined the graph.
        self._inflight: dict[str, asyncio.Future[tuple[Fetched, bool]]] = {}
        self._documents = 0
        self._actions = 0
        self._shared = 0
        self._listeners: list[Callable[[ResourceEvent], None]] = []

    # -- lifecycle --------------------------------------------------------
    async def open(self) -> None:
        """Open the HTTP session (done for you on first use). Idempotent.

        Raises:
            StateError: the Navigator was closed.
        """
        if self._state is Lifecycle.OPEN:
            return
        if self._state is Lifecycle.CLOSED:
            raise StateError("this Navigator is closed; create a new one")
        await self._transport.open()
        self._state = Lifecycle.OPEN

    async def aclose(self) -> None:
        """Close the session the Navigator created (a borrowed one stays open). Idempotent."""
        if self._state is Lifecycle.CLOSED:
            return
        self._state = Lifecycle.CLOSED
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_state", Lifecycle.CLOSED) is Lifecycle.OPEN:
            _warn(
                f"unclosed {self!r}; use 'async with' or 'await nav.aclose()'",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        graph = f" graph={len(self._graph)} nodes" if self._graph is not None else ""
        return f"<Navigator {self._entry or '(no entry)'} {self._state}{graph}>"

    # -- properties -------------------------------------------------------
    @property
    def entry(self) -> str | None:
        """The API root relative paths resolve against."""
        return self._entry

    @property
    def limits(self) -> Limits:
        """The limits in force."""
        return self._limits

    @property
    def graph(self) -> Graph:
        """Everything fetched so far, as a link graph.

        Raises:
            StateError: the Navigator was created with ``graph=False``.
        """
        if self._graph is None:
            raise StateError("this Navigator keeps no graph (graph=False)")
        return self._graph

    def statistics(self) -> NavigatorStatistics:
        """Counters: documents fetched, actions run, shared (single-flight) gets, transport."""
        return NavigatorStatistics(
            documents=self._documents,
            actions=self._actions,
            shared_gets=self._shared,
            transport=self._transport.statistics(),
        )

    def url(self, url_or_path: str) -> str:
        """Resolve ``url_or_path`` against ``entry`` (absolute URLs pass through)."""
        if url_or_path.startswith(("http://", "https://")):
            return url_or_path
        if self._entry is None:
            raise UnsafeLinkError(url_or_path, "a relative path needs an entry URL")
        return urljoin(self._entry, url_or_path)

    # -- fetching ---------------------------------------------------------
    async def get(self, url_or_path: str = "") -> Document:
        """Fetch and parse one document. Concurrent gets of one URL share one request.

        Raises:
            TransportError: the exchange failed (HTTPStatusError for 4xx/5xx,
                RequestTimeoutError, ConnectError, ...).
            DocumentError: the body is not a usable JSON document.
            UnsafeLinkError: the URL is not http(s) or is an unexpanded template.
        """
        return (await self.fetch(url_or_path)).document

    async def fetch(self, url_or_path: str = "", *, index: bool = True) -> Fetched:
        """Like ``get``, but also tell the HTTP status and the final URL (after redirects).

        ``index=False`` keeps the document out of :attr:`graph` until you :meth:`index` it
        (a crawler's pages read ahead join it only once they turn out to be pages).

        Raises:
            TransportError: the exchange failed (HTTPStatusError for 4xx/5xx,
                RequestTimeoutError, ConnectError, ...).
            DocumentError: the body is not a usable JSON document.
            UnsafeLinkError: the URL is not http(s) or is an unexpanded template.
        """
        url = self.url(url_or_path)
        _check_url(url)
        if self._state is not Lifecycle.OPEN:
            await self.open()
        while True:
            pending = self._inflight.get(url)
            if pending is None:
                break
            self._shared += 1
            try:
                shared, indexed = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The task that owned the request was cancelled, not us: try again ourselves.
            else:
                if index and not indexed:
                    self.index(shared)
                return shared
        future: asyncio.Future[tuple[Fetched, bool]] = asyncio.get_running_loop().create_future()
        self._inflight[url] = future
        try:
            fetched = await self._fetch(url, index=index)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must log it
            raise
        else:
            future.set_result((fetched, index))
            return fetched
        finally:
            del self._inflight[url]

    def index(self, fetched: Fetched) -> None:
        """Add a document fetched with ``fetch(..., index=False)`` to :attr:`graph` (nothing
        when the navigator keeps no graph)."""
        if self._graph is not None:
            self._graph.add(fetched.document, request_url=fetched.request_url)

    def subscribe(self, listener: Callable[[ResourceEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with a :class:`ResourceEvent` each time a resource changes
        (``update``, ``stale``, ``delete``: ketting's resource events, for live views and
        caches of your own); returns the function that unsubscribes it.

        Listeners are called synchronously, in subscription order, inside the fetch or
        action that caused the event: keep them quick; what one raises propagates to
        that call.

        >>> off = nav.subscribe(lambda event: print(event.kind, event.url))  # doctest: +SKIP
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(
        self, kind: Literal["update", "stale", "delete"], url: str, doc: Document | None
    ) -> None:
        event = ResourceEvent(kind, url, doc)
        for listener in tuple(self._listeners):
            listener(event)

    async def _fetch(self, url: str, *, index: bool = True) -> Fetched:
        response = await self._transport.request("GET", url)
        try:
            doc = self._document(response)
        except DocumentError:
            # A body cut off on its way is no answer to give again: the next GET asks.
            self._transport.forget(url)
            self._transport.forget(response.url)
            raise
        self._documents += 1
        if self._listeners and not response.cached:
            self._emit("update", doc.url, doc)
        if self._cache_embedded and not response.cached and (doc.embedded or doc.items):
            # Not from a cached carrier: its copies may be older than what a write since
            # made the cache forget.
            self._store_copies(response, doc)
        if self._graph is not None and index:
            # Edges come from each document's own links, so no parent is passed here.
            self._graph.add(doc, request_url=url)
        return Fetched(doc, response.status, response.url, url)

    def _store_copies(self, response: Response, doc: Document) -> None:
        """The embedded resources and page items of ``doc`` with a ``self``, into the cache
        as the answers of their ``self`` (the transport decides whether policy allows)."""
        copies = [d for docs in doc.embedded.values() for d in docs if docs is not doc.items]
        copies.extend(doc.items)  # a HAL page's items are also its _embedded array: once
        with_self = [(copy.self_url, copy) for copy in copies]
        # A body is made only for a copy the cache takes (none when the page is not fresh).
        self._transport.store_embedded(
            response,
            [(url, functools.partial(_encoded, copy)) for url, copy in with_self if url],
        )

    def _document(self, response: Response) -> Document:
        doc = self._parsed(response)
        raw = response.headers
        if "Link" in raw:  # rare: one lookup for the rest
            getall = getattr(raw, "getall", None)  # a multidict: every Link header
            values: Sequence[str] = getall("Link") if getall is not None else [raw["Link"]]
            doc = _with_header_links(doc, values, response.url)
        if "Deprecation" in raw or "Sunset" in raw:
            doc = _deprecated(doc, raw)
        return doc

    def _parsed(self, response: Response) -> Document:
        if not response.body:
            return Document(url=response.url)
        if not _is_json(response) and response.body.lstrip()[:1] not in (b"{", b"["):
            raise DocumentError(
                response.url,
                "$",
                f"expected a JSON or HAL document, got {response.content_type or 'no type'}",
            )
        return parse_document(
            decode_json(response.body, response.url), response.url, self._options, owned=True
        )

    async def follow(
        self, start: Document | str, *rels: str, fresh: bool = False, **variables: Any
    ) -> Document:
        """Follow a chain of rels from ``start`` (a Document, URL or path) to the last document.

        Each rel may be a selector: ``rel``, ``rel[0]``, ``rel[name:x]``.
        Templated links are expanded with ``variables`` (each template takes
        the ones it names). An ``_embedded`` copy is used instead of a fetch
        unless ``fresh=True`` or the Navigator was made with
        ``prefer_embedded=False``. A link with ``deprecation`` warns
        (``DeprecatedLinkWarning``) each time it is traversed.

        >>> mailboxes = await nav.follow(org, "mailboxes")          # doctest: +SKIP
        >>> item = await nav.follow(org, "search", q="x")           # doctest: +SKIP

        Raises:
            LinkNotFoundError: a rel is missing (the error lists what is there).
            MissingVariablesError: a template lacks variables, or a variable
                was used by no template on the chain.
            TransportError, DocumentError: as for ``get``.
        """
        doc = start if isinstance(start, Document) else await self.get(start)
        used: set[str] = set()
        for rel in rels:
            try:
                target = self._resolve_hop(doc, rel, variables, used, fresh=fresh)
            except (LinkNotFoundError, MissingVariablesError) as exc:
                exc.add_note(f"while following {' -> '.join(rels)}")
                if isinstance(exc, LinkNotFoundError) and doc.items and exc.rel[:5] != "item[":
                    last = len(doc.items) - 1
                    exc.add_note(
                        "the page has 1 item: item[0] selects it"
                        if last == 0
                        else f"the page has {last + 1} items: item[0] .. item[{last}] select one"
                    )
                raise
            doc = target if isinstance(target, Document) else await self.get(target)
        _check_used(" -> ".join(rels), variables, used)
        return doc

    def _resolve_hop(
        self,
        doc: Document,
        selector: str,
        variables: Mapping[str, Any],
        used: set[str],
        *,
        fresh: bool,
    ) -> Document | str:
        """One hop of ``follow``: a page item, an embedded copy, or the URL to fetch.

        ``item`` / ``item[N]`` step into a page's items when ``doc`` has no
        ``item`` link: items are not links, and they are the only way down
        from a Veeam page. ``item[key:value]`` selects the first item whose state field
        ``key`` is ``value`` (``item[email:alice@contoso.com]``; any case).
        """
        sel = parse_selector(selector)
        link = doc.find_link(selector)
        if link is None:
            if sel.rel == "item" and doc.items:
                if sel.key is None:
                    return _page_item(doc, sel.index or 0)
                return _page_item_where(doc, sel.key, sel.value or "")
            copy = self._embedded_copy(doc, sel, None, fresh=fresh)
            if copy is not None:
                return copy  # an embedded resource with no link of its rel
            doc.link(selector)  # raises: names what the document has
        assert link is not None
        return self._link_target(doc, sel, link, variables, used, fresh=fresh)

    def _link_target(
        self,
        doc: Document,
        sel: Selector,
        link: Link,
        variables: Mapping[str, Any],
        used: set[str],
        *,
        fresh: bool,
    ) -> Document | str:
        """The one way a link becomes a hop, for ``follow`` and ``follow_all`` alike.

        Variables go to the templates that name them (and are marked used);
        an embedded copy is taken unless ``fresh``, ``prefer_embedded=False``,
        or variables were given for this template (the caller wants that
        expansion, not the copy); a deprecated link warns each time.
        """
        mine = {k: v for k, v in variables.items() if k in link.variables} if link.templated else {}
        if not mine:
            copy = self._embedded_copy(doc, sel, link, fresh=fresh)
            if copy is not None:
                return copy
        if link.deprecation:
            warnings.warn(
                f"link {link.rel!r} -> {link.href} is deprecated: {link.deprecation}",
                DeprecatedLinkWarning,
                stacklevel=_callers_level(),
            )
        if link.templated:
            used.update(mine)
            return link.expand(**mine)
        return link.href

    def _embedded_copy(
        self, doc: Document, sel: Selector, link: Link | None, *, fresh: bool
    ) -> Document | None:
        """The ``_embedded`` copy a selector names, or None (then the link is fetched).

        The copy whose own URL is the link's href; failing that, for ``rel``
        and ``rel[N]``, the first or N-th embedded document of the rel (HAL
        pairs them by position). A ``rel[name:x]`` selector matches by URL only.
        """
        if fresh or not self._prefer_embedded:
            return None
        candidates = doc.embedded_for(sel.rel)
        if not candidates:
            return None
        if link is not None:
            same = next((c for c in candidates if c.url == link.href), None)
            if same is not None or sel.key is not None:
                return same
        if sel.index is None:
            return candidates[0] if sel.key is None else None
        try:
            return candidates[sel.index]
        except IndexError:
            return None

    async def follow_all(
        self, start: Document | str, rel: str, *, fresh: bool = False, **variables: Any
    ) -> list[Document]:
        """Follow every link of ``rel`` concurrently; return the documents in link order.

        When ``start`` has no ``rel`` links itself but is a page, the rel is
        followed from every page item instead (``follow_all(page, "folders")``
        gets each mailbox's folders). At most ``limits.concurrency`` requests
        run at once (and ``limits.per_host`` per origin). Templated links take
        the ``variables`` they name; each link's embedded copy (the one with its
        URL) is used unless ``fresh``; deprecated links warn, as in ``follow``.

        Raises:
            LinkNotFoundError: neither ``start`` nor its items have ``rel``.
            MissingVariablesError: a template lacks a variable, or one was unused.
            ExceptionGroup: fetches failed (each a TransportError/DocumentError).
        """
        doc = start if isinstance(start, Document) else await self.get(start)
        sources: Sequence[Document] = [doc] if doc.links_for(rel) else doc.items
        used: set[str] = set()
        by_url = Selector(rel, key="href")  # each link's own copy, never a neighbour's
        # Per link: an embedded copy to use as is, or the URL to fetch.
        targets: list[Document | str] = [
            self._link_target(source, by_url, link, variables, used, fresh=fresh)
            for source in sources
            for link in source.links_for(rel)
        ]
        if not targets:
            raise LinkNotFoundError(doc.url, rel, doc.rels)
        _check_used(rel, variables, used)
        results: list[Document | None] = [t if isinstance(t, Document) else None for t in targets]
        queue = iter([i for i, t in enumerate(targets) if isinstance(t, str)])

        async def worker() -> None:
            # Workers pull from one iterator: at most `concurrency` tasks, whatever the fan-out.
            for i in queue:
                url = targets[i]
                assert isinstance(url, str)
                results[i] = await self.get(url)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(len(targets), self._limits.concurrency)):
                group.create_task(worker())
        return [r for r in results if r is not None]

    async def paginate(self, start: Document | str) -> AsyncGenerator[Document, None]:
        """Yield every item of a paged collection, across all pages, in order.

        Works for Veeam pages (``{offset, limit, results, _links.next}``) and
        HAL pages (items in ``_embedded`` or ``_items``, ``next`` link).
        When the ``next`` link carries an ``offset`` (with the page's
        ``limit``) or a ``page`` number in its query, the following pages are
        fetched in parallel windows that double from 2 up to
        ``limits.readahead`` pages; the walk stops at the first short or
        empty page or a page without ``next``. At most one window minus one
        page is requested past the end. Otherwise ``next`` is followed one
        page at a time. No task outlives a ``yield``: each window is fetched
        completely before its items are handed out.

        How a collection ends: a page read ahead that fails (servers answer
        404, 410 or 416 past the last page) ends the window there, and the
        walk goes on from the last page that came, by its own ``next`` link;
        so only a page that a ``next`` link names is a failure when it fails.
        An empty page, a short page or a page without ``next`` is the end.

        The answer of an action (``act``/``invoke``) is paged the same way when its
        ``next`` link can be fetched. When it has none, or its ``next`` names the
        action's own URI (Veeam search answers: POST only), the next page is asked for
        with :meth:`next_answer_request`: nothing by default, the same POST with the
        next ``offset`` in the Veeam profile. Such pages come one at a time, and the
        walk stops when the ``offset`` does not move on.

        Raises:
            TransportError, DocumentError: as for ``get`` (items already
                yielded stay yielded).
        """
        page = start if isinstance(start, Document) else await self.get(start)
        seen = {page.canonical_url}
        window = 2
        where = start if isinstance(start, str) else start.url
        pages_read = 0
        limit = self._limits.max_pages
        while True:
            pages_read += 1
            if pages_read > limit:
                raise LimitExceededError(where, "pages of one collection", limit)
            for item in page.items:
                yield item
            next_link = page.find_link("next")
            request = page.answer.request if page.answer is not None else None
            if request is not None and page.items and _posted_next(request, next_link):
                following = self.next_answer_request(page)
                if following is None:
                    return
                again = await self._answer_page(following)
                if not _moved_on(page, again):
                    return  # a server that ignores the offset: the same page again
                page = again
                continue
            if next_link is None or not page.items:
                return
            plan = _page_plan(page, next_link.href)
            if plan is None:
                pages = [await self.get(next_link.href)]
            else:
                step, size = plan
                if len(page.items) < size:
                    return
                count = min(window, self._limits.readahead)
                window *= 2
                settled = await self._get_settled([step(k) for k in range(count)])
                if isinstance(settled[0], BaseException):
                    raise settled[0]  # the page next names: a real failure
                pages = []
                for fetched in settled:
                    if isinstance(fetched, BaseException):
                        # Read ahead past the end (404/410/416), or a failure: go on from
                        # the last page that came, by its own next link.
                        break
                    pages.append(fetched)
                for fetched in pages[:-1]:
                    pages_read += 1
                    if pages_read > limit:
                        raise LimitExceededError(where, "pages of one collection", limit)
                    for item in fetched.items:
                        yield item
                    if len(fetched.items) < size or fetched.find_link("next") is None:
                        return
            page = pages[-1]
            if page.canonical_url in seen:
                return  # a server whose next links loop
            seen.add(page.canonical_url)

    def next_answer_request(self, page: Document) -> ActionRequest | None:
        """The request for the page after ``page``, the answer of an action that no GET
        pages (see :meth:`paginate`); None: there is no way to it. A profile overrides
        it: the Veeam one POSTs again with the next ``offset`` (and ``setId``)."""
        return None

    async def _answer_page(self, request: ActionRequest) -> Document:
        _status, answer = await self._exchange(
            request.method,
            request.url,
            json=request.json,
            data=None,
            params=request.params,
            to=None,
        )
        if not isinstance(answer, Document):
            raise DocumentError(request.url, "$", "expected a JSON page of hits, got a download")
        return answer

    async def _get_settled(self, urls: list[str]) -> list[Document | Exception]:
        """GET ``urls`` concurrently; each a Document or the exception its GET raised."""

        async def one(url: str) -> Document | Exception:
            try:
                return await self.get(url)
            except Exception as exc:  # noqa: BLE001  settled per page; a cancel propagates
                return exc

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(url)) for url in urls]
        return [task.result() for task in tasks]

    # -- actions ----------------------------------------------------------
    async def act(
        self,
        doc: Document,
        name: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        to: str | os.PathLike[str] | None = None,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
        follow: bool = False,
        wait: float = 600.0,
    ) -> Document | Download:
        """Invoke the action ``name`` of ``doc`` (Veeam ``_actions`` or HAL-FORMS ``_templates``).

        With ``follow``, an asynchronous answer is followed to its outcome: a 201's
        ``Location`` (the created resource) is fetched; a 202's ``Location`` (a status
        monitor) is polled with :meth:`wait_for` for at most ``wait`` seconds and its final
        document returned. A 303 is followed by the transport in any case; 204 and 205 are
        an empty Document.

        ``json`` is sent as the JSON body (for GET/HEAD/DELETE forms its
        fields go into the query), ``data`` form-encoded. A JSON response
        comes back as a Document (an empty body as an empty Document). A
        binary response is streamed to ``to`` atomically (no partial file is
        ever left there) and returned as a :class:`Download`; without ``to``
        the bytes are returned in ``Download.body`` (``binary=False`` refuses a
        binary answer at its headers instead: a ``DocumentError``). ``progress`` is
        called with (bytes so far, announced length or None) as a download comes.
        An action may wait ``Limits.answer_timeout`` for its answer to begin.

        POST actions are not retried unless the server asked to wait
        (429/503 with Retry-After) or the request never reached it.

        A HAL-FORMS template fills the body as it says (see :func:`halnav._model.fill_form`):
        the ``value`` of each property the body leaves out is sent, and a body that misses a
        ``required`` property, changes a ``readOnly`` one or fails a ``regex`` is refused
        before anything is sent (:meth:`send` sends a request as it is).

        Raises:
            ActionNotFoundError: ``doc`` has no such action (lists those it has).
            FormError: the body does not fill the action's HAL-FORMS template.
            TransportError, DocumentError: as for ``get``.
        """
        invoked = await self.invoke(
            doc, name, json=json, data=data, params=params, to=to, binary=binary, progress=progress
        )
        answer = invoked.answer
        if not follow or not isinstance(answer, Document) or answer.location is None:
            return answer
        if invoked.status == 201:
            return await self.get(answer.location)
        if invoked.status == 202:
            retry_after = answer.answer.headers.get("Retry-After") if answer.answer else None
            return await self.wait_for(
                answer.location, wait=wait, first=retry_after_seconds(retry_after)
            )
        return answer

    async def wait_for(
        self,
        monitor: str,
        *,
        done: Callable[[Document], bool] | None = None,
        wait: float = 600.0,
        poll: float = 0.5,
        first: float | None = None,
    ) -> Document:
        """Poll the status resource ``monitor`` until the work it watches ends; return its
        last document (after a 303 to the result, the result).

        ``done`` says when (default: the monitor answered something else than 202, and its
        ``status``/``state`` field, if any, is not a running one such as ``running``,
        ``pending``, ``queued``, ``inProgress``, ``Working``). The first poll comes ``first``
        seconds after the start (the 202's ``Retry-After``, else ``poll``), the next ones
        ``poll`` seconds later, doubling up to 10 s; every poll is a fresh GET.

        Raises:
            TimeoutError: still running after ``wait`` seconds (the work goes on on the
                server; the monitor's URL is in the message).
            TransportError, DocumentError: as for ``get``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        delay = poll if first is None else first
        while True:
            if loop.time() + delay > deadline:
                raise TimeoutError(f"{monitor} still running after {wait:g} s")
            await asyncio.sleep(delay)
            fetched = await self.fetch(monitor)
            doc = fetched.document
            finished = done(doc) if done is not None else (
                fetched.status != 202 and not _running(doc)
            )  # fmt: skip
            if finished:
                return doc
            delay = min(delay * 2 if delay else poll, 10.0)

    async def invoke(
        self,
        doc: Document,
        name: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        to: str | os.PathLike[str] | None = None,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Invoked:
        """Like ``act``, but also tell the HTTP status of the answer (an :class:`Invoked`).

        >>> invoked = await nav.invoke(mailbox, "search", json={"query": "x"})  # doctest: +SKIP
        >>> invoked.status, invoked.answer  # doctest: +SKIP

        Raises:
            ActionNotFoundError, TransportError, DocumentError, FormError: as for ``act``.
            UnsafeLinkError: the action targets an origin that is not trusted (actions,
                like credentials, go only to the entry's origin and ``trusted_origins``).
        """
        action = self._action_of(doc, name)
        if not self._transport.trusts(action.target):
            # A server names an action's URI; its body (a restore's userPassword, say) goes
            # only where credentials may go, like a 307's body.
            raise UnsafeLinkError(
                action.target,
                f"the action {name!r} of {doc.url} targets an origin that is not trusted; "
                "actions go only to the entry's origin and trusted_origins",
            )
        if data is None:
            json = fill_form(action, json)
        else:
            data = fill_form(action, data)
        if self._action_body is not None:
            json = self._action_body(action, json)
        status, answer = await self._exchange(
            action.method,
            action.target,
            json=json,
            data=data,
            params=params,
            to=to,
            form=action.content_type.endswith("urlencoded"),
            binary=binary,
            progress=progress,
        )
        return Invoked(status, answer)

    def plan(
        self,
        doc: Document,
        name: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> ActionRequest:
        """The request ``act(doc, name, json=..., params=...)`` would send, not sent: for
        dry runs. The body is as the server would get it (after ``action_body``).

        Raises:
            ActionNotFoundError: ``doc`` has no such action (lists those it has).
        """
        action = self._action_of(doc, name)
        json = fill_form(action, json)
        if self._action_body is not None:
            json = self._action_body(action, json)
        return ActionRequest(
            action.method, action.target, json, MappingProxyType(dict(params or {}))
        )

    def _action_of(self, doc: Document, name: str) -> Action:
        action = self.find_action(doc, name)
        if action is None:
            doc.action(name)  # raises ActionNotFoundError, listing what doc offers
            raise AssertionError  # pragma: no cover  (doc.action found nothing either)
        if not _METHOD.fullmatch(action.method):
            where = "_templates" if action.form is not None else "_actions"
            raise DocumentError(
                doc.url, f"$.{where}.{action.name}.method", f"not an HTTP method: {action.method!r}"
            )
        return action

    def action_names(self, doc: Document) -> tuple[str, ...]:
        """The names of the actions :meth:`find_action` knows on ``doc``: those it
        advertises here; a profile adds those its API has without advertising them."""
        return tuple(doc.actions)

    def find_action(self, doc: Document, name: str) -> Action | None:
        """The action ``name`` of ``doc``: its own (any case), else the ``action_resolver``'s."""
        action = doc.find_action(name)
        if action is None and self._action_resolver is not None:
            action = self._action_resolver(doc, name)
        return action

    def download_extension(self, content_type: str, head: bytes) -> str:
        """The file extension (with its dot) for a download of ``content_type`` whose first
        bytes are ``head``: the registered one for the type when it is a data format (see
        ``SAFE_EXTENSIONS``), else ``.bin`` - a server's Content-Type must not make an
        export a script or a program (``.sh``, ``.hta``, ``.py``, ``.exe``) that a click
        runs. An untyped download (octet-stream) is named by :meth:`binary_extension`.
        """
        media = content_type.partition(";")[0].strip().lower()
        if media in ("", "application/octet-stream", "binary/octet-stream"):
            return self.binary_extension(head)
        ext = mimetypes.guess_extension(media, strict=False)
        return ext if ext in SAFE_EXTENSIONS else ".bin"

    def binary_extension(self, head: bytes) -> str:
        """The extension of an untyped download whose first bytes are ``head``: ``.bin``.
        A profile that knows its binary formats overrides it (the Veeam one tells PST,
        MSG and ZIP apart)."""
        return ".bin"

    async def send(
        self,
        method: str,
        url_or_path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        to: str | os.PathLike[str] | None = None,
    ) -> Document | Download:
        """Send a request no document advertises (e.g. Veeam ``explore``); answer as for ``act``.

        >>> await nav.send("POST", "Organizations/1/Action", json={"explore": {}}) # doctest: +SKIP

        Raises:
            TransportError, DocumentError, UnsafeLinkError: as for ``get``.
        """
        _status, answer = await self._exchange(
            method.upper(), self.url(url_or_path), json=json, data=data, params=params, to=to
        )
        return answer

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        data: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        to: str | os.PathLike[str] | None,
        form: bool = False,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> tuple[int, Document | Download]:
        _check_url(url)
        if self._state is not Lifecycle.OPEN:
            await self.open()
        query = dict(params or {})
        if method in {"GET", "HEAD", "DELETE"} and isinstance(json, Mapping):
            query.update({str(k): str(v) for k, v in json.items()})
            json = None
        if form and data is None and isinstance(json, Mapping):
            data, json = {str(k): str(v) for k, v in json.items()}, None
        response = await self._transport.request(
            method,
            url,
            json=json,
            data=data,
            params=query or None,
            to=to,
            binary=binary,
            progress=progress,
        )
        self._actions += 1
        changed = (
            changed_by(response) if response.status < 400 and method.upper() not in _SAFE else []
        )
        # Before the answer is read (it may not parse); a DELETE's own URL is deleted.
        self._changed(changed, deleted=method.upper() == "DELETE")
        raw_location = response.headers.get("Location")
        if raw_location and not raw_location.isascii():  # UTF-8, or a raw byte (\udcXX)
            raw_location = quote(raw_location, safe=_URL_SAFE, errors="surrogateescape")
        location = urljoin(url, raw_location) if raw_location else None
        if response.path is not None or (response.body and not _is_json(response)):
            return response.status, Download(
                url=response.url,
                status=response.status,
                content_type=response.content_type,
                size=response.size,
                path=response.path,
                body=response.body,
                headers=response.headers,
                location=location,
            )
        doc = self._document(response)
        request = ActionRequest(method, url, json, MappingProxyType(query))
        answer = Answer(response.status, response.headers, location, request)
        doc = attrs.evolve(doc, answer=answer)
        if changed:
            invalidated = []
            for link in doc.links_for("invalidates"):  # the answer names what it changed
                with contextlib.suppress(UnsafeLinkError):
                    self._transport.forget(link.href)
                    invalidated.append(link.href)
            self._changed(invalidated)
        if self._graph is not None and doc.links:
            self._graph.add(doc)
        return response.status, doc

    def _changed(self, urls: list[str], *, deleted: bool = False) -> None:
        """``stale`` events for what an unsafe method changed; with ``deleted``, the first
        URL (the one a DELETE named) is ``delete``."""
        if not self._listeners:
            return
        for n, url in enumerate(urls):
            self._emit("delete" if deleted and n == 0 else "stale", url, None)


# Extensions an export file may get from the server's Content-Type: data formats that no
# desktop runs when the file is opened. Anything else is saved as .bin.
SAFE_EXTENSIONS: Final = frozenset(
    {
        ".pst", ".msg", ".eml", ".zip", ".gz", ".7z", ".json", ".xml", ".csv", ".txt",
        ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods",
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp",
        ".mp3", ".mp4", ".wav", ".ics", ".vcf",
    }
)  # fmt: skip


def _posted_next(request: ActionRequest, next_link: Link | None) -> bool:
    """Whether an action answer's next page must be asked for with the action's own
    request: no ``next`` link, or one that names the action's URI (which takes no GET)."""
    if request.method in ("GET", "HEAD"):
        return False
    return next_link is None or next_link.href.partition("?")[0] == request.url.partition("?")[0]


def _moved_on(page: Document, following: Document) -> bool:
    """Whether ``following`` is a page after ``page`` (its offset is larger, or, with no
    offsets, it starts with another item)."""
    before, after = page.state.get("offset"), following.state.get("offset")
    if type(before) is int and type(after) is int:
        return after > before
    if following.items and page.items:
        return following.items[0].canonical_url != page.items[0].canonical_url
    return True


# An HTTP method is a token (RFC 9110 section 5.6.2): "PO ST" or "GE\x00T" is no request.
_METHOD: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
# A page number or size halnav computes with: ASCII digits, at most 18 (str.isdigit is also
# true for "²" and "٣", and int() refuses more than 4,300 digits).
_PAGE_NUMBER: Final = re.compile(r"[0-9]{1,18}")


def _page_plan(page: Document, next_href: str) -> tuple[Callable[[int], str], int] | None:
    """How to compute the URLs of the pages after ``page``, or None to walk ``next``.

    Returns ``(step, size)``: ``step(k)`` is the URL of the k-th page after
    ``page`` (k = 0 is ``next`` itself) and ``size`` the full page size. The
    query is edited as raw text so every other parameter keeps its bytes
    (Veeam folder ids carry ``%3D``).
    """
    head, sep, query = next_href.partition("?")
    if not sep:
        return None
    fields = query.split("&")
    names = [f.partition("=")[0].lower() for f in fields]
    if "offset" in names:
        limit = page.state.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raw = fields[names.index("limit")].partition("=")[2] if "limit" in names else ""
            if not _PAGE_NUMBER.fullmatch(raw) or int(raw) <= 0:
                return None
            limit = int(raw)
        index, unit, size = names.index("offset"), limit, limit
    elif "page" in names:
        index, unit, size = names.index("page"), 1, len(page.items)
    else:
        return None
    key, _, first = fields[index].partition("=")
    if not _PAGE_NUMBER.fullmatch(first):  # not "²", "٣٠" or 5,000 digits: walk next
        return None
    start = int(first)

    def step(k: int) -> str:
        edited = list(fields)
        edited[index] = f"{key}={start + k * unit}"
        return f"{head}?{'&'.join(edited)}"

    return step, size
