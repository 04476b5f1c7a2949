"""Organizations and restore sessions: list, explore (start), stop, events, statistics.

Also ``_restored``, every restore action's answer: statistics (v5-v7) or, on v8, a restore
session of its own that runs in the background.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from ._bodies import _flag, _parse_datetime, _read_action, _read_options
from ._context import _ApiError, _Ctx, _json_response, _page
from ._data import en_us_time, json_net_date
from ._hrefs import _Paths
from ._router import _V5, _V6_UP, _V8, _route
from ._state import _RestoreJob, _Session


def _organization(ctx: _Ctx, org: int) -> dict[str, object]:
    data = ctx.data
    workloads = ctx.config.workloads
    tenant = data.tenant(org)
    return {
        "id": data.organization_id(org),
        "name": tenant,
        "officeName": tenant,
        "type": "Office365",
        "region": "Worldwide",
        "isExchangeOnline": "vex" in workloads,
        "isSharePointOnline": "veod" in workloads or "vesp" in workloads,
        "isTeamsOnline": "vet" in workloads,
        "isBackedup": True,
        "firstBackuptime": json_net_date(data.first_backup(org)),
        "lastBackuptime": json_net_date(data.last_backup(org)),
        "_links": {
            "self": ctx.link(f"/{ctx.version.name}/Organizations/{data.organization_id(org)}")
        },
    }


def tenant_of(ctx: _Ctx) -> int | None:
    """The organization a tenant or operator token is bound to; None for an administrator."""
    role, _, org = (ctx.username or "").partition(":")
    return int(org) if role in ("tenant", "operator") and org.isdigit() else None


def _admin_only(ctx: _Ctx) -> None:
    if tenant_of(ctx) is not None:
        raise _ApiError(403, "Access is denied: the operation is for administrators only.")


def _find_org(ctx: _Ctx) -> int:
    _admin_only(ctx)
    org = ctx.data.find_organization(ctx.params["org"])
    if org is None:
        raise _ApiError(404, f"Organization with ID '{ctx.params['org']}' not found.")
    return org


@_route("GET", "organizations")
async def _organizations(ctx: _Ctx) -> web.StreamResponse:
    """A bare JSON array (v5-v7: API-NOTES section 2, the v6/v7 specs); a page on v8."""
    _admin_only(ctx)
    total = ctx.config.organizations
    if ctx.version.organizations_paged:
        path = f"/{ctx.version.name}/Organizations"
        return _page(ctx, path, (), total, lambda org: _organization(ctx, org))
    return _json_response([_organization(ctx, org) for org in range(total)])


@_route("GET", "organizations/{org}")
async def _organization_get(ctx: _Ctx) -> web.StreamResponse:
    return _json_response(_organization(ctx, _find_org(ctx)))


_SESSION_TYPES: Final = {"vex": "Vex", "veod": "Veod", "vesp": "Vesp", "vet": "Vet"}
_WORKLOADS: Final = {"Vex": "Exchange", "Veod": "OneDrive", "Vesp": "SharePoint", "Vet": "Teams"}


@_route("POST", "organizations/{org}/action", versions=_V5)
async def _organization_action(ctx: _Ctx) -> web.StreamResponse:
    """v5 explore: ``{"explore": {"datetime", "type", ...}}`` -> 201 and the session."""
    org = _find_org(ctx)
    _, options = await _read_action(ctx, ("explore",))
    return _explore(ctx, org, options)


_EXPLORE_OPTIONS: Final = ("datetime", "type", "showdeleted", "showallversions")


@_route("POST", "organizations/{org}/explore", versions=_V6_UP)
async def _organization_explore(ctx: _Ctx) -> web.StreamResponse:
    """v6+ explore: bare RESTExploreOptions (v8: RESTOrganizationExploreOptions)."""
    org = _find_org(ctx)
    allowed = (*_EXPLORE_OPTIONS, "repositoryid") if ctx.version.number >= 8 else _EXPLORE_OPTIONS
    options = await _read_options(ctx, allowed)
    return _explore(ctx, org, options)


def _tenant(ctx: _Ctx) -> int:
    org = tenant_of(ctx)
    if org is None:
        raise _ApiError(403, "Access is denied: log in as a tenant to explore your organization.")
    return org


@_route("GET", "organization")
async def _tenant_organization(ctx: _Ctx) -> web.StreamResponse:
    """The organization a tenant or operator logged in to (the tenant view)."""
    return _json_response(_organization(ctx, _tenant(ctx)))


@_route("POST", "organization/action", versions=_V5)
async def _tenant_action(ctx: _Ctx) -> web.StreamResponse:
    """v5 tenant explore: ``POST /v5/Organization/Action {"explore": {...}}`` -> 201."""
    org = _tenant(ctx)
    _, options = await _read_action(ctx, ("explore",))
    return _explore(ctx, org, options)


@_route("POST", "organization/explore", versions=_V6_UP)
async def _tenant_explore(ctx: _Ctx) -> web.StreamResponse:
    """v6+ tenant explore: bare RESTExploreOptions, as for an administrator's explore."""
    org = _tenant(ctx)
    options = await _read_options(ctx, _EXPLORE_OPTIONS)
    return _explore(ctx, org, options)


