"""The options and the parser: every command and its options, options given before
the command, and shell completion."""

from __future__ import annotations

import argparse
import itertools
import shlex
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

import halnav
from halnav import veeam

if TYPE_CHECKING:
    pass
from ._common import (
    _EXIT_CODES,
    _LIMITS,
    _SECRET_OPTIONS,
    _WALKS,
    _examples,
    _Formatter,
)

# -- options ------------------------------------------------------------------------------------


def _debug_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    parent.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each request on stderr: method, URL, status, time, attempt, and each retry "
        "with its reason (like curl -v; no header or body is shown)",
    )
    return parent


def _net_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    auth = parent.add_argument_group(
        "authentication",
        "A bearer --token, or --username and --password for the Veeam token grant "
        "(which implies --veeam). Defaults come from HALNAV_TOKEN, HALNAV_USERNAME "
        "and HALNAV_PASSWORD.",
    )
    auth.add_argument(
        "--token",
        metavar="TOKEN",
        help="bearer token (env HALNAV_TOKEN); prefer --token-file or '-' (stdin): a value on "
        "the command line is visible to other users in ps",
    )
    auth.add_argument("--username", metavar="NAME", help="user name (env HALNAV_USERNAME)")
    auth.add_argument(
        "--password",
        metavar="PASSWORD",
        help="password (env HALNAV_PASSWORD); best left out: halnav asks for it on a "
        "terminal, or reads --password-file, or '-' (stdin without echo); a value on the "
        "command line is visible to other users in ps",
    )
    auth.add_argument(
        "--token-url",
        metavar="URL",
        help="an OAuth2 token endpoint (env HALNAV_TOKEN_URL): the password grant with "
        "--username/--password, else the client credentials grant; not the Veeam profile",
    )
    auth.add_argument("--client-id", metavar="ID", help="OAuth2 client id (env HALNAV_CLIENT_ID)")
    auth.add_argument(
        "--client-secret",
        metavar="SECRET",
        help="OAuth2 client secret (env HALNAV_CLIENT_SECRET); '-' reads it from stdin",
    )
    auth.add_argument(
        "--assertion",
        metavar="TOKEN",
        help="Veeam tenant login (the jwt-bearer grant) with --client-id: an Entra ID token "
        "(env HALNAV_ASSERTION; '-' reads it from stdin); with --operator, a restore "
        "operator's login (v6+, --client-id userId.tenantId)",
    )
    auth.add_argument(
        "--operator", action="store_true", help="--assertion is a restore operator's (v6+)"
    )
    for name in _SECRET_OPTIONS:
        auth.add_argument(
            f"--{name}-file",
            metavar="FILE",
            help=f"read --{name} from the first line of FILE (not visible in ps)",
        )
    auth.add_argument(
        "--client-auth",
        choices=("basic", "form"),
        default="basic",
        help="send the client id and secret as HTTP Basic (default) or as form fields",
    )
    auth.add_argument(
        "--veeam",
        action="store_true",
        help="use the Veeam B365 profile (action bodies, link base) with a --token",
    )
    auth.add_argument(
        "--api-version",
        choices=veeam.VERSIONS,
        metavar="VERSION",
        help="the Veeam REST API version: v5, v6, v7 or v8 (default: the one in the URL, "
        "else the newest the server answers)",
    )
    tls = parent.add_argument_group("TLS")
    tls.add_argument("--cafile", metavar="PATH", help="trust the CA certificates in this PEM file")
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server certificate (test servers only)",
    )
    limits = parent.add_argument_group("limits")
    limits.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="S",
        help="seconds per attempt of a GET, the whole of it "
        f"(default {_LIMITS.total_timeout:g}; actions: --answer-timeout)",
    )
    limits.add_argument(
        "--answer-timeout",
        type=_positive_float,
        metavar="S",
        help="seconds an action may wait for its answer to begin "
        f"(default {_LIMITS.answer_timeout:g}: a large export is built for minutes before "
        "its first byte)",
    )
    limits.add_argument(
        "--transfer-timeout",
        type=_positive_float,
        metavar="S",
        help="seconds a download may take from its first byte to its last (default 21600, "
        "6 h; a download that stalls for the read timeout ends)",
    )
    limits.add_argument(
        "--max-download-bytes",
        type=_positive_int,
        metavar="N",
        help="refuse a download larger than N bytes (default: no cap)",
    )
    limits.add_argument(
        "--retries",
        type=_non_negative_int,
        metavar="N",
        help=f"extra attempts per request (default {_LIMITS.retries})",
    )
    links = parent.add_argument_group("requests and links")
    links.add_argument(
        "--cache",
        metavar="FILE",
        help="an HTTP cache on disk (SQLite, created 0600): fresh answers are reused, stale "
        "ones revalidated by ETag/Last-Modified, so a walk run again costs 304s, not bodies",
    )
    links.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable); like a token it goes only to the origins "
        "halnav trusts, except Accept, Accept-Language, User-Agent, Cache-Control, Prefer",
    )
    links.add_argument(
        "--rebase-links",
        action="store_true",
        help="treat links that name another host as links to the server you connected to "
        "(a server configured with another public name)",
    )
    return parent


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _walk_options(parser: argparse.ArgumentParser) -> None:
    """Options every bulk walk takes: concurrency, the graph file, quiet progress."""
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help=f"requests in flight at once (default {_LIMITS.concurrency})",
    )
    parser.add_argument(
        "--per-host",
        type=_positive_int,
        metavar="N",
        help="requests in flight at once to one origin (default: --concurrency)",
    )
    parser.add_argument(
        "--graph", metavar="FILE", help="also write the link graph (.dot, .mmd or .json)"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no live progress, only the final summary"
    )


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halnav",
        description="Navigate, act on and crawl HAL hypermedia APIs (with a Veeam B365 profile).",
        formatter_class=_Formatter,
        epilog=_examples(
            "halnav demo",
            "halnav get https://vbo:4443/v5/Organizations --username 'tech\\admin' --password -",
            "halnav crawl https://vbo:4443/v5/RestoreSessions/ID/Organization --out walk.jsonl",
        )
        + "\n\nRun 'halnav COMMAND --help' for the options of each command.\n\n"
        + _EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"halnav {halnav.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    debug = _debug_options()
    net = _net_options()

    def command(name: str, summary: str, *examples: str, network: bool = True) -> Any:
        parents = [debug, net] if network else [debug]
        return commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=_examples(*examples) + ("\n\n" + _EXIT_CODES if name in _WALKS else ""),
            formatter_class=_Formatter,
            parents=parents,
        )

    org = "https://vbo:4443/v5/RestoreSessions/ID/Organization"
    get = command(
        "get",
        "Fetch one document and print a readable summary (or its JSON with --json).",
        f"halnav get {org} --username 'tech\\admin' --password -",
    )
    get.add_argument("url", metavar="URL", help="absolute http(s) URL of the document")
    get.add_argument(
        "--json", action="store_true", help="print the document's JSON as the server sent it"
    )

    follow = command(
        "follow",
        "Follow a chain of rels from URL and print the last document.",
        f"halnav follow {org} mailboxes 'item[0]' folders --token \"$TOKEN\"",
        "halnav follow https://api.example/ orders --var status=open",
    )
    follow.add_argument("url", metavar="URL", help="absolute http(s) URL to start from")
    follow.add_argument(
        "rels", metavar="REL", nargs="+", help="rel or selector: rel, rel[0], rel[name:x]"
    )
    follow.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="K=V",
        help="a variable for templated links (repeatable)",
    )
    follow.add_argument(
        "--json", action="store_true", help="print the last document's JSON as the server sent it"
    )
    _all_option(follow)

    act = command(
        "act",
        "GET the document at URL and run one of its actions; print the answer "
        "or save a binary one to --out.",
        f'halnav act {org} search -d \'{{"query": "subject:invoice"}}\' --json --username u '
        "--password -",
        f'halnav act {org} exporttoPst --out org.pst --token "$TOKEN" --veeam',
    )
    act.add_argument("url", metavar="URL", help="absolute http(s) URL of the document")
    act.add_argument("action", metavar="ACTION", help="action name (case-insensitive)")
    act.add_argument(
        "-d",
        "--body",
        metavar="JSON",
        help="the request body as JSON, or @file.json to read it from a file (curl's -d)",
    )
    act.add_argument("-o", "--out", metavar="FILE", help="where a binary answer is saved")
    act.add_argument(
        "--json",
        "--print-json",
        dest="json",
        action="store_true",
        help="print a JSON answer as the server sent it, not a summary (as for get)",
    )
    _all_option(act)
    act.add_argument(
        "--follow",
        action="store_true",
        help="take an asynchronous answer to its outcome: fetch a 201's Location, poll a 202's "
        "status monitor until the work ends (at most --wait seconds)",
    )
    act.add_argument(
        "--wait",
        type=_positive_float,
        default=600.0,
        metavar="S",
        help="with --follow: how long to poll a 202's monitor (default 600)",
    )
    _safety_options(act)

    crawl = command(
        "crawl",
        "Walk everything reachable from the roots, writing one JSON line per document, "
        "failure and action.",
        f"halnav crawl {org} --out walk.jsonl --graph walk.mmd --username u --password -",
        f'halnav crawl {org} --action search --action-json \'{{"query": "invoice"}}\' '
        '--token "$TOKEN" --veeam',
    )
    crawl.add_argument("roots", metavar="ROOT", nargs="+", help="absolute http(s) URLs")
    crawl.add_argument(
        "-o",
        "--out",
        metavar="FILE.jsonl",
        help="JSON Lines output ('-' or none: stdout); replaced once the walk writes its "
        "first record, unless --state DIR resumes a walk",
    )
    crawl.add_argument(
        "--state",
        metavar="DIR",
        help="keep resume state here (needs --out); run the same command again to resume",
    )
    scope = crawl.add_argument_group("scope")
    scope.add_argument(
        "--allow-rel", action="append", default=[], metavar="REL", help="follow only these rels"
    )
    scope.add_argument(
        "--deny-rel",
        action="append",
        default=[],
        metavar="REL",
        help="never follow these rels (repeatable; added to the default first, prev, last: "
        "next reaches every page; 'none' drops the defaults)",
    )
    scope.add_argument(
        "--max-depth",
        type=_non_negative_int,
        metavar="N",
        help="follow links at most N hops from a root (default: no limit; next pages and "
        "page items do not count as hops)",
    )
    scope.add_argument(
        "--max-documents",
        type=_positive_int,
        metavar="N",
        help="stop after N documents (default: no limit); the summary says complete: false",
    )
    scale = _cluster_options(
        crawl,
        "One shard per ROOT, walked on the cluster's workers (each logs in on its own) and "
        "merged into --out, every document once; --action runs in each shard (exports into "
        "--export-dir/SHARD_KEY), --graph is drawn from the merged records; with --state, a "
        "run again skips the shards already committed and walks again those that stopped.",
    )
    scale.add_argument(
        "--split",
        metavar="REL",
        help="walk each member of the collection REL of each ROOT as a shard of its own "
        "(mailboxes: one organization's mailboxes spread over the workers)",
    )
    scope.add_argument(
        "--any-origin", action="store_true", help="also follow links to other origins"
    )
    actions = crawl.add_argument_group("actions")
    actions.add_argument(
        "--action",
        dest="actions",
        action="append",
        default=[],
        metavar="NAME",
        help="run this action on every document that offers it (repeatable)",
    )
    actions.add_argument(
        "--action-json", metavar="BODY", help="its JSON body, or @file.json (default: none)"
    )
    actions.add_argument("--export-dir", metavar="DIR", help="where binary answers are saved")
    actions.add_argument(
        "--action-limit", type=_positive_int, metavar="N", help="run each action at most N times"
    )
    actions.add_argument(
        "--action-rel",
        action="append",
        default=[],
        metavar="REL",
        help="run the actions only on documents reached through REL (repeatable; page "
        "items are reached through 'item')",
    )
    actions.add_argument(
        "--action-on",
        action="append",
        default=[],
        metavar="KIND",
        choices=(*sorted(veeam.KINDS.values()), "organization"),
        help="Veeam: run the actions only on resources of this kind (repeatable): mailbox, "
        "folder, item, onedrive, document, organization, ... ('search every mailbox')",
    )
    _max_hits_option(actions)
    _safety_options(actions)
    _walk_options(crawl)

    orgs = command(
        "veeam-orgs",
        "List the organizations a Veeam B365 server backs up (every page): id and name.",
        "halnav veeam-orgs https://vbo:4443 --username 'tech\\admin' --password -",
    )
    orgs.add_argument("server", metavar="SERVER", help="https://host:4443")
    orgs.add_argument("--json", action="store_true", help="one JSON object per organization")

    start = command(
        "veeam-start",
        "Start a restore session for an organization and leave it running; print its id "
        "and the organization URL the other commands start from (stop it with veeam-stop).",
        "halnav veeam-start https://vbo:4443 --org ORG_ID --username u --password -",
    )
    start.add_argument("server", metavar="SERVER", help="https://host:4443")
    start.add_argument("--org", required=True, metavar="ID", help="organization id (veeam-orgs)")
    start.add_argument(
        "--type",
        dest="session_type",
        default="vex",
        choices=("vex", "veod", "vesp", "vet"),
        help="what to explore: Exchange, OneDrive, SharePoint, Teams (default: %(default)s)",
    )
    start.add_argument("--json", action="store_true", help="print the session as JSON")

    stop = command(
        "veeam-stop",
        "Stop restore sessions (started with veeam-start, or elsewhere).",
        "halnav veeam-stop https://vbo:4443 SESSION_ID --username u --password -",
    )
    stop.add_argument("server", metavar="SERVER", help="https://host:4443")
    stop.add_argument("sessions", metavar="SESSION_ID", nargs="+", help="restore session ids")

    veeam_walk = command(
        "veeam-walk",
        "halnav's main job on a Veeam B365 server: explore organizations, walk every restore "
        "session in one crawl, search every mailbox, export PSTs, and always stop the sessions.",
        "halnav veeam-walk https://vbo:4443 --username 'tech\\admin' --password - "
        "--out walk.jsonl --search 'subject:invoice' --export-dir pst --export-limit 1",
    )
    veeam_walk.add_argument("server", metavar="SERVER", help="https://host:4443")
    veeam_walk.add_argument(
        "--org",
        dest="orgs",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="organization to explore, by id or name (repeatable; default: every one)",
    )
    veeam_walk.add_argument(
        "-o",
        "--out",
        metavar="FILE.jsonl",
        help="JSON Lines output ('-' or none: stdout); replaced once the walk writes its first "
        "record",
    )
    veeam_walk.add_argument(
        "--state",
        metavar="DIR",
        help="make the walk resumable (needs --out): run the same command again to resume it; "
        "the same organizations are explored again and the walk goes on where it stopped",
    )
    veeam_walk.add_argument(
        "--type",
        dest="session_types",
        action="append",
        default=[],
        choices=(*veeam.SESSION_TYPES, "all"),
        help="restore session types to explore in each organization (repeatable): vex "
        "Exchange, veod OneDrive, vesp SharePoint, vet Teams, all: the ones the "
        "organization says it backs up (default: all)",
    )
    veeam_walk.add_argument(
        "--search",
        metavar="QUERY",
        help="search every mailbox, OneDrive, SharePoint site and team (its posts) for QUERY",
    )
    veeam_walk.add_argument("--export-dir", metavar="DIR", help="export mailboxes to PST here")
    veeam_walk.add_argument(
        "--export-limit",
        type=_count_or_all,
        default=1,
        metavar="N|all",
        help="export at most N mailboxes (default 1: an export is a whole mailbox; 'all' "
        "exports every one, as 0 does)",
    )
    _max_hits_option(veeam_walk)
    _safety_options(veeam_walk)
    _walk_options(veeam_walk)
    _cluster_options(
        veeam_walk,
        "One shard per organization: each explores its organization in its own restore "
        "sessions, walks, searches and exports there (into --export-dir/ORG_ID, at most "
        "--export-limit mailboxes per organization) and stops its sessions; merged into --out, "
        "every document once; with --state, a run again skips the organizations committed.",
    )

    graph = command(
        "graph",
        "Build the link graph from crawl records (offline) and write it as Graphviz, "
        "Mermaid or JSON.",
        "halnav graph walk.jsonl -o walk.mmd",
        network=False,
    )
    graph.add_argument("records", metavar="RECORDS.jsonl", help="output of 'halnav crawl'")
    graph.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="OUT",
        help="OUT.dot, OUT.mmd, OUT.json, or OUT.svg (needs Graphviz's dot); '-' for "
        "standard output with --format",
    )
    graph.add_argument(
        "--format",
        choices=("dot", "mmd", "json"),
        help="with -o - : the format written to standard output (halnav graph walk.jsonl "
        "-o - --format dot | dot -Tsvg > graph.svg)",
    )
    graph.add_argument(
        "--map",
        action="store_true",
        help="write the API map instead: one node per kind of resource (URL template) with "
        "its counts and actions, one edge per rel between kinds",
    )

    failures = command(
        "failures",
        "List a walk's failures from its records (offline), grouped by what went wrong: "
        "HTTP status, or error type.",
        "halnav failures walk.jsonl",
        "halnav failures walk.jsonl --json | jq -r '.url'",
        network=False,
    )
    failures.add_argument("records", metavar="RECORDS.jsonl", help="output of 'halnav crawl'")
    failures.add_argument(
        "--json", action="store_true", help="one JSON object per failure: url, kind, message"
    )
    failures.add_argument(
        "--urls",
        type=_non_negative_int,
        default=3,
        metavar="N",
        help="URLs shown per group (0: only the counts)",
    )

    commands.add_parser(
        "sim",
        help="Serve the embedded Veeam B365 simulator, REST v5-v8 (options: halnav sim --help).",
        add_help=False,
    )

    completion = command(
        "completion",
        "Print a shell completion script for halnav's commands and options.",
        'eval "$(halnav completion bash)"      # in ~/.bashrc',
        'eval "$(halnav completion zsh)"       # in ~/.zshrc',
        network=False,
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete for")

    mcp = command(
        "mcp",
        "Serve the HAL API at URL to an LLM agent over the Model Context Protocol (stdio): "
        "a fixed tool set (get, links, follow, actions, act, page), the API map as a "
        "resource; read-only unless --allow-actions. Needs: pip install 'halnav[mcp]'.",
        "halnav mcp https://api.example/ --token-file token.txt",
        f"halnav mcp {org} --veeam --username u --password-file pw.txt --records walk.jsonl",
    )
    mcp.add_argument("url", metavar="URL", help="absolute http(s) URL of the entry document")
    mcp.add_argument(
        "--allow-actions",
        action="store_true",
        help="let the agent run actions that may change data (restore, send, delete...); "
        "by default only reading ones (search, export, save, GET) run",
    )
    mcp.add_argument(
        "--records", metavar="FILE", help="a walk's JSON Lines output, served as a resource"
    )

    repl = command(
        "repl",
        "An asyncio REPL with nav (a Navigator) and doc (the document at URL) bound; "
        "await works at top level and Tab completes rels and action names.",
        f"halnav repl {org} --username 'tech\\admin' --password -",
    )
    repl.add_argument("url", metavar="URL", help="absolute http(s) URL of the entry document")

    demo = command(
        "demo",
        "Run halnav's main job on the embedded simulator: log in, explore every "
        "organization, walk them all, search the mailboxes, export a PST, stop the sessions.",
        "halnav demo --out halnav-demo --organizations 3 --mailboxes 4",
        network=False,
    )
    demo.add_argument(
        "-o",
        "--out",
        default="halnav-demo",
        metavar="DIR",
        help="output directory (default ./halnav-demo)",
    )
    demo.add_argument("--organizations", type=_positive_int, default=3, metavar="N")
    demo.add_argument(
        "--mailboxes", type=_positive_int, default=4, metavar="N", help="per organization"
    )
    demo.add_argument(
        "--latency", type=_non_negative_float, default=0.0, metavar="S", help="per request"
    )
    demo.add_argument(
        "--api-version",
        choices=veeam.VERSIONS,
        default="v5",
        metavar="VERSION",
        help="the REST API version the simulator serves: v5, v6, v7 or v8 (default: v5)",
    )
    return parser


_SIM_EXAMPLE: Final = _examples(
    "halnav sim --port 4443 --tls --mailboxes 50",
    "halnav sim --port 0 --latency 0.02   # a free port; the URL is printed as READY <url>",
)


def _safety_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="send no action: print each action request it would send (GETs still run)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="run actions that may change data (restore, send, copy ...) without asking",
    )


