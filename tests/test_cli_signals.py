"""The command line against servers that name another host, and under SIGTERM and Ctrl-C.

Real processes (``python -m halnav``) against the embedded simulator on 127.0.0.1, so the
simulator's counters show which restore sessions halnav started and stopped.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_cli import CONFIG, access_token, clean_env, halnav_process, one_error_line, served

import halnav
from halnav import veeam
from halnav.cli import main
from halnav.simulator import Faults, Simulator, SimulatorConfig, open_simulator

ELSEWHERE = "http://127.0.0.1:9"  # the server's configured public name: nothing listens there
RENAMED = attrs.evolve(CONFIG, public_base_url=ELSEWHERE)
#: A walk that takes many seconds at two requests in flight, so a signal lands in the middle.
SLOW = SimulatorConfig(
    organizations=2, mailboxes=4, folders=3, subfolders=0, items=30, faults=Faults(latency=0.05)
)
WAIT: float = 20.0  # seconds any one wait may take before the test fails
# Ctrl-C as on a terminal: the child gets Python's SIGINT handler even where the test runner
# was started with SIGINT ignored (a background job), which the child would inherit.
WITH_CTRL_C = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('halnav', run_name='__main__', alter_sys=True)"
)


def documents(records: Path) -> list[halnav.DocumentRecord]:
    """The document records of a crawl's JSON Lines (not its failures and actions)."""
    return [r for r in halnav.read_records(records) if isinstance(r, halnav.DocumentRecord)]


def summary_of(err: str) -> dict[str, Any]:
    """The one ``summary {...}`` line a non-terminal walk prints on stderr."""
    (line,) = [line for line in err.splitlines() if line.startswith("summary ")]
    summary: dict[str, Any] = json.loads(line.removeprefix("summary "))
    return summary


# -- --rebase-links ------------------------------------------------------------------------------


async def test_crawl_without_rebase_links_stops_at_the_seed(tmp_path: Path) -> None:
    """Links naming the server's public name are another origin: the walk ends at the seed."""
    records = tmp_path / "walk.jsonl"
    async with served(RENAMED) as s:
        status, _out, err = await halnav_process("crawl", s.org, "--out", str(records), *s.login)
        total = s.sim.count_documents()
    assert status == 0, err
    assert len(documents(records)) == summary_of(err)["documents"] == 1
    assert total > 10


async def test_crawl_with_rebase_links_reaches_every_document(tmp_path: Path) -> None:
    """--rebase-links moves every link onto the server connected to: the whole tree is walked."""
    records = tmp_path / "walk.jsonl"
    async with served(RENAMED) as s:
        status, _out, err = await halnav_process(
            "crawl", s.org, "--out", str(records), "--rebase-links", *s.login
        )
        session_id = s.org.split("/")[-2]
        expected = {
            href.replace(ELSEWHERE, s.sim.url, 1) for href in s.sim.expected_documents(session_id)
        }
        assert len(expected) == s.sim.count_documents()
    assert status == 0, err
    walked = documents(records)
    selves = {href for r in walked for href in r.links["self"]}
    assert selves == expected
    assert len(walked) == len(expected)
    summary = summary_of(err)
    assert summary["documents"] == len(expected)
    assert summary["failures"] == 0
    assert ELSEWHERE not in records.read_text()


@pytest.mark.parametrize("rebase", [False, True], ids=["as-advertised", "rebased"])
async def test_veeam_walk_honours_rebase_links(tmp_path: Path, *, rebase: bool) -> None:
    """`veeam-walk` builds its navigator from the same options: --rebase-links walks it all."""
    records = tmp_path / "walk.jsonl"
    async with open_simulator(attrs.evolve(RENAMED, organizations=2)) as sim:
        status, _out, err = await halnav_process(
            "veeam-walk",
            sim.url,
            "--type",
            "vex",
            "--out",
            str(records),
            "--username",
            sim.username,
            "--password",
            sim.password,
            *(["--rebase-links"] if rebase else []),
        )
        per_session = sim.count_documents()
        stats = attrs.evolve(sim.stats)
    assert status == 0, err
    organizations = len(sim.organization_ids)
    expected = per_session * organizations if rebase else organizations  # else only the seeds
    assert len(documents(records)) == summary_of(err)["documents"] == expected
    assert stats.sessions_started == stats.sessions_stopped == organizations


async def test_get_with_rebase_links_shows_links_on_the_connected_server() -> None:
    """`get --rebase-links` (Veeam login, or a plain bearer token) shows the server's own links."""
    async with served(RENAMED) as s:
        plain = await halnav_process("get", s.org, *s.login)
        rebased = await halnav_process("get", s.org, "--rebase-links", *s.login)
        token = await access_token(s.sim)
        generic = await halnav_process("get", s.org, "--token", token, "--rebase-links")
    status, out, err = plain
    assert status == 0, err
    assert re.search(rf"^  mailboxes +{re.escape(ELSEWHERE)}/v5/", out, re.MULTILINE)
    for status, out, err in (rebased, generic):
        assert status == 0, err
        assert re.search(rf"^  mailboxes +{re.escape(s.sim.url)}/v5/", out, re.MULTILINE), out
        assert re.search(rf"^  exporttoPst +POST +{re.escape(s.sim.url)}/v5/", out, re.MULTILINE)
        assert ELSEWHERE not in out


