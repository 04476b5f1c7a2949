"""OneDrive: OneDrives, their folders and documents, and their save and restore actions."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from ._bodies import _flag
from ._context import _ApiError, _Ctx, _json_response, _page
from ._data import DocRef, OneDriveFolderRef
from ._hrefs import _Paths, _Query
from ._router import _actions, _route
from ._search import _stream
from ._sessions import _restored
from ._state import _Session

_ZIP_TIME: Final = (2020, 1, 1, 0, 0, 0)


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
