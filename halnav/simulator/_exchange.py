"""Exchange: the seed ``RestoreSessions/{id}/Organization``, mailboxes, folders and items.

Their documents, listings and lookups, and their actions (search, export to PST, save as
MSG, restore) in v5's ``.../Action`` form and v6+'s dedicated endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from aiohttp import web

from ._bodies import _read_action, _read_options
from ._context import _ApiError, _Ctx, _json_response, _json_text_response, _page, _page_json
from ._data import FolderRef, ItemRef
from ._hrefs import _href_base, _Paths, _Query
from ._router import _V5, _V6_UP, _actions, _route
from ._search import _export_pst, _search, _stream
from ._sessions import _restored
from ._state import _Session


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
        # Each workload's session links its collection (API-NOTES section 2.3 [I]).
        rel, path = {
            "Veod": ("onedrives", paths.onedrives),
            "Vesp": ("sites", paths.sites),
            "Vet": ("teams", paths.teams),
        }[session.kind]
        doc["_links"] = {"self": ctx.link(paths.seed), rel: ctx.link(path, bare=True)}
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
        "_actions": ctx.actions(path, *ctx.version.item_actions),
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
