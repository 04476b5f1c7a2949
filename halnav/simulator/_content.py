"""Actions on files: save, send, export, restore, copy and search, for OneDrive, SharePoint
and Teams alike.

Every resource of those workloads acts on a *scope*: the files below it. ``_content_actions``
registers a resource's action endpoints (v5: one ``.../action`` with a one-key body; v6+:
one endpoint per action, spelled as the spec spells it) and ``_answer`` answers any of them
from the scope: ``save``/``export`` stream one file or a ZIP, ``send`` answers no body,
``restore``/``restoreTo``/``copyTo`` answer statistics (v8: an asynchronous restore), and
``search`` a page of the scope's matching documents, paged by POSTing again.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Final, NamedTuple

import attrs
from aiohttp import web

from ._bodies import _flag, _read_action, _read_options
from ._context import _ApiError, _Ctx, _envelope_json, _json_response, _json_text_response
from ._data import Node
from ._hrefs import _ENCODER
from ._router import _ALL, _V6_UP, _Do, _Handler, _route
from ._search import _stream
from ._sessions import _restored
from ._state import _Session

_ZIP_TIME: Final = (2020, 1, 1, 0, 0, 0)

# Option names each action takes on v6+, lowercased: the union of the request schemas of
# that action across the OneDrive, SharePoint and Teams endpoints of the v6-v8 specs
# (RESTSaveOneDriveDocumentOptions, RESTSendAsMsgOptionsV6, RESTRestoreItemConfig,
# RESTRestoreTeamOptions, RESTCopyToDocument, ...). A name outside these is a 400.
_RESTORE: Final = (
    "alias", "applicationcertificate", "applicationcertificatepassword", "applicationid",
    "changeditems", "channelid", "deleteditems", "documentaction", "documentlastversionaction",
    "documents", "documentversion", "files", "fileversion", "folders", "from",
    "impersonationaccountname", "isfolder", "items", "list", "officeregion", "officeusername",
    "officeuserpassword", "onedriveid", "onedrives", "onpremisesusername",
    "onpremisesuserpassword", "organizationname", "restorechangedfiles", "restorechangeditems",
    "restorechangedtabs", "restoredeletedfiles", "restoredeleteditems", "restorelistviews",
    "restoremasterpages", "restoremembers", "restoremissingitems", "restoremissingtabs",
    "restorepermissions", "restoresettings", "restoresubsites", "sendsharednotification",
    "sendsharedlinksnotification", "siteurl", "skipunresolved", "tabs", "teams", "to",
    "usercode", "username", "userpassword",
)  # fmt: skip
_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "save": ("aszip", "attachments", "channelid", "documents", "files", "folders", "posts"),
    "export": ("channelid", "from", "posts", "to"),
    "send": (
        "attachments", "channelid", "documents", "files", "folders", "from", "posts",
        "skipitemchecks", "subject", "text", "to",
    ),
    "copyto": (
        "applicationcertificate", "applicationcertificatepassword", "applicationid",
        "changeditems", "deleteditems", "documentlastversionaction", "documents",
        "documentversion", "folder", "folders", "officeregion", "onedrive", "organizationname",
        "restorepermissions", "sendsharedlinksnotification", "usercode", "username",
        "userpassword",
    ),
    "restore": _RESTORE,
    "restoreto": _RESTORE,
    "search": ("query", "type"),
}  # fmt: skip
# v5 names for the same actions (API-NOTES section 2.5).
_V5_NAMES: Final = {"restoretooriginallocation": "restore"}
_RESTORES: Final = frozenset({"restore", "restoreto", "copyto"})


class _File(NamedTuple):
    """One file of a scope: where its bytes come from, its name, its size."""

    label: str
    name: str
    size: int


@attrs.frozen
class _Scope:
    """What a resource's actions act on."""

    path: str
    """The resource's path (search answers page by POSTing to it again)."""
    name: str
    """The ZIP's (or a single file's) name."""
    files: Callable[[], list[_File]]
    documents: Callable[[], Iterator[dict[str, object]]] = lambda: iter(())
    """The documents a search looks through (rendered as a listing renders them)."""
    others: int = 0
    """What a restore restores besides the files (SharePoint list items)."""
    single: bool = False
    """One file: ``save`` streams it as itself unless ``asZip``."""
    statistics: str = "item"
    """The restore statistics' shape: ``item`` (RESTItemRestoreStatistics), ``list``
    (RESTListRestoreStatistics), ``team`` (RESTRestoreStatistics)."""


_Resolve = Callable[[_Ctx], tuple[_Session, _Scope]]


def _node(
    ctx: _Ctx, kind: Node, org: int, text: str, *bounds: int, within: int | None = None
) -> tuple[int, ...]:
    """The indices of the SharePoint or Teams entity ``text`` (each below its bound; the
    first one ``within``, the site or team of the path), or a 404 naming it
    (``Sp Folder with ID '...' not found.``)."""
    found = ctx.data.find_node(kind, org, text, bounds)
    if found is None or (within is not None and found[0] != within):
        raise _ApiError(404, f"{kind.name.title().replace('_', ' ')} with ID '{text}' not found.")
    return found


