"""The package layering (STYLE.md "The house"): each module imports only the layers below it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from halnav.errors import HalnavError

PACKAGE = Path(__file__).resolve().parents[1] / "halnav"

# What each internal module may import from inside halnav (module names relative to halnav).
# Leaves every layer may use: URL facts and HTTP facts, each in one place.
LEAVES = frozenset({"_urls", "_http"})
CORE = frozenset(
    {
        "_cache",
        "errors",
        "_config",
        "_model",
        "_convert",
        "_auth",
        "_transport",
        "_graph",
        "_graph_export",
        "_apimap",
    }
)
CORE |= LEAVES
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "_urls": frozenset(),
    "_http": frozenset(),
    "_config": frozenset({"errors"}),
    "_model": frozenset({"errors", "_urls"}),
    "_convert": frozenset({"_model", "_config", "errors"} | LEAVES),
    "_auth": frozenset({"errors", "_config", "_http"}),
    "_transport": frozenset({"_auth", "_cache", "_config", "errors", "_version"} | LEAVES),
    # The HTTP cache: answers in, answers out; no I/O but its own SQLite file.
    "_cache": frozenset(),
    "_version": frozenset(),
    "_graph": frozenset({"_model", "errors", "_graph_export", "_apimap"} | LEAVES),
    # The API map: a graph's nodes and edges in, kinds and rels between them out.
    "_apimap": frozenset({"_graph_export"}),
    # The graph's drawings (DOT, Mermaid): a neutral view in, text out.
    "_graph_export": frozenset({"_urls"}),
    "_navigator": CORE,
    # The crawl record format (writer builders and reader) and the resume store: leaves the
    # crawl core uses, each knowing one on-disk format and nothing of HTTP.
    "_records": frozenset({"_model", "errors"}),
    "_resume": frozenset({"errors"}),
    # The walk's compact seen set, its export files, and its events and sinks (the record
    # sink is the one user of the record format's writer).
    "_seen": frozenset(),
    "_exports": frozenset({"_model"}),
    "_sinks": frozenset({"_model", "_records"}),
    "_crawl": CORE | {"_navigator", "_records", "_resume", "_seen", "_exports", "_sinks"},
    # A walk's graph rebuilt from its records: the record reader, the parser, the graph.
    "_walkgraph": frozenset({"_records", "_convert", "_graph", "_model"}),
}
# The profile, the cluster layer and the user interfaces use halnav as a user would: its
# public names only (``halnav``, ``halnav.lowlevel``, ``halnav.errors``...).
PUBLIC_ONLY = frozenset({"veeam", "cluster", "repl", "_demo", "mcp"})
# The command line is a package (options, rendering, commands) held to the same rule: public
# names, its own modules, and the demo it runs.
CLI = "cli"
# The second tier re-exports parts of the core.
ALLOWED["lowlevel"] = frozenset({"_auth", "_convert", "_graph", "_model", "_urls"})
# Pairs that must never import each other, in either direction (the navigator composes them).
APART = [("_transport", "_convert")]


def halnav_imports(source: str, module: str) -> Iterator[str]:
    """Yield every halnav name ``module`` imports, as a dotted name below halnav ('' = package).

    ``module`` is the dotted name relative to halnav (``simulator._data``), used to
    resolve relative imports; ``from . import x`` yields ``x`` when it is a submodule
    name, else the package itself.
    """
    package_parts = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "halnav" or alias.name.startswith("halnav."):
                    yield alias.name.removeprefix("halnav").removeprefix(".")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module is None or not (
                    node.module == "halnav" or node.module.startswith("halnav.")
                ):
                    continue
                base = node.module.removeprefix("halnav").removeprefix(".")
            else:
                parts = package_parts[: len(package_parts) - (node.level - 1)]
                if node.module:
                    parts = [*parts, node.module]
                base = ".".join(parts)
            if base:
                yield base
            else:  # ``from halnav import x`` / ``from . import x``: x may be a submodule
                for alias in node.names:
                    yield alias.name if (PACKAGE / f"{alias.name}.py").exists() else ""


def violations(source: str, module: str) -> list[str]:
    """The imports of ``module`` (relative to halnav) that the layering forbids."""
    found = []
    for name in halnav_imports(source, module):
        top = name.split(".")[0]
        if module.startswith("simulator"):
            ok = top == "simulator"
        elif module.split(".", maxsplit=1)[0] == CLI:
            ok = top == CLI or not top.startswith("_") or top == "_demo"
        elif module in PUBLIC_ONLY:  # only the public API (and the CLI its demo command)
            ok = not top.startswith("_")
        elif module in ALLOWED:
            ok = top in ALLOWED[module]
        else:
            ok = True
        for first, second in APART:
            if {module, top} == {first, second}:
                ok = False
        if not ok:
            found.append(f"halnav.{module} imports halnav.{name or '(package)'}")
    return found


def modules_under_rule() -> list[str]:
    """Every module the table constrains (present or not), plus the simulator's files."""
    names = [*ALLOWED, *sorted(PUBLIC_ONLY)]
    for package in ("simulator", CLI):
        names += sorted(
            f"{package}." + ".".join(path.relative_to(PACKAGE / package).with_suffix("").parts)
            for path in (PACKAGE / package).rglob("*.py")
        )
    return names


