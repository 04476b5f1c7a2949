"""The commands: credentials, the navigator, each command's body, and ``main``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import shutil
import signal
import ssl
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

import halnav
from halnav import lowlevel, veeam

if TYPE_CHECKING:
    from halnav.cluster import ClusterSummary
from halnav.errors import InsecureTLSWarning, printable

from ._common import (
    _EXIT_BROKEN_PIPE,
    _EXIT_ERROR,
    _EXIT_FAILURES,
    _EXIT_INTERRUPTED,
    _EXIT_STOPPED,
    _EXIT_TERMINATED,
    _EXIT_USAGE,
    _FROM_STDIN,
    _HANDLED,
    _MERMAID_MAX_EDGES,
    _SECRET_OPTIONS,
    _T,
    _VEEAM_HINT,
    _VEEAM_PATH,
    _WALKS,
    _printable,
    _UsageError,
)
from ._options import (
    _SIM_EXAMPLE,
    _command_of,
    _completion_script,
    _hoisted,
    _moved_option,
    _of_kinds,
    _parser,
    _subcommand,
)
from ._render import (
    _clock,
    _counts,
    _DownloadMeter,
    _dumps,
    _error_line,
    _failure_kind,
    _json_printable,
    _leaves,
    _mib,
    _PlannedPrinter,
    _print_document,
    _Progress,
    _records_to_stdout,
    _RequestLog,
    _say_offsite,
    _say_stopped,
    _say_unmatched,
    _show_warning,
    _summary_lines,
    _summary_record,
    _table,
    _walk_status,
)

# -- credentials and the navigator --------------------------------------------------------------


@attrs.frozen(repr=False)
class _Credentials:
    """What to authenticate with; ``repr`` never shows a secret."""

    token: str | None = None
    username: str | None = None
    password: str | None = None
    veeam: bool = False
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_auth: str = "basic"
    assertion: str | None = None
    operator: bool = False
    environment: tuple[str, ...] = ()
    """The ``HALNAV_*`` variables the login came from (named when it fails)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        found = (self.token, self.password, self.client_secret, self.assertion)
        return tuple(s for s in found if s)

    @property
    def any(self) -> bool:
        """Whether there is something to log in with."""
        return self.token is not None or self.password is not None or self.assertion is not None

    def oauth2(self) -> halnav.ProviderAuth | None:
        """The generic OAuth2 grant (``--token-url``): password, else client credentials."""
        if self.token_url is None:
            return None
        client_auth: Literal["basic", "form"] = "form" if self.client_auth == "form" else "basic"
        if self.username is not None and self.password is not None:
            return halnav.password_auth(
                self.token_url,
                self.username,
                self.password,
                client_id=self.client_id,
                client_secret=self.client_secret,
                client_auth=client_auth,
            )
        assert self.client_id is not None
        grant = halnav.ClientCredentialsGrant(
            self.token_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            client_auth=client_auth,
        )
        return halnav.ProviderAuth(grant)

    def __repr__(self) -> str:
        kind = "token" if self.token else "password" if self.password else "none"
        return f"<Credentials {kind} veeam={self.veeam}>"


def _read_password() -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return getpass.getpass("password: ")
        except KeyboardInterrupt:
            print(file=sys.stderr)  # end the prompt's line before "interrupted"
            raise
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.rstrip("\r\n")


def _secrets_from_files(args: argparse.Namespace) -> None:
    """``--NAME-file`` into ``args.NAME``; on a terminal, warn about a secret given on the
    command line (scripts and logs are not told each time) and ask for a missing password."""
    for option in _SECRET_OPTIONS:
        attr = option.replace("-", "_")
        path = getattr(args, f"{attr}_file", None)
        given = getattr(args, attr, None)
        if path is not None:
            if given is not None:
                raise _UsageError(f"give --{option} or --{option}-file, not both")
            with Path(path).open(encoding="utf-8") as file:
                value = file.readline().rstrip("\r\n")
            if not value:
                raise ValueError(f"--{option}-file {path}: the first line is empty")
            setattr(args, attr, value)
        elif given not in (None, _FROM_STDIN) and sys.stderr.isatty():  # a person typed it
            print(
                f"halnav: warning: --{option} on the command line is visible to other users "
                f"(ps); use --{option}-file FILE, '-' (stdin) or HALNAV_{attr.upper()}"
                + (", or leave it out to be asked" if option == "password" else ""),
                file=sys.stderr,
            )
    asked = (
        args.username is not None
        and args.password is None
        and not os.environ.get("HALNAV_PASSWORD")
        and sys.stdin is not None
        and sys.stdin.isatty()
    )
    if asked:
        args.password = _FROM_STDIN  # _read_password asks on the terminal, without echo


def _given(args: argparse.Namespace, option: str, variable: str) -> str | None:
    """An option's value (commands without it: None), else its environment variable's."""
    return getattr(args, option, None) or os.environ.get(variable) or None


def _credentials(args: argparse.Namespace) -> _Credentials:
    _secrets_from_files(args)
    token = _given(args, "token", "HALNAV_TOKEN")
    username = _given(args, "username", "HALNAV_USERNAME")
    password = _given(args, "password", "HALNAV_PASSWORD")
    if args.token and (args.username or args.password):
        raise _UsageError("give --token, or --username and --password, not both")
    if args.username or args.password:
        token = None  # explicit user credentials win over HALNAV_TOKEN
    if username is None and password is not None and not args.password:
        # A HALNAV_PASSWORD left in the environment, with no user name anywhere: it is no
        # login, and must not break a command against a public API.
        password = None
    if (username is None) != (password is None) and token is None:
        missing = (
            "--password (or HALNAV_PASSWORD)"
            if password is None
            else "--username (or HALNAV_USERNAME)"
        )
        raise _UsageError(f"--username and --password go together; {missing} is missing")
    if token is not None:
        username = password = None
    if password == _FROM_STDIN:
        password = _read_password()
        if not password:
            raise ValueError("--password -: no password on stdin")
    token_url = _given(args, "token_url", "HALNAV_TOKEN_URL")
    client_id = _given(args, "client_id", "HALNAV_CLIENT_ID")
    secret = _given(args, "client_secret", "HALNAV_CLIENT_SECRET")
    if secret == _FROM_STDIN:
        if password is not None and args.password == _FROM_STDIN:
            raise _UsageError("--password - and --client-secret -: only one can read stdin")
        secret = _read_password()
    if secret is not None and client_id is None:
        raise _UsageError("--client-secret needs --client-id (or HALNAV_CLIENT_ID)")
    assertion = _given(args, "assertion", "HALNAV_ASSERTION")
    if getattr(args, "assertion", None):
        token = None  # an explicit --assertion wins over HALNAV_TOKEN
    if assertion is not None:
        if assertion == _FROM_STDIN:
            if _FROM_STDIN in (args.password, secret):
                raise _UsageError(
                    "only one of --password, --client-secret, --assertion can read stdin"
                )
            assertion = _read_password()
        _check_assertion_login(token, password, token_url, client_id)
        operator = bool(getattr(args, "operator", False))
        assert client_id is not None  # checked above
        return _Credentials(client_id=client_id, assertion=assertion, operator=operator, veeam=True)
    if getattr(args, "operator", False):
        raise _UsageError("--operator goes with --assertion")
    _check_grant(token, password, token_url, client_id)
    used = {"token": token, "username": username, "password": password,
            "token_url": token_url, "client_id": client_id, "client_secret": secret}  # fmt: skip
    environment = tuple(
        f"HALNAV_{option.upper()}"
        for option, value in used.items()
        if value is not None and not getattr(args, option, None)
    )
    return _Credentials(
        token=token,
        username=username,
        password=password,
        veeam=bool(args.veeam) or (password is not None and token_url is None),
        token_url=token_url,
        client_id=client_id,
        client_secret=secret,
        client_auth=getattr(args, "client_auth", None) or "basic",
        environment=environment,
    )


