"""Authentication as aiohttp client middlewares.

How auth plugs into the transport::

    Transport.open()
      └── auth.middleware(AuthContext(is_trusted=..., post_form=...))  -> one middleware
    Transport.request(url)                  for every hop (redirects included)
      └── session.request(..., middlewares=(mw,))   only when the hop's origin is trusted

* The navigator's transport calls :meth:`Auth.middleware` once,
  when it opens, and passes the middleware *per request*
  (``session.request(..., middlewares=...)``), so auth works on a borrowed
  session too. It passes it only for hops whose origin is trusted; the
  middleware checks :attr:`AuthContext.is_trusted` again (defence in depth:
  a middleware installed on a session by hand still never leaks a token).
* A token endpoint is called through :attr:`AuthContext.post_form`, which the
  transport supplies: a plain POST on the same session with no middlewares (no
  recursion through auth), no concurrency slot (no deadlock when every slot
  is held by a request waiting for the token), no retries, and the transport's
  timeouts, TLS settings and error mapping.

Nothing here knows about HAL. No token, refresh token or password appears in a
repr, a message or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable
from urllib.parse import quote_plus

import attrs
from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse, hdrs
from yarl import URL

from ._http import error_detail, redact
from .errors import AuthenticationError, HalnavError, StateError, UnsafeLinkError

__all__ = [
    "JWT_BEARER",
    "AssertionGrant",
    "Auth",
    "AuthContext",
    "BearerAuth",
    "ClientCredentialsGrant",
    "OAuth2Grant",
    "PasswordGrant",
    "ProviderAuth",
    "Redacting",
    "TokenProvider",
    "discover_token_endpoint",
    "password_auth",
]

_log = logging.getLogger("halnav.auth")


class PostForm(Protocol):
    """``post_form(url, fields, headers=None) -> (status, content_type, body)``."""

    def __call__(
        self, url: str, fields: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> Awaitable[tuple[int, str, bytes]]: ...


@attrs.frozen
class AuthContext:
    """What a transport hands an :class:`Auth` when it opens.

    ``is_trusted(url)`` says whether credentials may go to that URL's origin.
    ``post_form(url, fields, headers=None)`` POSTs an
    ``application/x-www-form-urlencoded`` body (with ``headers``, e.g. the HTTP
    Basic client authentication of RFC 6749 section 2.3.1) without any auth
    middleware and returns ``(status, media type, body)``; it raises
    :class:`~halnav.errors.TransportError` subclasses for connection failures and
    timeouts.
    """

    is_trusted: Callable[[URL], bool]
    post_form: PostForm


class Auth(Protocol):
    """Anything :class:`halnav.Navigator` accepts as ``auth=``.

    ``middleware(context)`` is called once per transport opening and returns
    an aiohttp client middleware. The transport applies it only to requests
    whose origin is trusted. Example, a fixed API-key header::

        class ApiKey:
            def __init__(self, key: str) -> None:
                self._key = key

            def middleware(self, context: AuthContext) -> ClientMiddlewareType:
                async def mw(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
                    if context.is_trusted(req.url):
                        req.headers["X-Api-Key"] = self._key
                    return await handler(req)

                return mw
    """

    def middleware(self, context: AuthContext) -> ClientMiddlewareType:
        """Return the middleware that adds credentials to a (trusted) request."""
        ...


@runtime_checkable
class Redacting(Protocol):
    """An auth or token provider that can tell its own secrets in a text (the transport
    redacts server error bodies with it: a server may echo a token back). Optional: an
    ``Auth`` or ``TokenProvider`` without ``redact`` is used as it is."""

    def redact(self, text: str) -> str:
        """``text`` with this object's secrets replaced by ``***``."""
        ...


class TokenProvider(Protocol):
    """A source of bearer tokens.

    ``get_token()`` returns the current token (obtaining one if needed);
    ``get_token(force_refresh=True)`` is called after the server refused the
    current token with 401 and must return a new one or raise
    :class:`~halnav.errors.AuthenticationError`.
    """

    async def get_token(self, *, force_refresh: bool = False) -> str:
        """Return a bearer token."""
        ...


@runtime_checkable
class _Bindable(Protocol):
    def bind(self, context: AuthContext) -> None: ...


class BearerAuth:
    """A fixed bearer token, sent as ``Authorization: Bearer <token>`` to trusted origins.

    Example::

        Navigator("https://vbo:4443/v5/Organizations", auth=BearerAuth(os.environ["TOKEN"]))
    """

    __slots__ = ("_header",)

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"

    def redact(self, text: str) -> str:
        """``text`` with the token replaced by ``***`` (for error details a server echoed)."""
        return redact(text, (self._header[7:],))

    def middleware(self, context: AuthContext) -> ClientMiddlewareType:
        """Return the middleware that sets the Authorization header."""
        header = self._header
        is_trusted = context.is_trusted

        async def bearer(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
            if is_trusted(req.url):
                req.headers[hdrs.AUTHORIZATION] = header
            return await handler(req)

        return bearer


class ProviderAuth:
    """Bearer tokens from a :class:`TokenProvider`, refreshed once on 401.

    Each trusted request gets ``Authorization: Bearer <get_token()>``. When the
    server answers 401, the middleware asks the provider for a new token
    (``force_refresh=True``, unless another request already replaced the token
    it used) and sends the request once more; a second 401 is returned as is
    and the transport raises :class:`~halnav.errors.AuthenticationError`.

    A provider with a ``bind(context)`` method (like the OAuth2 grants) is bound to the
    navigator's :class:`AuthContext` when it opens. For a password grant, say
    :func:`password_auth`; the other grants are wrapped by hand::

        auth = ProviderAuth(ClientCredentialsGrant(token_url, client_id=cid, client_secret=s))
    """

    __slots__ = ("_provider",)

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    def __repr__(self) -> str:
        return f"ProviderAuth({self._provider!r})"

    @property
    def provider(self) -> TokenProvider:
        """The token provider."""
        return self._provider

    def redact(self, text: str) -> str:
        """``text`` with the provider's secrets replaced by ``***``, if it can tell them."""
        provider = self._provider
        return provider.redact(text) if isinstance(provider, Redacting) else text

    def middleware(self, context: AuthContext) -> ClientMiddlewareType:
        """Bind the provider (if it wants a context) and return the bearer middleware."""
        provider = self._provider
        if isinstance(provider, _Bindable):
            provider.bind(context)
        is_trusted = context.is_trusted

        async def bearer(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
            if not is_trusted(req.url):
                return await handler(req)
            token = await provider.get_token()
            req.headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
            resp = await handler(req)
            if resp.status != 401:
                return resp
            # Give the connection back before asking for a token: the token
            # request may need a connection from the same (limited) pool.
            resp.release()
            fresh = await provider.get_token()
            if fresh == token:
                fresh = await provider.get_token(force_refresh=True)
            req.headers[hdrs.AUTHORIZATION] = f"Bearer {fresh}"
            return await handler(req)

        return bearer


ClientAuth = Literal["basic", "form"]


class OAuth2Grant:
    """An OAuth2 token grant with refresh: the machinery every grant halnav sends shares.

    Keeps ``access_token``, ``refresh_token`` and the expiry (``expires_in``, else
    ``.expires`` as RFC 1123 or ISO 8601). Refreshes with ``grant_type=refresh_token``
    when fewer than ``refresh_margin`` seconds remain (at most half the token's lifetime,
    so short-lived tokens are not refreshed on every call) or when forced after a 401; a
    refused refresh (400/401) falls back to the first grant. A refresh token the server
    sends with the new access token replaces the old one (rotation); concurrent callers
    share one token request (single flight), so a rotated token is never used twice.
    ``clock`` (seconds, monotonic) measures the lifetime; tests pass a hand-moved one.

    Client authentication (RFC 6749 section 2.3): with ``client_id`` and
    ``client_secret``, HTTP Basic by default (``client_auth="basic"``: servers MUST
    support it, some accept nothing else) or ``client_id``/``client_secret`` form fields
    (``client_auth="form"``); with a ``client_id`` only (a public client), the id as a
    form field. It applies to every request to the token endpoint.

    Credentials only ever go to a trusted origin. The transport binds the grant to its
    session when it opens (use it through :class:`ProviderAuth`).

    Raises (from :meth:`get_token`):
        AuthenticationError: the token endpoint refused the grant (message
            carries the server's ``error_description``).
        UnsafeLinkError: ``token_url``'s origin is not trusted.
        StateError: not bound to a transport yet.
        TransportError: the token endpoint could not be reached.
    """

    def __init__(
        self,
        token_url: str,
        *,
        refresh_margin: float = 60.0,
        extra: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_auth: ClientAuth = "basic",
    ) -> None:
        if refresh_margin < 0:
            raise ValueError(f"refresh_margin must be >= 0, got {refresh_margin!r}")
        if client_secret is not None and client_id is None:
            raise ValueError("client_secret needs a client_id")
        if client_auth not in ("basic", "form"):
            raise ValueError(f"client_auth must be 'basic' or 'form', got {client_auth!r}")
        self._token_url = token_url
        self._margin = refresh_margin
        self._clock = clock
        self._extra = dict(extra or {})
        self._client_id = client_id
        self._client_secret = client_secret
        self._client_auth: ClientAuth = client_auth
        self._context: AuthContext | None = None
        self._access: str | None = None
        self._refresh: str | None = None
        # Tokens given up (a refresh token while it is spent, earlier access tokens): still
        # redacted, since a server may echo them in a later error.
        self._spent: collections.deque[str] = collections.deque(maxlen=8)
        self._refresh_at: float | None = None  # a deadline on self._clock
        self._generation = 0  # bumped whenever a new access token is stored
        self._attempts = 0  # bumped whenever a grant is tried
        self._failure: BaseException | None = None
        self._lock = asyncio.Lock()

    def _first_grant(self) -> dict[str, str]:
        """The form fields of the grant that starts a session (not a refresh)."""
        raise NotImplementedError

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._client_secret, self._access, self._refresh, *self._spent)

    def __repr__(self) -> str:
        client = f", client_id={self._client_id!r}" if self._client_id else ""
        return f"{type(self).__name__}(token_url={self._token_url!r}{client})"

    def redact(self, text: str) -> str:
        """``text`` with the secrets and the current tokens replaced by ``***``."""
        return redact(text, self._secrets())

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self._token_url

    @property
    def has_token(self) -> bool:
        """Whether a grant succeeded and its access token is held (it may have expired)."""
        return self._access is not None

    def retarget(self, token_url: str) -> None:
        """Use ``token_url`` from now on (before the first grant: a profile that detects
        the API version, or discovers the endpoint, learns it only when it connects).

        Raises:
            StateError: a token was already obtained from another endpoint.
        """
        if self._access is not None and token_url != self._token_url:
            raise StateError("this grant already holds a token from another endpoint")
        self._token_url = token_url

    def bind(self, context: AuthContext) -> None:
        """Use ``context`` (the transport's session) for token requests."""
        self._context = context

    def _fresh(self) -> bool:
        return self._access is not None and (
            self._refresh_at is None or self._clock() < self._refresh_at
        )

    async def get_token(self, *, force_refresh: bool = False) -> str:
        """Return the access token, obtaining or refreshing it when needed."""
        if not force_refresh and self._fresh():
            assert self._access is not None
            return self._access
        generation, attempts = self._generation, self._attempts
        async with self._lock:
            if self._generation != generation and self._access is not None:
                # Someone stored a new token while we waited: it is the one we want.
                return self._access
            if self._attempts != attempts and self._failure is not None:
                # The grant we waited for failed; do not hammer the endpoint.
                raise copy.copy(self._failure)
            if not force_refresh and self._fresh():
                assert self._access is not None
                return self._access
            self._attempts += 1
            try:
                await self._obtain()
            except BaseException as exc:
                self._failure = exc if isinstance(exc, HalnavError) else None
                raise
            self._failure = None
            self._generation += 1
            assert self._access is not None
            return self._access

    async def _obtain(self) -> None:
        if self._refresh is not None:
            refresh = self._refresh
            self._spent.append(refresh)
            self._refresh = None
            try:
                await self._grant({"grant_type": "refresh_token", "refresh_token": refresh})
            except AuthenticationError as exc:
                if exc.status not in (400, 401):
                    raise
                _log.debug("refresh refused by %s (HTTP %s); starting over",
                           self._token_url, exc.status)  # fmt: skip
            else:
                return
        await self._grant(self._first_grant())

    def _client_authentication(self, fields: dict[str, str]) -> dict[str, str] | None:
        """Add the client's credentials to ``fields``, or return the Basic header."""
        client_id, secret = self._client_id, self._client_secret
        if client_id is None:
            return None
        if secret is None or self._client_auth == "form":
            fields["client_id"] = client_id
            if secret is not None:
                fields["client_secret"] = secret
            return None
        # RFC 6749 section 2.3.1: id and secret form-urlencoded, then Basic.
        pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
        return {hdrs.AUTHORIZATION: "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    async def _grant(self, fields: dict[str, str]) -> None:
        context = self._context
        if context is None:
            raise StateError(
                f"{type(self).__name__} is not bound to a session; pass it to a Transport "
                "(auth=ProviderAuth(grant)) or call bind() first"
            )
        if not context.is_trusted(URL(self._token_url, encoded=True)):
            raise UnsafeLinkError(
                self._token_url,
                "the token endpoint's origin is not trusted, so no credentials are sent "
                "there; add it to trusted_origins",
            )
        for key, value in self._extra.items():
            fields.setdefault(key, value)
        headers = self._client_authentication(fields)
        status, content_type, body = await context.post_form(self._token_url, fields, headers)
        if status != 200:
            detail = error_detail(content_type, body, redact=self.redact)
            raise AuthenticationError("POST", self._token_url, status, detail)
        self._store(status, body)

    def _store(self, status: int, body: bytes) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
            raise AuthenticationError(
                "POST", self._token_url, status, "the token response has no access_token"
            )
        if self._access is not None:
            self._spent.append(self._access)
        self._access = doc["access_token"]
        refresh = doc.get("refresh_token")
        self._refresh = refresh if isinstance(refresh, str) and refresh else None
        lifetime = _lifetime(doc)
        if lifetime is None:
            self._refresh_at = None
        else:
            margin = min(self._margin, lifetime / 2)
            self._refresh_at = self._clock() + lifetime - margin


class PasswordGrant(OAuth2Grant):
    """OAuth2 resource-owner password grant with refresh (Veeam ``POST /vN/token``).

    Sends ``grant_type=password&username=..&password=..`` (plus ``extra`` fields and the
    client authentication, see :class:`OAuth2Grant`) form-encoded to ``token_url``.
    The password is only ever sent to a trusted origin.

    Example::

        auth = password_auth("https://vbo:4443/v5/token", "tech\\\\admin", pw)
        auth = password_auth(url, user, pw, client_id="app", client_secret=secret)
    """

    def __init__(
        self,
        token_url: str,
        username: str,
        password: str,
        *,
        refresh_margin: float = 60.0,
        extra: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_auth: ClientAuth = "basic",
    ) -> None:
        super().__init__(
            token_url,
            refresh_margin=refresh_margin,
            extra=extra,
            clock=clock,
            client_id=client_id,
            client_secret=client_secret,
            client_auth=client_auth,
        )
        self._username = username
        self._password = password

    def _first_grant(self) -> dict[str, str]:
        return {"grant_type": "password", "username": self._username, "password": self._password}

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._password, *super()._secrets())

    def __repr__(self) -> str:
        client = f", client_id={self._client_id!r}" if self._client_id else ""
        return (
            f"PasswordGrant(token_url={self._token_url!r}, username={self._username!r},"
            f" password='***'{client})"
        )


JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class AssertionGrant(OAuth2Grant):
    """An OAuth2 assertion grant (RFC 7523): ``grant_type`` (the jwt-bearer URN by
    default), ``client_id`` and ``assertion`` as form fields, then refresh tokens.

    What Veeam's tenants log in with (``client_id`` = the tenant's application id,
    ``assertion`` = an Entra ID token), and its restore operators on v6+
    (``grant_type="operator"``, ``client_id`` = ``userId.tenantId``). The assertion is a
    secret: never in a repr, a log line or an error.

    Example::

        auth = ProviderAuth(AssertionGrant(url, client_id=app_id, assertion=entra_token))
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        assertion: str,
        grant_type: str = JWT_BEARER,
        refresh_margin: float = 60.0,
        extra: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token_url, refresh_margin=refresh_margin, extra=extra, clock=clock)
        self._assertion_client = client_id
        self._assertion = assertion
        self._grant_type = grant_type

    def _first_grant(self) -> dict[str, str]:
        return {
            "grant_type": self._grant_type,
            "client_id": self._assertion_client,
            "assertion": self._assertion,
        }

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._assertion, *super()._secrets())

    def __repr__(self) -> str:
        return (
            f"AssertionGrant(token_url={self._token_url!r}, grant_type={self._grant_type!r},"
            f" client_id={self._assertion_client!r}, assertion='***')"
        )


class ClientCredentialsGrant(OAuth2Grant):
    """OAuth2 ``client_credentials`` grant (RFC 6749 section 4.4): a service account.

    The client authenticates itself (HTTP Basic by default, see :class:`OAuth2Grant`);
    ``scope`` is sent when given. Servers usually issue no refresh token for this grant:
    a new token is simply requested again.

    Example::

        auth = ProviderAuth(ClientCredentialsGrant(url, client_id="svc", client_secret=s))
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        client_auth: ClientAuth = "basic",
        scope: str | None = None,
        refresh_margin: float = 60.0,
        extra: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            token_url,
            refresh_margin=refresh_margin,
            extra=extra,
            clock=clock,
            client_id=client_id,
            client_secret=client_secret,
            client_auth=client_auth,
        )
        self._scope = scope

    def _first_grant(self) -> dict[str, str]:
        fields = {"grant_type": "client_credentials"}
        if self._scope:
            fields["scope"] = self._scope
        return fields


def _lifetime(doc: Mapping[str, object]) -> float | None:
    """Seconds the token lives: ``expires_in``, else ``.expires`` (RFC 1123 / ISO 8601)."""
    expires_in = doc.get("expires_in")
    if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
        try:
            seconds = float(expires_in)
        except (ValueError, OverflowError):  # not a number, or 400 digits long
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
        if not isinstance(expires_in, str):
            return None
    expires = doc.get(".expires")
    return seconds_until(expires, iso=True) if isinstance(expires, str) else None


def seconds_until(text: str, *, iso: bool = False) -> float | None:
    """Seconds from now until the date ``text`` (an HTTP-date, RFC 1123; with ``iso`` also
    ISO 8601), at least 0; None when it is no date, or one no datetime can hold."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):  # a year past 9999, or past a C int
        if not iso:
            return None
        try:
            when = datetime.fromisoformat(text)
        except (ValueError, OverflowError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def password_auth(
    token_url: str,
    username: str,
    password: str,
    *,
    refresh_margin: float = 60.0,
    extra: Mapping[str, str] | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    client_auth: ClientAuth = "basic",
    clock: Callable[[], float] = time.monotonic,
) -> ProviderAuth:
    """Bearer auth from an OAuth2 password grant (the Veeam ``/vN/token`` shape).

    A confidential client adds ``client_id`` and ``client_secret`` (HTTP Basic unless
    ``client_auth="form"``), a public client only ``client_id``.

    Example::

        Navigator("https://vbo:4443/v5/Organizations",
                  auth=password_auth("https://vbo:4443/v5/token", user, pw))

    This is the one spelling of password auth: ``veeam.auth`` and the CLI build theirs
    with it (``PasswordGrant`` is the grant type it wraps, exported for type checks).
    """
    return ProviderAuth(
        PasswordGrant(
            token_url,
            username,
            password,
            refresh_margin=refresh_margin,
            extra=extra,
            clock=clock,
            client_id=client_id,
            client_secret=client_secret,
            client_auth=client_auth,
        )
    )


async def discover_token_endpoint(issuer: str, *, session: Any = None) -> str:
    """The ``token_endpoint`` of an OAuth2 authorization server (RFC 8414 metadata).

    Reads ``{issuer}/.well-known/oauth-authorization-server`` (then the OpenID Connect
    ``/.well-known/openid-configuration``) over HTTPS-verified aiohttp and returns the
    token endpoint it names.

    Raises:
        HalnavError: no metadata, or metadata without a ``token_endpoint``.
    """
    import aiohttp  # noqa: PLC0415  only when discovery is asked for

    base = issuer.rstrip("/")
    owned = session is None
    http = aiohttp.ClientSession() if owned else session
    try:
        for suffix in (
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ):
            try:
                async with http.get(base + suffix, allow_redirects=False) as response:
                    if response.status != 200:
                        continue
                    metadata = json.loads(await response.read())
            except (aiohttp.ClientError, ValueError):
                continue
            endpoint = metadata.get("token_endpoint") if isinstance(metadata, dict) else None
            if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
                return endpoint
    finally:
        if owned:
            await http.close()
    raise HalnavError(
        f"{base}: no OAuth2 authorization server metadata with a token_endpoint "
        "(tried /.well-known/oauth-authorization-server and /.well-known/openid-configuration)"
    )
