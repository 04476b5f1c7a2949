"""The walk's events and sinks: a sink of your own sees what the records say, in order."""

from __future__ import annotations

from pathlib import Path

from test_outcomes import ALL_DOCS, PER_PAGE, hal_app, start

import halnav
from halnav import Crawler, CrawlEvent, DocumentWritten, FetchFailed, LinkSkipped, Navigator, veeam
from halnav.errors import HTTPStatusError


class Recorder:
    def __init__(self) -> None:
        self.events: list[CrawlEvent] = []

    def event(self, event: CrawlEvent) -> None:
        self.events.append(event)


async def test_a_sink_of_your_own_sees_every_record_in_order(tmp_path: Path) -> None:
    out = tmp_path / "walk.jsonl"
    app, _hits = hal_app(broken=frozenset({3, 17}))
    runner, port = await start(app)
    sink = Recorder()
    try:
        async with Navigator(f"http://127.0.0.1:{port}/") as nav:
            summary = await Crawler(nav, ["/list"], output=out, sinks=[sink]).run()
    finally:
        await runner.cleanup()
    records = list(halnav.read_records(out))
    # Every record is one event, in the same order; a skipped link is an event, no record.
    told = [e for e in sink.events if not isinstance(e, LinkSkipped)]
    assert [
        (type(e).__name__, e.key if isinstance(e, DocumentWritten) else e.url) for e in told
    ] == [
        ("DocumentWritten" if isinstance(r, halnav.DocumentRecord) else "FetchFailed", r.url)
        for r in records
    ]
    failed = sorted(e.url for e in sink.events if isinstance(e, FetchFailed))
    assert failed == [f"http://127.0.0.1:{port}/doc/{n}" for n in (17, 3)]
    errors = [e.error for e in told if type(e) is FetchFailed]
    assert all(isinstance(error, HTTPStatusError) for error in errors), errors
    skipped = [e for e in sink.events if isinstance(e, LinkSkipped)]
    assert [(e.href, e.rel, e.origin) for e in skipped] == [
        ("http://127.0.0.1:9/x", "elsewhere", "http://127.0.0.1:9")
    ]
    assert summary.documents == ALL_DOCS - 2 == sum(type(e) is DocumentWritten for e in told)
    assert dict(summary.offsite_links) == {"http://127.0.0.1:9": 1}
    pages = [e for e in told if type(e) is DocumentWritten and "/list" in e.key]
    assert all(e.page is None for e in pages)  # item links, not page items: not a page
    assert len(pages) * PER_PAGE == ALL_DOCS - len(pages)


def test_download_extensions_generic_and_veeam() -> None:
    nav = Navigator("https://h/")
    assert nav.download_extension("application/zip", b"") == ".zip"
    assert nav.download_extension("application/json; charset=utf-8", b"{") == ".json"
    assert nav.download_extension("application/octet-stream", b"!BDN") == ".bin"
    # A server's Content-Type never makes an export something a click runs.
    for dangerous in ("application/x-sh", "text/x-python", "application/hta", "text/html",
                      "application/x-msdos-program", "application/javascript"):  # fmt: skip
        assert nav.download_extension(dangerous, b"") == ".bin", dangerous
    profile = veeam.open_navigator("https://vbo:4443", token="t", version="v8")
    octets = "application/octet-stream"
    assert profile.download_extension(octets, b"!BDN\x00\x00") == ".pst"
    assert profile.download_extension(octets, b"\xd0\xcf\x11\xe0\xa1") == ".msg"
    assert profile.download_extension(octets, b"PK\x03\x04") == ".zip"
    assert profile.download_extension(octets, b"") == ".pst"
    assert profile.download_extension("application/zip", b"") == ".zip"