def _check_assertion_login(
    token: str | None, password: str | None, token_url: str | None, client_id: str | None
) -> None:
    """An ``--assertion`` login (a tenant or operator) takes a ``--client-id`` and nothing
    else that logs in."""
    if token is not None or password is not None or token_url is not None:
        raise _UsageError(
            "--assertion is a login of its own: no --token, --password or --token-url"
        )
    if client_id is None:
        raise _UsageError("--assertion needs --client-id (the tenant's application id)")


def _check_grant(
    token: str | None, password: str | None, token_url: str | None, client_id: str | None
) -> None:
    """``--token-url`` needs a grant (password or client credentials), and ``--client-id``
    a token URL."""
    if token_url is not None:
        _check_url(token_url)
        if token is not None:
            raise _UsageError("give --token, or --token-url with a grant, not both")
        if password is None and client_id is None:
            raise _UsageError(
                "--token-url needs --username and --password (password grant) or "
                "--client-id (client credentials grant)"
            )
    elif client_id is not None:
        raise _UsageError(
            "--client-id goes with --token-url (the OAuth2 token endpoint) or --assertion"
        )


def _check_url(text: str) -> str:
    if not lowlevel.is_http_url(text):
        raise _UsageError(f"expected an absolute http:// or https:// URL, got {text!r}")
    return text


_origin = lowlevel.origin_of  # what --rebase-links pins links to


