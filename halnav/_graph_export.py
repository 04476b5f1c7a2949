"""Drawings of a link graph: Graphviz DOT and Mermaid, from a neutral view of it.

The graph hands over a :class:`View` (its nodes in order, its edges between their
positions); this module knows the two text formats and their quoting, and nothing of how
the graph stores anything. A leaf: it imports nothing from halnav but the URL facts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from ._urls import short_label

__all__ = [
    "FORMAT_OF",
    "MERMAID_MAX_EDGES",
    "SUFFIXES",
    "View",
    "dot_quote",
    "mermaid_quote",
    "to_dot",
    "to_mermaid",
    "write_svg",
]

FORMAT_OF: Final = {".json": "json", ".dot": "dot", ".mmd": "mmd", ".mermaid": "mmd", ".svg": "dot"}
"""The text format ``Graph.write`` writes for each file suffix it knows (``.svg``: DOT, then
Graphviz's ``dot``)."""
SUFFIXES: Final = tuple(FORMAT_OF)
"""Those suffixes, in the order error messages list them."""

MERMAID_MAX_EDGES: Final = 500
"""Mermaid's default ``maxEdges``: it draws no flowchart with more (GitHub, mermaid.live)."""


@attrs.frozen
class View:
    """``nodes`` as ``(url, fetched)`` in order; ``edges`` as ``(source, rel, target)``
    with source and target positions in ``nodes``; ``labels`` a person's name for some
    URLs (a mailbox's e-mail, an item's subject) to show instead of the URL's tail.

    A drawing leaves out an edge from a node to itself (every ``self`` link, a page's own
    ``first``): it is in the JSON, and in a picture it is only noise.
    """

    nodes: Sequence[tuple[str, bool]]
    edges: Sequence[tuple[int, str, int]]
    labels: Mapping[str, str] = attrs.field(factory=dict)


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
        human = view.labels.get(url)
        label = f"{human}\n{url}" if human else url
        lines.append(f"  n{seq} [label={dot_quote(label)}{style}];")
    lines.extend(
        f"  n{src} -> n{dst} [label={dot_quote(rel)}];"
        for src, rel, dst in view.edges
        if src != dst
    )
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
        label = mermaid_quote(view.labels.get(url) or short_label(url))
        lines.append(f"  n{seq}[{label}]" if fetched else f"  n{seq}({label})")
    lines.extend(
        f"  n{src} -->|{mermaid_quote(rel)}| n{dst}" for src, rel, dst in view.edges if src != dst
    )
    return "\n".join(lines) + "\n"


def write_svg(dot: str, target: Path) -> None:
    """Render DOT text to ``target`` with Graphviz's ``dot -Tsvg``.

    Raises:
        ValueError: ``dot`` is not on the PATH, or it failed (its first line of stderr).
    """
    program = shutil.which("dot")
    if program is None:
        raise ValueError(
            f"cannot write {target}: an SVG needs Graphviz's dot on the PATH; write "
            f"{target.with_suffix('.dot').name} and run dot -Tsvg on it elsewhere"
        )
    done = subprocess.run(  # noqa: S603  a fixed program, no shell, our own input
        [program, "-Tsvg", "-o", str(target)],
        input=dot.encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        first = done.stderr.decode(errors="replace").strip().splitlines()[:1]
        raise ValueError(f"cannot write {target}: dot failed: {''.join(first)}")


def dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_MERMAID_ESCAPES: Final[Mapping[str, str]] = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}
_MERMAID_SPECIAL = re.compile('[#"<>]')


def mermaid_quote(text: str) -> str:
    escaped = _MERMAID_SPECIAL.sub(lambda m: _MERMAID_ESCAPES[m[0]], text.replace("\n", " "))
    return f'"{escaped}"'
