"""The simulator's command line: ``python -m halnav.simulator --port 4443 --tls``.

Prints where it listens and the (fixed, demo) credentials, then one machine-readable
``READY <url>`` line, so a parent process such as a benchmark can wait for it, and serves
until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from ._app import open_simulator
from ._data import Faults, SimulatorConfig

__all__ = ["run_cli"]


def _parser(prog: str = "python -m halnav.simulator") -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    faults = Faults()
    parser = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve a simulated Veeam Backup for Microsoft 365 REST API (v5 to v8).",
    )
    serve = parser.add_argument_group("serving")
    serve.add_argument(
        "--api-version",
        choices=("v5", "v6", "v7", "v8"),
        default=defaults.api_version,
        help="the REST API version to serve (default: %(default)s)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=4443, help="0 picks a free port")
    serve.add_argument("--tls", action="store_true", help="HTTPS with a throwaway CA")
    serve.add_argument("--public-base-url", default=None, help="origin used in hrefs")
    serve.add_argument("--root-relative-links", action="store_true", help="v6-style /v5/... hrefs")
    serve.add_argument(
        "--validators",
        action="store_true",
        help="send ETags and answer If-None-Match with 304 (not Veeam behaviour: for caches)",
    )
    serve.add_argument(
        "--max-age", type=int, default=None, help="with --validators: Cache-Control max-age"
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="the same seed gives byte-identical documents",
    )
    data.add_argument(
        "--organizations",
        type=int,
        default=defaults.organizations,
        help="organizations (tenants) backed up",
    )
    data.add_argument(
        "--mailboxes", type=int, default=defaults.mailboxes, help="mailboxes per organization"
    )
    data.add_argument(
        "--folders", type=int, default=defaults.folders, help="top-level folders per mailbox"
    )
    data.add_argument(
        "--subfolders", type=int, default=defaults.subfolders, help="subfolders per folder"
    )
    data.add_argument(
        "--items", type=int, default=defaults.items, help="items (messages) per folder"
    )
    data.add_argument(
        "--onedrives", type=int, default=defaults.onedrives, help="OneDrives per organization"
    )
    data.add_argument(
        "--documents", type=int, default=defaults.documents, help="documents per OneDrive folder"
    )
    data.add_argument(
        "--sites", type=int, default=defaults.sites, help="SharePoint sites per organization"
    )
    data.add_argument("--teams", type=int, default=defaults.teams, help="Teams per organization")
    data.add_argument("--channels", type=int, default=defaults.channels, help="channels per team")
    data.add_argument(
        "--workloads",
        default=",".join(defaults.workloads),
        help="comma-separated restore session types backed up (default: %(default)s)",
    )
    data.add_argument(
        "--default-limit",
        type=int,
        default=defaults.default_limit,
        help="page size when a request names none",
    )
    data.add_argument(
        "--max-limit",
        type=int,
        default=defaults.max_limit,
        help="the largest page size a request may ask for",
    )
    data.add_argument(
        "--pst-bytes-per-item",
        type=int,
        default=defaults.pst_bytes_per_item,
        help="size of a PST export per item it holds",
    )
    data.add_argument(
        "--export-build-seconds",
        type=float,
        default=defaults.export_build_seconds,
        help="seconds an export is built before its first byte (a real PST takes minutes)",
    )
    data.add_argument(
        "--no-outlook", action="store_true", help="PST exports fail like a server without Outlook"
    )
    auth = parser.add_argument_group("authentication")
    auth.add_argument(
        "--username", default=defaults.username, help="the user the token endpoint accepts"
    )
    auth.add_argument("--password", default=defaults.password, help="that user's password")
    auth.add_argument(
        "--token-lifetime",
        type=float,
        default=defaults.token_lifetime,
        help="seconds an access token is valid (expires_in)",
    )
    fault = parser.add_argument_group("injected faults (not Veeam behaviour)")
    fault.add_argument(
        "--latency", type=float, default=faults.latency, help="seconds added to each request"
    )
    fault.add_argument(
        "--jitter", type=float, default=faults.jitter, help="+- seconds around --latency"
    )
    fault.add_argument(
        "--error-rate",
        type=float,
        default=faults.error_rate,
        help="fraction answered 500/502/503/504",
    )
    fault.add_argument(
        "--throttle-rate",
        type=float,
        default=faults.throttle_rate,
        help="fraction answered 429 with Retry-After",
    )
    fault.add_argument(
        "--retry-after",
        type=float,
        default=faults.retry_after,
        help="seconds a 429 asks to wait",
    )
    fault.add_argument(
        "--drop-rate",
        type=float,
        default=faults.drop_rate,
        help="fraction whose connection closes without an answer",
    )
    fault.add_argument(
        "--malformed-rate",
        type=float,
        default=faults.malformed_rate,
        help="fraction of 200s whose JSON body is cut in half",
    )
    fault.add_argument(
        "--slow-rate",
        type=float,
        default=faults.slow_rate,
        help="fraction held back --slow-seconds before the answer",
    )
    fault.add_argument(
        "--slow-seconds",
        type=float,
        default=faults.slow_seconds,
        help="how long a slow request is held back",
    )
    fault.add_argument(
        "--token-expiry-after",
        type=int,
        default=faults.token_expiry_after,
        help="a token stops working after this many requests (then 401 until refreshed); "
        "None: never",
    )
    fault.add_argument(
        "--fault-paths", default=faults.paths, help="regex of faulted paths (empty: all)"
    )
    return parser


def _config(args: argparse.Namespace) -> SimulatorConfig:
    faults = Faults(
        latency=args.latency,
        jitter=args.jitter,
        error_rate=args.error_rate,
        throttle_rate=args.throttle_rate,
        retry_after=args.retry_after,
        drop_rate=args.drop_rate,
        malformed_rate=args.malformed_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        token_expiry_after=args.token_expiry_after,
        paths=args.fault_paths,
    )
    return SimulatorConfig(
        seed=args.seed,
        organizations=args.organizations,
        mailboxes=args.mailboxes,
        folders=args.folders,
        subfolders=args.subfolders,
        items=args.items,
        onedrives=args.onedrives,
        documents=args.documents,
        sites=args.sites,
        teams=args.teams,
        channels=args.channels,
        workloads=tuple(kind.strip() for kind in args.workloads.split(",") if kind.strip()),
        username=args.username,
        password=args.password,
        token_lifetime=args.token_lifetime,
        public_base_url=args.public_base_url,
        validators=args.validators,
        max_age=args.max_age,
        root_relative_links=args.root_relative_links,
        default_limit=args.default_limit,
        max_limit=args.max_limit,
        pst_bytes_per_item=args.pst_bytes_per_item,
        export_build_seconds=args.export_build_seconds,
        outlook_installed=not args.no_outlook,
        faults=faults,
        tls=args.tls,
        api_version=args.api_version,
    )


async def _serve(config: SimulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows event loops have no signal handlers; Ctrl+C still raises there.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with open_simulator(config, host=host, port=port) as sim:
        lines = [
            f"halnav simulator: Veeam Backup for Microsoft 365 REST API {sim.version}",
            f"  url:           {sim.url}",
            f"  api:           {sim.api}Organizations  (an entry document: halnav get it)",
            f"  username:      {sim.username}",
            # The simulator's fixed demo credential, not a secret.
            f"  password:      {sim.password}",
            f"  ca file:       {sim.cafile or '(plain HTTP)'}",
            f"  organizations: {', '.join(sim.organization_ids)}",
            f"READY {sim.url}",
        ]
        print("\n".join(lines), flush=True)
        await stop.wait()


def run_cli(argv: list[str] | None = None, *, prog: str = "python -m halnav.simulator") -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and serve until SIGINT/SIGTERM.

    Example::

        run_cli(["--port", "0", "--mailboxes", "50", "--latency", "0.02"])

    Returns the process exit status: 0 after a clean stop, 2 for bad arguments.
    """
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except (ValueError, TypeError) as error:
        # attrs validators put the message first and their own details after it.
        first = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
        parser.error(first)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(config, args.host, args.port))
    except OSError as error:  # the port is taken, the address is not this machine's, ...
        reason = (error.strerror or str(error)).split(": ")[-1]
        print(f"{prog}: error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0
