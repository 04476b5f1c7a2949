"""An HTTP cache for GETs, as RFC 9111 has a private cache behave.

What is stored: a ``200`` answer to a ``GET`` whose request and response allow it (no
``no-store``; not a download streamed to a file). halnav is a private cache (one client,
one user), so answers to authenticated requests are stored too, ``private`` ones included.
One answer per URL: an answer with ``Vary`` is stored with a digest of the request headers
it names (:func:`variant_key`), and reused only by a request that sends the same values;
``Vary: *``, and a ``Vary`` on a credential (``Authorization``, ``Cookie``), which the
cache cannot compare before the request is signed, are not stored.

What is reused: a **fresh** answer (younger than its ``Cache-Control: max-age``, else
``Expires`` minus ``Date``; ``no-cache`` makes nothing fresh) is answered from the cache with
no request at all. A **stale** one with a validator (``ETag``, ``Last-Modified``) is
revalidated: the request carries ``If-None-Match`` / ``If-Modified-Since``, and a ``304``
reuses the stored body with the headers the 304 brought. Without a validator a stale
answer is fetched again. The age counts the ``Age`` an upstream cache sent, and an answer
from the cache carries its own ``Age`` (RFC 9111 section 5.1).

``_embedded`` copies (opt-in, ``Navigator(cache_embedded=True)``): a resource embedded in a
fresh answer, with a ``self`` on the same origin, is stored as the answer of its ``self``
(with :func:`copy_headers`), fresh exactly as long as the answer that carried it and with no
validator of its own, unless the cache already holds that URL's own answer. HAL lets an
embedded copy be partial, hence opt-in.

What is forgotten: after an unsafe method (``POST``, ``PUT``, ``PATCH``, ``DELETE``) that
succeeded, its URL and its same-origin ``Location`` / ``Content-Location`` (RFC 9111
section 4.4); the navigator adds the targets of the answer's ``invalidates`` links.

Bounded: :class:`MemoryCache` keeps at most ``max_entries`` answers and ``max_bytes`` of
bodies, the least recently used going first; :class:`SqliteCache` is the same on disk (the
answers stored or renewed longest ago going first), so a walk run again revalidates what
an earlier run fetched. A leaf: it imports nothing
from halnav.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Final, Protocol

import attrs

__all__ = [
    "CachedAnswer",
    "HttpCache",
    "MemoryCache",
    "SqliteCache",
    "conditional_headers",
    "copy_headers",
    "freshness",
    "storable",
    "variant_key",
]

# The response headers a stored answer keeps (and a 304 may update).
_KEPT: Final = (
    "Age", "Cache-Control", "Content-Location", "Content-Type", "Date", "ETag", "Expires",
    "Last-Modified", "Link", "Deprecation", "Sunset", "Vary",
)  # fmt: skip
# What an _embedded copy takes from the answer that carried it: how fresh it is.
_FRESHNESS: Final = ("Age", "Cache-Control", "Date", "Expires")
# Request headers a Vary may name that the cache cannot compare (added when signing).
_UNCOMPARABLE: Final = frozenset({"authorization", "cookie", "proxy-authorization", "*"})


@attrs.frozen
class CachedAnswer:
    """A stored answer: its URL, status, kept headers, media type, body, when it was
    stored (wall-clock seconds: a disk cache outlives the process), and the
    :func:`variant_key` of the request it answered."""

    url: str
    status: int
    headers: Mapping[str, str]
    content_type: str
    body: bytes
    stored: float
    variant: str = ""

    def age(self, now: float) -> float:
        """Seconds since the origin sent it: the time stored here plus any ``Age`` it came with."""
        initial = self.headers.get("Age", "")
        return max(0.0, now - self.stored) + (float(initial) if initial.isdigit() else 0.0)

    def fresh(self, now: float) -> bool:
        """Whether it may be reused without asking the server."""
        lifetime = freshness(self.headers)
        return lifetime is not None and self.age(now) < lifetime

    def updated(self, headers: Mapping[str, str], now: float) -> CachedAnswer:
        """This answer after a 304: the same body, the headers the 304 sent, stored ``now``."""
        merged = dict(self.headers)
        merged.pop("Age", None)  # the age starts again now, from the 304's own Age if any
        for name in _KEPT:
            value = headers.get(name)
            if value is not None and name != "Content-Type":
                merged[name] = value
        return attrs.evolve(self, headers=merged, stored=now)


def _directives(value: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in (value or "").split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            found.setdefault(name.lower(), arg.strip().strip('"'))
    return found


def freshness(headers: Mapping[str, str]) -> float | None:
    """How long an answer stays fresh, in seconds: ``max-age``, else ``Expires`` - ``Date``;
    None when it says neither, or says ``no-cache`` (revalidate every time)."""
    directives = _directives(headers.get("Cache-Control"))
    if "no-cache" in directives:
        return None
    max_age = directives.get("max-age")
    if max_age is not None:
        return float(max_age) if max_age.isdigit() else 0.0
    expires, date = headers.get("Expires"), headers.get("Date")
    if expires is None:
        return None
    try:
        end = parsedate_to_datetime(expires)
        start = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return 0.0  # an Expires that does not parse means "already expired" (RFC 9111 5.3)
    if start is None or end.tzinfo is None or start.tzinfo is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())


def storable(
    method: str, status: int, request: Mapping[str, str], response: Mapping[str, str]
) -> bool:
    """Whether a private cache may store this answer (RFC 9111 section 3, the cases halnav
    meets): a GET's 200, no ``no-store`` on either side, a ``Vary`` it can compare."""
    if method != "GET" or status != 200:
        return False
    if "no-store" in _directives(request.get("Cache-Control")):
        return False
    if "no-store" in _directives(response.get("Cache-Control")):
        return False
    return variant_key(response.get("Vary"), request) is not None


