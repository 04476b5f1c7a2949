"""Bytes per document of ``halnav._graph.Graph`` against a naive dict, and add() time.

The documents look like a Veeam walk of mailbox folders::

    https://vbo.example:4443/v5/restoresessions/<guid>/organization/mailboxes/<guid>/folders/<id>

with three links each: ``self``, ``mailbox`` (the parent) and ``items`` (the
folder's items, a node that is linked but not fetched). Folder ids are
URL-safe base64 with a ``%3D`` pad, as Veeam sends them.

The baseline is what a naive crawler keeps: ``dict[url, list[(rel, url)]]``
whose URL strings are distinct objects per occurrence, as ``json.loads`` makes
them (rels are shared, which favours the baseline).

    python benchmarks/graph_memory.py --docs 1000000
    python benchmarks/graph_memory.py --docs 200000 --json
    python benchmarks/graph_memory.py --docs 100000 --tracemalloc
    python benchmarks/graph_memory.py --pages 5000      # add() of 30-item pages

``--pages N`` times ``Graph.add(page, request_url=...)`` on N distinct parsed
Veeam item pages (30 items each with ``self``/``folder``/``mailbox`` links and
three actions; page links ``first``/``prev``/``self``/``next``), the shape
the navigator indexes on every page of a mailbox walk.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import random
import sys
import time
import tracemalloc
import types
import uuid
from collections.abc import Callable, Iterator
from types import MappingProxyType

import halnav
from halnav._graph import Graph
from halnav._model import Document, Link

ORIGIN = "https://vbo.example:4443"
ROOT = f"{ORIGIN}/v5/restoresessions"
MAILBOXES_PER_SESSION = 40
FOLDERS_PER_MAILBOX = 50
BATCH = 1000


def documents(n_docs: int, *, seed: int = 1) -> Iterator[Document]:
    """``n_docs`` folder documents, made one at a time (deterministic for ``seed``)."""
    rng = random.Random(seed)
    session = mailbox = ""
    for i in range(n_docs):
        if i % (MAILBOXES_PER_SESSION * FOLDERS_PER_MAILBOX) == 0:
            session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if i % FOLDERS_PER_MAILBOX == 0:
            mailbox = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        raw = base64.urlsafe_b64encode(rng.getrandbits(264).to_bytes(33, "big")).decode()
        folder = "AAMkA" + raw[:38] + "%3D"
        # Each href is built anew, like the distinct strings json.loads returns.
        url = f"{ROOT}/{session}/organization/mailboxes/{mailbox}/folders/{folder}"
        mailbox_href = f"{ROOT}/{session}/organization/mailboxes/{mailbox}"
        self_href = f"{mailbox_href}/folders/{folder}"
        items_href = f"{ROOT}/{session}/organization/mailboxes/{mailbox}/folders/{folder}/items"
        links = {
            "self": (Link(self_href, "self", url),),
            "mailbox": (Link(mailbox_href, "mailbox", url),),
            "items": (Link(items_href, "items", url),),
        }
        yield Document(url=url, links=MappingProxyType(links))


def deep_sizeof(root: object) -> int:
    """``sys.getsizeof`` summed over everything ``root`` reaches, each object once.

    Follows dicts, lists, tuples, sets and ``__slots__``/``__dict__``; skips
    None, bools, types, functions and the small ints CPython caches. Like
    tracemalloc it counts requested sizes, not allocator rounding.
    """
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        ident = id(obj)
        if ident in seen:
            continue
        seen.add(ident)
        kind = type(obj)
        if obj is None or kind is bool or isinstance(obj, _SKIP):
            continue
        if kind is int and -5 <= obj <= 256:  # type: ignore[operator]  # narrowed by kind
            continue
        total += sys.getsizeof(obj)
        if kind is str or kind is int or kind is float:
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            for cls in kind.__mro__:
                slots = getattr(cls, "__slots__", ())
                stack.extend(getattr(obj, slot) for slot in slots if hasattr(obj, slot))
            if hasattr(obj, "__dict__"):
                stack.append(obj.__dict__)
    return total


_SKIP = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def _traced(build: Callable[[], object]) -> int:
    """Bytes still allocated after ``build()`` ran (the result is kept alive while measuring)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def _build_graph(n_docs: int) -> tuple[Graph, float]:
    """A graph of ``n_docs`` documents and the CPU seconds spent inside ``Graph.add``.

    Documents are made in batches outside the clock and dropped after use.
    """
    graph = Graph()
    add = graph.add
    spent = 0.0
    docs = documents(n_docs)
    gc.disable()  # the graph holds no cycles; keep collector pauses out of the clock
    try:
        while True:
            batch = [doc for _, doc in zip(range(BATCH), docs, strict=False)]
            if not batch:
                break
            # CPU time, not wall time: the box may be shared, and add() never waits.
            start = time.process_time()
            for doc in batch:
                add(doc, request_url=doc.url)
            spent += time.process_time() - start
    finally:
        gc.enable()
    return graph, spent


