"""What the command line prints for scripts and people: lossless JSON, usage errors, failures."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_cli import CONFIG, access_token, cli, halnav_process, served

import halnav
from halnav.cli import main, render
from halnav.cli._options import _parser
from halnav.cli._render import _clock, _summary_lines

HTML_404 = (
    "<!DOCTYPE HTML>\n<html lang='en'><head><title>Error response</title></head>"
    "<body><p>Message: File not found.</p></body></html>"
)


async def test_follow_json_keeps_the_page_items_as_the_server_sent_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`follow ... mailboxes --json | jq '.results[].email'` sees the mailboxes (review #4)."""
    async with served() as s:
        assert await cli("follow", s.org, "mailboxes", "--json", *s.login) == 0
        page = json.loads(capsys.readouterr().out)
        assert await cli("follow", s.org, "mailboxes", "item[1]", "--json", *s.login) == 0
        second = json.loads(capsys.readouterr().out)
    emails = [mailbox["email"] for mailbox in page["results"]]
    assert len(emails) == 2
    assert all("@" in email for email in emails)
    assert isinstance(page["_links"]["self"], dict)  # a single link stays an object
    assert second == page["results"][1]  # an item is its element of the page, untouched


async def test_get_json_keeps_embedded_state_and_relative_hrefs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A HAL document's ``_embedded`` resources keep their state; hrefs stay as written."""
    body = {
        "_links": {"self": {"href": "/orders"}},
        "_embedded": {"orders": [{"id": 1, "status": "open"}, {"id": 2, "name": "second"}]},
        "results": [],
        "offset": 0,
    }

    async def orders(_request: web.Request) -> web.Response:
        return web.json_response(body, content_type="application/hal+json")

    app = web.Application()
    app.router.add_get("/orders", orders)
    async with TestServer(app, host="127.0.0.1") as server:
        assert await cli("get", str(server.make_url("/orders")), "--json") == 0
    assert json.loads(capsys.readouterr().out) == body