def variant_key(vary: str | None, request: Mapping[str, str]) -> str | None:
    """What identifies the variant an answer with this ``Vary`` is (RFC 9111 section 4.1):
    ``""`` when it varies on nothing but ``Accept-Encoding`` (aiohttp always sends the
    same one), else a digest of the values the request sent for the headers it names (a
    digest: a header a caller adds may be a key, and the disk cache must not hold it);
    None when it cannot be compared (``*``, or a credential).

    >>> variant_key("Accept-Encoding", {"Accept": "application/json"})
    ''
    >>> variant_key("Accept", {"Accept": "a"}) == variant_key("accept", {"accept": "a"})
    True
    >>> variant_key("Accept", {"Accept": "a"}) == variant_key("Accept", {"Accept": "b"})
    False
    >>> variant_key("Authorization", {}) is None
    True
    """
    names = sorted(
        {name.strip().lower() for name in (vary or "").split(",") if name.strip()}
        - {"accept-encoding"}
    )
    if not names:
        return ""
    if not _UNCOMPARABLE.isdisjoint(names):
        return None
    lowered = {name.lower(): value for name, value in request.items()}
    chosen = "\n".join(f"{name}:{' '.join(lowered.get(name, '').split())}" for name in names)
    return hashlib.sha256(chosen.encode()).hexdigest()[:32]


def copy_headers(carrier: CachedAnswer, now: float) -> dict[str, str] | None:
    """The headers of the cache entries (stored ``now``) of the resources embedded in
    ``carrier``, or None when the policy allows none: the carrier must be fresh and vary on
    nothing; a copy is fresh for what is left of the carrier's lifetime, with no validator.

    >>> page = CachedAnswer("https://h/p", 200, {"Cache-Control": "max-age=60"}, "a/b", b"", 0)
    >>> headers = copy_headers(page, now=50)
    >>> copy = CachedAnswer("https://h/p/1", 200, headers, "a/b", b"{}", 50)
    >>> headers, copy.fresh(55), copy.fresh(61)
    ({'Cache-Control': 'max-age=60', 'Age': '50'}, True, False)
    >>> copy_headers(page, now=61) is None
    True
    """
    if variant_key(carrier.headers.get("Vary"), {}) != "":
        return None  # chosen by request headers the copy's own request may not send
    if not carrier.fresh(now):
        return None
    headers = {name: carrier.headers[name] for name in _FRESHNESS if name in carrier.headers}
    headers["Age"] = str(math.ceil(carrier.age(now)))  # rounded up: never fresh for longer
    return headers


