"""The Veeam Backup for Microsoft 365 profile (REST API v5 to v8), built on public halnav names.

::

    from halnav import veeam

    async with veeam.open_navigator("https://vbo:4443", username=u, password=p) as nav:
        org_id = (await veeam.organizations(nav))[0]["id"]
        async with veeam.explore(nav, org_id) as session:
            org = await session.organization()
            mailboxes = await nav.follow(org, "mailboxes")
            async for mailbox in nav.paginate(mailboxes):
                hits = await nav.act(mailbox, "search", json=veeam.search("subject:invoice"))
        # the restore session is stopped here, also after an error or a cancellation

What the profile sets up on a :class:`VeeamNavigator` (a :class:`halnav.Navigator`):

* the REST API version: given (``version="v7"``), named in the URL
  (``https://vbo:4443/v7/...``), or detected when the navigator opens: the newest of
  v8, v7, v6, v5 that answers ``POST /vN/token`` (:func:`detect_version`);
* the OAuth2 password grant against ``/vN/token`` (form-encoded) with refresh-token
  renewal; on v7/v8 the antiforgery cookie of the grant is kept (trusted origins only)
  and sent with the refresh; on v7/v8 the navigator logs out when it closes;
* each version's action convention: v5 posts ``{"search": {"query": ...}}`` to one
  ``.../Action`` URI, v6+ post the bare ``{"query": ...}`` to ``.../search``; the body
  helpers (:func:`search`, :func:`export_pst`, :func:`restore_to_original`) work on both;
* action names of either version (``savetoMsg``/``save``,
  ``restoretoOriginallocation``/``restore``, ``exporttoPst``/``exportToPst``), and the
  v6+ organization-level ``search`` and ``exportToPst`` no ``_actions`` advertises;
* ``link_base`` at the server root, so v6+ hrefs (``v6/...`` without a leading slash)
  resolve correctly;
* ``rebase_links=True`` moves links that the server advertises under another
  host name (its configured public name) onto the host you connected to.

How the versions differ for a user is in the README ("Veeam API versions").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TextIO
from urllib.parse import quote, urlsplit

import attrs

from halnav import (
    Action,
    ActionAnswered,
    ActionRequest,
    ActionRule,
    AssertionGrant,
    CrawlEvent,
    CrawlStatistics,
    CrawlSummary,
    Document,
    DocumentWritten,
    Download,
    Limits,
    Navigator,
    OAuth2Grant,
    PasswordGrant,
    ProviderAuth,
    crawl,
    lowlevel,
    password_auth,
)
from halnav.errors import DocumentError, HalnavError, HTTPStatusError, StateError, printable
from halnav.veeam_actions import ACTIONS

__all__ = [
    "KINDS",
    "SESSION_TYPES",
    "VERSION",
    "VERSIONS",
    "RestoreOutcome",
    "RestoreSession",
    "VeeamNavigator",
    "Walk",
    "action_body",
    "attach",
    "auth",
    "backed_up_types",
    "detect_version",
    "explore",
    "explore_request",
    "export_pst",
    "is_mailbox",
    "kind_of",
    "open_navigator",
    "organizations",
    "restore",
    "restore_to_original",
    "search",
    "search_hits",
    "start_session",
    "version_of",
    "walk",
]

VERSIONS: Final = ("v8", "v7", "v6", "v5")
"""The REST API versions the profile speaks, newest first (the order :func:`detect_version`
probes in)."""
VERSION: Final = "v5"
"""The version of the seed page (``/v5/RestoreSessions/{id}/Organization``)."""

_log = logging.getLogger("halnav.veeam")

# An action's name in v5 and in v6+ (API-NOTES section 4, the v6-v8 specs), lowercased:
# each name maps to the other generation's. Names match case-insensitively.
_NAME_PAIRS: Final = (
    ("exporttopst", "exporttopst"),
    ("savetomsg", "save"),
    ("restoretooriginallocation", "restore"),
    ("search", "search"),
)
_OTHER_NAME: Final = {**dict(_NAME_PAIRS), **{v6: v5 for v5, v6 in _NAME_PAIRS}}
# The v6+ organization's endpoints for the v5 organization actions (no _actions on v6+).
_ORGANIZATION_ACTIONS: Final = {"search": "searchExchange", "exporttopst": "exportToPst"}
# First bytes of the binary files Veeam exports: PST, OLE compound file (.msg), ZIP (a PST
# split into parts, or several MSGs).
_EXPORT_MAGIC: Final = ((b"!BDN", ".pst"), (b"\xd0\xcf\x11\xe0", ".msg"), (b"PK\x03\x04", ".zip"))
_VERSION_PATH: Final = re.compile(r"^/(v\d+)(?:/|$)", re.IGNORECASE)


def _server_root(server: str) -> str:
    if not lowlevel.is_http_url(server):
        raise ValueError(f"expected a server URL like https://vbo:4443, got {server!r}")
    return lowlevel.origin_of(server)


def _check_version(version: str) -> str:
    lowered = version.lower()
    if lowered not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, got {version!r}")
    return lowered


def _version_in(url: str) -> str | None:
    """``v7`` for ``https://vbo:4443/v7/...``; ``None`` when the path names no version."""
    match = _VERSION_PATH.match(urlsplit(url).path)
    if match is None or match[1].lower() not in VERSIONS:
        return None
    return match[1].lower()


def version_of(nav: Navigator) -> str:
    """The REST API version ``nav`` speaks (from its entry URL ``https://host/vN/``).

    Raises:
        StateError: the version is not known yet (a :class:`VeeamNavigator` that has not
            opened and detected it).
    """
    if isinstance(nav, VeeamNavigator) and nav.version is not None:
        return nav.version
    found = _version_in(nav.entry or "")
    if found is None:
        raise StateError(
            f"the Veeam API version of {nav!r} is not known yet: open the navigator "
            "(async with) so it can detect it, or pass version="
        )
    return found


