"""What a walk tells the world: typed events, and the sinks that each own one concern.

The crawl core (:class:`~halnav.Crawler`: frontier, workers, dedup, scope) decides; every
outcome it reaches is one event, published to every sink in order, synchronously and
without an ``await`` (so a resume commit never sees half of one document):

* :class:`DocumentWritten`: a document's record is due (fetched, or a page item or
  embedded resource with a ``self``), with the self-less items it carries inline;
* :class:`FetchFailed`: a fetch failed for good in this run (transient failures that will
  be tried again are not events: they are still pending);
* :class:`ActionAnswered` and :class:`ActionFailed`: an :class:`~halnav.ActionRule` ran;
  :class:`ActionPlanned`: a dry run would have run it (nothing sent, no record);
* :class:`LinkSkipped`: a link the scope held back because it leads to another origin.

The sinks here are :class:`RecordSink` (the JSON Lines output: the one place that turns
events into records, through :mod:`halnav._records`, and owns replace-versus-append of the
output file) and :class:`Tally` (the counters behind statistics, the summary and a
resumed walk's totals). ``Crawler(sinks=...)`` adds your own: any object with an
``event(event)`` method (:class:`CrawlSink`), called for every event of the walk.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, TextIO

from ._model import ActionRequest, Document
from ._records import (
    GzipMembers,
    action_failure_record,
    action_record,
    document_record,
    encode_line,
    failure_record,
    inline_record,
    is_gzip,
)

__all__ = [
    "ActionAnswered",
    "ActionFailed",
    "ActionPlanned",
    "CrawlEvent",
    "CrawlSink",
    "DocumentWritten",
    "FetchFailed",
    "LinkSkipped",
    "RecordSink",
    "Tally",
]


class DocumentWritten(NamedTuple):
    """``document`` is written under the identity ``key`` (its canonical ``self``, else the
    canonical URL it was fetched from). ``status`` is the HTTP status of the response that
    carried it; ``embedded`` is true for page items and embedded resources; ``page`` the
    keys of the items that are documents of their own (pages only, else None); ``inline``
    the ``(rel, item)`` pairs of the items without ``self``; ``requested`` the URL it was
    fetched by when that is not ``key`` (an alias, as the live graph has it), else None."""

    document: Document
    key: str
    status: int
    depth: int
    parent: str | None
    rel: str | None
    embedded: bool
    page: Sequence[str] | None
    inline: Sequence[tuple[str, Document]]
    requested: str | None = None


class FetchFailed(NamedTuple):
    """The fetch of ``url`` (reached from ``parent`` through ``rel``) failed with ``error``."""

    url: str
    depth: int
    parent: str | None
    rel: str | None
    error: Exception


class ActionAnswered(NamedTuple):
    """The action ``action`` ran on ``url``: ``result`` is the JSON answer's state or a
    download's ``{"path", "bytes", "content_type"}``; ``answer`` the JSON answer (None for a
    binary one); ``exported`` the bytes written to an export file; ``items`` every item of
    a paged answer, all its pages (search hits), and ``truncated`` whether the rule's
    ``max_items`` left some out."""

    url: str
    action: str
    status: int
    result: Mapping[str, Any]
    answer: Document | None
    exported: int
    items: Sequence[Document] = ()
    truncated: bool = False


class ActionFailed(NamedTuple):
    """The action ``action`` on ``url`` failed with ``error``."""

    url: str
    action: str
    error: Exception


class ActionPlanned(NamedTuple):
    """A dry run (``Crawler(dry_run=True)``) would run the action ``action`` on ``url``
    with ``request``; nothing was sent."""

    url: str
    action: str
    request: ActionRequest


class LinkSkipped(NamedTuple):
    """A link from ``parent`` through ``rel`` to ``href`` was not followed: ``origin`` is
    not one of the walk's (``Scope(same_origin=False)`` follows it)."""

    href: str
    rel: str
    parent: str
    origin: str


CrawlEvent = (
    DocumentWritten | FetchFailed | ActionAnswered | ActionFailed | ActionPlanned | LinkSkipped
)


class CrawlSink(Protocol):
    """Anything that takes the events of a walk. ``event`` runs inside the walk's event
    loop, between two awaits: it must be quick and must not block (hand slow work to a
    task or a thread). An exception it raises ends the walk."""

    def event(self, event: CrawlEvent, /) -> None: ...


