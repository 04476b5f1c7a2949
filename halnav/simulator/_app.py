"""The aiohttp.web application imitating the Veeam Backup for Microsoft 365 REST API v5-v8.

One app serves one version (``SimulatorConfig.api_version``); what differs between versions
is read from one :class:`~halnav.simulator._versions.ApiVersion` row, never from a version
name, and each route says which versions serve it. The v6-v8 routes and answers follow
Veeam's OpenAPI specifications (a contract test holds them to it); v5 follows the seed page
and the [C] facts of API-NOTES.md.

One catch-all route feeds a small router of our own, because v5 matches paths
case-insensitively, tolerates trailing slashes, and carries percent-encoded base64 ids
(``%3D``) that must be decoded from the raw path rather than from aiohttp's decoded one.

Faults (latency, errors, throttling, drops, truncated bodies, slow answers, early token
expiry) live in one middleware; they are NOT Veeam behaviour and are off by default.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import email.utils
import functools
import io
import json
import math
import random
import re
import secrets
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Final
from urllib.parse import parse_qsl, unquote

import attrs
from aiohttp import web
from aiohttp.typedefs import Middleware

from . import _tls
from ._data import (
    Data,
    DocRef,
    FolderRef,
    ItemRef,
    OneDriveFolderRef,
    SimulatorConfig,
    en_us_time,
    json_net_date,
    quote_id,
)
from ._versions import ApiVersion, api_version

__all__ = ["Simulator", "SimulatorStats", "make_app", "open_simulator", "routes"]

# The DPAPI blob header every v5 (OWIN) access token starts with; not a credential.
_TOKEN_PREFIX: Final = "AQAAANCMnd8BFdERjHoAwE_Cl-sB"  # noqa: S105  a public format prefix
_ANTIFORGERY_COOKIE: Final = ".AspNetCore.Antiforgery.VBO365"
_DENIED: Final = "Authorization has been denied for this request."
_EXPIRED: Final = "Restore session has expired or has been stopped. Start a new restore session."
_NO_OUTLOOK: Final = (
    "64-bit version of Microsoft Outlook 2010 or later is not installed on the server. "
    "Install it to export items to PST."
)
_PST_HEADER_BYTES: Final = 512
_CHUNK_BYTES: Final = 64 * 1024
_SEARCH_YIELD_EVERY: Final = 500
_FAULT_ERRORS: Final = (500, 502, 503, 504)
_JSON: Final = "application/json"
_OCTETS: Final = "application/octet-stream"
_ZIP_TIME: Final = (2020, 1, 1, 0, 0, 0)
# json.dumps(..., ensure_ascii=False, separators=(",", ":")) without a new encoder per call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_RENDERED_ITEMS: Final = 4096
_CACHED_PATHS: Final = 4096
_CACHED_SEARCHES: Final = 2048
_CACHED_SEARCH_CHARS: Final = 8192


# ---------------------------------------------------------------------------------------------
# State


@attrs.define
class SimulatorStats:
    """Counters for tests to assert on; ``reset()`` zeroes them (``in_flight`` is live)."""

    requests: int = 0
    by_status: collections.Counter[int] = attrs.Factory(collections.Counter)
    token_grants: int = 0
    """Successful ``password`` grants."""
    token_refreshes: int = 0
    """Successful ``refresh_token`` grants."""
    sessions_started: int = 0
    sessions_stopped: int = 0
    faults_injected: collections.Counter[str] = attrs.Factory(collections.Counter)
    """By kind: latency, drop, error, throttle, slow, malformed, token_expiry."""
    exports: int = 0
    """Streams started: exporttoPst, savetoMsg, OneDrive save."""
    searches: int = 0
    restores: int = 0
    """Restore actions run (v8: asynchronous restores started)."""
    logouts: int = 0
    antiforgery_refusals: int = 0
    """Refresh grants refused for a missing or wrong antiforgery cookie (v7/v8)."""
    max_in_flight: int = 0
    unauthorized: int = 0
    """401 answers."""
    in_flight: int = 0
    """Requests being handled right now (not reset)."""

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` keeps tracking requests still running."""
        in_flight = self.in_flight
        fresh = SimulatorStats()
        for field in attrs.fields(SimulatorStats):
            setattr(self, field.name, getattr(fresh, field.name))
        self.in_flight = in_flight


@attrs.frozen
class _Refresh:
    """Who a refresh token belongs to, the access token it came with, its antiforgery value."""

    username: str
    access: str
    antiforgery: str | None


@attrs.define
class _Token:
    username: str
    expires_at: float
    """``time.monotonic()`` deadline."""
    uses: int = 0
    revoked: bool = False


@attrs.define
class _Session:
    id: str
    org: int
    kind: str
    """``Vex`` or ``Veod``."""
    point_in_time: dt.datetime
    created: dt.datetime
    initiated_by: str
    ended: dt.datetime | None = None
    restore: _RestoreJob | None = None
    """Set on the session of a v8 asynchronous restore."""

    @property
    def working(self) -> bool:
        if self.ended is None and self.restore is not None and self.restore.finished:
            self.ended = dt.datetime.now(dt.UTC)
        return self.ended is None


@attrs.define
class _RestoreJob:
    """A v8 asynchronous restore: it runs until ``done_at``, then its session is stopped."""

    items: int
    done_at: float
    """``time.monotonic()`` deadline."""
    started: dt.datetime

    @property
    def finished(self) -> bool:
        return time.monotonic() >= self.done_at


@attrs.frozen
class _Decision:
    """Every fault decision for one request, drawn before its first await."""

    delay: float = 0.0
    drop: bool = False
    error: int | None = None
    throttle: bool = False
    slow: bool = False
    malformed: bool = False


class _State:
    """Everything mutable of one simulator app: tokens, sessions, counters, the fault RNG."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.version: ApiVersion = api_version(config.api_version)
        self.data = Data(config)
        self.stats = SimulatorStats()
        self.tokens: dict[str, _Token] = {}
        self.refresh_tokens: dict[str, _Refresh] = {}
        self.sessions: dict[str, _Session] = {}
        # A separate stream from the data hashes; random is fine: faults are not security.
        self.rng = random.Random(f"halnav-faults:{config.seed}")  # noqa: S311  not crypto
        # Case-insensitive like the routes: "/mailboxes" also faults ".../Mailboxes".
        paths = config.faults.paths
        self.fault_paths = re.compile(paths, re.IGNORECASE) if paths else None
        faults = config.faults
        # Nothing to decide: no delay, and no rate that would draw from the RNG.
        self.inert = not (
            faults.latency
            or faults.jitter
            or faults.drop_rate
            or faults.error_rate
            or faults.throttle_rate
            or faults.slow_rate
            or faults.malformed_rate
        )
        # Rendered JSON of recent items (a client asks for a page, then for each item) and
        # the JSON-escaped hrefs they share; bounded, so memory stays flat.
        self.item_json = functools.lru_cache(maxsize=_RENDERED_ITEMS)(self._render_item)
        self.search_pages: collections.OrderedDict[_SearchKey, str] = collections.OrderedDict()
        self._mailbox_href = functools.lru_cache(maxsize=_CACHED_PATHS)(self._render_mailbox)
        self._folder_href = functools.lru_cache(maxsize=_CACHED_PATHS)(self._render_folder)

    def _render_mailbox(self, base: str, session_id: str, org: int, mailbox: int) -> str:
        """JSON-escaped ``base`` + the mailbox path."""
        path = _Paths(self.data, session_id, self.version).mailbox(org, mailbox)
        return _ENCODER.encode(base + path)[1:-1]

    def _render_folder(  # noqa: PLR0917  the folder's key, flat for the cache
        self, base: str, session_id: str, org: int, mailbox: int, top: int, sub: int | None
    ) -> str:
        """JSON-escaped ``base`` + the folder path."""
        path = _Paths(self.data, session_id, self.version).folder(FolderRef(org, mailbox, top, sub))
        return _ENCODER.encode(base + path)[1:-1]

    def _render_item(  # noqa: PLR0917  the item's key, flat for the cache
        self,
        base: str,
        session_id: str,
        org: int,
        mailbox: int,
        top: int,
        sub: int | None,
        index: int,
    ) -> str:
        """The JSON of ``_item_doc`` (byte for byte), from pieces cached per mailbox/folder.

        ``base`` is what every href starts with; JSON escapes characters one by one, so
        escaping it apart from the (plain ASCII) paths gives the same text.
        """
        data = self.data
        item_id = data.item_id_of(org, mailbox, top, sub, index)
        fields = data.item_fields_json(org, mailbox, top, sub, index)
        mailbox_href = self._mailbox_href(base, session_id, org, mailbox)
        folder_href = self._folder_href(base, session_id, org, mailbox, top, sub)
        self_href = f"{mailbox_href}/items/{quote_id(item_id)}"
        version = self.version
        actions = ",".join(
            f'"{name}":{{"uri":"{self_href}/{"action" if version.wrapped_actions else name}",'
            '"method":"POST"}'
            for name in _item_actions(version)
        )
        return (
            f'{{"id":"{item_id}",{fields[1:-1]},"_links":{{"self":{{"href":"{self_href}"}},'
            f'"folder":{{"href":"{folder_href}"}},"mailbox":{{"href":"{mailbox_href}"}}}},'
            f'"_actions":{{{actions}}}}}'
        )

    def faultable(self, request: web.Request) -> bool:
        """Whether faults may hit this request (the token endpoint only when asked for)."""
        if self.fault_paths is not None:
            return self.fault_paths.search(request.path) is not None
        return not request.path.rstrip("/").lower().endswith("/token")

    def decide(self, request: web.Request) -> _Decision:
        faults = self.config.faults
        if self.inert:
            return _NO_FAULTS  # what the draws below give, none of them made
        if not self.faultable(request):
            return _Decision()
        rng = self.rng

        def chance(rate: float) -> bool:
            return rate > 0 and rng.random() < rate

        delay = faults.latency
        if faults.jitter:
            delay += rng.uniform(-faults.jitter, faults.jitter)
        drop = chance(faults.drop_rate)
        error = rng.choice(_FAULT_ERRORS) if chance(faults.error_rate) else None
        return _Decision(
            delay=max(delay, 0.0),
            drop=drop,
            error=error,
            throttle=chance(faults.throttle_rate),
            slow=chance(faults.slow_rate),
            malformed=chance(faults.malformed_rate),
        )


_NO_FAULTS: Final = _Decision()
_STATE: Final = web.AppKey("halnav_simulator_state", _State)


class _ApiError(Exception):
    """Raised by handlers; rendered as ``{"message": ...}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