def conditional_headers(answer: CachedAnswer) -> dict[str, str]:
    """The headers that revalidate ``answer``: ``If-None-Match`` and ``If-Modified-Since``."""
    found = {}
    etag = answer.headers.get("ETag")
    if etag:
        found["If-None-Match"] = etag
    modified = answer.headers.get("Last-Modified")
    if modified:
        found["If-Modified-Since"] = modified
    return found


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a response worth storing with it."""
    return {name: headers[name] for name in _KEPT if name in headers}


class HttpCache(Protocol):
    """Where answers are stored: a mapping of URL to :class:`CachedAnswer` with a bound."""

    def get(self, url: str) -> CachedAnswer | None: ...

    def put(self, answer: CachedAnswer) -> None: ...

    def renew(self, answer: CachedAnswer) -> None:
        """Store ``answer`` after a 304: its body is the one already stored."""

    def forget(self, url: str) -> None: ...


class MemoryCache:
    """An in-memory LRU store: at most ``max_entries`` answers and ``max_bytes`` of bodies.

    >>> cache = MemoryCache(max_entries=2)
    >>> for n in range(3):
    ...     cache.put(CachedAnswer(f"https://h/{n}", 200, {}, "application/json", b"{}", 0.0))
    >>> [url for url in ("https://h/0", "https://h/1", "https://h/2") if cache.get(url)]
    ['https://h/1', 'https://h/2']
    """

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<MemoryCache entries={len(self._entries)} bytes={self._bytes}>"

    def get(self, url: str) -> CachedAnswer | None:
        answer = self._entries.get(url)
        if answer is not None:
            self._entries.move_to_end(url)
        return answer

    def put(self, answer: CachedAnswer) -> None:
        if len(answer.body) > self._max_bytes:
            return
        self.forget(answer.url)
        self._entries[answer.url] = answer
        self._bytes += len(answer.body)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _url, old = self._entries.popitem(last=False)
            self._bytes -= len(old.body)

    def renew(self, answer: CachedAnswer) -> None:
        self.put(answer)  # the same bytes object: nothing is copied

    def forget(self, url: str) -> None:
        old = self._entries.pop(url, None)
        if old is not None:
            self._bytes -= len(old.body)


class SqliteCache:
    """A :class:`MemoryCache` on disk (one SQLite file), so answers outlive the process: a
    walk run again sends conditional requests for what the last one fetched.

    The file holds the answers' bodies as the servers sent them (a cache of what was read:
    protect it as you would the walk's output); it is created with mode 0600.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_entries: int = 1_000_000,
        max_bytes: int = 4 * 1024 * 1024 * 1024,
    ) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.touch(mode=0o600, exist_ok=True)
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers_v2 (url TEXT PRIMARY KEY, status INTEGER, "
            "headers TEXT, content_type TEXT, body BLOB, stored REAL, used REAL, variant TEXT)"
        )
        if "answers" in tables and "answers_v2" not in tables:  # "answers": before variants
            # A file an earlier halnav wrote (no variants): its answers are taken over once,
            # and its table is left as it was, so that an earlier halnav still reads and
            # writes it (and never meets an answer stored for one variant only).
            self._db.execute(
                "INSERT OR IGNORE INTO answers_v2 SELECT url, status, headers, content_type, "
                "body, stored, used, '' FROM answers"
            )
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._writes = 0

    def __repr__(self) -> str:
        return f"<SqliteCache {self._path}>"

    def get(self, url: str) -> CachedAnswer | None:
        with self._lock:  # a read writes nothing: the bound goes by when answers were stored
            row = self._db.execute(
                "SELECT status, headers, content_type, body, stored, variant FROM answers_v2 "
                "WHERE url = ?",
                (url,),
            ).fetchone()
        if row is None:
            return None
        status, headers, content_type, body, stored, variant = row
        return CachedAnswer(
            url, status, json.loads(headers), content_type, bytes(body), stored, variant
        )

    def put(self, answer: CachedAnswer) -> None:
        if len(answer.body) > self._max_bytes:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers_v2 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (answer.url, answer.status, json.dumps(dict(answer.headers)),
                 answer.content_type, answer.body, answer.stored, time.time(), answer.variant),
            )  # fmt: skip
            self._writes += 1
            if self._writes % 256 == 0:
                self._trim()

    def _trim(self) -> None:
        """Back under the bounds (checked every 256 writes): the answers stored or renewed
        longest ago go, down to 90% of ``max_entries``, and a tenth at a time while the
        bodies pass ``max_bytes`` (not an exact LRU: a read writes nothing, so reading
        stays cheap)."""
        while True:
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM answers_v2"
            ).fetchone()
            if count <= self._max_entries and size <= self._max_bytes:
                return
            excess = max(1, count // 10, count - self._max_entries * 9 // 10)
            self._db.execute(
                "DELETE FROM answers_v2 WHERE url IN "
                "(SELECT url FROM answers_v2 ORDER BY used LIMIT ?)",
                (excess,),
            )

    def renew(self, answer: CachedAnswer) -> None:
        """After a 304: the new headers and time; the stored body is not written again."""
        with self._lock:
            self._db.execute(
                "UPDATE answers_v2 SET headers = ?, stored = ?, used = ? WHERE url = ?",
                (json.dumps(dict(answer.headers)), answer.stored, answer.stored, answer.url),
            )

    def forget(self, url: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM answers_v2 WHERE url = ?", (url,))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
