"""Drawings of a link graph: Graphviz DOT and Mermaid, from a neutral view of it.

The graph hands over a :class:`View` (its nodes in order, its edges between their
positions); this module knows the two text formats and their quoting, and nothing of how
the graph stores anything. A leaf: it imports nothing from halnav but the URL facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ._urls import short_label

__all__ = ["SUFFIXES", "View", "to_dot", "to_mermaid"]

SUFFIXES: Final = (".json", ".dot", ".mmd", ".mermaid")
"""The file suffixes ``Graph.write`` knows, in the order error messages list them."""


@attrs.frozen
class View:
    """``nodes`` as ``(url, fetched)`` in order; ``edges`` as ``(source, rel, target)``
    with source and target positions in ``nodes``."""

    nodes: Sequence[tuple[str, bool]]
    edges: Sequence[tuple[int, str, int]]


def to_dot(view: View) -> str:
    """Graphviz ``digraph``: full URLs as labels, rels on edges, linked-only nodes dashed.

    >>> print(to_dot(View([("https://h/a", True), ("https://h/b", False)], [(0, "next", 1)])))
    digraph halnav {
      rankdir=LR;
      node [shape=box, fontsize=10];
      n0 [label="https://h/a"];
      n1 [label="https://h/b", style=dashed];
      n0 -> n1 [label="next"];
    }
    <BLANKLINE>
    """
    lines = ["digraph halnav {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    for seq, (url, fetched) in enumerate(view.nodes):
        style = "" if fetched else ", style=dashed"
        lines.append(f"  n{seq} [label={_dot_quote(url)}{style}];")
    lines.extend(f"  n{src} -> n{dst} [label={_dot_quote(rel)}];" for src, rel, dst in view.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(view: View) -> str:
    """Mermaid ``flowchart LR``: nodes ``n0, n1, ...`` with short labels, rels on edges;
    fetched nodes are boxes, linked-only ones rounded.

    >>> print(to_mermaid(View([("https://h/a", True), ("https://h/b#x", False)], [(0, "x", 1)])))
    flowchart LR
      n0["https://h/a"]
      n1("https://h/b#35;x")
      n0 -->|"x"| n1
    <BLANKLINE>
    """
    lines = ["flowchart LR"]
    for seq, (url, fetched) in enumerate(view.nodes):
        label = _mermaid_quote(short_label(url))
        lines.append(f"  n{seq}[{label}]" if fetched else f"  n{seq}({label})")
    lines.extend(f"  n{src} -->|{_mermaid_quote(rel)}| n{dst}" for src, rel, dst in view.edges)
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_MERMAID_ESCAPES: Final[Mapping[str, str]] = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}
_MERMAID_SPECIAL = re.compile('[#"<>]')


def _mermaid_quote(text: str) -> str:
    escaped = _MERMAID_SPECIAL.sub(lambda m: _MERMAID_ESCAPES[m[0]], text.replace("\n", " "))
    return f'"{escaped}"'
