"""Everything mutable of one simulator app, and the records it keeps.

:class:`SimulatorStats` (the public counters), the token, refresh-token, restore-session and
v8 restore-job records, the per-request fault :class:`_Decision`, and :class:`_State`, which
holds them all with the fault RNG, the cached item renderer and the search-page cache.
``_STATE`` is the ``aiohttp.web.AppKey`` the state is stored under in the app.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import random
import re
import time
from typing import Final

import attrs
from aiohttp import web

from ._data import Data, FolderRef, SimulatorConfig, quote_id
from ._hrefs import _CACHED_PATHS, _ENCODER, _Paths
from ._terms import _Term
from ._versions import ApiVersion, api_version

_FAULT_ERRORS: Final = (500, 502, 503, 504)
_RENDERED_ITEMS: Final = 4096

_SearchKey = tuple[str, str, str, tuple[_Term, ...], int, int]
"""href base, session id, scope path, parsed query, offset, limit."""


@attrs.define
class SimulatorStats:
    """Counters for tests to assert on; ``reset()`` zeroes them (``in_flight`` is live)."""

    requests: int = 0
    by_status: collections.Counter[int] = attrs.Factory(collections.Counter)
    token_grants: int = 0
    """Successful ``password`` grants."""
    token_refreshes: int = 0
    """Successful ``refresh_token`` grants."""
    sessions_started: int = 0
    sessions_stopped: int = 0
    faults_injected: collections.Counter[str] = attrs.Factory(collections.Counter)
    """By kind: latency, drop, error, throttle, slow, malformed, token_expiry."""
    exports: int = 0
    """Streams started: exporttoPst, savetoMsg, save and export of files and posts."""
    sends: int = 0
    """``send`` actions of OneDrive, SharePoint and Teams (mail the files; nothing changes)."""
    searches: int = 0
    restores: int = 0
    """Restore actions run (v8: asynchronous restores started)."""
    not_modified: int = 0
    """GETs answered 304 Not Modified (``SimulatorConfig.validators``)."""
    logouts: int = 0
    antiforgery_refusals: int = 0
    """Refresh grants refused for a missing or wrong antiforgery cookie (v7/v8)."""
    max_in_flight: int = 0
    unauthorized: int = 0
    """401 answers."""
    in_flight: int = 0
    """Requests being handled right now (not reset)."""

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` keeps tracking requests still running."""
        in_flight = self.in_flight
        fresh = SimulatorStats()
        for field in attrs.fields(SimulatorStats):
            setattr(self, field.name, getattr(fresh, field.name))
        self.in_flight = in_flight


@attrs.frozen
class _Refresh:
    """Who a refresh token belongs to, the access token it came with, its antiforgery value."""

    username: str
    access: str
    antiforgery: str | None


@attrs.define
class _Token:
    username: str
    expires_at: float
    """``time.monotonic()`` deadline."""
    uses: int = 0
    revoked: bool = False


@attrs.define
class _Session:
    id: str
    org: int
    kind: str
    """``Vex``, ``Veod``, ``Vesp`` or ``Vet``."""
    point_in_time: dt.datetime
    created: dt.datetime
    initiated_by: str
    ended: dt.datetime | None = None
    restore: _RestoreJob | None = None
    """Set on the session of a v8 asynchronous restore."""

    @property
    def working(self) -> bool:
        if self.ended is None and self.restore is not None and self.restore.finished:
            self.ended = dt.datetime.now(dt.UTC)
        return self.ended is None


@attrs.define
class _RestoreJob:
    """A v8 asynchronous restore: it runs until ``done_at``, then its session is stopped."""

    items: int
    done_at: float
    """``time.monotonic()`` deadline."""
    started: dt.datetime

    @property
    def finished(self) -> bool:
        return time.monotonic() >= self.done_at


@attrs.frozen
class _Decision:
    """Every fault decision for one request, drawn before its first await."""

    delay: float = 0.0
    drop: bool = False
    error: int | None = None
    throttle: bool = False
    slow: bool = False
    malformed: bool = False