def _wrapped(version: str) -> bool:
    """v5 posts ``{"<actionName>": options}`` to one ``.../Action`` URI per resource."""
    return version == "v5"


def auth(server: str, username: str, password: str, *, version: str = VERSION) -> ProviderAuth:
    """The Veeam token grant for ``server``: password grant, then refresh-token renewal.

    On v7 and v8 the grant sets an antiforgery cookie that the refresh grant must send
    back; the navigator's cookie jar keeps it (for trusted origins only) and sends it.

    >>> auth("https://vbo:4443", "admin", "secret")  # doctest: +NORMALIZE_WHITESPACE
    ProviderAuth(PasswordGrant(token_url='https://vbo:4443/v5/token',
                               username='admin', password='***'))
    """
    root = _server_root(server)
    return password_auth(f"{root}/{_check_version(version)}/token", username, password)


def _sessions(count: int) -> str:
    """``1 restore session``, ``2 restore sessions``."""
    return f"{count} restore session{'' if count == 1 else 's'}"


def action_body(action: Action, body: Any) -> Any:
    """The v5 action body: options wrapped as ``{"<actionName>": options}``.

    A body that already is ``{"<name>": ...}`` for this action (any case, v5 or v6+ name)
    is rewrapped under the action's own name, so both styles work.
    """
    return _body_for("v5", action, body)


def _body_for(version: str, action: Action, body: Any) -> Any:
    """The body ``action`` takes on ``version``: wrapped on v5, bare options on v6+.

    The body helpers of this module (:func:`search`, :func:`export_pst`, ...) return the
    v5 form; on v6+ the options are taken out of it. Bare options pass unchanged on v6+
    and are wrapped on v5. ``None`` (no options) is ``{"<name>": null}`` on v5 and ``{}``
    on v6+.
    """
    name = action.name.lower()
    same = {name, _OTHER_NAME.get(name, name)}
    options = body
    if isinstance(body, Mapping) and len(body) == 1:
        (key,) = body
        if isinstance(key, str) and key.lower() in same:
            options = body[key]
    if _wrapped(version):
        return {action.name: options}
    return {} if options is None else options


def _resolve_action(version: str, doc: Document, name: str) -> Action | None:
    """An action ``doc`` does not advertise under ``name``, the way ``version`` names it.

    Names changed between versions (``savetoMsg``/``save``,
    ``restoretoOriginallocation``/``restore``). In v6+ no restore-session resource of
    OneDrive, SharePoint or Teams, nor the organization, has ``_actions``: their action
    endpoints (``.../Documents/{id}/save``, ``.../teams/{id}/restore``, the
    organization's ``searchExchange``) come from the specs (:mod:`halnav.veeam_actions`).
    On the organization, ``search`` is ``searchExchange`` (``searchTeams`` in a Teams
    session) and ``exporttoPst`` is ``exportToPst``.
    """
    lowered = name.lower()
    other = _OTHER_NAME.get(lowered, lowered)
    if other != lowered:
        found = doc.find_action(other)  # the other generation's name for it
        if found is not None:
            return found
    if _wrapped(version):
        return None
    url, template = _resource_of(doc)
    segments = ACTIONS.get(version, {}).get(template or "", ())
    if template == "organization":
        wanted = _ORGANIZATION_ACTIONS.get(lowered) or _ORGANIZATION_ACTIONS.get(other)
        if wanted == "searchExchange" and "teams" in doc.rels:
            wanted = "searchTeams"
        lowered = (wanted or lowered).lower()
    for segment in segments:
        if segment.lower() in (lowered, other):
            return Action(name=name, method="POST", target=f"{url}/{segment}", context=url)
    return None


def _resource_of(doc: Document) -> tuple[str, str | None]:
    """``doc``'s URL (no query, no trailing slash) and its :data:`ACTIONS` template:
    the path after ``/RestoreSessions/{id}/``, lowercased, ids as ``{}``
    (``organization/onedrives/{}/documents/{}``); None outside a restore session."""
    url = doc.url.partition("#")[0].partition("?")[0].rstrip("/")
    parts = urlsplit(url).path.split("/")
    lowered = [part.lower() for part in parts]
    if "restoresessions" not in lowered:
        return url, None
    rest = parts[lowered.index("restoresessions") + 2 :]
    if not rest or rest[0].lower() != "organization":
        return url, None
    shape = ("{}" if k % 2 == 0 and k else part.lower() for k, part in enumerate(rest))
    return url, "/".join(shape)


def _known_actions(version: str, doc: Document) -> tuple[str, ...]:
    """The action names of ``doc``: those it advertises, and on v6+ those of the specs."""
    names = list(doc.actions)
    if not _wrapped(version):
        template = _resource_of(doc)[1]
        names.extend(ACTIONS.get(version, {}).get(template or "", ()))
    return tuple(dict.fromkeys(names))


