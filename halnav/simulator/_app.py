"""The aiohttp.web application imitating the Veeam Backup for Microsoft 365 REST API v5-v8.

One app serves one version (``SimulatorConfig.api_version``); what differs between versions
is read from one :class:`~halnav.simulator._versions.ApiVersion` row, never from a version
name, and each route says which versions serve it. The v6-v8 routes and answers follow
Veeam's OpenAPI specifications (a contract test holds them to it); v5 follows the seed page
and the [C] facts of API-NOTES.md.

This module assembles the app (``make_app``) and runs it (``open_simulator``, yielding a
:class:`Simulator`). Faults (latency, errors, throttling, drops, truncated bodies, slow
answers, early token expiry) live in its one middleware; they are NOT Veeam behaviour and
are off by default. The rest lives below it, by job:

- ``_router``: route registration (``@_route``, ``@_actions``), matching, dispatch, bearer
  tokens; ``_context``: the handler's request context, JSON answers, page envelopes;
  ``_bodies``: lenient action bodies.
- ``_state``: the app's mutable state and counters; ``_hrefs``: paths and hrefs;
  ``_terms``: the search query language; ``_versions``: the per-version differences.
- The routes: ``_auth_routes`` (token, logout), ``_sessions`` (organizations, restore
  sessions), ``_exchange`` (the seed, mailboxes, folders, items), ``_search`` (search, PST
  export, streams), ``_onedrive``, ``_sharepoint``, ``_teams``; ``_content``: the file
  actions (save, send, export, restore, copy, search) the last three share.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Final

import attrs
from aiohttp import web
from aiohttp.typedefs import Middleware

from . import _auth_routes, _exchange, _onedrive, _sessions, _sharepoint, _teams, _tls
from ._context import _JSON, _message
from ._data import LIBRARIES, LISTS, TABS, DocRef, Node, OneDriveFolderRef, SimulatorConfig
from ._hrefs import _href_base, _make_href, _page_offsets, _page_query, _Paths, _Query
from ._router import _dispatch, routes
from ._state import _STATE, SimulatorStats, _Session, _State

__all__ = ["Simulator", "SimulatorStats", "make_app", "open_simulator", "routes"]

# Imported for their ``@_route`` registrations, which run at import: this is the order they
# register in (_exchange and _onedrive import _sessions first), the order ``routes()`` lists.
_ROUTE_MODULES: Final = (_auth_routes, _sessions, _exchange, _onedrive, _sharepoint, _teams)

_Middleware = Middleware


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
            if state.config.validators and request.method == "GET":
                response = _validated(request, response, state.config.max_age)
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


def _validated(
    request: web.Request, response: web.StreamResponse, max_age: int | None
) -> web.StreamResponse:
    """A GET's 200 JSON answer with an ``ETag`` (a hash of its body), or a bodiless 304
    when the request already holds that ETag (``If-None-Match``)."""
    if not (isinstance(response, web.Response) and response.status == 200):
        return response
    body = response.body
    if not isinstance(body, bytes):
        return response
    etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag}
    if max_age is not None:
        headers["Cache-Control"] = f"private, max-age={max_age}"
    wanted = {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}
    if etag in wanted or "*" in wanted:
        request.app[_STATE].stats.not_modified += 1
        return web.Response(status=304, headers=headers)
    response.headers.update(headers)
    return response


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
        data = self._state.data
        docs = config.documents
        if kind.lower() == "veod":
            per_drive = (
                1
                + pages(config.folders)
                + pages(docs)
                + config.folders * (1 + pages(docs))
                + (config.folders + 1) * docs
            )
            # Every document has a page of versions and as many versions as its major one.
            versions = sum(
                pages(count) + count
                for count in (
                    data.versions(data.document_fields(DocRef(0, onedrive, folder, index)))
                    for onedrive in range(config.onedrives)
                    for folder in [None, *range(config.folders)]
                    for index in range(docs)
                )
            )
            return 1 + pages(config.onedrives) + config.onedrives * per_drive + versions
        if kind.lower() == "vesp":
            libraries, lists = len(LIBRARIES), len(LISTS)
            per_library = (
                1 + pages(config.folders) + pages(docs) + config.folders * (1 + pages(docs))
            )
            versions = sum(
                1 + pages(count) + count
                for count in (
                    data.versions(data.sp_document_fields(0, (site, library, place, index)))
                    for site in range(config.sites)
                    for library in range(libraries)
                    for place in range(config.folders + 1)
                    for index in range(docs)
                )
            )
            per_site = (
                1 + pages(libraries) + pages(lists) + libraries * per_library
                + lists * (1 + pages(config.items) + config.items)
            )  # fmt: skip
            return 1 + pages(config.sites) + config.sites * per_site + versions
        if kind.lower() == "vet":
            tabs = len(TABS)
            per_channel = (
                1 + pages(config.items) + config.items + pages(docs) + docs + pages(tabs) + tabs
            )
            per_team = 1 + pages(config.channels) + config.channels * per_channel
            return 1 + pages(config.teams) + config.teams * per_team
        raise ValueError(f"kind must be 'vex', 'veod', 'vesp' or 'vet', got {kind!r}")

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
        if session.kind == "Veod":
            yield from self._walk_onedrive(paths, org, href, pages)
        elif session.kind == "Vesp":
            yield from self._walk_sharepoint(paths, org, href, pages)
        else:
            yield from self._walk_teams(paths, org, href, pages)

    def _walk_onedrive(
        self,
        paths: _Paths,
        org: int,
        href: Callable[..., str],
        pages: Callable[[str, _Query, int], Iterator[str]],
    ) -> Iterator[str]:
        data, config = paths.data, self.config
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
                    doc = DocRef(org, onedrive, parent, index)
                    path = paths.document(doc)
                    yield href(path)
                    versions = data.versions(data.document_fields(doc))
                    yield from pages(f"{path}/Versions", (), versions)
                    for version in range(1, versions + 1):
                        yield href(f"{path}/Versions/{version}")

    def _walk_sharepoint(
        self,
        paths: _Paths,
        org: int,
        href: Callable[..., str],
        pages: Callable[[str, _Query, int], Iterator[str]],
    ) -> Iterator[str]:
        data, config = paths.data, self.config
        yield from pages(paths.sites, (), config.sites)
        for site in range(config.sites):
            base = paths.site(org, site)

            def node(kind: Node, *indices: int, site: int = site) -> str:
                return data.node_id(kind, org, site, *indices)

            yield href(base)
            yield from pages(f"{base}/Libraries", (), len(LIBRARIES))
            yield from pages(f"{base}/Lists", (), len(LISTS))
            for library in range(len(LIBRARIES)):
                yield href(f"{base}/Libraries/{node(Node.LIBRARY, library)}")
                parent = (("parentId", node(Node.LIBRARY, library)),)
                yield from pages(f"{base}/Folders", parent, config.folders)
                yield from pages(f"{base}/Documents", parent, config.documents)
                for folder in range(config.folders):
                    yield href(f"{base}/Folders/{node(Node.SP_FOLDER, library, folder)}")
                    in_folder = (("parentId", node(Node.SP_FOLDER, library, folder)),)
                    yield from pages(f"{base}/Documents", in_folder, config.documents)
                for place in range(config.folders + 1):
                    for index in range(config.documents):
                        path = f"{base}/Documents/{node(Node.SP_DOCUMENT, library, place, index)}"
                        yield href(path)
                        fields = data.sp_document_fields(org, (site, library, place, index))
                        versions = data.versions(fields)
                        yield from pages(f"{path}/Versions", (), versions)
                        for version in range(1, versions + 1):
                            yield href(f"{path}/Versions/{version}")
            for listing in range(len(LISTS)):
                yield href(f"{base}/Lists/{node(Node.LIST, listing)}")
                parent = (("parentId", node(Node.LIST, listing)),)
                yield from pages(f"{base}/Items", parent, config.items)
                for index in range(config.items):
                    yield href(f"{base}/Items/{node(Node.SP_ITEM, listing, index)}")

    def _walk_teams(
        self,
        paths: _Paths,
        org: int,
        href: Callable[..., str],
        pages: Callable[[str, _Query, int], Iterator[str]],
    ) -> Iterator[str]:
        data, config, version = paths.data, self.config, paths.version
        yield from pages(paths.teams, (), config.teams)
        for team in range(config.teams):
            base = paths.team(org, team)
            yield href(base)
            yield from pages(f"{base}/channels", (), config.channels)
            for channel in range(config.channels):
                channel_path = paths.channel(org, team, channel)
                yield href(channel_path)
                in_channel = (("channelId", data.node_id(Node.CHANNEL, org, team, channel)),)
                yield from pages(f"{base}/posts", in_channel, config.items)
                yield from pages(f"{base}/files", in_channel, config.documents)
                yield from pages(f"{channel_path}/tabs", (), len(TABS))
                for index in range(config.items):
                    yield href(f"{base}/posts/{data.post_id(channel, index)}")
                files = channel_path if version.channel_files else base
                for index in range(config.documents):
                    file_id = data.node_id(Node.FILE, org, team, channel, index)
                    yield href(f"{files}/files/{file_id}")
                for index in range(len(TABS)):
                    tab_id = data.node_id(Node.TAB, org, team, channel, index)
                    yield href(f"{channel_path}/tabs/{tab_id}")


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