def _build_baseline(n_docs: int) -> dict[str, list[tuple[str, str]]]:
    table: dict[str, list[tuple[str, str]]] = {}
    for doc in documents(n_docs):
        table[doc.url] = [(link.rel, link.href) for links in doc.links.values() for link in links]
    return table


def measure(n_docs: int = 1_000_000, *, method: str = "sizeof") -> dict[str, float]:
    """Build a graph and the baseline from ``n_docs`` documents; report bytes and time per doc.

    ``method="sizeof"`` (the default) sums ``sys.getsizeof`` over each structure;
    ``method="tracemalloc"`` measures what building it left allocated, which is
    exact but about 15x slower here (tracemalloc costs microseconds per allocation).
    ``add_us_per_doc`` is always timed without tracing.
    """
    if method == "tracemalloc":
        graph_bytes = _traced(lambda: _build_graph(n_docs)[0])
        baseline_bytes = _traced(lambda: _build_baseline(n_docs))
        graph, add_seconds = _build_graph(n_docs)
    elif method == "sizeof":
        graph, add_seconds = _build_graph(n_docs)
        graph_bytes = deep_sizeof(graph)
        baseline_bytes = deep_sizeof(_build_baseline(n_docs))
    else:
        raise ValueError(f"method must be 'sizeof' or 'tracemalloc', not {method!r}")
    stats = graph.statistics()
    return {
        "docs": float(n_docs),
        "graph_bytes_per_doc": graph_bytes / n_docs,
        "baseline_bytes_per_doc": baseline_bytes / n_docs,
        "ratio": graph_bytes / baseline_bytes,
        "add_us_per_doc": add_seconds / n_docs * 1e6,
        "nodes_per_doc": stats.nodes / n_docs,
        "edges_per_doc": stats.edges / n_docs,
    }


# -- pages of items ---------------------------------------------------------------

PAGE_ITEMS = 30
FOLDERS_PER_PAGE_MAILBOX = 8
PAGES_PER_MAILBOX = 20


def _veeam_id(rng: random.Random) -> str:
    raw = base64.urlsafe_b64encode(rng.getrandbits(264).to_bytes(33, "big")).decode()
    return "AAMkA" + raw[:38] + "%3D"


