"""OneDrive: OneDrives, their folders, documents and document versions, and their actions
(save, send, copy, restore; search on OneDrives and folders)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aiohttp import web

from ._content import _content_actions, _File, _Scope
from ._context import _ApiError, _Ctx, _json_response, _page
from ._data import DocRef, OneDriveFolderRef
from ._hrefs import _Paths, _Query
from ._router import _route
from ._state import _Session

_ONEDRIVE: Final = "restoresessions/{session}/organization/onedrives/{onedrive}"


def _onedrive_actions_of(ctx: _Ctx, path: str) -> dict[str, object]:
    """v5 advertises its actions; v6+ OneDrive resources carry only ``_links``."""
    if not ctx.version.wrapped_actions:
        return {}
    return {"_actions": ctx.actions(path, "save", "restoretoOriginallocation", "send", "copyTo")}


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


def _document_doc(
    ctx: _Ctx, paths: _Paths, doc: DocRef, version: int | None = None
) -> dict[str, object]:
    path = paths.document(doc)
    fields = ctx.data.document_fields(doc)
    links = {
        "self": ctx.link(path),
        "onedrive": ctx.link(paths.onedrive(doc.org, doc.onedrive)),
    }
    if doc.folder is not None:
        links["parent"] = ctx.link(
            paths.od_folder(OneDriveFolderRef(doc.org, doc.onedrive, doc.folder))
        )
    if version is None:
        links["versions"] = ctx.link(f"{path}/Versions")
        actions = _onedrive_actions_of(ctx, path)
    else:
        fields = {**fields, "version": f"{version}.0", "versionId": version}
        links = {"self": ctx.link(f"{path}/Versions/{version}"), "document": ctx.link(path)}
        actions = {}
    return {"id": ctx.data.document_id(doc), **fields, "_links": links, **actions}


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


def _version(ctx: _Ctx, doc: DocRef) -> int:
    text = ctx.params["version"]
    if not text.isdigit() or not 1 <= int(text) <= ctx.data.versions(ctx.data.document_fields(doc)):
        raise _ApiError(404, f"Version with ID '{text}' not found.")
    return int(text)


@_route("GET", f"{_ONEDRIVE}/documents/{{document}}/versions")
async def _document_versions(ctx: _Ctx) -> web.StreamResponse:
    """Every version of a document, oldest first (as many as its major version)."""
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    doc = _find_document(ctx, session, onedrive)
    paths = ctx.paths(session)
    count = ctx.data.versions(ctx.data.document_fields(doc))
    path = f"{paths.document(doc)}/Versions"
    return _page(ctx, path, (), count, lambda i: _document_doc(ctx, paths, doc, i + 1))


@_route("GET", f"{_ONEDRIVE}/documents/{{document}}/versions/{{version}}")
async def _document_version(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    doc = _find_document(ctx, session, onedrive)
    return _json_response(_document_doc(ctx, ctx.paths(session), doc, _version(ctx, doc)))


def _files(ctx: _Ctx, docs: list[DocRef]) -> list[_File]:
    data = ctx.data
    found = []
    for doc in docs:
        fields = data.document_fields(doc)
        size = fields["sizeBytes"]
        assert isinstance(size, int)
        found.append(_File(f"doc:{data.document_id(doc)}", str(fields["name"]), size))
    return found


def _scope(ctx: _Ctx, path: str, name: str, docs: list[DocRef], *, single: bool) -> _Scope:
    paths = ctx.paths(ctx.session("Veod"))

    def documents() -> Iterator[dict[str, object]]:
        for doc in docs:
            yield _document_doc(ctx, paths, doc)

    return _Scope(
        path=path, name=name, files=lambda: _files(ctx, docs), documents=documents, single=single
    )


# v5: save and restore [C] (send, copyTo [C-client]); v6+: the specs' endpoints.
_V5_ACTIONS: Final = ("save", "restoretooriginallocation", "send", "copyto")
_V6_ACTIONS: Final = ("copyTo", "restore", "save", "send")


@_content_actions(_ONEDRIVE, _V5_ACTIONS, (*_V6_ACTIONS, "search"))
def _onedrive_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    org = session.org
    count = ctx.config.documents
    folders: list[int | None] = [None, *range(ctx.config.folders)]
    docs = [DocRef(org, onedrive, folder, index) for folder in folders for index in range(count)]
    name = str(ctx.data.onedrive_fields(org, onedrive)["name"])
    path = ctx.paths(session).onedrive(org, onedrive)
    return session, _scope(ctx, path, name, docs, single=False)


@_content_actions(f"{_ONEDRIVE}/folders/{{folder}}", _V5_ACTIONS, (*_V6_ACTIONS, "search"))
def _od_folder_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    folder = _find_od_folder(ctx, session, onedrive, ctx.params["folder"])
    docs = [
        DocRef(session.org, onedrive, folder.folder, index) for index in range(ctx.config.documents)
    ]
    name = str(ctx.data.od_folder_fields(folder)["name"])
    path = ctx.paths(session).od_folder(folder)
    return session, _scope(ctx, path, name, docs, single=False)


@_content_actions(f"{_ONEDRIVE}/documents/{{document}}", _V5_ACTIONS, _V6_ACTIONS)
def _document_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    doc = _find_document(ctx, session, onedrive)
    path = ctx.paths(session).document(doc)
    return session, _scope(ctx, path, "document", [doc], single=True)


@_content_actions(f"{_ONEDRIVE}/documents/{{document}}/versions/{{version}}", (), _V6_ACTIONS)
def _version_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    session = ctx.session("Veod")
    onedrive = _find_onedrive(ctx, session)
    doc = _find_document(ctx, session, onedrive)
    version = _version(ctx, doc)
    path = f"{ctx.paths(session).document(doc)}/Versions/{version}"
    return session, _scope(ctx, path, "document", [doc], single=True)