# ---------------------------------------------------------------------------------------------
# Paths and hrefs


@attrs.define
class _Paths:
    """Paths of one restore session's subtree, cased as the seed page and the specs write them."""

    data: Data
    session_id: str
    version: ApiVersion

    @property
    def session(self) -> str:
        return f"/{self.version.name}/RestoreSessions/{self.session_id}"

    @property
    def seed(self) -> str:
        return f"{self.session}/organization"

    @property
    def mailboxes(self) -> str:
        return f"{self.seed}/mailboxes"

    def mailbox(self, org: int, mailbox: int) -> str:
        return f"{self.mailboxes}/{self.data.mailbox_id(org, mailbox)}"

    def folders(self, org: int, mailbox: int) -> str:
        return f"{self.mailbox(org, mailbox)}/folders"

    def folder(self, folder: FolderRef) -> str:
        return f"{self.folders(folder.org, folder.mailbox)}/{quote_id(self.data.folder_id(folder))}"

    def items(self, org: int, mailbox: int) -> str:
        return f"{self.mailbox(org, mailbox)}/items"

    def item(self, item: ItemRef) -> str:
        folder = item.folder
        return f"{self.items(folder.org, folder.mailbox)}/{quote_id(self.data.item_id(item))}"

    @property
    def onedrives(self) -> str:
        return f"{self.seed}/OneDrives"

    def onedrive(self, org: int, onedrive: int) -> str:
        return f"{self.onedrives}/{self.data.onedrive_id(org, onedrive)}"

    def od_folders(self, org: int, onedrive: int) -> str:
        return f"{self.onedrive(org, onedrive)}/Folders"

    def od_folder(self, folder: OneDriveFolderRef) -> str:
        base = self.od_folders(folder.org, folder.onedrive)
        return f"{base}/{self.data.od_folder_id(folder)}"

    def documents(self, org: int, onedrive: int) -> str:
        return f"{self.onedrive(org, onedrive)}/Documents"

    def document(self, doc: DocRef) -> str:
        return f"{self.documents(doc.org, doc.onedrive)}/{self.data.document_id(doc)}"


_Query = tuple[tuple[str, str], ...]
_SearchKey = tuple[str, str, str, tuple["_Term", ...], int, int]
"""href base, session id, scope path, parsed query, offset, limit."""


def _href_base(config: SimulatorConfig, origin: str) -> str:
    """What every non-``bare`` href starts with: ``""`` (root-relative) or an origin.

    v5 writes absolute hrefs naming the server's configured host (``public_base_url``, else
    the request's); v6+ write root-relative ones, as does v5 with ``root_relative_links``.
    """
    if config.root_relative_links or not api_version(config.api_version).absolute_links:
        return ""
    return config.public_base_url.rstrip("/") if config.public_base_url else origin


def _make_href(base: str, path: str, query: _Query = (), *, bare: bool = False) -> str:
    """``base`` + path; with a root-relative ``base`` (``""``), ``bare`` drops the slash."""
    text = path + _query_text(query) if query else path
    if not base:
        return text[1:] if bare else text
    return base + text


@functools.lru_cache(maxsize=_CACHED_PATHS)
def _query_text(query: _Query) -> str:
    """``?key=value&...`` with values percent-encoded (pages repeat the same few)."""
    return "?" + "&".join(f"{key}={quote_id(value)}" for key, value in query)


def _page_query(filters: _Query, offset: int, limit: int) -> _Query:
    return (*filters, ("offset", str(offset)), ("limit", str(limit)))


def _page_offsets(total: int, limit: int) -> range:
    """Offsets of the pages a client walks from offset 0 by ``next`` links."""
    return range(0, max(total, 1), limit)


# ---------------------------------------------------------------------------------------------
# Request context


@attrs.define
class _Ctx:
    request: web.Request
    state: _State
    params: Mapping[str, str]
    query: Mapping[str, str]
    """Query parameters, names lowercased (Web API binds them case-insensitively)."""
    username: str | None
    origin: str
    """``scheme://host`` of the request."""

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    @property
    def data(self) -> Data:
        return self.state.data

    @property
    def version(self) -> ApiVersion:
        return self.state.version

    def href(self, path: str, query: _Query = (), *, bare: bool = False) -> str:
        return _make_href(_href_base(self.config, self.origin), path, query, bare=bare)

    def item_json(self, session: _Session, item: ItemRef) -> str:
        """``_item_doc`` as JSON, from the state's bounded cache."""
        folder = item.folder
        base = _href_base(self.config, self.origin)
        return self.state.item_json(
            base, session.id, folder.org, folder.mailbox, folder.top, folder.sub, item.index
        )

    def link(self, path: str, query: _Query = (), *, bare: bool = False) -> dict[str, str]:
        return {"href": self.href(path, query, bare=bare)}

    def action(self, path: str, name: str) -> dict[str, str]:
        """The ``_actions`` entry ``name`` of the resource at ``path``.

        v5 has one ``.../action`` URI per resource; v6+ a dedicated endpoint per action.
        """
        target = f"{path}/action" if self.version.wrapped_actions else f"{path}/{name}"
        return {"uri": self.href(target), "method": "POST"}

    def actions(self, path: str, *names: str) -> dict[str, dict[str, str]]:
        return {name: self.action(path, name) for name in names}

    def paging(self) -> tuple[int, int]:
        """``offset`` and ``limit`` from the query; the limit is clamped to ``max_limit``."""
        offset = self._int("offset", 0)
        limit = self._int("limit", self.config.default_limit)
        if offset < 0 or limit < 1:
            raise _ApiError(400, "The request is invalid: offset must be >= 0 and limit >= 1.")
        return offset, min(limit, self.config.max_limit)

    def _int(self, name: str, default: int) -> int:
        text = self.query.get(name, "")
        if not text.strip():
            return default
        try:
            return int(text)
        except ValueError:
            raise _ApiError(
                400, f"The request is invalid: '{text}' is not a valid {name}."
            ) from None

    def session(self, kind: str | None = None) -> _Session:
        """The live session named in the path; 404 unknown, 500 stopped (as v5 answers)."""
        session = self.state.sessions.get(self.params["session"].lower())
        if session is None:
            raise _ApiError(404, f"Restore session with ID '{self.params['session']}' not found.")
        if not session.working:
            raise _ApiError(500, _EXPIRED)
        if kind is not None and session.kind != kind:
            raise _ApiError(404, f"The restore session has no {kind} data.")
        return session

    def paths(self, session: _Session) -> _Paths:
        return _Paths(self.data, session.id, self.version)


