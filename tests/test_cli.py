"""The ``halnav`` command line, in-process and as a real process, against the embedded simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

import halnav
from halnav import veeam
from halnav.cli import main
from halnav.simulator import Simulator, SimulatorConfig, open_simulator

CONFIG = SimulatorConfig(organizations=1, mailboxes=2, folders=2, subfolders=0, items=4)
WRONG_PASSWORD = "Wr0ng-S3cret-7431"
DOCUMENT_KEYS = {"url", "status", "depth", "parent", "rel", "state", "links", "actions"}
FAILURE_KEYS = {"url", "depth", "parent", "rel", "error"}
ACTION_KEYS = {"url", "action"}


@attrs.frozen
class Served:
    """A running simulator with one explored organization."""

    sim: Simulator
    org: str  # the restore session's Organization URL

    @property
    def login(self) -> list[str]:
        return ["--username", self.sim.username, "--password", self.sim.password]


@contextlib.asynccontextmanager
async def served(config: SimulatorConfig = CONFIG) -> AsyncIterator[Served]:
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        yield Served(sim, f"{session.url}/Organization")


async def cli(*args: str) -> int:
    """Run ``main`` in a worker thread, so the simulator keeps serving on this loop."""
    return await asyncio.to_thread(main, list(args))


async def access_token(sim: Simulator) -> str:
    """A bearer token from the simulator's password grant (for --token tests)."""
    async with veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav:
        answer = await nav.send(
            "POST",
            "token",
            data={"grant_type": "password", "username": sim.username, "password": sim.password},
        )
    assert isinstance(answer, halnav.Document)
    return str(answer.state["access_token"])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HALNAV_")}