def page_bodies(n_pages: int, *, seed: int = 2) -> Iterator[tuple[bytes, str]]:
    """``n_pages`` Veeam item pages as (JSON body, request URL), as the simulator serves them."""
    rng = random.Random(seed)
    session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    mailbox = ""
    folders: list[str] = []
    for page in range(n_pages):
        if page % PAGES_PER_MAILBOX == 0:
            mailbox = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            folders = [_veeam_id(rng) for _ in range(FOLDERS_PER_PAGE_MAILBOX)]
        mailbox_url = f"{ROOT}/{session}/organization/mailboxes/{mailbox}"
        items_url = f"{mailbox_url}/items"
        offset = (page % PAGES_PER_MAILBOX) * PAGE_ITEMS
        results = []
        for _ in range(PAGE_ITEMS):
            item = f"{items_url}/{_veeam_id(rng)}"
            results.append(
                {
                    "id": item.rpartition("/")[2],
                    "subject": "Quarterly report",
                    "itemClass": "IPM.Note",
                    "_links": {
                        "self": {"href": item},
                        "folder": {"href": f"{mailbox_url}/folders/{rng.choice(folders)}"},
                        "mailbox": {"href": mailbox_url},
                    },
                    "_actions": {
                        name: {"uri": f"{item}/action", "method": "POST"}
                        for name in ("savetoMsg", "exporttoPst", "restoretoOriginallocation")
                    },
                }
            )
        links = {
            name: {"href": f"{items_url}?offset={at}&limit={PAGE_ITEMS}"}
            for name, at in (
                ("first", 0),
                ("self", offset),
                ("next", offset + PAGE_ITEMS),
                ("prev", offset - PAGE_ITEMS),
            )
            if at >= 0
        }
        body = {"offset": offset, "limit": PAGE_ITEMS, "results": results, "_links": links}
        yield json.dumps(body).encode(), links["self"]["href"]


def measure_pages(n_pages: int = 5000) -> dict[str, float]:
    """CPU time of ``Graph.add(page, request_url=...)`` per page and per document (page + items).

    Each page is parsed outside the clock and added right after, as the navigator
    does (so it is still in the CPU caches); the parse is not the graph's cost.
    """
    graph = Graph()
    add = graph.add
    parse = halnav.parse
    clock = time.process_time
    spent = 0.0
    gc.disable()
    try:
        for body, url in page_bodies(n_pages):
            page = parse(body, url)
            start = clock()
            add(page, request_url=url)
            spent += clock() - start
    finally:
        gc.enable()
    stats = graph.statistics()
    docs = n_pages * (1 + PAGE_ITEMS)
    return {
        "pages": float(n_pages),
        "add_us_per_page": spent / n_pages * 1e6,
        "add_us_per_doc": spent / docs * 1e6,
        "nodes_per_doc": stats.nodes / docs,
        "edges_per_doc": stats.edges / docs,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--docs N`` (or ``--pages N``), ``--json``, ``--tracemalloc``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="measure with tracemalloc instead of a getsizeof walk (slow: minutes at 1e6)",
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=0,
        help="instead: time add() of this many parsed 30-item Veeam pages",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.pages:
        pages = measure_pages(args.pages)
        if args.json:
            print(json.dumps(pages, indent=2))
            return
        print(f"pages (30 items)     {args.pages:>12,}")
        print(f"add() CPU us/page    {pages['add_us_per_page']:>12.2f}")
        print(f"add() CPU us/doc     {pages['add_us_per_doc']:>12.2f}   (page + items)")
        print(f"nodes, edges / doc   {pages['nodes_per_doc']:>6.2f} {pages['edges_per_doc']:>5.2f}")
        print(f"wall seconds         {time.perf_counter() - started:>12.1f}")
        return
    result = measure(args.docs, method="tracemalloc" if args.tracemalloc else "sizeof")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    method = "tracemalloc" if args.tracemalloc else "getsizeof walk"
    print(f"documents            {args.docs:>12,}   (bytes by {method})")
    print(f"graph bytes/doc      {result['graph_bytes_per_doc']:>12.1f}")
    print(f"baseline bytes/doc   {result['baseline_bytes_per_doc']:>12.1f}")
    print(f"ratio graph/baseline {result['ratio']:>12.3f}   (goal <= 0.5)")
    print(f"add() CPU us/doc     {result['add_us_per_doc']:>12.2f}")
    print(f"nodes, edges / doc   {result['nodes_per_doc']:>6.2f} {result['edges_per_doc']:>5.2f}")
    print(f"wall seconds         {time.perf_counter() - started:>12.1f}")


if __name__ == "__main__":
    main()