def _json_response(
    payload: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return _json_text_response(_ENCODER.encode(payload), status, headers)


def _json_text_response(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A response whose body is already-serialised JSON."""
    return web.Response(
        body=text.encode(), status=status, headers=headers, content_type=_JSON, charset="utf-8"
    )


def _message(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json_response({"message": message}, status, headers)


def _page(
    ctx: _Ctx,
    path: str,
    filters: _Query,
    total: int,
    render: Callable[[int], dict[str, object]],
) -> web.Response:
    """The v5 page envelope: offset, limit, results, _links (first, prev, self, next)."""
    encode = _ENCODER.encode
    return _page_json(ctx, path, filters, total, lambda index: encode(render(index)))


def _page_json(
    ctx: _Ctx,
    path: str,
    filters: _Query,
    total: int,
    render: Callable[[int], str],
) -> web.Response:
    """``_page`` with results rendered as JSON text already."""
    offset, limit = ctx.paging()
    end = min(total, offset + limit)
    results = [render(index) for index in range(offset, end)]
    return _json_text_response(
        _envelope_json(
            ctx,
            path,
            filters,
            offset=offset,
            limit=limit,
            results=results,
            more=end < total,
            total=total,
        )
    )


def _envelope_json(
    ctx: _Ctx,
    path: str,
    filters: _Query,
    *,
    offset: int,
    limit: int,
    results: list[str],
    more: bool,
    total: int | None = None,
    links: bool = True,
) -> str:
    """The JSON of ``_envelope`` for results given as JSON texts (the same bytes)."""
    envelope = _envelope(
        ctx, path, filters, offset=offset, limit=limit, results=[], more=more, total=total
    )
    head = _ENCODER.encode({k: v for k, v in envelope.items() if k not in ("results", "_links")})
    tail = f',"_links":{_ENCODER.encode(envelope["_links"])}' if links else ""
    return f'{head[:-1]},"results":[{",".join(results)}]{tail}}}'


def _envelope(
    ctx: _Ctx,
    path: str,
    filters: _Query,
    *,
    offset: int,
    limit: int,
    results: list[dict[str, object]],
    more: bool,
    total: int | None = None,
) -> dict[str, object]:
    """The page envelope: offset, limit (v6+: setId; v6/v7: totalCount), results, _links.

    ``first`` and ``prev`` only where there is somewhere to go back to, ``next`` only when
    more follow: a single short page has just ``self`` (the v6 example; API-NOTES section 3).
    """
    links: dict[str, dict[str, str]] = {}
    if offset > 0:
        links["first"] = ctx.link(path, _page_query(filters, 0, limit))
        links["prev"] = ctx.link(path, _page_query(filters, max(offset - limit, 0), limit))
    links["self"] = ctx.link(path, _page_query(filters, offset, limit))
    if more:
        links["next"] = ctx.link(path, _page_query(filters, offset + limit, limit))
    envelope: dict[str, object] = {"offset": offset, "limit": limit}
    version = ctx.version
    if version.page_set_id:
        envelope["setId"] = _set_id(path, filters)
    if version.page_total_count and total is not None:
        envelope["totalCount"] = total
    envelope["results"] = results
    envelope["_links"] = links
    return envelope


@functools.lru_cache(maxsize=_CACHED_PATHS)
def _set_id(path: str, filters: _Query) -> str:
    """The cache id v6+ give a listing: stable for the same collection and filters."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, path.lower() + _query_text(filters)))


# ---------------------------------------------------------------------------------------------
# Router


_Handler = Callable[[_Ctx], Awaitable[web.StreamResponse]]
_Middleware = Middleware


_ALL: Final = frozenset({"v5", "v6", "v7", "v8"})
_V5: Final = frozenset({"v5"})
_V6_UP: Final = frozenset({"v6", "v7", "v8"})
_V7_UP: Final = frozenset({"v7", "v8"})
_V8: Final = frozenset({"v8"})


@attrs.frozen
class _Route:
    method: str
    segments: tuple[str, ...]
    """The path after ``/vN/``."""
    handler: _Handler
    auth: bool
    versions: frozenset[str]
    order: int
    """Registration order: the first registered of several matching routes wins."""
    params: tuple[tuple[int, str], ...]
    """Position and name of each ``{param}`` segment."""


_ROUTES: list[_Route] = []
# Segment count -> positions of the literal segments -> those literals -> routes. A request
# looks up one key per path shape (a handful) instead of trying every route.
_ROUTE_TABLE: dict[int, dict[tuple[int, ...], dict[tuple[str, ...], list[_Route]]]] = {}


def _route(
    method: str, pattern: str, *, auth: bool = True, versions: frozenset[str] = _ALL
) -> Callable[[_Handler], _Handler]:
    """Register ``handler`` for ``METHOD /vN/pattern`` in each of ``versions``."""

    def register(handler: _Handler) -> _Handler:
        segments = tuple(pattern.split("/"))
        params = tuple((i, part[1:-1]) for i, part in enumerate(segments) if part.startswith("{"))
        route = _Route(method, segments, handler, auth, versions, len(_ROUTES), params)
        _ROUTES.append(route)
        positions = tuple(i for i, part in enumerate(segments) if not part.startswith("{"))
        shapes = _ROUTE_TABLE.setdefault(len(segments), {})
        literals = tuple(segments[i] for i in positions)
        shapes.setdefault(positions, {}).setdefault(literals, []).append(route)
        return handler

    return register


def routes(version: str) -> list[tuple[str, str]]:
    """``(METHOD, "vN/path/{param}")`` of every route ``version`` serves (for contract tests)."""
    return [
        (route.method, "/".join((version, *route.segments)))
        for route in _ROUTES
        if version in route.versions
    ]


def _match_routes(segments: list[str], version: str) -> list[tuple[_Route, dict[str, str]]]:
    """Every route of ``version`` matching the path (case-insensitively), in registration order.

    ``segments`` start after the ``/vN/`` prefix.
    """
    shapes = _ROUTE_TABLE.get(len(segments))
    if not shapes:
        return []
    found: list[_Route] = []
    for positions, table in shapes.items():
        routes = table.get(tuple([segments[i].lower() for i in positions]))
        if routes:
            found.extend(route for route in routes if version in route.versions)
    if len(found) > 1:
        found.sort(key=lambda route: route.order)
    return [(route, {name: segments[i] for i, name in route.params}) for route in found]


def _split_path(raw_path: str) -> tuple[list[str], str]:
    """Raw path -> decoded segments (empty ones dropped: trailing slashes) and query string."""
    path, _, query = raw_path.partition("?")
    return [
        unquote(segment) if "%" in segment else segment for segment in path.split("/") if segment
    ], query


async def _dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    segments, query_string = _split_path(request.raw_path)
    version = state.version.name
    # Another version's prefix is a path this server does not have (a v5 server: /v6/...).
    in_version = bool(segments) and segments[0].lower() == version
    candidates = _match_routes(segments[1:], version) if in_version else []
    allowed = [(route, params) for route, params in candidates if route.method == request.method]
    if not candidates:
        return _message(
            404, f"No HTTP resource was found that matches the request URI '{request.url}'."
        )
    if not allowed:
        methods = ", ".join(sorted({route.method for route, _ in candidates}))
        return _message(
            405,
            f"The requested resource does not support http method '{request.method}'.",
            {"Allow": methods},
        )
    route, params = allowed[0]
    username = None
    if route.auth:
        username = _authenticate(request, state)
        if username is None:
            state.stats.unauthorized += 1
            return _message(401, _DENIED, {"WWW-Authenticate": "Bearer"})
    query: dict[str, str] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(key.lower(), value)
    ctx = _Ctx(
        request=request,
        state=state,
        params=params,
        query=query,
        username=username,
        origin=f"{request.scheme}://{request.host}",
    )
    try:
        return await route.handler(ctx)
    except _ApiError as error:
        return _message(error.status, error.message, error.headers)


def _authenticate(request: web.Request, state: _State) -> str | None:
    """The user of a valid bearer token, or ``None`` (expired, unknown, revoked, missing)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    record = state.tokens.get(token)
    if record is None or record.revoked:
        return None
    if time.monotonic() >= record.expires_at:
        del state.tokens[token]
        return None
    limit = state.config.faults.token_expiry_after
    if limit is not None and state.faultable(request):
        record.uses += 1
        if record.uses > limit:
            record.revoked = True
            state.stats.faults_injected["token_expiry"] += 1
            return None
    return record.username


# ---------------------------------------------------------------------------------------------
# Lenient bodies


def _strip_trailing_commas(text: str) -> str:
    """Drop ``,`` before ``}``/``]`` outside strings: Json.NET accepts them, clients send them."""
    if "," not in text:
        return text
    out: list[str] = []
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == ",":
            rest = text[index + 1 :].lstrip()
            if rest[:1] in ("}", "]"):
                continue
        out.append(char)
    return "".join(out)


def _lower_keys(value: object) -> object:
    if isinstance(value, dict):
        return {str(key).lower(): _lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


async def _read_action(ctx: _Ctx, allowed: tuple[str, ...]) -> tuple[str, dict[str, object]]:
    """The one-key action body: (lowercased action name, options with lowercased keys)."""
    text = (await ctx.request.text()).strip()
    try:
        body = json.loads(_strip_trailing_commas(text)) if text else None
    except ValueError:
        raise _ApiError(400, "The request is invalid: the body is not valid JSON.") from None
    if not isinstance(body, dict) or len(body) != 1:
        raise _ApiError(
            400, "The request is invalid: the body must be a JSON object with exactly one key."
        )
    ((name, options),) = body.items()
    action = str(name).lower()
    if action not in allowed:
        raise _ApiError(400, f"Action '{name}' is not supported for this resource.")
    if options is None:
        return action, {}
    if not isinstance(options, dict):
        raise _ApiError(400, f"The request is invalid: options of '{name}' must be an object.")
    lowered = _lower_keys(options)
    assert isinstance(lowered, dict)
    return action, lowered


async def _read_options(ctx: _Ctx, allowed: tuple[str, ...]) -> dict[str, object]:
    """A v6+ action body: the bare options object, property names checked strictly.

    Names match case-insensitively (Json.NET binds them so) and come back lowercased. A
    name outside ``allowed`` is a 400, so a v5-style wrapped body (``{"search": {...}}``)
    or a misspelt option (``contentKeywords`` for ``contentKeyword``) is refused instead
    of silently running with defaults. An empty body or ``null`` is no options.
    """
    text = (await ctx.request.text()).strip()
    try:
        body = json.loads(_strip_trailing_commas(text)) if text else None
    except ValueError:
        raise _ApiError(400, "The request is invalid: the body is not valid JSON.") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _ApiError(400, "The request is invalid: the body must be a JSON object.")
    lowered = _lower_keys(body)
    assert isinstance(lowered, dict)
    unknown = sorted(
        str(key) for key, name in zip(body, lowered, strict=True) if name not in allowed
    )
    if unknown:
        expected = ", ".join(allowed) or "no properties"
        raise _ApiError(
            400,
            f"The request is invalid: unknown property '{unknown[0]}' (expected {expected}).",
        )
    return lowered


def _flag(options: Mapping[str, object], name: str, default: bool) -> bool:
    """A boolean option given as ``true`` or as a string ``"true"``/``"True"``."""
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _ApiError(400, f"The request is invalid: '{name}' must be a boolean.")


_DATE_FORMATS: Final = (
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y.%m.%d",
    "%Y-%m-%d",
)


def _parse_datetime(text: str) -> dt.datetime:
    """The ``datetime`` forms v5 accepts (documented ones and what clients send)."""
    text = text.strip()
    for pattern in _DATE_FORMATS:
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
    # ISO 8601 with up to 7 fractional digits (.NET ticks): Python takes 6.
    iso = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise _ApiError(400, f"The request is invalid: cannot parse datetime '{text}'.") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------
# Authentication


def _token_date(version: ApiVersion, moment: float) -> str:
    if version.iso_token_dates:
        return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")
    return email.utils.formatdate(moment, usegmt=True)


def _oauth_error(error: str, description: str) -> web.Response:
    return _json_response({"error": error, "error_description": description}, 400)


@_route("POST", "token", auth=False)
async def _token(ctx: _Ctx) -> web.StreamResponse:
    request = ctx.request
    form: dict[str, str] = {}
    if request.content_type == _JSON:
        with contextlib.suppress(ValueError):
            body = await request.json()
            if isinstance(body, dict):
                form = {str(key).lower(): str(value) for key, value in body.items()}
    else:
        posted = await request.post()
        for key, value in posted.items():
            if isinstance(value, str):
                form.setdefault(key.lower(), value)
    state = ctx.state
    grant = form.get("grant_type", "")
    # v7/v8: the grant sets an antiforgery cookie unless disable_antiforgery_token=true; a
    # refresh must then bring it back (API-NOTES section 1.1, the v7/v8 token requestBody).
    antiforgery = ctx.version.antiforgery and (
        form.get("disable_antiforgery_token", "").strip().lower() != "true"
    )
    if grant == "password":
        username = form.get("username", "")
        if (
            username.lower() != ctx.config.username.lower()
            or form.get("password") != ctx.config.password
        ):
            return _oauth_error("invalid_grant", "The user name or password is incorrect.")
        state.stats.token_grants += 1
        return _issue_tokens(ctx, ctx.config.username, antiforgery=antiforgery)
    if grant == "refresh_token":
        refresh = form.get("refresh_token", "")
        owner = state.refresh_tokens.get(refresh)
        if owner is None:
            return _oauth_error("invalid_grant", "The refresh token is invalid or has expired.")
        if ctx.version.antiforgery and owner.antiforgery is not None:
            cookie = ctx.request.cookies.get(_ANTIFORGERY_COOKIE)
            if cookie != owner.antiforgery:
                state.stats.antiforgery_refusals += 1
                return _oauth_error(
                    "invalid_grant", "The antiforgery token is missing or does not match."
                )
        del state.refresh_tokens[refresh]
        state.stats.token_refreshes += 1
        return _issue_tokens(ctx, owner.username, antiforgery=owner.antiforgery is not None)
    return _oauth_error("unsupported_grant_type", f"Grant type '{grant}' is not supported.")


@_route("POST", "token/logout", versions=_V7_UP)
async def _logout(ctx: _Ctx) -> web.StreamResponse:
    """Revoke the caller's access token and every refresh token of the same grant chain."""
    _scheme, _, token = ctx.request.headers.get("Authorization", "").partition(" ")
    record = ctx.state.tokens.pop(token.strip(), None)
    if record is not None:
        ctx.state.stats.logouts += 1
        for refresh, owner in list(ctx.state.refresh_tokens.items()):
            if owner.access == token.strip():
                del ctx.state.refresh_tokens[refresh]
    status = ctx.version.logout_status
    assert status is not None  # the route exists only where logout does
    return web.Response(status=status)


