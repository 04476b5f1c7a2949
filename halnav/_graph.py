"""The passive index of everything a walk fetched: nodes, rel edges, actions; export.

A :class:`Graph` is filled by the navigator (``graph.add(doc, request_url=...)``) and
read by the crawler, the CLI and the REPL. It does no I/O except :meth:`Graph.write`.

Storage, and why (a bulk walk puts millions of documents into one graph):

* **URLs are a path trie.** Every URL is split at its last ``/`` into a prefix and
  a tail; the prefix is itself an entry, so ``.../folders/<id>`` and
  ``.../folders/<id>/items`` share everything but their last segment. The one
  dict (``"<parent id>/<tail>"`` -> entry id) holds short keys, never a whole
  URL, and a full URL is rebuilt on demand by walking the parents. A small,
  bounded cache of recent prefixes keeps ``add()`` from walking the trie for
  siblings (a walk is local). Entries that are only path prefixes are not nodes.
* **Per-entry columns** live in ``array``/``bytearray``: parent id, flags
  (node / fetched / alias / edge target), first outgoing edge, action-set id.
* **Edges are four columns** (source, rel id, target, next edge of the same
  source): an intrusive linked list per source, so appending is O(1) and the
  duplicate check walks only that source's few edges.
* **Rels and action names are interned**; a node stores the id of its interned,
  sorted tuple of action names (most nodes share one).
* **Aliases** (a request URL that answered with another ``self``) map an entry
  to its canonical node; edges stored before the alias was known are retargeted
  lazily, on the next read.

Templated links are not edges (their href is not a resource): they are kept per
node and listed under ``"templates"`` in :meth:`Graph.to_json`. A self-less
embedded resource or page item is indexed under its JSON-pointer URL
(``parent#/_embedded/rel/0``), which :meth:`Graph.resolve` accepts verbatim.

Not thread-safe: a graph belongs to one asyncio event loop (one thread).
"""

from __future__ import annotations

import json
import os
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ._model import EMPTY, Document

__all__ = ["Graph", "GraphStatistics", "Node", "canonical_url"]

# -- canonical URLs -------------------------------------------------------------