def _explore(ctx: _Ctx, org: int, options: Mapping[str, object]) -> web.StreamResponse:
    """Start a session of ``org`` with the explore ``options`` (at their ``datetime``)."""
    kind_text = str(options.get("type") or "vex").lower()
    if kind_text not in _SESSION_TYPES:
        raise _ApiError(400, f"Restore session type '{kind_text}' is not supported.")
    if kind_text not in ctx.config.workloads:
        workload = _WORKLOADS[_SESSION_TYPES[kind_text]]
        raise _ApiError(400, f"The organization has no {workload} backup to explore.")
    _flag(options, "showdeleted", default=False)
    _flag(options, "showallversions", default=False)
    latest = ctx.data.last_backup(org)
    when = options.get("datetime")
    point = latest if when in (None, "") else min(_parse_datetime(str(when)), latest)
    state = ctx.state
    session = _Session(
        id=ctx.data.session_id(len(state.sessions)),
        org=org,
        kind=_SESSION_TYPES[kind_text],
        point_in_time=point,
        created=dt.datetime.now(dt.UTC),
        initiated_by=ctx.username or ctx.config.username,
    )
    state.sessions[session.id] = session
    state.stats.sessions_started += 1
    status = ctx.version.explore_status
    headers = {"Location": ctx.href(_Paths(ctx.data, session.id, ctx.version).session)}
    return _json_response(_session_doc(ctx, session), status, headers if status == 201 else None)


def _ticks(moment: dt.datetime) -> str:
    return json_net_date(moment.replace(microsecond=0), moment.microsecond * 10)


def _session_doc(ctx: _Ctx, session: _Session) -> dict[str, object]:
    workload = _WORKLOADS[session.kind]
    scope = "Mailbox restore" if session.restore is not None else "Entire organization"
    doc: dict[str, object] = {
        "id": session.id,
        "name": f"{workload} restore ({scope} - {en_us_time(session.point_in_time)})",
        "organization": ctx.data.tenant(session.org),
        "type": session.kind,
        "creationTime": _ticks(session.created),
    }
    if session.ended is not None:
        doc["endTime"] = _ticks(session.ended)
    doc["state"] = "Working" if session.working else "Stopped"
    doc["result"] = "Success"
    doc["initiatedBy"] = session.initiated_by
    doc["details"] = ""
    paths = ctx.paths(session)
    links = {"self": ctx.link(paths.session)}
    if session.restore is None:
        links["organization"] = ctx.link(paths.seed)
    if ctx.version.name != "v5":
        links["events"] = ctx.link(f"{paths.session}/Events")
    if ctx.version.async_restores:
        links["statistics"] = ctx.link(f"{paths.session}/Statistics")
    doc["_links"] = links
    return doc


def _find_session(ctx: _Ctx) -> _Session:
    session = ctx.state.sessions.get(ctx.params["session"].lower())
    if session is None:
        raise _ApiError(404, f"Restore session with ID '{ctx.params['session']}' not found.")
    return session


@_route("GET", "restoresessions")
async def _sessions(ctx: _Ctx) -> web.StreamResponse:
    sessions = list(ctx.state.sessions.values())
    path = f"/{ctx.version.name}/RestoreSessions"
    return _page(ctx, path, (), len(sessions), lambda i: _session_doc(ctx, sessions[i]))