def _issue_tokens(ctx: _Ctx, username: str, *, antiforgery: bool = False) -> web.Response:
    lifetime = ctx.config.token_lifetime
    access = _TOKEN_PREFIX + secrets.token_urlsafe(96)
    refresh = secrets.token_urlsafe(32)
    ctx.state.tokens[access] = _Token(username, time.monotonic() + lifetime)
    cookie = secrets.token_urlsafe(24) if antiforgery else None
    ctx.state.refresh_tokens[refresh] = _Refresh(username, access, cookie)
    now = time.time()
    payload = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(lifetime),
        "refresh_token": refresh,
        "userName": username,
        ".issued": _token_date(ctx.version, now),
        ".expires": _token_date(ctx.version, now + lifetime),
    }
    response = _json_response(payload, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})
    if cookie is not None:
        response.set_cookie(_ANTIFORGERY_COOKIE, cookie, path="/", httponly=True, samesite="Strict")
    return response


# ---------------------------------------------------------------------------------------------
# Organizations and restore sessions


def _organization(ctx: _Ctx, org: int) -> dict[str, object]:
    data = ctx.data
    tenant = data.tenant(org)
    return {
        "id": data.organization_id(org),
        "name": tenant,
        "officeName": tenant,
        "type": "Office365",
        "region": "Worldwide",
        "isExchangeOnline": True,
        "isSharePointOnline": True,
        "isBackedup": True,
        "firstBackuptime": json_net_date(data.first_backup(org)),
        "lastBackuptime": json_net_date(data.last_backup(org)),
        "_links": {
            "self": ctx.link(f"/{ctx.version.name}/Organizations/{data.organization_id(org)}")
        },
    }


def _find_org(ctx: _Ctx) -> int:
    org = ctx.data.find_organization(ctx.params["org"])
    if org is None:
        raise _ApiError(404, f"Organization with ID '{ctx.params['org']}' not found.")
    return org


@_route("GET", "organizations")
async def _organizations(ctx: _Ctx) -> web.StreamResponse:
    """A bare JSON array (v5-v7: API-NOTES section 2, the v6/v7 specs); a page on v8."""
    total = ctx.config.organizations
    if ctx.version.organizations_paged:
        path = f"/{ctx.version.name}/Organizations"
        return _page(ctx, path, (), total, lambda org: _organization(ctx, org))
    return _json_response([_organization(ctx, org) for org in range(total)])


@_route("GET", "organizations/{org}")
async def _organization_get(ctx: _Ctx) -> web.StreamResponse:
    return _json_response(_organization(ctx, _find_org(ctx)))


_SESSION_TYPES: Final = {"vex": "Vex", "veod": "Veod"}


@_route("POST", "organizations/{org}/action", versions=_V5)
async def _organization_action(ctx: _Ctx) -> web.StreamResponse:
    """v5 explore: ``{"explore": {"datetime", "type", ...}}`` -> 201 and the session."""
    org = _find_org(ctx)
    _, options = await _read_action(ctx, ("explore",))
    return _explore(ctx, org, options, options.get("datetime"))


_EXPLORE_OPTIONS: Final = ("datetime", "type", "showdeleted", "showallversions")


@_route("POST", "organizations/{org}/explore", versions=_V6_UP)
async def _organization_explore(ctx: _Ctx) -> web.StreamResponse:
    """v6+ explore: bare RESTExploreOptions (v8: RESTOrganizationExploreOptions)."""
    org = _find_org(ctx)
    allowed = (*_EXPLORE_OPTIONS, "repositoryid") if ctx.version.number >= 8 else _EXPLORE_OPTIONS
    options = await _read_options(ctx, allowed)
    return _explore(ctx, org, options, options.get("datetime"))


def _explore(
    ctx: _Ctx, org: int, options: Mapping[str, object], when: object
) -> web.StreamResponse:
    kind_text = str(options.get("type") or "vex").lower()
    if kind_text not in _SESSION_TYPES:
        raise _ApiError(400, f"Restore session type '{kind_text}' is not supported.")
    _flag(options, "showdeleted", default=False)
    _flag(options, "showallversions", default=False)
    latest = ctx.data.last_backup(org)
    point = latest if when in (None, "") else min(_parse_datetime(str(when)), latest)
    state = ctx.state
    session = _Session(
        id=ctx.data.session_id(len(state.sessions)),
        org=org,
        kind=_SESSION_TYPES[kind_text],
        point_in_time=point,
        created=dt.datetime.now(dt.UTC),
        initiated_by=ctx.username or ctx.config.username,
    )
    state.sessions[session.id] = session
    state.stats.sessions_started += 1
    status = ctx.version.explore_status
    headers = {"Location": ctx.href(_Paths(ctx.data, session.id, ctx.version).session)}
    return _json_response(_session_doc(ctx, session), status, headers if status == 201 else None)


def _ticks(moment: dt.datetime) -> str:
    return json_net_date(moment.replace(microsecond=0), moment.microsecond * 10)


def _session_doc(ctx: _Ctx, session: _Session) -> dict[str, object]:
    workload = "Exchange" if session.kind == "Vex" else "OneDrive"
    scope = "Mailbox restore" if session.restore is not None else "Entire organization"
    doc: dict[str, object] = {
        "id": session.id,
        "name": f"{workload} restore ({scope} - {en_us_time(session.point_in_time)})",
        "organization": ctx.data.tenant(session.org),
        "type": session.kind,
        "creationTime": _ticks(session.created),
    }
    if session.ended is not None:
        doc["endTime"] = _ticks(session.ended)
    doc["state"] = "Working" if session.working else "Stopped"
    doc["result"] = "Success"
    doc["initiatedBy"] = session.initiated_by
    doc["details"] = ""
    paths = ctx.paths(session)
    links = {"self": ctx.link(paths.session)}
    if session.restore is None:
        links["organization"] = ctx.link(paths.seed)
    if ctx.version.name != "v5":
        links["events"] = ctx.link(f"{paths.session}/Events")
    if ctx.version.async_restores:
        links["statistics"] = ctx.link(f"{paths.session}/Statistics")
    doc["_links"] = links
    return doc


def _find_session(ctx: _Ctx) -> _Session:
    session = ctx.state.sessions.get(ctx.params["session"].lower())
    if session is None:
        raise _ApiError(404, f"Restore session with ID '{ctx.params['session']}' not found.")
    return session


@_route("GET", "restoresessions")
async def _sessions(ctx: _Ctx) -> web.StreamResponse:
    sessions = list(ctx.state.sessions.values())
    path = f"/{ctx.version.name}/RestoreSessions"
    return _page(ctx, path, (), len(sessions), lambda i: _session_doc(ctx, sessions[i]))


@_route("GET", "restoresessions/{session}")
async def _session_get(ctx: _Ctx) -> web.StreamResponse:
    return _json_response(_session_doc(ctx, _find_session(ctx)))


@_route("POST", "restoresessions/{session}/action", versions=_V5)
async def _session_action(ctx: _Ctx) -> web.StreamResponse:
    session = _find_session(ctx)
    await _read_action(ctx, ("stop",))
    return _stop(ctx, session)


@_route("POST", "restoresessions/{session}/stop", versions=_V6_UP)
async def _session_stop(ctx: _Ctx) -> web.StreamResponse:
    """v6+ stop: no body; 200 (v6/v7) or 204 (v8)."""
    session = _find_session(ctx)
    await _read_options(ctx, ())
    return _stop(ctx, session)


def _stop(ctx: _Ctx, session: _Session) -> web.StreamResponse:
    if session.working:
        session.ended = dt.datetime.now(dt.UTC)
        ctx.state.stats.sessions_stopped += 1
    return web.Response(status=ctx.version.stop_status)


@_route("GET", "restoresessions/{session}/events", versions=_V6_UP)
async def _session_events(ctx: _Ctx) -> web.StreamResponse:
    """RESTRestoreSessionEvent pages: one event per v8 restore, Running until it ends."""
    session = _find_session(ctx)
    events = [] if session.restore is None else [_restore_event(ctx, session, session.restore)]
    path = f"{ctx.paths(session).session}/Events"
    return _page(ctx, path, (), len(events), lambda i: events[i])


def _restore_event(ctx: _Ctx, session: _Session, job: _RestoreJob) -> dict[str, object]:
    event: dict[str, object] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"event:{session.id}")),
        "type": "Restore",
        "status": "Success" if job.finished else "Running",
        "startTime": _ticks(job.started),
        "title": f"Restoring {job.items} items",
        "message": f"Restored {job.items} items" if job.finished else "Restoring items",
        "order": 0,
    }
    if session.ended is not None:
        event["endTime"] = _ticks(session.ended)
    return event


