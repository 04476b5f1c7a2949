"""The API map: a walk's link graph collapsed into resource kinds, small enough to read.

A walk of one Veeam organization has thousands of documents but a dozen kinds of resource:
``/v5/RestoreSessions/{id}/Organization/Mailboxes/{id}/Folders/{id}/Items/{id}`` and its
neighbours. The map has one node per kind (its URL template, how many documents of it were
fetched or only linked, the actions they offer) and one edge per rel between two kinds (how
many links). ``self`` and paging rels that stay within a kind are left out: they say nothing
about the shape of the API.

A leaf: it imports nothing from halnav but the drawing helpers and the URL facts; it reads a
graph through the three things :meth:`halnav.Graph.to_map` hands over.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from ._graph_export import dot_quote, mermaid_quote

__all__ = ["ApiMap", "ResourceKind", "api_map", "url_template"]

_PAGING: Final = frozenset({"self", "first", "prev", "previous", "next", "last"})
_GUID: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_VERSION: Final = re.compile(r"v\d+(?:\.\d+)?")
_POINTER_INDEX: Final = re.compile(r"/\d+(?=/|$)")


def _is_id(segment: str) -> bool:
    """Whether a path segment names one resource rather than a kind of them: numbers,
    GUIDs, e-mail addresses, encoded or base64-looking tokens, long mixed tokens."""
    if not segment or _VERSION.fullmatch(segment):
        return False
    if segment.isdigit() or _GUID.fullmatch(segment):
        return True
    if any(char in segment for char in "@%=+"):
        return True
    has_digit = any(char.isdigit() for char in segment)
    return len(segment) >= 24 or (has_digit and len(segment) >= 8)


def url_template(url: str) -> str:
    """The kind of resource ``url`` is: its path with each id replaced by ``{id}``, and the
    array indexes of a JSON-pointer URL by ``{n}`` (no origin, no query).

    >>> url_template("https://vbo:4443/v5/RestoreSessions/3c1d8ee2-4f3a-4bc2-9d3e-6c0a6f2d1b77/"
    ...              "Organization/Mailboxes/alice@contoso.com?offset=30&limit=30")
    '/v5/RestoreSessions/{id}/Organization/Mailboxes/{id}'
    >>> url_template("https://h/v6/organizations/7/users#/results/12")
    '/v6/organizations/{id}/users#/results/{n}'
    """
    parts = urlsplit(url)
    path = "/".join("{id}" if _is_id(segment) else segment for segment in parts.path.split("/"))
    if parts.fragment.startswith("/"):
        return f"{path or '/'}#{_POINTER_INDEX.sub('/{n}', parts.fragment)}"
    return path or "/"


@attrs.frozen
class ResourceKind:
    """One kind of resource in an :class:`ApiMap`: its URL ``template``, how many of its
    documents were ``fetched`` and how many only ``linked``, and the ``actions`` they offer."""

    template: str
    fetched: int
    linked: int
    actions: tuple[str, ...]


@attrs.frozen
class ApiMap:
    """A walk collapsed into kinds (:class:`ResourceKind`, in the order they were first
    met) and ``rels`` between them: ``(source template, rel, target template, links)``.

    ``to_mermaid`` and ``to_dot`` draw it; ``to_json`` is the same data for a program.
    """

    kinds: tuple[ResourceKind, ...]
    rels: tuple[tuple[str, str, str, int], ...]

    def to_json(self) -> dict[str, Any]:
        """``{"kinds": [{"template", "fetched", "linked", "actions"}], "rels": [{"source",
        "rel", "target", "links"}]}``."""
        return {
            "kinds": [attrs.asdict(kind, recurse=False) for kind in self.kinds],
            "rels": [{"source": s, "rel": r, "target": t, "links": n} for s, r, t, n in self.rels],
        }

    def _label(self, kind: ResourceKind) -> list[str]:
        counts = f"{kind.fetched} fetched" + (f", {kind.linked} linked" if kind.linked else "")
        lines = [kind.template, counts]
        if kind.actions:
            lines.append("actions: " + ", ".join(kind.actions))
        return lines

    def to_mermaid(self) -> str:
        """Mermaid ``flowchart LR``: a box per kind (template, counts, actions), an edge per
        rel with its link count; kinds that were only linked are rounded."""
        ids = {kind.template: f"k{seq}" for seq, kind in enumerate(self.kinds)}
        lines = ["flowchart LR"]
        for kind in self.kinds:
            label = "<br/>".join(mermaid_quote(line)[1:-1] for line in self._label(kind))
            shape = f'["{label}"]' if kind.fetched else f'("{label}")'
            lines.append(f"  {ids[kind.template]}{shape}")
        for source, rel, target, links in self.rels:
            label = mermaid_quote(f"{rel} ({links})")
            lines.append(f"  {ids[source]} -->|{label}| {ids[target]}")
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """Graphviz ``digraph`` of the same (``dot -Tsvg map.dot > map.svg``)."""
        ids = {kind.template: f"k{seq}" for seq, kind in enumerate(self.kinds)}
        lines = ["digraph api {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
        for kind in self.kinds:
            style = "" if kind.fetched else ", style=dashed"
            label = dot_quote("\n".join(self._label(kind)))
            lines.append(f"  {ids[kind.template]} [label={label}{style}];")
        lines.extend(
            f"  {ids[s]} -> {ids[t]} [label={dot_quote(f'{r} ({n})')}];" for s, r, t, n in self.rels
        )
        lines.append("}")
        return "\n".join(lines) + "\n"


def api_map(
    nodes: Iterable[tuple[str, bool, tuple[str, ...]]], edges: Iterable[tuple[str, str, str]]
) -> ApiMap:
    """The map of a graph given as ``nodes`` ``(url, fetched, actions)`` and ``edges``
    ``(source url, rel, target url)``."""
    template_of: dict[str, str] = {}
    counts: dict[str, list[int]] = {}  # template -> [fetched, linked]
    actions: dict[str, set[str]] = {}
    for url, fetched, names in nodes:
        template = template_of[url] = url_template(url)
        count = counts.setdefault(template, [0, 0])
        count[0 if fetched else 1] += 1
        actions.setdefault(template, set()).update(names)
    rels: dict[tuple[str, str, str], int] = {}
    for source, rel, target in edges:
        key = (
            template_of.get(source) or url_template(source),
            rel,
            template_of.get(target) or url_template(target),
        )
        if key[0] == key[2] and rel.lower() in _PAGING:
            continue  # a page's own self, first, next...: no shape in it
        rels[key] = rels.get(key, 0) + 1
    kinds = tuple(
        ResourceKind(template, fetched, linked, tuple(sorted(actions[template])))
        for template, (fetched, linked) in counts.items()
    )
    known = {kind.template for kind in kinds}
    return ApiMap(
        kinds,
        tuple((s, r, t, n) for (s, r, t), n in rels.items() if s in known and t in known),
    )
