"""Where ``benchmarks/run.py`` writes its figures (a module of its own, so a test can check
the rule without importing the peers' clients)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

HERE = Path(__file__).resolve().parent


def default_output(
    *, quick: bool, rows: Collection[str], every: Collection[str], memory_docs: int | None
) -> Path:
    """The tracked ``results.json`` only for a full run of ``every`` row at the standard
    sizes; anything else (``--quick``, ``--only``, ``--memory-docs``) goes to the untracked
    ``results-quick.json``."""
    whole = not quick and set(rows) == set(every) and memory_docs is None
    return HERE / ("results.json" if whole else "results-quick.json")
