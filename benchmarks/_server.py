"""Start and stop the Veeam simulator in its own process for the benchmarks.

The server must never share the client's process (or its event loop): every
client figure is CPU time of the *client* process, and a server in the same
loop would both steal that time and serialise with the client. So each
benchmark runs ``python -m halnav.simulator --port 0 ...`` as a subprocess and
waits for its ``READY <url>`` line::

    with simulator(mailboxes=30, items=30, latency=0.02) as server:
        print(server.url, server.cpu_seconds())
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

import attrs

from halnav.simulator import Faults, SimulatorConfig
from halnav.simulator._app import Simulator

__all__ = ["Server", "count_documents", "simulator"]

#: Seconds to wait for the ``READY`` line (a loaded 2-core box can be slow to import).
READY_TIMEOUT = 60.0


@attrs.frozen
class Server:
    """A running simulator process."""

    url: str
    username: str
    password: str
    organization_ids: tuple[str, ...]
    config: SimulatorConfig
    pid: int

    @property
    def api(self) -> str:
        """The API root, ``url + "/v5/"``."""
        return f"{self.url}/v5/"

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds the server process used so far (Linux ``/proc``)."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            return None
        # Fields after the command name: state is [0], utime [11], stime [12] (clock ticks).
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def _flags(options: dict[str, Any]) -> list[str]:
    """``{"latency": 0.02, "no_outlook": True}`` -> ``["--latency", "0.02", "--no-outlook"]``."""
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:
            flags.extend([flag, str(value)])
    return flags


def _config(options: dict[str, Any]) -> SimulatorConfig:
    """The SimulatorConfig the child process builds from the same options (for counting)."""
    fault_names = attrs.fields_dict(Faults)
    data = {k: v for k, v in options.items() if k in attrs.fields_dict(SimulatorConfig)}
    faults = {k: v for k, v in options.items() if k in fault_names}
    return SimulatorConfig(**data, faults=Faults(**faults))


def count_documents(config: SimulatorConfig) -> int:
    """How many distinct documents a full walk of one Vex restore session reaches.

    The simulator's own formula (``Simulator.count_documents`` reads nothing but
    the config): the Organization, every mailbox, folder, item and every page.
    """
    probe = Simulator(url="http://unused", config=config, cafile=None, state=None)  # type: ignore[arg-type]
    return probe.count_documents("vex")


def _read_ready(stdout: IO[str], process: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """Read the child's banner up to ``READY <url>``; return the URL and the banner lines.

    Blocking reads (the child either prints READY or exits, which ends the
    stream); a timer kills a child that does neither in time.
    """
    lines: list[str] = []
    watchdog = threading.Timer(READY_TIMEOUT, process.kill)
    watchdog.start()
    try:
        for raw in stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if line.startswith("READY "):
                return line.split(" ", 1)[1].strip(), lines
    finally:
        watchdog.cancel()
    raise RuntimeError(f"the simulator exited without READY ({process.poll()}): {lines}")


@contextlib.contextmanager
def simulator(**options: Any) -> Iterator[Server]:
    """Run ``python -m halnav.simulator --port 0`` with ``options`` as flags, until the block ends.

    Option names are the CLI's with ``_`` for ``-`` (``latency=0.02``,
    ``mailboxes=30``, ``default_limit=30``).

    Raises:
        RuntimeError: the simulator did not become ready.
    """
    config = _config(options)
    cmd = [sys.executable, "-m", "halnav.simulator", "--port", "0", *_flags(options)]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, text=True
        )
        try:
            assert process.stdout is not None
            try:
                url, lines = _read_ready(process.stdout, process)
            except RuntimeError as exc:
                errors.seek(0)
                exc.add_note(f"simulator stderr: {errors.read()[-2000:]}")
                raise
            orgs = next(
                (
                    line.split(":", 1)[1]
                    for line in lines
                    if line.strip().startswith("organizations:")
                ),
                "",
            )
            yield Server(
                url=url,
                username=config.username,
                password=config.password,
                organization_ids=tuple(o.strip() for o in orgs.split(",") if o.strip()),
                config=config,
                pid=process.pid,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
