"""SharePoint (``Vesp`` sessions): sites, their libraries and lists, library folders and
documents (with versions), list items; and their actions.

Paths follow the v6-v8 specs (``Organization/Sites/{siteId}/Documents?parentId=...``): a
site's documents, folders and items are listed below the site and filtered by ``parentId``
(a library or folder; a list). Like every OneDrive, SharePoint and Teams resource, none has
``_actions`` on v6+ (the client must know the endpoints); v5 advertises them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aiohttp import web

from ._content import _content_actions, _File, _node, _Scope
from ._context import _ApiError, _Ctx, _json_response, _page
from ._data import LIBRARIES, LISTS, Node
from ._hrefs import _Query
from ._router import _route
from ._state import _Session

_SITES: Final = "restoresessions/{session}/organization/sites"
_SITE: Final = f"{_SITES}/{{site}}"
# v5 action names (API-NOTES section 2.5) and v6+ endpoint segments (the specs).
_V5_RESTORES: Final = ("restoretooriginallocation", "restoreto")
_V5_FILES: Final = ("save", "send", *_V5_RESTORES)
_V5_ADVERTISED: Final = {
    "save": "save",
    "send": "send",
    "restoretooriginallocation": "restoretoOriginallocation",
    "restoreto": "restoreTo",
}
_Doc = tuple[int, int, int, int]
"""A document: site, library, folder + 1 (0: the library's root), index."""


class _Site:
    """One site of a session: its paths, lookups and documents."""

    def __init__(self, ctx: _Ctx, session: _Session, site: int) -> None:
        self.ctx = ctx
        self.session = session
        self.org = session.org
        self.site = site
        self.path = ctx.paths(session).site(self.org, site)
        self.id = ctx.data.node_id(Node.SITE, self.org, site)

    def node(self, kind: Node, *indices: int) -> str:
        return self.ctx.data.node_id(kind, self.org, self.site, *indices)

    def link(self, path: str, query: _Query = ()) -> dict[str, str]:
        return self.ctx.link(path, query)

    def actions(self, path: str, *names: str) -> dict[str, object]:
        """v5's ``_actions``; v6+ resources have none."""
        if not self.ctx.version.wrapped_actions:
            return {}
        return {"_actions": self.ctx.actions(path, *(_V5_ADVERTISED[name] for name in names))}

    # -- paths --------------------------------------------------------------------------------
    def library_path(self, library: int) -> str:
        return f"{self.path}/Libraries/{self.node(Node.LIBRARY, library)}"

    def list_path(self, listing: int) -> str:
        return f"{self.path}/Lists/{self.node(Node.LIST, listing)}"

    def folder_path(self, library: int, folder: int) -> str:
        return f"{self.path}/Folders/{self.node(Node.SP_FOLDER, library, folder)}"

    def document_path(self, doc: _Doc) -> str:
        return f"{self.path}/Documents/{self.node(Node.SP_DOCUMENT, *doc[1:])}"

    def item_path(self, listing: int, index: int) -> str:
        return f"{self.path}/Items/{self.node(Node.SP_ITEM, listing, index)}"

    # -- documents ------------------------------------------------------------------------------
    def site_doc(self) -> dict[str, object]:
        return {
            "id": self.id,
            **self.ctx.data.site_fields(self.org, self.site),
            "_links": {
                "self": self.link(self.path),
                "libraries": self.link(f"{self.path}/Libraries"),
                "lists": self.link(f"{self.path}/Lists"),
            },
            **self.actions(self.path, *_V5_RESTORES),
        }

    def container_doc(self, index: int, *, library: bool) -> dict[str, object]:
        data = self.ctx.data
        if library:
            path = self.library_path(index)
            kind = Node.LIBRARY
            parent = (("parentId", self.node(Node.LIBRARY, index)),)
            links = {
                "folders": self.link(f"{self.path}/Folders", parent),
                "documents": self.link(f"{self.path}/Documents", parent),
            }
        else:
            path = self.list_path(index)
            kind = Node.LIST
            links = {
                "items": self.link(f"{self.path}/Items", (("parentId", self.node(kind, index)),))
            }
        return {
            "id": self.node(kind, index),
            **data.container_fields(self.org, self.site, index, library=library),
            "_links": {"self": self.link(path), "site": self.link(self.path), **links},
            **self.actions(path, *(_V5_FILES if library else _V5_RESTORES)),
        }

    def folder_doc(self, library: int, folder: int) -> dict[str, object]:
        path = self.folder_path(library, folder)
        parent = (("parentId", self.node(Node.SP_FOLDER, library, folder)),)
        return {
            "type": "LibraryFolder",
            "id": self.node(Node.SP_FOLDER, library, folder),
            **self.ctx.data.sp_folder_fields(self.org, self.site, library, folder),
            "_links": {
                "self": self.link(path),
                "site": self.link(self.path),
                "parent": self.link(self.library_path(library)),
                "documents": self.link(f"{self.path}/Documents", parent),
            },
            **self.actions(path, *_V5_FILES),
        }

    def document_doc(self, doc: _Doc, version: int | None = None) -> dict[str, object]:
        _, library, folder, _ = doc
        path = self.document_path(doc)
        fields = self.ctx.data.sp_document_fields(self.org, doc)
        parent = (
            self.library_path(library) if folder == 0 else self.folder_path(library, folder - 1)
        )
        links = {"self": self.link(path), "site": self.link(self.path), "parent": self.link(parent)}
        if version is None:
            links["versions"] = self.link(f"{path}/Versions")
        else:
            fields = {**fields, "version": f"{version}.0", "versionId": version}
            links = {"self": self.link(f"{path}/Versions/{version}"), "document": self.link(path)}
        return {
            "id": self.node(Node.SP_DOCUMENT, *doc[1:]),
            **fields,
            "_links": links,
            **({} if version else self.actions(path, *_V5_FILES)),
        }

    def item_doc(self, listing: int, index: int) -> dict[str, object]:
        path = self.item_path(listing, index)
        return {
            "id": self.node(Node.SP_ITEM, listing, index),
            **self.ctx.data.sp_item_fields(self.org, self.site, listing, index),
            "_links": {
                "self": self.link(path),
                "site": self.link(self.path),
                "parent": self.link(self.list_path(listing)),
            },
            **self.actions(path, *_V5_RESTORES),
        }

    # -- scopes -----------------------------------------------------------------------------
    def documents_in(self, library: int | None = None, folder: int | None = None) -> list[_Doc]:
        """The documents of the site, of one library (its root and folders), or one folder."""
        config = self.ctx.config
        libraries = range(len(LIBRARIES)) if library is None else (library,)
        folders = range(config.folders + 1) if folder is None else (folder + 1,)
        return [
            (self.site, lib, place, index)
            for lib in libraries
            for place in folders
            for index in range(config.documents)
        ]

    def items_in(self, listing: int | None = None) -> list[tuple[int, int]]:
        listings = range(len(LISTS)) if listing is None else (listing,)
        return [(k, i) for k in listings for i in range(self.ctx.config.items)]

    def files(self, docs: list[_Doc]) -> list[_File]:
        data = self.ctx.data
        found = []
        for doc in docs:
            fields = data.sp_document_fields(self.org, doc)
            size = fields["sizeBytes"]
            assert isinstance(size, int)
            label = f"sp:{self.node(Node.SP_DOCUMENT, *doc[1:])}"
            found.append(_File(label, str(fields["name"]), size))
        return found

    def scope(
        self,
        path: str,
        name: str,
        docs: list[_Doc],
        items: list[tuple[int, int]],
        *,
        single: bool = False,
        statistics: str = "item",
    ) -> _Scope:
        def documents() -> Iterator[dict[str, object]]:
            for doc in docs:
                yield self.document_doc(doc)
            for listing, index in items:
                yield self.item_doc(listing, index)

        return _Scope(
            path=path,
            name=name,
            files=lambda: self.files(docs),
            documents=documents,
            others=len(items),
            single=single,
            statistics=statistics,
        )

    # -- lookups -----------------------------------------------------------------------------
    def find(self, kind: Node, text: str, *bounds: int) -> tuple[int, ...]:
        """The indices below this site of the entity ``text`` (404 if it is another's)."""
        found = _node(self.ctx, kind, self.org, text, self.site + 1, *bounds, within=self.site)
        return found[1:]

    def library(self, text: str) -> int:
        return self.find(Node.LIBRARY, text, len(LIBRARIES))[0]

    def listing(self, text: str) -> int:
        return self.find(Node.LIST, text, len(LISTS))[0]

    def folder_or_none(self, text: str) -> tuple[int, int] | None:
        """The folder ``text`` of this site, or None (a ``parentId`` may name a library)."""
        bounds = (self.site + 1, len(LIBRARIES), self.ctx.config.folders)
        found = self.ctx.data.find_node(Node.SP_FOLDER, self.org, text, bounds)
        return None if found is None or found[0] != self.site else (found[1], found[2])

    def folder(self, text: str) -> tuple[int, int]:
        library, folder = self.find(Node.SP_FOLDER, text, len(LIBRARIES), self.ctx.config.folders)
        return library, folder

    def document(self, text: str) -> _Doc:
        config = self.ctx.config
        library, place, index = self.find(
            Node.SP_DOCUMENT, text, len(LIBRARIES), config.folders + 1, config.documents
        )
        return (self.site, library, place, index)

    def item(self, text: str) -> tuple[int, int]:
        listing, index = self.find(Node.SP_ITEM, text, len(LISTS), self.ctx.config.items)
        return listing, index


def _site(ctx: _Ctx) -> _Site:
    session = ctx.session("Vesp")
    (site,) = _node(ctx, Node.SITE, session.org, ctx.params["site"], ctx.config.sites)
    return _Site(ctx, session, site)


def _parent(ctx: _Ctx) -> tuple[str | None, _Query]:
    """The ``parentId`` filter: None for absent, ``null`` or ``root`` (the whole site)."""
    text = ctx.query.get("parentid")
    filters: _Query = () if text is None else (("parentId", text),)
    return (None if text in (None, "", "null", "root") else text), filters


@_route("GET", _SITES)
async def _sites(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vesp")
    text, filters = _parent(ctx)
    total = ctx.config.sites if text is None else 0  # no subsites here
    return _page(
        ctx,
        ctx.paths(session).sites,
        filters,
        total,
        lambda site: _Site(ctx, session, site).site_doc(),
    )


@_route("GET", _SITE)
async def _site_get(ctx: _Ctx) -> web.StreamResponse:
    return _json_response(_site(ctx).site_doc())


@_route("GET", f"{_SITE}/libraries")
async def _libraries(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _page(
        ctx,
        f"{site.path}/Libraries",
        (),
        len(LIBRARIES),
        lambda i: site.container_doc(i, library=True),
    )


@_route("GET", f"{_SITE}/libraries/{{library}}")
async def _library_get(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _json_response(site.container_doc(site.library(ctx.params["library"]), library=True))


@_route("GET", f"{_SITE}/lists")
async def _lists(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _page(
        ctx, f"{site.path}/Lists", (), len(LISTS), lambda i: site.container_doc(i, library=False)
    )


@_route("GET", f"{_SITE}/lists/{{list}}")
async def _list_get(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _json_response(site.container_doc(site.listing(ctx.params["list"]), library=False))


@_route("GET", f"{_SITE}/folders")
async def _folders(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    text, filters = _parent(ctx)
    count = ctx.config.folders
    if text is None:
        folders = [(lib, f) for lib in range(len(LIBRARIES)) for f in range(count)]
    else:
        # A library's folders; a folder has none below it here (one level).
        library = None if site.folder_or_none(text) is not None else site.library(text)
        folders = [] if library is None else [(library, f) for f in range(count)]
    return _page(
        ctx, f"{site.path}/Folders", filters, len(folders), lambda i: site.folder_doc(*folders[i])
    )


@_route("GET", f"{_SITE}/folders/{{folder}}")
async def _folder_get(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _json_response(site.folder_doc(*site.folder(ctx.params["folder"])))


def _documents_of(site: _Site, text: str | None) -> list[_Doc]:
    if text is None:
        return site.documents_in()
    folder = site.folder_or_none(text)
    if folder is not None:
        return site.documents_in(*folder)
    library = site.library(text)
    return [doc for doc in site.documents_in(library) if doc[2] == 0]


@_route("GET", f"{_SITE}/documents")
async def _documents(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    text, filters = _parent(ctx)
    docs = _documents_of(site, text)
    return _page(
        ctx, f"{site.path}/Documents", filters, len(docs), lambda i: site.document_doc(docs[i])
    )


@_route("GET", f"{_SITE}/documents/{{document}}")
async def _document_get(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _json_response(site.document_doc(site.document(ctx.params["document"])))


def _versions_of(ctx: _Ctx, site: _Site, doc: _Doc) -> int:
    return ctx.data.versions(ctx.data.sp_document_fields(site.org, doc))


@_route("GET", f"{_SITE}/documents/{{document}}/versions")
async def _document_versions(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    doc = site.document(ctx.params["document"])
    count = _versions_of(ctx, site, doc)
    path = f"{site.document_path(doc)}/Versions"
    return _page(ctx, path, (), count, lambda i: site.document_doc(doc, i + 1))


def _version(ctx: _Ctx, site: _Site, doc: _Doc) -> int:
    text = ctx.params["version"]
    if not text.isdigit() or not 1 <= int(text) <= _versions_of(ctx, site, doc):
        raise _ApiError(404, f"Version with ID '{text}' not found.")
    return int(text)


@_route("GET", f"{_SITE}/documents/{{document}}/versions/{{version}}")
async def _document_version(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    doc = site.document(ctx.params["document"])
    return _json_response(site.document_doc(doc, _version(ctx, site, doc)))


@_route("GET", f"{_SITE}/items")
async def _items(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    text, filters = _parent(ctx)
    items = site.items_in(None if text is None else site.listing(text))
    return _page(ctx, f"{site.path}/Items", filters, len(items), lambda i: site.item_doc(*items[i]))


@_route("GET", f"{_SITE}/items/{{item}}")
async def _item_get(ctx: _Ctx) -> web.StreamResponse:
    site = _site(ctx)
    return _json_response(site.item_doc(*site.item(ctx.params["item"])))


# -- actions ----------------------------------------------------------------------------------
_RESTORE_V6: Final = ("restore", "restoreTo")


@_content_actions(_SITE, _V5_RESTORES, (*_RESTORE_V6, "search"))
def _site_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    name = str(ctx.data.site_fields(site.org, site.site)["name"])
    return site.session, site.scope(site.path, name, site.documents_in(), site.items_in())


@_content_actions(
    f"{_SITE}/libraries/{{library}}", _V5_FILES, (*_RESTORE_V6, "save", "search", "send")
)
def _library_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    library = site.library(ctx.params["library"])
    docs = site.documents_in(library)
    return site.session, site.scope(site.library_path(library), LIBRARIES[library], docs, [])


@_content_actions(f"{_SITE}/lists/{{list}}", _V5_RESTORES, (*_RESTORE_V6, "search"))
def _list_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    listing = site.listing(ctx.params["list"])
    items = site.items_in(listing)
    path = site.list_path(listing)
    return site.session, site.scope(path, LISTS[listing], [], items, statistics="list")


@_content_actions(
    f"{_SITE}/folders/{{folder}}", _V5_FILES, (*_RESTORE_V6, "save", "search", "send")
)
def _folder_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    library, folder = site.folder(ctx.params["folder"])
    name = str(ctx.data.sp_folder_fields(site.org, site.site, library, folder)["name"])
    docs = site.documents_in(library, folder)
    return site.session, site.scope(site.folder_path(library, folder), name, docs, [])


@_content_actions(f"{_SITE}/documents/{{document}}", _V5_FILES, (*_RESTORE_V6, "save", "send"))
def _document_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    doc = site.document(ctx.params["document"])
    return site.session, site.scope(site.document_path(doc), "document", [doc], [], single=True)


@_content_actions(
    f"{_SITE}/documents/{{document}}/versions/{{version}}", (), (*_RESTORE_V6, "save", "send")
)
def _version_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    doc = site.document(ctx.params["document"])
    version = _version(ctx, site, doc)
    path = f"{site.document_path(doc)}/Versions/{version}"
    return site.session, site.scope(path, "document", [doc], [], single=True)


@_content_actions(f"{_SITE}/items/{{item}}", _V5_RESTORES, ("Restore", "RestoreTo"))
def _item_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    site = _site(ctx)
    listing, index = site.item(ctx.params["item"])
    path = site.item_path(listing, index)
    return site.session, site.scope(path, "item", [], [(listing, index)], single=True)
