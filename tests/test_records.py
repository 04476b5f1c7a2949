"""The crawl record format: what the builders write is what the reader returns, typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import halnav
from halnav import ActionRecord, DocumentRecord, ErrorInfo, FailureRecord, _records
from halnav.errors import HTTPStatusError, RequestTimeoutError

URL = "https://h.test/v5/o"

PAGE = halnav.parse(
    {
        "offset": 0,
        "limit": 2,
        "_links": {"self": {"href": "/v5/m?offset=0&limit=2"}, "next": {"href": "/v5/m?o=2"}},
        "_actions": {"search": {"uri": "/v5/m/search", "method": "POST"}},
        "results": [{"id": 1, "_links": {"self": {"href": "/v5/m/1"}}}, {"id": 2}],
    },
    "https://h.test/v5/m",
)


def round_trip(record: dict[str, Any]) -> halnav.Record:
    """``record`` encoded as the crawler writes it, then read back."""
    line = _records.encode_line(record)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    return halnav.parse_record(line)


def test_document_record_round_trips() -> None:
    """A page's record reads back with every field, its item URLs and its inline items."""
    inline = [_records.inline_record("item", PAGE.items[1])]
    record = _records.document_record(
        PAGE, URL, 200, 1, None, "mailboxes", False, [URL + "/1"], inline
    )
    read = round_trip(record)
    assert read == DocumentRecord(
        url=URL,
        status=200,
        depth=1,
        parent=None,
        rel="mailboxes",
        embedded=False,
        state={"offset": 0, "limit": 2},
        links={
            "self": ["https://h.test/v5/m?offset=0&limit=2"],
            "next": ["https://h.test/v5/m?o=2"],
        },
        actions={"search": {"method": "POST", "uri": "https://h.test/v5/m/search"}},
        items=[URL + "/1"],
        inline=[{"rel": "item", "state": {"id": 2}, "links": {}, "actions": {}}],
    )


def test_a_document_without_items_or_inline_leaves_them_out() -> None:
    """``items`` only on pages, ``inline`` only when there is something inline."""
    doc = PAGE.items[0]
    record = _records.document_record(doc, URL, 200, 2, URL, "item", True, None, [])
    assert "items" not in record
    assert "inline" not in record
    read = round_trip(record)
    assert isinstance(read, DocumentRecord)
    assert read.items is None
    assert read.inline == []
    assert read.embedded is True


def test_failure_record_round_trips() -> None:
    """A failed fetch reads back with where it was reached and the error's type and status."""
    exc = HTTPStatusError("GET", URL, 404, "Not Found")
    read = round_trip(_records.failure_record(URL, 1, "https://h.test/v5", "org", exc))
    assert read == FailureRecord(
        url=URL,
        depth=1,
        parent="https://h.test/v5",
        rel="org",
        error=ErrorInfo(type="HTTPStatusError", status=404, message=str(exc)),
    )
    timeout = round_trip(
        _records.failure_record(URL, 0, None, None, RequestTimeoutError("GET", URL, "read timeout"))
    )
    assert isinstance(timeout, FailureRecord)
    assert timeout.error.status is None


def test_action_records_round_trip() -> None:
    """JSON, binary and failed actions read back as ActionRecord (``failed`` tells them apart)."""
    json_answer = round_trip(
        _records.action_record(URL, "Search", 200, PAGE.state, PAGE, items=PAGE.items)
    )
    assert isinstance(json_answer, ActionRecord)
    assert not json_answer.failed
    assert json_answer.result == {"offset": 0, "limit": 2}
    assert json_answer.links["next"] == ["https://h.test/v5/m?o=2"]
    assert json_answer.items == [
        {"url": "https://h.test/v5/m/1", "state": {"id": 1}},
        {"url": None, "state": {"id": 2}},
    ]
    assert not json_answer.truncated
    cut = round_trip(
        _records.action_record(
            URL, "Search", 200, PAGE.state, PAGE, items=PAGE.items[:1], truncated=True
        )
    )
    assert isinstance(cut, ActionRecord)
    assert cut.truncated
    assert cut.items == [{"url": "https://h.test/v5/m/1", "state": {"id": 1}}]
    binary = round_trip(
        _records.action_record(URL, "export", 200, _records.download_result("a.pst", 9, "x"), None)
    )
    assert binary == ActionRecord(
        url=URL,
        action="export",
        status=200,
        result={"path": "a.pst", "bytes": 9, "content_type": "x"},
        links={},
        items=None,
        error=None,
    )
    failed = round_trip(_records.action_failure_record(URL, "export", OSError("disk full")))
    assert isinstance(failed, ActionRecord)
    assert failed.failed
    assert failed.result is None
    assert failed.status is None
    assert failed.error == ErrorInfo(type="OSError", status=None, message="disk full")


