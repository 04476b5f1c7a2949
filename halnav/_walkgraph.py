"""A walk's link graph rebuilt from its records, offline (``halnav graph walk.jsonl``).

The records are the walk's lasting output; the graph a walk holds in memory is gone when it
ends (or was never made: ``graph=False``). This reads the records back into a
:class:`~halnav.Graph`, with the names a person would look for (a mailbox's e-mail, an
item's subject) as labels for the drawings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ._convert import parse
from ._graph import Graph
from ._model import Document
from ._records import DocumentRecord, FailureRecord, read_records

__all__ = ["RecordsGraph", "graph_from_records"]

_LABEL_MAX: Final = 60


@attrs.frozen
class RecordsGraph:
    """What :func:`graph_from_records` read: the ``graph``, how many ``documents`` and
    ``failures`` the records held, and ``labels`` (URL -> name) for the drawings."""

    graph: Graph
    documents: int
    failures: int
    labels: Mapping[str, str]
    partial_line: int | None = None
    """The number of a cut-off last line that was skipped (a walk killed mid-write)."""


def graph_from_records(path: str | Path, *, key: Any = None) -> RecordsGraph:
    """Rebuild the link graph of a walk from its JSON Lines records.

    Each document record becomes a node with its links and actions, and the edge it was
    reached by (``parent``, ``rel``); failures are counted, not drawn. A cut-off last line
    (a walk killed mid-write) is skipped and named in ``partial_line``. ``key`` is the
    graph's extra canonicalisation (``Graph(key=...)``).

    >>> built = graph_from_records("walk.jsonl")           # doctest: +SKIP
    >>> built.graph.write("map.mmd", as_map=True)          # doctest: +SKIP

    Raises:
        ValueError: a line is not a crawl record (``path:line: ...``).
        OSError: the file cannot be read.
    """
    graph = Graph(key=key)
    labels: dict[str, str] = {}
    documents = failures = 0
    partial: list[int] = []
    for record in read_records(path, on_partial_line=partial.append):
        if isinstance(record, FailureRecord):
            failures += 1
        elif isinstance(record, DocumentRecord):
            doc = _document(record)
            if record.parent is not None and record.rel is not None:
                url = graph.add(
                    doc, request_url=record.requested, parent=record.parent, rel=record.rel
                )
            else:
                url = graph.add(doc, request_url=record.requested)
            if doc.title is not None:
                labels[url] = _short(doc.title)
            documents += 1
    return RecordsGraph(graph, documents, failures, labels, partial[0] if partial else None)


def _document(record: DocumentRecord) -> Document:
    links: dict[str, list[dict[str, Any]]] = {
        rel: [{"href": href, **({"templated": True} if "{" in href else {})} for href in hrefs]
        for rel, hrefs in record.links.items()
    }
    if record.items:  # a page: the live graph has an ``item`` edge to each of its items
        known = {link["href"] for link in links.get("item", ())}
        links.setdefault("item", []).extend(
            {"href": url} for url in record.items if url not in known
        )
    actions = {
        name: {"method": str(spec.get("method", "POST")), "uri": str(spec.get("uri", ""))}
        for name, spec in record.actions.items()
    }
    data = {**dict(record.state), "_links": links, "_actions": actions}
    return parse(data, record.url, lenient=True)


def _short(title: str) -> str:
    return title if len(title) <= _LABEL_MAX else title[: _LABEL_MAX - 1] + "…"
