"""Walks on a Dask cluster: one shard per root, each committed once, merged by the driver.

::

    from distributed import Client
    from halnav import cluster

    async with Client("tcp://scheduler:8786", asynchronous=True) as client:
        done = await cluster.crawl_on_cluster(
            client, make_navigator, roots, output="merged.jsonl", state_dir="walk-state"
        )

Needs the ``distributed`` package (``pip install "halnav[dask]"``). How it works, and why:

* **A shard is a root** (a restore session's Organization, an API's entry point). Each one
  runs as an ``async def`` task on a worker's event loop: the same :func:`halnav.crawl` as on
  one machine, with its own navigator. ``make_navigator`` is a picklable callable that
  returns a new :class:`~halnav.Navigator` (used with ``async with``): every worker logs in
  on its own, so no refresh token is ever shared between processes.
* **Exactly once is the driver's job.** Dask runs a task at least once (a lost worker's
  tasks run again), so a shard writes a private ``.part`` file and commits it by a hard
  link to ``records.jsonl`` in its directory - the first committer wins - then writes
  ``done.json``. The driver merges the committed shards into ``output`` in root order,
  keeping the first record of each document (its URL) and of each action (URL and name),
  and replaces ``output`` atomically. A shard that fails is named in the summary and not
  merged; the walk is then not ``complete``.
* **State outside the scheduler.** Shard directories live in ``state_dir`` (a temporary
  directory without one): running the same command again skips committed shards, since
  the scheduler keeps nothing across restarts. A killed run's partial files are removed.
* **Secrets.** Task keys are ``halnav-shard-<hash of the root>``: no URL, token or
  password. ``make_navigator`` carries the credentials to the workers in the task's
  pickled arguments: secure the cluster's connections with Dask's TLS settings
  (``distributed.comm.require-encryption``, ``tls://`` addresses) when they leave the machine.

* **One big root spreads** with ``split="mailboxes"`` (``--split REL``): each member of
  that collection is a shard.

Not done yet (see the README): ``veeam-walk`` on a cluster, actions on a cluster, and a
per-origin limit that holds across workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from halnav import Navigator, Scope, crawl
from halnav._exports import remove_stale_parts

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ClusterSummary", "ShardOutcome", "crawl_on_cluster", "shard_key"]

_RECORDS: Final = "records.jsonl"
_DONE: Final = "done.json"

MakeNavigator = Callable[[], Navigator]
"""A picklable callable that returns a new, unopened Navigator."""


def shard_key(root: str, scope: Scope | None = None) -> str:
    """The shard id of ``root`` walked in ``scope``: a hash, so task keys and file names
    carry no URL (and a root split into parts has a key per part)."""
    text = root if scope is None else f"{root}\n{_scope_text(scope)}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _scope_text(scope: Scope) -> str:
    """``scope`` as text that is the same in every process (a frozenset's repr is not)."""
    fields = attrs.asdict(scope, value_serializer=lambda _i, _a, v: (
        sorted(v) if isinstance(v, frozenset | set) else v
    ))  # fmt: skip
    return json.dumps(fields, sort_keys=True, default=str)


async def _split(
    make_navigator: MakeNavigator, roots: Sequence[str], rel: str, scope: Scope
) -> list[tuple[str, Scope]]:
    """Each root as three kinds of shard: the root without ``rel`` (its head), the
    collection ``rel`` names (its pages and their items, no further), and each item of it
    (a mailbox) with everything below. The collection comes before its items, so the
    merge keeps its records of them (with their page as parent)."""
    plan: list[tuple[str, Scope]] = []
    head = attrs.evolve(scope, deny_rels=scope.deny_rels | {rel})
    pages = attrs.evolve(scope, allow_rels=frozenset({"item"}), max_depth=1)
    async with make_navigator() as nav:
        for root in roots:
            plan.append((root, head))
            doc = await nav.get(root)
            if rel not in doc.rels:
                continue  # nothing to split: the head is the whole walk
            collection = await nav.follow(doc, rel)
            plan.append((collection.url, pages))
            plan.extend(
                [(item.self_url, scope) async for item in nav.paginate(collection) if item.self_url]
            )
    return plan


@attrs.frozen
class ShardOutcome:
    """What one shard did: its summary counts, or the error that stopped it."""

    root: str
    key: str
    documents: int = 0
    failures: int = 0
    complete: bool = False
    skipped: bool = False
    """Committed by an earlier run (``state_dir``): not walked again."""
    error: str | None = None


@attrs.frozen
class ClusterSummary:
    """The merged walk: ``documents`` and ``actions`` written to ``output`` (each once),
    ``duplicates`` dropped (records more than one shard wrote), and each shard's outcome."""

    output: str
    documents: int
    actions: int
    failures: int
    duplicates: int
    shards: tuple[ShardOutcome, ...]

    @property
    def complete(self) -> bool:
        """Every shard committed a complete walk."""
        return all(shard.complete and shard.error is None for shard in self.shards)


async def walk_shard(
    make_navigator: MakeNavigator, root: str, directory: str, scope: Scope
) -> dict[str, Any]:
    """Walk ``root`` into ``directory`` and commit it (the task each worker runs).

    A second run of a committed shard returns its stored outcome; a run that finds the
    shard committed by another (a task Dask ran twice) keeps the first commit.
    """
    folder = Path(directory)
    stored = _stored(folder)
    if stored is not None:
        return {**stored, "skipped": True}
    part = folder / f".{_RECORDS}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
    try:
        async with make_navigator() as nav:
            summary = await crawl(nav, [root], output=part, scope=scope)
        outcome = {
            "documents": summary.documents,
            "failures": summary.failures,
            "complete": summary.complete,
        }
        _commit(folder, part, outcome)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(part)
    return outcome


def _stored(folder: Path) -> dict[str, Any] | None:
    """The outcome an earlier run committed, else None (after removing killed runs' parts)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / _DONE
    if done.exists():
        stored: dict[str, Any] = json.loads(done.read_text("utf-8"))
        return stored
    remove_stale_parts(folder)  # a killed worker's partial records
    return None


def _commit(folder: Path, part: Path, outcome: Mapping[str, Any]) -> None:
    with contextlib.suppress(FileExistsError):
        os.link(part, folder / _RECORDS)  # the first committer wins
    staged = folder / f".{_DONE}.{os.getpid()}.tmp"
    staged.write_text(json.dumps(outcome), "utf-8")
    os.replace(staged, folder / _DONE)


async def crawl_on_cluster(
    client: Client,
    make_navigator: MakeNavigator,
    roots: Iterable[str],
    *,
    output: str | os.PathLike[str],
    state_dir: str | os.PathLike[str] | None = None,
    scope: Scope | None = None,
    retries: int = 2,
    split: str | None = None,
) -> ClusterSummary:
    """Walk ``roots`` on the cluster of ``client`` (an asynchronous ``distributed.Client``),
    one shard per root, and merge the committed shards into ``output`` (see the module).

    ``split`` names a rel whose collection's members are walked as shards of their own
    (``"mailboxes"``: every mailbox of an organization on any worker), so one big root
    spreads over the cluster; the driver reads that collection first.

    Raises:
        ValueError: no roots.
        OSError: ``output`` or ``state_dir`` cannot be written.
    """
    unique = list(dict.fromkeys(roots))
    if not unique:
        raise ValueError("crawl_on_cluster needs at least one root")
    scope = scope or Scope()
    plan = [(root, scope) for root in unique]
    if split is not None:
        plan = await _split(make_navigator, unique, split, scope)
    temporary = state_dir is None
    base = Path(tempfile.mkdtemp(prefix="halnav-cluster-") if state_dir is None else state_dir)
    try:
        shards = base / "shards"
        futures = []
        for root, shard_scope in plan:
            key = shard_key(root, shard_scope)
            future = client.submit(
                walk_shard,
                make_navigator,
                root,
                str(shards / key),
                shard_scope,
                key=f"halnav-shard-{key}",
                pure=False,
                retries=retries,
            )
            futures.append((root, key, future))
        outcomes = []
        for root, key, future in futures:
            try:
                result = await future
            except Exception as exc:  # a shard's failure is data, not the end of the walk
                outcomes.append(ShardOutcome(root, key, error=f"{type(exc).__name__}: {exc}"))
                continue
            outcomes.append(ShardOutcome(root, key, **_known(result)))
        return _merge(Path(output), shards, outcomes)
    finally:
        if temporary:
            shutil.rmtree(base, ignore_errors=True)


def _known(result: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("documents", "failures", "complete", "skipped")
    return {name: result[name] for name in fields if name in result}


def _merge(output: Path, shards: Path, outcomes: Sequence[ShardOutcome]) -> ClusterSummary:
    """Each committed shard's records into ``output``, every record once, atomically."""
    seen: set[str] = set()
    documents = actions = failures = duplicates = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.with_name(f".{output.name}.{os.getpid()}.merge")
    with staged.open("wb") as merged:
        for outcome in outcomes:
            records = shards / outcome.key / _RECORDS
            if outcome.error is not None or not records.exists():
                continue
            with records.open("rb") as shard:
                for line in shard:
                    record = json.loads(line)
                    action = record.get("action")
                    identity = f"{record['url']}\n{action}" if action else record["url"]
                    if identity in seen:
                        duplicates += 1
                        continue
                    seen.add(identity)
                    merged.write(line)
                    if action:
                        actions += 1
                    elif "error" in record:
                        failures += 1
                    else:
                        documents += 1
        merged.flush()
        os.fsync(merged.fileno())
    os.replace(staged, output)
    return ClusterSummary(str(output), documents, actions, failures, duplicates, tuple(outcomes))