@pytest.mark.parametrize("module", modules_under_rule())
def test_module_respects_layering(module: str) -> None:
    """Each present module imports only what its layer allows (absent modules are skipped)."""
    path = PACKAGE.joinpath(*module.split(".")).with_suffix(".py")
    if not path.exists():
        pytest.skip(f"halnav/{module.replace('.', '/')}.py does not exist yet")
    assert violations(path.read_text(encoding="utf-8"), module) == []


def test_core_modules_exist() -> None:
    """The foundation modules the table is built on are present (so the table is not vacuous)."""
    for module in ("errors", "_config", "_model", "_convert"):
        assert (PACKAGE / f"{module}.py").exists(), module


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("_model", "from ._convert import parse\n", ["halnav._model imports halnav._convert"]),
        ("_model", "from .errors import X\n", []),
        ("errors", "import halnav._model\n", ["halnav.errors imports halnav._model"]),
        (
            "_convert",
            "from halnav import _transport\n",
            ["halnav._convert imports halnav._transport"],
        ),
        ("_transport", "from . import _convert\n", ["halnav._transport imports halnav._convert"]),
        (
            "_graph",
            "from ._navigator import Navigator\n",
            ["halnav._graph imports halnav._navigator"],
        ),
        ("_graph", "from ._convert import parse\n", ["halnav._graph imports halnav._convert"]),
        ("_navigator", "from .cli import main\n", ["halnav._navigator imports halnav.cli"]),
        ("cli._commands", "from ._render import render\nfrom halnav import veeam\n", []),
        (
            "cli._render",
            "from .._navigator import Navigator\n",
            ["halnav.cli._render imports halnav._navigator"],
        ),
        ("_navigator", "from ._crawl import crawl\n", ["halnav._navigator imports halnav._crawl"]),
        ("_navigator", "from ._convert import parse\nfrom ._graph import G\n", []),
        ("_crawl", "from ._navigator import Navigator\n", []),
        ("_crawl", "from .repl import main\n", ["halnav._crawl imports halnav.repl"]),
        ("_crawl", "from ._records import encode_line\nfrom ._resume import ResumeStore\n", []),
        ("_records", "from ._model import Document\nfrom .errors import X\n", []),
        ("_records", "from ._navigator import N\n", ["halnav._records imports halnav._navigator"]),
        ("_records", "from ._crawl import Crawler\n", ["halnav._records imports halnav._crawl"]),
        ("_resume", "from ._records import plain\n", ["halnav._resume imports halnav._records"]),
        ("_resume", "from ._model import Document\n", ["halnav._resume imports halnav._model"]),
        ("veeam", "from halnav import Navigator\nfrom . import errors\n", []),
        ("veeam", "from ._model import Document\n", ["halnav.veeam imports halnav._model"]),
        ("veeam", "import halnav._navigator\n", ["halnav.veeam imports halnav._navigator"]),
        ("simulator._data", "from . import _tls\nfrom ._tls import x\n", []),
        (
            "simulator.app",
            "from .._model import Link\n",
            ["halnav.simulator.app imports halnav._model"],
        ),
        (
            "simulator.app",
            "from halnav import parse\n",
            ["halnav.simulator.app imports halnav.(package)"],
        ),
        ("_model", "import json\nfrom attrs import frozen\n", []),
        (
            "_model",
            "def f():\n    from ._graph import G\n",
            ["halnav._model imports halnav._graph"],
        ),
    ],
)
def test_checker_detects_violations(module: str, source: str, expected: list[str]) -> None:
    """The checker flags forbidden imports (also nested and relative ones) and passes allowed ones."""
    assert violations(source, module) == expected


def test_the_public_api_has_two_tiers() -> None:
    """Every error and warning is a top-level name; the second-tier names live in
    halnav.lowlevel, and their old top-level spellings warn (and still work)."""
    import warnings

    import halnav
    from halnav import errors, lowlevel

    raised = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, HalnavError | Warning)
    }
    assert raised <= set(halnav.__all__)
    assert set(lowlevel.__all__).isdisjoint(halnav.__all__)
    moved = ("Selector", "TokenProvider", "canonical_url", "make_converter", "parse_selector")
    assert set(moved) <= set(lowlevel.__all__)
    for name in moved:  # they were top-level names once
        with pytest.warns(DeprecationWarning, match=f"halnav.lowlevel.{name}"):
            assert getattr(halnav, name) is getattr(lowlevel, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert halnav.AuthenticationError is errors.AuthenticationError
