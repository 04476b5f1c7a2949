"""The crawl record format: JSON Lines, its writer's builders and encoder, and its reader.

This module is the one owner of the format: :class:`~halnav.Crawler` builds every record
with the ``*_record`` functions below and encodes it with :func:`encode_line`; everyone who
reads a walk's output (``halnav graph``, the demo, the tests) uses :func:`read_records` or
:func:`parse_record`.

Output: JSON Lines, UTF-8, one object per line, in completion order
    document::

        {"url": str,            # canonical self (else the canonical fetched URL)
         "status": int,         # HTTP status of the response that carried it
         "depth": int, "parent": str | null, "rel": str | null,  # how it was reached
         "embedded": bool,      # true: a page item / _embedded resource, not fetched itself
         "state": {...},        # the fields without _links, _embedded, _actions, _templates,
                                # and without a Veeam page's "results"
         "links": {rel: [href, ...]},                      # every link, templated ones too
         "actions": {name: {"method": str, "uri": str}},
         "items": [url, ...],   # only on pages: the items that have their own record
         "inline": [{"rel", "state", "links", "actions"}, ...],  # only when there are
                                # self-less items / embedded resources
         "deprecated": {"deprecation": str, "sunset": str, "link": str},  # only when the
                                # answer had Deprecation / Sunset headers (any of the three)
         "requested": str}      # only when the URL it was fetched by is not "url" (its
                                # self named another): the graph's alias

    failure (a fetch that failed; the walk goes on)::

        {"url": str, "depth": int, "parent": str | null, "rel": str | null,
         "error": {"type": "HTTPStatusError", "status": 404 | null, "message": str}}

    action (see :class:`~halnav.ActionRule`)::

        {"url": str,            # the document the action ran on
         "action": str,         # the rule's name, as given
         "status": int,
         "result": {...},       # JSON answer: its state (a page's: {"offset", "limit"})
         "links": {rel: [href, ...]},                  # only when the answer has links
         "items": [{"url": str | null, "state": {...}}, ...],  # only for a paged answer:
                                # the items of ALL its pages (e.g. every search hit)
         "truncated": true}     # only when ActionRule.max_items left items out
        {"url": str, "action": str, "status": int,
         "result": {"path": str | null, "bytes": int, "content_type": str}}   # binary
        {"url": str, "action": str,
         "error": {"type": str, "status": int | null, "message": str}}        # failed

    ``type`` is the exception class name and ``message`` its text (halnav
    error messages never contain credentials).

Strict JSON, never fatal
    NaN and infinities are written as ``null``, U+2028/U+2029 as escapes, and a string
    that is not valid Unicode (a lone surrogate a server sent as a JSON escape) as its
    JSON escape: every line parses with a strict JSON reader.

Reading
    A line with ``"action"`` is an :class:`ActionRecord`, else one with ``"error"`` a
    :class:`FailureRecord`, else a :class:`DocumentRecord`. The reader is tolerant
    where that costs nothing: unknown keys are ignored and a field a hand-written
    record leaves out gets its documented default; a line that is not a JSON object
    with a string ``"url"``, or whose fields have the wrong JSON type, is a
    ``ValueError`` naming ``path:line``. The values hold the decoded JSON as is (no
    copies): treat them as read-only.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final, TypeAlias

import attrs

from ._model import Document
from .errors import HTTPStatusError

__all__ = [
    "ActionRecord",
    "DocumentRecord",
    "ErrorInfo",
    "FailureRecord",
    "Record",
    "action_failure_record",
    "action_record",
    "document_record",
    "download_result",
    "encode_line",
    "failure_record",
    "inline_record",
    "parse_record",
    "plain",
    "read_records",
]


# -- writing -----------------------------------------------------------------------------


def plain(value: object) -> object:
    """JSON fallback: documents hold read-only mappings (MappingProxyType)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# One encoder for every record: json.dumps(..., separators=...) would build a new one per call.
# allow_nan=False: NaN/Infinity are not JSON; such records go through _strict below.
_encode_fast = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=plain, allow_nan=False
).encode