class VeeamNavigator(Navigator):
    """A :class:`~halnav.Navigator` for one Veeam server that knows its REST API version.

    Made by :func:`open_navigator`. Without an explicit version it detects the newest one
    the server speaks when it opens (:func:`detect_version`), and then resolves relative
    paths against ``https://host:4443/vN/``. It sends action bodies the way that version
    wants them, finds actions under either version's name, and reaches the v6+
    organization-level search and export. When it closes after a password grant on v7 or
    v8 it logs out (``POST /vN/token/logout``), so the server drops the tokens.
    """

    def __init__(
        self,
        root: str,
        *,
        version: str | None,
        grant: OAuth2Grant | None,
        token: str | None,
        probe_options: Mapping[str, Any],
        **options: Any,
    ) -> None:
        self._root = root
        self._version = version
        self._grant = grant
        self._probe_options = dict(probe_options)
        self._detecting: asyncio.Lock | None = None
        credentials: ProviderAuth | str | None = token
        if grant is not None:
            credentials = ProviderAuth(grant)
        super().__init__(
            f"{root}/{version}/" if version else f"{root}/",
            auth=credentials,
            action_body=self._action_body_for,
            action_resolver=self._resolve,
            **options,
        )

    @property
    def version(self) -> str | None:
        """``"v5"`` ... ``"v8"``; ``None`` until a navigator without ``version=`` opens."""
        return self._version

    @property
    def server(self) -> str:
        """``https://host:4443``."""
        return self._root

    def _action_body_for(self, action: Action, body: Any) -> Any:
        return _body_for(version_of(self), action, body)

    def _resolve(self, doc: Document, name: str) -> Action | None:
        return _resolve_action(version_of(self), doc, name)

    def action_names(self, doc: Document) -> tuple[str, ...]:
        """The actions of ``doc``: advertised, and on v6+ the endpoints the specs give
        its kind of resource (a v6+ OneDrive document: ``copyTo, restore, save, send``)."""
        return _known_actions(version_of(self), doc)

    async def open(self) -> None:
        """Detect the version if needed, then open the session. Idempotent.

        Raises:
            HalnavError: no Veeam REST API version answers at the server.
            TransportError: the server cannot be reached.
        """
        if self._version is None:
            if self._detecting is None:
                self._detecting = asyncio.Lock()
            async with self._detecting:
                if self._version is None:
                    version = await detect_version(self._root, **self._probe_options)
                    self._use_version(version)
        await super().open()

    def _use_version(self, version: str) -> None:
        self._version = version
        # The entry is fixed from here on: every relative path now means /vN/...
        self._entry = f"{self._root}/{version}/"
        if self._grant is not None:
            self._grant.retarget(f"{self._root}/{version}/token")

    def next_answer_request(self, page: Document) -> ActionRequest | None:
        """A search answer is paged by POSTing the same search again: ``offset`` (and
        ``limit``) in the query, and on v6+ the answer's ``setId``, so the server reuses
        its result set. A short page is the last one."""
        request = page.answer.request if page.answer is not None else None
        limit = page.state.get("limit")
        if request is None or type(limit) is not int or len(page.items) < limit:
            return None
        offset = page.state.get("offset")
        if type(offset) is not int:
            given = request.params.get("offset", "0")
            offset = int(given) if given.isascii() and given.isdigit() else 0
        params = {**request.params, "offset": str(offset + len(page.items)), "limit": str(limit)}
        set_id = page.state.get("setId")
        if isinstance(set_id, str):
            params["setId"] = set_id
        return attrs.evolve(request, params=MappingProxyType(params))

    def binary_extension(self, head: bytes) -> str:
        """Veeam sends its exports as ``application/octet-stream``: a PST, an MSG or a ZIP
        is told by its first bytes, and anything else is taken for a PST (what
        ``exportToPst`` answers)."""
        return next((ext for magic, ext in _EXPORT_MAGIC if head.startswith(magic)), ".pst")

    async def aclose(self) -> None:
        """Log out (v7+, after a password grant), then close. Idempotent."""
        grant = self._grant
        if (
            self._state == "open"
            and grant is not None
            and grant.has_token
            and self._version is not None
            and int(self._version[1:]) >= 7
        ):
            try:
                await self.send("POST", "token/logout")
            except HalnavError as exc:
                _log.debug("logout from %s failed: %s", self._root, exc)
        await super().aclose()

    def __repr__(self) -> str:
        return f"<VeeamNavigator {self._root} {self._version or '(version not detected)'}>"


async def detect_version(
    server: str,
    *,
    cafile: str | None = None,
    insecure: bool = False,
    session: Any = None,
    limits: Limits | None = None,
) -> str:
    """The newest REST API version ``server`` speaks: ``"v8"``, ``"v7"``, ``"v6"`` or ``"v5"``.

    Probes ``POST /vN/token`` with an empty grant from newest to oldest, sending no
    credentials: a server that has version N answers 400 (unsupported grant), one that
    has not answers 404.

    Raises:
        HalnavError: every version answered 404 (not a Veeam Backup for Microsoft 365
            REST API).
        TransportError: the server cannot be reached, or TLS fails.
    """
    root = _server_root(server)
    probe = Navigator(
        f"{root}/", cafile=cafile, insecure=insecure, session=session, limits=limits, graph=False
    )
    async with probe:
        for version in VERSIONS:
            try:
                await probe.send("POST", f"{version}/token", data={"grant_type": ""})
            except HTTPStatusError as exc:
                if exc.status == 404:
                    continue
            _log.debug("%s speaks the Veeam REST API %s", root, version)
            return version
    raise HalnavError(
        f"{root}: no Veeam Backup for Microsoft 365 REST API answers there "
        f"(POST /vN/token gave 404 for {', '.join(VERSIONS)})"
    )


