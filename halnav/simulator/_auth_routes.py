"""The token endpoint: ``POST /vN/token`` (password and refresh grants) and ``/token/logout``.

Issues the OWIN-style bearer and refresh tokens the router checks, with v7/v8's antiforgery
cookie that a refresh grant must bring back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import secrets
import time
from typing import Final

from aiohttp import web

from ._context import _JSON, _Ctx, _json_response
from ._router import _V7_UP, _route
from ._state import _Refresh, _Token
from ._versions import ApiVersion

# The DPAPI blob header every v5 (OWIN) access token starts with; not a credential.
_TOKEN_PREFIX: Final = "AQAAANCMnd8BFdERjHoAwE_Cl-sB"  # noqa: S105  a public format prefix
_ANTIFORGERY_COOKIE: Final = ".AspNetCore.Antiforgery.VBO365"
_JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _token_date(version: ApiVersion, moment: float) -> str:
    if version.iso_token_dates:
        return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")
    return email.utils.formatdate(moment, usegmt=True)


def _oauth_error(error: str, description: str) -> web.Response:
    return _json_response({"error": error, "error_description": description}, 400)


@_route("POST", "token", auth=False)
async def _token(ctx: _Ctx) -> web.StreamResponse:
    request = ctx.request
    form: dict[str, str] = {}
    if request.content_type == _JSON:
        with contextlib.suppress(ValueError):
            body = await request.json()
            if isinstance(body, dict):
                form = {str(key).lower(): str(value) for key, value in body.items()}
    else:
        posted = await request.post()
        for key, value in posted.items():
            if isinstance(value, str):
                form.setdefault(key.lower(), value)
    state = ctx.state
    grant = form.get("grant_type", "")
    # v7/v8: the grant sets an antiforgery cookie unless disable_antiforgery_token=true; a
    # refresh must then bring it back (API-NOTES section 1.1, the v7/v8 token requestBody).
    antiforgery = ctx.version.antiforgery and (
        form.get("disable_antiforgery_token", "").strip().lower() != "true"
    )
    if grant == "password":
        username = form.get("username", "")
        if (
            username.lower() != ctx.config.username.lower()
            or form.get("password") != ctx.config.password
        ):
            return _oauth_error("invalid_grant", "The user name or password is incorrect.")
        state.stats.token_grants += 1
        return _issue_tokens(ctx, ctx.config.username, antiforgery=antiforgery)
    if grant == "refresh_token":
        refresh = form.get("refresh_token", "")
        owner = state.refresh_tokens.get(refresh)
        if owner is None:
            return _oauth_error("invalid_grant", "The refresh token is invalid or has expired.")
        if ctx.version.antiforgery and owner.antiforgery is not None:
            cookie = ctx.request.cookies.get(_ANTIFORGERY_COOKIE)
            if cookie != owner.antiforgery:
                state.stats.antiforgery_refusals += 1
                return _oauth_error(
                    "invalid_grant", "The antiforgery token is missing or does not match."
                )
        del state.refresh_tokens[refresh]
        state.stats.token_refreshes += 1
        return _issue_tokens(ctx, owner.username, antiforgery=owner.antiforgery is not None)
    if grant == _JWT_BEARER or (grant == "operator" and ctx.version.number >= 6):
        # A tenant (jwt-bearer: client_id = the organization) or a restore operator
        # (v6+: client_id = userId.organizationId), with an Entra ID token as assertion.
        client = form.get("client_id", "")
        org_text = client.rpartition(".")[2] if grant == "operator" else client
        org = ctx.data.find_organization(org_text) if org_text else None
        if org is None or form.get("assertion") != ctx.config.tenant_assertion:
            return _oauth_error("invalid_grant", "The assertion or the client ID is not valid.")
        state.stats.token_grants += 1
        role = "operator" if grant == "operator" else "tenant"
        return _issue_tokens(ctx, f"{role}:{org}", antiforgery=antiforgery)
    return _oauth_error("unsupported_grant_type", f"Grant type '{grant}' is not supported.")


@_route("POST", "token/logout", versions=_V7_UP)
async def _logout(ctx: _Ctx) -> web.StreamResponse:
    """Revoke the caller's access token and every refresh token of the same grant chain."""
    _scheme, _, token = ctx.request.headers.get("Authorization", "").partition(" ")
    record = ctx.state.tokens.pop(token.strip(), None)
    if record is not None:
        ctx.state.stats.logouts += 1
        for refresh, owner in list(ctx.state.refresh_tokens.items()):
            if owner.access == token.strip():
                del ctx.state.refresh_tokens[refresh]
    status = ctx.version.logout_status
    assert status is not None  # the route exists only where logout does
    return web.Response(status=status)


def _issue_tokens(ctx: _Ctx, username: str, *, antiforgery: bool = False) -> web.Response:
    lifetime = ctx.config.token_lifetime
    access = _TOKEN_PREFIX + secrets.token_urlsafe(96)
    refresh = secrets.token_urlsafe(32)
    ctx.state.tokens[access] = _Token(username, time.monotonic() + lifetime)
    cookie = secrets.token_urlsafe(24) if antiforgery else None
    ctx.state.refresh_tokens[refresh] = _Refresh(username, access, cookie)
    now = time.time()
    payload = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(lifetime),
        "refresh_token": refresh,
        "userName": username,
        ".issued": _token_date(ctx.version, now),
        ".expires": _token_date(ctx.version, now + lifetime),
    }
    response = _json_response(payload, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})
    if cookie is not None:
        response.set_cookie(_ANTIFORGERY_COOKIE, cookie, path="/", httponly=True, samesite="Strict")
    return response