def _strict(value: object) -> object:
    """``value`` with NaN and infinities as ``null`` (strict JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return value


def encode_line(record: Mapping[str, Any]) -> bytes:
    """One record as a UTF-8 JSON line, newline included: strict JSON, never fatal.

    NaN and infinities become ``null``; U+2028/U+2029 are escaped (JavaScript readers split
    lines there); a string that is not valid Unicode (a lone surrogate such as ``"\\ud800"``,
    which a server can send as a JSON escape) is written as its JSON escape, not refused.
    """
    try:
        text = _encode_fast(record)
    except ValueError:
        text = _encode_fast(_strict(record))
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        # Surrogates only occur inside JSON strings: "\\udXXX" there is a valid JSON escape.
        return text.encode("utf-8", "backslashreplace") + b"\n"


def _links(doc: Document) -> dict[str, list[str]]:
    return {rel: [link.href for link in links] for rel, links in doc.links.items()}


def _actions(doc: Document) -> dict[str, dict[str, str]]:
    return {
        name: {"method": action.method, "uri": action.target}
        for name, action in doc.actions.items()
    }


def _error(exc: BaseException) -> dict[str, Any]:
    status = exc.status if isinstance(exc, HTTPStatusError) else None
    return {"type": type(exc).__name__, "status": status, "message": str(exc)}


def document_record(  # noqa: PLR0917  called per document: positional arguments are cheaper
    doc: Document,
    url: str,
    status: int,
    depth: int,
    parent: str | None,
    rel: str | None,
    embedded: bool,
    items: Sequence[str] | None,
    inline: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The record of ``doc``, written under ``url``; ``items``: the page's item URLs (None:
    not a page); ``inline``: its self-less items and embedded resources (:func:`inline_record`)."""
    record: dict[str, Any] = {
        "url": url,
        "status": status,
        "depth": depth,
        "parent": parent,
        "rel": rel,
        "embedded": embedded,
        "state": doc.state,
        "links": _links(doc),
        "actions": _actions(doc) if doc.actions else {},
    }
    if items is not None:
        record["items"] = items
    if inline:
        record["inline"] = inline
    if doc.deprecated is not None:
        record["deprecated"] = dict(doc.deprecated)
    return record


def inline_record(rel: str, doc: Document) -> dict[str, Any]:
    """A page item or embedded resource without ``self``, kept in its carrier's record."""
    return {"rel": rel, "state": doc.state, "links": _links(doc), "actions": _actions(doc)}


def failure_record(
    url: str, depth: int, parent: str | None, rel: str | None, exc: BaseException
) -> dict[str, Any]:
    """The record of a fetch of ``url`` that failed with ``exc``."""
    return {"url": url, "depth": depth, "parent": parent, "rel": rel, "error": _error(exc)}


def download_result(path: str | None, size: int, content_type: str) -> dict[str, Any]:
    """The ``result`` of an action whose answer was binary (streamed to ``path``)."""
    return {"path": path, "bytes": size, "content_type": content_type}


def action_record(
    url: str,
    action: str,
    status: int,
    result: Mapping[str, Any],
    answer: Document | None,
    *,
    items: Sequence[Document] = (),
    truncated: bool = False,
) -> dict[str, Any]:
    """The record of the action ``action`` on ``url``: ``result`` is the JSON answer's
    state or a :func:`download_result`; ``answer`` the JSON answer (its links are kept),
    None for a binary one; ``items`` the items of every page of a paged answer
    (``truncated``: a cap left some out)."""
    record: dict[str, Any] = {"url": url, "action": action, "status": status, "result": result}
    if answer is not None and answer.links:
        record["links"] = _links(answer)
    if items:
        record["items"] = [{"url": item.self_url, "state": item.state} for item in items]
    if truncated:
        record["truncated"] = True
    return record


def action_failure_record(url: str, action: str, exc: BaseException) -> dict[str, Any]:
    """The record of the action ``action`` on ``url`` that failed with ``exc``."""
    return {"url": url, "action": action, "error": _error(exc)}


# -- reading -----------------------------------------------------------------------------

_NO_FIELDS: Final[Mapping[str, Any]] = MappingProxyType({})


@attrs.frozen
class ErrorInfo:
    """The ``error`` of a failure or failed action: exception class name, HTTP status, text."""

    type: str
    status: int | None
    message: str


