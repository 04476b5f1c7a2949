"""The REPL: the pure completion function, and a real `halnav repl` process with piped stdin."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import halnav
from halnav import veeam
from halnav.repl import complete
from halnav.simulator import SimulatorConfig, open_simulator

BASE = "https://vbo:4443/v5/RestoreSessions/1/Organization"
ORG = halnav.parse(
    {
        "id": "673b91dc",
        "_links": {
            "self": {"href": BASE},
            "mailboxes": {"href": f"{BASE}/mailboxes"},
            "ea:admin": {"href": f"{BASE}/admin"},
        },
        "_actions": {
            "exporttoPst": {"uri": f"{BASE}/action", "method": "POST"},
            "search": {"uri": f"{BASE}/action", "method": "POST"},
        },
    },
    BASE,
)
PAGE = halnav.parse(
    {
        "offset": 0,
        "limit": 30,
        "_links": {"self": {"href": f"{BASE}/mailboxes"}},
        "results": [
            {
                "id": "m1",
                "_links": {
                    "self": {"href": f"{BASE}/mailboxes/m1"},
                    "folders": {"href": f"{BASE}/mailboxes/m1/folders"},
                },
            }
        ],
    },
    f"{BASE}/mailboxes",
)


MULTI = halnav.parse(
    {"_links": {"self": {"href": BASE}, "ex": [{"href": f"{BASE}/1", "name": "one"},
                                               {"href": f"{BASE}/2"}]}},
    BASE,
)  # fmt: skip


def namespace(**extra: Any) -> dict[str, Any]:
    return {"doc": ORG, "page": PAGE, "multi": MULTI, "halnav": halnav, **extra}


@pytest.mark.parametrize(
    ("line", "text", "expected"),
    [
        ('nav.follow(doc, "', "", ["ea:admin", "mailboxes", "self"]),
        ('mb = await nav.follow(doc, "ma', "ma", ["mailboxes"]),
        ("await nav.follow(doc, 'S", "S", ["self"]),
        ('nav.follow_all(page, "', "", ["folders", "self"]),
        ('await nav.act(doc, "', "", ["exporttoPst", "search"]),
        ('await nav.act(doc, "ex', "ex", ["exporttoPst"]),
        ('await nav.act(doc, "EX', "EX", ["exporttoPst"]),
        ('doc.link("m', "m", ["mailboxes"]),
        ('doc.find_action("s', "s", ["search"]),
        ('page.items[0].link("f', "f", ["folders"]),
        ('nav.follow(page.items[0], "', "", ["folders", "self"]),
        ('nav.follow(doc, "ea:ad', "ad", ["admin"]),  # readline splits words at ':'
        ('nav.act(doc, "search", json="', "", []),
        ('print("ma', "ma", []),
        ('nav.follow("ma', "ma", []),
        ("# nav.follow(doc, 'ma", "ma", []),
        ('nav.follow(multi, "ex', "ex", ["ex", "ex[name:one]", "ex[1]"]),  # each of its links
        ('nav.follow(page, "it', "it", ["item", "item[0]"]),  # a page's items by position
    ],
)
def test_completes_rels_and_action_names_inside_strings(
    line: str, text: str, expected: list[str]
) -> None:
    """Inside follow/act/link/action string arguments the document's rels or actions complete."""
    assert complete(line, text, namespace()) == expected


def test_falls_back_to_the_last_printed_document() -> None:
    """When the document argument is not a name, the last printed Document is used."""
    line = 'await nav.follow(await nav.get("x"), "m'
    assert complete(line, "m", namespace()) == []
    assert complete(line, "m", namespace(), last_document=ORG) == ["mailboxes"]
    assert complete('nav.act(_, "s', "s", namespace(_=ORG)) == ["search"]


def test_later_rels_of_a_chain_come_from_the_graph() -> None:
    """`follow(doc, "mailboxes", "` offers the rels of the fetched mailboxes page."""
    nav = halnav.Navigator(BASE)
    nav.graph.add(ORG)
    nav.graph.add(PAGE)
    line = 'await nav.follow(doc, "mailboxes", "'
    offered = complete(line, "", namespace(nav=nav))
    assert "self" in offered
    assert "item" in offered
    assert complete('await nav.follow(doc, "nope", "', "", namespace(nav=nav)) == []


def test_plain_python_completion_still_works() -> None:
    """Outside those strings it is rlcompleter: names and attributes."""
    assert "doc.rels" in complete("doc.re", "doc.re", namespace())  # "rels" starts with "re"
    assert "doc.action_names" in complete("x = doc.act", "doc.act", namespace())
    assert "halnav" in complete("hal", "hal", namespace())
    assert any(m.startswith("print") for m in complete("pri", "pri", namespace()))