def open_navigator(
    server: str,
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    version: str | None = None,
    rebase_links: bool = False,
    limits: Limits | None = None,
    cafile: str | None = None,
    insecure: bool = False,
    client_id: str | None = None,
    assertion: str | None = None,
    operator: bool = False,
    **options: Any,
) -> VeeamNavigator:
    """A Navigator for a Veeam Backup for Microsoft 365 server (``https://host:4443``).

    Give ``username`` and ``password`` (the token grant) or a ``token``; a tenant logs in
    with ``client_id`` (its application id) and ``assertion`` (an Entra ID token: the
    jwt-bearer grant), a restore operator (v6+) with ``operator=True`` and ``client_id`` =
    ``userId.tenantId``. A tenant or operator explores its own organization:
    ``explore(nav, None)``. ``version``
    (``"v5"`` ... ``"v8"``) fixes the REST API version; without it the version named in
    ``server``'s path is used (``https://vbo:4443/v7/...``), else the newest one the server
    speaks is detected when the navigator opens. Use it with ``async with``. Other
    keyword options go to ``Navigator``.

    Raises:
        ValueError: ``server`` is not an http(s) URL, credentials are incomplete, or
            ``version`` is not one of :data:`VERSIONS`.
    """
    root = _server_root(server)
    if (username is None) != (password is None):
        raise ValueError("give both username and password, or neither")
    chosen = _check_version(version) if version is not None else _version_in(server)
    if assertion is not None and (username is not None or client_id is None):
        raise ValueError("a tenant or operator login takes client_id and assertion, no username")
    grant: OAuth2Grant | None = None
    token_url = f"{root}/{chosen or VERSION}/token"
    if username is not None and password is not None:
        grant = PasswordGrant(token_url, username, password)
    elif assertion is not None and client_id is not None:
        grant = AssertionGrant(token_url, client_id=client_id, assertion=assertion)
        if operator:
            grant = AssertionGrant(
                token_url, client_id=client_id, assertion=assertion, grant_type="operator"
            )
    probe = {"cafile": cafile, "insecure": insecure, "limits": limits}
    if "session" in options:
        probe["session"] = options["session"]
    return VeeamNavigator(
        root,
        version=chosen,
        grant=grant,
        token=token,
        probe_options=probe,
        limits=limits,
        cafile=cafile,
        insecure=insecure,
        link_base=f"{root}/",
        pin_origin=root if rebase_links else None,
        **options,
    )


def search(query: str) -> dict[str, Any]:
    """The body of a ``search`` action (``RESTSearchOptions``), as ``{"search": {"query": q}}``.

    Query syntax as in Veeam Explorer: ``from:x to:y subject:"two words" word``. A Veeam
    navigator sends it wrapped to v5 and as the bare ``{"query": q}`` to v6+.
    """
    return {"search": {"query": query}}


def export_pst(
    *,
    content_keywords: str | None = None,
    pst_size_limit_bytes: int | None = None,
) -> dict[str, Any]:
    """The body of an ``exportToPst`` action (``RESTExportFolderToPst``).

    ``content_keywords`` filters the exported items (sent as ``contentKeyword``, the name
    v6+ require and v5 accepts); a size limit splits the export into a ZIP of PSTs.
    """
    options: dict[str, Any] = {}
    if content_keywords:
        options["contentKeyword"] = content_keywords
    if pst_size_limit_bytes is not None:
        options["enablePstSizeLimit"] = True
        options["pstSizeLimitBytes"] = pst_size_limit_bytes
    return {"exporttoPst": options or None}


def restore_to_original(
    *, username: str | None = None, password: str | None = None, **flags: bool
) -> dict[str, Any]:
    """The body of a restore to the original location (v5 ``restoretoOriginallocation``,
    v6+ ``restore``: ``RESTRestoreToOriginalLocation``), flags such as ``changedItems=True``.
    """
    options: dict[str, Any] = dict(flags)
    if username is not None:
        options["userName"] = username
    if password is not None:
        options["userPassword"] = password
    return {"restoretoOriginallocation": options or None}


async def organizations(nav: Navigator) -> list[Document]:
    """Every organization the server backs up (``GET /vN/Organizations``), on every page.

    v5-v7 answer a bare JSON array, v8 a page envelope that is followed to its end.

    Raises:
        DocumentError: an organization without a string ``id`` (nothing could explore it).
    """
    listing = await nav.get("Organizations")
    found = [item async for item in nav.paginate(listing)]
    for index, org in enumerate(found):
        if not isinstance(org.state.get("id"), str) or not org.state["id"]:
            raise DocumentError(listing.url, f"$[{index}].id", "an organization without an id")
    return found


async def search_hits(
    nav: Navigator, doc: Document, query: str, *, page_size: int | None = None
) -> AsyncIterator[Document]:
    """Every hit of a ``search`` of ``doc`` (organization, mailbox or folder), page by page.

    A search answer is a page, but its pages cannot be walked by ``next`` links: v5 links
    them to the POST-only action URI, v6+ give none. Each page is a new POST with
    ``offset``/``limit`` in the query (and v6+'s ``setId``, so the server reuses its
    result set): :meth:`VeeamNavigator.next_answer_request`, which makes
    ``nav.paginate(answer)`` work on any search answer. Stops at the first short or
    empty page.

    Raises:
        ActionNotFoundError: ``doc`` cannot be searched.
        TransportError, DocumentError: as for :meth:`~halnav.Navigator.act`.
    """
    params: dict[str, str] = {"offset": "0"}
    if page_size is not None:
        params["limit"] = str(page_size)
    answer = (await nav.invoke(doc, "search", json=search(query), params=params)).answer
    if isinstance(answer, Download):
        raise HalnavError(f"search of {doc.url} answered a download, not a page of hits")
    async for hit in nav.paginate(answer):  # VeeamNavigator.next_answer_request pages it
        yield hit


@attrs.define
class RestoreSession:
    """A running restore session, from :func:`explore` (or :func:`attach`)."""

    nav: Navigator
    document: Document

    @property
    def id(self) -> str:
        """The restore session id."""
        return str(self.document.state["id"])

    @property
    def url(self) -> str:
        """The session's URL."""
        return self.nav.url(f"RestoreSessions/{quote(self.id, safe='')}")

    @property
    def organization_url(self) -> str:
        """The URL of the organization being explored (the seed resource)."""
        return f"{self.url}/Organization"

    async def organization(self) -> Document:
        """The organization being explored (the seed resource)."""
        return await self.nav.get(self.organization_url)

    async def stop(self) -> None:
        """Stop the session: v5 ``POST .../Action {"stop": null}``, v6+ ``POST .../Stop``.

        Idempotent on the client side.
        """
        if _wrapped(version_of(self.nav)):
            await self.nav.send("POST", f"{self.url}/Action", json={"stop": None})
        else:
            await self.nav.send("POST", f"{self.url}/Stop")

    def __repr__(self) -> str:
        return printable(f"<RestoreSession {self.id} {self.document.state.get('state', '?')}>")