class _State:
    """Everything mutable of one simulator app: tokens, sessions, counters, the fault RNG."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.version: ApiVersion = api_version(config.api_version)
        self.data = Data(config)
        self.stats = SimulatorStats()
        self.tokens: dict[str, _Token] = {}
        self.refresh_tokens: dict[str, _Refresh] = {}
        self.sessions: dict[str, _Session] = {}
        # A separate stream from the data hashes; random is fine: faults are not security.
        self.rng = random.Random(f"halnav-faults:{config.seed}")  # noqa: S311  not crypto
        # Case-insensitive like the routes: "/mailboxes" also faults ".../Mailboxes".
        paths = config.faults.paths
        self.fault_paths = re.compile(paths, re.IGNORECASE) if paths else None
        faults = config.faults
        # Nothing to decide: no delay, and no rate that would draw from the RNG.
        self.inert = not (
            faults.latency
            or faults.jitter
            or faults.drop_rate
            or faults.error_rate
            or faults.throttle_rate
            or faults.slow_rate
            or faults.malformed_rate
        )
        # Rendered JSON of recent items (a client asks for a page, then for each item) and
        # the JSON-escaped hrefs they share; bounded, so memory stays flat.
        self.item_json = functools.lru_cache(maxsize=_RENDERED_ITEMS)(self._render_item)
        self.search_pages: collections.OrderedDict[_SearchKey, str] = collections.OrderedDict()
        self._mailbox_href = functools.lru_cache(maxsize=_CACHED_PATHS)(self._render_mailbox)
        self._folder_href = functools.lru_cache(maxsize=_CACHED_PATHS)(self._render_folder)

    def _render_mailbox(self, base: str, session_id: str, org: int, mailbox: int) -> str:
        """JSON-escaped ``base`` + the mailbox path."""
        path = _Paths(self.data, session_id, self.version).mailbox(org, mailbox)
        return _ENCODER.encode(base + path)[1:-1]

    def _render_folder(  # noqa: PLR0917  the folder's key, flat for the cache
        self, base: str, session_id: str, org: int, mailbox: int, top: int, sub: int | None
    ) -> str:
        """JSON-escaped ``base`` + the folder path."""
        path = _Paths(self.data, session_id, self.version).folder(FolderRef(org, mailbox, top, sub))
        return _ENCODER.encode(base + path)[1:-1]

    def _render_item(  # noqa: PLR0917  the item's key, flat for the cache
        self,
        base: str,
        session_id: str,
        org: int,
        mailbox: int,
        top: int,
        sub: int | None,
        index: int,
    ) -> str:
        """``_exchange._item_doc`` as JSON (byte for byte), from pieces cached per mailbox/folder.

        ``base`` is what every href starts with; JSON escapes characters one by one, so
        escaping it apart from the (plain ASCII) paths gives the same text.
        """
        data = self.data
        item_id = data.item_id_of(org, mailbox, top, sub, index)
        fields = data.item_fields_json(org, mailbox, top, sub, index)
        mailbox_href = self._mailbox_href(base, session_id, org, mailbox)
        folder_href = self._folder_href(base, session_id, org, mailbox, top, sub)
        self_href = f"{mailbox_href}/items/{quote_id(item_id)}"
        version = self.version
        actions = ",".join(
            f'"{name}":{{"uri":"{self_href}/{"action" if version.wrapped_actions else name}",'
            '"method":"POST"}'
            for name in version.item_actions
        )
        return (
            f'{{"id":"{item_id}",{fields[1:-1]},"_links":{{"self":{{"href":"{self_href}"}},'
            f'"folder":{{"href":"{folder_href}"}},"mailbox":{{"href":"{mailbox_href}"}}}},'
            f'"_actions":{{{actions}}}}}'
        )

    def faultable(self, request: web.Request) -> bool:
        """Whether faults may hit this request (the token endpoint only when asked for)."""
        if self.fault_paths is not None:
            return self.fault_paths.search(request.path) is not None
        return not request.path.rstrip("/").lower().endswith("/token")

    def decide(self, request: web.Request) -> _Decision:
        faults = self.config.faults
        if self.inert:
            return _NO_FAULTS  # what the draws below give, none of them made
        if not self.faultable(request):
            return _Decision()
        rng = self.rng

        def chance(rate: float) -> bool:
            return rate > 0 and rng.random() < rate

        delay = faults.latency
        if faults.jitter:
            delay += rng.uniform(-faults.jitter, faults.jitter)
        drop = chance(faults.drop_rate)
        error = rng.choice(_FAULT_ERRORS) if chance(faults.error_rate) else None
        return _Decision(
            delay=max(delay, 0.0),
            drop=drop,
            error=error,
            throttle=chance(faults.throttle_rate),
            slow=chance(faults.slow_rate),
            malformed=chance(faults.malformed_rate),
        )


_NO_FAULTS: Final = _Decision()
_STATE: Final = web.AppKey("halnav_simulator_state", _State)
