"""HTTP transport: owns or borrows an aiohttp session; limits, retries, redirects, errors.

One :meth:`Transport.request` call is::

    request(method, url)
      for each hop (redirects, at most 10):          credentials decided per hop
        for each attempt (1 + Limits.retries):       backoff sleeps hold no slot
          acquire per-origin slot, then global slot
          session.request(..., allow_redirects=False, middlewares=auth-if-trusted)
          read the body (bounded) or stream it to a file
        raise / retry on connection errors, timeouts, 429/502/503/504
      raise HTTPStatusError for >= 400, return Response otherwise

aiohttp exceptions are mapped to :mod:`halnav.errors` here and nowhere else.
Nothing here knows about HAL; the navigator parses :attr:`Response.body`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import logging
import os
import random
import re
import ssl
import stat
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from http.cookies import BaseCookie, SimpleCookie
from pathlib import Path
from typing import Final
from urllib.parse import quote, urljoin

import aiohttp
import attrs
from aiohttp import ClientMiddlewareType, ClientResponse
from aiohttp.typedefs import LooseCookies
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._auth import Auth, AuthContext, Redacting, seconds_until
from ._cache import (
    CachedAnswer,
    HttpCache,
    conditional_headers,
    copy_headers,
    kept_headers,
    storable,
    variant_key,
)
from ._config import Lifecycle, Limits
from ._http import error_detail, is_json_type
from ._urls import DEFAULT_PORTS
from ._version import __version__
from .errors import (
    AuthenticationError,
    ConnectError,
    DocumentError,
    HalnavError,
    HTTPStatusError,
    InsecureTLSWarning,
    LimitExceededError,
    RequestTimeoutError,
    StateError,
    TLSError,
    TransportError,
    UnsafeLinkError,
)

__all__ = ["DEFAULT_ACCEPT", "Response", "Transport", "TransportStatistics", "changed_by"]

_log = logging.getLogger("halnav.transport")

DEFAULT_ACCEPT: Final = "application/hal+json, application/json;q=0.9, */*;q=0.5"
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_SAFE: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110 9.2.1
# Requests for documents; every other method is an action (see Limits.answer_timeout).
_DOCUMENT_METHODS: Final = frozenset({"GET", "HEAD"})
_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_SENSITIVE: Final = ("Authorization", "Cookie", "Proxy-Authorization")
_SENSITIVE_NAMES: Final = frozenset(name.lower() for name in _SENSITIVE)
# Headers a caller may give that go to every origin: they carry no credential.
_NEGOTIATION: Final = frozenset(
    {"accept", "accept-language", "accept-encoding", "user-agent", "cache-control", "prefer"}
)
_MAX_HOPS: Final = 10
_CHUNK: Final = 64 * 1024
_ERROR_BODY_CAP: Final = 64 * 1024  # an error body only feeds HTTPStatusError.detail
# Characters a URL may not carry unencoded; hrefs with them are quoted, others sent as is.
_NEEDS_QUOTING: Final = re.compile(r"[^\x21-\x7e]|[\"<>\\^`{|}]")
_URL_SAFE: Final = "%:/?#[]@!$&'()*+,;=~-._"
_USERINFO: Final = re.compile(r"(?<=//)[^/?#@]*@")

_Origin = tuple[str, str, int]  # scheme, lowercased host, effective port


@attrs.frozen(repr=False)
class Response:
    """One HTTP answer, read in full (or streamed to :attr:`path`).

    ``url`` is the final URL after redirects; ``headers`` are
    case-insensitive; ``content_type`` is the lowercased media type without
    parameters (``""`` when the server sent none).
    """

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    content_type: str
    body: bytes
    path: Path | None = None
    _streamed: int = attrs.field(default=0, kw_only=True, alias="streamed")
    cached: bool = attrs.field(default=False, kw_only=True)
    """Answered from the HTTP cache (fresh, or revalidated by a 304): nothing new came."""

    @property
    def size(self) -> int:
        """Bytes of body received (also when streamed to a file)."""
        return self._streamed if self.path is not None else len(self.body)

    def __repr__(self) -> str:
        where = f" -> {self.path}" if self.path is not None else ""
        ctype = self.content_type or "no content type"
        head = f"<Response {self.status} {self.method} {self.url}"
        return f"{head} {ctype} {self.size} bytes{where}>"


@attrs.frozen
class TransportStatistics:
    """Counters of a :class:`Transport` since it was created.

    ``requests`` counts attempts sent (retries and redirect hops included),
    ``retry_budget_spent`` the retries refused because the budget was used up,
    ``errors`` the calls that ended in an exception, ``throttled`` the answers that
    asked halnav to slow down (429, or 503 with ``Retry-After``).
    """

    requests: int
    responses: int
    retries: int
    retry_budget_spent: int
    in_flight: int
    max_in_flight: int
    bytes_received: int
    redirects: int
    errors: int
    throttled: int = 0
    cache_hits: int = 0
    """GETs answered from the cache without a request."""
    revalidated: int = 0
    """GETs the server answered 304 Not Modified: the cached body was reused."""


@attrs.define(slots=True)
class _Counters:
    """The transport's live counters, in one value; ``snapshot()`` is what users see."""

    calls: int = 0  # request() calls, the base of the retry budget
    requests: int = 0
    responses: int = 0
    retries: int = 0
    retry_budget_spent: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    bytes_received: int = 0
    redirects: int = 0
    errors: int = 0
    throttled: int = 0
    cache_hits: int = 0
    revalidated: int = 0

    def snapshot(self) -> TransportStatistics:
        return TransportStatistics(
            requests=self.requests,
            responses=self.responses,
            retries=self.retries,
            retry_budget_spent=self.retry_budget_spent,
            in_flight=self.in_flight,
            max_in_flight=self.max_in_flight,
            bytes_received=self.bytes_received,
            redirects=self.redirects,
            errors=self.errors,
            throttled=self.throttled,
            cache_hits=self.cache_hits,
            revalidated=self.revalidated,
        )