def _content_actions(
    pattern: str,
    v5: tuple[str, ...],
    v6: tuple[str, ...],
    *,
    versions: frozenset[str] = _ALL,
) -> Callable[[_Resolve], _Resolve]:
    """Register the actions of the resource at ``pattern``, answered from its scope.

    ``v5`` are the (lowercased) names its v5 ``.../action`` takes; ``v6`` the last segments
    of its v6+ endpoints as the spec spells them (``restore``, ``RestoreTo``). ``versions``
    limits where the resource exists (v8 moves Teams files).
    """

    def register(resolve: _Resolve) -> _Resolve:
        async def do(ctx: _Ctx, action: str, options: Mapping[str, object]) -> web.StreamResponse:
            session, scope = resolve(ctx)
            return await _answer(ctx, session, _V5_NAMES.get(action, action), options, scope)

        if "v5" in versions and v5:

            async def wrapped(ctx: _Ctx) -> web.StreamResponse:
                action, options = await _read_action(ctx, v5)
                return await do(ctx, action, options)

            _route("POST", f"{pattern}/action", versions=frozenset({"v5"}))(wrapped)
        for segment in v6:
            _route("POST", f"{pattern}/{segment.lower()}", versions=versions & _V6_UP)(
                _bare(do, segment.lower())
            )
        return resolve

    return register


def _bare(do: _Do, action: str) -> _Handler:
    async def bare(ctx: _Ctx) -> web.StreamResponse:
        return await do(ctx, action, await _read_options(ctx, _OPTIONS[action]))

    return bare


async def _answer(
    ctx: _Ctx, session: _Session, action: str, options: Mapping[str, object], scope: _Scope
) -> web.StreamResponse:
    if action == "search":
        return _search_answer(ctx, scope, options)
    if action == "send":
        ctx.state.stats.sends += 1
        return web.Response(status=ctx.version.send_status)
    files = scope.files()
    if action in _RESTORES:
        count = len(files) + scope.others
        if ctx.version.async_restores:
            return _restored(ctx, session, count)
        ctx.state.stats.restores += 1
        return _json_response(_statistics(scope.statistics, count))
    if not files:
        raise _ApiError(400, "There is nothing to save: the resource has no documents.")
    # save, export
    as_zip = _flag(options, "aszip", default=not scope.single)
    return await _save(ctx, files, scope.name, as_zip=as_zip or len(files) != 1)


def _statistics(shape: str, count: int) -> dict[str, object]:
    if shape == "team":
        return {
            "totalItemsCount": count,
            "restoredItemsCount": count,
            "failedItemsCount": 0,
            "skippedItemsCount": 0,
        }
    stats: dict[str, object] = {"restoredListsCount": 1, "failedListsCount": 0}
    if shape != "list":
        stats = {}
    return {
        **stats,
        "totalItemsCount": count,
        "restoredItemsCount": count,
        "failedItemsCount": 0,
        "skippedItemsByErrorCount": 0,
        "skippedItemsByNoChangesCount": 0,
        "failedRestrictionsCount": 0,
    }


async def _save(ctx: _Ctx, files: list[_File], name: str, *, as_zip: bool) -> web.StreamResponse:
    """One file streams as itself; several (or ``asZip``) as a deterministic ZIP."""
    data = ctx.data
    if not as_zip:
        (file,) = files
        return await _stream(ctx, data.content_bytes(file.label, file.size), file.name)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as writer:
        for file in files:
            entry = zipfile.ZipInfo(f"{file.label.partition(':')[2]}/{file.name}")
            entry.date_time = _ZIP_TIME
            writer.writestr(entry, data.content_bytes(file.label, file.size))
    return await _stream(ctx, archive.getvalue(), f"{name}.zip")


_SEARCHED: Final = ("name", "title", "subject", "author", "displayName")


def _search_answer(ctx: _Ctx, scope: _Scope, options: Mapping[str, object]) -> web.Response:
    """The scope's documents whose name, title or subject hold every word of ``query``."""
    ctx.state.stats.searches += 1
    words = str(options.get("query") or "").lower().split()
    offset, limit = ctx.paging()
    results: list[str] = []
    seen = 0
    more = False
    for doc in scope.documents():
        text = " ".join(str(doc.get(field, "")) for field in _SEARCHED).lower()
        if not all(word in text for word in words):
            continue
        if seen >= offset + limit:
            more = True
            break
        if seen >= offset:
            results.append(_ENCODER.encode(doc))
        seen += 1
    v5 = ctx.version.wrapped_actions
    target = f"{scope.path}/action" if v5 else f"{scope.path}/search"
    text = _envelope_json(
        ctx, target, (), offset=offset, limit=limit, results=results, more=more, links=v5
    )
    return _json_text_response(text)
