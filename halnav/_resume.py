"""The resume store of a walk: ``state_dir/state.sqlite3``, and every SQL statement on it.

:class:`~halnav.Crawler` keeps its resume state here (the contract - what a commit
holds, and what survives a SIGKILL - is in :mod:`halnav._crawl`'s docstring). This
module owns the schema; an existing state directory must keep resuming, so the tables,
the meta keys and the values below do not change without a new ``version``::

    meta (key, value)                    -- version '1', roots (sorted JSON list), output
                                         -- (resolved path), offset (committed bytes),
                                         -- options (JSON), counters (JSON)
    frontier (kind, url, rule, depth, parent, rel, path, done)
        kind   'fetch' | 'action'
        rule   '' for fetches; '<index>:<name lowercased>' for actions
        path   the export stem of an action; 'readahead' for a fetch read ahead; the
               error type of a fetch that failed transiently (done 2)
        done   0 pending, 1 done, 2 failed with a transient error (tried again on resume)
    seen (url)                           -- the written document identities

sqlite3 is synchronous: it runs on the event loop, so every transaction is one small
batch (a few hundred rows, executemany) every ~0.5 s. Between commits the store only
collects the batch in lists (no SQL); :meth:`ResumeStore.commit` writes it in ONE
transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import attrs

from .errors import StateError

__all__ = ["PendingAction", "PendingFetch", "ResumeStore", "StoredWalk"]

_STATE_FILE: Final = "state.sqlite3"
_LOCK_FILE: Final = "lock"
_SCHEMA_VERSION: Final = "1"
# frontier.done: 0 pending, 1 done, 2 failed with a transient error (retried on resume).
_DONE: Final = 1
_RETRY: Final = 2
# frontier.path of a fetch queued by read-ahead (a page no link named yet).
_READAHEAD: Final = "readahead"
# The text is indented as it always was: SQLite keeps it in sqlite_master, so a new state's
# schema stays byte-identical to the states already on disk.
_SCHEMA: Final = """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS frontier (
                    kind TEXT NOT NULL,            -- 'fetch' or 'action'
                    url TEXT NOT NULL,
                    rule TEXT NOT NULL,            -- '' for fetches; '<index>:<name>' for actions
                    depth INTEGER NOT NULL,
                    parent TEXT,
                    rel TEXT,
                    path TEXT,                     -- export stem (actions), readahead (fetches)
                    done INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (kind, url, rule)
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS seen (url TEXT PRIMARY KEY) WITHOUT ROWID;
                """
_INSERT_FRONTIER: Final = (
    "INSERT OR IGNORE INTO frontier (kind, url, rule, depth, parent, rel, path)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@attrs.frozen
class StoredWalk:
    """What the state says about its walk: what a resume must match, and where it was."""

    roots: list[str]
    """The walk's canonical roots, sorted."""
    output: str
    """The output file's resolved path."""
    offset: int
    """Bytes of the output that the last commit covers."""
    options: Any
    """The scope and action rules as JSON values (None: a state from before they were kept)."""
    counters: Mapping[str, Any]


@attrs.frozen
class PendingFetch:
    """A fetch not done yet (in flight when the walk ended, or failed transiently)."""

    url: str
    depth: int
    parent: str | None
    rel: str | None
    readahead: bool
    """Queued by read-ahead: no link has named the page yet."""


@attrs.frozen
class PendingAction:
    """An action not run yet: ``rule`` is the rule key (``'<index>:<name>'``)."""

    url: str
    rule: str
    stem: str | None
    """The export file stem reserved for it, if it exports."""


class ResumeStore:
    """The SQLite resume state in ``directory``: opened (created if need be) and locked.

    Raises:
        StateError: another walk holds the directory's lock.
        OSError, sqlite3.Error: the state cannot be opened.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / _STATE_FILE
        self._lock = _lock(directory / _LOCK_FILE)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except BaseException:
            self._lock.close()
            raise
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process; the output is fsynced before each
            # commit, so the state never claims bytes the output does not hold.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            self._lock.close()
            raise
        # The batch of the next commit: what was queued, written, linked and finished.
        self._new: list[tuple[str, str, str, int, str | None, str | None, str | None]] = []
        self._written: list[tuple[str]] = []
        self._unmarked: list[tuple[str]] = []  # read-ahead fetches a link has named
        self._finished: list[tuple[int, str | None, str, str, str]] = []

    def close(self) -> None:
        """Close the database and release the lock (an uncommitted batch is dropped)."""
        try:
            self._db.close()
        finally:
            self._lock.close()

    # -- the stored walk ------------------------------------------------------------------
    def walk(self) -> StoredWalk | None:
        """The stored walk, or None for a new state (see :meth:`begin_walk`)."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            return None
        return StoredWalk(
            roots=json.loads(meta["roots"]),
            output=meta["output"],
            offset=int(meta["offset"]),
            options=json.loads(meta.get("options", "null")),
            counters=json.loads(meta.get("counters", "{}")),
        )

    def begin_walk(self, *, roots: Sequence[str], output: str, offset: int, options: Any) -> None:
        """Store a new walk's meta rows: ``offset`` is where its output starts."""
        rows = {
            "version": _SCHEMA_VERSION,
            "roots": json.dumps(sorted(roots)),
            "output": output,
            "offset": str(offset),
            "options": json.dumps(options),
        }
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", rows.items())

    def rename(self, old: str, new: str) -> int:
        """Replace ``old`` by ``new`` in every stored URL (roots, frontier, seen), in one
        transaction; how many frontier rows changed. For a walk whose resources moved: a
        Veeam restore session explored again has a new id in every URL."""
        db = self._db
        with db:
            db.execute("BEGIN")
            changed = db.execute(
                "UPDATE frontier SET url = replace(url, ?1, ?2), parent = replace(parent, ?1, ?2)"
                " WHERE instr(url, ?1) > 0 OR instr(parent, ?1) > 0",
                (old, new),
            ).rowcount
            db.execute(
                "UPDATE seen SET url = replace(url, ?1, ?2) WHERE instr(url, ?1) > 0", (old, new)
            )
            row = db.execute("SELECT value FROM meta WHERE key = 'roots'").fetchone()
            if row is not None:
                roots = sorted(root.replace(old, new) for root in json.loads(row[0]))
                db.execute("UPDATE meta SET value = ? WHERE key = 'roots'", (json.dumps(roots),))
        return int(changed)

    def queued_urls(self) -> Iterator[str]:
        """Every URL the frontier has fetched or will fetch."""
        for (url,) in self._db.execute("SELECT url FROM frontier WHERE kind = 'fetch'"):
            yield url

    def written_urls(self) -> Iterator[str]:
        """Every document identity written to the output."""
        for (url,) in self._db.execute("SELECT url FROM seen"):
            yield url

    def action_counts(self) -> dict[str, int]:
        """How many actions each rule key has queued (done or not)."""
        query = "SELECT rule, COUNT(*) FROM frontier WHERE kind = 'action' GROUP BY rule"
        return dict(self._db.execute(query).fetchall())

    def retried_fetches(self) -> dict[str, int]:
        """How many fetches failed transiently (their failure record is in the output), by
        error type (``""``: a state written before the type was kept)."""
        query = "SELECT path, COUNT(*) FROM frontier WHERE done = ? AND kind = 'fetch' GROUP BY 1"
        return {path or "": int(count) for path, count in self._db.execute(query, (_RETRY,))}

    def pending(self) -> Iterator[PendingFetch | PendingAction]:
        """The work not done yet, in the frontier's order."""
        rows = self._db.execute(
            "SELECT kind, url, rule, depth, parent, rel, path FROM frontier WHERE done != ?",
            (_DONE,),
        )
        for kind, url, rule, depth, parent, rel, path in rows:
            if kind == "fetch":
                yield PendingFetch(url, depth, parent, rel, readahead=path == _READAHEAD)
            else:
                yield PendingAction(url, rule, path)

    # -- the batch ------------------------------------------------------------------------
    def queue_fetch(
        self, url: str, depth: int, parent: str | None, rel: str | None, *, readahead: bool
    ) -> None:
        """A fetch was queued (``readahead``: by read-ahead, no link names it yet)."""
        mark = _READAHEAD if readahead else None
        self._new.append(("fetch", url, "", depth, parent, rel, mark))

    def queue_action(self, url: str, rule: str, stem: str | None) -> None:
        """An action of the rule key ``rule`` was queued on ``url``."""
        self._new.append(("action", url, rule, 0, None, None, stem))

    def wrote(self, url: str) -> None:
        """The document identity ``url`` was written."""
        self._written.append((url,))

    def linked(self, url: str) -> None:
        """A link names the read-ahead fetch of ``url``: a real page from now on."""
        self._unmarked.append((url,))

    def fetch_done(self, url: str, *, retry: str | None = None) -> None:
        """The fetch of ``url`` is finished; ``retry``: it failed transiently with this
        error type (it is tried again on resume)."""
        self._finished.append((_RETRY if retry else _DONE, retry, "fetch", url, ""))

    def action_done(self, url: str, rule: str) -> None:
        """The action of the rule key ``rule`` on ``url`` is finished."""
        self._finished.append((_DONE, None, "action", url, rule))

    @property
    def dirty(self) -> bool:
        """Something happened since the last commit."""
        return bool(self._finished or self._new or self._written or self._unmarked)

    def commit(self, *, offset: int | None, counters: Mapping[str, Any]) -> None:
        """Write the batch, the output ``offset`` (if any) and ``counters`` in ONE transaction.

        The caller has fsynced the output up to ``offset`` first. If the transaction
        fails it is rolled back whole and the batch is kept.
        """
        db = self._db
        with db:  # one transaction: rolled back whole if anything fails
            db.execute("BEGIN")
            if self._new:
                db.executemany(_INSERT_FRONTIER, self._new)
            if self._written:
                db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", self._written)
            if self._unmarked:
                db.executemany(
                    "UPDATE frontier SET path = NULL WHERE kind = 'fetch' AND url = ?",
                    self._unmarked,
                )
            if self._finished:
                db.executemany(
                    "UPDATE frontier SET done = ?, path = COALESCE(?, path)"
                    " WHERE kind = ? AND url = ? AND rule = ?",
                    self._finished,
                )
            if offset is not None:
                db.execute("UPDATE meta SET value = ? WHERE key = 'offset'", (str(offset),))
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('counters', ?)", (json.dumps(counters),)
            )
        self._new.clear()
        self._written.clear()
        self._unmarked.clear()
        self._finished.clear()


def _lock(path: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``path`` while the returned file is open (POSIX flock).

    Two walks on one state directory would both claim its frontier and write every
    document twice; the second one is refused instead.

    Raises:
        StateError: another process (or walk) holds the lock.
    """
    handle = path.open("ab")
    try:
        import fcntl  # noqa: PLC0415  POSIX only; elsewhere the directory is not locked
    except ImportError:  # pragma: no cover  (Windows)
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateError(
            f"the state directory {path.parent} is in use by another walk; "
            "wait for it to end (or stop it) before resuming"
        ) from None
    return handle