def _limits(args: argparse.Namespace) -> halnav.Limits | None:
    options: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        options["total_timeout"] = args.timeout
    for name in ("answer_timeout", "transfer_timeout", "max_download_bytes"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if getattr(args, "retries", None) is not None:
        options["retries"] = args.retries
    if getattr(args, "concurrency", None) is not None:
        options["concurrency"] = args.concurrency
    if getattr(args, "per_host", None) is not None:
        options["per_host"] = args.per_host
    return halnav.Limits(**options) if options else None


def _check_cafile(path: str) -> None:
    """``--cafile`` names a readable PEM file with a certificate, said in those words (not
    OpenSSL's ``[X509: NO_CERTIFICATE_OR_CRL_FOUND] ... (_ssl.c:4154)``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--cafile {path}: no such file")
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError:
        raise ValueError(f"--cafile {path}: not a PEM certificate file") from None
    except OSError as exc:
        raise ValueError(f"--cafile {path}: {(exc.strerror or str(exc)).lower()}") from None


def _headers(given: Sequence[str]) -> dict[str, str]:
    """``-H 'Name: value'`` options as a mapping (curl's syntax)."""
    headers: dict[str, str] = {}
    for text in given:
        name, sep, value = text.partition(":")
        name = name.strip()
        if not sep or not name or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise _UsageError(f"-H {text!r}: expected 'Name: value'")
        if "\r" in value or "\n" in value:
            raise _UsageError(f"-H {name}: a header value cannot hold a line break")
        headers[name] = value.strip()
    return headers


def _navigator(
    args: argparse.Namespace, url: str, creds: _Credentials, *, graph: bool = True, **extra: Any
) -> halnav.Navigator:
    if args.cafile is not None:
        _check_cafile(args.cafile)
    if args.insecure and url.lower().startswith("https:"):
        print(
            "halnav: warning: --insecure: the server certificate is not verified "
            "(use it only against a test server)",
            file=sys.stderr,
        )
    limits = _limits(args)
    rebase = bool(getattr(args, "rebase_links", False))
    headers = _headers(getattr(args, "headers", []))
    if headers:
        extra["headers"] = headers
    if getattr(args, "cache", None):
        extra["cache"] = halnav.SqliteCache(args.cache)
    if creds.veeam:
        return veeam.open_navigator(
            url,
            username=creds.username,
            password=creds.password,
            token=creds.token,
            client_id=creds.client_id if creds.assertion else None,
            assertion=creds.assertion,
            operator=creds.operator,
            rebase_links=rebase,  # pins links to the server root of url
            version=getattr(args, "api_version", None),
            limits=limits,
            cafile=args.cafile,
            insecure=args.insecure,
            graph=graph,
            **extra,
        )
    auth: halnav.ProviderAuth | str | None = creds.oauth2() or creds.token
    extra_origins = [_origin(creds.token_url)] if creds.token_url else []
    extra_origins += extra.pop("trusted_origins", [])
    return halnav.Navigator(
        url,
        auth=auth,
        trusted_origins=extra_origins,
        limits=limits,
        cafile=args.cafile,
        insecure=args.insecure,
        pin_origin=_origin(url) if rebase else None,
        graph=graph,
        **extra,
    )


def _body(text: str | None, option: str) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ValueError(f"{option} {text}: {reason}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"{option} is not valid JSON: {exc}") from None


# -- commands -----------------------------------------------------------------------------------


class _Terminated(BaseException):
    """SIGTERM ended the command; raised by :func:`_run` once the command has cleaned up.

    A BaseException like KeyboardInterrupt, so no ``except Exception`` takes it for an error.
    Its notes are the cancellation's: what the cleanup could not do (a session not stopped).
    """


def _on_sigterm(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
    """Have SIGTERM call ``callback`` on ``loop``; False where halnav leaves SIGTERM alone.

    As ``asyncio.run`` does for SIGINT: only in the main thread and only when SIGTERM has
    its default disposition (a program that embeds ``main`` may handle it itself).
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False
    try:
        loop.add_signal_handler(signal.SIGTERM, callback)
    except (NotImplementedError, RuntimeError):  # no signal handlers on this loop (Windows)
        return False
    return True


def _run(command: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(command)``, where SIGTERM cancels the command as Ctrl-C does.

    ``asyncio.run`` turns the first Ctrl-C into a cancellation of its main task and raises
    KeyboardInterrupt once the task has unwound. SIGTERM gets the same treatment here: the
    task is cancelled, so ``finally`` blocks and ``veeam.explore`` run their cleanup (its
    stop request is shielded) and the crawl output is flushed; then :class:`_Terminated` is
    raised. Later SIGTERMs do not cancel the cleanup again (SIGKILL still ends halnav at
    once). The handler is removed when the command ends.
    """
    terminated = False

    async def guarded() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def terminate() -> None:
            nonlocal terminated
            if not terminated:
                terminated = True
                task.cancel()

        installed = _on_sigterm(loop, terminate)
        try:
            return await command
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        result = asyncio.run(guarded())
    except asyncio.CancelledError as exc:
        if not terminated:
            raise
        stopped = _Terminated()
        stopped.__notes__ = list(getattr(exc, "__notes__", ()))
        raise stopped from None
    if terminated:  # the command caught the cancellation and finished; it was still asked to stop
        raise _Terminated
    return result


async def _with_nav(
    args: argparse.Namespace,
    url: str,
    creds: _Credentials,
    body: Callable[[halnav.Navigator], Awaitable[int]],
    *,
    graph: bool = True,
    also: Sequence[str] = (),
) -> int:
    """Run ``body`` with the command's navigator; ``also``: more URLs the user named, whose
    origins are trusted like ``url``'s (a crawl's other roots)."""
    # --json prints the source, act --out writes a JSON answer's: keep it then.
    keep = args.command in ("get", "follow", "act") and bool(
        getattr(args, "json", False) or getattr(args, "out", None)
    )
    extra: dict[str, Any] = {"keep_source": keep}
    others = sorted({_origin(other) for other in also} - {_origin(url)})
    if others:
        extra["trusted_origins"] = others
    try:
        async with _navigator(args, url, creds, graph=graph, **extra) as nav:
            return await body(nav)
    except halnav.AuthenticationError as exc:
        if creds.environment:
            exc.add_note(
                f"the login came from the environment ({', '.join(creds.environment)}); "
                "unset them for an API that needs none"
            )
        raise


def _cmd_get(args: argparse.Namespace, creds: _Credentials) -> int:
    url = _check_url(args.url)

    async def body(nav: halnav.Navigator) -> int:
        _print_document(await nav.get(url), as_json=args.json)
        return 0

    return _run(_with_nav(args, url, creds, body))


def _variables(pairs: Sequence[str]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"--var expects NAME=VALUE, got {pair!r}")
        variables[key] = value
    return variables


def _cmd_follow(args: argparse.Namespace, creds: _Credentials) -> int:
    url = _check_url(args.url)
    variables = _variables(args.var)

    async def body(nav: halnav.Navigator) -> int:
        doc = await _follow(nav, await nav.get(url), args.rels, variables)
        if args.all:
            await _print_every_item(nav, doc, as_json=args.json)
        else:
            _print_document(doc, as_json=args.json)
        return 0

    return _run(_with_nav(args, url, creds, body))


async def _print_every_item(nav: halnav.Navigator, page: halnav.Document, *, as_json: bool) -> None:
    """``--all``: every item of every page from ``page`` on, as it comes (a line each)."""
    count = 0
    async for item in nav.paginate(page):
        if as_json:
            print(_dumps(item.source if item.source is not None else item.state, indent=None))
        else:
            print(_printable(f"[{count}] {item.title or '-'}  {item.url}"))
        count += 1
    print(f"halnav: {count} item{'' if count == 1 else 's'}", file=sys.stderr)


async def _follow(
    nav: halnav.Navigator, doc: halnav.Document, rels: Sequence[str], variables: Mapping[str, Any]
) -> halnav.Document:
    """``nav.follow``, with a ``--var`` that no template takes said in the CLI's words."""
    try:
        return await nav.follow(doc, *rels, **variables)
    except halnav.MissingVariablesError as exc:
        if exc.missing:
            exc.add_note(f"give it with --var {exc.missing[0]}=VALUE")
            raise
        if not exc.unknown:
            raise
        chain = " -> ".join(rels)
        raise _UsageError(
            f"--var {', '.join(exc.unknown)}: no templated link on {chain} takes it"
        ) from None


def _cmd_act(args: argparse.Namespace, creds: _Credentials) -> int:
    url = _check_url(args.url)
    payload = _body(args.body, "--body")
    out = Path(args.out) if args.out else None
    _check_output(args.out, "--out")  # before the action runs, not after its answer

    async def body(nav: halnav.Navigator) -> int:
        doc = await nav.get(url)
        if nav.find_action(doc, args.action) is None:
            doc.action(args.action)  # fail before creating anything: names what doc offers
        request = nav.plan(doc, args.action, json=payload)
        if args.dry_run:
            print(f"{request.method} {_printable(request.url)}")
            if request.json is not None:
                for line in json.dumps(request.json, indent=2, default=str).splitlines():
                    print(_printable(line))
            print("halnav: dry run: nothing was sent", file=sys.stderr)
            return 0
        if halnav.changes_data(args.action, request.method):
            _confirm([args.action], yes=args.yes, where=f"{request.method} {request.url}")
        meter = _DownloadMeter(sys.stderr, str(out)) if out and sys.stderr.isatty() else None
        try:
            answer = await nav.act(
                doc,
                args.action,
                json=payload,
                to=out,
                binary=out is not None,
                progress=meter,
                follow=args.follow,
                wait=args.wait,
            )
        except halnav.HTTPStatusError as exc:
            if exc.status in (400, 404, 405, 415) and not creds.veeam and _VEEAM_PATH.search(url):
                exc.add_note(_VEEAM_HINT)
            raise
        finally:
            if meter is not None:
                meter.done()
        location = answer.location
        if isinstance(answer, halnav.Document):
            status = answer.answer.status if answer.answer is not None else 200
        else:
            status = answer.status
        if location is not None or status != 200:
            where = f"; Location: {_printable(location)}" if location else ""
            print(f"halnav: HTTP {status}{where}", file=sys.stderr)
        if isinstance(answer, halnav.Document) and out is not None:
            # --out names where the answer goes, JSON or not: the JSON as the server sent it.
            text = json.dumps(answer.source, indent=2, ensure_ascii=False) + "\n"
            out.write_text(text, encoding="utf-8")
            print(printable(f"wrote {len(text.encode()):,} bytes (the JSON answer) to {out}"))
            return 0
        if isinstance(answer, halnav.Document) and args.all:
            await _print_every_item(nav, answer, as_json=args.json)  # every page of hits
            return 0
        if isinstance(answer, halnav.Document):
            _print_document(answer, as_json=args.json)
            return 0
        print(printable(f"wrote {answer.size} bytes ({answer.content_type or 'binary'}) to {out}"))
        return 0

    return _run(_with_nav(args, url, creds, body))


def _confirm(names: Sequence[str], *, yes: bool, where: str) -> None:
    """Ask before actions that may change data (see halnav.changes_data); refuse without a
    terminal unless ``yes``."""
    if yes or not names:
        return
    listed = ", ".join(repr(_printable(name)) for name in names)
    question = f"halnav: {listed} may change data on the server ({where}). Run it? [y/N] "
    if sys.stdin.isatty() and sys.stderr.isatty():
        print(question, end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return
        raise ValueError("not confirmed: nothing was sent")
    raise ValueError(
        f"{listed} may change data on the server (restore, send, copy ...): add --yes to "
        "run it, or --dry-run to print the requests it would send"
    )


def _check_output(path: str | None, option: str) -> None:
    """Fail before the first request when ``path`` cannot be written."""
    if path is None or path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path}: is a directory")
    parent = target.parent if str(target.parent) else Path()
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")


def _check_folder(path: str | None, option: str) -> None:
    """Fail before the first request when the folder ``path`` cannot be used: a file is
    there, or it cannot be made (a folder option is made with its parents, like
    ``mkdir -p``; an output file's folder must exist)."""
    if path is None:
        return
    target = Path(path)
    existing = next((p for p in (target, *target.parents) if p.exists()), Path())
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: {existing} is not writable")


def _has_state(directory: str | None) -> bool:
    """Whether ``--state DIR`` holds an earlier run (a new walk starts from an empty DIR)."""
    return directory is not None and Path(directory).is_dir() and any(Path(directory).iterdir())


def _check_graph_file(path: str | None) -> None:
    if path is not None and Path(path).suffix.lower() not in halnav.Graph.SUFFIXES:
        raise _UsageError(f"--graph {path}: use a .dot, .mmd, .json or .svg file name")
    if path is not None and Path(path).suffix.lower() == ".svg" and not shutil.which("dot"):
        # Said before the walk, not after it (review #15).
        raise ValueError(f"--graph {path}: an SVG needs Graphviz's dot on the PATH")
    _check_output(path, "--graph")


def _how_to_go_on(args: argparse.Namespace) -> str:
    """What an interrupted walk kept, and how to go on from it (nothing for other commands)."""
    if args.command not in _WALKS:
        return ""
    out = getattr(args, "out", None)
    kept = f"; the records so far are in {out}" if out not in (None, "-") else ""
    if getattr(args, "state", None):
        return f"{kept}; run the same command again to resume (--state {args.state})"
    return f"{kept}; not resumable: no --state (add --state DIR to make a walk resumable)"


def _size_of(path: str) -> str:
    """`` (12.3 MiB)``: the size of an exported file, or nothing when it is not there."""
    try:
        return f" ({_mib(Path(path).stat().st_size)})"
    except OSError:
        return ""


def _finish_walk(
    nav: halnav.Navigator,
    summary: halnav.CrawlSummary,
    graph: str | None,
    *,
    live: bool,
    extra: Mapping[str, Any] | None = None,
    extra_line: str | None = None,
    state_dir: str | None = None,
) -> None:
    """Write the graph if asked, then the summary: readable on a terminal, one JSON line if not.

    A resumed walk's graph is built from its whole output, so it holds every run's part.
    """
    if graph is not None:
        if summary.resumed and summary.output is not None:
            built = halnav.graph_from_records(summary.output)
            _write_graph(built.graph, graph, labels=built.labels)
        else:
            _write_graph(nav.graph, graph)
    if live:
        lines = _summary_lines(summary, graph, state_dir)
        if extra_line is not None:
            lines.append(extra_line)
        print("\n".join(lines), file=sys.stderr)
    else:
        record = {**_summary_record(summary, graph), **(extra or {})}
        print("summary " + _dumps(record, indent=None), file=sys.stderr)


def _cmd_crawl(args: argparse.Namespace, creds: _Credentials) -> int:
    roots = [_check_url(root) for root in args.roots]
    _check_graph_file(args.graph)
    if args.rebase_links and len({_origin(root).lower() for root in roots}) > 1:
        raise _UsageError(
            "--rebase-links moves every link onto one server: give ROOTs on one origin"
        )
    if (
        args.action_json
        or args.export_dir
        or args.action_limit
        or args.max_hits
        or args.action_rel
        or args.action_on
    ) and not args.actions:
        raise _UsageError(
            "--action-json, --export-dir, --action-limit, --action-rel, --action-on and "
            "--max-hits need --action NAME"
        )
    payload = _body(args.action_json, "--action-json")
    given = frozenset(rel for rel in args.deny_rel if rel.lower() != "none")
    keep_defaults = len(given) == len(args.deny_rel)  # --deny-rel none drops first/prev/last
    deny = (halnav.Scope().deny_rels if keep_defaults else frozenset()) | given
    scope = halnav.Scope(
        allow_rels=frozenset(args.allow_rel) if args.allow_rel else None,
        deny_rels=deny,
        max_depth=args.max_depth,
        max_documents=args.max_documents,
        same_origin=not args.any_origin,
    )
    rules = [
        halnav.ActionRule(
            name=name,
            json=payload,
            export_dir=args.export_dir,
            limit=args.action_limit,
            max_items=args.max_hits,
            rels=frozenset(args.action_rel) if args.action_rel else None,
            where=_of_kinds(frozenset(args.action_on)) if args.action_on else None,
            where_key=f"kinds={','.join(sorted(set(args.action_on)))}" if args.action_on else None,
        )
        for name in args.actions
    ]
    if args.action_on and not creds.veeam:
        raise _UsageError("--action-on knows Veeam resources: give --veeam (or a Veeam login)")
    if args.dry_run and args.state is not None:
        raise _UsageError("--dry-run sends no action: it cannot be resumed (drop --state)")
    if not args.dry_run:
        risky = [name for name in args.actions if halnav.changes_data(name)]
        _confirm(risky, yes=args.yes, where="on every document of the walk that offers it")
    to_stdout = args.out in (None, "-")
    if args.state is not None and to_stdout:
        raise _UsageError("--state needs --out FILE: the state records how much of it is written")
    _check_output(args.out, "--out")
    _check_folder(args.export_dir, "--export-dir")
    _check_folder(args.state, "--state")
    live = not args.quiet and not args.verbose and sys.stderr.isatty()
    progress = _Progress(sys.stderr) if live else None

    if args.split is not None and args.scheduler is None and args.workers is None:
        raise _UsageError("--split spreads a walk over a cluster: give --scheduler or --workers")
    if args.scheduler is not None or args.workers is not None:
        return _crawl_on_cluster(args, creds, roots, scope, rules=rules, to_stdout=to_stdout)

    async def body(nav: halnav.Navigator) -> int:
        crawler = halnav.Crawler(
            nav,
            roots,
            scope=scope,
            output=_records_to_stdout() if to_stdout else args.out,
            state_dir=args.state,
            actions=rules,
            progress=progress,
            replace=True,  # a new walk replaces --out once it has a record; --state resumes
            dry_run=args.dry_run,
            sinks=[_PlannedPrinter()] if args.dry_run else [],
        )
        try:
            summary = await crawler.run()
        finally:
            if progress is not None:
                progress.clear()
        _finish_walk(nav, summary, args.graph, live=live, state_dir=args.state)
        _say_offsite(summary)
        _say_unmatched(summary, "no document in the walk offered it (check the name and scope)")
        if summary.action_failures and not creds.veeam and _VEEAM_PATH.search(roots[0]):
            print(f"halnav: note: {summary.action_failures:,} actions failed; {_VEEAM_HINT}",
                  file=sys.stderr)  # fmt: skip
        _say_stopped(summary, args.state)
        return _walk_status(summary)

    # A bulk walk indexes its graph only when asked to write it: on a big walk the graph
    # is a fifth of the client's CPU time and most of its memory.
    return _run(
        _with_nav(args, roots[0], creds, body, graph=args.graph is not None, also=roots[1:])
    )


@attrs.frozen
class _NavigatorRecipe:
    """What a cluster worker needs to make its own navigator (and log in on its own): the
    command's options and credentials. Picklable; its repr shows no secret."""

    options: Mapping[str, Any] = attrs.field(repr=False)
    url: str
    creds: _Credentials

    def __call__(self, **extra: Any) -> halnav.Navigator:
        options = argparse.Namespace(**self.options)
        return _navigator(options, self.url, self.creds, **{"graph": False, **extra})


_NAVIGATOR_OPTIONS: Final = (
    "cafile", "insecure", "rebase_links", "api_version", "timeout", "connect_timeout",
    "answer_timeout", "transfer_timeout", "max_download_bytes", "retries", "concurrency",
    "per_host", "max_response_bytes", "readahead",
)  # fmt: skip


def _crawl_on_cluster(
    args: argparse.Namespace,
    creds: _Credentials,
    roots: list[str],
    scope: halnav.Scope,
    *,
    rules: Sequence[halnav.ActionRule],
    to_stdout: bool,
) -> int:
    """``crawl --scheduler`` / ``--workers``: one shard per root on a Dask cluster."""
    if args.dry_run:
        raise _UsageError("--dry-run does not run on a cluster yet")
    cluster, connect = _cluster(args, to_stdout=to_stdout)
    recipe = _NavigatorRecipe(_recipe_options(args), roots[0], creds)

    async def walk() -> int:
        async with connect() as client:
            done = await cluster.crawl_on_cluster(
                client,
                recipe,
                roots,
                output=args.out,
                state_dir=args.state,
                scope=scope,
                split=args.split,
                per_host=args.per_host,
                actions=rules,
            )
        return _cluster_outcome(done, args.state, graph=args.graph)

    return _run(walk())


def _recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _NAVIGATOR_OPTIONS}


def _cluster(
    args: argparse.Namespace, *, to_stdout: bool
) -> tuple[ModuleType, Callable[[], AbstractAsyncContextManager[Any]]]:
    """``halnav.cluster`` and how to connect to the cluster the options name (a running one,
    or local worker processes started for the walk).

    Raises:
        ValueError: both or no cluster given, no --out file, or Dask is not installed.
    """
    if args.scheduler is not None and args.workers is not None:
        raise _UsageError("give --scheduler (a running cluster) or --workers N, not both")
    if to_stdout:
        raise _UsageError("--scheduler and --workers need --out FILE: the shards are merged there")
    try:
        import distributed  # noqa: PLC0415  an optional extra
    except ImportError:
        raise ValueError(
            "--scheduler and --workers need Dask: pip install 'halnav[dask]'"
        ) from None
    from halnav import cluster  # noqa: PLC0415  imports distributed's types

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[Any]:
        async with contextlib.AsyncExitStack() as stack:
            address = args.scheduler
            if args.workers is not None:
                local = distributed.LocalCluster(
                    n_workers=args.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    asynchronous=True,
                )
                await stack.enter_async_context(local)
                address = local.scheduler_address
            yield await stack.enter_async_context(distributed.Client(address, asynchronous=True))

    return cluster, connect


def _cluster_outcome(
    done: ClusterSummary,
    state: str | None,
    extra: Mapping[str, Any] | None = None,
    graph: str | None = None,
) -> int:
    """Report a walk on a cluster (each failed or stopped shard, then the summary line); its
    exit code: 4 when a shard stopped because the server stopped answering, like a walk on
    one machine (its work is pending, not failed), else 3 when a shard failed."""
    failed = [shard for shard in done.shards if shard.error is not None]
    for shard in failed:
        print(f"halnav: error: shard {printable(shard.root)}: {printable(shard.error)}",
              file=sys.stderr)  # fmt: skip
    how = (
        "run the same command again to walk it again"
        if state is not None
        else "add --state DIR so that the next walk skips the shards already done"
    )
    for shard in done.stopped:
        print(f"halnav: error: shard {printable(shard.root)} stopped early: "
              f"{printable(shard.stopped or '')}; {how}", file=sys.stderr)  # fmt: skip
    summary = {
        "documents": done.documents,
        "failures": done.failures,
        "actions": done.actions,
        "duplicates": done.duplicates,
        **(extra or {}),
        "shards": len(done.shards),
        "shards_failed": len(failed),
        "shards_stopped": len(done.stopped),
        "shards_skipped": sum(1 for shard in done.shards if shard.skipped),
        "complete": done.complete,
        "output": done.output,
    }
    if graph is not None:  # from the merged records: the graph a walk on one machine draws
        built = halnav.graph_from_records(done.output)
        _write_graph(built.graph, graph, labels=built.labels)
        summary["graph"] = graph
    print(f"summary {_json_printable(json.dumps(summary))}", file=sys.stderr)
    if done.stopped:
        return _EXIT_STOPPED
    if failed or not done.complete:
        return _EXIT_FAILURES
    return 0


def _cmd_graph(args: argparse.Namespace) -> int:
    target = Path(args.out)
    to_stdout = args.out == "-"
    if to_stdout and args.format is None:
        raise _UsageError("-o - (standard output) needs --format dot, mmd or json")
    if not to_stdout and args.format is not None:
        raise _UsageError("--format goes with -o - ; a file's suffix says its format")
    if not to_stdout and target.suffix.lower() not in halnav.Graph.SUFFIXES:
        raise _UsageError(f"-o {target}: use a .dot, .mmd, .json or .svg file name")
    built = halnav.graph_from_records(args.records)
    if built.partial_line is not None:
        print(
            f"halnav: warning: {args.records}:{built.partial_line}: a cut-off last line "
            "(the walk was killed while writing it) was skipped",
            file=sys.stderr,
        )
    if to_stdout:
        sys.stdout.write(built.graph.text(args.format, as_map=args.map, labels=built.labels))
        return 0
    written = _write_graph(built.graph, target, as_map=args.map, labels=built.labels)
    print(f"wrote {target}: {written} from {built.documents} documents "
          f"({built.failures} failures skipped)")  # fmt: skip
    return 0


def _write_graph(
    graph: halnav.Graph,
    target: str | Path,
    *,
    as_map: bool = False,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Write ``graph`` (or its API map); return what it holds, in words. A Mermaid file
    with more edges than Mermaid draws gets a warning that says what to do instead."""
    graph.write(target, as_map=as_map, labels=labels)
    if as_map:
        api = graph.to_map()
        return f"the API map, {len(api.kinds)} kinds and {len(api.rels)} rels"
    stats = graph.statistics()
    drawn = sum(1 for source, _rel, dest in graph.edges() if source != dest)
    if Path(target).suffix.lower() in (".mmd", ".mermaid") and drawn > _MERMAID_MAX_EDGES:
        print(
            f"halnav: warning: {target} has {drawn:,} edges; Mermaid draws at most "
            f"{_MERMAID_MAX_EDGES} (GitHub, mermaid.live): the API map (halnav graph "
            "RECORDS --map -o map.mmd) or a .dot/.svg file shows it",
            file=sys.stderr,
        )
    return f"{stats.nodes} nodes, {stats.edges} edges"


def _cmd_failures(args: argparse.Namespace) -> int:
    """``halnav failures``: every failed fetch and action of a walk, grouped by kind."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for record in halnav.read_records(args.records):
        if isinstance(record, halnav.FailureRecord):
            error, where = record.error, record.url
        elif isinstance(record, halnav.ActionRecord) and record.error is not None:
            error, where = record.error, f"{record.url} ({record.action})"
        else:
            continue
        kind = _failure_kind(error)
        if args.json:
            print(_dumps({"url": where, "kind": kind, "message": error.message}, indent=None))
        groups.setdefault(kind, []).append((where, error.message))
    if args.json:
        return 0
    total = sum(len(found) for found in groups.values())
    if not total:
        print(f"no failures in {printable(args.records)}")
        return 0
    print(f"{total} failure{'s' if total != 1 else ''} in {printable(args.records)}:")
    for kind, found in sorted(groups.items(), key=lambda pair: (-len(pair[1]), pair[0])):
        print(f"  {len(found):>6}  {printable(kind)}")
        for where, message in found[: args.urls]:
            print(f"          {printable(where)}")
            print(f"            {printable(message)}")
        if len(found) > args.urls > 0:
            print(f"          ... and {len(found) - args.urls} more")
    return 0


def _cmd_mcp(args: argparse.Namespace, creds: _Credentials) -> int:
    """``halnav mcp URL``: the agent facade on stdio (stdout is the protocol's: nothing else
    may be printed there)."""
    try:
        from halnav import mcp  # noqa: PLC0415  the optional MCP SDK, only when asked
    except ImportError as exc:
        raise ValueError(
            f"halnav mcp needs the MCP SDK 2.x: pip install 'halnav[mcp]' ({exc})"
        ) from None
    url = _check_url(args.url)

    async def body(nav: halnav.Navigator) -> int:
        await mcp.serve(
            nav, url, allow_actions=args.allow_actions, records=args.records, secrets=args.secrets
        )
        return 0

    return _run(_with_nav(args, url, creds, body))


def _cmd_repl(args: argparse.Namespace, creds: _Credentials) -> int:
    from halnav import repl  # noqa: PLC0415  the REPL pulls in code/readline: only when asked

    url = _check_url(args.url)
    return repl.run(_navigator(args, url, creds), url)


@attrs.define
class _VeeamWalk:
    """``veeam-walk``: its checked options, the organizations (listed once), and each way
    the command runs (a dry run, a walk on a cluster, a walk here)."""

    args: argparse.Namespace
    creds: _Credentials
    server: str
    to_stdout: bool
    on_cluster: bool
    live: bool
    progress: _Progress | None
    listing: list[halnav.Document] = attrs.Factory(list)

    def say(self, text: str) -> None:
        if self.args.quiet:
            return
        if self.progress is not None:
            self.progress.clear()
        print(printable(text), file=sys.stderr, flush=True)

    async def organizations(self, nav: halnav.Navigator) -> list[halnav.Document]:
        """Every organization, listed once (--org, --type all and the dry run need it)."""
        if not self.listing:
            self.listing.extend(await veeam.organizations(nav))
        return self.listing

    async def session_types(self, nav: halnav.Navigator) -> list[str]:
        """``--type`` values; ``all`` (the default): what the organizations back up (their
        ``isExchangeOnline``, ``isSharePointOnline``, ``isTeamsOnline`` flags)."""
        if self.args.session_types and "all" not in self.args.session_types:
            return list[str](self.args.session_types)
        if self.creds.assertion is not None:
            docs = [await nav.get("Organization")]
        else:
            wanted = await self.org_ids(nav)
            docs = [o for o in await self.organizations(nav) if not wanted or o["id"] in wanted]
        return veeam.backed_up_types(docs)

    async def org_ids(self, nav: halnav.Navigator) -> list[str] | None:
        """``--org`` values as ids: each an id, else a name (any case)."""
        if not self.args.orgs:
            return None
        found_orgs = await self.organizations(nav)
        known = [(str(org["id"]), str(org.state.get("name", ""))) for org in found_orgs]
        ids = []
        for wanted in self.args.orgs:
            found = [i for i, name in known if wanted == i or wanted.lower() == name.lower()]
            if len(found) != 1:
                names = ", ".join(_printable(name) for _i, name in known[:20])
                why = "is no organization's id or name" if not found else "names several"
                raise ValueError(f"--org {wanted!r} {why}; the organizations: {names}")
            ids.append(found[0])
        return ids

    async def dry_run(self, nav: halnav.Navigator) -> int:
        """Print what the walk would send that changes anything: no session is started."""
        ids: list[str | None] = [None]  # a tenant explores its own organization
        if self.creds.assertion is None:
            ids = list(
                await self.org_ids(nav) or [str(o["id"]) for o in await self.organizations(nav)]
            )
        kinds = await self.session_types(nav)
        for org_id in ids:
            for kind in kinds:
                request = veeam.explore_request(nav, org_id, type=kind)
                print(f"{request.method} {_printable(request.url)} {json.dumps(request.json)}")
        what = []
        if self.args.search is not None:
            where = (
                "every mailbox"
                if veeam.version_of(nav) == "v5"
                else ("every mailbox, OneDrive, SharePoint site and team")
            )
            what.append(f"search {json.dumps(veeam.search(self.args.search))} on {where}")
        if self.args.export_dir is not None:
            limit = (
                "every mailbox"
                if not self.args.export_limit
                else f"{self.args.export_limit} mailboxes"
            )
            what.append(f"exportToPst on {limit}, into {self.args.export_dir}")
        for line in what:
            print(f"then, in each session: {_printable(line)}")
        print(
            f"halnav: dry run: {len(ids) * len(kinds)} restore sessions would be started "
            "(and stopped); "
            "nothing was sent",
            file=sys.stderr,
        )
        return 0

    async def walk_on_cluster(self, nav: halnav.Navigator) -> int:
        """One shard per organization on the cluster (``--scheduler`` / ``--workers``)."""
        cluster, connect = _cluster(self.args, to_stdout=self.to_stdout)
        tenant = self.creds.assertion is not None
        ids = await self.org_ids(nav)
        if ids is None and not tenant:
            ids = [str(org["id"]) for org in await self.organizations(nav)]
        chosen = self.args.session_types if "all" not in self.args.session_types else []
        recipe = _NavigatorRecipe(_recipe_options(self.args), self.server, self.creds)
        async with connect() as client:
            done = await cluster.veeam_walk_on_cluster(
                client,
                recipe,
                ids,
                output=self.args.out,
                state_dir=self.args.state,
                tenant=tenant,
                per_host=self.args.per_host,
                types=chosen or None,
                search_query=self.args.search,
                export_dir=self.args.export_dir,
                export_limit=self.args.export_limit or None,
                max_hits=self.args.max_hits,
            )
        if done.listed("unsearched"):
            self.say(f"note: --search did not search {', '.join(done.listed('unsearched'))}: "
                "this API version has no search there (only mailboxes were searched)")  # fmt: skip
        for key, text in done.listed("refused"):
            self.say(f"note: {key} was not walked: the server refused to explore it ({text})")
        extra = {
            "organizations": len(done.shards),
            "sessions_stopped": len(done.listed("sessions")),
            "exports": done.listed("exports"),
            "documents_by_type": done.counts("documents_by_type"),
            "hits_by_type": done.counts("hits_by_type"),
        }
        status = _cluster_outcome(done, self.args.state, extra, graph=self.args.graph)
        return status or (_EXIT_FAILURES if done.listed("refused") else 0)

    async def body(self, nav: halnav.Navigator) -> int:
        if self.args.dry_run:
            return await self.dry_run(nav)
        if self.on_cluster:
            return await self.walk_on_cluster(nav)
        try:
            done = await veeam.walk(
                nav,
                output=_records_to_stdout() if self.to_stdout else self.args.out,
                organization_ids=await self.org_ids(nav),
                tenant=self.creds.assertion is not None,
                types=await self.session_types(nav),
                search_query=self.args.search,
                export_dir=self.args.export_dir,
                export_limit=self.args.export_limit or None,
                max_hits=self.args.max_hits,
                progress=self.progress,
                say=self.say,
                state_dir=self.args.state,
            )
        finally:
            if self.progress is not None:
                self.progress.clear()
        _finish_walk(
            nav,
            done.crawl,
            self.args.graph,
            live=self.live,
            extra={
                "organizations": len(done.organizations),
                "sessions_stopped": len(done.sessions),
                "exports": list(done.exports),
                "documents_by_type": dict(done.documents_by_type),
                "hits_by_type": dict(done.hits_by_type),
                "refused": [{"session": key, "message": text} for key, text in done.refused],
            },
            extra_line=f"  sessions: {len(done.sessions)} explored and stopped"
            + ("\n  by type:  " + _counts(done.documents_by_type) if done.documents_by_type else "")
            + (
                "\n  hits by type: " + _counts(done.hits_by_type)
                if self.args.search is not None
                else ""
            )
            + "".join(f"\n  export:   {_printable(path)}{_size_of(path)}" for path in done.exports),
            state_dir=self.args.state,
        )
        _say_offsite(done.crawl)
        _say_unmatched(
            done.crawl, "no mailbox, OneDrive, site or team the walk met offers it on this server"
        )
        _say_stopped(done.crawl, self.args.state)
        if done.unsearched:
            print(
                f"halnav: note: --search did not search {', '.join(done.unsearched)}: API "
                f"{veeam.version_of(nav)} has no search there (only mailboxes were searched)",
                file=sys.stderr,
            )
        for key, text in done.refused:
            print(
                f"halnav: note: {_printable(key)} was not walked: the server refused to explore "
                f"it ({_printable(text)})",
                file=sys.stderr,
            )
        status = _walk_status(done.crawl)
        return status if status or not done.refused else _EXIT_FAILURES


def _cmd_veeam_walk(args: argparse.Namespace, creds: _Credentials) -> int:
    server = _check_url(args.server)
    _check_graph_file(args.graph)
    if not creds.any:
        raise _UsageError("veeam-walk needs --username and --password (or --token)")
    creds = attrs.evolve(creds, veeam=True)
    _check_output(args.out, "--out")
    _check_folder(args.export_dir, "--export-dir")
    _check_folder(args.state, "--state")
    to_stdout = args.out in (None, "-")
    if args.state is not None and to_stdout:
        raise _UsageError("--state needs --out FILE: the state records how much of it is written")
    live = not args.quiet and not args.verbose and sys.stderr.isatty()
    progress = _Progress(sys.stderr) if live else None
    on_cluster = args.scheduler is not None or args.workers is not None
    if on_cluster:
        _cluster(args, to_stdout=to_stdout)  # its errors before any login
    command = _VeeamWalk(args, creds, server, to_stdout, on_cluster, live, progress)
    return _run(_with_nav(args, server, creds, command.body, graph=args.graph is not None))


def _veeam_server(args: argparse.Namespace, creds: _Credentials) -> tuple[str, _Credentials]:
    server = _check_url(args.server)
    if not creds.any:
        raise _UsageError(f"{args.command} needs --username and --password (or --token)")
    return server, attrs.evolve(creds, veeam=True)


def _cmd_veeam_orgs(args: argparse.Namespace, creds: _Credentials) -> int:
    server, creds = _veeam_server(args, creds)

    async def body(nav: halnav.Navigator) -> int:
        found = await veeam.organizations(nav)
        if args.json:
            for org in found:
                print(_dumps(dict(org.state), indent=None))
        else:
            rows = [
                (_printable(org.state.get("id", "?")), _printable(org.state.get("name", "")))
                for org in found
            ]
            print("\n".join(_table([("ID", "NAME"), *rows], indent="")))
        return 0

    return _run(_with_nav(args, server, creds, body, graph=False))


def _cmd_veeam_start(args: argparse.Namespace, creds: _Credentials) -> int:
    server, creds = _veeam_server(args, creds)

    async def body(nav: halnav.Navigator) -> int:
        session = await veeam.start_session(nav, args.org, type=args.session_type)
        state = str(session.document.state.get("state", "?"))
        if args.json:
            record = {"id": session.id, "organization": session.organization_url, "state": state}
            print(_dumps(record, indent=None))
        else:
            print(
                printable(
                    f"restore session {session.id} ({state}); stop it with: halnav veeam-stop"
                )
            )
            print(printable(session.organization_url))
        return 0

    return _run(_with_nav(args, server, creds, body, graph=False))


def _cmd_veeam_stop(args: argparse.Namespace, creds: _Credentials) -> int:
    server, creds = _veeam_server(args, creds)

    async def body(nav: halnav.Navigator) -> int:
        for session_id in args.sessions:
            session = await veeam.attach(nav, session_id)
            await session.stop()
            print(printable(f"stopped restore session {session.id}"))
        return 0

    return _run(_with_nav(args, server, creds, body, graph=False))


def _cmd_demo(args: argparse.Namespace) -> int:
    from halnav import _demo  # noqa: PLC0415  the demo starts a simulator: only when asked

    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None

    def say(text: str) -> None:
        if progress is not None:
            progress.clear()  # a step line replaces the live progress line
        print(printable(text), flush=True)

    try:
        summary = _run(
            _demo.run_demo(
                Path(args.out),
                organizations=args.organizations,
                mailboxes=args.mailboxes,
                latency=args.latency,
                api_version=args.api_version,
                progress=progress,
                say=say,
            )
        )
    finally:
        if progress is not None:
            progress.clear()
    print("\n".join(summary.lines()))
    return 0 if summary.failures == 0 else _EXIT_FAILURES


def _run_sim(rest: list[str]) -> int:
    from halnav import simulator  # noqa: PLC0415  aiohttp.web only when serving

    if "-h" in rest or "--help" in rest:
        print("usage: halnav sim [simulator options]\n")
        print("Serve the embedded Veeam B365 REST API simulator (v5 to v8) until Ctrl-C.\n")
        print(_SIM_EXAMPLE + "\n\nsimulator options:", flush=True)
    try:
        return simulator.run_cli(rest, prog="halnav sim")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else _EXIT_ERROR


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "graph":
        return _cmd_graph(args)
    if args.command == "failures":
        return _cmd_failures(args)
    if args.command == "completion":
        print(_completion_script(args.shell))
        return 0
    if args.command == "demo":
        return _cmd_demo(args)
    creds = _credentials(args)
    args.secrets = creds.secrets
    commands: dict[str, Callable[[argparse.Namespace, _Credentials], int]] = {
        "get": _cmd_get,
        "follow": _cmd_follow,
        "act": _cmd_act,
        "crawl": _cmd_crawl,
        "veeam-walk": _cmd_veeam_walk,
        "veeam-orgs": _cmd_veeam_orgs,
        "veeam-start": _cmd_veeam_start,
        "veeam-stop": _cmd_veeam_stop,
        "repl": _cmd_repl,
        "mcp": _cmd_mcp,
    }
    return commands[args.command](args, creds)


def main(argv: list[str] | None = None) -> int:
    """Run the ``halnav`` command line with ``argv`` (default ``sys.argv[1:]``); return the status.

    >>> main(["get", "https://vbo:4443/v5/Organizations", "--token", "T"])  # doctest: +SKIP
    """
    argv = _hoisted(list(sys.argv[1:] if argv is None else argv))
    index = _command_of(argv)
    if index is not None and argv[index] == "sim":
        return _run_sim(argv[index + 1 :])
    moved = _moved_option(argv, index)
    if moved is not None:
        print(f"halnav: error: {moved}", file=sys.stderr)
        return _EXIT_USAGE
    parser = _parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            _subcommand(parser, args.command).error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:  # --help, --version and usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else _EXIT_ERROR
    args.secrets = ()
    started = time.monotonic()
    verbose = _RequestLog(args) if getattr(args, "verbose", False) else None
    with warnings.catch_warnings(), verbose or contextlib.nullcontext():
        warnings.showwarning = _show_warning
        # --insecure prints its own warning line; the library's would repeat it.
        warnings.simplefilter("ignore", InsecureTLSWarning)
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return _dispatch(args)
        except BrokenPipeError:
            # The reader went away (``halnav get URL | head``): stop quietly, like cat does.
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            return _EXIT_BROKEN_PIPE
        except KeyboardInterrupt:
            if args.debug:
                raise
            after = _clock(time.monotonic() - started)
            print(f"halnav: interrupted after {after}{_how_to_go_on(args)}", file=sys.stderr)
            return _EXIT_INTERRUPTED
        except _Terminated as exc:
            # The command has unwound: its restore sessions are stopped (or a note says why not).
            with contextlib.suppress(OSError):
                sys.stdout.flush()
            exc.args = (f"terminated (SIGTERM) after {time.monotonic() - started:.1f} s",)
            print(f"halnav: {_error_line(exc, args.secrets)}", file=sys.stderr)
            return _EXIT_TERMINATED
        except _HANDLED as exc:
            if args.debug:
                raise
            print(f"halnav: error: {_error_line(exc, args.secrets)}", file=sys.stderr)
            return _EXIT_USAGE if isinstance(exc, _UsageError) else _EXIT_ERROR
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            if args.debug or not all(isinstance(e, _HANDLED) for e in leaves):
                raise
            more = f" (and {len(leaves) - 1} more errors)" if len(leaves) > 1 else ""
            print(f"halnav: error: {_error_line(leaves[0], args.secrets)}{more}", file=sys.stderr)
            return _EXIT_ERROR
