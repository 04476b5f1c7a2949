"""Nothing a server sends can drive the user's terminal (issue 14, finding 4), and secrets
stay off the command line (finding 10).

A hostile server on 127.0.0.1 puts terminal control sequences in rels, hrefs, action names,
state, error messages and Content-Types: setting the window title (OSC 0), writing the
clipboard (OSC 52), clearing the screen (CSI, also as the one-byte C1 ``\\x9b``) and
reversing a line (U+202E). Every command's output, every error line and every repr shows
them escaped.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import sys
import termios
from pathlib import Path

import pytest
from aiohttp import web
from test_cli import clean_env, halnav_process
from test_outcomes import start

import halnav
from halnav.errors import HTTPStatusError
from halnav.simulator import Faults, SimulatorConfig, open_simulator

TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
CLEAR = "\x9b2J"
REVERSE = "\u202e"
EVIL = TITLE + CLIPBOARD + CLEAR + REVERSE
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _hostile_app() -> web.Application:
    async def entry(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": f"org {EVIL}",
                "_links": {
                    "self": {"href": "/"},
                    f"rel{EVIL}": {"href": f"/x{EVIL}"},
                    "broken": {"href": "/broken"},
                },
                "_actions": {f"act{EVIL}": {"uri": "/act", "method": "POST"}},
            }
        )

    async def broken(_request: web.Request) -> web.Response:
        return web.json_response({"message": f"no {EVIL} wrote 12 bytes to org.pst"}, status=500)

    async def act(_request: web.Request) -> web.Response:
        return web.Response(body=b"data", content_type=f"application/x{CLEAR}")

    app = web.Application()
    app.router.add_get("/", entry)
    app.router.add_get("/broken", broken)
    app.router.add_post("/act", act)
    return app


def _clean(text: str) -> bool:
    return not any(char in text for char in RAW)


async def test_no_command_prints_what_a_server_sent_raw(tmp_path: Path) -> None:
    runner, port = await start(_hostile_app())
    url = f"http://127.0.0.1:{port}/"
    try:
        outputs = [
            await halnav_process("get", url),
            await halnav_process("get", url, "--json"),
            await halnav_process("follow", url, "nothing"),  # lists the rels there
            await halnav_process("follow", url, "broken", "--retries", "0"),
            await halnav_process("act", url, f"act{EVIL}", "--out", str(tmp_path / "f"), "--yes"),
            await halnav_process("crawl", url, "--out", str(tmp_path / "w.jsonl")),
        ]
    finally:
        await runner.cleanup()
    for status, out, err in outputs:
        assert _clean(out), out
        assert _clean(err), err
        assert status in (0, 1, 3), err
    get_out = outputs[0][1]
    assert "\\x1b]0;pwned\\x07" in get_out or "\\u001b]0;pwned\\u0007" in get_out
    assert "\\x9b2J" in outputs[3][2]  # the error line names the server's text, escaped


def test_reprs_and_error_messages_escape_control_characters() -> None:
    doc = halnav.parse(
        (
            b'{"_links": {"self": {"href": "/o"}, "r\\u001b]0;x\\u0007": {"href": "/\\u009b2J"}},'
            b' "_actions": {"a\\u202e": {"uri": "/a", "method": "POST"}}}'
        ),
        "https://h/o",
    )
    shown = [repr(doc), *(repr(link) for link in doc.links), *map(repr, doc.actions.values())]
    error = HTTPStatusError("GET", "https://h/\x1b[2J", 500, f"boom {EVIL}")
    shown += [str(error), repr(error)]
    for text in shown:
        assert _clean(text), text
    assert error.detail == f"boom {EVIL}"  # the attribute keeps what the server said


def _own_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is its stdin (so
    getpass asks there, not on the terminal running the tests)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _on_terminal(*args: str, answer: bytes = b"", stdout: bool = False) -> tuple[int, str]:
    """Run ``halnav ARGS`` with a pseudo-terminal as stdin and stderr (``stdout``: as its
    standard output only); type ``answer`` after the password prompt."""
    master, slave = pty.openpty()
    quiet = asyncio.subprocess.DEVNULL
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "halnav", *args, stdin=quiet if stdout else slave,
            stdout=slave if stdout else quiet, stderr=quiet if stdout else slave,
            env=clean_env(), preexec_fn=None if stdout else _own_terminal,
        )  # fmt: skip
        os.close(slave)
        chunks: list[bytes] = []
        if answer:  # after the prompt: getpass flushes what was typed before it
            while b"password:" not in b"".join(chunks):
                chunk = await asyncio.wait_for(asyncio.to_thread(os.read, master, 65536), 30)
                chunks.append(chunk)
            os.write(master, answer)
        shown = await _read_until_closed(master, chunks)
        status = await asyncio.wait_for(proc.wait(), 60)
    finally:
        os.close(master)
    return status, shown


async def _read_until_closed(master: int, chunks: list[bytes]) -> str:
    """What the child wrote to its terminal (after ``chunks``) until it closed it."""
    while True:
        try:
            chunk = await asyncio.to_thread(os.read, master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
async def test_records_written_to_a_terminal_are_escaped() -> None:
    """`crawl` to a terminal's standard output: the same JSON, with \\uXXXX escapes."""
    runner, port = await start(_hostile_app())
    try:
        _status, text = await _on_terminal(
            "crawl", f"http://127.0.0.1:{port}/", "--max-documents", "1", stdout=True
        )
    finally:
        await runner.cleanup()
    assert '"name":"org ' in text  # the record came through
    assert _clean(text), repr(text)
    assert "\\u009b2J" in text