@attrs.frozen
class _OfKinds:
    """``ActionRule.where`` for ``--action-on``: documents of one of ``kinds`` (a value, not
    a closure, so that a rule pickles to a cluster's workers)."""

    kinds: frozenset[str]

    def __call__(self, doc: halnav.Document) -> bool:
        return veeam.kind_of(doc) in self.kinds


def _of_kinds(kinds: frozenset[str]) -> Callable[[halnav.Document], bool]:
    """``ActionRule.where`` for ``--action-on``: documents of one of ``kinds``."""
    return _OfKinds(kinds)


def _cluster_options(parser: argparse.ArgumentParser, about: str) -> argparse._ArgumentGroup:
    """``--scheduler`` and ``--workers``: the walk on a Dask cluster."""
    about = textwrap.fill(about, width=86)  # the formatter keeps descriptions as written
    scale = parser.add_argument_group("on a Dask cluster (pip install 'halnav[dask]')", about)
    scale.add_argument("--scheduler", metavar="ADDRESS", help="a running cluster: tcp://HOST:PORT")
    scale.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="start a local cluster of N worker processes on this machine",
    )
    return scale


def _max_hits_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--max-hits",
        type=_positive_int,
        metavar="N",
        help="record at most N items of each paged action answer, such as a search's hits "
        '(default: every one, all pages; a record cut short says "truncated": true)',
    )