async def attach(nav: Navigator, session_id: str) -> RestoreSession:
    """The restore session ``session_id`` (one started earlier, by halnav or anyone).

    Raises:
        TransportError: no such session (404), or the server refused.
    """
    document = await nav.get(f"RestoreSessions/{quote(session_id, safe='')}")
    return RestoreSession(nav, document)


def explore_request(
    nav: Navigator,
    organization_id: str | None,
    *,
    type: str = "vex",  # noqa: A002  the Veeam option is called type
    point_in_time: datetime | None = None,
    show_deleted: bool = False,
    show_all_versions: bool = False,
) -> ActionRequest:
    """The request that starts a restore session of ``organization_id`` on the navigator's
    API version (what :func:`start_session` sends; a dry run prints it). ``None``: the
    organization a tenant or restore operator logged in to (``POST Organization/Action``
    on v5, ``Organization/Explore`` on v6+)."""
    if organization_id is None:
        target = nav.url("Organization")
    else:
        target = nav.url(f"Organizations/{quote(organization_id, safe='')}")
    if _wrapped(version_of(nav)):
        options: dict[str, Any] = {
            "type": type,
            "showDeleted": show_deleted,
            "showAllVersions": show_all_versions,
        }
        if point_in_time is not None:
            options["datetime"] = point_in_time.strftime("%Y.%m.%d %H:%M:%S")
        return ActionRequest("POST", f"{target}/Action", {"explore": options})
    options = {
        "type": type.capitalize(),  # the spec's enum: Vex, Veod, Vesp, Vet
        "showDeleted": show_deleted,
        "showAllVersions": show_all_versions,
    }
    if point_in_time is not None:
        options["dateTime"] = point_in_time.isoformat()
    verb = "Explore" if organization_id is None else "explore"  # as each spec spells it
    return ActionRequest("POST", f"{target}/{verb}", options)


async def start_session(
    nav: Navigator,
    organization: str | Document | None,
    *,
    type: str = "vex",  # noqa: A002  the Veeam option is called type
    point_in_time: datetime | None = None,
    show_deleted: bool = False,
    show_all_versions: bool = False,
) -> RestoreSession:
    """Start a restore session and leave it running (stop it with ``session.stop()``).

    v5 posts ``{"explore": {...}}`` to ``Organizations/{id}/Action`` (201); v6+ post the
    bare ``RESTExploreOptions`` to ``Organizations/{id}/explore`` (200, v8 201). Prefer
    :func:`explore`, which always stops the session it started.

    Raises:
        TransportError: the server refused to start the session.
        HalnavError: it answered something that is not a session.
    """
    org_id = (
        organization
        if organization is None or isinstance(organization, str)
        else str(organization["id"])
    )
    request = explore_request(
        nav,
        org_id,
        type=type,
        point_in_time=point_in_time,
        show_deleted=show_deleted,
        show_all_versions=show_all_versions,
    )
    answer = await nav.send(request.method, request.url, json=request.json)
    if isinstance(answer, Download) or "id" not in answer.state:
        which = "your organization" if org_id is None else f"organization {org_id}"
        raise HalnavError(f"explore of {which} did not return a restore session")
    return RestoreSession(nav, answer)


@contextlib.asynccontextmanager
async def explore(
    nav: Navigator,
    organization: str | Document | None,
    *,
    type: str = "vex",  # noqa: A002  the Veeam option is called type
    point_in_time: datetime | None = None,
    show_deleted: bool = False,
    show_all_versions: bool = False,
) -> AsyncIterator[RestoreSession]:
    """Start a restore session for ``organization`` (an id or its Document; None: the one
    a tenant or restore operator logged in to); always stop it.

    The session is stopped when the block ends, also on errors and when the
    task is cancelled (the stop request is shielded from the cancellation). A cancel
    that comes while the start request is on its way waits for its answer (at most 30 s,
    or ``Limits.answer_timeout`` if shorter) and stops the session it started: the server
    started it whether or not anyone reads the answer.

    Raises:
        TransportError: the server refused to start the session.
        DocumentError: it answered something that is not a session.
    """
    starting = asyncio.ensure_future(
        start_session(
            nav,
            organization,
            type=type,
            point_in_time=point_in_time,
            show_deleted=show_deleted,
            show_all_versions=show_all_versions,
        )
    )
    try:
        session = await asyncio.shield(starting)
    except asyncio.CancelledError:
        await _stop_when_started(
            starting, min(nav.limits.answer_timeout or _START_WAIT, _START_WAIT)
        )
        raise
    try:
        yield session
    except BaseException as exc:
        try:
            await _stop_shielded(session)
        except HalnavError as stop_error:
            exc.add_note(f"stopping restore session {session.id} also failed: {stop_error}")
        raise
    else:
        await _stop_shielded(session)


@contextlib.asynccontextmanager
async def _resumed_session(
    nav: Navigator, organization: str | None, earlier: list[str], kind: str = "vex"
) -> AsyncIterator[RestoreSession]:
    """The newest of ``earlier`` sessions if it is still working (a run killed without its
    stop), else a new one; stopped when the block ends, as :func:`explore` does."""
    if earlier:
        try:
            session = await attach(nav, earlier[-1])
        except HalnavError:
            session = None  # gone: explore again
        if session is not None and str(session.document.state.get("state")).lower() == "working":
            try:
                yield session
            finally:
                await _stop_shielded(session)
            return
    async with explore(nav, organization, type=kind) as session:
        yield session


