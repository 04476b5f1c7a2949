"""The passive index of everything a walk fetched: nodes, rel edges, actions; export.

A :class:`Graph` is filled by the navigator (``graph.add(doc, request_url=...)``) and
read by the crawler, the CLI and the REPL. It does no I/O except :meth:`Graph.write`.

Storage, and why (a bulk walk puts millions of documents into one graph):

* **URLs are a path trie.** Every URL is split at its last ``/`` into a prefix and
  a tail; the prefix is itself an entry, so ``.../folders/<id>`` and
  ``.../folders/<id>/items`` share everything but their last segment. The one
  dict (``"<parent id>/<tail>"`` -> entry id) holds short keys, never a whole
  URL, and a full URL is rebuilt on demand by walking the parents. Entries that
  are only path prefixes are not nodes.
* **A bounded cache of recent URLs** (``dict[str, int]``, cleared when full) maps
  canonical URLs, nodes and prefixes alike, to entries. ``add()`` looks every href
  up in it as the parser spelled it: a hit is one dict lookup, no
  :func:`canonical_url`, no trie (a page's items link to the same folder and
  mailbox). A miss whose prefix is cached (the document's own URL for
  ``.../items``, the last prefix for a page's sibling items) costs one key; only
  the rest climbs the trie. It holds only canonical URLs without a ``#``, so any
  spelling found in it is canonical.
* **Per-entry columns** live in ``array``/``bytearray``: parent id, flags
  (node / fetched / alias / edge target / wide), first outgoing edge, action-set id.
* **Edges are four columns** (source, rel id, target, next edge of the same
  source): an intrusive linked list per source, so appending is O(1). Duplicates
  are found by walking a short list (a node fetched for the first time only
  checks its own rel group); a longer one gets a set of ``rel << 32 | target``
  for the add, kept for good (``_wide``) past ``_PERSIST`` edges, so a page
  with thousands of items or a node reached by many ``parent`` edges stays linear.
* **Rels and action names are interned**; a node stores the id of its interned,
  sorted tuple of action names (most nodes share one).
* **Aliases** (a request URL that answered with another ``self``) map an entry
  to its canonical node in O(1): when a node is merged into another, its aliases
  follow it through it (chains are shortened on reads); edges stored before the
  alias was known are retargeted lazily, on the next read.
* **One loop per page**: ``add()`` indexes a page's items in one loop with
  everything bound once, not one call per item.

Templated links are not edges (their href is not a resource): they are kept per
node and listed under ``"templates"`` in :meth:`Graph.to_json`. A self-less
embedded resource or page item is indexed under its JSON-pointer URL
(``parent#/_embedded/rel/0``), which :meth:`Graph.resolve` accepts verbatim.

Not thread-safe: a graph belongs to one asyncio event loop (one thread).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import attrs

from . import _graph_export as _export
from ._apimap import ApiMap, api_map
from ._model import EMPTY, Document, LazyActions, Link
from ._urls import canonical_url

__all__ = ["Graph", "GraphStatistics", "Node"]

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
_WIDE: Final = 16  # its outgoing edges are also in a dedup set, Graph._wide[entry]
_LINKED: Final = _NODE | _TARGET
_DEAD: Final = 0xFFFFFFFF  # source column value of an edge removed as a duplicate
_RECENT: Final = 8192  # URLs the recent cache holds before it is cleared
_CHAIN: Final = 8  # within one add(), edges beyond this many per source dedup by a set
_PERSIST: Final = 64  # a source with this many edges keeps its dedup set for good


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

    SUFFIXES: ClassVar[tuple[str, ...]] = _export.SUFFIXES
    """The file name suffixes :meth:`write` takes (JSON, Graphviz DOT, Mermaid)."""

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
        "_memo",
        "_memo_id",
        "_memo_key",
        "_memo_len",
        "_next",
        "_nodes",
        "_parent",
        "_pointing",
        "_raw_action_ids",
        "_recent",
        "_rel",
        "_rel_ids",
        "_rel_names",
        "_src",
        "_templates",
        "_wide",
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
        # Recent canonical URLs (nodes and path prefixes, never one with a "#") -> entry.
        self._recent: dict[str, int] = {}
        self._memo = ""  # the last prefix _miss looked up, its length, entry, "<entry>/"
        self._memo_len = -1
        self._memo_id = 0
        self._memo_key = ""
        # Edges: parallel columns; next links the edges of one source, newest first.
        self._src = array("I")
        self._rel = array("I")
        self._dst = array("I")
        self._next = array("i")
        self._wide: dict[int, set[int]] = {}  # wide source -> {rel << 32 | target}
        self._rel_ids: dict[str, int] = {}
        self._rel_names: list[str] = []
        self._action_sets: list[tuple[str, ...]] = [()]
        self._action_ids: dict[tuple[str, ...], int] = {(): 0}  # sorted names -> id
        self._raw_action_ids: dict[tuple[str, ...], int] = {(): 0}  # as the doc lists them
        self._aliases: dict[int, int] = {}  # alias entry -> the entry it resolves to
        self._pointing: dict[int, list[int]] = {}  # entry -> aliases set to it (or were)
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

    def _remember(self, url: str, entry: int) -> None:
        cache = self._recent
        if len(cache) >= _RECENT:
            cache.clear()  # in place: callers may hold its bound get()
        cache[url] = entry

    def _intern(self, url: str) -> int:
        """The entry id of ``url`` (canonical already), creating it and its prefixes.

        Climbs to a cached prefix (or the root), then comes down creating
        entries; iterative, not recursive: a URL may have thousands of slashes.
        """
        recent = self._recent
        cacheable = "#" not in url
        if cacheable:
            found = recent.get(url)
            if found is not None:
                return found
        tails: list[str] = []
        rest = url
        entry = 0
        while True:
            head, sep, tail = rest.rpartition("/")
            tails.append(tail)
            if not sep:
                break
            if "#" not in head:  # the cache holds no JSON-pointer URL
                cached = recent.get(head)
                if cached is not None:
                    entry = cached
                    break
            rest = head
        ids = self._ids
        parent = 0
        for tail in reversed(tails):
            parent = entry
            key = f"{parent}/{tail}"
            found = ids.get(key)
            entry = self._entry(key, parent) if found is None else found
        if cacheable:
            # Its siblings share the prefix: cache that too, unless as a URL it is not
            # canonical ("https://host" is the prefix of "https://host/x" but names
            # "https://host/"): whatever the cache holds may be looked up as an href.
            if len(tails) > 1:
                prefix = url.rpartition("/")[0]
                if canonical_url(prefix) == prefix:
                    self._remember(prefix, parent)
            self._remember(url, entry)
        return entry

    def _miss(self, href: str, own: str | None, own_id: int) -> int:
        """The entry id of a raw ``href`` (not looked up in the recent cache), creating it.

        ``~entry`` (negative) when ``href`` is not canonical as spelled. Only
        without a ``key``. Every cached URL is canonical and has no ``#``, so
        ``cached prefix + "/" + tail`` without a ``#`` is canonical already: the
        common case skips :func:`canonical_url`, climbs no trie, copies and hashes
        no prefix. Tried first: ``own`` (the URL of the document whose link this
        is, entry ``own_id``: ``.../items`` extends it), then the last prefix
        used (a page's items are siblings), then the cache.
        """
        cut = href.rfind("/")
        if cut >= 0:
            if own is not None and cut == len(own) and href.startswith(own):
                parent = own_id
                pkey = f"{own_id}/"
            elif cut == self._memo_len and href.startswith(self._memo):
                parent = self._memo_id
                pkey = self._memo_key
            else:
                prefix = href[:cut]
                found = self._recent.get(prefix)  # never a URL with a "#"
                if found is None:
                    return self._canonical_entry(href)
                parent = self._memo_id = found
                pkey = self._memo_key = f"{found}/"
                self._memo = prefix
                self._memo_len = cut
            tail = href[cut + 1 :]
            if "#" not in tail:
                key = pkey + tail
                ids = self._ids
                entry = ids.get(key)
                if entry is None:
                    entry = len(self._keys)
                    ids[key] = entry
                    self._keys.append(key)
                    self._parent.append(parent)
                    self._flags.append(0)
                    self._head.append(-1)
                    self._actions.append(0)
                return entry
        return self._canonical_entry(href)

    def _canonical_entry(self, href: str) -> int:
        """:meth:`_miss` the long way: :func:`canonical_url`, then the trie."""
        url = canonical_url(href)
        entry = self._intern(url)
        return entry if url == href else ~entry

    def _href(self, href: str) -> tuple[str, int]:
        """The canonical form of ``href`` and its entry id, creating it."""
        if self._key is None:
            recent = self._recent
            entry = recent.get(href)
            if entry is None:
                entry = self._miss(href, None, 0)
                if entry < 0:  # not canonical as spelled
                    return canonical_url(href), ~entry
                self._remember(href, entry)
            return href, entry
        url = self._canon(href)
        return url, self._intern(url)

    def _lookup(self, url: str) -> int | None:
        """The entry id of ``url`` (canonical already), or None; creates nothing."""
        recent = self._recent
        tails: list[str] = []
        rest = url
        parent: int | None = 0
        while True:
            if "#" not in rest:
                cached = recent.get(rest)
                if cached is not None:
                    parent = cached
                    break
            head, sep, tail = rest.rpartition("/")
            tails.append(tail)
            if not sep:
                parent = 0
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

    def _resolve(self, alias: int) -> int:
        """The node alias entry ``alias`` stands for, shortening the chain it followed.

        An alias points at what was a node when it was made; that node may since
        have been merged into another (become an alias itself), so this follows the
        chain (no loop: an alias is only ever pointed at a non-alias) and points
        each hop at the end, the way :meth:`_alias` would have had it rewritten.
        """
        aliases = self._aliases
        flags = self._flags
        node = aliases[alias]
        if flags[node] & _ALIAS:
            hops = [alias]
            while True:
                step = aliases[node]
                if not flags[step] & _ALIAS:
                    break
                hops.append(node)
                node = step
            node = step
            pointing = self._pointing.setdefault(node, [])
            for hop in hops:
                aliases[hop] = node
                pointing.append(hop)
        return node

    def _as_node(self, entry: int) -> int:
        """The node ``entry`` stands for (itself or, for an alias, its node), made a node."""
        flags = self._flags
        state = flags[entry]
        if state & _ALIAS:
            return self._resolve(entry)
        if not state & _NODE:
            flags[entry] = state | _NODE
            self._nodes += 1
        return entry

    def _chain(self, src: int) -> list[int]:
        """The live edges leaving ``src``, newest first."""
        chain = []
        nxt = self._next
        edge = self._head[src]
        while edge >= 0:
            chain.append(edge)
            edge = nxt[edge]
        return chain

    def _edge_set(self, src: int) -> set[int]:
        """``{rel << 32 | target}`` of the edges leaving ``src``: its dedup set."""
        rels = self._rel
        dsts = self._dst
        return {rels[edge] << 32 | dsts[edge] for edge in self._chain(src)}

    def _edge(self, src: int, rel: int, dst: int) -> None:
        """Add edge ``src -rel-> dst`` unless it exists (one edge: parent links, moves)."""
        flags = self._flags
        dsts = self._dst
        state = flags[src]
        if state & _WIDE:
            seen = self._wide[src]
            packed = rel << 32 | dst
            if packed in seen:
                return
            seen.add(packed)
        else:
            rels = self._rel
            nxt = self._next
            edge = self._head[src]
            count = 0
            while edge >= 0:
                if dsts[edge] == dst and rels[edge] == rel:
                    return
                edge = nxt[edge]
                count += 1
            if count >= _PERSIST:  # walking it for every edge would be quadratic
                seen = self._edge_set(src)
                seen.add(rel << 32 | dst)
                self._wide[src] = seen
                flags[src] = state | _WIDE
        self._src.append(src)
        self._rel.append(rel)
        dsts.append(dst)
        self._next.append(self._head[src])
        self._head[src] = len(dsts) - 1
        flags[dst] |= _TARGET
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
        url, node = self._index((doc,), False, -1, 0)
        if request_url is not None and request_url != url:
            alias_url, alias = self._href(request_url)
            if alias_url != url:
                self._alias(alias, node)
        if parent is not None and rel is not None:
            source = self._as_node(self._href(parent)[1])
            self._edge(source, self._rel_id(rel), node)
        return url

    def _index(
        self, docs: tuple[Document, ...], embedded: bool, parent: int, parent_rel: int
    ) -> tuple[str, int]:
        """Index ``docs`` (with their items and embedded documents); return the last's URL, node.

        Each document is its node, its actions, its links, then its children; with
        ``parent >= 0`` each also gets an edge ``parent -parent_rel-> it`` (a page's items,
        embedded documents). The hot path of every fetch: the parent's edges are kept as a
        set across the loop, and each step binds what it uses once.
        """
        fast = self._key is None
        flags = self._flags
        head = self._head
        srcs = self._src
        rels = self._rel
        dsts = self._dst
        nxt = self._next
        pseen: set[int] = set()
        pfirst = pflags = pcount = prel = 0
        if parent >= 0:  # the parent's edges as rel << 32 | target, to dedup against
            pfirst = head[parent]
            pflags = flags[parent]
            pseen = self._wide[parent] if pflags & _WIDE else self._edge_set(parent)
            pcount = len(pseen)
            prel = parent_rel << 32
        # What indexing makes of each document's own entry: a fetched node, and an
        # edge target when a self link or the parent points at it.
        wanted = _NODE | _FETCHED | _TARGET if parent >= 0 else _NODE | _FETCHED
        url = ""
        node = 0
        for doc in docs:
            url, own, node, self_url = self._doc_node(doc, embedded, wanted, fast)
            self._set_actions(node, doc)
            count = self._add_links(node, doc.links, self_url, own, fast)
            count = self._index_children(node, doc, count)
            if count >= _PERSIST and not flags[node] & _WIDE:
                # Too wide to walk for the edges _edge may add to it later.
                self._wide[node] = self._edge_set(node)
                flags[node] |= _WIDE
            if parent >= 0:  # the edge parent -> this document
                if head[parent] != pfirst or flags[parent] != pflags:
                    # The document (or one inside it) was the parent again and added
                    # edges to it or gave it a set of its own; or it only linked to it.
                    pfirst = head[parent]
                    pflags = flags[parent]
                    pseen = self._wide[parent] if pflags & _WIDE else self._edge_set(parent)
                    pcount = len(pseen)
                packed = prel | node
                if packed not in pseen:
                    pseen.add(packed)
                    srcs.append(parent)
                    rels.append(parent_rel)
                    dsts.append(node)
                    nxt.append(pfirst)
                    pfirst = head[parent] = len(dsts) - 1
                    self._edge_count += 1
                    pcount += 1
        if pcount >= _PERSIST and not flags[parent] & _WIDE:
            self._wide[parent] = pseen
            flags[parent] |= _WIDE
        return url, node

    def _doc_node(
        self, doc: Document, embedded: bool, wanted: int, fast: bool
    ) -> tuple[str, str | None, int, str | None]:
        """``doc``'s node (by its self link, else its URL), marked ``wanted``: its URL, the
        URL its relative links extend (``own``; None for a JSON-pointer item), the node, and
        its self href as spelled."""
        flags = self._flags
        selfs = doc.links.get("self")
        own: str | None = None  # its URL when a link may extend it (no "#" in it)
        self_url: str | None = None
        if selfs:
            url = own = self_url = selfs[0].href
            if fast:  # mostly new (a page's items): not worth hashing for the cache
                entry = self._miss(url, None, 0)
                if entry < 0:  # not canonical as spelled
                    entry = ~entry
                    url = own = canonical_url(url)
            else:
                url, entry = self._href(url)
        elif embedded and "#" in doc.url:  # a self-less item: its JSON pointer names it
            base, _, pointer = doc.url.partition("#")
            url = f"{self._canon(base)}#{pointer}"
            entry = self._intern(url)
        else:
            url, entry = self._href(doc.url)
            own = url
        node = entry
        state = flags[node]
        if state & _ALIAS:  # fetched before under another self: stay with that node
            node = self._resolve(entry)
            url = own = self._url(node)
            state = flags[node]
        want = wanted | _TARGET if self_url is not None else wanted
        if state & want != want:
            if not state & _FETCHED:
                if not state & _NODE:
                    self._nodes += 1
                self._fetched += 1
            flags[node] = state | want
        return url, own, node, self_url

    def _set_actions(self, node: int, doc: Document) -> None:
        """Record ``doc``'s action names on ``node`` (as an interned set id)."""
        actions = doc.actions
        if type(actions) is LazyActions:  # its names without building its Actions
            raw = actions.names()
        else:
            raw = () if actions is EMPTY else tuple(actions)
        if raw:
            set_id = self._raw_action_ids.get(raw)
            if set_id is None:
                set_id = self._intern_actions(raw)
            self._actions[node] = set_id
        elif self._actions[node]:
            self._actions[node] = 0

    def _add_links(
        self,
        node: int,
        links: Mapping[str, tuple[Link, ...]],
        self_url: str | None,
        own: str | None,
        fast: bool,
    ) -> int:
        """Add ``node``'s link edges (templated links are kept apart); return its edge count.

        A fresh node has no edges yet, so a link can only repeat one of its own rel group:
        the walk stops at the group's start. A long list is deduplicated by a set of
        rel << 32 | target instead.
        """
        head = self._head
        rel_ids = self._rel_ids
        srcs = self._src
        rels = self._rel
        dsts = self._dst
        nxt = self._next
        first = head[node]
        seen: set[int] | None = None
        count = 0
        fresh = first < 0
        if not fresh:
            if self._flags[node] & _WIDE:
                seen = self._wide[node]
                count = _PERSIST
            else:
                count = len(self._chain(node))
                if count >= _CHAIN:
                    seen = self._edge_set(node)
        stop = -1
        edge_id = start = len(dsts)
        templates: list[tuple[str, str]] | None = None
        for rel, group in links.items():
            rel_id = rel_ids.get(rel)
            if rel_id is None:
                rel_id = self._rel_id(rel)
            if fresh:
                stop = first
            for link in group:
                href = link.href
                if link.templated:
                    if templates is None:
                        templates = []
                    templates.append((rel, href))
                    continue
                target = node if href is self_url else self._link_target(href, own, node, fast)
                if seen is None:
                    edge = first
                    while edge != stop:
                        if dsts[edge] == target and rels[edge] == rel_id:
                            break
                        edge = nxt[edge]
                    else:
                        srcs.append(node)
                        rels.append(rel_id)
                        dsts.append(target)
                        nxt.append(first)
                        first = edge_id
                        edge_id += 1
                        count += 1
                        if count >= _CHAIN:
                            head[node] = first
                            seen = self._edge_set(node)
                else:
                    packed = rel_id << 32 | target
                    if packed not in seen:
                        seen.add(packed)
                        srcs.append(node)
                        rels.append(rel_id)
                        dsts.append(target)
                        nxt.append(first)
                        first = edge_id
                        edge_id += 1
                        count += 1
        head[node] = first
        self._edge_count += edge_id - start
        if templates is not None:
            self._templates[node] = tuple(templates)
        elif self._templates:
            self._templates.pop(node, None)
        return count

    def _link_target(self, href: str, own: str | None, node: int, fast: bool) -> int:
        """The node a link's ``href`` names (made, and marked linked, if it is new)."""
        if fast:
            recent = self._recent  # cleared in place, never replaced
            found = recent.get(href)
            if found is not None:
                target = found
            else:
                target = self._miss(href, own, node)
                if target < 0:  # not canonical as spelled: not cached
                    target = ~target
                else:
                    if len(recent) >= _RECENT:
                        recent.clear()
                    recent[href] = target
        else:
            target = self._href(href)[1]
        flags = self._flags
        state = flags[target]
        if state & _ALIAS:
            target = self._resolve(target)
            state = flags[target]
        if state & _LINKED != _LINKED:
            if not state & _NODE:
                self._nodes += 1
            flags[target] = state | _LINKED
        return target

    def _index_children(self, node: int, doc: Document, count: int) -> int:
        """Index ``doc``'s embedded documents and page items below ``node``; its edge count
        afterwards (``count`` when it has none)."""
        items = doc.items
        embedded_docs = doc.embedded
        if embedded_docs is not EMPTY and embedded_docs:
            for emb_rel, children in embedded_docs.items():
                self._index(children, True, node, self._rel_id(emb_rel))
                if children is items:  # a HAL _embedded array is also the page: once
                    items = ()
            count = len(self._chain(node))
        if items:
            self._index(items, True, node, self._rel_id("item"))
            count = len(self._chain(node))
        return count

    def _intern_actions(self, raw: tuple[str, ...]) -> int:
        names = tuple(sorted(raw))
        set_id = self._action_ids.get(names)
        if set_id is None:
            set_id = self._action_ids[names] = len(self._action_sets)
            self._action_sets.append(names)
        self._raw_action_ids[raw] = set_id
        return set_id

    def _alias(self, alias: int, node: int) -> None:
        """Make entry ``alias`` resolve to node ``node`` (not an alias), merging what it held.

        O(1) but for the alias's own edges. Aliases of a node that becomes an alias
        follow it (through it: see :meth:`_resolve`); an alias pointed elsewhere
        leaves those that went through it where it led them.
        """
        flags = self._flags
        aliases = self._aliases
        current = flags[alias]
        if current & _ALIAS:
            was = self._resolve(alias)
            if was == node:
                return
            through = self._pointing.pop(alias, None)
            if through:
                pointing = self._pointing.setdefault(was, [])
                for other in through:
                    if aliases[other] == alias:  # else a stale record: it was re-pointed
                        aliases[other] = was
                        pointing.append(other)
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
        aliases[alias] = node
        self._pointing.setdefault(node, []).append(alias)
        flags[alias] = (flags[alias] | _ALIAS) & ~(_NODE | _FETCHED | _WIDE)
        if current & _TARGET:
            self._dirty = True

    def _move_edges(self, src: int, dst_node: int) -> None:
        edge = self._head[src]
        self._head[src] = -1
        if self._flags[src] & _WIDE:
            del self._wide[src]
            self._flags[src] &= ~_WIDE
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
        flags = self._flags
        dsts = self._dst
        srcs = self._src
        touched: set[int] = set()
        for edge, target in enumerate(dsts):
            if flags[target] & _ALIAS and srcs[edge] != _DEAD:
                node = self._resolve(target)
                dsts[edge] = node
                flags[node] |= _TARGET
                touched.add(srcs[edge])
        rels = self._rel
        nxt = self._next
        for src in touched:  # drop the duplicates retargeting made, keeping the oldest
            seen: set[tuple[int, int]] = set()
            newest = -1
            for edge in reversed(self._chain(src)):
                pair = (rels[edge], dsts[edge])
                if pair in seen:
                    srcs[edge] = _DEAD
                    self._edge_count -= 1
                else:
                    seen.add(pair)
                    nxt[edge] = newest
                    newest = edge
            self._head[src] = newest
            if flags[src] & _WIDE:
                self._wide[src] = self._edge_set(src)

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
            return self._resolve(ident)
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
        aliases = {url(alias): url(self._resolve(alias)) for alias in list(self._aliases)}
        return {"nodes": nodes, "edges": edges, "aliases": aliases, "templates": templates}

    def _view(self, labels: Mapping[str, str] | None) -> _export.View:
        """The nodes in order and the edges between their positions, for a drawing."""
        self._settle()
        ids = list(self._node_ids())
        position = {ident: seq for seq, ident in enumerate(ids)}
        names = self._rel_names
        return _export.View(
            nodes=[(self._url(ident), bool(self._flags[ident] & _FETCHED)) for ident in ids],
            edges=[
                (position[src], names[rel], position[dst])
                for src, rel, dst in zip(self._src, self._rel, self._dst, strict=True)
                if src != _DEAD
            ],
            labels=labels or {},
        )

    def to_dot(self, *, labels: Mapping[str, str] | None = None) -> str:
        """Graphviz ``digraph``: full URLs as labels (under a person's name from ``labels``,
        URL -> name), rels on edges, linked-only nodes dashed, no edge from a node to itself."""
        return _export.to_dot(self._view(labels))

    def to_mermaid(self, *, labels: Mapping[str, str] | None = None) -> str:
        """Mermaid ``flowchart LR``: nodes ``n0, n1, ...`` with short labels (or the names in
        ``labels``), rels on edges, no edge from a node to itself."""
        return _export.to_mermaid(self._view(labels))

    def to_map(self) -> ApiMap:
        """The graph collapsed into resource kinds: one node per URL template
        (``/v5/RestoreSessions/{id}/Organization/Mailboxes/{id}``) with its counts and
        actions, one edge per rel between kinds (see :class:`halnav.ApiMap`)."""
        self._settle()
        url = self._urls()
        sets = self._action_sets
        flags = self._flags
        nodes = (
            (url(ident), bool(flags[ident] & _FETCHED), sets[self._actions[ident]])
            for ident in self._node_ids()
        )
        return api_map(nodes, self.edges())

    def text(
        self, fmt: str, *, as_map: bool = False, labels: Mapping[str, str] | None = None
    ) -> str:
        """The graph (or with ``as_map`` its :meth:`to_map`) as ``"json"``, ``"dot"`` or
        ``"mmd"`` (Mermaid) text: what :meth:`write` writes, for a stream.

        Raises:
            ValueError: another format.
        """
        drawing = self.to_map() if as_map else None
        if fmt == "json":
            data = drawing.to_json() if drawing is not None else self.to_json()
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if fmt == "dot":
            return drawing.to_dot() if drawing is not None else self.to_dot(labels=labels)
        if fmt == "mmd":
            return drawing.to_mermaid() if drawing is not None else self.to_mermaid(labels=labels)
        raise ValueError(f"cannot draw a graph as {fmt!r}: use json, dot or mmd")

    def write(
        self,
        path: str | os.PathLike[str],
        *,
        as_map: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Write the graph (or with ``as_map`` its :meth:`to_map`) to ``path`` as JSON,
        Graphviz, Mermaid or SVG, chosen by its suffix. ``.svg`` runs Graphviz's ``dot``.

        Raises:
            ValueError: the suffix is not one of .json, .dot, .mmd, .mermaid, .svg; or
                ``.svg`` without Graphviz's ``dot`` on the PATH.
            OSError: the file cannot be written.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        fmt = _export.FORMAT_OF.get(suffix)
        if fmt is None:
            allowed = ", ".join(_export.SUFFIXES)
            raise ValueError(f"cannot write a graph to {target}: suffix {suffix!r}; use {allowed}")
        text = self.text(fmt, as_map=as_map, labels=labels)
        if suffix == ".svg":
            _export.write_svg(text, target)
        else:
            target.write_text(text, encoding="utf-8")
