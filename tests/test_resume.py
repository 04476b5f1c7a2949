"""The resume store: the on-disk schema existing states rely on, and what a commit writes."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from halnav._resume import PendingAction, PendingFetch, ResumeStore, StoredWalk
from halnav.errors import StateError

# The schema of every state on disk (version '1'): (column, type, not null, default, pk).
COLUMNS = {
    "meta": [("key", "TEXT", 0, None, 1), ("value", "TEXT", 1, None, 0)],
    "frontier": [
        ("kind", "TEXT", 1, None, 1),
        ("url", "TEXT", 1, None, 2),
        ("rule", "TEXT", 1, None, 3),
        ("depth", "INTEGER", 1, None, 0),
        ("parent", "TEXT", 0, None, 0),
        ("rel", "TEXT", 0, None, 0),
        ("path", "TEXT", 0, None, 0),
        ("done", "INTEGER", 1, "0", 0),
    ],
    "seen": [("url", "TEXT", 1, None, 1)],  # WITHOUT ROWID: the key is NOT NULL
}


@contextlib.contextmanager
def opened(directory: Path) -> Iterator[ResumeStore]:
    """A store on ``directory``, closed afterwards."""
    store = ResumeStore(directory)
    try:
        yield store
    finally:
        store.close()


def rows(directory: Path, query: str) -> list[tuple[Any, ...]]:
    """``query`` on the state file, read with plain sqlite3 (as another version would)."""
    with contextlib.closing(sqlite3.connect(directory / "state.sqlite3")) as db:
        return db.execute(query).fetchall()


def test_a_new_store_has_the_schema_of_the_states_on_disk(tmp_path: Path) -> None:
    """Tables, columns, keys and WAL mode are those every existing state directory has."""
    with opened(tmp_path):
        pass
    for table, columns in COLUMNS.items():
        info = rows(tmp_path, f"PRAGMA table_info({table})")
        assert [
            (name, kind, notnull, default, pk) for _cid, name, kind, notnull, default, pk in info
        ] == columns
    sql = dict(rows(tmp_path, "SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    assert sql["frontier"].endswith("WITHOUT ROWID")
    assert sql["seen"].endswith("WITHOUT ROWID")
    assert rows(tmp_path, "PRAGMA journal_mode") == [("wal",)]
    assert {p.name for p in tmp_path.iterdir()} >= {"state.sqlite3", "lock"}


def test_begin_walk_and_commit_write_the_meta_keys(tmp_path: Path) -> None:
    """A new walk stores version, sorted roots, output, offset and options; a commit the
    counters and the new offset."""
    with opened(tmp_path) as store:
        assert store.walk() is None
        store.begin_walk(roots=["https://h/b", "https://h/a"], output="/o", offset=7, options={})
        store.commit(offset=42, counters={"documents": 3})
        assert store.walk() == StoredWalk(
            roots=["https://h/a", "https://h/b"],
            output="/o",
            offset=42,
            options={},
            counters={"documents": 3},
        )
    assert dict(rows(tmp_path, "SELECT key, value FROM meta")) == {
        "version": "1",
        "roots": '["https://h/a", "https://h/b"]',
        "output": "/o",
        "offset": "42",
        "options": "{}",
        "counters": '{"documents": 3}',
    }


def test_commit_writes_the_batch_with_the_done_values(tmp_path: Path) -> None:
    """Queued work is pending (0), finished work done (1), a transient failure 2; read-ahead
    fetches are marked until a link names them; written identities are in ``seen``."""
    with opened(tmp_path) as store:
        store.begin_walk(roots=["https://h/"], output="/o", offset=0, options=None)
        store.queue_fetch("https://h/", 0, None, None, readahead=False)
        store.queue_fetch("https://h/a", 1, "https://h/", "a", readahead=False)
        store.queue_fetch("https://h/p2", 1, "https://h/", "next", readahead=True)
        store.queue_fetch("https://h/p3", 1, "https://h/", "next", readahead=True)
        store.queue_fetch("https://h/gone", 1, "https://h/", "g", readahead=False)
        store.queue_action("https://h/a", "0:export", "pst/a")
        queued = store.dirty
        store.commit(offset=None, counters={})
        assert (queued, store.dirty) == (True, False)
        store.wrote("https://h/")
        store.fetch_done("https://h/")
        store.fetch_done("https://h/gone", retry="ConnectError")
        store.linked("https://h/p2")
        store.commit(offset=10, counters={})
        assert sorted(store.pending(), key=repr) == sorted(
            [
                PendingAction("https://h/a", "0:export", "pst/a"),
                PendingFetch("https://h/a", 1, "https://h/", "a", readahead=False),
                PendingFetch("https://h/gone", 1, "https://h/", "g", readahead=False),
                PendingFetch("https://h/p2", 1, "https://h/", "next", readahead=False),
                PendingFetch("https://h/p3", 1, "https://h/", "next", readahead=True),
            ],
            key=repr,
        )
        assert store.retried_fetches() == {"ConnectError": 1}
        assert store.action_counts() == {"0:export": 1}
        assert sorted(store.queued_urls()) == [
            "https://h/",
            "https://h/a",
            "https://h/gone",
            "https://h/p2",
            "https://h/p3",
        ]
        assert list(store.written_urls()) == ["https://h/"]
    frontier = rows(tmp_path, "SELECT kind, url, rule, depth, path, done FROM frontier")
    assert sorted(frontier) == [
        ("action", "https://h/a", "0:export", 0, "pst/a", 0),
        ("fetch", "https://h/", "", 0, None, 1),
        ("fetch", "https://h/a", "", 1, None, 0),
        ("fetch", "https://h/gone", "", 1, "ConnectError", 2),
        ("fetch", "https://h/p2", "", 1, None, 0),
        ("fetch", "https://h/p3", "", 1, "readahead", 0),
    ]
    assert rows(tmp_path, "SELECT url FROM seen") == [("https://h/",)]


def test_a_state_written_by_an_earlier_version_is_read(tmp_path: Path) -> None:
    """A state made with plain SQL (no options or counters rows yet) loads as it was left."""
    with contextlib.closing(sqlite3.connect(tmp_path / "state.sqlite3")) as db, db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE frontier (
                kind TEXT NOT NULL, url TEXT NOT NULL, rule TEXT NOT NULL,
                depth INTEGER NOT NULL, parent TEXT, rel TEXT, path TEXT,
                done INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, url, rule)
            ) WITHOUT ROWID;
            CREATE TABLE seen (url TEXT PRIMARY KEY) WITHOUT ROWID;
            INSERT INTO meta VALUES ('version', '1'), ('roots', '["https://h/"]'),
                ('output', '/o'), ('offset', '5');
            INSERT INTO frontier VALUES ('fetch', 'https://h/', '', 0, NULL, NULL, NULL, 1),
                ('fetch', 'https://h/x', '', 1, 'https://h/', 'x', NULL, 0);
            INSERT INTO seen VALUES ('https://h/');
            """
        )
    with opened(tmp_path) as store:
        assert store.walk() == StoredWalk(
            roots=["https://h/"], output="/o", offset=5, options=None, counters={}
        )
        assert list(store.pending()) == [
            PendingFetch("https://h/x", 1, "https://h/", "x", readahead=False)
        ]
        assert list(store.written_urls()) == ["https://h/"]


def test_a_second_store_on_a_directory_in_use_is_refused(tmp_path: Path) -> None:
    """Two walks on one state directory would write every document twice: the lock says no."""
    with opened(tmp_path), pytest.raises(StateError, match="in use by another walk"):
        ResumeStore(tmp_path)
    with opened(tmp_path) as again:
        assert again.walk() is None


def test_counters_are_stored_as_json(tmp_path: Path) -> None:
    """The counters row is one JSON object, replaced by each commit."""
    with opened(tmp_path) as store:
        store.begin_walk(roots=[], output="/o", offset=0, options=None)
        store.commit(offset=None, counters={"documents": 1})
        store.commit(offset=None, counters={"documents": 2, "failures_by_type": {"X": 1}})
    ((value,),) = rows(tmp_path, "SELECT value FROM meta WHERE key = 'counters'")
    assert json.loads(value) == {"documents": 2, "failures_by_type": {"X": 1}}
    assert rows(tmp_path, "SELECT value FROM meta WHERE key = 'offset'") == [("0",)]