async def test_act_json_prints_the_search_hits(capsys: pytest.CaptureFixture[str]) -> None:
    """`act ... search -d BODY --json` prints the answer with its ``results`` (review #4)."""
    async with served() as s:
        code = await cli("act", s.org, "search", "-d", '{"query": "a"}', "--json", *s.login)
        assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["results"]
    assert {"offset", "limit", "results"} <= set(answer)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["get", "/relative"], "expected an absolute http:// or https:// URL"),
        (["follow", "http://127.0.0.1:9/", "x", "--var", "q"], "--var expects NAME=VALUE"),
        (["crawl", "http://127.0.0.1:9/", "--graph", "g.png"], "--graph g.png"),
        (["graph", "walk.jsonl", "-o", "g.png"], "-o g.png"),
        (["act", "http://127.0.0.1:9/", "search", "--json", '{"query": "x"}'], "-d/--body"),
        (["get", "http://127.0.0.1:9/", "--token", "t", "--username", "u"], "not both"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command line that is wrong exits 2, like argparse's own errors (review #26)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("halnav: error: ")
    assert message in err[0]


async def test_an_html_error_page_is_summarised_by_its_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`HTTP 404 Not Found`, not the page's markup squeezed into one line (review #28)."""

    async def missing(_request: web.Request) -> web.Response:
        return web.Response(status=404, text=HTML_404, content_type="text/html")

    app = web.Application()
    app.router.add_get("/missing", missing)
    async with TestServer(app, host="127.0.0.1") as server:
        assert await cli("get", str(server.make_url("/missing"))) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith("HTTP 404 Not Found")
    assert "<" not in err


def _walk_with_failures(path: Path) -> None:
    records = [
        {"url": "https://h/a", "status": 200, "depth": 0, "state": {}, "links": {}},
        *(
            {"url": f"https://h/busy{i}", "depth": 1, "parent": "https://h/a", "rel": "x",
             "error": {"type": "HTTPStatusError", "status": 503, "message": "HTTP 503: busy"}}
            for i in range(4)
        ),
        {"url": "https://h/gone", "depth": 1, "parent": "https://h/a", "rel": "x",
         "error": {"type": "ConnectError", "status": None, "message": "cannot connect"}},
        {"url": "https://h/a", "action": "search", "status": 500,
         "error": {"type": "HTTPStatusError", "status": 500, "message": "HTTP 500: boom"}},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_failures_groups_a_walks_failures_by_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`halnav failures walk.jsonl`: counts by HTTP status or error type, a few URLs each."""
    walk = tmp_path / "walk.jsonl"
    _walk_with_failures(walk)
    assert main(["failures", str(walk), "--urls", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"6 failures in {walk}:"
    kinds = [line.split(None, 1) for line in out if line[:8].strip().isdigit()]
    assert kinds == [
        ["4", "HTTP 503 Service Unavailable"],
        ["1", "ConnectError"],
        ["1", "HTTP 500 Internal Server Error"],
    ]
    assert "          ... and 2 more" in out
    assert "          https://h/a (search)" in out
    assert main(["failures", str(walk), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["url"] for line in lines][-1] == "https://h/a (search)"
    assert len(lines) == 6


def test_failures_of_a_clean_walk_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walk = tmp_path / "walk.jsonl"
    walk.write_text('{"url": "https://h/a", "status": 200, "state": {}}\n', encoding="utf-8")
    assert main(["failures", str(walk)]) == 0
    assert capsys.readouterr().out.strip() == f"no failures in {walk}"


# -- options that read the same everywhere --------------------------------------------------------


def _echo_app(seen: list[dict[str, str]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"_links": {"self": {"href": "/x"}}})

    app = web.Application()
    app.router.add_get("/x", echo)
    return app


async def test_shared_options_go_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`halnav -v -H ... get URL` = `halnav get URL -v -H ...`: -v logs each request like
    curl -v (method, URL, status, time, attempt), -H sends the header (review #25, #42)."""
    seen: list[dict[str, str]] = []
    async with TestServer(_echo_app(seen), host="127.0.0.1") as server:
        url = str(server.make_url("/x"))
        assert await cli("-v", "-H", "X-Request-ID: abc-1", "get", url) == 0
        before = capsys.readouterr().err
        assert await cli("get", url, "-v", "--header", "X-Request-ID: abc-2") == 0
        after = capsys.readouterr().err
    assert [headers["X-Request-ID"] for headers in seen] == ["abc-1", "abc-2"]
    for err in (before, after):
        assert re.search(rf"^halnav: GET {re.escape(url)} -> 200 in [0-9.]+ s \(attempt 1\)$",
                         err, re.MULTILINE), err  # fmt: skip


async def test_verbose_logs_each_retry_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """-v says why a request is retried and how long it waits."""
    calls = 0

    async def flaky(_request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/x", flaky)
    async with TestServer(app, host="127.0.0.1") as server:
        assert await cli("get", str(server.make_url("/x")), "-v") == 0
    err = capsys.readouterr().err
    assert re.search(r"HTTP 503 Retry-After \(attempt 1\); retrying in 0\.00 s", err), err
    assert "(attempt 2)" in err


def test_a_malformed_header_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "http://127.0.0.1:9/", "-H", "no colon here"]) == 2
    assert "expected 'Name: value'" in capsys.readouterr().err


def test_help_shows_defaults_and_short_forms(capsys: pytest.CaptureFixture[str]) -> None:
    """Defaults are in --help; -o, -q and -v exist; descriptions wrap (review #25)."""
    assert main(["crawl", "--help"]) == 0
    out = capsys.readouterr().out
    assert "requests in flight at once (default 64)" in " ".join(out.split())
    assert "extra attempts per request (default 3)" in " ".join(out.split())
    for short in ("-o FILE.jsonl, --out FILE.jsonl", "-q, --quiet", "-v, --verbose"):
        assert short in out
    prose = [line for line in out.splitlines() if not line.startswith("  halnav ")]
    assert all(len(line) <= 100 for line in prose), max(prose, key=len)  # examples stay whole


def test_bash_completion_completes_commands_and_options(tmp_path: Path) -> None:
    """`halnav completion bash` completes command names, then that command's options."""
    script = tmp_path / "halnav.bash"
    printed = subprocess.run(
        [sys.executable, "-m", "halnav", "completion", "bash"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    script.write_text(printed, encoding="utf-8")
    probe = (
        f"source {script}\n"
        'COMP_WORDS=(halnav cr); COMP_CWORD=1; _halnav; echo "${COMPREPLY[*]}"\n'
        'COMP_WORDS=(halnav crawl --max-d); COMP_CWORD=2; _halnav; echo "${COMPREPLY[*]}"\n'
        'COMP_WORDS=(halnav failures --j); COMP_CWORD=2; _halnav; echo "${COMPREPLY[*]}"\n'
    )
    lines = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines == ["crawl", "--max-depth --max-documents --max-download-bytes", "--json"]


# -- messages for people -------------------------------------------------------------------------


def test_errors_speak_of_options_and_files_not_errno(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ``[Errno 2]`` or OpenSSL codes: the option, the file and what is wrong (review #27)."""
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_text("not a certificate\n", encoding="utf-8")
    cases = [
        (["get", "https://127.0.0.1:9/", "--cafile", str(bad_pem)],
         f"--cafile {bad_pem}: not a PEM certificate file"),
        (["graph", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "g.dot")],
         f"{tmp_path / 'none.jsonl'}: no such file or directory"),
        (["crawl", "http://127.0.0.1:9/", "--action", "search", "--action-json",
          f"@{tmp_path / 'nofile.json'}"],
         f"--action-json @{tmp_path / 'nofile.json'}: no such file or directory"),
        (["get", "http://127.0.0.1:9/x", "--retries", "0"],
         "cannot connect to 127.0.0.1:9: connection refused"),
    ]  # fmt: skip
    for argv, expected in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert expected in err, err
        assert "Errno" not in err
        assert "_ssl.c" not in err


async def test_sim_says_in_one_line_when_its_port_is_taken_or_a_size_is_bad() -> None:
    """`halnav sim` on a busy port or with a negative size: one line, no traceback (#29)."""
    async with TestServer(web.Application(), host="127.0.0.1") as busy:
        port = busy.port
        status, _out, err = await halnav_process("sim", "--port", str(port))
    assert status == 1
    expected = f"halnav sim: error: cannot listen on 127.0.0.1:{port}: address already in use"
    assert err.strip() == expected
    status, _out, err = await halnav_process("sim", "--mailboxes", "-5")
    assert status == 2
    assert err.strip().splitlines()[-1] == (
        "halnav sim: error: 'mailboxes' must be in range(0, 4294967295) (got -5)"
    )


async def test_a_veeam_action_refused_without_the_profile_gets_a_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --token and no --veeam, the server's 400 comes with 'add --veeam' (review #11)."""
    async with served() as s:
        token = await access_token(s.sim)
        code = await cli("act", s.org, "search", "-d", '{"query": "a"}', "--token", token)
    assert code == 1
    err = capsys.readouterr().err
    assert "HTTP 400" in err
    assert "add --veeam" in err
    async with served() as s:  # a walk's action failures are records, and get the hint too
        token = await access_token(s.sim)
        code = await cli("crawl", s.org, "--action", "search", "--action-json",
                         '{"query": "a"}', "--token", token, "--out", "-", "--quiet")  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err
    assert "actions failed; is this a Veeam server? add --veeam" in err


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.04, "0.0 s"), (42.06, "42.1 s"), (60, "1:00"), (1234.4, "20:34"), (3723, "1:02:03")],
)
def test_elapsed_time_reads_like_a_clock(seconds: float, shown: str) -> None:
    """``1234.4s`` was hard to read on a long walk (review #17)."""
    assert _clock(seconds) == shown


def test_a_quick_benchmark_run_leaves_the_tracked_results_alone() -> None:
    """`benchmarks/run.py --quick` (or --only) writes results-quick.json, not the tracked
    results.json (review #41)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "_output.py"
    spec = importlib.util.spec_from_file_location("bench_output", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    every = {"latency", "cpu", "parse"}
    full = bench.default_output(quick=False, rows=every, every=every, memory_docs=None)
    assert full.name == "results.json"
    quick = bench.default_output(quick=True, rows=every, every=every, memory_docs=None)
    assert quick.name == "results-quick.json"
    some = bench.default_output(quick=False, rows={"cpu"}, every=every, memory_docs=None)
    assert some.name == "results-quick.json"
    run = (path.parent / "run.py").read_text(encoding="utf-8")
    assert "default_output(" in run  # the rule run.py follows
    ignored = (path.parent.parent / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "benchmarks/results-quick.json" in ignored


# -- the second pass over the review (findings 18-42) ---------------------------------------------


def _summary(**fields: object) -> halnav.CrawlSummary:
    base: dict[str, object] = {
        "documents": 1443, "failures": 0, "actions": 0, "action_failures": 0, "elapsed": 2.5,
        "resumed": False, "complete": True, "output": "big.jsonl", "failures_by_type": {},
    }  # fmt: skip
    return halnav.CrawlSummary(**{**base, **fields})  # type: ignore[arg-type]


def test_a_resumed_walk_says_what_was_new_and_what_the_state_is_for() -> None:
    """'already complete; nothing to do', or 'N from before + M new' (review #18, #42.10)."""
    done = _summary_lines(_summary(resumed=True, new_documents=0, elapsed=0.01), None, ".big")
    assert done[0] == "the walk was already complete: 1,443 documents in big.jsonl; nothing to do"
    assert done[-1] == "  state:    .big (the walk is complete; delete it to start over)"
    resumed = _summary_lines(
        _summary(resumed=True, new_documents=443, complete=False, retries=7, throttled=2),
        None,
        ".big",
    )
    assert resumed[0] == "resumed: 1,000 documents from before + 443 new in 2.5 s (177/s)" + (
        " (finished with failures)"
    )
    assert "  retries:  7, 2 throttled" in resumed
    assert resumed[-1] == "  state:    .big (run the same command again to resume)"
    fresh = _summary_lines(_summary(elapsed=1234.4), None)
    assert fresh[0] == "crawled 1,443 documents in 20:34 (1/s)"


def test_extra_arguments_get_the_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """`halnav get URL extra`: the usage of get, not of halnav (review #25)."""
    assert main(["get", "http://127.0.0.1:9/", "extra"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: halnav get ")
    assert "unrecognized arguments: extra" in err


def test_a_cut_off_last_line_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A walk killed mid-write still draws (review #34); a bad line elsewhere is an error."""
    walk = tmp_path / "walk.jsonl"
    good = '{"url": "https://h/a", "status": 200, "state": {}, "links": {"x": ["https://h/b"]}}\n'
    walk.write_text(good + '{"url": "https://h/b", "sta')
    assert main(["graph", str(walk), "-o", "-", "--format", "dot"]) == 0
    captured = capsys.readouterr()
    assert f"{walk}:2: a cut-off last line" in captured.err
    assert captured.out.startswith("digraph halnav {")  # -o - writes to stdout (review #42.7)
    assert '"https://h/b"' in captured.out
    walk.write_text('{"url": "https://h/b", "sta\n' + good)
    assert main(["graph", str(walk), "-o", str(tmp_path / "g.dot")]) == 1
    assert f"{walk}:1:" in capsys.readouterr().err
    assert main(["graph", str(walk), "-o", "-"]) == 2  # which format? it says so
    assert "--format" in capsys.readouterr().err


async def test_every_root_named_gets_the_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    """`crawl ROOT_A ROOT_B --token T`: both origins were named, both get the token (#23)."""
    seen: list[str | None] = []

    async def guarded(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != "Bearer T0ken":
            return web.Response(status=401)
        return web.json_response({"_links": {"self": {"href": str(request.url)}}})

    def app() -> web.Application:
        application = web.Application()
        application.router.add_get("/r", guarded)
        return application

    async with (
        TestServer(app(), host="127.0.0.1") as one,
        TestServer(app(), host="127.0.0.1") as two,
    ):
        code = await cli(
            "crawl", str(one.make_url("/r")), str(two.make_url("/r")), "--token", "T0ken", "-q"
        )
    assert code == 0, capsys.readouterr().err
    assert seen == ["Bearer T0ken", "Bearer T0ken"]


async def test_deny_rel_none_drops_the_default_deny_list(tmp_path: Path) -> None:
    """`--deny-rel none` follows first/prev/last too (review #22)."""

    async def page(request: web.Request) -> web.Response:
        first = str(request.url.with_path("/first"))
        return web.json_response(
            {"_links": {"self": {"href": str(request.url)}, "first": {"href": first}}}
        )

    app = web.Application()
    app.router.add_get("/p", page)
    app.router.add_get("/first", page)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/p"))
        assert await cli("crawl", url, "-o", str(tmp_path / "a.jsonl"), "-q") == 0
        assert (
            await cli("crawl", url, "-o", str(tmp_path / "b.jsonl"), "-q", "--deny-rel", "none")
            == 0
        )
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 1
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 2


async def test_act_out_writes_a_json_answer_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`act ... search -d BODY --out res.json` writes the hits, not nothing (review #32)."""
    out = tmp_path / "res.json"
    async with served() as s:
        assert (
            await cli("act", s.org, "search", "-d", '{"query": "a"}', "-o", str(out), *s.login) == 0
        )
    assert json.loads(out.read_text())["results"]
    assert f"(the JSON answer) to {out}" in capsys.readouterr().out


def test_credentials_from_the_environment_are_named_and_a_lone_password_ignored(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HALNAV_PASSWORD alone is no login (review #38); the missing half names its variable;
    --insecure warns only where there is TLS."""
    monkeypatch.setenv("HALNAV_PASSWORD", "left-over")
    assert main(["get", "http://127.0.0.1:9/x", "--retries", "0", "--insecure"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err  # it tried, without credentials
    assert "certificate" not in err  # no TLS on http://
    assert main(["get", "http://127.0.0.1:9/x", "--password", "p"]) == 2
    assert "--username (or HALNAV_USERNAME) is missing" in capsys.readouterr().err


async def test_a_failed_login_from_the_environment_names_its_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HALNAV_USERNAME/HALNAV_PASSWORD left set, against a server that has no token endpoint
    (review #38): the error says where the login came from and how to drop it."""

    async def nothing(_request: web.Request) -> web.Response:
        return web.Response(status=501)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", nothing)
    monkeypatch.setenv("HALNAV_USERNAME", "someone")
    monkeypatch.setenv("HALNAV_PASSWORD", "left-over-4711")
    async with TestServer(app, host="127.0.0.1") as server:
        assert await cli("get", str(server.make_url("/v8/organizations")), "--retries", "0") == 1
    err = capsys.readouterr().err
    assert "HTTP 501" in err
    assert "the login came from the environment (HALNAV_USERNAME, HALNAV_PASSWORD)" in err
    assert "left-over-4711" not in err


def test_selector_errors_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Did you mean; a malformed selector said so; names listed for rel[name:x] (review #36)."""
    doc = halnav.parse(
        {"_links": {"self": {"href": "/d"}, "mailboxes": {"href": "/m"},
                    "ex": [{"href": "/1", "name": "one"}, {"href": "/2", "name": "two"}]}},
        "https://h/d",
    )  # fmt: skip
    with pytest.raises(halnav.LinkNotFoundError, match="did you mean 'mailboxes'"):
        doc.link("mailbox")
    with pytest.raises(halnav.LinkNotFoundError, match="a selector is rel, rel"):
        doc.link("ex[")
    with pytest.raises(halnav.LinkNotFoundError) as names:
        doc.link("ex[name:three]")
    assert names.value.available == ("ex[name:one]", "ex[name:two]")
    with pytest.raises(halnav.ActionNotFoundError, match="did you mean 'search'"):
        halnav.parse({"_actions": {"search": {"uri": "/s"}}}, "https://h/d").action("serch")


def test_render_shows_link_titles_and_what_a_form_asks_for() -> None:
    """The readable view shows a link's title and a HAL-FORMS action's fields (#42.8)."""
    doc = halnav.parse(
        {"_links": {"self": {"href": "/d"}, "ex:thing": {"href": "/t", "title": "A thing"}},
         "_templates": {"default": {"method": "POST", "properties": [
             {"name": "title", "required": True}, {"name": "due", "type": "date"}]}}},
        "https://h/d",
    )  # fmt: skip
    text = render(doc)
    assert "https://h/t (A thing)" in text
    assert "default takes: title* (text), due (date)  (* required)" in text


def test_the_readmes_command_table_lists_every_command() -> None:
    """The README's CLI table names every command `halnav --help` has."""
    parser = _parser()
    commands = next(
        set(action.choices)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z-]+)[ `]", readme, re.MULTILINE))
    assert len(commands) >= 14
    assert commands <= listed, commands - listed


async def test_all_prints_every_item_of_every_page(capsys: pytest.CaptureFixture[str]) -> None:
    """`follow ... --all` and `act ... --all` read every page, not the first 30 (#31)."""
    config = attrs.evolve(CONFIG, mailboxes=35, items=70, folders=1, subfolders=0)
    async with served(config) as s:
        assert await cli("follow", s.org, "mailboxes", "--all", "--json", *s.login) == 0
        mailboxes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert await cli("act", s.org, "search", "-d", '{"query": "a"}', "--all", *s.login) == 0
        captured = capsys.readouterr()
    assert len(mailboxes) == 35  # two pages of the simulator's 30
    assert len({mailbox["email"] for mailbox in mailboxes}) == 35
    hits = captured.out.splitlines()
    assert len(hits) > 30
    assert hits[0].startswith("[0] ")
    assert captured.err.strip().endswith(f"{len(hits)} items")