@attrs.frozen
class DocumentRecord:
    """A document's record (see the module docstring for each field).

    Fields a hand-written record leaves out are ``None`` (``status``, ``depth``,
    ``parent``, ``rel``, ``items``: not a page), ``False`` (``embedded``) or empty.

    >>> rec = parse_record('{"url": "https://h/o", "status": 200, "state": {"id": 1}}')
    >>> rec.url, rec.status, dict(rec.state), rec.items
    ('https://h/o', 200, {'id': 1}, None)
    """

    url: str
    status: int | None
    depth: int | None
    parent: str | None
    rel: str | None
    embedded: bool
    state: Mapping[str, Any]
    links: Mapping[str, Sequence[str]]
    actions: Mapping[str, Mapping[str, Any]]
    items: Sequence[str] | None
    inline: Sequence[Mapping[str, Any]]
    deprecated: Mapping[str, str] | None = None
    """The ``Deprecation``/``Sunset`` headers (and ``deprecation`` link) its answer had."""
    requested: str | None = None
    """The URL it was fetched by, when that is not ``url`` (its ``self`` said otherwise)."""


@attrs.frozen
class FailureRecord:
    """A failed fetch: where it was reached and the ``error``."""

    url: str
    depth: int | None
    parent: str | None
    rel: str | None
    error: ErrorInfo


@attrs.frozen
class ActionRecord:
    """An action that ran on the document ``url``: ``result`` (and, for a JSON answer,
    ``links`` and the ``items`` of all its pages), or ``error`` when it failed;
    ``truncated`` when a cap (``ActionRule.max_items``) left items out.

    ``result`` is the JSON answer's state, or for a binary answer
    ``{"path", "bytes", "content_type"}``; None when the action failed.
    """

    url: str
    action: str
    status: int | None
    result: Mapping[str, Any] | None
    links: Mapping[str, Sequence[str]]
    items: Sequence[Mapping[str, Any]] | None
    error: ErrorInfo | None
    truncated: bool = False

    @property
    def failed(self) -> bool:
        """True when the action failed (``error`` says how)."""
        return self.error is not None


Record: TypeAlias = DocumentRecord | FailureRecord | ActionRecord


class _NotARecordError(ValueError):
    """A line that is not a crawl record; the message says why."""


_EXPECTED: Final[Mapping[type, str]] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
}
_PLURAL: Final[Mapping[type, str]] = {str: "strings", dict: "objects"}


def _json_type(value: object) -> str:
    """What ``value`` is, in JSON's words."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _get(data: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
    """``data[key]`` when it is a ``kind``; ``default`` when it is absent or null."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    expected = _EXPECTED.get(kind, "a list")
    raise _NotARecordError(f"not a crawl record: {key!r} is {_json_type(value)}, not {expected}")


def _hrefs(data: Mapping[str, Any]) -> Mapping[str, Sequence[str]]:
    links: Mapping[str, Any] = _get(data, "links", dict, _NO_FIELDS)
    for rel, hrefs in links.items():
        if not isinstance(hrefs, list) or not all(isinstance(href, str) for href in hrefs):
            raise _NotARecordError(f"not a crawl record: links[{rel!r}] is not a list of hrefs")
    return links


def _all(values: Iterator[Any] | Sequence[Any], kind: type, key: str) -> None:
    if not all(isinstance(value, kind) for value in values):
        raise _NotARecordError(
            f"not a crawl record: {key!r} holds other things than {_PLURAL[kind]}"
        )


def _error_info(error: Mapping[str, Any]) -> ErrorInfo:
    return ErrorInfo(
        type=_get(error, "type", str, ""),
        status=_get(error, "status", int),
        message=_get(error, "message", str, ""),
    )


def _document(data: Mapping[str, Any], url: str) -> DocumentRecord:
    actions: Mapping[str, Any] = _get(data, "actions", dict, _NO_FIELDS)
    _all(iter(actions.values()), dict, "actions")
    items: list[Any] | None = _get(data, "items", list)
    if items is not None:
        _all(items, str, "items")
    inline: list[Any] = _get(data, "inline", list, [])
    _all(inline, dict, "inline")
    return DocumentRecord(
        url=url,
        status=_get(data, "status", int),
        depth=_get(data, "depth", int),
        parent=_get(data, "parent", str),
        rel=_get(data, "rel", str),
        embedded=_get(data, "embedded", bool, False),
        state=_get(data, "state", dict, _NO_FIELDS),
        links=_hrefs(data),
        actions=actions,
        items=items,
        inline=inline,
        deprecated=_get(data, "deprecated", dict),
        requested=_get(data, "requested", str),
    )