_DEFAULT_PORTS: Final = {"http": ":80", "https": ":443"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def canonical_url(url: str) -> str:
    """The one spelling of ``url`` the graph keys nodes by.

    Lower-cases the scheme and host, drops a default port (``:80`` for http,
    ``:443`` for https) and the fragment, turns an empty path into ``/``; the
    path and query are kept byte for byte (a Veeam id's ``%3D`` stays ``%3D``).
    Idempotent, and fast for a URL that is already canonical.

    >>> canonical_url("HTTPS://VBO.example:443/v5/Jobs?id=a%3D#top")
    'https://vbo.example/v5/Jobs?id=a%3D'
    """
    # Fast path: nearly every href a server sends is already canonical.
    if url.startswith("https://"):
        start, default = 8, ":443"
    elif url.startswith("http://"):
        start, default = 7, ":80"
    else:
        return _canonical_slow(url)
    end = url.find("/", start)
    if end > start and "#" not in url:
        authority = url[start:end]
        if (
            authority == authority.lower()
            and "@" not in authority
            and "?" not in authority
            and not authority.endswith((default, ":"))
        ):
            return url
    return _canonical_slow(url)


def _canonical_slow(url: str) -> str:
    url = url.partition("#")[0]
    match = _SCHEME.match(url)
    if match is None:  # a relative reference: nothing to normalise but the fragment
        return url
    scheme = match[0][:-1].lower()
    rest = url[match.end() :]
    if not rest.startswith("//"):  # urn:, mailto:, ... have no authority
        return f"{scheme}:{rest}"
    rest = rest[2:]
    cut = len(rest)
    for stop in "/?":
        found = rest.find(stop)
        if 0 <= found < cut:
            cut = found
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    hostport = hostport.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and hostport.endswith(default):
        hostport = hostport[: -len(default)]
    if hostport.endswith(":") and not hostport.endswith("]:"):
        hostport = hostport[:-1]  # an empty port means the default one
    elif hostport.endswith("]:"):
        hostport = hostport[:-1]
    if not tail.startswith("/"):
        tail = "/" + tail
    return f"{scheme}://{userinfo}{at}{hostport}{tail}"


# -- public values ----------------------------------------------------------------


@attrs.frozen
class GraphStatistics:
    """Counts of a :class:`Graph` at one moment."""

    nodes: int  # distinct canonical URLs known (fetched or only linked)
    fetched: int  # nodes indexed from a fetched, embedded or page-item document
    edges: int
    aliases: int


@attrs.frozen
class Node:
    """One node as a value, built on demand by :meth:`Graph.node` (not what is stored)."""

    url: str
    fetched: bool
    links: tuple[tuple[str, str], ...]  # (rel, target url), outgoing, in insertion order
    actions: tuple[str, ...]


# -- the graph --------------------------------------------------------------------

_NODE: Final = 1  # a graph node (fetched or linked), not merely a path prefix
_FETCHED: Final = 2
_ALIAS: Final = 4  # resolves to another entry through Graph._aliases
_TARGET: Final = 8  # some edge points at it (so aliasing it must retarget edges)
_DEAD: Final = 0xFFFFFFFF  # source column value of an edge removed as a duplicate
_PREFIX_CACHE: Final = 4096  # recent path prefixes kept whole; cleared when full
_SUFFIXES: Final = (".json", ".dot", ".mmd", ".mermaid")


class Graph:
    """A compact index of fetched documents: nodes by canonical URL, rel edges, actions.

    ``key`` is an extra canonicalisation applied after :func:`canonical_url`
    (the Veeam profile case-folds paths); identity by default.

    >>> g = Graph()
    >>> g.add(doc, request_url="https://vbo:4443/v5/Organization")  # doctest: +SKIP
    'https://vbo:4443/v5/organization'
    >>> g.neighbors("https://vbo:4443/v5/organization", "mailboxes")  # doctest: +SKIP
    ('https://vbo:4443/v5/organization/mailboxes',)

    Not thread-safe (one asyncio loop). Reads that return iterators (``find``,
    ``edges``) must not be interleaved with ``add``.

    Raises (``node``): KeyError. (``add``): ValueError for ``parent`` without ``rel``.
    (``write``): ValueError for an unknown suffix, OSError.
    """

    __slots__ = (
        "_action_ids",
        "_action_sets",
        "_actions",
        "_aliases",
        "_dirty",
        "_dst",
        "_edge_count",
        "_fetched",
        "_flags",
        "_head",
        "_ids",
        "_key",
        "_keys",
        "_next",
        "_nodes",
        "_old_prefixes",
        "_parent",
        "_prefixes",
        "_raw_action_ids",
        "_rel",
        "_rel_ids",
        "_rel_names",
        "_src",
        "_templates",
    )

    def __init__(self, *, key: Callable[[str], str] | None = None) -> None:
        self._key = key
        # The path trie; entry 0 is the virtual root, so every real id is > 0.
        self._ids: dict[str, int] = {}  # "<parent id>/<tail>" -> entry id
        self._keys: list[str] = [""]  # entry id -> its key
        self._parent = array("I", [0])
        self._flags = bytearray(1)
        self._head = array("i", [-1])  # first outgoing edge, -1 when none
        self._actions = array("I", [0])  # action-set id, 0 = no actions
        self._prefixes: dict[str, int] = {}  # recent canonical path prefixes -> entry id
        self._old_prefixes: dict[str, int] = {}  # the generation before
        # Edges: parallel columns; next links the edges of one source, newest first.
        self._src = array("I")
        self._rel = array("I")
        self._dst = array("I")
        self._next = array("i")
        self._rel_ids: dict[str, int] = {}
        self._rel_names: list[str] = []
        self._action_sets: list[tuple[str, ...]] = [()]
        self._action_ids: dict[tuple[str, ...], int] = {(): 0}  # sorted names -> id
        self._raw_action_ids: dict[tuple[str, ...], int] = {(): 0}  # as the doc lists them
        self._aliases: dict[int, int] = {}  # alias entry -> canonical node entry
        self._templates: dict[int, tuple[tuple[str, str], ...]] = {}
        self._nodes = 0
        self._fetched = 0
        self._edge_count = 0
        self._dirty = False  # an aliased entry was an edge target: retarget before reads

    # -- interning ----------------------------------------------------------------
    def _canon(self, url: str) -> str:
        url = canonical_url(url)
        return url if self._key is None else self._key(url)

    def _entry(self, key: str, parent: int) -> int:
        ident = len(self._keys)
        self._ids[key] = ident
        self._keys.append(key)
        self._parent.append(parent)
        self._flags.append(0)
        self._head.append(-1)
        self._actions.append(0)
        return ident

    def _remember(self, prefix: str, entry: int) -> None:
        # Two generations instead of an LRU: a prefix used within the last two
        # generations survives (it is promoted on use), a one-off ages out.
        cache = self._prefixes
        if len(cache) >= _PREFIX_CACHE:
            self._old_prefixes = cache
            self._prefixes = cache = {}
        cache[prefix] = entry

    def _prefix(self, prefix: str) -> int:
        """The entry id of a canonical path prefix, creating it (the cache-miss path)."""
        entry = self._old_prefixes.get(prefix)
        if entry is None:
            # Climb to a cached (or the root) prefix, then come down creating entries;
            # iterative, not recursive: a URL may have thousands of slashes.
            tails: list[str] = []
            rest = prefix
            entry = 0
            while True:
                head, sep, tail = rest.rpartition("/")
                tails.append(tail)
                if not sep:
                    break
                cached = self._prefixes.get(head)
                if cached is None:
                    cached = self._old_prefixes.get(head)
                    if cached is not None:
                        self._remember(head, cached)
                if cached is not None:
                    entry = cached
                    break
                rest = head
            ids = self._ids
            for tail in reversed(tails):
                key = f"{entry}/{tail}"
                found = ids.get(key)
                entry = self._entry(key, entry) if found is None else found
        self._remember(prefix, entry)
        return entry

    def _intern(self, url: str) -> int:
        """The entry id of ``url`` (canonical already), creating it and its prefixes."""
        prefix, sep, tail = url.rpartition("/")
        if sep:
            parent = self._prefixes.get(prefix)
            if parent is None:
                parent = self._prefix(prefix)
        else:
            parent = 0
        key = f"{parent}/{tail}"
        entry = self._ids.get(key)
        return self._entry(key, parent) if entry is None else entry

    def _href(self, href: str) -> tuple[str, int]:
        """The canonical form of ``href`` and its entry id, creating it.

        Every cached prefix is a prefix (up to a ``/``) of a canonical URL, so
        ``cached prefix + "/" + tail`` without a fragment is canonical already: the
        common case skips :func:`canonical_url` and walks no trie. Not with a
        ``key``, whose rules this shortcut cannot know.
        """
        if self._key is None and "#" not in href:
            prefix, sep, tail = href.rpartition("/")
            if sep:
                parent = self._prefixes.get(prefix)
                if parent is not None:
                    key = f"{parent}/{tail}"
                    entry = self._ids.get(key)
                    return href, self._entry(key, parent) if entry is None else entry
        url = self._canon(href)
        return url, self._intern(url)

    def _lookup(self, url: str) -> int | None:
        """The entry id of ``url`` (canonical already), or None; creates nothing."""
        tails: list[str] = []
        rest = url
        parent: int | None = 0
        while True:
            head, sep, tail = rest.rpartition("/")
            tails.append(tail)
            if not sep:
                break
            parent = self._prefixes.get(head)
            if parent is None:
                parent = self._old_prefixes.get(head)
            if parent is not None:
                break
            rest = head
        ids = self._ids
        for tail in reversed(tails):
            parent = ids.get(f"{parent}/{tail}")
            if parent is None:
                return None
        return parent

    def _url(self, ident: int) -> str:
        keys = self._keys
        parents = self._parent
        parts = []
        while ident:
            key = keys[ident]
            parts.append(key[key.index("/") + 1 :])
            ident = parents[ident]
        parts.reverse()
        return "/".join(parts)

    def _rel_id(self, rel: str) -> int:
        ident = self._rel_ids.get(rel)
        if ident is None:
            ident = self._rel_ids[rel] = len(self._rel_names)
            self._rel_names.append(rel)
        return ident

    def _as_node(self, entry: int) -> int:
        """The node ``entry`` stands for (itself or, for an alias, its node), made a node."""
        flags = self._flags
        state = flags[entry]
        if state & _ALIAS:
            return self._aliases[entry]
        if not state & _NODE:
            flags[entry] = state | _NODE
            self._nodes += 1
        return entry

    def _edge(self, src: int, rel: int, dst: int) -> None:
        dsts = self._dst
        rels = self._rel
        nxt = self._next
        first = edge = self._head[src]
        while edge >= 0:
            if dsts[edge] == dst and rels[edge] == rel:
                return
            edge = nxt[edge]
        self._head[src] = len(dsts)
        self._src.append(src)
        rels.append(rel)
        dsts.append(dst)
        nxt.append(first)
        self._flags[dst] |= _TARGET
        self._edge_count += 1

    # -- writing ------------------------------------------------------------------
    def add(
        self,
        doc: Document,
        *,
        request_url: str | None = None,
        parent: str | None = None,
        rel: str | None = None,
    ) -> str:
        """Index ``doc`` (and its page items and embedded documents); return its node URL.

        The node is ``doc.canonical_url`` canonicalised; a ``request_url`` that
        canonicalises differently becomes an alias of it. Every non-templated
        link becomes an edge (``self`` too: a loop), every action name is
        recorded (the latest fetch wins), page items get ``item`` edges and
        embedded documents edges by their rel. ``parent``/``rel`` name the edge
        the walk followed to reach ``doc``. Adding again adds no duplicate edge.

        Raises:
            ValueError: ``parent`` is given without ``rel``.
        """
        if parent is not None and rel is None:
            raise ValueError(f"add(parent={parent!r}) needs the rel that led to {doc.url}")
        url, node = self._add(doc, False)
        if request_url is not None and request_url != url:
            alias_url, alias = self._href(request_url)
            if alias_url != url:
                self._alias(alias, node)
        if parent is not None and rel is not None:
            source = self._as_node(self._href(parent)[1])
            self._edge(source, self._rel_id(rel), node)
        return url

    def _add(self, doc: Document, embedded: bool) -> tuple[str, int]:
        # Positional on purpose: keyword calls cost time on the hot path.
        links = doc.links
        selfs = links.get("self")
        self_url = selfs[0].href if selfs else None
        if self_url is not None:
            url, entry = self._href(self_url)
        elif embedded and "#" in doc.url:  # a self-less item: its JSON pointer is its name
            base, _, pointer = doc.url.partition("#")
            url = f"{self._canon(base)}#{pointer}"
            entry = self._intern(url)
        else:
            url, entry = self._href(doc.url)
        flags = self._flags
        node = entry
        state = flags[node]
        if state & _ALIAS:  # fetched before under another self: stay with that node
            node = self._aliases[entry]
            url = self._url(node)
            state = flags[node]
        if not state & _FETCHED:
            if not state & _NODE:
                self._nodes += 1
            flags[node] = state | _NODE | _FETCHED
            self._fetched += 1
        # Its links mostly extend its own URL (".../items"): keep it as a prefix.
        if len(self._prefixes) < _PREFIX_CACHE:
            self._prefixes[url] = node
        else:
            self._remember(url, node)

        actions = doc.actions
        if actions is not EMPTY and actions:  # the parser shares EMPTY: skip len() then
            raw = tuple(actions)
            set_id = self._raw_action_ids.get(raw)
            if set_id is None:
                set_id = self._intern_actions(raw)
            self._actions[node] = set_id
        elif self._actions[node]:
            self._actions[node] = 0

        # The hot path of every fetch: _edge is inlined here on purpose.
        templates: list[tuple[str, str]] | None = None
        rel_ids = self._rel_ids
        href_entry = self._href
        fast = self._key is None
        prefixes = self._prefixes
        ids = self._ids
        head = self._head
        srcs = self._src
        rels = self._rel
        dsts = self._dst
        nxt = self._next
        added = 0
        for rel, group in links.items():
            rel_id = rel_ids.get(rel)
            if rel_id is None:
                rel_id = self._rel_id(rel)
            for link in group:
                href = link.href
                if link.templated:
                    if templates is None:
                        templates = []
                    templates.append((rel, href))
                    continue
                if href is self_url:
                    target = node
                else:
                    found = None
                    if fast and "#" not in href:  # _href's shortcut, inlined
                        prefix, sep, tail = href.rpartition("/")
                        parent = prefixes.get(prefix) if sep else None
                        if parent is not None:
                            key = f"{parent}/{tail}"
                            found = ids.get(key)
                            if found is None:
                                found = self._entry(key, parent)
                    target = href_entry(href)[1] if found is None else found
                    state = flags[target]
                    if state & _ALIAS:
                        target = self._aliases[target]
                    elif not state & _NODE:
                        flags[target] = state | _NODE
                        self._nodes += 1
                first = edge = head[node]
                while edge >= 0:
                    if dsts[edge] == target and rels[edge] == rel_id:
                        break
                    edge = nxt[edge]
                else:
                    head[node] = len(dsts)
                    srcs.append(node)
                    rels.append(rel_id)
                    dsts.append(target)
                    nxt.append(first)
                    flags[target] |= _TARGET
                    added += 1
        self._edge_count += added
        if templates is not None:
            self._templates[node] = tuple(templates)
        elif self._templates:
            self._templates.pop(node, None)

        items = doc.items
        embedded_docs = doc.embedded
        for emb_rel, docs in () if embedded_docs is EMPTY else embedded_docs.items():
            rel_id = self._rel_id(emb_rel)
            for child in docs:
                self._edge(node, rel_id, self._add(child, True)[1])
            if docs is items:  # a HAL _embedded array is also the page: index it once
                items = ()
        if items:
            rel_id = self._rel_id("item")
            for child in items:
                self._edge(node, rel_id, self._add(child, True)[1])
        return url, node

    def _intern_actions(self, raw: tuple[str, ...]) -> int:
        names = tuple(sorted(raw))
        set_id = self._action_ids.get(names)
        if set_id is None:
            set_id = self._action_ids[names] = len(self._action_sets)
            self._action_sets.append(names)
        self._raw_action_ids[raw] = set_id
        return set_id

    def _alias(self, alias: int, node: int) -> None:
        """Make entry ``alias`` resolve to node ``node``, merging what it held."""
        flags = self._flags
        current = flags[alias]
        if current & _ALIAS:
            if self._aliases[alias] == node:
                return
        elif alias == node:
            return
        else:
            if current & _NODE:
                self._nodes -= 1
            if current & _FETCHED:
                self._fetched -= 1
                if not self._actions[node]:
                    self._actions[node] = self._actions[alias]
                if alias in self._templates and node not in self._templates:
                    self._templates[node] = self._templates[alias]
            self._templates.pop(alias, None)
            self._actions[alias] = 0
            self._move_edges(alias, node)
            for other, target in self._aliases.items():  # keep aliases one hop deep
                if target == alias:
                    self._aliases[other] = node
        self._aliases[alias] = node
        flags[alias] = (current | _ALIAS) & ~(_NODE | _FETCHED)
        if current & _TARGET:
            self._dirty = True

    def _move_edges(self, src: int, dst_node: int) -> None:
        edge = self._head[src]
        self._head[src] = -1
        while edge >= 0:
            after = self._next[edge]
            self._src[edge] = _DEAD
            self._edge_count -= 1
            target = self._dst[edge]
            self._edge(dst_node, self._rel[edge], dst_node if target == src else target)
            edge = after

    def _settle(self) -> None:
        """Retarget edges that point at entries which have since become aliases."""
        if not self._dirty:
            return
        self._dirty = False
        aliases = self._aliases
        dsts = self._dst
        srcs = self._src
        touched: set[int] = set()
        for edge, target in enumerate(dsts):
            node = aliases.get(target)
            if node is not None and srcs[edge] != _DEAD:
                dsts[edge] = node
                self._flags[node] |= _TARGET
                touched.add(srcs[edge])
        rels = self._rel
        nxt = self._next
        for src in touched:  # drop the duplicates retargeting made, keeping the oldest
            chain = []
            edge = self._head[src]
            while edge >= 0:
                chain.append(edge)
                edge = nxt[edge]
            seen: set[tuple[int, int]] = set()
            newest = -1
            for edge in reversed(chain):
                pair = (rels[edge], dsts[edge])
                if pair in seen:
                    srcs[edge] = _DEAD
                    self._edge_count -= 1
                else:
                    seen.add(pair)
                    nxt[edge] = newest
                    newest = edge
            self._head[src] = newest

    # -- reading ------------------------------------------------------------------
    def _find(self, url: str) -> int | None:
        """The canonical node id for ``url`` (or an alias of it), or None."""
        ident = None
        if "#" in url:  # a self-less embedded resource keeps its JSON pointer
            base, _, pointer = url.partition("#")
            ident = self._lookup(f"{self._canon(base)}#{pointer}")
        if ident is None:
            ident = self._lookup(self._canon(url))
            if ident is None:
                return None
        flags = self._flags[ident]
        if flags & _ALIAS:
            return self._aliases[ident]
        return ident if flags & _NODE else None

    def _out(self, ident: int) -> list[tuple[int, int]]:
        """(rel id, target id) of the edges leaving ``ident``, oldest first."""
        out = []
        rels = self._rel
        dsts = self._dst
        nxt = self._next
        edge = self._head[ident]
        while edge >= 0:
            out.append((rels[edge], dsts[edge]))
            edge = nxt[edge]
        out.reverse()
        return out

    def _rels_matching(self, rel: str) -> frozenset[int]:
        # Rels compare case-insensitively (RFC 8288), as Document.links_for does.
        exact = self._rel_ids.get(rel)
        lowered = rel.lower()
        found = {ident for name, ident in self._rel_ids.items() if name.lower() == lowered}
        if exact is not None:
            found.add(exact)
        return frozenset(found)

    def _actions_matching(self, action: str) -> frozenset[int]:
        lowered = action.lower()
        return frozenset(
            set_id
            for set_id, names in enumerate(self._action_sets)
            if any(name.lower() == lowered for name in names)
        )

    def resolve(self, url: str) -> str | None:
        """The canonical node URL for ``url`` or for an alias of it; None if unknown."""
        ident = self._find(url)
        return None if ident is None else self._url(ident)

    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and self._find(url) is not None

    def __len__(self) -> int:
        return self._nodes

    def is_fetched(self, url: str) -> bool:
        """Whether ``url`` names a node indexed from a document (False if unknown)."""
        ident = self._find(url)
        return ident is not None and bool(self._flags[ident] & _FETCHED)

    def node(self, url: str) -> Node:
        """The node ``url`` names (or is an alias of), as a value.

        Raises:
            KeyError: the graph knows no such node.
        """
        ident = self._find(url)
        if ident is None:
            raise KeyError(f"no node for {url!r} in the graph ({self._nodes} nodes)")
        self._settle()
        names = self._rel_names
        return Node(
            url=self._url(ident),
            fetched=bool(self._flags[ident] & _FETCHED),
            links=tuple((names[rel], self._url(dst)) for rel, dst in self._out(ident)),
            actions=self._action_sets[self._actions[ident]],
        )

    def neighbors(self, url: str, rel: str | None = None) -> tuple[str, ...]:
        """Targets of the edges leaving ``url``, optionally only by ``rel``; () if unknown."""
        ident = self._find(url)
        if ident is None:
            return ()
        self._settle()
        out = self._out(ident)
        if rel is not None:
            wanted = self._rels_matching(rel)
            out = [pair for pair in out if pair[0] in wanted]
        return tuple(self._url(dst) for dst in dict.fromkeys(dst for _, dst in out))

    def predecessors(self, url: str) -> tuple[str, ...]:
        """Other nodes with an edge to ``url``; () if unknown. O(edges): a scan."""
        ident = self._find(url)
        if ident is None:
            return ()
        self._settle()
        found = dict.fromkeys(
            src
            for src, dst in zip(self._src, self._dst, strict=True)
            if dst == ident and src not in (ident, _DEAD)
        )
        return tuple(self._url(src) for src in found)

    def actions(self, url: str) -> tuple[str, ...]:
        """Action names of ``url``'s latest fetch, sorted; () if unknown or none."""
        ident = self._find(url)
        return () if ident is None else self._action_sets[self._actions[ident]]

    def find(
        self, *, rel: str | None = None, action: str | None = None, fetched: bool | None = None
    ) -> Iterator[str]:
        """Nodes with an outgoing ``rel``, an ``action`` (any case), and/or this fetched state.

        Scans every node: O(nodes + edges).
        """
        self._settle()
        rels = None if rel is None else self._rels_matching(rel)
        sets = None if action is None else self._actions_matching(action)
        flags = self._flags
        for ident in range(1, len(flags)):
            state = flags[ident]
            if not state & _NODE:
                continue
            if fetched is not None and bool(state & _FETCHED) is not fetched:
                continue
            if sets is not None and self._actions[ident] not in sets:
                continue
            if rels is not None and not any(r in rels for r, _ in self._out(ident)):
                continue
            yield self._url(ident)

    def _urls(self) -> Callable[[int], str]:
        """A memoising id -> URL function for one export (bounded, so exports stay lean)."""
        memo: dict[int, str] = {}

        def url(ident: int) -> str:
            found = memo.get(ident)
            if found is None:
                if len(memo) >= 65536:
                    memo.clear()
                found = memo[ident] = self._url(ident)
            return found

        return url

    def _node_ids(self) -> Iterator[int]:
        flags = self._flags
        return (ident for ident in range(1, len(flags)) if flags[ident] & _NODE)

    def edges(self) -> Iterator[tuple[str, str, str]]:
        """Every edge as ``(source, rel, target)`` URLs, in the order they were added."""
        self._settle()
        url = self._urls()
        names = self._rel_names
        for src, rel, dst in zip(self._src, self._rel, self._dst, strict=True):
            if src != _DEAD:
                yield url(src), names[rel], url(dst)

    def statistics(self) -> GraphStatistics:
        """Node, fetched, edge and alias counts now."""
        self._settle()
        return GraphStatistics(
            nodes=self._nodes,
            fetched=self._fetched,
            edges=self._edge_count,
            aliases=len(self._aliases),
        )

    def __repr__(self) -> str:
        stats = self.statistics()
        return f"<Graph nodes={stats.nodes} fetched={stats.fetched} edges={stats.edges}>"

    # -- export -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The graph as JSON-ready data.

        ``{"nodes": [{"url", "fetched", "actions"}], "edges": [{"source", "rel",
        "target"}], "aliases": {alias: url}, "templates": [{"source", "rel", "href"}]}``
        """
        url = self._urls()
        flags = self._flags
        sets = self._action_sets
        nodes = [
            {
                "url": url(ident),
                "fetched": bool(flags[ident] & _FETCHED),
                "actions": list(sets[self._actions[ident]]),
            }
            for ident in self._node_ids()
        ]
        edges = [{"source": s, "rel": r, "target": t} for s, r, t in self.edges()]
        templates = [
            {"source": url(ident), "rel": rel, "href": href}
            for ident, pairs in self._templates.items()
            for rel, href in pairs
        ]
        aliases = {url(alias): url(node) for alias, node in self._aliases.items()}
        return {"nodes": nodes, "edges": edges, "aliases": aliases, "templates": templates}

    def to_dot(self) -> str:
        """Graphviz ``digraph``: full URLs as labels, rels on edges, linked-only nodes dashed."""
        self._settle()
        names = {ident: f"n{seq}" for seq, ident in enumerate(self._node_ids())}
        lines = ["digraph halnav {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
        for ident, name in names.items():
            style = "" if self._flags[ident] & _FETCHED else ", style=dashed"
            lines.append(f"  {name} [label={_dot_quote(self._url(ident))}{style}];")
        for src, rel, dst in zip(self._src, self._rel, self._dst, strict=True):
            if src != _DEAD:
                label = _dot_quote(self._rel_names[rel])
                lines.append(f"  {names[src]} -> {names[dst]} [label={label}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid ``flowchart LR``: nodes ``n0, n1, ...`` with short labels, rels on edges."""
        self._settle()
        names = {ident: f"n{seq}" for seq, ident in enumerate(self._node_ids())}
        lines = ["flowchart LR"]
        for ident, name in names.items():
            label = _mermaid_quote(_short_label(self._url(ident)))
            shape = f"[{label}]" if self._flags[ident] & _FETCHED else f"({label})"
            lines.append(f"  {name}{shape}")
        for src, rel, dst in zip(self._src, self._rel, self._dst, strict=True):
            if src != _DEAD:
                label = _mermaid_quote(self._rel_names[rel])
                lines.append(f"  {names[src]} -->|{label}| {names[dst]}")
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the graph to ``path`` as JSON, Graphviz or Mermaid, chosen by its suffix.

        Raises:
            ValueError: the suffix is not one of .json, .dot, .mmd, .mermaid.
            OSError: the file cannot be written.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".json":
            text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        elif suffix == ".dot":
            text = self.to_dot()
        elif suffix in {".mmd", ".mermaid"}:
            text = self.to_mermaid()
        else:
            allowed = ", ".join(_SUFFIXES)
            raise ValueError(f"cannot write a graph to {target}: suffix {suffix!r}; use {allowed}")
        target.write_text(text, encoding="utf-8")


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_MERMAID_ESCAPES: Final[Mapping[str, str]] = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}
_MERMAID_SPECIAL = re.compile('[#"<>]')


def _mermaid_quote(text: str) -> str:
    escaped = _MERMAID_SPECIAL.sub(lambda m: _MERMAID_ESCAPES[m[0]], text.replace("\n", " "))
    return f'"{escaped}"'


def _short_label(url: str) -> str:
    """The last two path segments (and the query): enough to tell siblings apart."""
    path, mark, query = url.partition("?")
    parts = path.rstrip("/").split("/")
    if len(parts) <= 5:  # scheme, '', host and two segments: show it whole
        return url
    return ".../" + "/".join(parts[-2:]) + mark + query