def _count_or_all(text: str) -> int:
    """A count, or ``all`` (0: no limit, as the library spells it)."""
    return 0 if text.strip().lower() == "all" else _non_negative_int(text)


def _all_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all",
        action="store_true",
        help="the last document is a page: print every item of every page (with --json, one "
        "JSON line per item, as the server sent it)",
    )


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of the command ``name`` (for its usage line in an error)."""
    for action in parser._actions:  # noqa: SLF001  argparse has no public list of them
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001  no public type
            found = action.choices.get(name)
            if isinstance(found, argparse.ArgumentParser):
                return found
    return parser


def _completion_script(shell: str) -> str:
    """A bash (or zsh, through bashcompinit) completion function built from the parser:
    the commands, then each command's options; file names elsewhere."""
    parser = _parser()
    commands = next(
        action
        for action in parser._actions  # noqa: SLF001  argparse has no public list of them
        if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001  no public type
    )
    cases = []
    for name, sub in sorted(commands.choices.items()):
        options = sorted(
            option
            for action in sub._actions  # noqa: SLF001  no public list of them
            for option in action.option_strings
            if option.startswith("--") and action.help != argparse.SUPPRESS
        )
        cases.append(f'    {name}) opts="{" ".join(options)}" ;;')
    words = " ".join([*sorted(commands.choices), "--help", "--version"])
    head = f'# halnav {halnav.__version__} completion: eval "$(halnav completion {shell})"'
    script = f"""{head}
_halnav() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd="" opts="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in -*) ;; *) cmd="${{COMP_WORDS[i]}}"; break ;; esac
  done
  case "$cmd" in
    "") opts="{words}" ;;
{chr(10).join(cases)}
  esac
  if [[ -z "$cmd" || "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -o default -F _halnav halnav"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script


def _global_options() -> dict[str, bool]:
    """Every option all network commands share, and whether it takes a value."""
    found: dict[str, bool] = {}
    for parent in (_debug_options(), _net_options()):
        for action in parent._actions:  # noqa: SLF001  argparse has no public list of them
            for name in action.option_strings:
                found[name] = action.nargs != 0
    return found


def _hoisted(argv: list[str]) -> list[str]:
    """``argv`` with the shared options given before the command moved after it.

    ``halnav --debug get URL`` and ``halnav get URL --debug`` mean the same (git and gh
    take both); argparse's subcommands would otherwise refuse the first.
    """
    known = _global_options()
    moved: list[str] = []
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        name = argv[index].partition("=")[0]
        if name not in known:
            break  # -h, --version, or a mistake argparse will name
        takes = known[name] and "=" not in argv[index]
        moved.extend(argv[index : index + 1 + takes])
        index += 1 + takes
    if not moved or index >= len(argv):
        return argv
    return [argv[index], *moved, *argv[index + 1 :]]


def _moved_option(argv: Sequence[str], index: int | None) -> str | None:
    """What to say when an option is spelled as it was before it moved, else None.

    ``act --json BODY`` gave the request body until ``--json`` came to mean "print the
    JSON" for every command; a JSON text or ``@file`` after it is that old spelling.
    """
    if index is None or argv[index] != "act":
        return None
    for option, value in itertools.pairwise(argv[index + 1 :]):
        if option == "--json" and value[:1] in ("{", "[", "@"):
            return (
                "act --json now prints the answer as JSON (as for get); "
                f"give the request body with -d/--body: --body {shlex.quote(value)}"
            )
    return None


def _command_of(argv: Sequence[str]) -> int | None:
    """The index of the command word (the first non-option argument)."""
    for index, arg in enumerate(argv):
        if not arg.startswith("-"):
            return index
    return None