def _action(data: Mapping[str, Any], url: str) -> ActionRecord:
    items: list[Any] | None = _get(data, "items", list)
    if items is not None:
        _all(items, dict, "items")
    error: Mapping[str, Any] | None = _get(data, "error", dict)
    return ActionRecord(
        url=url,
        action=_get(data, "action", str, ""),
        status=_get(data, "status", int),
        result=_get(data, "result", dict),
        links=_hrefs(data),
        items=items,
        error=None if error is None else _error_info(error),
        truncated=_get(data, "truncated", bool, False),
    )


def _failure(data: Mapping[str, Any], url: str) -> FailureRecord:
    error: Mapping[str, Any] | None = _get(data, "error", dict)
    if error is None:
        raise _NotARecordError("not a crawl record: 'error' is null")
    return FailureRecord(
        url=url,
        depth=_get(data, "depth", int),
        parent=_get(data, "parent", str),
        rel=_get(data, "rel", str),
        error=_error_info(error),
    )


def parse_record(line: str | bytes) -> Record:
    """One line of a walk's output as a typed record (see the module docstring).

    >>> parse_record('{"url": "https://h/x", "error": {"type": "HTTPStatusError", '
    ...              '"status": 404, "message": "404 Not Found"}}').error.status
    404

    Raises:
        ValueError: the line is not JSON, or not a crawl record.
    """
    try:
        data = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise _NotARecordError(f"not a JSON line ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise _NotARecordError("not a crawl record")
    url: str = data["url"]
    if "action" in data:
        return _action(data, url)
    if "error" in data:
        return _failure(data, url)
    return _document(data, url)


def read_records(
    path: str | os.PathLike[str], *, on_partial_line: Callable[[int], None] | None = None
) -> Iterator[Record]:
    """The records of a walk's JSON Lines output at ``path``, one at a time, in file order.

    Blank lines are skipped. The file is read as it goes (a walk's output may be large)
    and closed when the iteration ends. A walk killed without ``--state`` may leave its
    last line cut short (no newline, not JSON): with ``on_partial_line``, that line is
    skipped and its number handed to it; without, it is an error like any other.

    >>> for record in read_records("walk.jsonl"):  # doctest: +SKIP
    ...     match record:
    ...         case DocumentRecord(url=url, rel=rel): print(url, rel)
    ...         case FailureRecord(url=url, error=error): print(url, error.type)
    ...         case ActionRecord(): pass

    Raises:
        ValueError: a line is not a crawl record; the message starts with ``path:line:``.
        OSError: the file cannot be read.
    """
    with contextlib.ExitStack() as stack:
        lines: Iterable[bytes] = stack.enter_context(
            gzip.open(path, "rb") if is_gzip(path) else Path(path).open("rb")  # noqa: SIM115  the stack closes it
        )
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = parse_record(line)
            except _NotARecordError as exc:
                if on_partial_line is not None and not line.endswith(b"\n"):
                    on_partial_line(number)  # only the last line can lack its newline
                    return
                raise ValueError(f"{path}:{number}: {exc}") from None
            yield record


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether walk output at ``path`` is gzip-compressed (its name ends in ``.gz``)."""
    return str(path).lower().endswith(".gz")


class GzipMembers:
    """A binary file that writes what it is given as a series of whole gzip members.

    Each :meth:`flush` compresses the bytes written since the last one into one complete
    gzip member (RFC 1952 allows a file of several; ``gzip``, ``zcat`` and
    :func:`read_records` read them as one stream). So the file is valid gzip after every
    flush, and a resumable walk can commit "the first N bytes" and truncate a file that
    a SIGKILL cut off to exactly that: its state records the size after a flush.

    >>> out = GzipMembers(open("walk.jsonl.gz", "ab"))  # doctest: +SKIP
    """

    def __init__(self, raw: IO[bytes], *, level: int = 6) -> None:
        self._raw = raw
        self._level = level
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._pending.append(data)
        return len(data)

    def flush(self) -> None:
        if self._pending:
            packer = zlib.compressobj(self._level, zlib.DEFLATED, 31)  # 31: a gzip member
            member = packer.compress(b"".join(self._pending)) + packer.flush()
            self._pending.clear()
            self._raw.write(member)
        self._raw.flush()

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        """The size of the file in whole members (call after :meth:`flush`)."""
        return self._raw.tell()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._raw.close()
