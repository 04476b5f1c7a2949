"""What the command line shows: documents, JSON, the live progress, summaries, error
lines and the request log."""

from __future__ import annotations

import argparse
import http
import io
import json
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

import halnav

if TYPE_CHECKING:
    pass
from halnav.errors import HalnavError, printable

from ._common import (
    _EXIT_FAILURES,
    _EXIT_STOPPED,
    _MAX_ITEMS_SHOWN,
    _printable,
)

# -- printing documents -------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list | set | frozenset):
        return list(value)
    return str(value)


def _counts(counts: Mapping[str, int]) -> str:
    """``a 1, b 2``: counts by name, sorted by name."""
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def _dumps(value: object, *, indent: int | None = 2) -> str:
    """JSON for the terminal: non-ASCII text as it is, but every non-printable character
    (C1 controls, bidirectional overrides) as a ``\\uXXXX`` escape - the same JSON."""
    return _json_printable(
        json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    )


# Non-printable characters json.dumps(ensure_ascii=False) leaves as they are (it escapes
# only U+0000-U+001F, and the layout's newlines must stay).
_JSON_UNSAFE: Final = re.compile(r"[^\n\x20-\x7e]")


def _json_printable(text: str) -> str:
    """JSON text with its non-printable characters as ``\\uXXXX`` escapes (the same JSON)."""
    return _JSON_UNSAFE.sub(_json_escape, text)


class _TerminalRecords(io.TextIOBase):
    """A terminal's standard output for JSON Lines records: each line as :func:`_dumps`
    escapes it (the same JSON, nothing a server sent reaches the terminal raw)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_json_printable(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _records_to_stdout() -> TextIO:
    """Standard output for a walk's records: escaped when it is a terminal."""
    if sys.stdout.isatty():
        return cast(TextIO, _TerminalRecords(sys.stdout))
    return sys.stdout


def _json_escape(found: re.Match[str]) -> str:
    char = found[0]
    if char.isprintable():
        return char
    code = ord(char)
    if code > 0xFFFF:  # a surrogate pair, as JSON spells it
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(printable(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in ([printable(cell) for cell in row] for row in rows)
    ]


def _label(doc: halnav.Document) -> str:
    """A page item's name in the readable view: its title, else its id."""
    if doc.title is not None:
        return doc.title
    ident = doc.state.get("id")
    return str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) else ""


def render(doc: halnav.Document) -> str:
    """A readable summary of ``doc``: repr, URL, state as JSON, links, actions, page items."""
    lines = [repr(doc), f"url: {doc.url}"]
    if doc.state:
        lines.append("state:")
        lines.extend("  " + line for line in _dumps(doc.state).splitlines())
    link_rows: list[list[str]] = []
    for rel in doc.rels:
        for link in doc.links_for(rel):
            extra = " (templated)" if link.templated else ""
            if link.name is not None:
                extra += f" [name={link.name}]"
            if link.title is not None:
                extra += f" ({link.title})"
            link_rows.append([rel, link.href + extra])
    if link_rows:
        lines.append("links:")
        lines.extend(_table(link_rows))
    if doc.actions:
        lines.append("actions:")
        actions = [doc.action(name) for name in doc.action_names]
        lines.extend(_table([[a.name, a.method, a.target] for a in actions]))
        for action in actions:
            if action.form is not None and action.form.properties:
                fields = ", ".join(
                    prop.name + ("*" if prop.required else "") + f" ({prop.type})"
                    for prop in action.form.properties
                )
                lines.append(f"    {action.name} takes: {fields}  (* required)")
    if doc.items:
        lines.append(f"items ({len(doc.items)}):")
        rows = [
            [f"[{i}]", _label(item) or "-", item.url]
            for i, item in enumerate(doc.items[:_MAX_ITEMS_SHOWN])
        ]
        lines.extend(_table(rows))
        if len(doc.items) > _MAX_ITEMS_SHOWN:
            lines.append(f"  ... {len(doc.items) - _MAX_ITEMS_SHOWN} more")
    if doc.embedded:
        lines.append("embedded:")
        lines.extend(
            f"  {rel}: {len(docs)} document(s)" for rel, docs in sorted(doc.embedded.items())
        )
    return "\n".join(lines)