class Tally:
    """The counters of a walk: what statistics, the summary and the resume state report.

    Counts include the earlier runs of a resumed walk (:meth:`restore`); ``run_documents``
    only this run's.
    """

    __slots__ = (
        "action_failures",
        "action_items",
        "actions",
        "bytes_exported",
        "deprecated",
        "documents",
        "failures",
        "failures_by_type",
        "offsite",
        "planned",
        "run_documents",
        "truncated",
    )

    def __init__(self) -> None:
        self.documents = 0
        self.run_documents = 0
        self.deprecated = 0  # this run's documents whose answer said Deprecation/Sunset
        self.failures = 0
        self.actions = 0
        self.action_failures = 0
        self.bytes_exported = 0
        self.failures_by_type: Counter[str] = Counter()
        self.offsite: Counter[str] = Counter()
        self.action_items: Counter[str] = Counter()
        self.planned = 0
        self.truncated = 0  # action answers a rule's max_items cut short

    def event(self, event: CrawlEvent) -> None:
        if type(event) is DocumentWritten:
            self.documents += 1
            self.run_documents += 1
            if event.document.deprecated is not None:
                self.deprecated += 1
        elif type(event) is FetchFailed:
            self.failures += 1
            self.failures_by_type[type(event.error).__name__] += 1
        elif type(event) is ActionAnswered:
            self.actions += 1
            self.bytes_exported += event.exported
            if event.items:
                self.action_items[event.action] += len(event.items)
            if event.truncated:
                self.truncated += 1
        elif type(event) is ActionFailed:
            self.action_failures += 1
        elif type(event) is LinkSkipped:
            self.offsite[event.origin] += 1
        elif type(event) is ActionPlanned:
            self.planned += 1

    def counters(self) -> dict[str, Any]:
        """What the resume state keeps (JSON-able)."""
        return {
            "documents": self.documents,
            "failures": self.failures,
            "actions": self.actions,
            "action_failures": self.action_failures,
            "bytes_exported": self.bytes_exported,
            "failures_by_type": dict(self.failures_by_type),
            "action_items": dict(self.action_items),
            "truncated": self.truncated,
        }

    def restore(self, counters: Mapping[str, Any], *, retried: Mapping[str, int]) -> None:
        """Continue from a stored walk's :meth:`counters`; ``retried`` counts, by error
        type, the failures whose fetch this run tries again (their record stays in the
        output, but they are not failures of the walk unless they fail again)."""
        self.documents = int(counters.get("documents", 0))
        self.failures = int(counters.get("failures", 0)) - sum(retried.values())
        self.actions = int(counters.get("actions", 0))
        self.action_failures = int(counters.get("action_failures", 0))
        self.bytes_exported = int(counters.get("bytes_exported", 0))
        self.failures_by_type.update(counters.get("failures_by_type", {}))
        self.failures_by_type.subtract(retried)
        self.failures_by_type += Counter()  # drops the types that reached zero
        self.action_items.update(counters.get("action_items", {}))
        self.truncated = int(counters.get("truncated", 0))


class RecordSink:
    """The JSON Lines output of a walk: every event becomes one record (LinkSkipped none).

    ``output`` is a path (UTF-8 bytes; ``.gz``: gzip, one member per flush, so that every
    committed offset ends a member) or a text stream written as is. A path is appended to,
    or with ``replace`` truncated - when the first record is written, not before: a walk
    that cannot start leaves the previous output as it was. :meth:`sync` makes what is
    written durable and says how long the file is (the resume state keeps that offset).
    """

    __slots__ = ("_buffer", "_file", "_path", "_replace", "_stream", "written")

    def __init__(self, output: Path | TextIO, *, replace: bool = False, buffer: int) -> None:
        self._path = output if isinstance(output, Path) else None
        self._stream = None if isinstance(output, Path) else output
        self._replace = replace
        self._file: IO[bytes] | GzipMembers | None = None
        self._buffer = buffer
        self.written = 0  # records since the last sync

    @property
    def path(self) -> Path | None:
        return self._path

    def open(self, *, resumed: bool) -> None:
        """Open a path for appending now (a resumed walk, or no ``replace``); a replaced
        output is opened (and truncated) by its first record."""
        if self._path is not None and (resumed or not self._replace):
            self._replace = False
            self._open()

    def _open(self) -> None:
        assert self._path is not None
        raw = self._path.open("wb" if self._replace else "ab", buffering=self._buffer)
        self._file = GzipMembers(raw) if is_gzip(self._path) else raw

    def event(self, event: CrawlEvent) -> None:
        if type(event) is DocumentWritten:
            doc, key, status, depth, parent, rel, embedded, page, inline, requested = event
            record = document_record(
                doc,
                key,
                status,
                depth,
                parent,
                rel,
                embedded,
                page,
                [inline_record(item_rel, item) for item_rel, item in inline],
            )
            if requested is not None:
                record["requested"] = requested
        elif type(event) is FetchFailed:
            record = failure_record(event.url, event.depth, event.parent, event.rel, event.error)
        elif type(event) is ActionAnswered:
            record = action_record(
                event.url,
                event.action,
                event.status,
                event.result,
                event.answer,
                items=event.items,
                truncated=event.truncated,
            )
        elif type(event) is ActionFailed:
            record = action_failure_record(event.url, event.action, event.error)
        else:
            return
        self.write(encode_line(record))

    def write(self, line: bytes) -> None:
        self.written += 1
        if self._file is None and self._path is not None:
            self._open()
        if self._file is not None:
            self._file.write(line)
        elif self._stream is not None:
            self._stream.write(line.decode())

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
        elif self._stream is not None:
            self._stream.flush()

    def sync(self) -> int | None:
        """Flush and fsync the file; its length in bytes (None: nothing opened yet)."""
        self.written = 0
        if self._file is None:
            return None
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