@_route("GET", "restoresessions/{session}")
async def _session_get(ctx: _Ctx) -> web.StreamResponse:
    return _json_response(_session_doc(ctx, _find_session(ctx)))


@_route("POST", "restoresessions/{session}/action", versions=_V5)
async def _session_action(ctx: _Ctx) -> web.StreamResponse:
    session = _find_session(ctx)
    await _read_action(ctx, ("stop",))
    return _stop(ctx, session)


@_route("POST", "restoresessions/{session}/stop", versions=_V6_UP)
async def _session_stop(ctx: _Ctx) -> web.StreamResponse:
    """v6+ stop: no body; 200 (v6/v7) or 204 (v8)."""
    session = _find_session(ctx)
    await _read_options(ctx, ())
    return _stop(ctx, session)


def _stop(ctx: _Ctx, session: _Session) -> web.StreamResponse:
    if session.working:
        session.ended = dt.datetime.now(dt.UTC)
        ctx.state.stats.sessions_stopped += 1
    return web.Response(status=ctx.version.stop_status)


@_route("GET", "restoresessions/{session}/events", versions=_V6_UP)
async def _session_events(ctx: _Ctx) -> web.StreamResponse:
    """RESTRestoreSessionEvent pages: one event per v8 restore, Running until it ends."""
    session = _find_session(ctx)
    events = [] if session.restore is None else [_restore_event(ctx, session, session.restore)]
    path = f"{ctx.paths(session).session}/Events"
    return _page(ctx, path, (), len(events), lambda i: events[i])


def _restore_event(ctx: _Ctx, session: _Session, job: _RestoreJob) -> dict[str, object]:
    event: dict[str, object] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"event:{session.id}")),
        "type": "Restore",
        "status": "Success" if job.finished else "Running",
        "startTime": _ticks(job.started),
        "title": f"Restoring {job.items} items",
        "message": f"Restored {job.items} items" if job.finished else "Restoring items",
        "order": 0,
    }
    if session.ended is not None:
        event["endTime"] = _ticks(session.ended)
    return event


@_route("GET", "restoresessions/{session}/statistics", versions=_V8)
async def _session_statistics(ctx: _Ctx) -> web.StreamResponse:
    """RESTRestoreSessionStatistics: how far a (v8 asynchronous) restore got."""
    session = _find_session(ctx)
    job = session.restore
    total = job.items if job is not None else 0
    done = total if job is not None and job.finished else 0
    return _json_response(
        {
            "totalItemsCount": total,
            "restoredItemsCount": done,
            "failedItemsCount": 0,
            "skippedItemsCount": 0,
            "items": [],
        }
    )


def _restored(ctx: _Ctx, session: _Session, count: int) -> web.Response:
    """A restore's answer: statistics (v5-v7, synchronous), ``{"sessionId"}`` (v8).

    A v8 restore runs in the background in a restore session of its own [I: the spec's
    RESTAsyncRestoreResponse names a restore session]; it is Working for
    ``restore_seconds``, then Stopped, with its counts at ``.../Statistics`` and one
    event at ``.../Events``.
    """
    ctx.state.stats.restores += 1
    if not ctx.version.async_restores:
        return _exchange_restored(count)
    state = ctx.state
    now = dt.datetime.now(dt.UTC)
    job = _RestoreJob(
        items=count, done_at=time.monotonic() + ctx.config.restore_seconds, started=now
    )
    restore = _Session(
        id=ctx.data.session_id(len(state.sessions)),
        org=session.org,
        kind=session.kind,
        point_in_time=session.point_in_time,
        created=now,
        initiated_by=ctx.username or ctx.config.username,
        restore=job,
    )
    state.sessions[restore.id] = restore
    return _json_response({"sessionId": restore.id})


def _exchange_restored(count: int) -> web.Response:
    """v5 restores are synchronous and answer statistics (RESTItemRestoreStatistics)."""
    return _json_response(
        {
            "createdItemsCount": count,
            "mergedItemsCount": 0,
            "failedItemsCount": 0,
            "skippedItemsCount": 0,
        }
    )