def _print_document(doc: halnav.Document, *, as_json: bool) -> None:
    """The readable view, or with ``as_json`` the JSON the server sent (``Document.source``:
    the navigator keeps it for these commands) - ``jq`` sees what the server said."""
    if not as_json:
        print(render(doc))
    elif doc.source is not None:
        print(_dumps(doc.source))
    else:  # a document no JSON was parsed for (an empty answer)
        print(_dumps(halnav.unstructure(doc)))


class _DownloadMeter:
    """A byte counter with rate (and an ETA when the size is announced) for one download,
    on a terminal's stderr, drawn by rich like the walk's progress line."""

    def __init__(self, stream: TextIO, name: str) -> None:
        from rich.console import Console  # noqa: PLC0415  only on a terminal
        from rich.live import Live  # noqa: PLC0415  only on a terminal

        self._live = Live(
            console=Console(file=stream, highlight=False, soft_wrap=False),
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._name = _printable(name)
        self._started = time.monotonic()
        self._shown = 0.0

    def __call__(self, size: int, total: int | None) -> None:
        from rich.text import Text  # noqa: PLC0415  only on a terminal

        now = time.monotonic()
        if now - self._shown < 0.2 and (total is None or size < total):
            return
        if not self._shown:
            self._live.start()
        self._shown = now
        rate = size / max(now - self._started, 1e-6)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{_mib(size)}", style="bold")
        if total:
            line.append(f" of {_mib(total)} ({100 * size / total:.0f}%)")
        line.append(f" at {_mib(rate)}/s")
        if total and rate > 0 and size < total:
            line.append(f", {_clock((total - size) / rate)} left")
        line.append(f"  {self._name}")
        self._live.update(line, refresh=True)

    def done(self) -> None:
        if self._shown:
            self._live.stop()


def _mib(value: float) -> str:
    return f"{value / (1 << 20):,.1f} MiB"


class _Progress:
    """The live progress line of a walk on a terminal's stderr, drawn by rich: one line
    cropped to the terminal's width (it never wraps, whatever the width), most important
    figures first, ``NO_COLOR`` honoured. Other lines printed to stderr meanwhile (warnings)
    appear above it."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console  # noqa: PLC0415  only on a terminal
        from rich.live import Live  # noqa: PLC0415  only on a terminal

        self._console = Console(file=stream, highlight=False, soft_wrap=False)
        self._live = Live(
            console=self._console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,  # records may be going to stdout
            redirect_stderr=True,
        )
        self._shown = False

    def __call__(self, stats: halnav.CrawlStatistics) -> None:
        from rich.text import Text  # noqa: PLC0415  only on a terminal

        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{stats.documents:,} documents", style="bold")
        if stats.resumed_documents:
            line.append(f" ({stats.documents - stats.resumed_documents:,} new)")
        line.append(f"  {stats.rate:,.0f}/s  {_clock(stats.elapsed)}")
        if stats.failures or stats.action_failures:
            failed = stats.failures + stats.action_failures
            line.append(f"  failures {failed:,}", style="red")
        if stats.actions:
            line.append(f"  actions {stats.actions:,}")
        line.append(f"  queue {stats.queued:,}  in flight {stats.in_flight}")
        if stats.retries:
            line.append(f"  retries {stats.retries:,}", style="yellow")
        if stats.throttled:
            line.append(f"  throttled {stats.throttled:,}", style="yellow")
        line.append(f"  received {_mib(stats.bytes_received)}")
        if stats.bytes_exported or stats.exporting:
            exported = stats.bytes_exported + stats.exporting
            line.append(f"  exported {_mib(exported)}")
        if not self._shown:
            self._live.start()
            self._shown = True
        self._live.update(line, refresh=True)

    def clear(self) -> None:
        if self._shown:
            self._live.stop()  # transient: the line goes, the summary takes its place
            self._shown = False


def _clock(seconds: float) -> str:
    """``42.1 s`` under a minute, else ``12:34`` or ``1:02:03``: how long, readably."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _PlannedPrinter:
    """A dry run's sink: one line on stderr per action request it would have sent."""

    def event(self, event: halnav.CrawlEvent) -> None:
        if isinstance(event, halnav.ActionPlanned):
            request = event.request
            body = "" if request.json is None else " " + json.dumps(request.json, default=str)
            print(
                f"halnav: dry run: {request.method} {_printable(request.url)}"
                f"{_printable(body)} (action {_printable(event.action)!r} on "
                f"{_printable(event.url)})",
                file=sys.stderr,
            )


def _summary_record(summary: halnav.CrawlSummary, graph: str | None) -> dict[str, Any]:
    return {
        "documents": summary.documents,
        "failures": summary.failures,
        "failures_by_type": dict(summary.failures_by_type),
        "actions": summary.actions,
        "action_failures": summary.action_failures,
        "elapsed": round(summary.elapsed, 3),
        "complete": summary.complete,
        "finished": summary.finished,
        "left": summary.left,
        "stopped": summary.stopped,
        "offsite_links": dict(summary.offsite_links),
        "action_items": dict(summary.action_items),
        "planned": summary.planned,
        "resumed": summary.resumed,
        "new_documents": summary.new_documents if summary.resumed else summary.documents,
        "retries": summary.retries,
        "throttled": summary.throttled,
        "deprecated": summary.deprecated,
        "truncated": summary.truncated,
        "endless": list(summary.endless),
        "output": str(summary.output) if summary.output is not None else "-",
        "graph": graph,
    }


def _summary_lines(
    summary: halnav.CrawlSummary, graph: str | None, state_dir: str | None = None
) -> list[str]:
    """The readable summary: what this run did (a resumed walk's earlier part said apart),
    failures, retries, where the records are, and what the state directory is for."""
    new = summary.new_documents if summary.resumed else summary.documents
    rate = new / summary.elapsed if summary.elapsed > 0 else 0.0
    by_type = _counts(summary.failures_by_type)
    if summary.complete:
        state = ""
    elif summary.stopped is not None:
        state = f" (stopped early, {summary.left} left: {summary.stopped})"
    elif not summary.finished:
        state = f" (incomplete: a limit stopped the walk, {summary.left} left)"
    else:
        state = " (finished with failures)"
    output = summary.output if summary.output is not None else "stdout"
    if summary.resumed and new == 0 and summary.complete:
        head = (
            f"the walk was already complete: {summary.documents:,} documents in {output}; "
            "nothing to do"
        )
    elif summary.resumed:
        head = (
            f"resumed: {summary.documents - new:,} documents from before + {new:,} new in "
            f"{_clock(summary.elapsed)} ({rate:,.0f}/s)" + state
        )
    else:
        head = (
            f"crawled {summary.documents:,} documents in {_clock(summary.elapsed)} ({rate:,.0f}/s)"
            + state
        )
    lines = [
        head,
        f"  failures: {summary.failures}" + (f" ({by_type})" if by_type else ""),
        f"  actions:  {summary.actions} ({summary.action_failures} failed)",
    ]
    if summary.planned:
        lines.append(f"  dry run:  {summary.planned} action requests printed, none sent")
    if summary.action_items:
        hits = ", ".join(f"{_printable(k)} {v}" for k, v in sorted(summary.action_items.items()))
        cut = (
            f"; {summary.truncated} answers cut short by --max-hits: not complete"
            if summary.truncated
            else " (every page)"
        )
        lines.append(f"  hits:     {hits}{cut}")
    if summary.retries:
        throttled = f", {summary.throttled} throttled" if summary.throttled else ""
        lines.append(f"  retries:  {summary.retries}{throttled}")
    if summary.deprecated:
        lines.append(
            f"  deprecated: {summary.deprecated} documents answered with Deprecation/Sunset "
            'headers (their records say so under "deprecated")'
        )
    lines.append(f"  records:  {output}")
    if graph is not None:
        lines.append(f"  graph:    {graph}")
    if state_dir is not None:
        why = (
            "the walk is complete; delete it to start over"
            if summary.complete
            else "run the same command again to resume"
        )
        lines.append(f"  state:    {state_dir} ({why})")
    return lines


def _walk_status(summary: halnav.CrawlSummary) -> int:
    """The exit status of a walk: 4 stopped early, 3 finished with failures, else 0.

    A walk cut short by ``--max-documents`` did what was asked: 0 (``complete`` is false).
    """
    if summary.stopped is not None:
        return _EXIT_STOPPED
    if summary.failures or summary.action_failures:
        return _EXIT_FAILURES
    return 0


def _say_offsite(summary: halnav.CrawlSummary) -> None:
    """Name the links a same-origin walk held back (other origins, endless next chains),
    and how to follow them."""
    for page in summary.endless:
        print(
            f"halnav: note: the next of {_printable(page)} was not followed: the third empty "
            "page in a row of its collection (a server whose next never ends); the walk is "
            "not complete",
            file=sys.stderr,
        )
    if not summary.offsite_links:
        return
    total = sum(summary.offsite_links.values())
    top = sorted(summary.offsite_links.items(), key=lambda kv: -kv[1])[:3]
    named = ", ".join(f"{_printable(origin)} ({count})" for origin, count in top)
    more = f" and {len(summary.offsite_links) - 3} more" if len(summary.offsite_links) > 3 else ""
    print(
        f"halnav: note: {total} links to other origins were not followed: {named}{more}; "
        "--rebase-links treats them as links to the server you connected to, "
        "--any-origin follows them",
        file=sys.stderr,
    )


def _say_unmatched(summary: halnav.CrawlSummary, hint: str) -> None:
    """Name each action rule that ran on no document: asked-for work that did not happen
    (and the actions the documents did offer)."""
    offered = summary.offered_actions
    shown = ", ".join(_printable(name) for name in offered[:12])
    more = f" and {len(offered) - 12} more" if len(offered) > 12 else ""
    totals: dict[str, int] = {}
    for name, count in summary.rule_matches:  # rules of one name (a search per workload)
        totals[name] = totals.get(name, 0) + count
    for name, count in totals.items():
        if count == 0 and summary.finished:
            print(f"halnav: note: action {_printable(name)!r} ran on no document: {hint}"
                  + (f"; the documents offered {shown}{more}" if offered else ""),
                  file=sys.stderr)  # fmt: skip


def _say_stopped(summary: halnav.CrawlSummary, state: str | None) -> None:
    if summary.stopped is None:
        return
    how = (
        "run the same command again to resume it"
        if state is not None
        else "add --state DIR to make the next walk resumable"
    )
    print(
        f"halnav: error: walk stopped early: {printable(summary.stopped)}; {how}", file=sys.stderr
    )


def _failure_kind(error: halnav.ErrorInfo) -> str:
    """How a failure is grouped: ``HTTP 503 Service Unavailable``, else its error type."""
    if error.status is not None:
        try:
            return f"HTTP {error.status} {http.HTTPStatus(error.status).phrase}"
        except ValueError:
            return f"HTTP {error.status}"
    return error.type


# -- entry --------------------------------------------------------------------------------------


def _show_warning(  # noqa: PLR0917  the signature warnings.showwarning has
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    del filename, lineno, line  # one line for the user, no source excerpt
    print(f"halnav: warning: {message}", file=file or sys.stderr)


# The library names its own parameters in its messages; on the command line they are options.
_CLI_WORDS: Final = (
    ("cafile= / --cafile", "--cafile"),
    ("insecure=True / --insecure", "--insecure"),
    ("a resumable walk (state_dir) needs output to be a file path", "--state needs --out FILE"),
    ("cannot be resumable (state_dir)", "cannot be resumed (drop --state)"),
    ("Use another state_dir", "Use another --state DIR"),
    ("(Limits.answer_timeout, --answer-timeout)", "(--answer-timeout)"),
)


def _error_line(exc: BaseException, secrets: Sequence[str]) -> str:
    """One line for ``halnav: error:``: the error in the command line's words (options,
    not parameters; ``nofile.json: no such file or directory``, not ``[Errno 2] ...``),
    with its notes, printable and without the command's secrets."""
    if isinstance(exc, OSError) and not isinstance(exc, HalnavError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        text = f"{where}{exc.strerror[:1].lower()}{exc.strerror[1:]}"
    else:
        text = str(exc) or type(exc).__name__
    for library, cli in _CLI_WORDS:
        text = text.replace(library, cli)
    notes = getattr(exc, "__notes__", None) or []
    if notes:
        text += " (" + "; ".join(str(n) for n in notes) + ")"
    return " ".join(halnav.redact(printable(text), secrets).split())


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found


class _RequestLog:
    """``-v``: halnav's debug log (each request, each retry) on stderr while a command runs,
    each line made printable and stripped of the command's secrets."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._handler = logging.StreamHandler(sys.stderr)
        self._handler.setFormatter(_RequestLogFormat(args))
        self._logger = logging.getLogger("halnav")
        self._level = self._logger.level

    def __enter__(self) -> None:
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.DEBUG)

    def __exit__(self, *_exc: object) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)


class _RequestLogFormat(logging.Formatter):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self._args = args

    def format(self, record: logging.LogRecord) -> str:
        text = halnav.redact(record.getMessage(), getattr(self._args, "secrets", ()))
        return f"halnav: {printable(text)}"