class _OriginState:
    """Per-origin bookkeeping: the concurrency slot and whether credentials may go there."""

    __slots__ = ("proxy", "proxy_headers", "semaphore", "shared", "trusted")

    def __init__(
        self,
        semaphore: asyncio.Semaphore | None,
        trusted: bool,
        shared: AbstractAsyncContextManager[object] | None = None,
    ) -> None:
        self.semaphore = semaphore
        self.trusted = trusted
        self.shared = shared
        self.proxy: URL | None = None  # the proxy requests to this origin go through
        self.proxy_headers: Mapping[str, str] | None = None  # its Proxy-Authorization


class _NoSlot:
    """Stands in for a per-origin semaphore when per_host >= concurrency."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_NO_SLOT: Final = _NoSlot()


class _TrustedCookieJar(aiohttp.CookieJar):
    """A cookie jar for trusted origins only: cookies are credentials too.

    Cookies are scoped by host, not by origin (RFC 6265): without this, a
    session cookie of ``https://api:4443`` would go to ``https://api:8080``, or
    to every host of its Domain, whenever a link leads there.
    """

    def __init__(self, is_trusted: Callable[[URL], bool]) -> None:
        # unsafe=True: also keep cookies of servers reached by IP address (aiohttp drops
        # them by default). Trust is decided per origin below; a Veeam v7/v8 server at
        # https://10.0.0.5:4443 must get its antiforgery cookie back on the refresh grant.
        super().__init__(unsafe=True)
        self._is_trusted = is_trusted

    # The URL() defaults are aiohttp CookieJar's signature (B008: a call in a default).
    def filter_cookies(self, request_url: URL = URL()) -> BaseCookie[str]:  # noqa: B008
        if not self._is_trusted(request_url):
            return SimpleCookie()
        return super().filter_cookies(request_url)

    # Another origin may not plant cookies that would then go to a trusted one.
    def update_cookies(self, cookies: LooseCookies, response_url: URL = URL()) -> None:  # noqa: B008
        if not response_url.host or self._is_trusted(response_url):
            super().update_cookies(cookies, response_url)

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        if self._is_trusted(response_url):
            super().update_cookies_from_headers(headers, response_url)


@attrs.frozen
class Redirect:
    """How to send the next hop of a redirect: its ``method``, whether the request body
    goes along (``keep_body``), or why halnav ``refuses`` to send it at all."""

    method: str
    keep_body: bool = True
    refuses: str | None = None


def plan_redirect(
    status: int, method: str, *, has_body: bool, untrusted_elsewhere: bool
) -> Redirect:
    """The redirect decision, a pure function of the answer (RFC 9110 section 15.4).

    301, 302 and 303 turn any method but HEAD into a GET without a body (what browsers,
    curl and httpx do; 303 requires it). 307 and 308 repeat the method and the body, except
    that a body never goes to an origin that is neither the first one nor trusted
    (``untrusted_elsewhere``): a restore's ``userPassword`` must not follow a redirect.
    """
    if status in (301, 302, 303) and method != "HEAD":
        return Redirect("GET", keep_body=False)
    if status in (307, 308) and has_body and untrusted_elsewhere:
        return Redirect(method, refuses="refusing to resend the body to another origin")
    return Redirect(method)


def hop_headers(sent: CIMultiDict[str], *, untrusted_elsewhere: bool) -> CIMultiDict[str]:
    """The caller's headers for a hop: ``Authorization``, ``Cookie`` and
    ``Proxy-Authorization`` stay with the first origin and trusted ones (what aiohttp and
    httpx strip on a cross-origin redirect); the rest go everywhere."""
    if not untrusted_elsewhere or not any(name in sent for name in _SENSITIVE):
        return sent
    stripped = CIMultiDict(sent)
    for name in _SENSITIVE:
        stripped.popall(name, None)
    return stripped


def without_body_headers(sent: CIMultiDict[str]) -> CIMultiDict[str]:
    """``sent`` without ``Content-Type``, for a hop that no longer carries the body."""
    if "Content-Type" not in sent:
        return sent
    trimmed = CIMultiDict(sent)
    trimmed.popall("Content-Type")
    return trimmed


@attrs.frozen
class RetryPlan:
    """What to do after an error status: ``retry`` it (after the server's ``wait``, or a
    backoff when None), or not; ``note`` says why not when the server asked too much."""

    retry: bool
    wait: float | None = None
    note: str | None = None


def retry_status(
    status: int, *, idempotent: bool, retry_after: str | None, attempt: int, limits: Limits
) -> RetryPlan:
    """The retry decision for an error ``status`` (>= 400), a pure function of the answer.

    A 429 or 503 with ``Retry-After`` is retried on any method after that wait, unless it
    is longer than ``limits.max_retry_after``; otherwise an idempotent request retries
    429, 502, 503 and 504 with backoff. Never more than ``limits.retries`` extra attempts
    (``attempt`` counts from 1). The retry budget is the transport's state, checked after.
    """
    wait = retry_after_seconds(retry_after) if status in _RETRY_AFTER_STATUSES else None
    if wait is not None and wait > limits.max_retry_after:
        note = (
            f"the server asked to retry after {wait:.0f} s, longer than "
            f"Limits.max_retry_after={limits.max_retry_after:g} s"
        )
        return RetryPlan(retry=False, note=note)
    if wait is None and (not idempotent or status not in _RETRY_STATUSES):
        return RetryPlan(retry=False)
    if attempt > limits.retries:
        return RetryPlan(retry=False)
    return RetryPlan(retry=True, wait=wait)


def retry_failure(
    error: TransportError, *, idempotent: bool, unsent: bool, attempt: int, limits: Limits
) -> bool:
    """Whether to retry a request that got no answer (a connection error, a timeout): an
    idempotent one, or any that never reached the server (``unsent``), but no TLS failure
    (it would fail the same way), within ``limits.retries`` extra attempts."""
    if isinstance(error, TLSError) or not (idempotent or unsent):
        return False
    return attempt <= limits.retries


class Transport:
    """Sends HTTP requests for the navigator: limits, retries, redirects, auth scoping.

    Example::

        async with contextlib.aclosing(Transport(trusted_origins=["https://vbo:4443"])) as t:
            response = await t.request("GET", "https://vbo:4443/v5/RestoreSessions")

    ``auth`` only reaches origins added with ``trusted_origins`` / :meth:`trust`,
    and so does every header given in ``headers`` (an ``X-Api-Key`` is a credential
    too) except the content-negotiation ones (``Accept``, ``Accept-Language``,
    ``Accept-Encoding``, ``User-Agent``, ``Cache-Control``, ``Prefer``), which go
    with every request; so do, on the session it creates, cookies (set by and sent to
    trusted origins only).
    TLS is verified by default; ``cafile`` trusts a private CA, ``insecure``
    switches verification off (warns :class:`~halnav.errors.InsecureTLSWarning`),
    ``ssl_context`` wins over both. A borrowed ``session`` is never closed here.
    ``host_slots`` shares the per-origin limit with other processes: it is called once
    per origin (``"https://vbo:4443"``) and returns a reusable async context manager held
    around each attempt to that origin, such as a cluster-wide semaphore
    (:mod:`halnav.cluster` passes a ``distributed.Semaphore``).
    Proxies come from the environment as for curl (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``; a proxy URL's user:password is sent to the proxy only)
    unless ``proxies_from_env=False`` or the session is borrowed.

    Raises (from :meth:`request`):
        UnsafeLinkError: not an http(s) URL, or it carries user:password.
        ConnectError, RequestTimeoutError, TLSError: the exchange failed.
        HTTPStatusError / AuthenticationError: a 4xx / 5xx answer (after retries).
        LimitExceededError: a body larger than ``Limits.max_response_bytes``.
        TransportError: too many redirects, other aiohttp failures.
        StateError: the transport was closed.
    """

    def __init__(
        self,
        *,
        limits: Limits = Limits(),  # noqa: B008 - Limits is frozen, a shared default is safe
        session: aiohttp.ClientSession | None = None,
        auth: Auth | None = None,
        trusted_origins: Iterable[str] = (),
        cafile: str | None = None,
        insecure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        user_agent: str = f"halnav/{__version__}",
        host_slots: Callable[[str], AbstractAsyncContextManager[object]] | None = None,
        proxies_from_env: bool = True,
        cache: HttpCache | None = None,
    ) -> None:
        self._limits = limits
        self._cache = cache
        self._host_slots = host_slots
        # Proxies as curl and requests take them (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); read
        # here, chosen per origin. Not aiohttp's trust_env: that would also send ~/.netrc
        # passwords to hosts nobody named. A borrowed session keeps its own configuration.
        self._proxies = (
            urllib.request.getproxies_environment() if proxies_from_env and session is None else {}
        )
        self._session = session
        self._owned = session is None
        self._auth = auth
        self._redact: Callable[[str], str] | None = (
            auth.redact if isinstance(auth, Redacting) else None
        )
        self._insecure = insecure and ssl_context is None
        self._ssl: ssl.SSLContext | bool
        if ssl_context is not None:
            self._ssl = ssl_context
        elif insecure:
            self._ssl = False
        elif cafile is not None:
            self._ssl = ssl.create_default_context(cafile=cafile)
        else:
            self._ssl = True
        self._timeout = aiohttp.ClientTimeout(
            total=limits.total_timeout,
            sock_connect=limits.connect_timeout,
            sock_read=limits.read_timeout,
        )
        # Actions: the wait for the first byte is answer_timeout; the transfer of a download
        # is bounded in _stream (read_timeout between reads, transfer_timeout overall).
        self._action_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect_timeout, sock_read=limits.answer_timeout
        )
        base: CIMultiDict[str] = CIMultiDict({"User-Agent": user_agent})
        # Client-wide credential headers are scoped like ``auth``: trusted origins only.
        # (Sent with every request, they would otherwise follow any link to any origin.)
        self._credentials: CIMultiDict[str] = CIMultiDict()
        # Every header a caller gives is treated as a credential (an ``X-Api-Key``, a
        # session header...) except those that only negotiate content.
        for name, value in (headers or {}).items():
            (base if name.lower() in _NEGOTIATION else self._credentials)[name] = value
        self._base_headers = base
        # An Accept the caller gave is the default of every request (HAL-FORMS servers such
        # as Spring HATEOAS render _templates only for application/prs.hal-forms+json).
        self._accept = base.get("Accept", DEFAULT_ACCEPT)
        self._default_headers = CIMultiDict(base)
        self._default_headers["Accept"] = self._accept
        self._default_trusted = self._with_credentials(self._default_headers)
        self._trusted: set[_Origin] = set()
        self._origins: dict[_Origin, _OriginState] = {}
        self._global = asyncio.Semaphore(limits.concurrency)
        self._per_origin = limits.host_limit < limits.concurrency
        self._middlewares: tuple[ClientMiddlewareType, ...] | None = None
        self._state = Lifecycle.UNOPENED
        self._open_lock = asyncio.Lock()
        # counters
        self._count = _Counters()
        for origin in trusted_origins:
            self.trust(origin)

    # --- state -------------------------------------------------------------------------

    def __repr__(self) -> str:
        trusted = ", ".join(sorted(_origin_text(o) for o in self._trusted)) or "none"
        limits = self._limits
        return (
            f"<Transport {self._state.value} {'owned' if self._owned else 'borrowed'} session"
            f" trusted=[{trusted}] concurrency={limits.concurrency}"
            f" per_host={limits.host_limit} retries={limits.retries}"
            f" auth={type(self._auth).__name__ if self._auth is not None else 'none'}>"
        )

    @property
    def limits(self) -> Limits:
        """The limits this transport enforces."""
        return self._limits

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session (``None`` until opened when owned)."""
        return self._session

    async def open(self) -> None:
        """Create the owned session (if none was borrowed) and bind auth. Idempotent.

        Raises:
            StateError: the transport was closed.
        """
        if self._state is Lifecycle.OPEN:
            return
        async with self._open_lock:
            state: Lifecycle = self._state  # re-read: another task may have opened or closed it
            if state is Lifecycle.CLOSED:
                raise StateError("the Transport is closed")
            if state is Lifecycle.OPEN:
                return
            if self._insecure:
                warnings.warn(
                    "TLS certificate verification is switched off (insecure=True); "
                    "use it only against a test server",
                    InsecureTLSWarning,
                    stacklevel=2,
                )
            if self._session is None:
                connector = aiohttp.TCPConnector(
                    limit=self._limits.concurrency,
                    limit_per_host=self._limits.host_limit,
                    ssl=self._ssl,
                )
                self._session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=self._timeout,
                    cookie_jar=_TrustedCookieJar(self._url_trusted),
                )
            if self._auth is not None:
                context = AuthContext(is_trusted=self._url_trusted, post_form=self._post_form)
                self._middlewares = (self._auth.middleware(context),)
            self._state = Lifecycle.OPEN

    async def aclose(self) -> None:
        """Close the session if this transport created it. Idempotent."""
        if self._state is Lifecycle.CLOSED:
            return
        self._state = Lifecycle.CLOSED
        session = self._session
        if self._owned and session is not None:
            await session.close()

    def statistics(self) -> TransportStatistics:
        """A snapshot of the counters."""
        return self._count.snapshot()

    # --- trust -------------------------------------------------------------------------

    def trust(self, origin_or_url: str) -> None:
        """Allow credentials to go to this origin (``scheme://host[:port]``; a URL is cut).

        Raises:
            UnsafeLinkError: not an http(s) URL.
        """
        origin = _origin(_parse(origin_or_url))
        self._trusted.add(origin)
        state = self._origins.get(origin)
        if state is not None:
            state.trusted = True

    def is_trusted(self, url: str) -> bool:
        """Whether credentials may be sent to ``url`` (scheme, host and effective port)."""
        try:
            return self._url_trusted(_parse(url))
        except UnsafeLinkError:
            return False

    def trusts(self, url: str) -> bool:
        """Whether credentials (and action bodies) may go to ``url``'s origin."""
        try:
            return self._url_trusted(_parse(url))
        except UnsafeLinkError:
            return False

    def _url_trusted(self, url: URL) -> bool:
        if url.scheme not in DEFAULT_PORTS or not url.host:
            return False
        return (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme]) in self._trusted

    def _origin_state(self, origin: _Origin) -> _OriginState:
        state = self._origins.get(origin)
        if state is None:
            semaphore = asyncio.Semaphore(self._limits.host_limit) if self._per_origin else None
            shared = self._host_slots(_origin_text(origin)) if self._host_slots else None
            state = _OriginState(semaphore, origin in self._trusted, shared)
            state.proxy, state.proxy_headers = _proxy_for(origin, self._proxies)
            self._origins[origin] = state
        return state

    # --- requests ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: object = None,
        data: object = None,
        params: Mapping[str, str] | None = None,
        to: str | os.PathLike[str] | None = None,
        accept: str = DEFAULT_ACCEPT,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Response:
        """Send one request, following redirects; return the final answer (< 400).

        Credentials: ``auth`` is applied per hop, only to trusted origins.
        Caller-supplied ``Authorization`` / ``Cookie`` / ``Proxy-Authorization``
        headers go to the URL the caller addressed and to trusted origins; a
        redirect to any other origin drops them.

        With ``to``, a successful non-JSON answer is streamed to that file
        (atomically: a ``.{name}.{pid}.*.part`` file next to it, renamed at the end,
        removed on any failure) and :attr:`Response.body` is ``b""``; ``progress`` is
        called with (bytes so far, Content-Length or None) after each chunk of it.
        ``binary=False`` refuses a successful answer that is not JSON at its headers
        (a ``DocumentError``), before any of its body is read.

        With a ``cache`` (see :mod:`halnav._cache`), a GET is answered from it while the
        stored answer is fresh, revalidated with ``If-None-Match``/``If-Modified-Since``
        when it is stale (a 304 reuses the stored body), and stored when it may be; an
        unsafe method that succeeded forgets its URL and same-origin ``Location``.
        """
        if self._cache is None or to is not None:
            return await self._request(
                method,
                url,
                headers=headers,
                json=json,
                data=data,
                params=params,
                to=to,
                accept=accept,
                binary=binary,
                progress=progress,
            )
        if method.upper() == "GET":
            return await self._cached_get(
                url, headers=headers, params=params, accept=accept, binary=binary
            )
        response = await self._request(
            method,
            url,
            headers=headers,
            json=json,
            data=data,
            params=params,
            to=to,
            accept=accept,
            binary=binary,
            progress=progress,
        )
        if method.upper() not in _SAFE and response.status < 400:
            self._invalidate(response)
        return response

    async def _cached_get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        accept: str,
        binary: bool,
    ) -> Response:
        cache = self._cache
        assert cache is not None
        target = _parse(url)
        key = str(target.update_query(params) if params else target)
        asked = headers or {}
        sent = self._request_headers(headers, accept)
        stored = cache.get(key)
        if stored is not None and variant_key(stored.headers.get("Vary"), sent) != stored.variant:
            stored = None  # another variant of the URL: neither reused nor revalidated
        now = time.time()
        if (
            stored is not None
            and stored.fresh(now)
            and "no-cache" not in (asked.get("Cache-Control") or "")
        ):
            self._count.cache_hits += 1
            return _from_cache(stored, now)
        if stored is not None:
            conditional = conditional_headers(stored)
            if conditional:
                headers = {**asked, **conditional}
        response = await self._request(
            "GET", url, headers=headers, params=params, accept=accept, binary=binary
        )
        now = time.time()
        if response.status == 304 and stored is not None:
            self._count.revalidated += 1
            renewed = stored.updated(response.headers, now)
            cache.renew(renewed)
            return _from_cache(renewed, now)
        if response.url == key and storable("GET", response.status, sent, response.headers):
            variant = variant_key(response.headers.get("Vary"), sent)
            assert variant is not None  # storable() checked it
            cache.put(
                CachedAnswer(
                    key,
                    response.status,
                    kept_headers(response.headers),
                    response.content_type,
                    response.body,
                    now,
                    variant,
                )
            )
        return response

    def store_embedded(
        self, carrier: Response, copies: Iterable[tuple[str, Callable[[], bytes]]]
    ) -> int:
        """Store the resources embedded in ``carrier`` (a GET's answer), each ``(url, body)``
        (``body`` made only for a copy that is stored), as the answers of their own ``url``,
        as far as the cache's policy allows (see :func:`halnav._cache.copy_headers`): the
        carrier fresh and storable, the ``url`` on its origin, no answer of the URL's own in
        the cache. How many were stored."""
        cache = self._cache
        if cache is None or carrier.method != "GET" or carrier.path is not None:
            return 0
        if not storable("GET", carrier.status, {}, carrier.headers):
            return 0
        now = time.time()
        shell = CachedAnswer(
            carrier.url, 200, kept_headers(carrier.headers), carrier.content_type, b"", now
        )
        headers = copy_headers(shell, now)
        if headers is None:
            return 0
        here = _origin(_parse(carrier.url))
        stored = 0
        for url, body in copies:
            try:
                target = _parse(url)
            except UnsafeLinkError:
                continue
            if _origin(target) != here:
                continue  # a server plants no answer for another origin
            key = str(target)
            held = cache.get(key)
            if held is not None and (held.fresh(now) or conditional_headers(held)):
                continue  # the URL's own answer is better than a copy
            cache.put(CachedAnswer(key, 200, headers, carrier.content_type, body(), now))
            stored += 1
        return stored

    @property
    def cached(self) -> bool:
        """Whether this transport has an HTTP cache."""
        return self._cache is not None

    def _request_headers(self, headers: Mapping[str, str] | None, accept: str) -> CIMultiDict[str]:
        """The headers a request sends before credentials: the transport's, ``Accept``, the
        caller's (the same object each time for a plain request)."""
        if headers is None and accept is DEFAULT_ACCEPT:
            return self._default_headers
        sent = CIMultiDict(self._base_headers)
        sent["Accept"] = self._accept if accept is DEFAULT_ACCEPT else accept
        if headers:
            sent.update(headers)
        return sent

    def forget(self, url: str) -> None:
        """Drop the cached answer of ``url`` (a link ``rel=invalidates`` names it)."""
        if self._cache is not None:
            self._cache.forget(str(_parse(url)))

    def _invalidate(self, response: Response) -> None:
        """After an unsafe method succeeded: what it changed is no longer what the cache
        holds (see :func:`changed_by`)."""
        cache = self._cache
        assert cache is not None
        for url in changed_by(response):
            cache.forget(url)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: object = None,
        data: object = None,
        params: Mapping[str, str] | None = None,
        to: str | os.PathLike[str] | None = None,
        accept: str = DEFAULT_ACCEPT,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Response:
        """:meth:`request` without the cache."""
        if self._state is not Lifecycle.OPEN:
            await self.open()
        method = method.upper()
        target = _parse(url)
        if params:
            target = target.update_query(params)
        self._count.calls += 1
        sent = self._request_headers(headers, accept)
        sent_trusted = (
            self._default_trusted if sent is self._default_headers else self._with_credentials(sent)
        )
        first = _origin(target)
        destination = Path(to) if to is not None else None
        for _hop in range(_MAX_HOPS + 1):
            origin = _origin(target)
            state = self._origin_state(origin)
            response = await self._send(
                method,
                target,
                state,
                headers=sent_trusted
                if state.trusted
                else hop_headers(sent, untrusted_elsewhere=origin != first),
                json=json,
                data=data,
                to=destination,
                binary=binary,
                progress=progress,
            )
            location = response.headers.get("Location") if response.status in _REDIRECTS else None
            if location is None:
                return response
            self._count.redirects += 1
            try:
                target = _parse(urljoin(response.url, location))
            except UnsafeLinkError as exc:
                self._count.errors += 1
                exc.add_note(f"redirected to it by {method} {response.url}")
                raise
            next_origin = _origin(target)
            plan = plan_redirect(
                response.status,
                method,
                has_body=json is not None or data is not None,
                untrusted_elsewhere=next_origin != first
                and not self._origin_state(next_origin).trusted,
            )
            if plan.refuses is not None:
                self._count.errors += 1
                raise TransportError(
                    method, str(response.url), f"{plan.refuses} ({target.origin()})"
                )
            method = plan.method
            if not plan.keep_body:
                json = data = None
                trimmed = without_body_headers(sent)
                if trimmed is not sent:
                    sent, sent_trusted = trimmed, self._with_credentials(trimmed)
        self._count.errors += 1
        raise TransportError(method, str(target), f"more than {_MAX_HOPS} redirects")

    async def _send(
        self,
        method: str,
        url: URL,
        state: _OriginState,
        *,
        headers: CIMultiDict[str],
        json: object,
        data: object,
        to: Path | None,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Response:
        """One hop: attempts with retries; raises for failures and statuses >= 400."""
        limits = self._limits
        idempotent = method in _IDEMPOTENT
        attempt = 0
        while True:
            attempt += 1
            failed: TransportError | None = None
            try:
                response = await self._attempt(
                    method,
                    url,
                    state,
                    headers=headers,
                    json=json,
                    data=data,
                    to=to,
                    attempt=attempt,
                    binary=binary,
                    progress=progress,
                )
            except HalnavError as exc:
                self._fail(exc, attempt)
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                error, unsent = _map_error(exc, method, str(url), limits)
                retry = retry_failure(
                    error, idempotent=idempotent, unsent=unsent, attempt=attempt, limits=limits
                )
                if not retry or not self._may_retry(error):
                    self._fail(error, attempt)
                    failed = _with_safe_cause(error, exc)
                else:
                    delay = self._backoff(attempt)
                    why = type(error).__name__
            else:
                status = response.status
                if status < 400:
                    return response
                if status == 429 or (status == 503 and "Retry-After" in response.headers):
                    self._count.throttled += 1
                authenticated = status == 401 and state.trusted and self._middlewares is not None
                cls = AuthenticationError if authenticated else HTTPStatusError
                # A server may echo the token back: redacted before the detail is cut.
                detail = error_detail(response.content_type, response.body, redact=self._redact)
                status_error = cls(method, response.url, status, detail)
                plan = retry_status(
                    status,
                    idempotent=idempotent,
                    retry_after=response.headers.get("Retry-After"),
                    attempt=attempt,
                    limits=limits,
                )
                if plan.note is not None:
                    status_error.add_note(plan.note)
                if not plan.retry or not self._may_retry(status_error):
                    self._fail(status_error, attempt)
                    raise status_error
                delay = plan.wait if plan.wait is not None else self._backoff(attempt)
                why = f"HTTP {status}" + (" Retry-After" if plan.wait is not None else "")
            if failed is not None:
                raise failed  # outside the handler: no __context__ holding aiohttp's request
            self._count.retries += 1
            _log.debug(
                "%s %s: %s (attempt %d); retrying in %.2f s", method, url, why, attempt, delay
            )
            # The slot was released when the attempt ended: waiting holds nothing.
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: URL,
        state: _OriginState,
        *,
        headers: CIMultiDict[str],
        json: object,
        data: object,
        to: Path | None,
        attempt: int,
        binary: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Response:
        session = self._session
        if session is None or self._state is not Lifecycle.OPEN:
            raise StateError("the Transport is closed")
        middlewares = self._middlewares if state.trusted else None
        if state.proxy_headers is not None and url.scheme == "http":
            # A plain-HTTP request goes to the proxy itself, which reads the header there
            # (for https, aiohttp sends proxy_headers with the CONNECT).
            headers = CIMultiDict(headers)
            headers.update(state.proxy_headers)
        # Per-origin slots first (this process's, then the shared one), so a request queued
        # for a busy host holds no global slot.
        async with state.semaphore or _NO_SLOT, state.shared or _NO_SLOT, self._global:
            self._count.in_flight += 1
            self._count.max_in_flight = max(self._count.max_in_flight, self._count.in_flight)
            self._count.requests += 1
            started = time.monotonic()
            try:
                async with session.request(
                    method,
                    url,
                    headers=headers,
                    json=json,
                    data=data,
                    allow_redirects=False,
                    timeout=self._timeout if method in _DOCUMENT_METHODS else self._action_timeout,
                    ssl=self._ssl,
                    middlewares=middlewares,
                    proxy=state.proxy,
                    proxy_headers=state.proxy_headers,
                ) as resp:
                    self._count.responses += 1
                    status = resp.status
                    content_type = _content_type(resp)
                    url_text = str(url)
                    wanted = 200 <= status < 300 and not is_json_type(content_type)
                    if wanted and not binary and (content_type or resp.content_length):
                        raise DocumentError(
                            url_text,
                            "$",
                            f"the answer is {content_type or 'untyped'} "
                            f"({_size_text(resp.content_length)}), not JSON; give a file to "
                            "save it to (to=, --out FILE)",
                        )
                    if to is not None and wanted:
                        size = await _stream(
                            resp, to, method=method, url=url_text, limits=self._limits,
                            progress=progress,
                        )  # fmt: skip
                        self._count.bytes_received += size
                        response = Response(
                            method,
                            url_text,
                            status,
                            resp.headers,
                            content_type,
                            b"",
                            to,
                            streamed=size,
                        )
                    else:
                        # After its first byte, an action's answer is read like a GET's:
                        # within total_timeout (a GET's ClientTimeout already has it).
                        total = None if method in _DOCUMENT_METHODS else self._limits.total_timeout
                        async with asyncio.timeout(total):
                            body = await self._read(resp, url_text, truncate=status >= 400)
                        response = Response(
                            method, url_text, status, resp.headers, content_type, body
                        )
            finally:
                self._count.in_flight -= 1
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s %s -> %s in %.3f s (attempt %d)",
                method,
                response.url,
                status,
                time.monotonic() - started,
                attempt,
            )
        return response

    async def _read(self, resp: ClientResponse, url: str, *, truncate: bool) -> bytes:
        """The body, at most ``max_response_bytes`` (error bodies are cut, not refused),
        counted in ``bytes_received``: every answer read into memory is read here."""
        body = await self._read_capped(resp, url, truncate=truncate)
        self._count.bytes_received += len(body)
        return body

    async def _read_capped(self, resp: ClientResponse, url: str, *, truncate: bool) -> bytes:
        limit = min(self._limits.max_response_bytes, _ERROR_BODY_CAP) if truncate else (
            self._limits.max_response_bytes
        )  # fmt: skip
        length = resp.content_length
        # Content-Length counts encoded bytes; only trust it when there is no encoding.
        if length is not None and "Content-Encoding" not in resp.headers:
            if length <= limit:
                return await resp.read()
            if not truncate:
                raise LimitExceededError(url, "response body", limit)
        chunks = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            chunks += chunk
            if len(chunks) > limit:
                if truncate:
                    return bytes(chunks[:limit])
                raise LimitExceededError(url, "response body", limit)
        return bytes(chunks)

    async def _post_form(
        self, url: str, fields: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """POST a form for auth (token grants): no middlewares, no slot, no retries.

        ``headers`` (client authentication) are sent only because the caller checked the
        origin is trusted; redirects are not followed.
        """
        session = self._session
        if session is None or self._state is not Lifecycle.OPEN:
            raise StateError("the Transport is not open")
        target = _parse(url)
        state = self._origin_state(_origin(target))
        self._count.requests += 1
        started = time.monotonic()
        try:
            async with session.post(
                target,
                data=dict(fields),
                headers={
                    "Accept": "application/json",
                    "User-Agent": self._base_headers["User-Agent"],
                    **(headers or {}),
                    **((state.proxy_headers or {}) if target.scheme == "http" else {}),
                },
                allow_redirects=False,
                timeout=self._timeout,
                ssl=self._ssl,
                middlewares=(),
                proxy=state.proxy,
                proxy_headers=state.proxy_headers,
            ) as resp:
                self._count.responses += 1
                content_type = _content_type(resp)
                body = await self._read(resp, url, truncate=True)
                status = resp.status
        except HalnavError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            error, _unsent = _map_error(exc, "POST", url, self._limits)
            failed: TransportError | None = _with_safe_cause(error, exc)
        else:
            failed = None
        if failed is not None:
            raise failed  # outside the handler: no __context__ holding aiohttp's request
        _log.debug("POST %s -> %s in %.3f s (token)", url, status, time.monotonic() - started)
        return status, content_type, body

    def _with_credentials(self, sent: CIMultiDict[str]) -> CIMultiDict[str]:
        """``sent`` plus the client-wide credential headers it does not set itself."""
        if not self._credentials:
            return sent
        merged = CIMultiDict(sent)
        for name, value in self._credentials.items():
            if name not in merged:
                merged[name] = value
        return merged

    # --- retries -----------------------------------------------------------------------

    def _may_retry(self, error: BaseException) -> bool:
        limits = self._limits
        if self._count.retries < limits.retry_budget_min + limits.retry_budget * self._count.calls:
            return True
        self._count.retry_budget_spent += 1
        error.add_note(
            f"not retried: the retry budget is spent ({self._count.retries} retries for "
            f"{self._count.calls} requests; Limits.retry_budget={limits.retry_budget:g}, "
            f"retry_budget_min={limits.retry_budget_min})"
        )
        return False

    def _backoff(self, attempt: int) -> float:
        limits = self._limits
        ceiling = min(limits.backoff_max, limits.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not cryptography

    def _fail(self, error: BaseException, attempt: int) -> None:
        self._count.errors += 1
        if attempt > 1:
            error.add_note(f"after {attempt} attempts")


# --- module helpers ----------------------------------------------------------------------


def _parse(url: str) -> URL:
    """An absolute http(s) URL, percent-escapes kept as sent (``%3D`` stays ``%3D``); an
    internationalised host name in IDNA form (``bücher.example`` is
    ``xn--bcher-kva.example``), the rest percent-encoded as UTF-8."""
    if _NEEDS_QUOTING.search(url) is not None:
        # surrogateescape: a header's non-UTF-8 byte (aiohttp decodes it as \udcXX) is
        # sent as the byte it was, percent-encoded, not a UnicodeEncodeError.
        url = quote(_idna_host(url), safe=_URL_SAFE, errors="surrogateescape")
    try:
        parsed = URL(url, encoded=True)
        # yarl splits the authority lazily: a bad port or host fails on first access.
        host = parsed.host if parsed.scheme in DEFAULT_PORTS else None
        _port = parsed.port
    except (TypeError, ValueError) as exc:
        # The text may carry user:password (that is refused below): never echo it.
        raise UnsafeLinkError(_USERINFO.sub("", url, count=1), f"not a valid URL ({exc})") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        scheme = f"scheme {parsed.scheme!r}" if parsed.scheme else "no scheme"
        raise UnsafeLinkError(url, f"{scheme}; only absolute http and https URLs are requested")
    if not host:
        raise UnsafeLinkError(url, "no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeLinkError(
            str(parsed.with_user(None)), "credentials in the URL (user@host) are refused; use auth="
        )
    return parsed


def _idna_host(url: str) -> str:
    """``url`` with a non-ASCII host name in IDNA (punycode) form, else as it is."""
    start = url.find("//")
    if start < 0:
        return url
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, start + 2)
        if found >= 0:
            end = min(end, found)
    authority = url[start + 2 : end]
    if authority.isascii() or "@" in authority or "[" in authority:
        return url  # user@host is refused later; an IPv6 literal is ASCII
    host, colon, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeLinkError(url, f"the host name is not a valid IDN ({exc})") from None
    return f"{url[: start + 2]}{ascii_host}{colon}{port}{url[end:]}"


def _proxy_for(
    origin: _Origin, proxies: Mapping[str, str]
) -> tuple[URL | None, Mapping[str, str] | None]:
    """The proxy for ``origin`` from the environment's ``proxies`` (None: go direct), and
    the ``Proxy-Authorization`` header made of the credentials its URL carries."""
    if not proxies:
        return None, None
    scheme, host, port = origin
    text = proxies.get(scheme) or proxies.get("all")
    # proxy_bypass_environment is public and documented, but not in typeshed's stubs.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not text or bypass(f"{host}:{port}", proxies):
        return None, None
    proxy = URL(text if "://" in text else f"http://{text}")
    if proxy.user is None:
        return proxy, None
    pair = f"{proxy.user}:{proxy.password or ''}".encode()
    header = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return proxy.with_user(None), header


def changed_by(response: Response) -> list[str]:
    """The URLs an unsafe method's successful ``response`` changed (RFC 9111 section 4.4):
    its own, and its ``Location`` and ``Content-Location`` when on the same origin."""
    changed = [response.url]
    here = _origin(_parse(response.url))
    for name in ("Location", "Content-Location"):
        value = response.headers.get(name)
        if value:
            with contextlib.suppress(UnsafeLinkError):
                other = _parse(urljoin(response.url, value))
                if _origin(other) == here and str(other) not in changed:
                    changed.append(str(other))
    return changed


def _from_cache(stored: CachedAnswer, now: float) -> Response:
    """A stored answer as the transport's Response (no request was made for it), with the
    ``Age`` it has ``now`` (RFC 9111 section 5.1)."""
    raw = CIMultiDict(stored.headers)
    raw["Age"] = str(int(stored.age(now)))
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(raw)
    return Response(
        "GET", stored.url, stored.status, headers, stored.content_type, stored.body, cached=True
    )


def _content_type(resp: ClientResponse) -> str:
    """The answer's media type in lower case, or "" when it sent no Content-Type (aiohttp
    would say ``application/octet-stream``, which the server did not)."""
    return resp.content_type.lower() if resp.headers.get("Content-Type") else ""


def _origin(url: URL) -> _Origin:
    scheme = url.scheme
    host = url.host
    assert host is not None  # _parse guarantees it
    return (scheme, host, url.port or DEFAULT_PORTS[scheme])


def _origin_text(origin: _Origin) -> str:
    scheme, host, port = origin
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if DEFAULT_PORTS[scheme] == port else f"{scheme}://{host}:{port}"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    return seconds_until(value)


def _with_safe_cause(error: TransportError, exc: BaseException) -> TransportError:
    """``error`` caused by ``exc``, minus what ``exc`` knows of the request: aiohttp's
    ``ClientResponseError`` (a malformed answer) carries the request's headers, bearer
    token included, in its repr. Raise the result outside the ``except`` block, or
    ``__context__`` keeps ``exc`` all the same."""
    cause = exc
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        blank = aiohttp.RequestInfo(
            info.url, info.method, CIMultiDictProxy(CIMultiDict()), info.real_url
        )
        cause = aiohttp.ClientResponseError(
            blank, (), status=exc.status, message=exc.message, headers=None
        )
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error


def _map_error(
    exc: BaseException, method: str, url: str, limits: Limits
) -> tuple[TransportError, bool]:
    """The halnav error for an aiohttp failure, and whether the request surely never left."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLSError(
            method,
            url,
            f"the server's certificate could not be verified ({exc.certificate_error}); "
            "trust the server's CA with cafile= / --cafile, or, for a test server only, "
            "switch verification off with insecure=True / --insecure",
        ), False
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return TLSError(method, url, f"TLS handshake failed ({exc})"), False
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestTimeoutError(
            method, url, f"connect timeout ({_seconds(limits.connect_timeout)}) expired"
        ), True
    if isinstance(exc, aiohttp.SocketTimeoutError):
        if method not in _DOCUMENT_METHODS:
            return RequestTimeoutError(
                method,
                url,
                f"no answer within answer_timeout ({_seconds(limits.answer_timeout)}): a "
                "server may build a large export for longer (Limits.answer_timeout, "
                "--answer-timeout)",
            ), False
        return RequestTimeoutError(
            method, url, f"read timeout ({_seconds(limits.read_timeout)}) expired"
        ), False
    if isinstance(exc, TimeoutError):
        return RequestTimeoutError(
            method, url, f"total timeout ({_seconds(limits.total_timeout)}) expired"
        ), False
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        return ConnectError(method, url, f"cannot connect to {where}: {_os_reason(exc)}"), True
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ConnectError(method, url, f"the response body was cut short ({exc})"), False
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectError(method, url, "the server closed the connection"), False
    if isinstance(exc, aiohttp.ClientConnectionError):
        return ConnectError(method, url, f"connection failed ({type(exc).__name__}: {exc})"), False
    return TransportError(method, url, f"{type(exc).__name__}: {exc}"), False


_OS_REASONS: Final = {
    errno.ECONNREFUSED: "connection refused (is the server running on that port?)",
    errno.EHOSTUNREACH: "no route to the host",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ETIMEDOUT: "the connection timed out",
    errno.ECONNRESET: "the connection was reset",
}


def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    """What went wrong connecting, in words (``connection refused``), not ``[Errno 111]``."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    error = exc.os_error
    reason = _OS_REASONS.get(error.errno or 0)
    if reason is not None:
        return reason
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def _seconds(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g} s"


def _size_text(length: int | None) -> str:
    return "size not announced" if length is None else f"{length:,} bytes"


async def _stream(
    resp: ClientResponse,
    to: Path,
    *,
    method: str,
    url: str,
    limits: Limits,
    progress: Callable[[int, int | None], None] | None,
) -> int:
    """Write the body to ``to`` atomically; on any failure nothing is left behind.

    Each read may wait ``read_timeout`` (a stalled transfer ends), the whole transfer
    ``transfer_timeout``; ``max_download_bytes`` caps it (checked against the announced
    length first, then as the bytes come).
    """
    cap = limits.max_download_bytes
    length = resp.content_length
    if cap is not None and length is not None and length > cap:
        raise LimitExceededError(url, f"download of {length:,} bytes", cap)
    # The pid in the name tells a later walk whether the writer is gone (halnav._exports).
    fd, part = tempfile.mkstemp(prefix=f".{to.name}.{os.getpid()}.", suffix=".part", dir=to.parent)
    size = 0
    overall = asyncio.timeout(limits.transfer_timeout)
    try:
        with os.fdopen(fd, "wb") as file:
            async with overall:
                while True:
                    try:
                        async with asyncio.timeout(limits.read_timeout):
                            chunk = await resp.content.read(_CHUNK)
                    except TimeoutError:
                        if overall.expired():
                            raise  # the transfer bound: named below
                        raise RequestTimeoutError(
                            method,
                            url,
                            f"the download stalled: no data for read_timeout "
                            f"({_seconds(limits.read_timeout)}) after {size:,} bytes",
                        ) from None
                    if not chunk:
                        break
                    # A synchronous write of <= 64 KiB takes microseconds on a local
                    # disk; an executor hop per chunk would cost more than it saves.
                    file.write(chunk)
                    size += len(chunk)
                    if cap is not None and size > cap:
                        raise LimitExceededError(url, "download", cap)  # noqa: TRY301  cleanup below
                    if progress is not None:
                        progress(size, length)
        with contextlib.suppress(FileNotFoundError):  # replacing a file: keep its mode
            os.chmod(part, stat.S_IMODE(os.stat(to).st_mode))
        os.replace(part, to)  # a new file keeps mkstemp's 0600: an export is private data
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(part)
        if isinstance(exc, TimeoutError) and overall.expired():
            raise RequestTimeoutError(
                method,
                url,
                f"the download took longer than transfer_timeout "
                f"({_seconds(limits.transfer_timeout)}); {size:,} bytes had come",
            ) from None
        raise
    return size
