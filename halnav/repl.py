"""``halnav repl URL``: an asyncio REPL with a Navigator and its entry document bound.

It works like ``python -m asyncio`` (CPython's ``Lib/asyncio/__main__.py``): the
event loop runs in the main thread, a :class:`code.InteractiveConsole` that
compiles with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` reads lines in a second thread and
hands each compiled statement to the loop, so ``await`` works at top level and
``nav``'s HTTP session lives on one loop for the whole session::

    $ halnav repl https://vbo:4443/v5/RestoreSessions/ID/Organization --username u --password -
    >>> doc  # doctest: +SKIP
    <Document .../ID/Organization rels=[mailboxes, self] actions=[exporttoPst, search]>
    >>> mailboxes = await nav.follow(doc, "mai<Tab>  # doctest: +SKIP

(``<Tab>`` completes ``"mailboxes"``.) Tab completion is Python's (:mod:`rlcompleter`)
plus, inside a string argument of ``follow``/``follow_all``/``act`` or ``link``/
``find_link``/``links_for``/
``action``/``find_action``, the rels or action names of the document in question:
see :func:`complete`, a pure function of the line, the word and the namespace.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import code
import concurrent.futures
import contextlib
import inspect
import keyword
import os
import pprint
import re
import rlcompleter
import sys
import threading
import traceback
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

import halnav
from halnav import Document, Navigator, veeam
from halnav.cli import render
from halnav.errors import HalnavError, printable

__all__ = ["Completer", "complete", "history_file", "run", "show"]

# Calls whose string arguments are rels, and those whose string arguments are action names.
_NAV_RELS: Final = frozenset({"follow", "follow_all"})
_NAV_ACTIONS: Final = frozenset({"act"})
_DOC_RELS: Final = frozenset({"link", "find_link", "links_for"})
_DOC_ACTIONS: Final = frozenset({"action", "find_action"})
_CALLEE = re.compile(r"([A-Za-z_][\w.\[\]]*)\s*$")
_STRING_PREFIX = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*=\s*)?[rRuU]?$")
_OPENERS: Final = {"(": ")", "[": "]", "{": "}"}

EXAMPLES: Final = (
    'await nav.follow(doc, "mailboxes")',
    "doc.rels",
    'await nav.act(doc, "search", json=veeam.search("x"))',
)


# -- completion (pure) -------------------------------------------------------------------------


@attrs.define
class _Frame:
    """An open bracket while scanning: the callee before a ``(``, the arguments so far."""

    callee: str
    args: list[str]
    start: int  # where the argument in progress begins


@attrs.frozen
class _StringArg:
    """The line ends inside a string literal that is a whole argument of a call."""

    callee: str
    args: tuple[str, ...]  # the completed arguments before it, as source text
    typed: str  # what is inside the quotes so far


def _open_string_argument(line: str) -> _StringArg | None:
    """Scan ``line``; if it ends inside a string that is a call's argument, describe it."""
    stack: list[_Frame] = []
    quote = ""
    string_start = 0
    i = 0
    while i < len(line):
        char = line[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
            i += 1
            continue
        if char in "\"'":
            quote = char * 3 if line.startswith(char * 3, i) else char
            string_start = i
            i += len(quote)
            continue
        if char == "#":
            return None  # a comment: nothing to complete
        if char in _OPENERS:
            callee = ""
            if char == "(":
                match = _CALLEE.search(line, 0, i)
                callee = match[1] if match else ""
            stack.append(_Frame(callee, [], i + 1))
        elif char in ")]}":
            if stack:
                stack.pop()
        elif char == "," and stack:
            frame = stack[-1]
            frame.args.append(line[frame.start : i].strip())
            frame.start = i + 1
        i += 1
    if not quote or not stack:
        return None
    frame = stack[-1]
    if not frame.callee or _STRING_PREFIX.match(line[frame.start : string_start]) is None:
        return None
    return _StringArg(frame.callee, tuple(frame.args), line[string_start + len(quote) :])


def _lookup(name: str, namespace: Mapping[str, object]) -> object:
    if not name.isidentifier() or keyword.iskeyword(name):
        return None
    if name in namespace:
        return namespace[name]
    return getattr(builtins, name, None)


def _literal(text: str) -> str | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _evaluate(node: ast.expr, namespace: Mapping[str, object]) -> object:
    """A name, attribute or constant subscript (``mb.items[0]``); never a call."""
    if isinstance(node, ast.Name):
        return _lookup(node.id, namespace)
    if isinstance(node, ast.Attribute) and not node.attr.startswith("_"):
        base = _evaluate(node.value, namespace)
        return None if base is None else getattr(base, node.attr, None)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = _evaluate(node.value, namespace)
        key = node.slice.value
        try:
            if isinstance(base, tuple | list) and isinstance(key, int):
                return base[key]
            if isinstance(base, Mapping):
                return base.get(key)
        except (LookupError, TypeError):
            return None
    return None


def _document(
    expression: str, namespace: Mapping[str, object], fallback: Document | None
) -> Document | None:
    """The Document ``expression`` names (see ``_evaluate``), else ``fallback``."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return fallback
    value = _evaluate(tree.body, namespace)
    return value if isinstance(value, Document) else fallback


def _graph_rels(nav: object, doc: Document, chain: tuple[str, ...]) -> list[str] | None:
    """The rels of the document reached by ``chain`` from ``doc``, read from ``nav.graph``."""
    if not isinstance(nav, Navigator):
        return None
    try:
        graph = nav.graph
        url = doc.canonical_url
        for selector in chain:
            sel = halnav.lowlevel.parse_selector(selector)
            targets = graph.neighbors(url, sel.rel)
            if not targets:
                return None
            index = sel.index if sel.index is not None else 0
            url = targets[index]
        node = graph.node(url)
    except (HalnavError, LookupError, ValueError):
        return None
    if not node.fetched:
        return None
    return sorted({rel for rel, _target in node.links})


def _candidates(
    arg: _StringArg, namespace: Mapping[str, object], last: Document | None
) -> list[str]:
    receiver, _, name = arg.callee.rpartition(".")
    position = len(arg.args)
    if name in _NAV_RELS | _NAV_ACTIONS:
        if position == 0:
            return []  # the first argument is the document (or a URL): nothing to offer
        doc = _document(arg.args[0], namespace, last)
        if doc is None:
            return []
        if name in _NAV_ACTIONS:
            if position != 1:
                return []
            nav = _lookup(receiver, namespace) if receiver else None
            if isinstance(nav, Navigator):
                return list(nav.action_names(doc))  # a profile's unadvertised ones too
            return list(doc.action_names)
        if name == "follow_all":
            if position != 1:
                return []
            rels = set(doc.rels)
            for item in doc.items:
                rels.update(item.rels)
            return sorted(rels)
        if position == 1:
            return _selectors(doc)
        chain = tuple(_literal(a) for a in arg.args[1:])
        if any(rel is None for rel in chain):
            return []
        nav = _lookup(receiver, namespace) if receiver else None
        return _graph_rels(nav, doc, tuple(r for r in chain if r is not None)) or []
    if name in _DOC_RELS | _DOC_ACTIONS and receiver and position == 0:
        doc = _document(receiver, namespace, last)
        if doc is None:
            return []
        return list(doc.action_names) if name in _DOC_ACTIONS else _selectors(doc)
    return []


def _selectors(doc: Document) -> list[str]:
    """What may follow ``doc``: its rels, and for a rel with several links each one by
    ``name`` (``ex[name:one]``) or position (``ex[1]``); ``item[N]`` on a page."""
    found: list[str] = []
    for rel in doc.rels:
        found.append(rel)
        links = doc.links_for(rel)
        if len(links) > 1:
            found.extend(
                f"{rel}[name:{link.name}]" if link.name is not None else f"{rel}[{index}]"
                for index, link in enumerate(links)
            )
    if doc.items and "item" not in doc.rels:
        found.extend(["item", *(f"item[{index}]" for index in range(min(len(doc.items), 30)))])
    return found


def complete(
    line: str,
    text: str,
    namespace: Mapping[str, object],
    *,
    last_document: Document | None = None,
) -> list[str]:
    """Completions of ``text`` (the word before the cursor) given ``line`` (the line up to it).

    Inside a string that is an argument of ``nav.follow(doc, "...``,
    ``follow_all``, ``act`` or ``doc.link("...``, ``find_link``, ``links_for``,
    ``action``, ``find_action``, the candidates are the rels (or action names) of
    that document: the call's first argument (or the receiver for the Document
    methods) when it is a name bound to a Document in ``namespace``, else
    ``last_document`` (the last one printed). Later rels of a ``follow`` chain
    come from the navigator's graph. Elsewhere, it is Python's own name and
    attribute completion (:class:`rlcompleter.Completer`).

    >>> complete('nav.follow(doc, "ma', "ma", {"doc": doc})          # doctest: +SKIP
    ['mailboxes']
    """
    arg = _open_string_argument(line)
    if arg is not None:
        typed = arg.typed
        cut = len(typed) - len(text) if typed.endswith(text) else len(typed)
        wanted = typed.lower()
        return [
            name[cut:]
            for name in _candidates(arg, namespace, last_document)
            if name.lower().startswith(wanted)
        ]
    if _inside_string_or_comment(line):
        return []
    python = rlcompleter.Completer(dict(namespace))
    if "." in text:
        return python.attr_matches(text)
    return python.global_matches(text)


def _inside_string_or_comment(line: str) -> bool:
    quote = ""
    i = 0
    while i < len(line):
        if quote:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif line[i] in "\"'":
            quote = line[i] * 3 if line.startswith(line[i] * 3, i) else line[i]
            i += len(quote)
            continue
        elif line[i] == "#":
            return True
        i += 1
    return bool(quote)


class Completer(rlcompleter.Completer):
    """The readline completer: :func:`complete` on readline's line buffer."""

    def __init__(self, namespace: dict[str, Any], last: Callable[[], Document | None]) -> None:
        super().__init__(namespace)
        self._namespace = namespace
        self._last = last
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        """readline's protocol: the ``state``-th completion of ``text``, or None."""
        if state == 0:
            import readline  # noqa: PLC0415  only on platforms and terminals that have it

            line = readline.get_line_buffer()[: readline.get_endidx()]
            if not line.strip():
                self._matches = ["\t"]  # Tab on an empty line indents, as in Python's REPL
            else:
                try:
                    self._matches = complete(
                        line, text, self._namespace, last_document=self._last()
                    )
                except Exception:  # noqa: BLE001  a completer must never break the prompt
                    self._matches = []
        return self._matches[state] if state < len(self._matches) else None


# -- the console -------------------------------------------------------------------------------


class _Console(code.InteractiveConsole):
    """Compiles with top-level await and runs each statement on the event loop."""

    def __init__(self, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(namespace)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self._namespace = namespace
        self._loop = loop
        self._task: asyncio.Task[object] | None = None
        self._interrupted = False

    def interrupt(self) -> None:
        """Ctrl-C in the main thread: cancel the statement that is running (loop thread)."""
        if self._task is not None and not self._task.done():
            self._interrupted = True
            self._task.cancel()

    def runcode(self, code: types.CodeType) -> None:
        future: concurrent.futures.Future[object] = concurrent.futures.Future()

        def finish(task: asyncio.Task[object]) -> None:
            if task.cancelled():
                future.set_exception(KeyboardInterrupt())
            elif (exc := task.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(task.result())

        def start() -> None:  # on the loop thread
            self._task = None
            self._interrupted = False
            function = types.FunctionType(code, self._namespace)
            try:
                result = function()
            except BaseException as exc:  # noqa: BLE001  handed to the console thread
                self._interrupted = isinstance(exc, KeyboardInterrupt)
                future.set_exception(exc)
                return
            if not inspect.iscoroutine(result):
                future.set_result(result)
                return
            # The console thread waits on this task; Ctrl-C cancels it (see interrupt()).
            self._task = self._loop.create_task(result)
            self._task.add_done_callback(finish)

        self._loop.call_soon_threadsafe(start)
        try:
            future.result()
        except SystemExit:
            raise
        except KeyboardInterrupt:
            self.write("\nKeyboardInterrupt\n")
        except HalnavError as exc:
            # halnav's messages say what was there; the aiohttp frames below would hide that.
            notes = "".join(f"\n  {printable(note)}" for note in getattr(exc, "__notes__", ()))
            self.write(f"{type(exc).__name__}: {exc}{notes}\n")
        except BaseException as exc:  # noqa: BLE001  shown as the standard REPL shows it
            self.write(_user_traceback(exc))


def _user_traceback(exc: BaseException) -> str:
    """The traceback of what the user typed: from the first ``<console>`` frame on, without
    the frames of the REPL's machinery (this module, concurrent.futures, asyncio)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<console>":
        tb = tb.tb_next
    if tb is None:  # nothing the user typed is on it: the error line alone
        return "".join(traceback.format_exception_only(exc))
    return "".join(traceback.format_exception(type(exc), exc, tb))


def show(value: object) -> None:
    """Print ``value`` readably: a Document as ``halnav get`` shows it (state, links,
    actions, page items), anything else pretty-printed."""
    text = render(value) if isinstance(value, Document) else pprint.pformat(value, width=100)
    sys.stdout.write("\n".join(printable(line) for line in text.split("\n")) + "\n")


@attrs.define
class _Display:
    """``sys.displayhook`` for the REPL: readable reprs, and remembers the last Document."""

    last: Document | None = None

    def __call__(self, value: object) -> None:
        if value is None:
            return
        builtins._ = value  # type: ignore[attr-defined]  # what the default hook does
        if isinstance(value, Document):
            self.last = value
        if isinstance(value, types.MappingProxyType):  # doc.state: show it as the dict it is
            value = dict(value)
        if isinstance(value, list | tuple | dict | set | frozenset):
            text = pprint.pformat(value, width=100)
        else:
            text = repr(value)
        # Any repr, not only halnav's, shows what a server sent without control characters.
        sys.stdout.write("\n".join(printable(line) for line in text.split("\n")) + "\n")


def banner(nav: Navigator, doc: Document | None) -> str:
    """What the REPL says first: what is bound, and three lines to try."""
    lines = [
        f"halnav {halnav.__version__} asyncio REPL (Python {sys.version.split()[0]}): "
        "use 'await' directly.",
        f"  nav     {nav!r}",
        f"  doc     {doc!r}"
        if doc is not None
        else "  doc     None (the entry document could not be fetched: see above)",
        "  halnav, veeam, asyncio, show (show(doc): the readable view of halnav get)",
        "Try:",
        *(f"  >>> {example}" for example in EXAMPLES),
        'Tab completes names, and rels / action names inside follow(doc, "...") and '
        'act(doc, "...").',
        "exit() or Ctrl-D quits (the navigator is closed).",
    ]
    return "\n".join(lines)


def _nothing() -> None:
    """No history to save (not a terminal, or no readline)."""


def history_file() -> Path:
    """Where the REPL keeps its history between sessions: ``$HALNAV_HISTORY``, else
    ``$XDG_STATE_HOME/halnav/history`` (``~/.local/state/halnav/history``)."""
    given = os.environ.get("HALNAV_HISTORY")
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "halnav" / "history"


def _install_readline(completer: Completer) -> Callable[[], None]:
    """Tab completion and the history file; returns what saves the history at the end."""
    try:
        import readline  # noqa: PLC0415  absent on some platforms
    except ImportError:
        return _nothing
    readline.set_completer(completer.complete)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    path = history_file()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(10_000)

    def save() -> None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            readline.write_history_file(path)
            path.chmod(0o600)  # what was typed may hold a token: the owner's only

    return save


def _interact(
    console: _Console, loop: asyncio.AbstractEventLoop, text: str, status: list[int]
) -> None:
    try:
        console.interact(banner=text, exitmsg="")
    except SystemExit as exc:  # exit(n) / sys.exit(n): the REPL's exit status is n
        code = exc.code
        status.append(code if isinstance(code, int) else (0 if code is None else 1))
    finally:
        loop.call_soon_threadsafe(loop.stop)


def run(nav: Navigator, url: str) -> int:
    """Fetch ``url`` with ``nav``, then run the REPL until exit; close ``nav``.

    Returns the exit status: 0, or the ``n`` of ``exit(n)``. When the entry document cannot
    be fetched, the error is shown and the REPL opens with ``doc = None`` (to look into
    why: ``await nav.get(...)``). Must be called from the main thread with no event loop
    running (it owns the loop).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    display = _Display()
    saved_hook = sys.displayhook
    status: list[int] = []
    save_history: Callable[[], None] = _nothing  # replaced on a terminal
    try:
        doc: Document | None
        try:
            doc = loop.run_until_complete(nav.get(url))
        except HalnavError as exc:
            notes = "".join(f" ({printable(note)})" for note in getattr(exc, "__notes__", ()))
            sys.stderr.write(f"halnav: error: {type(exc).__name__}: {printable(exc)}{notes}\n")
            doc = None
        namespace: dict[str, Any] = {
            "__name__": "__console__",
            "__doc__": None,
            "asyncio": asyncio,
            "halnav": halnav,
            "veeam": veeam,
            "nav": nav,
            "doc": doc,
            "show": show,
        }
        console = _Console(namespace, loop)
        if sys.stdin is not None and sys.stdin.isatty():
            save_history = _install_readline(Completer(namespace, lambda: display.last))
        sys.displayhook = display
        thread = threading.Thread(
            target=_interact,
            args=(console, loop, banner(nav, doc), status),
            name="halnav-repl",
        )
        # A daemon, as in asyncio's REPL: a thread blocked in input() must not keep us alive.
        thread.daemon = True
        thread.start()
        while True:
            try:
                loop.run_forever()
            except KeyboardInterrupt:
                console.interrupt()
                continue
            except SystemExit:
                break  # a task raised SystemExit: leave like exit()
            break
    finally:
        sys.displayhook = saved_hook
        save_history()
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(nav.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return status[0] if status else 0