@pytest.mark.parametrize("command", ["get", "follow", "act", "crawl", "veeam-walk", "repl"])
def test_every_network_command_has_rebase_links(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rebase-links is a shared network option, explained in every command's help."""
    assert main([command, "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--rebase-links treat links that name another host as links to the server" in help_text


def test_rebase_links_needs_roots_on_one_origin(capsys: pytest.CaptureFixture[str]) -> None:
    """Links can be moved onto one server only: roots on two origins are a usage error."""
    status = main(["crawl", "http://127.0.0.1:9/a", "http://127.0.0.2:9/b", "--rebase-links"])
    assert status == 2
    assert "--rebase-links" in one_error_line(capsys.readouterr().err)


# -- SIGTERM and Ctrl-C ----------------------------------------------------------------------------


async def wait_for_lines(records: Path, proc: asyncio.subprocess.Process, count: int) -> None:
    """Until ``records`` holds ``count`` lines (the walk is under way); fail after WAIT s."""
    deadline = time.monotonic() + WAIT
    while not (records.is_file() and len(records.read_bytes().splitlines()) >= count):
        assert proc.returncode is None, "halnav ended before the walk got going"
        assert time.monotonic() < deadline, "the walk did not start in time"
        await asyncio.sleep(0.02)


async def session_states(sim: Simulator) -> list[str]:
    async with veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav:
        listing = await nav.get("RestoreSessions")
        return [str(item["state"]) async for item in nav.paginate(listing)]


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [
        (signal.SIGTERM, 143, r"halnav: terminated \(SIGTERM\) after \d+\.\d s"),
        (
            signal.SIGINT,
            130,
            r"halnav: interrupted after \d+\.\d s; the records so far are in \S+walk\.jsonl; "
            r"not resumable: no --state \(add --state DIR to make a walk resumable\)",
        ),
    ],
    ids=["SIGTERM", "Ctrl-C"],
)
async def test_signal_stops_every_restore_session(
    tmp_path: Path, signum: signal.Signals, status: int, message: str
) -> None:
    """A signal mid-walk cancels it: every session halnav started is stopped, then it exits."""
    records = tmp_path / "walk.jsonl"
    async with open_simulator(SLOW) as sim:
        login = ["--username", sim.username, "--password", sim.password]
        start = ["-m", "halnav"] if signum == signal.SIGTERM else ["-c", WITH_CTRL_C]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *start,
            "veeam-walk",
            sim.url,
            "--type",
            "vex",
            "--out",
            str(records),
            "--concurrency",
            "2",
            *login,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        try:
            await wait_for_lines(records, proc, 5)
            started = sim.stats.sessions_started
            proc.send_signal(signum)
            out, err_bytes = await asyncio.wait_for(proc.communicate(), timeout=WAIT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        states = await session_states(sim)
        stats = attrs.evolve(sim.stats)
    err = err_bytes.decode()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    halnav_lines = [line for line in err.splitlines() if line.startswith("halnav: ")]
    assert len(halnav_lines) == 1, err
    assert re.fullmatch(message, halnav_lines[0]), err
    assert err.splitlines()[-1] == halnav_lines[0]
    assert "summary" not in err  # the walk did not finish
    assert out == b""
    assert started == stats.sessions_started == len(sim.organization_ids)
    assert stats.sessions_stopped == stats.sessions_started
    assert states == ["Stopped"] * len(sim.organization_ids)
    walked = list(halnav.read_records(records))  # whole lines only
    assert 5 <= len(walked) < sim.count_documents() * len(sim.organization_ids)


async def test_sigterm_names_a_session_it_could_not_stop(tmp_path: Path) -> None:
    """When a stop fails, the one line says which session is left running; still exit 143."""
    records = tmp_path / "walk.jsonl"
    refusing = attrs.evolve(
        SLOW,
        faults=attrs.evolve(SLOW.faults, error_rate=1.0, paths=r"restoresessions/[^/]+/action"),
    )
    async with open_simulator(refusing) as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "halnav",
            "veeam-walk",
            sim.url,
            "--type",
            "vex",
            "--out",
            str(records),
            "--concurrency",
            "2",
            "--retries",
            "0",
            "--username",
            sim.username,
            "--password",
            sim.password,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        try:
            await wait_for_lines(records, proc, 5)
            proc.send_signal(signal.SIGTERM)
            _out, err_bytes = await asyncio.wait_for(proc.communicate(), timeout=WAIT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        stopped = sim.stats.sessions_stopped
    err = err_bytes.decode()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    line = err.splitlines()[-1]
    assert line.startswith("halnav: terminated (SIGTERM) after "), err
    assert line.count("also failed: ") == len(sim.organization_ids), err
    assert sim.password not in err
    assert stopped == 0
