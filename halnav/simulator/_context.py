"""What a route handler reads and writes: the request context, errors, JSON answers and pages.

:class:`_Ctx` carries one request's state, path parameters and query, and reads paging and
the restore session named in the path; a handler raises :class:`_ApiError` for a
``{"message": ...}`` answer. ``_json_response`` and ``_message`` write JSON answers,
``_page``/``_page_json`` a collection's page envelope (``_envelope``: v5 offset/limit, v6+
``setId``, v6/v7 ``totalCount``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from typing import Final

import attrs
from aiohttp import web

from ._data import Data, ItemRef, SimulatorConfig
from ._hrefs import (
    _CACHED_PATHS,
    _ENCODER,
    _href_base,
    _make_href,
    _page_query,
    _Paths,
    _Query,
    _query_text,
)
from ._state import _Session, _State
from ._versions import ApiVersion

_EXPIRED: Final = "Restore session has expired or has been stopped. Start a new restore session."
_JSON: Final = "application/json"


class _ApiError(Exception):
    """Raised by handlers; rendered as ``{"message": ...}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


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
        """``_exchange._item_doc`` as JSON, from the state's bounded cache."""
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