_START_WAIT: Final = 30.0
"""Seconds a cancelled explore waits for its start request's answer, to stop the session."""


async def _stop_when_started(starting: asyncio.Future[RestoreSession], wait: float) -> None:
    """After a cancel: let a start request in flight answer, and stop what it started.

    Nothing is raised: the cancel goes on either way (a second cancel ends the wait)."""
    try:
        session = await asyncio.wait_for(asyncio.shield(starting), wait)
    except asyncio.CancelledError:
        starting.cancel()
        raise
    except Exception:  # noqa: BLE001  it did not start, or did not answer in time: nothing to stop
        starting.cancel()
        return
    with contextlib.suppress(HalnavError):  # the cancel's notes cannot carry it; stop tried
        await _stop_shielded(session)


async def _stop_shielded(session: RestoreSession) -> None:
    """Stop ``session`` even if the calling task is being cancelled."""
    stopping = asyncio.ensure_future(session.stop())
    try:
        await asyncio.shield(stopping)
    except asyncio.CancelledError:
        # Cancelled (again) while stopping: finish the stop, then let the cancellation through.
        await asyncio.wait([stopping])
        if not stopping.cancelled():
            stopping.exception()  # the cancellation wins; retrieved so asyncio does not log it
        raise


@attrs.frozen
class RestoreOutcome:
    """What a restore did. ``statistics`` are the server's counts (``createdItemsCount``, ...
    up to v7; v8: ``RESTRestoreSessionStatistics`` of the restore's own session).
    ``session_id`` names the v8 restore session that ran it (``None`` before v8).
    """

    statistics: Mapping[str, Any]
    session_id: str | None = None
    state: str | None = None
    """v8: the restore session's final ``state`` (``Stopped``) and ``result``."""
    result: str | None = None


async def restore(
    nav: Navigator,
    doc: Document,
    body: Any = None,
    *,
    name: str = "restoretoOriginallocation",
    wait: float = 3600.0,
    poll: float = 0.5,
) -> RestoreOutcome:
    """Run a restore action of ``doc`` and wait for its outcome, on every version.

    v5-v7 restores answer their statistics at once. v8 restores are asynchronous: they
    answer ``{"sessionId"}``; the restore session is then polled (``poll`` seconds,
    doubling up to 10 s) until it is no longer ``Working``, at most ``wait`` seconds,
    and its ``Statistics`` are read.

    Raises:
        ActionNotFoundError: ``doc`` has no restore action.
        TimeoutError: the v8 restore was still running after ``wait`` seconds (it goes
            on on the server; its session id is in the message).
        TransportError: as for :meth:`~halnav.Navigator.act`.
    """
    answer = await nav.act(doc, name, json=body)
    if isinstance(answer, Download):
        raise HalnavError(f"restore of {doc.url} answered a download, not statistics")
    session_id = answer.state.get("sessionId")
    if not isinstance(session_id, str) or len(answer.state) != 1:
        return RestoreOutcome(statistics=dict(answer.state))
    url = f"RestoreSessions/{quote(session_id, safe='')}"
    try:  # the one poller: Navigator.wait_for, with Veeam's own word for "not yet"
        session = await nav.wait_for(
            nav.url(url),
            done=lambda s: s.state.get("state") != "Working",
            wait=wait,
            poll=poll,
            first=0.0,
        )
    except TimeoutError:
        raise TimeoutError(
            f"restore session {session_id} of {doc.url} still running after {wait} s"
        ) from None
    statistics = await nav.get(f"{url}/Statistics")
    return RestoreOutcome(
        statistics=dict(statistics.state),
        session_id=session_id,
        state=str(session.state.get("state")),
        result=str(session.state.get("result")),
    )


def is_mailbox(doc: Document) -> bool:
    """A v5 mailbox: it has folders and items but no ``mailbox`` link (folders and items do)."""
    rels = doc.rels
    return "folders" in rels and "items" in rels and "mailbox" not in rels


# The kind of a resource, from the collection its URL names (``.../Mailboxes/{id}``).
KINDS: Final = {
    "mailboxes": "mailbox",
    "folders": "folder",
    "items": "item",
    "onedrives": "onedrive",
    "documents": "document",
    "sites": "site",
    "libraries": "library",
    "lists": "list",
    "teams": "team",
    "channels": "channel",
    "posts": "post",
    "files": "file",
    "tabs": "tab",
}
_KIND_PATH: Final = re.compile(r"/([A-Za-z]+)/[^/]+/?$")


def kind_of(doc: Document) -> str | None:
    """What ``doc`` is, by its URL: ``mailbox``, ``folder``, ``item``, ``onedrive``,
    ``document``, ``site``, ... (see :data:`KINDS`), ``organization`` for a session's
    Organization; None for pages and anything else."""
    path = urlsplit(doc.canonical_url).path
    if path.lower().rstrip("/").endswith("/organization"):
        return "organization"
    found = _KIND_PATH.search(path)
    return KINDS.get(found[1].lower()) if found else None


@attrs.frozen
class Walk:
    """What :func:`walk` did: the organizations and sessions, the crawl's summary, and
    the export files this run wrote."""

    organizations: tuple[str, ...]
    sessions: tuple[str, ...]
    crawl: CrawlSummary
    exports: tuple[str, ...] = ()
    documents_by_type: Mapping[str, int] = attrs.field(factory=dict)
    """Documents written this run, by restore session type (``vex``, ``veod``, ...)."""
    refused: tuple[tuple[str, str], ...] = ()
    """``(organization/type, the server's message)`` of each restore session the server
    refused to start (a workload it has no backup of, or cannot explore): not walked."""
    hits_by_type: Mapping[str, int] = attrs.field(factory=dict)
    """Search hits recorded this run, by restore session type. ``search_query`` searches
    every mailbox, OneDrive, SharePoint site and team (posts) the walk meets; a version
    whose resources have no search (on v5: all but Exchange) records none there."""
    unsearched: tuple[str, ...] = ()
    """The walked restore session types ``search_query`` could not search (v5 has no search
    of OneDrive, SharePoint or Teams): said, not silently skipped."""


