"""Search and exports: search result pages, the fake PST export, and file streams.

``_search`` pages the items of a scope that match a query (repeats from the state's bounded
cache); ``_export_pst`` streams a deterministic fake PST; ``_stream`` streams any other
download (MSG, OneDrive documents and ZIPs).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from aiohttp import web

from ._context import _ApiError, _Ctx, _envelope_json, _json_text_response
from ._data import ItemRef
from ._hrefs import _href_base
from ._state import _Session
from ._terms import _matches, _parse_search

_NO_OUTLOOK: Final = (
    "64-bit version of Microsoft Outlook 2010 or later is not installed on the server. "
    "Install it to export items to PST."
)
_PST_HEADER_BYTES: Final = 512
_CHUNK_BYTES: Final = 64 * 1024
_SEARCH_YIELD_EVERY: Final = 500
_OCTETS: Final = "application/octet-stream"
_CACHED_SEARCHES: Final = 2048
_CACHED_SEARCH_CHARS: Final = 8192


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
    await _build(ctx)
    response = _start_stream(ctx, _PST_HEADER_BYTES + total * per_item, f"{name}.pst")
    await response.prepare(ctx.request)
    buffer = bytearray(b"!BDN" + data.content_bytes(f"pst-header:{name}", _PST_HEADER_BYTES - 4))
    for item in scope():
        if terms and not _matches(data, data.item_fields(item), terms):
            continue
        buffer += data.content_bytes(f"pst:{data.item_id(item)}", per_item)
        if len(buffer) >= _CHUNK_BYTES:
            await _write(ctx, response, bytes(buffer))
            buffer.clear()
    await _write(ctx, response, bytes(buffer))
    await response.write_eof()
    return response


async def _build(ctx: _Ctx) -> None:
    """An export is built before its first byte is sent (``export_build_seconds``)."""
    if ctx.config.export_build_seconds:
        await asyncio.sleep(ctx.config.export_build_seconds)


async def _write(ctx: _Ctx, response: web.StreamResponse, chunk: bytes) -> None:
    await response.write(chunk)
    rate = ctx.config.export_bytes_per_second
    if rate:
        await asyncio.sleep(len(chunk) / rate)


def _start_stream(ctx: _Ctx, length: int, filename: str) -> web.StreamResponse:
    ctx.state.stats.exports += 1
    safe = re.sub(r'[\\/:*?"<>|\r\n]', "_", filename)
    response = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{safe}"'})
    response.content_type = _OCTETS
    response.content_length = length
    return response


async def _stream(ctx: _Ctx, body: bytes, filename: str) -> web.StreamResponse:
    await _build(ctx)
    response = _start_stream(ctx, len(body), filename)
    await response.prepare(ctx.request)
    for start in range(0, len(body), _CHUNK_BYTES):
        await _write(ctx, response, body[start : start + _CHUNK_BYTES])
    await response.write_eof()
    return response
