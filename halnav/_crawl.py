"""Bulk walks of a HAL API: a frontier, workers in one TaskGroup, JSON Lines output, resume.

:class:`Crawler` starts from one or more root URLs and fetches every document
reachable by links (within a :class:`Scope`), each at most once, writing one
JSON record per document, failure and action. Records are streamed to the
output (never accumulated), statistics are a cheap snapshot
(:meth:`Crawler.statistics`), and with ``state_dir`` an interrupted walk -
even by SIGKILL - resumes where it was committed.

Identity and dedup
    A document is identified by the canonical form (:func:`canonical_url`) of
    its ``self`` href, or of the URL it was fetched from when it has none. A
    URL is marked seen when it is enqueued, and a document's identity is
    marked written when its record is written: a fetch whose ``self`` was
    already written (``.../mailboxes`` answering with the ``self``
    ``.../mailboxes?offset=0&limit=30`` that a ``first`` link also names)
    writes nothing, and a queued URL that has meanwhile been written (as a page
    item) is not fetched at all.

Page items and embedded resources
    Page items (``doc.items``: Veeam ``results``, HAL pages) and ``_embedded``
    resources that have a ``self`` are documents in their own right: they get
    their own record - without being fetched again - and their links are
    followed. Their record has ``"embedded": true``, the HTTP ``status`` of the
    response that carried them, ``rel`` ``"item"`` for page items (the
    ``_embedded`` rel for embedded ones; a HAL page whose items are an
    ``_embedded`` array uses that rel) and ``depth`` = the carrier's depth + 1.
    Items and embedded resources without a ``self`` are not documents: they
    are kept inline in the carrier's record (``"inline"``).

Depth
    Roots are depth 0; a link adds 1, except the paging rels ``next``,
    ``prev``, ``first`` and ``last`` (a page belongs to the same collection).

Output
    JSON Lines, one record per document, failure and action, in completion order: the
    format (and its reader, :func:`halnav.read_records`) is in :mod:`halnav._records`.

Resume (``state_dir``)
    ``state_dir/state.sqlite3`` (WAL) holds the roots, the output path, the
    frontier (``kind`` fetch/action, url, depth, parent, rel, done), the
    written document identities, the counters and the committed byte offset
    of the output file - URLs, depths and rels only, never a header or token.
    Every ~0.5 s (or 1000 records) the crawler flushes and fsyncs
    the output, then in ONE transaction marks the finished items done,
    inserts what they discovered and stores the new offset. Processing a
    finished fetch (records + discoveries) happens without an ``await``, so
    every commit is a consistent cut. On start with an existing state the
    output is truncated to the committed offset and every pending item
    (including those in flight when the process died) is queued again.
    Guarantee: after a SIGKILL at any point, re-running the same walk leaves
    an output in which every document appears exactly once, and the union
    equals an uninterrupted walk. The schema and every SQL statement are in
    :mod:`halnav._resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TextIO

import attrs

from ._exports import Exports, head_of
from ._model import Document
from ._navigator import Download, Navigator, _page_plan
from ._records import download_result, plain
from ._resume import PendingFetch, ResumeStore
from ._seen import SeenSet
from ._sinks import (
    ActionAnswered,
    ActionFailed,
    ActionPlanned,
    CrawlEvent,
    CrawlSink,
    DocumentWritten,
    FetchFailed,
    LinkSkipped,
    RecordSink,
    Tally,
)
from ._urls import canonical_url, origin_of
from .errors import (
    AuthenticationError,
    ConnectError,
    DocumentError,
    HTTPStatusError,
    MissingVariablesError,
    RequestTimeoutError,
    RetryBudgetExceededError,
    StateError,
    TLSError,
    UnsafeLinkError,
)

_log = logging.getLogger("halnav.crawl")

__all__ = ["ActionRule", "CrawlStatistics", "CrawlSummary", "Crawler", "Scope", "crawl"]

_PAGING: Final = frozenset({"next", "prev", "previous", "first", "last"})
# Rels that keep a collection whole: an allowed collection brings its pages and page items.
_COLLECTION: Final = _PAGING | {"item"}
# A root that fails with one of these means the walk cannot start at all.
_CANNOT_START: Final = (AuthenticationError, ConnectError, TLSError)
# Failures a later attempt may not have: retried once at the end of the walk, and on resume.
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
# Failures that say the server (or the way to it) is gone, not that one resource is broken:
# a run of them is an outage.
_OUTAGE_STATUS: Final = frozenset({502, 503, 504})
# A commit (fsync + one transaction) every this many records or _COMMIT_SECONDS. Not
# Final: tests/crawl_child.py commits more often, so its kills land between commits.
_COMMIT_RECORDS = 1000
_COMMIT_SECONDS: Final = 0.5
_FLUSH_SECONDS: Final = 0.5
# Pause before the end-of-walk retry of transient failures. Not Final: tests shorten it.
_RETRY_PAUSE = 1.0
_BUFFER = 1 << 20  # output write buffer; not Final: tests/crawl_child.py shrinks it


@attrs.frozen(kw_only=True)
class Scope:
    """Which links a walk follows.

    ``allow_rels`` (None: every rel) and ``deny_rels`` compare rels
    case-insensitively. ``first``, ``prev`` and ``last`` are denied by
    default: walking forward through ``next`` from the first page already
    reaches every page, and following the others only re-requests pages
    under another spelling of their URL. ``max_depth`` bounds the depth
    (roots are 0; ``next``-style paging hops add nothing; page items are at
    the page's depth + 1). Page items count as reached through the rel
    ``item`` and embedded resources through their ``_embedded`` rel, for
    ``deny_rels`` as for ``max_depth``. ``allow_rels`` keeps a collection whole:
    an allowed rel also brings that collection's pages (``next`` ...) and page items
    (``item``) unless those are denied, so ``{"mailboxes"}`` walks every mailboxes
    page and every mailbox on them (and no further). ``max_documents`` stops this run
    after that many document records (what is left stays pending in the state, for a resume).
    ``same_origin`` keeps the walk on the roots' origins. Templated links are
    skipped unless ``follow_templated``, which expands them without variables
    (only templates whose variables are all optional, such as ``{?q}``).

    >>> Scope(allow_rels=frozenset({"mailboxes", "item", "next"}), max_depth=3)  # doctest: +SKIP
    """

    allow_rels: frozenset[str] | None = None
    deny_rels: frozenset[str] = frozenset({"first", "prev", "last"})
    max_depth: int | None = None
    max_documents: int | None = None
    same_origin: bool = True
    follow_templated: bool = False


@attrs.frozen(kw_only=True)
class ActionRule:
    """Run the action ``name`` on every written document that offers it (any case).

    ``json`` is the body (the navigator's ``action_body`` hook may wrap it,
    as the Veeam profile does). With ``export_dir``, binary answers are
    streamed to ``export_dir/<name>.<ext>``: the name from the document's
    ``email``, ``name`` or ``id`` (characters outside ``[A-Za-z0-9._@-]``
    become ``_``), the extension from the content type (for
    ``application/octet-stream`` from the first bytes: PST, MSG or ZIP; else
    ``.pst``); an existing file is never overwritten (``-1``, ``-2``, ...
    are added). ``rels`` limits the rule to documents reached through one of
    those rels (page items are reached through ``item``), ``limit`` to that
    many documents, ``where`` to documents it accepts. ``where_key`` names what ``where``
    accepts (``"kinds=mailbox"``) for the resume check: a walk resumed with another
    ``where_key`` (or none where there was one) is refused. A ``where`` without a key is
    not compared: a function cannot be compared across runs.

    A JSON answer that is a page (search hits) is paged to the end with
    :meth:`~halnav.Navigator.paginate` - for the Veeam searches that means POSTing
    again with the next ``offset`` - and every item goes into the action's record.
    ``max_items`` caps the items recorded per action (None: every one); a record cut
    there says ``"truncated": true``.

    >>> one = ActionRule(name="exportToPst", export_dir="pst", limit=1)  # doctest: +SKIP
    """

    name: str
    json: Any = None
    export_dir: str | None = None
    rels: frozenset[str] | None = None
    limit: int | None = None
    where: Callable[[Document], bool] | None = None
    max_items: int | None = None
    where_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What identifies the rule in a resumable walk's stored options (and a cluster's
        shard keys): its fields as JSON values, ``where`` by its ``where_key``."""
        return {
            "name": self.name,
            "json": self.json,
            "export_dir": self.export_dir,
            "rels": None if self.rels is None else sorted(self.rels),
            "limit": self.limit,
            **({"max_items": self.max_items} if self.max_items is not None else {}),
            "where": self.where_key,
        }


@attrs.frozen
class CrawlStatistics:
    """A snapshot of a running walk (cheap to make: for progress displays).

    Counts include the records of earlier runs of a resumed walk; ``rate`` is
    documents per second of this run.
    """

    documents: int
    failures: int
    actions: int
    action_failures: int
    queued: int
    in_flight: int
    elapsed: float
    rate: float
    bytes_exported: int
    exporting: int = 0
    """Bytes received so far by the downloads in flight (not yet in ``bytes_exported``)."""
    resumed_documents: int = 0
    """Documents the earlier runs of a resumed walk wrote (in ``documents`` too)."""
    requests: int = 0
    """HTTP requests the navigator sent so far (page items and embedded copies need none);
    ``retries``, ``throttled`` and ``bytes_received`` are its transport's too."""
    retries: int = 0
    throttled: int = 0
    """Answers that asked to slow down (429, or 503 with Retry-After)."""
    bytes_received: int = 0


@attrs.frozen
class CrawlSummary:
    """The outcome of :meth:`Crawler.run`.

    ``complete`` means complete: every document in scope was written and every action
    ran, with all its answer's items; no failure, nothing left behind (by
    ``max_documents``, an action rule's ``max_items`` or an outage stop).
    ``finished`` is true when the frontier was emptied (failures may remain).
    ``stopped`` says why the walk stopped early (the server stopped answering), else
    None; what was left stays pending in the state, for a resume. ``offsite_links``
    counts the links held back because they lead to another origin, by origin
    (``Scope(same_origin=False)`` follows them). ``output`` is the output path (None
    for a stream or no output). Counts include earlier runs of a resumed walk, so they
    match the output file.
    """

    documents: int
    failures: int
    actions: int
    action_failures: int
    elapsed: float
    resumed: bool
    complete: bool
    output: str | None
    failures_by_type: Mapping[str, int]
    finished: bool = True
    left: int = 0
    """Queued work not done in this run (pending in the state)."""
    stopped: str | None = None
    offsite_links: Mapping[str, int] = attrs.field(factory=lambda: MappingProxyType({}))
    rule_matches: tuple[tuple[str, int], ...] = ()
    """``(rule name, documents it was run on)`` per :class:`ActionRule`, in rule order: a
    rule that matched no document ran nowhere (and says so, rather than nothing)."""
    planned: int = 0
    """Actions a dry run would have sent (none was sent)."""
    offered_actions: tuple[str, ...] = ()
    """The action names the written documents offered (sorted; only when the walk has
    action rules): what a rule that matched nothing could have been."""
    action_items: Mapping[str, int] = attrs.field(factory=lambda: MappingProxyType({}))
    """Items of paged action answers recorded (search hits), by action name; this run's
    and, for a resumed walk, the earlier runs'."""
    new_documents: int = 0
    """Documents this run wrote (``documents`` counts the earlier runs of a resumed walk
    too): 0 for a resumed walk that was already complete."""
    retries: int = 0
    """Requests the navigator retried during the walk (its transport's count)."""
    throttled: int = 0
    """Answers that asked to slow down (429, or 503 with Retry-After)."""
    deprecated: int = 0
    """Documents of this run whose answer carried ``Deprecation``/``Sunset`` headers (their
    records say which, under ``"deprecated"``)."""
    truncated: int = 0
    """Action answers an :class:`ActionRule`'s ``max_items`` cut short (their records say
    ``"truncated": true``): the walk did what was asked, but is not ``complete``."""
    endless: tuple[str, ...] = ()
    """Pages whose ``next`` the walk did not follow: each the third empty page in a row of
    its collection (a server whose ``next`` links never end). Not ``complete``."""


class _CannotStartError(Exception):
    """Ends the walk's TaskGroup when a root cannot be fetched at all."""


def _is_outage(exc: BaseException) -> bool:
    """A failure of the server as a whole: no connection, no answer, a gateway error."""
    if isinstance(exc, HTTPStatusError):
        return exc.status in _OUTAGE_STATUS
    return isinstance(exc, ConnectError | RequestTimeoutError | RetryBudgetExceededError)


def _is_transient(exc: BaseException) -> bool:
    """A failure another attempt may not have: connection, timeout, 408/429/5xx, and a body
    that is not JSON at all (cut off by a proxy or a server restarting: tried once more,
    as a body with the wrong shape is not)."""
    if isinstance(exc, HTTPStatusError):
        return exc.status in _TRANSIENT_STATUS
    if isinstance(exc, DocumentError):
        return exc.path == "$" and exc.reason.startswith("malformed JSON")
    return isinstance(exc, ConnectError | RequestTimeoutError | RetryBudgetExceededError)


_AFTER_ORIGIN: Final = frozenset({"", "/", "?", "#"})
# Empty pages in a row along next after which the walk stops following it.
_EMPTY_PAGES_IN_A_ROW: Final = 3


class _Outage:
    """What transient failures mean for the walk: tried again later, recorded, or the end.

    Pure decisions, no I/O. A transient failure (:func:`_is_transient`) is held back
    (``deferred``) to be tried once more at the end of the walk (:meth:`last_round`); a
    failure of that last attempt is recorded. ``limit`` outage-like failures in a row
    (:func:`_is_outage`, no success between) stop the walk (``stopped`` says why), and so
    does a last round in which every attempt failed that way: what was deferred then
    stays pending (for a resume) instead of becoming failure records.
    """

    __slots__ = ("_final", "_last", "_run", "deferred", "limit", "stopped")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.stopped: str | None = None
        self.deferred: list[_Fetch] = []
        self._run = 0  # outage-like failures in a row
        self._final: set[str] = set()  # URLs on their last attempt of this run
        self._last: list[tuple[_Fetch, Exception]] | None = None  # failures of the last round

    def succeeded(self) -> None:
        self._run = 0

    def failed(self, work: _Fetch, exc: Exception) -> bool:
        """Whether the failure is to be recorded now (else it is held back)."""
        if not _is_transient(exc):
            return True
        if self._last is not None and self.stopped is None:
            self._last.append((work, exc))  # decided when the whole last round is over
            return False
        self._run = self._run + 1 if _is_outage(exc) else 0
        if self.limit is not None and self._run >= self.limit and self.stopped is None:
            self.stopped = (
                f"the server stopped answering: {self._run} requests in a row failed "
                f"(last: {type(exc).__name__}: {exc})"
            )
        if self.stopped is not None or work.url not in self._final:
            self.deferred.append(work)  # pending: tried again at the end, or on resume
            return False
        return True

    def last_round(self) -> list[_Fetch]:
        """The deferred fetches, for their last attempt of this run."""
        retry, self.deferred = self.deferred, []
        self._final.update(work.url for work in retry)
        self._last = []
        return retry

    def settle(self, attempts: int) -> list[tuple[_Fetch, Exception]]:
        """After the last round of ``attempts`` fetches: the failures to record (none when
        the walk stops: they stay deferred)."""
        failed, self._last = self._last or [], None
        gone = bool(failed) and len(failed) == attempts  # no retry got through
        if self.stopped is None and gone and all(_is_outage(exc) for _w, exc in failed):
            last = failed[-1][1]
            self.stopped = (
                f"the server stopped answering: the last {len(failed)} requests failed "
                f"(last: {type(last).__name__}: {last})"
            )
        if self.stopped is not None:
            self.deferred.extend(work for work, _exc in failed)
            return []
        return failed


@attrs.frozen
class _Fetch:
    """Work: fetch ``url``, reached from ``parent`` (a document key) through ``rel``."""

    url: str
    depth: int
    parent: str | None
    rel: str | None


@attrs.frozen
class _Act:
    """Work: run ``rules[rule]`` on the document ``url`` (``doc``: None after a resume,
    when it is fetched again); ``stem``: its export file's reserved path stem."""

    url: str
    rule: int
    stem: str | None
    doc: Document | None


def _as_stored(options: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` compared as an earlier version stored them: a rule's ``where`` (stored
    since ``ActionRule.where_key`` came) is left out where the stored rule has none, so
    that the states earlier versions wrote stay resumable."""
    old_rules, new_rules = stored.get("actions"), options.get("actions")
    if not isinstance(old_rules, list) or not isinstance(new_rules, list):
        return options
    rules = [
        {k: v for k, v in new.items() if k != "where"}
        if isinstance(old, dict) and "where" not in old
        else new
        for old, new in zip(old_rules, new_rules, strict=False)
    ]
    return {**options, "actions": rules + new_rules[len(old_rules) :]}


class Crawler:
    """Walk a HAL API from ``roots``: every reachable document once, as JSON Lines.

    ``roots`` are URLs or paths (resolved against the navigator's entry).
    ``output`` is a path (UTF-8; a new walk **replaces** it at its first record, a
    resumed one appends where it stopped; ``replace=False`` appends to what is there),
    a text stream written as is (``sys.stdout``), or None (no records: read
    :meth:`statistics`, the summary and ``nav.graph``). ``state_dir`` makes the walk resumable (see
    the module docstring; it needs ``output`` to be a path). ``actions`` run
    :class:`ActionRule` s on the documents found, through the same workers.
    ``progress`` is called with :class:`CrawlStatistics` every
    ``progress_interval`` seconds from one timer task, and once at the end.
    ``workers`` defaults to ``nav.limits.concurrency``; per-host limits are
    the navigator's (``Limits.per_host``). ``sinks`` get every event of the walk
    (:class:`~halnav.CrawlSink`: a document written, a failure, an action answered, a
    link skipped), after the walk's own counters and records. ``renamed`` maps text in
    the stored walk's URLs to what replaces it before a resume (``{"/old-id/":
    "/new-id/"}``: the Veeam profile re-explores a restore session under a new id).
    ``dry_run`` walks as usual (GETs) but sends no action: each is an
    :class:`~halnav.ActionPlanned` event with the request it would have sent
    (``summary.planned`` counts them).

    The Crawler is the walk's core - frontier, workers, dedup (:mod:`halnav._seen`),
    scope, outages - and decides; what it decides is published as events to sinks that
    each own one concern: the records (:class:`~halnav._sinks.RecordSink`), the counters
    (:class:`~halnav._sinks.Tally`); export files are placed by
    :class:`~halnav._exports.Exports` and the resume state is :mod:`halnav._resume`.

    Outcomes are honest:

    * a walk that cannot start (a root fails with an authentication, connection or TLS
      error before any document was written) raises that error; a resumable walk keeps
      the root pending, so the same walk runs again once the cause is fixed;
    * a path ``output`` is replaced (``replace``, the default) when the first record is
      written, not before: a walk that cannot start leaves yesterday's output as it was;
    * fetches that fail with a transient error (connection, timeout, 408/429/5xx after
      the navigator's retries) are tried once more at the end of the walk, and again on
      resume;
    * ``outage_after`` transient failures in a row with no success between stop the walk
      (``summary.stopped``): the frontier is kept (pending in the state) instead of being
      turned into failure records;
    * a second walk on a ``state_dir`` in use is refused, and so is a resume whose
      scope or action rules differ from the stored walk's (``max_documents`` may change).

    >>> async with halnav.Navigator("https://api.example/") as nav:       # doctest: +SKIP
    ...     summary = await Crawler(nav, ["/"], output="walk.jsonl").run()

    Raises (constructor):
        ValueError: ``state_dir`` without a path ``output``; ``workers`` < 1;
            a root that carries ``user:password@`` in its URL.
    Raises (``run``):
        ValueError: the state in ``state_dir`` belongs to other roots, another output
            file or other options, or the output is shorter than the state says.
        StateError: another walk is using ``state_dir``.
        AuthenticationError, ConnectError, TLSError: the walk cannot start.
        OSError: the output or state cannot be written.
    """

    def __init__(
        self,
        nav: Navigator,
        roots: Iterable[str],
        *,
        scope: Scope = Scope(),  # a frozen value: sharing the default is safe
        output: str | os.PathLike[str] | TextIO | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        actions: Sequence[ActionRule] = (),
        progress: Callable[[CrawlStatistics], None] | None = None,
        progress_interval: float = 0.5,
        workers: int | None = None,
        replace: bool = True,
        outage_after: int | None = 20,
        sinks: Sequence[CrawlSink] = (),
        dry_run: bool = False,
        renamed: Mapping[str, str] | None = None,
    ) -> None:
        self._nav = nav
        if outage_after is not None and outage_after < 1:
            raise ValueError(f"outage_after must be >= 1 or None, got {outage_after}")
        self._outage = _Outage(outage_after)
        self._roots = [canonical_url(nav.url(root)) for root in roots]
        for root in self._roots:
            authority = root.partition("://")[2].split("/", 1)[0]
            if "@" in authority:  # records and the state would keep the password in clear
                raise ValueError(
                    "a crawl root must not carry credentials in its URL "
                    f"({root.split('://', 1)[0]}://***@{authority.rsplit('@', 1)[1]}/...); "
                    "give them as auth (--username/--password or --token)"
                )
        self._scope = scope
        self._output: RecordSink | None = None
        if isinstance(output, str | os.PathLike):
            self._output = RecordSink(Path(output), replace=replace, buffer=_BUFFER)
        elif output is not None:
            self._output = RecordSink(output, buffer=_BUFFER)
        if state_dir is not None and (self._output is None or self._output.path is None):
            raise ValueError(
                "a resumable walk (state_dir) needs output to be a file path, "
                f"not {'a stream' if output is not None else 'None'}: the state records "
                "how many bytes of that file are committed"
            )
        if dry_run and state_dir is not None:
            raise ValueError("a dry run cannot be resumable (state_dir): it changes nothing")
        self._dry_run = dry_run
        self._renamed = dict(renamed or {})
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._replace = replace
        self._tally = Tally()
        # Every event goes to each sink in turn: the counters first, then the records.
        self._sinks: tuple[CrawlSink, ...] = (
            self._tally,
            *((self._output,) if self._output is not None else ()),
            *sinks,
        )
        self._rules = tuple(actions)
        self._rule_keys = [f"{i}:{rule.name.lower()}" for i, rule in enumerate(self._rules)]
        self._progress = progress
        self._progress_interval = progress_interval
        self._workers = workers if workers is not None else nav.limits.concurrency
        if self._workers < 1:
            raise ValueError(f"workers must be >= 1, got {self._workers}")
        self._allow = (
            None if scope.allow_rels is None else frozenset(r.lower() for r in scope.allow_rels)
        )
        self._deny = frozenset(r.lower() for r in scope.deny_rels)
        self._rule_rels = [
            None if rule.rels is None else frozenset(r.lower() for r in rule.rels)
            for rule in self._rules
        ]
        self._origins = frozenset(origin_of(root) for root in self._roots)
        self._rel_plan: dict[str, int] = {}  # rel -> -1 skip, 0 same depth, 1 deeper

        self._queue: asyncio.Queue[_Fetch | _Act | None] = asyncio.Queue()
        self._seen = SeenSet()  # canonical URLs queued or written (compact: see _seen)
        self._store: ResumeStore | None = None
        self._exports = Exports()
        self._last_commit = 0.0
        self._uncommitted = 0  # events since the last commit
        self._resumed = False
        self._running = False
        self._rule_counts = [0] * len(self._rules)
        self._offered: set[str] = set()  # action names the written documents offer
        self._exporting: dict[str, int] = {}  # export stem -> bytes received so far
        self._fetching = 0
        self._left = 0
        self._busy = 0
        self._started = 0.0
        self._elapsed: float | None = None
        self._cannot_start: BaseException | None = None
        self._empty_pages: dict[str, int] = {}  # an empty page -> empty pages in a row to it
        self._endless: list[str] = []  # pages whose next was not followed (see CrawlSummary)
        self._speculative: set[str] = set()  # pages read ahead, not (yet) linked to
        self._readahead = nav.limits.readahead

    # -- public ----------------------------------------------------------------------
    def statistics(self) -> CrawlStatistics:
        """Counters now: records written, queue length, busy workers, rate."""
        elapsed = self._elapsed_now()
        tally = self._tally
        wire = self._nav.statistics().transport
        return CrawlStatistics(
            documents=tally.documents,
            failures=tally.failures,
            actions=tally.actions,
            action_failures=tally.action_failures,
            queued=self._queue.qsize(),
            in_flight=self._busy,
            elapsed=elapsed,
            rate=tally.run_documents / elapsed if elapsed > 0 else 0.0,
            bytes_exported=tally.bytes_exported,
            exporting=sum(self._exporting.values()),
            resumed_documents=tally.documents - tally.run_documents,
            requests=wire.requests,
            retries=wire.retries,
            throttled=wire.throttled,
            bytes_received=wire.bytes_received,
        )

    async def run(self) -> CrawlSummary:
        """Walk until the frontier is empty (or ``max_documents``); return the summary.

        Cancelling the task stops the walk cleanly: no task is left running,
        the output is flushed and the state committed (so a resume continues).

        Raises:
            ValueError: the state does not match this walk (see the class).
            OSError: the output or state cannot be written.
            StateError: the Crawler was run before.
        """
        if self._running:
            raise StateError("this Crawler is running or has run; make a new one for another walk")
        self._running = True
        self._started = time.monotonic()
        clean = False
        try:
            self._open()
            failure: BaseException | None = None
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(self._workers):
                        group.create_task(self._worker())
                    ticker = group.create_task(self._tick())
                    await self._queue.join()
                    if self._outage.deferred and self._outage.stopped is None:
                        await self._retry_deferred()
                    for _ in range(self._workers):
                        self._queue.put_nowait(None)
                    ticker.cancel()
            except BaseExceptionGroup as group_error:
                failure = self._cannot_start
                if failure is None and len(group_error.exceptions) == 1:
                    failure = group_error.exceptions[0]
                if failure is None:
                    raise
            if failure is not None:
                # Raised outside the handler, so its context is not the group (which holds
                # it): a cycle that tracebacks survive but picklers of the chain (Dask's)
                # do not.
                failure.__context__ = None
                raise failure
            clean = True
        except asyncio.CancelledError:
            clean = True  # cancellation only lands on awaits: every item is whole
            raise
        finally:
            self._elapsed = time.monotonic() - self._started
            self._close(commit=clean)
        if self._progress is not None:
            self._progress(self.statistics())
        return self._summary()

    def _summary(self) -> CrawlSummary:
        tally = self._tally
        left = self._left + len(self._outage.deferred)
        finished = left == 0
        output = self._output.path if self._output is not None else None
        assert self._elapsed is not None
        wire = self._nav.statistics().transport
        return CrawlSummary(
            documents=tally.documents,
            failures=tally.failures,
            actions=tally.actions,
            action_failures=tally.action_failures,
            elapsed=self._elapsed,
            resumed=self._resumed,
            complete=finished
            and tally.failures == 0
            and tally.action_failures == 0
            and tally.truncated == 0
            and not self._endless,
            output=str(output) if output is not None else None,
            failures_by_type=MappingProxyType(dict(tally.failures_by_type)),
            finished=finished,
            left=left,
            stopped=self._outage.stopped,
            offsite_links=MappingProxyType(dict(tally.offsite)),
            planned=tally.planned,
            offered_actions=tuple(sorted(self._offered, key=str.lower)),
            action_items=MappingProxyType(dict(tally.action_items)),
            new_documents=tally.run_documents,
            retries=wire.retries,
            throttled=wire.throttled,
            deprecated=tally.deprecated,
            truncated=tally.truncated,
            endless=tuple(self._endless),
            rule_matches=tuple(
                (rule.name, count)
                for rule, count in zip(self._rules, self._rule_counts, strict=True)
            ),
        )

    async def _retry_deferred(self) -> None:
        """Give fetches that failed transiently one more try, after a short pause."""
        await asyncio.sleep(_RETRY_PAUSE)
        retry = self._outage.last_round()
        for work in retry:
            self._queue.put_nowait(work)  # already in the state's frontier, pending
        await self._queue.join()
        for work, exc in self._outage.settle(len(retry)):
            self._record_failure(work, exc, transient=True)

    # -- setup and teardown -----------------------------------------------------------
    def _elapsed_now(self) -> float:
        if self._elapsed is not None:
            return self._elapsed
        return time.monotonic() - self._started if self._started else 0.0

    def _open(self) -> None:
        if self._state_dir is not None:
            assert self._output is not None
            assert self._output.path is not None
            self._store = ResumeStore(self._state_dir)
            try:
                self._load(self._store, self._output.path)
            except BaseException:
                self._store.close()
                self._store = None
                raise
        if self._output is not None:
            self._output.open(resumed=self._resumed)
        if not self._resumed:
            for root in self._roots:
                if root not in self._seen:
                    self._push(_Fetch(root, 0, None, None))
            if self._store is not None:
                self._commit(force=True)  # the roots and the meta rows, before any fetch
        self._last_commit = time.monotonic()

    def _options(self) -> dict[str, Any]:
        """What a resume must share with the stored walk (``max_documents`` may change)."""
        scope = self._scope
        return {
            "allow_rels": None if self._allow is None else sorted(self._allow),
            "deny_rels": sorted(self._deny),
            "max_depth": scope.max_depth,
            "same_origin": scope.same_origin,
            "follow_templated": scope.follow_templated,
            "actions": [rule.to_json() for rule in self._rules],
        }

    def _load(self, store: ResumeStore, output: Path) -> None:
        """Check the stored walk is this one, then take up its counters and frontier."""
        for old, new in self._renamed.items():
            store.rename(old, new)
        stored = store.walk()
        target = str(output.resolve())
        options = json.loads(json.dumps(self._options(), default=plain))
        if stored is None:
            start = 0 if self._replace else (output.stat().st_size if output.exists() else 0)
            store.begin_walk(roots=self._roots, output=target, offset=start, options=options)
            return
        if stored.roots != sorted(self._roots):
            raise ValueError(
                f"the state in {store.path} belongs to a walk from {', '.join(stored.roots)}; "
                f"this walk starts from {', '.join(sorted(self._roots))}. "
                "Use another state_dir (or delete it to start over)"
            )
        if stored.output != target:
            raise ValueError(
                f"the state in {store.path} was written with output {stored.output}; "
                f"this walk writes to {target}"
            )
        if stored.options is not None:
            options = _as_stored(options, stored.options)
        if stored.options is not None and stored.options != options:
            changed = sorted(key for key in options if stored.options.get(key) != options.get(key))
            raise ValueError(
                f"the walk in {store.path} was started with other options "
                f"({', '.join(changed)} differ): run it with the same options to resume it, "
                "or use another state directory to start a new walk"
            )
        offset = stored.offset
        size = output.stat().st_size if output.exists() else 0
        if size < offset:
            raise ValueError(
                f"{output} holds {size} bytes but the state in {store.path} committed "
                f"{offset}: the output was changed; delete the state to start over"
            )
        # Records written after the last commit belong to items that are still pending.
        if output.exists():  # else killed before its first record: nothing to cut
            with output.open("r+b") as file:
                file.truncate(offset)
        # Fetches that failed transiently are tried again; their failure record stays in
        # the output (the document's record follows if this attempt succeeds).
        self._tally.restore(stored.counters, retried=store.retried_fetches())
        seen = self._seen
        for url in store.queued_urls():
            seen.queue(url)
        for url in store.written_urls():
            seen.write(url)
        rule_index = {key: i for i, key in enumerate(self._rule_keys)}
        for key, count in store.action_counts().items():
            if key in rule_index:
                self._rule_counts[rule_index[key]] = count
        put = self._queue.put_nowait
        for item in store.pending():
            if isinstance(item, PendingFetch):
                if item.readahead:
                    self._speculative.add(item.url)
                put(_Fetch(item.url, item.depth, item.parent, item.rel))
            elif item.rule in rule_index:  # actions of rules this run does not have stay pending
                index = rule_index[item.rule]
                stem = item.stem
                directory = self._rules[index].export_dir
                if stem is not None and (
                    directory is None or not self._exports.within(stem, directory)
                ):
                    # The state is data: an export path outside --export-dir is not used.
                    _log.warning("resume state: export %r is not in %r", stem, directory)
                    stem = (
                        None
                        if directory is None
                        else self._exports.reserve_stem(directory, "export")
                    )
                if stem is not None:
                    self._exports.keep(stem)
                put(_Act(item.url, index, stem, None))
        self._exports.resumed()
        self._resumed = True

    def _close(self, *, commit: bool) -> None:
        try:
            if self._store is not None and commit:
                self._commit(force=True)
            elif self._output is not None:
                self._output.flush()
        finally:
            if self._output is not None:
                self._output.close()
            if self._store is not None:
                self._store.close()
                self._store = None

    def _commit(self, *, force: bool = False) -> None:
        """Fsync the output, then record the finished batch in one transaction."""
        store = self._store
        assert store is not None
        if not force and not store.dirty:
            return
        offset = self._output.sync() if self._output is not None else None
        store.commit(offset=offset, counters=self._tally.counters())
        self._uncommitted = 0
        self._last_commit = time.monotonic()

    # -- the walk ---------------------------------------------------------------------
    async def _tick(self) -> None:
        """The one timer: progress callbacks, output flushes, state commits."""
        interval = _FLUSH_SECONDS
        if self._progress is not None:
            interval = min(interval, max(self._progress_interval, 0.01))
        next_progress = time.monotonic() + self._progress_interval
        next_flush = time.monotonic() + _FLUSH_SECONDS
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if self._progress is not None and now >= next_progress:
                next_progress = now + self._progress_interval
                self._progress(self.statistics())
            if now >= next_flush:
                next_flush = now + _FLUSH_SECONDS
                if self._store is not None:
                    if now - self._last_commit >= _COMMIT_SECONDS:
                        self._commit()
                elif self._output is not None:
                    self._output.flush()

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            work = await queue.get()
            if work is None:
                queue.task_done()
                return
            if self._outage.stopped is not None:  # the walk stopped: leave the rest pending
                self._left += 1
                queue.task_done()
                continue
            self._busy += 1
            try:
                if type(work) is _Fetch:
                    await self._fetch(work)
                else:
                    assert type(work) is _Act
                    await self._act(work)
            finally:
                self._busy -= 1
                queue.task_done()
            if self._store is not None and self._uncommitted >= _COMMIT_RECORDS:
                self._commit()

    def _publish(self, event: CrawlEvent) -> None:
        self._uncommitted += 1
        for sink in self._sinks:
            sink.event(event)

    def _push(self, work: _Fetch | _Act) -> None:
        """Queue a fetch (the URL is marked seen) or an action; remember it for the state."""
        store = self._store
        if type(work) is _Fetch:
            self._seen.queue(work.url)
            if store is not None:
                readahead = work.url in self._speculative
                store.queue_fetch(work.url, work.depth, work.parent, work.rel, readahead=readahead)
        elif store is not None:
            assert type(work) is _Act
            store.queue_action(work.url, self._rule_keys[work.rule], work.stem)
        self._queue.put_nowait(work)

    def _done(self, url: str, *, retry: str | None = None) -> None:
        """The fetch of ``url`` is finished (``retry``: failed transiently, with this type)."""
        if self._store is not None:
            self._store.fetch_done(url, retry=retry)

    async def _fetch(self, work: _Fetch) -> None:
        url = work.url
        if self._seen.written(url):  # written meanwhile (as a page item, or under its self)
            self._done(url)
            return
        cap = self._scope.max_documents
        if cap is not None and self._tally.run_documents + self._fetching >= cap:
            self._left += 1  # stays pending in the state
            return
        self._fetching += 1
        ahead = url in self._speculative  # joins the graph once it turns out to be a page
        try:
            fetched = await self._nav.fetch(url, index=not ahead)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  failures are data: a record, the walk goes on
            # Read ahead, and still named by no link (a link may have named it meanwhile).
            if url in self._speculative:
                self._speculation_failed(url, exc)
            else:
                self._failed(work, exc)
            return
        finally:
            self._fetching -= 1
        self._outage.succeeded()
        # From here to the end: no await, so a commit never sees half of this item.
        doc = fetched.document
        seen = self._seen
        if url in self._speculative:
            self._speculative.discard(url)
            if not doc.items:  # read ahead past the end of the collection: not a page
                # Forgotten rather than written: should a real next name it (an empty page
                # inside a sparse collection), it is fetched then, and so is its own next.
                seen.forget(url)
                self._done(url)
                return
        if ahead:
            self._nav.index(fetched)
        key = self._key_of(doc, url, fetched.url)
        if not seen.written(key):
            requested = url if url != key else None  # an alias: the record says so
            self._write(
                doc, key, fetched.status, work.depth, work.parent, work.rel, False, requested
            )
        seen.write(url)  # the request URL (done in the state) needs no second fetch
        self._done(url)

    @staticmethod
    def _key_of(doc: Document, url: str, fetched: str) -> str:
        """The document's key: its ``self``, when that is on the origin it came from (a
        document that claims another origin's URL must not take that document's place, nor
        stop its fetch); else the URL it was fetched from. ``url`` is the request's
        (canonical) URL, ``fetched`` the one after redirects."""
        self_url = doc.self_url
        if self_url is None:
            return canonical_url(fetched)
        claimed = canonical_url(self_url)
        origin = origin_of(claimed)
        if origin == origin_of(url):  # the common case: one canonicalisation, as before
            return claimed
        key = canonical_url(fetched)
        return claimed if origin == origin_of(key) else key

    def _failed(self, work: _Fetch, exc: Exception) -> None:
        """Record a failed fetch, defer a transient one, or stop the walk (see the class)."""
        if work.depth == 0 and self._tally.run_documents == 0 and isinstance(exc, _CANNOT_START):
            self._cannot_start = exc  # run() raises it: nothing was walked
            raise _CannotStartError
        if self._outage.failed(work, exc):
            self._record_failure(work, exc, transient=_is_transient(exc))

    def _speculation_failed(self, url: str, exc: Exception) -> None:
        """A page read ahead failed: forget it, so a real ``next`` link to it is fetched
        (and its failure recorded) as usual. Past the end of a collection, some APIs
        answer 404: no failure record for a page no link named."""
        self._speculative.discard(url)
        self._seen.forget(url)
        if not _is_transient(exc):
            self._done(url)

    def _read_ahead(self, page: Document, next_href: str, depth: int) -> None:
        """Queue the pages after ``next_href`` too, when workers are idle and ``page``
        shows how its collection is paged (``offset``/``limit`` or ``page`` in the query).

        Only idle capacity is used: a walk with work for every worker reads nothing
        ahead. At most ``Limits.readahead`` pages, fewer near the start of a collection
        and when ``totalCount`` says so; what lies past the end costs one request per
        page and writes nothing.
        """
        idle = self._workers - self._busy - self._queue.qsize()
        if idle <= 0:
            return
        plan = _page_plan(page, next_href)
        if plan is None:
            return
        step, size = plan
        if size <= 0 or len(page.items) < size:  # a short page is the last one
            return
        total, offset = page.state.get("totalCount"), page.state.get("offset")
        # The window doubles along the collection (as paginate's does): page i looks
        # 2 ** (i + 1) pages past its next, so a short collection wastes little past its
        # end and a long one soon has readahead pages in flight.
        index = offset // size if type(offset) is int and offset >= 0 else 0
        count = min(idle, self._readahead, 2 ** min(index + 1, 16))
        if type(total) is int and type(offset) is int:
            count = min(count, max(0, math.ceil((total - offset - 2 * size) / size)))
        seen = self._seen
        before = canonical_url(step(0))  # next itself: the page before the first read ahead
        for k in range(1, count + 1):
            href = canonical_url(step(k))
            # Its record's parent is the page whose next names it, not the page that read it
            # ahead: the graph rebuilt from the records has the live graph's next edges.
            previous, before = before, href
            if href in seen:
                continue
            self._speculative.add(href)
            self._push(_Fetch(href, depth, previous, "next"))

    def _record_failure(self, work: _Fetch, exc: Exception, *, transient: bool) -> None:
        self._publish(FetchFailed(work.url, work.depth, work.parent, work.rel, exc))
        self._done(work.url, retry=type(exc).__name__ if transient else None)

    def _write(  # noqa: PLR0917  called per document: positional arguments are cheaper
        self,
        doc: Document,
        key: str,
        status: int,
        depth: int,
        parent: str | None,
        rel: str | None,
        embedded: bool,
        requested: str | None = None,
    ) -> None:
        """Publish ``doc`` (and its items with a ``self``), then queue its links and actions."""
        self._seen.write(key)
        if self._store is not None:
            self._store.wrote(key)
        children: list[tuple[Document, str, str]] = []
        inline: list[tuple[str, Document]] = []
        page: list[str] | None = None
        items = doc.items
        origin = origin_of(key)
        if doc.embedded:
            for emb_rel, docs in doc.embedded.items():
                if docs is items:  # a HAL page whose items are its _embedded array
                    page = self._collect(docs, emb_rel, children, inline, origin)
                    items = ()
                else:
                    self._collect(docs, emb_rel, children, inline, origin)
        if items:
            page = self._collect(items, "item", children, inline, origin)
        self._publish(
            DocumentWritten(doc, key, status, depth, parent, rel, embedded, page, inline, requested)
        )
        skip = None
        if rel == "next" and not doc.items and "next" in doc.links and "item" not in doc.links:
            # An empty page that links a next one: a few happen (a last page's next), an
            # endless run of them is a server whose next never ends.
            run = self._empty_pages[key] = self._empty_pages.get(parent or "", 0) + 1
            if run >= _EMPTY_PAGES_IN_A_ROW:
                skip = "next"
                self._endless.append(key)
        self._follow(doc, key, depth, skip)
        if self._rules:
            self._match_actions(doc, key, rel)
        if children:
            child_depth = depth + 1
            max_depth = self._scope.max_depth
            if max_depth is not None and child_depth > max_depth:
                return
            cap = self._scope.max_documents
            tally = self._tally
            seen = self._seen
            plans = self._rel_plan
            for child, child_key, child_rel in children:
                if seen.written(child_key):
                    continue
                plan = plans.get(child_rel)
                if (plan if plan is not None else self._plan(child_rel)) < 0:
                    continue
                if cap is not None and tally.run_documents + self._fetching >= cap:
                    # Over the cap: the item becomes pending work, fetched on resume.
                    if child_key not in seen:
                        self._push(_Fetch(child_key, child_depth, key, child_rel))
                    continue
                self._write(child, child_key, status, child_depth, key, child_rel, True)

    def _collect(
        self,
        docs: Iterable[Document],
        rel: str,
        children: list[tuple[Document, str, str]],
        inline: list[tuple[str, Document]],
        origin: str,
    ) -> list[str]:
        """Sort ``docs`` into documents of their own (returned by key) and inline ones.

        Documents already written are not put into ``children``. An item whose ``self``
        names another origin than its carrier's is inline: a server speaks only for its
        own origin, so it cannot write (or suppress) another origin's documents.
        """
        keys = []
        seen = self._seen
        cut = len(origin)
        for child in docs:
            raw = child.self_url
            if raw is None:
                inline.append((rel, child))
                continue
            if not (raw.startswith(origin) and raw[cut : cut + 1] in _AFTER_ORIGIN) and (
                origin_of(canonical_url(raw)) != origin
            ):
                inline.append((rel, child))
                continue
            # A seen URL is canonical already: skip canonicalising it again.
            if raw in seen:
                keys.append(raw)
                if not seen.written(raw):
                    children.append((child, raw, rel))
                continue
            child_key = canonical_url(raw)
            keys.append(child_key)
            if child_key is raw or not seen.written(child_key):
                children.append((child, child_key, rel))
        return keys

    def _plan(self, rel: str) -> int:
        """-1: do not follow ``rel``; 0: follow at the same depth (paging); 1: one deeper."""
        lowered = rel.lower()
        allowed = self._allow is None or lowered in self._allow or lowered in _COLLECTION
        plan = -1 if lowered in self._deny or not allowed else (0 if lowered in _PAGING else 1)
        self._rel_plan[rel] = plan
        return plan

    def _linked(self, href: str) -> None:
        """A link names ``href``: if it was read ahead, it is a real page from now on."""
        if href in self._speculative:
            self._speculative.discard(href)
            if self._store is not None:
                self._store.linked(href)

    def _follow(self, doc: Document, key: str, depth: int, skip: str | None = None) -> None:
        speculative = self._speculative
        scope = self._scope
        max_depth = scope.max_depth
        same_origin = scope.same_origin
        origins = self._origins
        seen = self._seen
        plans = self._rel_plan
        for rel, links in doc.links.items():
            plan = plans.get(rel)
            if plan is None:
                plan = self._plan(rel)
            if plan < 0 or rel == skip:
                continue
            child_depth = depth + plan
            if max_depth is not None and child_depth > max_depth:
                continue
            for link in links:
                if link.templated:
                    if not scope.follow_templated:
                        continue
                    try:
                        href = canonical_url(link.expand())
                    except (MissingVariablesError, UnsafeLinkError):
                        continue  # needs variables, or expands to no valid URL: not followable
                else:
                    href = link.href
                    if href in seen:  # seen URLs are canonical: most links end here
                        if speculative:
                            self._linked(href)
                        continue
                    href = canonical_url(href)
                if href in seen:
                    if speculative:
                        self._linked(href)
                    continue
                if same_origin:
                    origin = origin_of(href)
                    if origin not in origins:
                        self._publish(LinkSkipped(href, rel, key, origin))
                        continue
                self._push(_Fetch(href, child_depth, key, rel))
                if rel == "next" and self._readahead > 1:
                    self._read_ahead(doc, link.href, child_depth)

    # -- actions ----------------------------------------------------------------------
    def _match_actions(self, doc: Document, key: str, rel: str | None) -> None:
        if self._rules:
            self._offered.update(self._nav.action_names(doc))
        for index, rule in enumerate(self._rules):
            if rule.limit is not None and self._rule_counts[index] >= rule.limit:
                continue
            if self._nav.find_action(doc, rule.name) is None:
                continue
            rels = self._rule_rels[index]
            if rels is not None and (rel is None or rel.lower() not in rels):
                continue
            if rule.where is not None and not rule.where(doc):
                continue
            self._rule_counts[index] += 1
            stem = self._exports.reserve(rule.export_dir, doc) if rule.export_dir else None
            self._push(_Act(key, index, stem, doc))

    async def _act(self, work: _Act) -> None:
        url, stem, doc = work.url, work.stem, work.doc
        rule = self._rules[work.rule]
        target = None
        if stem is not None:
            Path(stem).parent.mkdir(parents=True, exist_ok=True)
            target = f"{stem}.download"
            if self._store is not None and not self._dry_run:
                # The stem on disk before the file exists: a run killed once it is placed,
                # before the next commit, resumes into the same file, not a second one.
                self._commit()
        if self._dry_run:
            assert doc is not None  # a dry run never resumes
            try:
                request = self._nav.plan(doc, rule.name, json=rule.json)
            except Exception as exc:  # noqa: BLE001  the action resolver may refuse: data
                self._publish(ActionFailed(url, rule.name, exc))
            else:
                self._publish(ActionPlanned(url, rule.name, request))
            return
        try:
            if doc is None:  # resumed: the document is not in memory any more
                doc = await self._nav.get(url)
            invoked = await self._nav.invoke(
                doc, rule.name, json=rule.json, to=target, progress=self._meter(stem)
            )
            status, answer = invoked.status, invoked.answer
            event = self._answered(url, rule.name, status, answer, stem)
            if isinstance(answer, Document) and answer.items:
                items, truncated = await self._every_item(answer, rule.max_items)
                event = event._replace(items=items, truncated=truncated)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  failures are data (an export's OSError too)
            self._publish(ActionFailed(url, rule.name, exc))
        else:
            self._publish(event)
        finally:
            if stem is not None:
                self._exporting.pop(stem, None)
        if self._store is not None:
            self._store.action_done(url, self._rule_keys[work.rule])

    def _meter(self, stem: str | None) -> Callable[[int, int | None], None] | None:
        """A download's byte counter, for :meth:`statistics` (exports only)."""
        if stem is None:
            return None
        exporting = self._exporting

        def count(size: int, _total: int | None) -> None:
            exporting[stem] = size

        return count

    async def _every_item(
        self, answer: Document, cap: int | None
    ) -> tuple[tuple[Document, ...], bool]:
        """Every item of a paged answer (at most ``cap``), and whether more were left."""
        items: list[Document] = []
        async with contextlib.aclosing(self._nav.paginate(answer)) as pages:
            async for item in pages:
                if cap is not None and len(items) >= cap:
                    return tuple(items), True
                items.append(item)
        return tuple(items), False

    def _answered(
        self, url: str, name: str, status: int, answer: Document | Download, stem: str | None
    ) -> ActionAnswered:
        """The event of an answered action; a binary answer is placed in its export file."""
        if isinstance(answer, Document):
            return ActionAnswered(url, name, status, answer.state, answer, 0, answer.items)
        path, exported = answer.path, 0
        if path is not None and stem is not None:
            ext = self._nav.download_extension(answer.content_type, head_of(path))
            path = self._exports.place(path, stem, ext)
            exported = answer.size
        where = str(path) if path is not None else None
        result = download_result(where, answer.size, answer.content_type)
        return ActionAnswered(url, name, status, result, None, exported)


async def crawl(
    nav: Navigator,
    roots: Iterable[str],
    *,
    scope: Scope = Scope(),  # a frozen value: sharing the default is safe
    output: str | os.PathLike[str] | TextIO | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    actions: Sequence[ActionRule] = (),
    progress: Callable[[CrawlStatistics], None] | None = None,
    progress_interval: float = 0.5,
    workers: int | None = None,
    replace: bool = True,
    outage_after: int | None = 20,
    sinks: Sequence[CrawlSink] = (),
    dry_run: bool = False,
    renamed: Mapping[str, str] | None = None,
) -> CrawlSummary:
    """Walk from ``roots`` and return the summary: ``Crawler(nav, roots, ...).run()``, with
    :class:`Crawler`'s options (typed here too, so a misspelt one is a type error).

    >>> summary = await crawl(nav, ["Organization"], output="org.jsonl")  # doctest: +SKIP

    Raises:
        ValueError, OSError: as for :class:`Crawler`.
    """
    crawler = Crawler(
        nav,
        roots,
        scope=scope,
        output=output,
        state_dir=state_dir,
        actions=actions,
        progress=progress,
        progress_interval=progress_interval,
        workers=workers,
        replace=replace,
        outage_after=outage_after,
        sinks=sinks,
        dry_run=dry_run,
        renamed=renamed,
    )
    return await crawler.run()
