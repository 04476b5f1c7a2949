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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import quote, urlsplit

import attrs

from halnav import (
    Action,
    ActionRule,
    CrawlStatistics,
    CrawlSummary,
    Document,
    Download,
    Limits,
    Navigator,
    PasswordGrant,
    ProviderAuth,
    crawl,
)
from halnav.errors import HalnavError

__all__ = [
    "VERSION",
    "RestoreSession",
    "Walk",
    "action_body",
    "auth",
    "explore",
    "export_pst",
    "is_mailbox",
    "open_navigator",
    "organizations",
    "restore_to_original",
    "search",
    "walk",
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


def is_mailbox(doc: Document) -> bool:
    """A v5 mailbox: it has folders and items but no ``mailbox`` link (folders and items do)."""
    rels = doc.rels
    return "folders" in rels and "items" in rels and "mailbox" not in rels


@attrs.frozen
class Walk:
    """What :func:`walk` did: the organizations and sessions, and the crawl's summary."""

    organizations: tuple[str, ...]
    sessions: tuple[str, ...]
    crawl: CrawlSummary


async def walk(
    nav: Navigator,
    *,
    output: str | Path | TextIO | None,
    organization_ids: Iterable[str] | None = None,
    search_query: str | None = None,
    export_dir: str | Path | None = None,
    export_limit: int | None = 1,
    progress: Callable[[CrawlStatistics], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> Walk:
    """halnav's main job on a Veeam server: explore, walk every session, act, always stop.

    Explores each organization (all of them by default) in its own restore session,
    walks all their Organization resources in ONE concurrent crawl (organization ->
    mailboxes -> folders -> items, every page) writing JSON Lines to ``output``, runs
    ``search`` with ``search_query`` on every mailbox and, with ``export_dir``, exports
    up to ``export_limit`` mailboxes to PST (``None``: all of them). Every session is
    stopped when the walk ends, also on errors and cancellation. The navigator's graph
    holds the walk afterwards (write it with ``nav.graph.write(path)``).

    A walk of new restore sessions cannot be resumed (the session URLs change); for a
    resumable walk, explore yourself and use :func:`halnav.crawl` with ``state_dir``.

    Example (``u`` and ``p`` are your credentials)::

        async with open_navigator("https://vbo:4443", username=u, password=p) as nav:
            done = await walk(nav, output="walk.jsonl", search_query="subject:invoice")

    Raises:
        TransportError: the server refused to list organizations or start a session.
    """
    tell = say or (lambda _text: None)
    if organization_ids is None:
        organization_ids = [str(org["id"]) for org in await organizations(nav)]
    org_ids = tuple(organization_ids)
    rules = []
    if search_query is not None:
        rules.append(ActionRule(name="search", json=search(search_query), where=is_mailbox))
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
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(explore(nav, org)) for org in org_ids]
        tell(f"explored {len(sessions)} organizations; walking them all in one crawl")
        summary = await crawl(
            nav,
            [f"{session.url}/Organization" for session in sessions],
            output=output,
            actions=rules,
            progress=progress,
        )
        tell(f"stopping {len(sessions)} restore sessions")
    return Walk(org_ids, tuple(session.id for session in sessions), summary)