# The restore session types (workloads): Exchange, OneDrive, SharePoint, Teams.
SESSION_TYPES: Final = ("vex", "veod", "vesp", "vet")
_SESSION_IN_URL: Final = re.compile(r"/restoresessions/([^/?#]+)", re.IGNORECASE)


def backed_up_types(organizations: Iterable[Document]) -> list[str]:
    """The restore session types the organizations say they back up: ``vex`` for
    ``isExchangeOnline``, ``veod`` and ``vesp`` for ``isSharePointOnline`` (OneDrive is
    backed up with SharePoint), ``vet`` for ``isTeamsOnline``; in that order."""
    found: set[str] = set()
    for org in organizations:
        state = org.state
        if state.get("isExchangeOnline"):
            found.add("vex")
        if state.get("isSharePointOnline"):
            found.update(("veod", "vesp"))
        if state.get("isTeamsOnline"):
            found.add("vet")
    return [kind for kind in SESSION_TYPES if kind in found]


class _PerSession:
    """A sink: documents written and search hits, by the type of their restore session."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self._kinds = kinds
        self.counts: dict[str, int] = {}
        self.hits: dict[str, int] = {}

    def _kind(self, url: str) -> str | None:
        found = _SESSION_IN_URL.search(url)
        return self._kinds.get(found[1].lower()) if found else None

    def event(self, event: CrawlEvent) -> None:
        if isinstance(event, DocumentWritten):
            kind = self._kind(event.key)
            if kind is not None:
                self.counts[kind] = self.counts.get(kind, 0) + 1
        elif isinstance(event, ActionAnswered) and event.action.lower() == "search":
            kind = self._kind(event.url)
            if kind is not None:
                self.hits[kind] = self.hits.get(kind, 0) + len(event.items)


# Where walk() searches each workload: the resource whose search covers the whole of one
# mailbox, OneDrive, site or team (searching below it too would find the same hits again).
_SEARCHED_KIND: Final = {"veod": "onedrive", "vesp": "site", "vet": "team"}


def _search_rules(kinds: Iterable[str], query: str, max_hits: int | None) -> list[ActionRule]:
    rules = []
    for kind in kinds:
        body = search(query)
        if kind == "vex":
            where: Callable[[Document], bool] = is_mailbox
        else:
            wanted = _SEARCHED_KIND[kind]
            where = functools.partial(_is_kind, wanted)
            if kind == "vet":  # RESTTeamsSearchOptions: type is required (Posts, Files, Tabs)
                body = {"search": {"query": query, "type": "Posts"}}
        rules.append(ActionRule(name="search", json=body, where=where, max_items=max_hits))
    return rules


def _is_kind(kind: str, doc: Document) -> bool:
    return kind_of(doc) == kind


class _Exported:
    """A sink: the paths of the export files a walk wrote."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def event(self, event: CrawlEvent) -> None:
        if isinstance(event, ActionAnswered) and event.answer is None:
            path = event.result.get("path")
            if isinstance(path, str):
                self.paths.append(path)


_WALK_STATE: Final = "veeam.json"


def _sessions_before(
    state: Path, org_ids: tuple[str, ...] | None, kinds: tuple[str, ...]
) -> dict[str, list[str]]:
    """The restore sessions earlier runs of a resumable walk explored, by
    ``organization/type``."""
    file = state / _WALK_STATE
    if not file.exists():
        return {}
    stored = json.loads(file.read_text(encoding="utf-8"))
    sessions: dict[str, list[str]] = {str(k): list(v) for k, v in stored["sessions"].items()}
    orgs = sorted({key.rpartition("/")[0] for key in sessions})
    stored_kinds = sorted({key.rpartition("/")[2] for key in sessions})
    if (org_ids is not None and sorted(org_ids) != orgs) or stored_kinds != sorted(kinds):
        raise ValueError(
            f"the walk in {state} is of the organizations {', '.join(orgs)} and the "
            f"restore session types {', '.join(stored_kinds)}; run it with the same ones to "
            "resume it, or use another state directory"
        )
    return sessions


def _keep_sessions(state: Path, sessions: Mapping[str, list[str]]) -> None:
    """Write the sessions file atomically (before the crawl renames its stored URLs)."""
    part = state / f".{_WALK_STATE}.part"
    part.write_text(json.dumps({"sessions": sessions}, indent=1), encoding="utf-8")
    os.replace(part, state / _WALK_STATE)


