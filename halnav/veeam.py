"""The Veeam Backup for Microsoft 365 (v5) profile, built only on public halnav names.

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

What the profile sets up on a :class:`halnav.Navigator`:

* the OAuth2 password grant against ``/v5/token`` (form-encoded) with
  refresh-token renewal (:func:`auth`);
* the v5 action convention: ``nav.act(doc, "search", json={"query": ...})``
  sends ``{"search": {"query": ...}}`` to the action's ``uri``; a body that
  already has the one key is sent as is (:func:`action_body`);
* ``link_base`` at the server root, so v6-style hrefs (``v5/...`` without a
  leading slash) resolve correctly;
* ``rebase_links=True`` moves links that the server advertises under another
  host name (its configured public name) onto the host you connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit

import attrs

from halnav import (
    Action,
    Document,
    Download,
    Limits,
    Navigator,
    PasswordGrant,
    ProviderAuth,
)
from halnav.errors import HalnavError

__all__ = [
    "VERSION",
    "RestoreSession",
    "action_body",
    "auth",
    "explore",
    "export_pst",
    "open_navigator",
    "organizations",
    "restore_to_original",
    "search",
]

VERSION: Final = "v5"


def _server_root(server: str) -> str:
    parts = urlsplit(server)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"expected a server URL like https://vbo:4443, got {server!r}")
    return f"{parts.scheme}://{parts.netloc}"


def auth(server: str, username: str, password: str, *, version: str = VERSION) -> ProviderAuth:
    """The Veeam token grant for ``server``: password grant, then refresh-token renewal.

    >>> auth("https://vbo:4443", "tech\\\\admin", "secret")     # doctest: +ELLIPSIS
    <ProviderAuth ...>
    """
    root = _server_root(server)
    return ProviderAuth(PasswordGrant(f"{root}/{version}/token", username, password))


def action_body(action: Action, body: Any) -> Any:
    """Wrap options in the v5 one-key body ``{"<actionName>": options}``.

    A body that already is ``{"<name>": ...}`` for this action (any case)
    passes unchanged, so both styles work.
    """
    if isinstance(body, Mapping) and len(body) == 1:
        (key,) = body
        if isinstance(key, str) and key.lower() == action.name.lower():
            return body
    return {action.name: body}


def open_navigator(
    server: str,
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    version: str = VERSION,
    rebase_links: bool = False,
    limits: Limits | None = None,
    cafile: str | None = None,
    insecure: bool = False,
    **options: Any,
) -> Navigator:
    """A Navigator for a Veeam Backup for Microsoft 365 server (``https://host:4443``).

    Give ``username`` and ``password`` (the token grant) or a ``token``.
    Use it with ``async with``. Other keyword options go to ``Navigator``.

    Raises:
        ValueError: ``server`` is not an http(s) URL, or credentials are incomplete.
    """
    root = _server_root(server)
    if (username is None) != (password is None):
        raise ValueError("give both username and password, or neither")
    credentials: ProviderAuth | str | None = token
    if username is not None and password is not None:
        credentials = auth(root, username, password, version=version)
    return Navigator(
        f"{root}/{version}/",
        auth=credentials,
        limits=limits,
        cafile=cafile,
        insecure=insecure,
        link_base=f"{root}/",
        pin_origin=root if rebase_links else None,
        action_body=action_body,
        **options,
    )


def search(query: str) -> dict[str, Any]:
    """The body of a ``search`` action: ``{"search": {"query": query}}``.

    Query syntax as in Veeam Explorer: ``from:x to:y subject:"two words" word``.
    """
    return {"search": {"query": query}}


def export_pst(
    *,
    content_keywords: str | None = None,
    pst_size_limit_bytes: int | None = None,
) -> dict[str, Any]:
    """The body of an ``exporttoPst`` action; a size limit splits the export into a ZIP of PSTs."""
    options: dict[str, Any] = {}
    if content_keywords:
        options["contentKeywords"] = content_keywords
    if pst_size_limit_bytes is not None:
        options["enablePstSizeLimit"] = True
        options["pstSizeLimitBytes"] = pst_size_limit_bytes
    return {"exporttoPst": options or None}


def restore_to_original(
    *, username: str | None = None, password: str | None = None, **flags: bool
) -> dict[str, Any]:
    """The body of a ``restoretoOriginallocation`` action (flags such as ``changedItems=True``)."""
    options: dict[str, Any] = dict(flags)
    if username is not None:
        options["userName"] = username
    if password is not None:
        options["userPassword"] = password
    return {"restoretoOriginallocation": options or None}


async def organizations(nav: Navigator) -> list[Document]:
    """The organizations the server backs up (``GET /v5/Organizations``, a list or a page)."""
    listing = await nav.get("Organizations")
    if listing.items:
        return list(listing.items)
    return [item async for item in nav.paginate(listing)]


@attrs.define
class RestoreSession:
    """A running restore session, from :func:`explore`."""

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

    async def organization(self) -> Document:
        """The organization being explored (the seed resource)."""
        return await self.nav.get(f"{self.url}/Organization")

    async def stop(self) -> None:
        """Stop the session (``{"stop": null}``). Idempotent on the client side."""
        await self.nav.send("POST", f"{self.url}/Action", json={"stop": None})

    def __repr__(self) -> str:
        return f"<RestoreSession {self.id} {self.document.state.get('state', '?')}>"


@contextlib.asynccontextmanager
async def explore(
    nav: Navigator,
    organization: str | Document,
    *,
    type: str = "vex",  # the Veeam option is called type
    point_in_time: datetime | None = None,
    show_deleted: bool = False,
    show_all_versions: bool = False,
) -> AsyncIterator[RestoreSession]:
    """Start a restore session for ``organization`` (an id or its Document); always stop it.

    The session is stopped when the block ends, also on errors and when the
    task is cancelled (the stop request is shielded from the cancellation).

    Raises:
        TransportError: the server refused to start the session.
        DocumentError: it answered something that is not a session.
    """
    org_id = organization if isinstance(organization, str) else str(organization["id"])
    options: dict[str, Any] = {
        "type": type,
        "showDeleted": show_deleted,
        "showAllVersions": show_all_versions,
    }
    if point_in_time is not None:
        options["datetime"] = point_in_time.strftime("%Y.%m.%d %H:%M:%S")
    answer = await nav.send(
        "POST", f"Organizations/{quote(org_id, safe='')}/Action", json={"explore": options}
    )
    if isinstance(answer, Download) or "id" not in answer.state:
        raise HalnavError(f"explore of organization {org_id} did not return a restore session")
    session = RestoreSession(nav, answer)
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
