"""The simulator's router: route registration, matching and dispatch.

One catch-all aiohttp route calls ``_dispatch``, because v5 matches paths case-insensitively,
tolerates trailing slashes, and carries percent-encoded base64 ids (``%3D``) that must be
decoded from the raw path rather than from aiohttp's decoded one. Handlers register with
``@_route`` (or, for a resource's action endpoints in every version's form, ``@_actions``)
for the versions that serve them (``_ALL``, ``_V5``, ``_V6_UP``, ``_V7_UP``, ``_V8``);
``_dispatch`` matches, answers 404/405, checks the bearer token (``_authenticate``) and
builds the handler's :class:`~halnav.simulator._context._Ctx`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final
from urllib.parse import parse_qsl, unquote

import attrs
from aiohttp import web

from ._bodies import _read_action, _read_options
from ._context import _ApiError, _Ctx, _message
from ._state import _STATE, _State

_DENIED: Final = "Authorization has been denied for this request."


_Handler = Callable[[_Ctx], Awaitable[web.StreamResponse]]


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