async def walk(
    nav: Navigator,
    *,
    output: str | Path | TextIO | None,
    organization_ids: Iterable[str] | None = None,
    search_query: str | None = None,
    export_dir: str | Path | None = None,
    export_limit: int | None = 1,
    max_hits: int | None = None,
    progress: Callable[[CrawlStatistics], None] | None = None,
    say: Callable[[str], None] | None = None,
    state_dir: str | Path | None = None,
    tenant: bool = False,
    types: Iterable[str] | None = None,
) -> Walk:
    """halnav's main job on a Veeam server: explore, walk every session, act, always stop.

    Explores each organization (all of them by default) in its own restore session,
    walks all their Organization resources in ONE concurrent crawl (organization ->
    mailboxes -> folders -> items, every page) writing JSON Lines to ``output`` (a path
    is replaced when the walk writes its first record, not before), runs
    ``search`` with ``search_query`` on every mailbox, OneDrive, site and team (recording
    every hit, all pages, or at most ``max_hits`` per search) and, with ``export_dir``, exports
    up to ``export_limit`` mailboxes to PST (``None``: all of them). Every session is
    stopped when the walk ends, also on errors and cancellation. The navigator's graph
    holds the walk afterwards (write it with ``nav.graph.write(path)``).

    ``tenant``: the navigator logged in as a tenant or restore operator, which walks its
    own organization (``organization_ids`` is not used). ``types`` are the restore
    session types explored per organization (:data:`SESSION_TYPES`: ``vex`` Exchange,
    ``veod`` OneDrive, ``vesp`` SharePoint, ``vet`` Teams); by default those the
    organizations back up (:func:`backed_up_types`); ``walk.documents_by_type``
    counts what each gave.

    With ``state_dir`` (and a path ``output``) the walk is resumable: ``state_dir`` keeps
    the crawl's state and, in ``veeam.json``, the restore sessions each run explored. A
    resumed walk walks the same organizations: it reuses a session that is still working
    (the run was killed before it could stop it), else explores the organization again
    and renames the stored walk's URLs from the old session id to the new one. The output
    holds every document once across runs (records of earlier runs name the session ids
    of their run).

    Example (``u`` and ``p`` are your credentials)::

        async with open_navigator("https://vbo:4443", username=u, password=p) as nav:
            done = await walk(nav, output="walk.jsonl", search_query="subject:invoice")

    Raises:
        TransportError: the server refused to list organizations or start a session.
    """
    tell = say or (lambda _text: None)
    if organization_ids is not None:
        organization_ids = tuple(organization_ids)
    listed: list[Document] | None = None  # GET Organizations, once
    if types is None:  # what the organizations back up
        if tenant:
            types = backed_up_types([await nav.get("Organization")])
        else:
            listed = await organizations(nav)
            wanted = organization_ids
            types = backed_up_types(o for o in listed if wanted is None or o["id"] in wanted)
    kinds = tuple(dict.fromkeys(kind.lower() for kind in types))
    unknown = [kind for kind in kinds if kind not in SESSION_TYPES]
    if unknown or not kinds:
        raise ValueError(
            f"restore session types are {', '.join(SESSION_TYPES)}; got {list(types)!r}"
        )
    state = Path(state_dir) if state_dir is not None else None
    before: dict[str, list[str]] = {}
    if state is not None:
        state.mkdir(parents=True, exist_ok=True)
        given = tuple(organization_ids) if organization_ids is not None else None
        before = _sessions_before(state, given, kinds)
        if before and organization_ids is None and not tenant:
            organization_ids = sorted({key.rpartition("/")[0] for key in before})
    if tenant:
        own = await nav.get("Organization")
        if not isinstance(own.state.get("id"), str) or not own.state["id"]:
            raise DocumentError(own.url, "$.id", "the organization has no id")
        organization_ids = [own.state["id"]]
    if organization_ids is None:
        listed = listed if listed is not None else await organizations(nav)
        organization_ids = [str(org["id"]) for org in listed]
    org_ids = tuple(organization_ids)
    rules = []
    unsearched: tuple[str, ...] = ()
    if search_query is not None:
        searched = kinds
        if _wrapped(version_of(nav)):  # v5: no search below OneDrive, SharePoint, Teams
            searched = tuple(kind for kind in kinds if kind == "vex")
            unsearched = tuple(kind for kind in kinds if kind != "vex")
        rules.extend(_search_rules(searched, search_query, max_hits))
    if export_dir is not None:
        rules.append(
            ActionRule(
                name="exporttoPst",
                json=export_pst(),
                export_dir=str(export_dir),
                limit=export_limit,
                where=is_mailbox,
            )
        )
    exported = _Exported()
    keys = [f"{org}/{kind}" for org in org_ids for kind in kinds]
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        refused: list[tuple[str, str]] = []
        for key in list(keys):
            org, _, kind = key.rpartition("/")
            resumed = _resumed_session(nav, None if tenant else org, before.get(key, []), kind)
            try:
                sessions.append(await stack.enter_async_context(resumed))
            except HTTPStatusError as exc:
                if exc.status != 400 or len(kinds) == 1:
                    raise  # one type asked for: its refusal is the walk's failure
                refused.append((key, exc.detail or str(exc)))
                keys.remove(key)
                tell(f"the server refused to explore {key}: {exc.detail or exc}; not walked")
        renamed: dict[str, str] = {}
        if state is not None:
            history: dict[str, list[str]] = {}
            for key, session in zip(keys, sessions, strict=True):
                earlier = [old for old in before.get(key, []) if old != session.id]
                history[key] = [*earlier, session.id]
                renamed.update({f"/{old}/": f"/{session.id}/" for old in earlier})
            for key, _text in refused:
                history[key] = before.get(key, [])  # asked for, refused: asked again next run
            _keep_sessions(state, history)  # first: a run killed from here on still knows
        per_session = _PerSession(
            {s.id.lower(): k.rpartition("/")[2] for k, s in zip(keys, sessions, strict=True)}
        )
        how = "resuming the walk" if before else "walking them all in one crawl"
        tell(f"explored {_sessions(len(sessions))} ({', '.join(kinds)}); {how}")
        summary = await crawl(
            nav,
            [f"{session.url}/Organization" for session in sessions],
            output=output,
            actions=rules,
            progress=progress,
            replace=True,  # a new walk replaces the file at its first record; a resume appends
            state_dir=state / "crawl" if state is not None else None,
            renamed=renamed,
            sinks=[exported, per_session],
        )
        tell(f"stopping {_sessions(len(sessions))}")
    return Walk(
        org_ids,
        tuple(session.id for session in sessions),
        summary,
        tuple(exported.paths),
        per_session.counts,
        tuple(refused),
        per_session.hits,
        unsearched,
    )