# -- issue 14, finding 10: secrets kept off the command line ----------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
async def test_a_password_is_asked_for_read_from_a_file_and_warned_about(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    async with open_simulator(SimulatorConfig(organizations=1, mailboxes=1)) as sim:
        url = f"{sim.api}Organizations"
        secret.write_text(sim.password + "\n")
        from_file = await halnav_process(
            "get", url, "--username", sim.username, "--password-file", str(secret)
        )
        asked = await _on_terminal(
            "get", url, "--username", sim.username, answer=sim.password.encode() + b"\n"
        )
        typed = await _on_terminal("get", url, "--username", sim.username, "--password", "x")
        both = await halnav_process(
            "get", url, "--password", "x", "--password-file", str(secret), "--username", "u"
        )
    assert from_file[0] == 0, from_file[2]
    status, shown = asked
    assert status == 0, shown
    assert "password:" in shown
    assert sim.password not in shown  # asked without echo
    status, shown = typed
    assert "--password on the command line is visible to other users (ps)" in shown
    assert "--password-file" in shown
    assert both[0] == 2  # a usage error
    assert "give --password or --password-file, not both" in both[2]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


async def _walk_on_a_terminal(columns: int, *args: str) -> str:
    """``halnav ARGS`` with stderr on a pseudo-terminal ``columns`` wide; what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in clean_env().items() if k not in ("COLUMNS", "LINES")}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "halnav", *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=slave, env=env,
        )  # fmt: skip
        os.close(slave)
        shown = await _read_until_closed(master, [])
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        os.close(master)
    return shown


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("columns", [40, 120])
async def test_the_progress_line_never_wraps_and_says_what_matters(
    columns: int, tmp_path: Path
) -> None:
    """On a 40- or 120-column terminal, no frame of the live line is wider than the
    terminal; it shows documents, rate and a readable elapsed time (review #17)."""
    config = SimulatorConfig(organizations=1, mailboxes=6, items=30, faults=Faults(latency=0.02))
    async with open_simulator(config) as sim:
        out = tmp_path / "walk.jsonl"
        shown = await _walk_on_a_terminal(
            columns, "veeam-walk", sim.url, "--username", sim.username,
            "--password-file", str(_secret(tmp_path, sim.password)), "-o", str(out),
            "--concurrency", "4",
        )  # fmt: skip
    frames = [_ANSI.sub("", part) for part in re.split(r"[\r\n]", shown)]
    live = [frame for frame in frames if re.match(r"\d[\d,]* documents ", frame)]
    assert len(live) >= 2, shown  # it moved while the walk ran
    assert max(len(frame) for frame in live) <= columns, max(live, key=len)
    assert all(re.match(r"[\d,]+ documents +[\d,]+/s +\d+\.\d s", frame) for frame in live)
    if columns >= 120:
        assert all("received" in frame and "in flight" in frame for frame in live)
    else:
        assert any(frame.endswith("…") for frame in live)  # cropped, not wrapped


def _secret(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "password"
    path.write_text(password + "\n", encoding="utf-8")
    return path