@contextlib.asynccontextmanager
async def explored() -> AsyncIterator[tuple[halnav.Navigator, str, dict[str, str]]]:
    """A simulator with one explored organization: a navigator, the session's Organization
    URL, and an environment that logs ``halnav repl`` in."""
    config = SimulatorConfig(organizations=1, mailboxes=2, folders=1, items=2)
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALNAV_")}
        env.update(HALNAV_USERNAME=sim.username, HALNAV_PASSWORD=sim.password)
        yield nav, f"{session.url}/Organization", env


async def test_repl_process_with_piped_stdin() -> None:
    """`halnav repl URL` binds nav and doc, runs top-level await and exits on exit()."""
    async with explored() as (_nav, url, env):
        script = (
            "print(sorted(doc.rels))\n"
            'mb = await nav.follow(doc, "mailboxes")\n'
            "print(len(mb.items))\n"
            "mb\n"
            'await nav.follow(doc, "nope")\n'
            "exit()\n"
        )
        status, out, err = await _repl(url, script, env)
    assert status == 0, err
    assert "['mailboxes', 'self']" in out
    assert "\n2\n" in out.replace(">>> ", "\n")
    assert "/mailboxes rels=[self] items=2>" in out
    assert "nav " in err
    assert 'await nav.follow(doc, "mailboxes")' in err  # the banner's examples
    assert "LinkNotFoundError: no link 'nope'" in err
    assert "Traceback" not in err
    assert "Unclosed" not in err
    assert env["HALNAV_PASSWORD"] not in out + err


async def _repl(url: str, script: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "halnav", "repl", url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_repl_shows_errors_without_its_frames_and_keeps_exit_codes() -> None:
    """A plain error shows the user's own frames only; show() prints the readable view; an
    item's repr names it; exit(3) leaves with 3 (review #37)."""
    async with explored() as (nav, url, env):
        script = (
            'mb = await nav.follow(doc, "mailboxes")\n'
            "mb.items[0]\n"
            "doc.state\n"
            "show(mb)\n"
            "def boom():\n    return 1 / 0\n\n"
            "boom()\n"
            "exit(3)\n"
        )
        status, out, err = await _repl(url, script, env)
        first = (await nav.follow(url, "mailboxes")).items[0]
    assert status == 3, err
    assert f"'{first.title}'" in out  # the item's repr shows its name
    assert "items (2):" in out  # show(): halnav get's readable view
    assert "ZeroDivisionError: division by zero" in err
    assert 'File "<console>", line 2, in boom' in err
    assert "repl.py" not in err
    assert "mappingproxy" not in out  # doc.state shows as the dict it is
    assert "concurrent" not in err


async def test_repl_opens_with_doc_none_when_the_entry_cannot_be_fetched() -> None:
    """A refused entry document is an error line, and the REPL still opens to look into it."""
    async with open_simulator(SimulatorConfig(organizations=1, mailboxes=1)) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALNAV_")}
        env.update(HALNAV_TOKEN="not-a-token")
        status, out, err = await _repl(
            f"{sim.url}/v5/Organizations", "print(doc is None)\nexit()\n", env
        )
    assert status == 0, err
    assert "halnav: error: AuthenticationError" in err
    assert "True" in out
    assert "doc     None" in err


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
async def test_repl_history_is_kept_between_sessions(tmp_path: Path) -> None:
    """On a terminal, what was typed is in HALNAV_HISTORY afterwards, readable by its owner only."""
    history = tmp_path / "state" / "history"
    async with open_simulator(SimulatorConfig(organizations=1, mailboxes=1)) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALNAV_")}
        env.update(HALNAV_HISTORY=str(history), HALNAV_TOKEN="t")
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "halnav", "repl", f"{sim.url}/v5/Organizations",
            stdin=slave, stdout=slave, stderr=slave, env=env,
        )  # fmt: skip
        os.close(slave)
        seen = b""
        while b">>> " not in seen:
            seen += await asyncio.wait_for(asyncio.to_thread(os.read, master, 65536), 30)
        os.write(master, b"40 + 2\n")
        while b"42" not in seen:
            seen += await asyncio.wait_for(asyncio.to_thread(os.read, master, 65536), 30)
        os.write(master, b"exit()\n")
        status = await asyncio.wait_for(proc.wait(), 30)
        os.close(master)
    assert status == 0
    assert "40 + 2" in history.read_text()
    assert history.stat().st_mode & 0o777 == 0o600