@_route("GET", "restoresessions/{session}/statistics", versions=_V8)
async def _session_statistics(ctx: _Ctx) -> web.StreamResponse:
    """RESTRestoreSessionStatistics: how far a (v8 asynchronous) restore got."""
    session = _find_session(ctx)
    job = session.restore
    total = job.items if job is not None else 0
    done = total if job is not None and job.finished else 0
    return _json_response(
        {
            "totalItemsCount": total,
            "restoredItemsCount": done,
            "failedItemsCount": 0,
            "skippedItemsCount": 0,
            "items": [],
        }
    )


# ---------------------------------------------------------------------------------------------
# The seed: RestoreSessions/{id}/Organization


@_route("GET", "restoresessions/{session}/organization")
async def _seed(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session()
    paths = ctx.paths(session)
    data = ctx.data
    doc: dict[str, object] = {
        "id": data.organization_id(session.org),
        "name": data.organization_name(session.org, session.point_in_time),
    }
    if not ctx.version.wrapped_actions:
        doc["type"] = "Office365"  # RESTBackupOrganization (v6+)
    if session.kind == "Vex":
        doc["_links"] = {
            "self": ctx.link(paths.seed),
            "mailboxes": ctx.link(paths.mailboxes, bare=True),
        }
        # Only v5 advertises organization-level actions; the v6+ RESTBackupOrganization has
        # no _actions, though searchExchange and exportToPst exist (the client must know).
        if ctx.version.wrapped_actions:
            doc["_actions"] = ctx.actions(paths.seed, "exporttoPst", "search")
    else:
        doc["_links"] = {
            "self": ctx.link(paths.seed),
            "onedrives": ctx.link(paths.onedrives, bare=True),
        }
    return _json_response(doc)


@_route("POST", "restoresessions/{session}/organization/action", versions=_V5)
async def _seed_action(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    action, options = await _read_action(ctx, ("exporttopst", "search"))
    return await _organization_do(ctx, session, action, options)


@_route("POST", "restoresessions/{session}/organization/searchexchange", versions=_V6_UP)
async def _seed_search(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    options = await _read_options(ctx, _SEARCH_OPTIONS)
    return await _organization_do(ctx, session, "search", options)


@_route("POST", "restoresessions/{session}/organization/exporttopst", versions=_V6_UP)
async def _seed_export(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    options = await _read_options(ctx, _EXPORT_FOLDER_OPTIONS)
    return await _organization_do(ctx, session, "exporttopst", options)


async def _organization_do(
    ctx: _Ctx, session: _Session, action: str, options: Mapping[str, object]
) -> web.StreamResponse:
    org = session.org
    mailboxes = range(ctx.config.mailboxes)

    def scope() -> Iterator[ItemRef]:
        for mailbox in mailboxes:
            yield from ctx.data.mailbox_items(org, mailbox)

    total = ctx.config.mailboxes * ctx.data.items_per_mailbox
    if action == "search":
        return await _search(ctx, session, ctx.paths(session).seed, options, scope())
    return await _export_pst(ctx, options, scope, total, ctx.data.tenant(org))


# ---------------------------------------------------------------------------------------------
# Exchange


# The bare option objects of v6+ (property names lowercased), from the specs' schemas.
_SEARCH_OPTIONS: Final = ("query",)
"""RESTSearchOptions."""
_EXPORT_FOLDER_OPTIONS: Final = ("contentkeyword", "enablepstsizelimit", "pstsizelimitbytes")
"""RESTExportFolderToPst (organization, mailbox, folder)."""
_EXPORT_ITEM_OPTIONS: Final = ("enablepstsizelimit", "pstsizelimitbytes")
"""RESTExportToPstOptions (one item)."""
_RESTORE_OPTIONS: Final = (
    "username",
    "userpassword",
    "usercode",
    "applicationid",
    "applicationcertificatepassword",
    "applicationcertificate",
    "impersonationaccountname",
    # RESTRestoreToOriginalLocation flags (changedItems, deletedItems, markRestoredAsUnread, ...)
    "changeditems",
    "deleteditems",
    "markrestoredasunread",
    "excludedrafts",
    "excludedeleteditems",
    "excludeinplaceholditems",
    "excludelitigationholditems",
)


def _exchange_actions(ctx: _Ctx, path: str) -> dict[str, dict[str, str]]:
    """The ``_actions`` of a mailbox or folder."""
    version = ctx.version
    return ctx.actions(path, version.export_action, "search", version.restore_action)


def _item_actions(version: ApiVersion) -> tuple[str, str, str]:
    return (version.save_action, version.export_action, version.restore_action)


def _mailbox_doc(ctx: _Ctx, paths: _Paths, org: int, mailbox: int) -> dict[str, object]:
    path = paths.mailbox(org, mailbox)
    top = (("parentId", ctx.version.top_folders),)
    return {
        "id": ctx.data.mailbox_id(org, mailbox),
        **ctx.data.mailbox_fields(org, mailbox),
        "_links": {
            "self": ctx.link(path),
            "folders": ctx.link(paths.folders(org, mailbox), top),
            "items": ctx.link(paths.items(org, mailbox)),
        },
        "_actions": _exchange_actions(ctx, path),
    }


def _folder_doc(ctx: _Ctx, paths: _Paths, folder: FolderRef) -> dict[str, object]:
    path = paths.folder(folder)
    folder_id = ctx.data.folder_id(folder)
    links = {"self": ctx.link(path)}
    if folder.sub is not None:
        links["parent"] = ctx.link(
            paths.folder(FolderRef(folder.org, folder.mailbox, folder.top, None))
        )
    if folder.sub is None and ctx.config.subfolders > 0:
        links["folders"] = ctx.link(
            paths.folders(folder.org, folder.mailbox), (("parentId", folder_id),)
        )
    by_folder = ((ctx.version.items_folder_param, folder_id),)
    links["items"] = ctx.link(paths.items(folder.org, folder.mailbox), by_folder)
    links["mailbox"] = ctx.link(paths.mailbox(folder.org, folder.mailbox))
    return {
        "id": folder_id,
        **ctx.data.folder_fields(folder),
        "_links": links,
        "_actions": _exchange_actions(ctx, path),
    }


def _item_doc(ctx: _Ctx, paths: _Paths, item: ItemRef) -> dict[str, object]:
    path = paths.item(item)
    folder = item.folder
    return {
        "id": ctx.data.item_id(item),
        **ctx.data.item_fields(item),
        "_links": {
            "self": ctx.link(path),
            "folder": ctx.link(paths.folder(folder)),
            "mailbox": ctx.link(paths.mailbox(folder.org, folder.mailbox)),
        },
        "_actions": ctx.actions(path, *_item_actions(ctx.version)),
    }


def _find_mailbox(ctx: _Ctx, session: _Session) -> int:
    mailbox = ctx.data.find_mailbox(session.org, ctx.params["mailbox"])
    if mailbox is None:
        raise _ApiError(404, f"Mailbox with ID '{ctx.params['mailbox']}' not found.")
    return mailbox


def _find_folder(ctx: _Ctx, session: _Session, mailbox: int, text: str) -> FolderRef:
    folder = ctx.data.find_folder(session.org, mailbox, text)
    if folder is None:
        raise _ApiError(404, f"Folder with ID '{text}' not found.")
    return folder


def _find_item(ctx: _Ctx, session: _Session, mailbox: int) -> ItemRef:
    item = ctx.data.find_item(session.org, mailbox, ctx.params["item"])
    if item is None:
        raise _ApiError(404, f"Item with ID '{ctx.params['item']}' not found.")
    return item


_MAILBOX: Final = "restoresessions/{session}/organization/mailboxes/{mailbox}"


@_route("GET", "restoresessions/{session}/organization/mailboxes")
async def _mailboxes(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    paths = ctx.paths(session)
    return _page(
        ctx,
        paths.mailboxes,
        (),
        ctx.config.mailboxes,
        lambda mailbox: _mailbox_doc(ctx, paths, session.org, mailbox),
    )


@_route("GET", _MAILBOX)
async def _mailbox_get(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    return _json_response(_mailbox_doc(ctx, ctx.paths(session), session.org, mailbox))


_Do = Callable[[_Ctx, str, Mapping[str, object]], Awaitable[web.StreamResponse]]


def _actions(
    pattern: str, v5_names: tuple[str, ...], dedicated: Mapping[str, tuple[str, ...]]
) -> Callable[[_Do], _Do]:
    """Register the action routes of one resource: how each version POSTs them.

    v5: one ``pattern/action`` route taking ``{"<name>": options}`` for ``v5_names``
    (lowercased). v6+: one ``pattern/<name>`` route per ``dedicated`` name, taking the bare
    options whose (lowercased) names are listed. Both hand ``do(ctx, name, options)`` the
    lowercased v5 name, so a handler is written once.
    """
    v6_to_v5 = {"exporttopst": "exporttopst", "search": "search", "save": "savetomsg",
                "restore": "restoretooriginallocation"}  # fmt: skip

    def register(do: _Do) -> _Do:
        async def wrapped(ctx: _Ctx) -> web.StreamResponse:
            action, options = await _read_action(ctx, v5_names)
            return await do(ctx, action, options)

        _route("POST", f"{pattern}/action", versions=_V5)(wrapped)
        for name, allowed in dedicated.items():

            async def bare(
                ctx: _Ctx, _name: str = v6_to_v5[name.lower()], _allowed: tuple[str, ...] = allowed
            ) -> web.StreamResponse:
                return await do(ctx, _name, await _read_options(ctx, _allowed))

            _route("POST", f"{pattern}/{name.lower()}", versions=_V6_UP)(bare)
        return do

    return register


_FOLDER_ACTIONS: Final = {
    "exportToPst": _EXPORT_FOLDER_OPTIONS,
    "search": _SEARCH_OPTIONS,
    "restore": _RESTORE_OPTIONS,
}


@_actions(_MAILBOX, ("exporttopst", "search", "restoretooriginallocation"), _FOLDER_ACTIONS)
async def _mailbox_do(ctx: _Ctx, action: str, options: Mapping[str, object]) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    data = ctx.data

    def scope() -> Iterator[ItemRef]:
        return data.mailbox_items(session.org, mailbox)

    if action == "search":
        path = ctx.paths(session).mailbox(session.org, mailbox)
        return await _search(ctx, session, path, options, scope())
    if action == "exporttopst":
        name = str(data.mailbox_fields(session.org, mailbox)["email"])
        return await _export_pst(ctx, options, scope, data.items_per_mailbox, name)
    return _restored(ctx, session, data.items_per_mailbox)


@_route("GET", f"{_MAILBOX}/folders")
async def _folders(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    paths = ctx.paths(session)
    org = session.org
    parent_text = ctx.query.get("parentid")
    filters: _Query = () if parent_text is None else (("parentId", parent_text),)
    data = ctx.data
    if parent_text is None and ctx.version.top_folders == "root":
        # v7+: no parentId lists every folder and subfolder (parentId=root the top level).
        total = data.folders_per_mailbox

        def render(index: int) -> dict[str, object]:
            return _folder_doc(ctx, paths, data.folder_at(org, mailbox, index))
    elif parent_text in (None, "", "null", "root"):
        total = ctx.config.folders

        def render(index: int) -> dict[str, object]:
            return _folder_doc(ctx, paths, FolderRef(org, mailbox, index, None))
    else:
        parent = _find_folder(ctx, session, mailbox, parent_text)
        # Only top-level folders have children (one level, ``subfolders`` each).
        total = ctx.config.subfolders if parent.sub is None else 0

        def render(index: int) -> dict[str, object]:
            return _folder_doc(ctx, paths, FolderRef(org, mailbox, parent.top, index))

    return _page(ctx, paths.folders(org, mailbox), filters, total, render)


@_route("GET", f"{_MAILBOX}/folders/{{folder}}")
async def _folder_get(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    folder = _find_folder(ctx, session, mailbox, ctx.params["folder"])
    return _json_response(_folder_doc(ctx, ctx.paths(session), folder))


@_actions(
    f"{_MAILBOX}/folders/{{folder}}",
    ("exporttopst", "search", "restoretooriginallocation"),
    _FOLDER_ACTIONS,
)
async def _folder_do(ctx: _Ctx, action: str, options: Mapping[str, object]) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    folder = _find_folder(ctx, session, mailbox, ctx.params["folder"])
    data = ctx.data

    def scope() -> Iterator[ItemRef]:
        return data.folder_items(folder)

    if action == "search":
        return await _search(ctx, session, ctx.paths(session).folder(folder), options, scope())
    if action == "exporttopst":
        name = str(data.folder_fields(folder)["name"])
        return await _export_pst(ctx, options, scope, ctx.config.items, name)
    return _restored(ctx, session, ctx.config.items)


@_route("GET", f"{_MAILBOX}/items")
async def _items(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    paths = ctx.paths(session)
    org = session.org
    param = ctx.version.items_folder_param
    folder_text = ctx.query.get(param.lower())
    filters: _Query = () if folder_text is None else ((param, folder_text),)
    data = ctx.data
    if folder_text in (None, "", "null", "root"):
        total = data.items_per_mailbox

        item_json = ctx.state.item_json
        base = _href_base(ctx.config, ctx.origin)

        def render(index: int) -> str:
            return item_json(base, session.id, org, mailbox, *data.item_key_at(index))
    else:
        folder = _find_folder(ctx, session, mailbox, folder_text)
        total = ctx.config.items

        def render(index: int) -> str:
            return ctx.item_json(session, ItemRef(folder, index))

    return _page_json(ctx, paths.items(org, mailbox), filters, total, render)


@_route("GET", f"{_MAILBOX}/items/{{item}}")
async def _item_get(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    item = _find_item(ctx, session, mailbox)
    return _json_text_response(ctx.item_json(session, item))


@_actions(
    f"{_MAILBOX}/items/{{item}}",
    ("savetomsg", "exporttopst", "restoretooriginallocation"),
    {"exportToPst": _EXPORT_ITEM_OPTIONS, "save": (), "restore": _RESTORE_OPTIONS},
)
async def _item_do(ctx: _Ctx, action: str, options: Mapping[str, object]) -> web.StreamResponse:
    session = ctx.session("Vex")
    mailbox = _find_mailbox(ctx, session)
    item = _find_item(ctx, session, mailbox)
    data = ctx.data
    subject = str(data.item_fields(item)["subject"])
    if action == "exporttopst":
        return await _export_pst(ctx, options, lambda: iter((item,)), 1, subject)
    if action == "savetomsg":
        body = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + data.content_bytes(
            f"msg:{data.item_id(item)}", ctx.config.pst_bytes_per_item
        )
        return await _stream(ctx, body, f"{subject}.msg")
    return _restored(ctx, session, 1)


def _restored(ctx: _Ctx, session: _Session, count: int) -> web.Response:
    """A restore's answer: statistics (v5-v7, synchronous), ``{"sessionId"}`` (v8).

    A v8 restore runs in the background in a restore session of its own [I: the spec's
    RESTAsyncRestoreResponse names a restore session]; it is Working for
    ``restore_seconds``, then Stopped, with its counts at ``.../Statistics`` and one
    event at ``.../Events``.
    """
    ctx.state.stats.restores += 1
    if not ctx.version.async_restores:
        return _exchange_restored(count)
    state = ctx.state
    now = dt.datetime.now(dt.UTC)
    job = _RestoreJob(
        items=count, done_at=time.monotonic() + ctx.config.restore_seconds, started=now
    )
    restore = _Session(
        id=ctx.data.session_id(len(state.sessions)),
        org=session.org,
        kind=session.kind,
        point_in_time=session.point_in_time,
        created=now,
        initiated_by=ctx.username or ctx.config.username,
        restore=job,
    )
    state.sessions[restore.id] = restore
    return _json_response({"sessionId": restore.id})


def _exchange_restored(count: int) -> web.Response:
    """v5 restores are synchronous and answer statistics (RESTItemRestoreStatistics)."""
    return _json_response(
        {
            "createdItemsCount": count,
            "mergedItemsCount": 0,
            "failedItemsCount": 0,
            "skippedItemsCount": 0,
        }
    )


# ---------------------------------------------------------------------------------------------
# Search and exports


_FIELD_TERMS: Final = {"from", "to", "cc", "bcc", "subject", "importance", "itemclass"}
_TERM = re.compile(r'(?:(?P<field>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"|(?P<word>\S+))')


@attrs.frozen
class _Term:
    field: str | None
    """A lowercased field name, or ``None`` for free text."""
    value: str


@functools.lru_cache(maxsize=256)
def _parse_search(query: str) -> tuple[_Term, ...]:
    """KQL-ish: ``from:x to:y subject:"two words" free words``; ANDed, case-insensitive."""
    terms = []
    for match in _TERM.finditer(query):
        field = (match["field"] or "").lower()
        value = (match["quoted"] if match["quoted"] is not None else match["word"]).lower()
        if field in _FIELD_TERMS or field in ("body", "hasattachments"):
            terms.append(_Term(None if field == "body" else field, value))
        elif field:
            # An unknown "name:value" is just text to look for.
            terms.append(_Term(None, f"{field}:{value}"))
        elif value:
            terms.append(_Term(None, value))
    return tuple(terms)


def _matches(data: Data, fields: dict[str, object], terms: tuple[_Term, ...]) -> bool:
    text: str | None = None
    for term in terms:
        if term.field is None:
            text = data.search_text(fields) if text is None else text
            if term.value not in text:
                return False
        elif term.field == "hasattachments":
            if ("attachments" in fields) != (term.value == "true"):
                return False
        else:
            key = "itemClass" if term.field == "itemclass" else term.field
            if term.value not in str(fields.get(key, "")).lower():
                return False
    return True


async def _search(
    ctx: _Ctx,
    session: _Session,
    path: str,
    options: Mapping[str, object],
    scope: Iterator[ItemRef],
) -> web.StreamResponse:
    """A page of the items in scope that match ``query``; links re-POST with offset/limit."""
    ctx.state.stats.searches += 1
    terms = _parse_search(str(options.get("query") or ""))
    offset, limit = ctx.paging()
    # Answers are pure functions of these (the data never changes): repeats are served
    # from a bounded cache of small rendered pages.
    key = (_href_base(ctx.config, ctx.origin), session.id, path, terms, offset, limit)
    cached = ctx.state.search_pages.get(key)
    if cached is not None:
        return _json_text_response(cached)
    data = ctx.data
    results: list[str] = []
    seen = 0
    more = False
    for scanned, item in enumerate(scope, start=1):
        if scanned % _SEARCH_YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let other requests run during a long scan
        if not _matches(data, data.item_fields(item), terms):
            continue
        if seen >= offset + limit:
            more = True
            break
        if seen >= offset:
            results.append(ctx.item_json(session, item))
        seen += 1
    # v5 pages a search by links to its POST-only action URI (API-NOTES section 7.14); v6+
    # answers carry setId and are paged by POSTing again with offset/limit/setId.
    v5 = ctx.version.wrapped_actions
    text = _envelope_json(
        ctx,
        f"{path}/action" if v5 else f"{path}/search",
        (),
        offset=offset,
        limit=limit,
        results=results,
        more=more,
        links=v5,
    )
    if len(text) <= _CACHED_SEARCH_CHARS:
        pages = ctx.state.search_pages
        if len(pages) >= _CACHED_SEARCHES:
            pages.popitem(last=False)
        pages[key] = text
    return _json_text_response(text)


async def _export_pst(
    ctx: _Ctx,
    options: Mapping[str, object],
    scope: Callable[[], Iterator[ItemRef]],
    total: int,
    name: str,
) -> web.StreamResponse:
    """Stream a fake PST: a 512-byte header plus ``pst_bytes_per_item`` per exported item."""
    if not ctx.config.outlook_installed:
        raise _ApiError(500, _NO_OUTLOOK)
    data = ctx.data
    keywords = str(options.get("contentkeywords") or options.get("contentkeyword") or "")
    terms = _parse_search(keywords)
    if terms:
        total = sum(1 for item in scope() if _matches(data, data.item_fields(item), terms))
    per_item = ctx.config.pst_bytes_per_item
    response = _start_stream(ctx, _PST_HEADER_BYTES + total * per_item, f"{name}.pst")
    await response.prepare(ctx.request)
    buffer = bytearray(b"!BDN" + data.content_bytes(f"pst-header:{name}", _PST_HEADER_BYTES - 4))
    for item in scope():
        if terms and not _matches(data, data.item_fields(item), terms):
            continue
        buffer += data.content_bytes(f"pst:{data.item_id(item)}", per_item)
        if len(buffer) >= _CHUNK_BYTES:
            await response.write(bytes(buffer))
            buffer.clear()
    await response.write(bytes(buffer))
    await response.write_eof()
    return response


def _start_stream(ctx: _Ctx, length: int, filename: str) -> web.StreamResponse:
    ctx.state.stats.exports += 1
    safe = re.sub(r'[\\/:*?"<>|\r\n]', "_", filename)
    response = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{safe}"'})
    response.content_type = _OCTETS
    response.content_length = length
    return response


async def _stream(ctx: _Ctx, body: bytes, filename: str) -> web.StreamResponse:
    response = _start_stream(ctx, len(body), filename)
    await response.prepare(ctx.request)
    for start in range(0, len(body), _CHUNK_BYTES):
        await response.write(body[start : start + _CHUNK_BYTES])
    await response.write_eof()
    return response


# ---------------------------------------------------------------------------------------------
# OneDrive


_ONEDRIVE: Final = "restoresessions/{session}/organization/onedrives/{onedrive}"


def _onedrive_actions_of(ctx: _Ctx, path: str) -> dict[str, object]:
    """v5 advertises save/restore; v6+ OneDrive resources carry only ``_links``."""
    if not ctx.version.wrapped_actions:
        return {}
    return {"_actions": ctx.actions(path, "save", "restoretoOriginallocation")}


def _onedrive_doc(ctx: _Ctx, paths: _Paths, org: int, onedrive: int) -> dict[str, object]:
    path = paths.onedrive(org, onedrive)
    root = (("parentId", "null"),)
    return {
        "id": ctx.data.onedrive_id(org, onedrive),
        **ctx.data.onedrive_fields(org, onedrive),
        "_links": {
            "self": ctx.link(path),
            "folders": ctx.link(paths.od_folders(org, onedrive), root),
            "documents": ctx.link(paths.documents(org, onedrive), root),
        },
        **_onedrive_actions_of(ctx, path),
    }


def _od_folder_doc(ctx: _Ctx, paths: _Paths, folder: OneDriveFolderRef) -> dict[str, object]:
    path = paths.od_folder(folder)
    folder_id = ctx.data.od_folder_id(folder)
    return {
        "id": folder_id,
        **ctx.data.od_folder_fields(folder),
        "_links": {
            "self": ctx.link(path),
            "onedrive": ctx.link(paths.onedrive(folder.org, folder.onedrive)),
            "documents": ctx.link(
                paths.documents(folder.org, folder.onedrive), (("parentId", folder_id),)
            ),
        },
        **_onedrive_actions_of(ctx, path),
    }


def _document_doc(ctx: _Ctx, paths: _Paths, doc: DocRef) -> dict[str, object]:
    path = paths.document(doc)
    links = {
        "self": ctx.link(path),
        "onedrive": ctx.link(paths.onedrive(doc.org, doc.onedrive)),
    }
    if doc.folder is not None:
        links["parent"] = ctx.link(
            paths.od_folder(OneDriveFolderRef(doc.org, doc.onedrive, doc.folder))
        )
    return {
        "id": ctx.data.document_id(doc),
        **ctx.data.document_fields(doc),
        "_links": links,
        **_onedrive_actions_of(ctx, path),
    }


def _find_onedrive(ctx: _Ctx, session: _Session) -> int:
    onedrive = ctx.data.find_onedrive(session.org, ctx.params["onedrive"])
    if onedrive is None:
        raise _ApiError(404, f"OneDrive with ID '{ctx.params['onedrive']}' not found.")
    return onedrive


def _find_od_folder(ctx: _Ctx, session: _Session, onedrive: int, text: str) -> OneDriveFolderRef:
    folder = ctx.data.find_od_folder(session.org, onedrive, text)
    if folder is None:
        raise _ApiError(404, f"Folder with ID '{text}' not found.")
    return folder


def _find_document(ctx: _Ctx, session: _Session, onedrive: int) -> DocRef:
    doc = ctx.data.find_document(session.org, onedrive, ctx.params["document"])
    if doc is None:
        raise _ApiError(404, f"Document with ID '{ctx.params['document']}' not found.")
    return doc


@_route("GET", "restoresessions/{session}/organization/onedrives")
async def _onedrives(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    paths = ctx.paths(session)
    return _page(
        ctx,
        paths.onedrives,
        (),
        ctx.config.onedrives,
        lambda onedrive: _onedrive_doc(ctx, paths, session.org, onedrive),
    )


@_route("GET", _ONEDRIVE)
async def _onedrive_get(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    return _json_response(_onedrive_doc(ctx, ctx.paths(session), session.org, onedrive))


@_route("GET", f"{_ONEDRIVE}/folders")
async def _od_folders(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    paths = ctx.paths(session)
    parent_text = ctx.query.get("parentid")
    filters: _Query = () if parent_text is None else (("parentId", parent_text),)
    total = ctx.config.folders
    if parent_text not in (None, "", "null"):
        _find_od_folder(ctx, session, onedrive, parent_text)
        total = 0  # OneDrive folders are one level deep here

    def render(index: int) -> dict[str, object]:
        return _od_folder_doc(ctx, paths, OneDriveFolderRef(session.org, onedrive, index))

    return _page(ctx, paths.od_folders(session.org, onedrive), filters, total, render)


@_route("GET", f"{_ONEDRIVE}/folders/{{folder}}")
async def _od_folder_get(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    folder = _find_od_folder(ctx, session, onedrive, ctx.params["folder"])
    return _json_response(_od_folder_doc(ctx, ctx.paths(session), folder))


@_route("GET", f"{_ONEDRIVE}/documents")
async def _documents(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    paths = ctx.paths(session)
    parent_text = ctx.query.get("parentid")
    filters: _Query = () if parent_text is None else (("parentId", parent_text),)
    folder: int | None = None
    if parent_text not in (None, "", "null"):
        folder = _find_od_folder(ctx, session, onedrive, parent_text).folder

    def render(index: int) -> dict[str, object]:
        return _document_doc(ctx, paths, DocRef(session.org, onedrive, folder, index))

    return _page(ctx, paths.documents(session.org, onedrive), filters, ctx.config.documents, render)


@_route("GET", f"{_ONEDRIVE}/documents/{{document}}")
async def _document_get(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    doc = _find_document(ctx, session, onedrive)
    return _json_response(_document_doc(ctx, ctx.paths(session), doc))


def _onedrive_restored(count: int) -> web.Response:
    """OneDrive restore statistics (RESTCommonRestoreStatistics field names)."""
    return _json_response(
        {
            "totalItemsCount": count,
            "restoredItemsCount": count,
            "failedItemsCount": 0,
            "skippedItemsByErrorCount": 0,
            "skippedItemsByNoChangesCount": 0,
            "failedRestrictionsCount": 0,
        }
    )


async def _save_documents(
    ctx: _Ctx, docs: list[DocRef], name: str, *, as_zip: bool
) -> web.StreamResponse:
    """One document streams as itself; several (or ``asZip``) as a deterministic ZIP."""
    data = ctx.data

    def content(doc: DocRef) -> bytes:
        size = data.document_fields(doc)["sizeBytes"]
        assert isinstance(size, int)
        return data.content_bytes(f"doc:{data.document_id(doc)}", size)

    if len(docs) == 1 and not as_zip:
        return await _stream(ctx, content(docs[0]), str(data.document_fields(docs[0])["name"]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as writer:
        for doc in docs:
            entry = zipfile.ZipInfo(f"{data.document_id(doc)}/{data.document_fields(doc)['name']}")
            entry.date_time = _ZIP_TIME
            writer.writestr(entry, content(doc))
    return await _stream(ctx, archive.getvalue(), f"{name}.zip")


async def _onedrive_answer(  # noqa: PLR0917  the action's context, passed through
    ctx: _Ctx,
    session: _Session,
    action: str,
    options: Mapping[str, object],
    docs: list[DocRef],
    name: str,
    *,
    single: bool,
) -> web.StreamResponse:
    if action == "restoretooriginallocation":
        if ctx.version.async_restores:
            return _restored(ctx, session, len(docs))
        ctx.state.stats.restores += 1
        return _onedrive_restored(len(docs))
    as_zip = _flag(options, "aszip", default=not single)
    return await _save_documents(ctx, docs, name, as_zip=as_zip)


_OD_V5_ACTIONS: Final = ("save", "restoretooriginallocation")
# RESTSaveOneDriveDocumentOptions; RESTRestoreToOriginal (v8 adds oneDriveId, isFolder).
_OD_ACTIONS: Final = {
    "save": ("aszip",),
    "restore": (
        "documentaction",
        "username",
        "userpassword",
        "usercode",
        "applicationid",
        "applicationcertificatepassword",
        "applicationcertificate",
        "officeregion",
        "onedriveid",
        "isfolder",
        "restorepermissions",
        "sendsharednotification",
        "restorechangedfiles",
        "restoredeletedfiles",
    ),
}


@_actions(_ONEDRIVE, _OD_V5_ACTIONS, _OD_ACTIONS)
async def _onedrive_do(ctx: _Ctx, action: str, options: Mapping[str, object]) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    org = session.org
    count = ctx.config.documents
    folders: list[int | None] = [None, *range(ctx.config.folders)]
    docs = [DocRef(org, onedrive, folder, index) for folder in folders for index in range(count)]
    name = str(ctx.data.onedrive_fields(org, onedrive)["name"])
    return await _onedrive_answer(ctx, session, action, options, docs, name, single=False)


@_actions(f"{_ONEDRIVE}/folders/{{folder}}", _OD_V5_ACTIONS, _OD_ACTIONS)
async def _od_folder_do(
    ctx: _Ctx, action: str, options: Mapping[str, object]
) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    folder = _find_od_folder(ctx, session, onedrive, ctx.params["folder"])
    docs = [
        DocRef(session.org, onedrive, folder.folder, index) for index in range(ctx.config.documents)
    ]
    name = str(ctx.data.od_folder_fields(folder)["name"])
    return await _onedrive_answer(ctx, session, action, options, docs, name, single=False)


@_actions(f"{_ONEDRIVE}/documents/{{document}}", _OD_V5_ACTIONS, _OD_ACTIONS)
async def _document_do(ctx: _Ctx, action: str, options: Mapping[str, object]) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    doc = _find_document(ctx, session, onedrive)
    return await _onedrive_answer(ctx, session, action, options, [doc], "document", single=True)


# ---------------------------------------------------------------------------------------------
# Faults middleware and the application


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


@web.middleware
async def _faults_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Counts every request, and injects the configured (non-Veeam) faults."""
    state = request.app[_STATE]
    stats = state.stats
    stats.requests += 1
    stats.in_flight += 1
    stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
    # Drawn before any await, so outcomes depend only on the order requests arrive in.
    decision = state.decide(request)
    faults = state.config.faults
    try:
        if decision.delay > 0:
            stats.faults_injected["latency"] += 1
            await asyncio.sleep(decision.delay)
        if decision.drop:
            stats.faults_injected["drop"] += 1
            if request.transport is not None:
                request.transport.close()
            # aiohttp treats a cancelled handler as a vanished client: nothing is written.
            raise asyncio.CancelledError
        response: web.StreamResponse
        if decision.error is not None:
            stats.faults_injected["error"] += 1
            response = _message(decision.error, f"Simulated fault: HTTP {decision.error}.")
        elif decision.throttle:
            stats.faults_injected["throttle"] += 1
            headers = {"Retry-After": _retry_after(faults.retry_after)}
            response = _message(429, "Simulated fault: too many requests.", headers)
        else:
            if decision.slow:
                stats.faults_injected["slow"] += 1
                await asyncio.sleep(faults.slow_seconds)
            response = await handler(request)
            if (
                decision.malformed
                and isinstance(response, web.Response)
                and response.status == 200
                and response.content_type == _JSON
                and isinstance(response.body, bytes)
            ):
                stats.faults_injected["malformed"] += 1
                # Half of any JSON object or array is never valid JSON.
                response.body = response.body[: max(1, len(response.body) // 2)]
        stats.by_status[response.status] += 1
        return response
    finally:
        stats.in_flight -= 1


def make_app(
    config: SimulatorConfig, *, middlewares: Sequence[_Middleware] = ()
) -> web.Application:
    """Build the simulator's ``aiohttp.web`` application (serve it however you like).

    ``middlewares`` run inside the simulator's own (which counts requests and injects
    faults): a contract test records every answer there.

    Example::

        app = make_app(SimulatorConfig(mailboxes=10))
        web.run_app(app, port=4443)
    """
    app = web.Application(middlewares=[_faults_middleware, *middlewares])
    app[_STATE] = _State(config)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


# ---------------------------------------------------------------------------------------------
# Running it


@attrs.define
class Simulator:
    """A running simulator, as yielded by ``open_simulator``.

    Example::

        async with open_simulator(SimulatorConfig(items=50)) as sim:
            print(sim.api, sim.username, sim.password)
    """

    url: str
    """The origin it listens on, e.g. ``http://127.0.0.1:54321`` (``https`` with TLS)."""
    config: SimulatorConfig
    cafile: str | None
    """The PEM CA that signed the server certificate, when TLS is on."""
    _state: _State = attrs.field(alias="state", repr=False)

    @property
    def api(self) -> str:
        """The API root, ``url + "/v5/"`` (the version served)."""
        return f"{self.url}/{self.config.api_version}/"

    @property
    def version(self) -> str:
        """The REST API version served: ``"v5"`` ... ``"v8"``."""
        return self.config.api_version

    @property
    def username(self) -> str:
        return self.config.username

    @property
    def password(self) -> str:
        return self.config.password

    @property
    def organization_ids(self) -> list[str]:
        data = self._state.data
        return [data.organization_id(org) for org in range(self.config.organizations)]

    @property
    def stats(self) -> SimulatorStats:
        """Live counters (the same object across ``reset_stats``)."""
        return self._state.stats

    def reset_stats(self) -> None:
        self._state.stats.reset()

    def count_documents(self, kind: str = "vex", *, include_pages: bool = True) -> int:
        """How many distinct documents a crawl from a session's Organization can GET.

        Counts the Organization itself, every entity (mailbox, folder, item; or OneDrive,
        folder, document), and - with ``include_pages`` - every page a client reaches by
        following each collection link from offset 0 with the default limit and then its
        ``next`` links (an empty collection is still one page). A page reached both as
        ``.../mailboxes`` and as ``.../mailboxes?offset=0&limit=30`` counts once: documents
        are identified by their ``_links.self.href`` (see ``expected_documents``). Search
        results and action URIs are not counted. Every organization has the same shape, so
        the count does not depend on which organization the session explores.
        """
        config = self.config
        limit = config.default_limit

        def pages(total: int) -> int:
            return max(1, math.ceil(total / limit)) if include_pages else 0

        if kind.lower() == "vex":
            folders, subs, items = config.folders, config.subfolders, config.items
            per_top = 1 + pages(items) + ((pages(subs) + subs * (1 + pages(items))) if subs else 0)
            per_mailbox = (
                1
                + pages(folders)
                + pages(folders * (1 + subs) * items)
                + folders * per_top
                + folders * (1 + subs) * items
            )
            return 1 + pages(config.mailboxes) + config.mailboxes * per_mailbox
        if kind.lower() == "veod":
            docs = config.documents
            per_drive = (
                1
                + pages(config.folders)
                + pages(docs)
                + config.folders * (1 + pages(docs))
                + (config.folders + 1) * docs
            )
            return 1 + pages(config.onedrives) + config.onedrives * per_drive
        raise ValueError(f"kind must be 'vex' or 'veod', got {kind!r}")

    def expected_documents(self, session_id: str) -> frozenset[str]:
        """The ``_links.self.href`` of every document ``count_documents`` counts.

        Hrefs are absolute, exactly as the simulator writes them (ids percent-encoded,
        ``%3D``); with ``root_relative_links`` they are resolved against ``url``, and with
        ``public_base_url`` they use that origin. Materialises every href: meant for small
        configurations in crawl-completeness tests.

        Raises:
            KeyError: no session has that id.
        """
        session = self._state.sessions[session_id.lower()]
        config = self.config
        relative = _href_base(config, self.url) == ""
        base = self.url if relative or not config.public_base_url else config.public_base_url

        def href(path: str, query: _Query = ()) -> str:
            return _make_href(base.rstrip("/"), path, query)

        def pages(path: str, filters: _Query, total: int) -> Iterator[str]:
            for offset in _page_offsets(total, config.default_limit):
                yield href(path, _page_query(filters, offset, config.default_limit))

        return frozenset(self._walk(session, href, pages))

    def _walk(
        self,
        session: _Session,
        href: Callable[..., str],
        pages: Callable[[str, _Query, int], Iterator[str]],
    ) -> Iterator[str]:
        data = self._state.data
        config = self.config
        version = self._state.version
        paths = _Paths(data, session.id, version)
        org = session.org
        by_folder = version.items_folder_param
        yield href(paths.seed)
        if session.kind == "Vex":
            yield from pages(paths.mailboxes, (), config.mailboxes)
            for mailbox in range(config.mailboxes):
                yield href(paths.mailbox(org, mailbox))
                yield from pages(
                    paths.folders(org, mailbox),
                    (("parentId", version.top_folders),),
                    config.folders,
                )
                yield from pages(paths.items(org, mailbox), (), data.items_per_mailbox)
                for linear in range(data.folders_per_mailbox):
                    folder = data.folder_at(org, mailbox, linear)
                    folder_id = data.folder_id(folder)
                    yield href(paths.folder(folder))
                    yield from pages(
                        paths.items(org, mailbox), ((by_folder, folder_id),), config.items
                    )
                    if folder.sub is None and config.subfolders:
                        yield from pages(
                            paths.folders(org, mailbox),
                            (("parentId", folder_id),),
                            config.subfolders,
                        )
                for item in data.mailbox_items(org, mailbox):
                    yield href(paths.item(item))
            return
        yield from pages(paths.onedrives, (), config.onedrives)
        for onedrive in range(config.onedrives):
            yield href(paths.onedrive(org, onedrive))
            yield from pages(
                paths.od_folders(org, onedrive), (("parentId", "null"),), config.folders
            )
            yield from pages(
                paths.documents(org, onedrive), (("parentId", "null"),), config.documents
            )
            for number in range(config.folders):
                od_folder = OneDriveFolderRef(org, onedrive, number)
                yield href(paths.od_folder(od_folder))
                yield from pages(
                    paths.documents(org, onedrive),
                    (("parentId", data.od_folder_id(od_folder)),),
                    config.documents,
                )
            for parent in [None, *range(config.folders)]:
                for index in range(config.documents):
                    yield href(paths.document(DocRef(org, onedrive, parent, index)))


@contextlib.asynccontextmanager
async def open_simulator(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    middlewares: Sequence[_Middleware] = (),
) -> AsyncIterator[Simulator]:
    """Serve the simulator on ``host:port`` (0 = a free port) for the ``async with`` body.

    Example::

        async with open_simulator(SimulatorConfig(tls=True)) as sim:
            ssl_context = ssl.create_default_context(cafile=sim.cafile)

    Raises:
        OSError: the port cannot be bound.
        RuntimeError: TLS was asked for and ``openssl`` is missing.
    """
    config = config or SimulatorConfig()
    app = make_app(config, middlewares=middlewares)
    material = await asyncio.to_thread(_tls.create_tls_material) if config.tls else None
    # Cancel handlers of vanished clients (slow faults sleep for long) and do not wait long
    # for stragglers on exit.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    try:
        await runner.setup()
        ssl_context = material.server_context() if material else None
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound = runner.addresses[0][1]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104  display only
        shown = f"[{shown}]" if ":" in shown else shown
        scheme = "https" if material else "http"
        yield Simulator(
            url=f"{scheme}://{shown}:{bound}",
            config=config,
            cafile=str(material.cafile) if material else None,
            state=app[_STATE],
        )
    finally:
        await runner.cleanup()
        if material is not None:
            material.remove()