def test_a_hand_written_record_gets_the_documented_defaults() -> None:
    """Missing fields are None, False or empty: the reader is tolerant of what costs nothing."""
    read = halnav.parse_record('{"url": "http://h/", "state": {}, "links": {}, "extra": 1}')
    assert read == DocumentRecord(
        url="http://h/",
        status=None,
        depth=None,
        parent=None,
        rel=None,
        embedded=False,
        state={},
        links={},
        actions={},
        items=None,
        inline=[],
    )


def test_read_records_reads_every_kind_and_skips_blank_lines(tmp_path: Path) -> None:
    """read_records yields typed records in file order; blank lines are no records."""
    path = tmp_path / "walk.jsonl"
    exc = HTTPStatusError("GET", URL, 500, "boom")
    with path.open("wb") as file:
        file.write(
            _records.encode_line(
                _records.document_record(PAGE, URL, 200, 0, None, None, False, None, None)
            )
        )
        file.write(b"\n")
        file.write(_records.encode_line(_records.failure_record(URL + "/x", 1, URL, "x", exc)))
        file.write(_records.encode_line(_records.action_failure_record(URL, "search", exc)))
    kinds = [type(record) for record in halnav.read_records(path)]
    assert kinds == [DocumentRecord, FailureRecord, ActionRecord]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not a JSON line"),
        ('{"url": "http://h/", "state": ', "not a JSON line"),  # torn by a kill
        ("[1, 2]", "not a crawl record"),
        ('{"state": {}}', "not a crawl record"),
        ('{"url": 7}', "not a crawl record"),
        ('{"url": "u", "state": []}', "'state' is a list, not an object"),
        ('{"url": "u", "depth": "1"}', "'depth' is a string, not an integer"),
        ('{"url": "u", "embedded": 1}', "'embedded' is a number, not a boolean"),
        ('{"url": "u", "status": true}', "'status' is a boolean, not an integer"),
        ('{"url": "u", "links": {"self": "/x"}}', "links['self'] is not a list of hrefs"),
        ('{"url": "u", "items": [{"url": "v"}]}', "'items' holds other things than strings"),
        ('{"url": "u", "error": null}', "'error' is null"),
        ('{"url": "u", "error": "gone"}', "'error' is a string, not an object"),
        ('{"url": "u", "action": "a", "result": [1]}', "'result' is a list, not an object"),
    ],
)
def test_a_line_that_is_not_a_record_names_file_and_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    """The error says ``path:line:`` and why; the records before it were read."""
    path = tmp_path / "walk.jsonl"
    path.write_text('{"url": "http://h/", "state": {}, "links": {}}\n' + line + "\n")
    records = halnav.read_records(path)
    assert isinstance(next(records), DocumentRecord)
    with pytest.raises(ValueError, match=r"walk\.jsonl:2: ") as caught:
        next(records)
    assert reason in str(caught.value)


def test_bytes_that_are_not_utf8_are_not_a_json_line(tmp_path: Path) -> None:
    """Invalid UTF-8 is a ValueError naming the line, like any other bad line."""
    path = tmp_path / "walk.jsonl"
    path.write_bytes(b'{"url": "\xff"}\n')
    with pytest.raises(ValueError, match=r"walk\.jsonl:1: not a JSON line"):
        list(halnav.read_records(path))


# Text with lone surrogates, U+2028/U+2029 and newlines: what a server can send.
TEXT = st.text(
    st.characters(codec=None, categories=None) | st.sampled_from("\u2028\u2029\n\r\ud800\udfff"),
    max_size=12,
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


# Any key but the reserved ones (a server's _templates or _actions is parsed, not state).
STATE_KEYS = TEXT.filter(lambda key: key not in ("_links", "_embedded", "_actions", "_templates"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(STATE_KEYS, VALUES, max_size=5))
def test_any_state_is_one_strict_json_line_that_reads_back(state: dict[str, Any]) -> None:
    """Whatever the server sent, the line is strict UTF-8 JSON and reads back (NaN as null)."""
    doc = halnav.parse({**state, "_links": {}}, URL, lenient=True)
    line = _records.encode_line(
        _records.document_record(doc, URL, 200, 0, None, None, False, None, None)
    )
    text = line.decode("utf-8")  # valid UTF-8, surrogates escaped
    assert "\u2028" not in text
    assert "\u2029" not in text
    assert text.count("\n") == 1

    def no_constants(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    json.loads(text, parse_constant=no_constants)
    read = halnav.parse_record(line)
    assert isinstance(read, DocumentRecord)
    # What strict JSON keeps of the state: NaN and infinities as null (Python's own writer
    # puts them as bare constants, which its reader can map).
    kept = json.loads(json.dumps(doc.state, default=dict), parse_constant=lambda _name: None)
    assert read.state == kept


def test_public_names() -> None:
    """The reader and its record types are exported from halnav."""
    for name in (
        "read_records",
        "parse_record",
        "Record",
        "DocumentRecord",
        "FailureRecord",
        "ActionRecord",
        "ErrorInfo",
    ):
        assert name in halnav.__all__