async def halnav_process(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``python -m halnav ARGS`` as a real process; return (status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "halnav",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else clean_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("halnav: error: "), err
    return lines[0]


async def test_get_prints_the_organization_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """`halnav get` prints the repr, the state as JSON and the links and actions tables."""
    async with served() as s:
        assert await cli("get", s.org, *s.login) == 0
    out = capsys.readouterr().out
    assert out.startswith("<Document ")
    assert "rels=[mailboxes, self] actions=[exporttoPst, search]>" in out.splitlines()[0]
    assert '"name": ' in out
    assert re.search(r"^  mailboxes +http://127\.0\.0\.1", out, re.MULTILINE)
    assert re.search(r"^  exporttoPst +POST +http://", out, re.MULTILINE)


async def test_get_json_prints_the_document_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`halnav get --json` prints JSON with the links and actions."""
    async with served() as s:
        assert await cli("get", s.org, "--json", *s.login) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "mailboxes" in json.dumps(doc)
    assert "exporttoPst" in json.dumps(doc)


async def test_follow_prints_the_mailboxes_page(capsys: pytest.CaptureFixture[str]) -> None:
    """`halnav follow URL mailboxes` prints the page with its items."""
    async with served() as s:
        assert await cli("follow", s.org, "mailboxes", *s.login) == 0
    out = capsys.readouterr().out
    assert "/mailboxes rels=[self] items=2>" in out.splitlines()[0]
    assert "items (2):" in out


async def test_follow_steps_into_page_items(capsys: pytest.CaptureFixture[str]) -> None:
    """`item[N]` selects a page item, so a chain can go down through Veeam pages."""
    async with served() as s:
        assert await cli("follow", s.org, "mailboxes", "item[1]", "folders", *s.login) == 0
    out = capsys.readouterr().out
    assert "folders?parentId=null" in out.splitlines()[0]
    assert "Inbox" in out


async def test_token_from_the_environment_with_the_veeam_profile(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HALNAV_TOKEN plus --veeam authenticates without a password."""
    async with served() as s:
        token = await access_token(s.sim)
        monkeypatch.setenv("HALNAV_TOKEN", token)
        assert await cli("follow", s.org, "mailboxes", "--veeam") == 0
    captured = capsys.readouterr()
    assert "items (2):" in captured.out
    assert token not in captured.out + captured.err


async def test_act_export_writes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`halnav act URL exporttoPst --out f.pst` streams the PST to the file and says so; a
    new file is private (0600), a file it replaces keeps its mode."""
    target, kept = tmp_path / "org.pst", tmp_path / "shared.pst"
    kept.write_bytes(b"old")
    kept.chmod(0o644)
    async with served() as s:
        assert await cli("act", s.org, "exporttoPst", "--out", str(target), *s.login) == 0
        assert await cli("act", s.org, "exporttoPst", "--out", str(kept), *s.login) == 0
    assert target.read_bytes().startswith(b"!BDN")
    assert kept.read_bytes() == target.read_bytes()
    assert (target.stat().st_mode & 0o777, kept.stat().st_mode & 0o777) == (0o600, 0o644)
    out = capsys.readouterr().out
    assert f"wrote {target.stat().st_size} bytes" in out
    assert str(target) in out


async def test_act_search_prints_the_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON answer is printed like `get`; --json @file reads the body from a file."""
    body = tmp_path / "query.json"
    body.write_text(json.dumps({"query": "#1"}))
    async with served() as s:
        assert await cli("act", s.org, "search", "--body", f"@{body}", *s.login) == 0
    out = capsys.readouterr().out
    assert out.startswith("<Document ")
    assert "items (" in out


async def test_crawl_writes_jsonl_with_the_documented_keys(tmp_path: Path) -> None:
    """`halnav crawl` (a real process) writes parseable records, the graph and a summary line."""
    records = tmp_path / "walk.jsonl"
    graph = tmp_path / "walk.mmd"
    async with served() as s:
        status, out, err = await halnav_process(
            "crawl",
            s.org,
            "--out",
            str(records),
            "--graph",
            str(graph),
            "--action",
            "search",
            "--action-json",
            '{"query": "subject:invoice"}',
            "--concurrency",
            "8",
            *s.login,
        )
    assert status == 0, err
    assert out == ""
    lines = records.read_text().splitlines()
    kinds = {"document": 0, "action": 0}
    for line in lines:
        record = json.loads(line)
        if "action" in record:
            assert record.keys() >= ACTION_KEYS
            assert "result" in record or "error" in record
            kinds["action"] += 1
        elif "error" in record:
            assert record.keys() >= FAILURE_KEYS
        else:
            assert record.keys() >= DOCUMENT_KEYS, record
            kinds["document"] += 1
    assert kinds["document"] > 10
    assert kinds["action"] >= 1
    assert graph.read_text().startswith("flowchart")
    (summary_line,) = [line for line in err.splitlines() if line.startswith("summary ")]
    summary = json.loads(summary_line.removeprefix("summary "))
    assert summary["documents"] == kinds["document"]
    assert summary["failures"] == 0
    assert summary["graph"] == str(graph)


async def test_crawl_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out the records go to stdout and the summary to stderr."""
    async with served() as s:
        assert await cli("crawl", s.org, "--max-depth", "1", *s.login) == 0
    captured = capsys.readouterr()
    urls = [json.loads(line)["url"] for line in captured.out.splitlines()]
    assert urls[0].endswith("/organization")
    assert captured.err.startswith("summary {")


async def test_graph_from_crawl_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`halnav graph` builds Graphviz from the JSONL offline."""
    records = tmp_path / "walk.jsonl"
    dot = tmp_path / "walk.dot"
    async with served() as s:
        assert await cli("crawl", s.org, "--out", str(records), *s.login) == 0
    assert main(["graph", str(records), "-o", str(dot)]) == 0
    text = dot.read_text()
    assert text.startswith("digraph")
    assert "mailboxes" in text
    assert "wrote " in capsys.readouterr().out


def test_graph_reports_a_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A line that is not JSON is one error naming the file and line."""
    records = tmp_path / "walk.jsonl"
    records.write_text('{"url": "http://h/", "state": {}, "links": {}}\nnot json\n')
    assert main(["graph", str(records), "-o", str(tmp_path / "g.mmd")]) == 1
    assert f"{records}:2: not a JSON line" in one_error_line(capsys.readouterr().err)


async def test_unknown_rel_lists_the_available_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing rel is one line that names the rels that are there; exit status 1."""
    async with served() as s:
        assert await cli("follow", s.org, "mailbox", *s.login) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "no link 'mailbox'" in line
    assert "available: mailboxes, self" in line


def test_bad_url_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that is not http(s) is one error line, exit status 1."""
    assert main(["get", "ftp://vbo/v5/Organizations"]) == 2
    assert "http:// or https://" in one_error_line(capsys.readouterr().err)


def test_debug_shows_the_exception() -> None:
    """--debug lets the exception through (its traceback) instead of one line."""
    with pytest.raises(ValueError, match="ftp://"):
        main(["get", "ftp://vbo/v5/Organizations", "--debug"])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Usage errors are argparse's: exit status 2."""
    assert main(["crawl"]) == 2
    assert main(["crawl", "http://h/", "--max-depth", "x"]) == 2
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


async def test_binary_action_without_out_is_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A binary answer needs --out: one line says so, and no file is left anywhere."""
    async with served() as s:
        assert await cli("act", s.org, "exporttoPst", *s.login) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "--out FILE" in line
    assert "application/octet-stream" in line


async def test_unknown_action_lists_the_available_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A missing action is one line that names the actions there are."""
    async with served() as s:
        assert await cli("act", s.org, "restore", *s.login) == 1
    assert "available: exporttoPst, search" in one_error_line(capsys.readouterr().err)


async def test_wrong_password_is_reported_without_the_password() -> None:
    """A refused token grant shows the server's message; the password appears nowhere."""
    async with served() as s:
        status, out, err = await halnav_process(
            "get", s.org, "--username", s.sim.username, "--password", WRONG_PASSWORD
        )
        env = {**clean_env(), "HALNAV_USERNAME": s.sim.username, "HALNAV_PASSWORD": "-"}
        status2, out2, err2 = await halnav_process(
            "get", s.org, stdin=f"{WRONG_PASSWORD}\n".encode(), env=env
        )
    assert status == 1
    line = one_error_line(err)
    assert "HTTP 400" in line
    assert "user name or password is incorrect" in line
    assert WRONG_PASSWORD not in out + err
    assert status2 == 1
    assert "HTTP 400" in one_error_line(err2)
    assert WRONG_PASSWORD not in out2 + err2


async def test_password_from_stdin() -> None:
    """--password - reads the password from (non-TTY) stdin."""
    async with served() as s:
        status, out, err = await halnav_process(
            "get",
            s.org,
            "--username",
            s.sim.username,
            "--password",
            "-",
            stdin=f"{s.sim.password}\n".encode(),
        )
    assert status == 0, err
    assert out.startswith("<Document ")
    assert s.sim.password not in out + err


def test_username_without_password(capsys: pytest.CaptureFixture[str]) -> None:
    """Half the credentials is one error line, before any request."""
    assert main(["get", "http://127.0.0.1:9/", "--username", "u"]) == 2
    assert "--username and --password go together" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "command", ["get", "follow", "act", "crawl", "graph", "failures", "sim", "repl", "demo"]
)
def test_every_command_help_has_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`halnav COMMAND --help` exits 0 and shows an example command line."""
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:" in out
    assert re.search(rf"^  halnav {command} ", out, re.MULTILINE)
    assert "HALNAV_PASSWORD" in out or command in {"graph", "failures", "sim", "demo"}


async def test_tls_needs_the_ca_or_insecure() -> None:
    """Against `halnav sim --tls`: no CA fails naming --cafile/--insecure; --cafile works."""
    sim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "halnav",
        "sim",
        "--tls",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        assert sim.stdout is not None
        cafile = url = None
        while url is None:
            line = (await asyncio.wait_for(sim.stdout.readline(), timeout=30)).decode()
            assert line, "the simulator exited before READY"
            if line.strip().startswith("ca file:"):
                cafile = line.split(":", 1)[1].strip()
            if line.startswith("READY "):
                url = line.split()[1]
        assert cafile is not None
        assert url.startswith("https://")
        login = ["--username", "tech\\administrator", "--password", "Passw0rd!"]
        target = f"{url}/v5/Organizations"
        status, _out, err = await halnav_process("get", target, *login)
        assert status == 1
        line = one_error_line(err)
        assert "--cafile" in line
        assert "--insecure" in line
        assert "cafile=" not in line  # the option, not the library's parameter (review #27)
        assert "insecure=True" not in line
        status, out, err = await halnav_process("get", target, "--cafile", cafile, *login)
        assert status == 0, err
        assert out.startswith("<Document ")
        status, out, err = await halnav_process("get", target, "--insecure", *login)
        assert status == 0, err
        assert out.startswith("<Document ")
        warning_lines = err.strip().splitlines()
        assert len(warning_lines) == 1
        assert warning_lines[0].startswith("halnav: warning: --insecure")
    finally:
        if sim.returncode is None:
            sim.terminate()
        await sim.wait()


async def test_crawl_replaces_its_output_and_resumes_with_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --state a second crawl replaces --out; with --state a finished walk resumes as done."""
    records = tmp_path / "walk.jsonl"
    state = tmp_path / "state"
    async with served() as s:
        assert await cli("crawl", s.org, "--out", str(records), *s.login) == 0
        first = records.read_text().splitlines()
        assert await cli("crawl", s.org, "--out", str(records), *s.login) == 0
        assert len(records.read_text().splitlines()) == len(first)
        assert (
            await cli("crawl", s.org, "--out", str(records), "--state", str(state), *s.login) == 0
        )
        assert (
            await cli("crawl", s.org, "--out", str(records), "--state", str(state), *s.login) == 0
        )
    summaries = [
        json.loads(line.removeprefix("summary "))
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("summary ")
    ]
    assert [s["resumed"] for s in summaries] == [False, False, False, True]
    assert summaries[-1]["documents"] == len(first)
    assert len(records.read_text().splitlines()) == len(first)


def test_state_needs_a_file_output(capsys: pytest.CaptureFixture[str]) -> None:
    """--state without --out is one error line (the state counts bytes of a file)."""
    assert main(["crawl", "http://127.0.0.1:9/", "--state", "st"]) == 2
    assert "--state needs --out FILE" in one_error_line(capsys.readouterr().err)


async def test_veeam_walk_explores_walks_acts_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`halnav veeam-walk` walks every workload of every organization (the default), searches,
    exports one PST, stops sessions."""
    records = tmp_path / "walk.jsonl"
    pst = tmp_path / "pst"
    async with open_simulator(attrs.evolve(CONFIG, organizations=2)) as sim:
        login = ["--username", sim.username, "--password", sim.password]
        status = await cli(
            "veeam-walk",
            sim.url,
            "--out",
            str(records),
            "--search",
            "subject:invoice",
            "--export-dir",
            str(pst),
            "--quiet",
            *login,
        )
        started, stopped = sim.stats.sessions_started, sim.stats.sessions_stopped
        per_org = sum(sim.count_documents(kind) for kind in veeam.SESSION_TYPES)
        expected = per_org * len(sim.organization_ids)
        sessions = len(veeam.SESSION_TYPES) * len(sim.organization_ids)
    assert status == 0
    assert started == stopped == sessions
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    documents = [r for r in lines if "action" not in r and "error" not in r]
    assert len(documents) == expected
    assert len({r["url"] for r in documents}) == expected
    searches = [r for r in lines if r.get("action") == "search"]
    assert searches
    assert all("result" in r for r in searches)
    assert len(list(pst.iterdir())) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("summary ")]
    summary = json.loads(line.removeprefix("summary "))
    assert summary["sessions_stopped"] == sessions
    # v5 searches mailboxes only, and says so.
    assert "--search did not search veod, vesp, vet: API v5 has no search there" in err
    assert summary["failures"] == 0
    assert set(summary["documents_by_type"]) == set(veeam.SESSION_TYPES)


async def test_veeam_walk_needs_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    """`halnav veeam-walk` without credentials is a one-line usage error."""
    status = await asyncio.to_thread(main, ["veeam-walk", "https://vbo.invalid:4443"])
    assert status == 2
    assert "needs --username and --password" in one_error_line(capsys.readouterr().err)
