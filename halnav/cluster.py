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
  tasks run again), so each shard walks in its own directory under a file lock (one run of
  a shard at a time) and is committed by writing ``done.json``. A shard re-run after its
  worker died walks again from the start, replacing its records; a Veeam shard keeps a
  resume state there, so its re-run resumes the dead run's walk, reuses the restore
  sessions still working (or explores again) and stops them. The driver merges the
  committed shards into ``output`` in plan order, keeping the first record of each
  document (its URL) and of each action (URL and name), and replaces ``output``
  atomically. A shard that fails is named in the summary and not merged; the walk is
  then not ``complete``. A shard whose walk **stopped** because the server stopped
  answering (``CrawlSummary.stopped``) is merged as far as it got but not committed, so
  the same walk run again on the same ``state_dir`` walks it again (a Veeam shard
  resumes) while the committed ones are skipped; ``ClusterSummary.stopped`` names them.
* **State outside the scheduler.** Shard directories live in ``state_dir`` (a temporary
  directory without one): running the same command again skips committed shards, since
  the scheduler keeps nothing across restarts. They must be on a file system every worker
  and the driver share (one machine, or NFS), like ``output`` and Veeam's ``export_dir``.
* **Secrets.** Task keys are ``halnav-shard-<hash>``: no URL, token or password.
  ``make_navigator`` carries the credentials to the workers in the task's pickled
  arguments; make it a :class:`NavigatorRecipe` (the CLI does the same), whose repr shows
  none, since Dask logs a failed task's arguments. Secure the cluster's connections
  with Dask's TLS settings (``tls://`` addresses, ``distributed.comm.require-encryption``)
  when they leave the machine.
* **One big root spreads** with ``split="mailboxes"`` (``--split REL``): the root's head,
  that collection's pages, and each member of it are shards.
* **``per_host`` holds across the cluster**: a ``distributed.Semaphore`` per origin, one
  lease per request attempt (a scheduler round trip each: about a millisecond on a LAN,
  small against a Veeam server's 100 ms).
* **Veeam**: :func:`veeam_walk_on_cluster` shards by organization.

Not done yet (see the README): a dry run on a cluster, and splitting one Veeam
organization's restore session over several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from halnav import ActionRule, Navigator, Scope, crawl, veeam
from halnav.errors import printable

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "ClusterSummary",
    "NavigatorRecipe",
    "ShardOutcome",
    "crawl_on_cluster",
    "shard_key",
    "veeam_walk_on_cluster",
]

_RECORDS: Final = "records.jsonl"
_DONE: Final = "done.json"
_LOCK: Final = "lock"

MakeNavigator = Callable[..., Navigator]
"""A picklable callable that returns a new, unopened Navigator, given keyword options to
pass on to it: ``graph=False`` (a shard keeps no link graph) and, with ``per_host``,
``host_slots``. :class:`NavigatorRecipe` and a ``functools.partial`` of
:func:`halnav.veeam.open_navigator` or :class:`halnav.Navigator` do."""


@attrs.frozen(init=False, repr=False)
class NavigatorRecipe:
    """A picklable ``make_navigator`` whose repr shows no secret:
    ``NavigatorRecipe(veeam.open_navigator, "https://vbo:4443", username=u, password=p)``.

    Dask logs the repr of a failed task's arguments (``Compute Failed``): a
    ``functools.partial`` holding a password would put it in the workers' logs. This one
    shows the function, its positional arguments (the server URL) and the names of its
    keyword options, never their values.
    """

    function: Callable[..., Navigator]
    args: tuple[Any, ...]
    options: Mapping[str, Any]

    def __init__(self, function: Callable[..., Navigator], /, *args: Any, **options: Any) -> None:
        self.__attrs_init__(function, args, options)

    def __call__(self, **extra: Any) -> Navigator:
        return self.function(*self.args, **self.options, **extra)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", type(self.function).__name__)
        shown = [repr(arg) for arg in self.args] + [f"{key}=..." for key in self.options]
        return printable(f"NavigatorRecipe({name}, {', '.join(shown)})")


def shard_key(root: str, scope: Scope | None = None) -> str:
    """The shard id of ``root`` walked in ``scope``: a hash, so task keys and file names
    carry no URL (and a root split into parts has a key per part)."""
    text = root if scope is None else f"{root}\n{_scope_text(scope)}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _rules_text(rules: Sequence[ActionRule]) -> str:
    """Action rules as text that is the same in every process (for shard keys): as a
    resumable walk stores them."""
    return json.dumps([rule.to_json() for rule in rules], sort_keys=True, default=str)


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
    """Committed by an earlier run (``state_dir``), or by another run of the same task:
    not walked again."""
    error: str | None = None
    stopped: str | None = None
    """Why the shard's walk stopped early (the server stopped answering): it was not
    committed, and a run again on the same ``state_dir`` walks it again."""
    details: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """A Veeam shard's ``documents_by_type``, ``hits_by_type``, ``exports``, ``sessions``,
    ``refused`` and ``unsearched`` (see :class:`halnav.veeam.Walk`)."""


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
        return all(
            shard.complete and shard.error is None and shard.stopped is None
            for shard in self.shards
        )

    @property
    def stopped(self) -> tuple[ShardOutcome, ...]:
        """The shards whose walk stopped early because the server stopped answering."""
        return tuple(shard for shard in self.shards if shard.stopped is not None)

    def counts(self, name: str) -> dict[str, int]:
        """A per-type count of the Veeam shards summed (``"documents_by_type"``,
        ``"hits_by_type"``)."""
        total: dict[str, int] = {}
        for shard in self.shards:
            for kind, count in shard.details.get(name, {}).items():
                total[kind] = total.get(kind, 0) + int(count)
        return total

    def listed(self, name: str) -> list[Any]:
        """A list of the Veeam shards joined (``"exports"``, ``"sessions"``, ``"refused"``),
        or their union for ``"unsearched"``."""
        joined = [value for shard in self.shards for value in shard.details.get(name, ())]
        return list(dict.fromkeys(joined)) if name == "unsearched" else joined


_Run = Callable[[Navigator, Path, Path], Awaitable[dict[str, Any]]]
"""A shard's walk: (navigator, output file, state directory) -> its outcome (JSON)."""


async def _run_shard(
    make_navigator: MakeNavigator, directory: str, per_host: int | None, run: _Run
) -> dict[str, Any]:
    """Run a shard's walk in ``directory`` as a resumable walk, and commit it.

    One run of a shard at a time (a file lock: Dask may run a task twice); a run that finds
    the shard committed returns its stored outcome; a run that finds a killed run's state
    resumes it, so nothing is walked twice and, on Veeam, its restore sessions are reused
    or stopped. Committing is writing ``done.json`` after the walk's records are on disk;
    a walk that stopped early (its outcome's ``stopped``) is not committed, so that the
    next run walks it again instead of skipping it.
    """
    folder = _folder(directory)
    async with _exclusive(folder / _LOCK):
        stored = _stored(folder)
        if stored is not None:
            return {**stored, "skipped": True}
        options: dict[str, Any] = {"graph": False}  # a shard keeps no link graph
        if per_host:
            options["host_slots"] = _SharedHostLimit(per_host)
        async with make_navigator(**options) as nav:
            outcome = await run(nav, folder / _RECORDS, folder / "state")
        if outcome.get("stopped") is None:
            _commit(folder, outcome)
    return outcome


async def walk_shard(
    make_navigator: MakeNavigator,
    root: str,
    directory: str,
    scope: Scope,
    per_host: int | None = None,
    *,
    actions: Sequence[ActionRule] = (),
) -> dict[str, Any]:
    """Walk ``root`` into ``directory``, running ``actions`` on what it finds, and commit it
    (the task each worker runs).

    A run again after a killed (or stopped) one walks the shard again from the start,
    replacing its records: shards are small enough (a root, or one member of a split
    collection) that a resume state (SQLite, fsyncs) would cost more than it saves. With
    ``actions`` it resumes instead, so that no action (an export, a POST) runs twice.
    """

    # Each shard exports into a folder of its own (export_dir/<shard key>): shards export
    # in parallel, on machines that know nothing of each other's file names.
    rules = [
        attrs.evolve(rule, export_dir=str(Path(rule.export_dir) / Path(directory).name))
        if rule.export_dir is not None
        else rule
        for rule in actions
    ]

    async def run(nav: Navigator, output: Path, state: Path) -> dict[str, Any]:
        summary = await crawl(
            nav,
            [root],
            output=output,
            scope=scope,
            replace=True,
            actions=rules,
            state_dir=state if rules else None,
        )
        return {
            "documents": summary.documents,
            "failures": summary.failures,
            "complete": summary.complete,
            "stopped": summary.stopped,
        }

    return await _run_shard(make_navigator, directory, per_host, run)


async def veeam_shard(
    make_navigator: MakeNavigator,
    organization: str | None,
    directory: str,
    walk_options: Mapping[str, Any],
    per_host: int | None = None,
) -> dict[str, Any]:
    """:func:`halnav.veeam.walk` of one organization (``None``: a tenant's own) into
    ``directory``, exports into ``export_dir/<organization id>``, committed (a task)."""

    async def run(nav: Navigator, output: Path, state: Path) -> dict[str, Any]:
        options = dict(walk_options)
        if options.get("export_dir") is not None:
            options["export_dir"] = str(Path(options["export_dir"]) / (organization or "tenant"))
        done = await veeam.walk(
            nav,
            output=output,
            organization_ids=None if organization is None else [organization],
            tenant=organization is None,
            state_dir=state,
            **options,
        )
        return {
            "documents": done.crawl.documents,
            "failures": done.crawl.failures,
            "complete": done.crawl.complete,
            "stopped": done.crawl.stopped,
            "details": {
                "documents_by_type": dict(done.documents_by_type),
                "hits_by_type": dict(done.hits_by_type),
                "exports": list(done.exports),
                "sessions": list(done.sessions),
                "refused": [list(pair) for pair in done.refused],
                "unsearched": list(done.unsearched),
            },
        }

    return await _run_shard(make_navigator, directory, per_host, run)


@contextlib.asynccontextmanager
async def _exclusive(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on ``path`` (POSIX flock), waiting for it without blocking
    the worker's event loop; a killed holder's lock is released by its death."""
    with path.open("ab") as handle:
        try:
            import fcntl  # noqa: PLC0415  POSIX only; elsewhere shards are not locked
        except ImportError:  # pragma: no cover  (Windows)
            yield
            return
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.25)  # another run of this shard: wait for its end
        yield


class _SharedHostLimit:
    """``host_slots`` for a cluster: one ``distributed.Semaphore`` of ``limit`` leases per
    origin, shared by every worker (named by a hash of the origin and the limit). A lease
    a killed worker held is given back by the scheduler after Dask's
    ``distributed.scheduler.locks.lease-timeout`` (30 s by default)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, origin: str) -> AbstractAsyncContextManager[object]:
        from distributed import Semaphore  # noqa: PLC0415  on a worker, with Dask

        name = hashlib.sha256(origin.encode()).hexdigest()[:16]
        semaphore: AbstractAsyncContextManager[object] = Semaphore(
            max_leases=self.limit, name=f"halnav-per-host-{name}-{self.limit}"
        )
        return semaphore


def _folder(directory: str) -> Path:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stored(folder: Path) -> dict[str, Any] | None:
    """The outcome an earlier run committed, else None."""
    done = folder / _DONE
    if done.exists():
        stored: dict[str, Any] = json.loads(done.read_text("utf-8"))
        return stored
    return None


def _commit(folder: Path, outcome: Mapping[str, Any]) -> None:
    staged = folder / f".{_DONE}.{os.getpid()}.tmp"
    with staged.open("w", encoding="utf-8") as file:
        json.dump(outcome, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staged, folder / _DONE)


@attrs.frozen
class _Task:
    """One shard to submit: its root (for the summary), key, function and arguments."""

    root: str
    key: str
    function: Callable[..., Awaitable[dict[str, Any]]]
    arguments: tuple[Any, ...]
    keywords: Mapping[str, Any] = attrs.field(factory=dict)


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
    per_host: int | None = None,
    actions: Sequence[ActionRule] = (),
) -> ClusterSummary:
    """Walk ``roots`` on the cluster of ``client`` (an asynchronous ``distributed.Client``),
    one shard per root, and merge the committed shards into ``output`` (see the module).

    ``actions`` run in each shard as in :func:`halnav.crawl` (they go to the workers
    pickled: a ``where`` must be a picklable callable, not a lambda); an ``ActionRule``'s
    ``limit`` counts per shard, and each shard's exports go into ``export_dir/<shard
    key>/`` (shards export in parallel and know nothing of each other's file names), on a
    file system every worker shares.

    ``split`` names a rel whose collection's members are walked as shards of their own
    (``"mailboxes"``: every mailbox of an organization on any worker), so one big root
    spreads over the cluster; the driver reads that collection first. ``per_host`` holds
    across the cluster: at most that many requests to one origin at once, from all
    workers together (``make_navigator`` is then called with ``host_slots=``).

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

    rules = tuple(actions)
    # Another action set is another walk: its shards are not the committed ones.
    named = _rules_text(rules)

    def task(root: str, shard_scope: Scope, directory: Path) -> _Task:
        key = shard_key(f"{root}\n{named}" if rules else root, shard_scope)
        arguments = (make_navigator, root, str(directory / key), shard_scope, per_host)
        return _Task(root, key, walk_shard, arguments, {"actions": rules} if rules else {})

    return await _on_cluster(
        client, output=output, state_dir=state_dir, retries=retries, task=task, plan=plan
    )


async def veeam_walk_on_cluster(
    client: Client,
    make_navigator: MakeNavigator,
    organization_ids: Iterable[str] | None = None,
    *,
    output: str | os.PathLike[str],
    state_dir: str | os.PathLike[str] | None = None,
    tenant: bool = False,
    retries: int = 2,
    per_host: int | None = None,
    **walk_options: Any,
) -> ClusterSummary:
    """:func:`halnav.veeam.walk` on the cluster of ``client``: one shard per organization
    (all of them by default; a ``tenant`` walks its own), each exploring its organization
    in its own restore sessions, walking, searching and exporting there, and stopping its
    sessions whatever happens; merged into ``output`` like :func:`crawl_on_cluster`.

    ``walk_options`` are :func:`halnav.veeam.walk`'s (``types``, ``search_query``,
    ``export_dir``, ``export_limit``, ``max_hits``). On a cluster, ``export_limit``
    counts per organization, and each organization's exports go to
    ``export_dir/<organization id>`` (``tenant`` for a tenant's own): shards export in
    parallel, and their file names must not meet. A shard that a killed worker left
    resumes from its state: it reuses the restore sessions that are still working, or
    explores again, and stops them.

    Raises:
        TransportError: the server refused to list the organizations.
    """
    unknown = set(walk_options) - _VEEAM_WALK_OPTIONS
    if unknown:
        raise TypeError(f"veeam_walk_on_cluster got unknown options {sorted(unknown)}")
    ids: list[str | None] = [None]
    if not tenant:
        if organization_ids is None:
            async with make_navigator() as nav:
                organization_ids = [str(org["id"]) for org in await veeam.organizations(nav)]
        ids = list(dict.fromkeys(organization_ids))
    options = dict(walk_options)

    def task(organization: str | None, _scope: None, directory: Path) -> _Task:
        key = shard_key(f"veeam\n{organization}\n{_json(options)}")
        arguments = (make_navigator, organization, str(directory / key), options, per_host)
        return _Task(organization or "tenant", key, veeam_shard, arguments)

    plan = [(organization, None) for organization in ids]
    return await _on_cluster(
        client, output=output, state_dir=state_dir, retries=retries, task=task, plan=plan
    )


_VEEAM_WALK_OPTIONS: Final = frozenset(
    {"types", "search_query", "export_dir", "export_limit", "max_hits"}
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


async def _on_cluster(
    client: Client,
    *,
    output: str | os.PathLike[str],
    state_dir: str | os.PathLike[str] | None,
    retries: int,
    task: Callable[[Any, Any, Path], _Task],
    plan: Sequence[tuple[Any, Any]],
) -> ClusterSummary:
    """Submit a task per item of ``plan``, wait for every one, merge the committed ones."""
    temporary = state_dir is None
    base = Path(tempfile.mkdtemp(prefix="halnav-cluster-") if state_dir is None else state_dir)
    try:
        shards = base / "shards"
        tasks = [task(first, second, shards) for first, second in plan]
        futures = [
            client.submit(
                shard.function,
                *shard.arguments,
                **shard.keywords,
                key=f"halnav-shard-{shard.key}",
                pure=False,
                retries=retries,
            )
            for shard in tasks
        ]
        merger = _Merger(Path(output), shards)
        try:
            # In plan order (a split's collection before its members), each shard merged as
            # soon as it is committed, while the later ones are still walking.
            for shard, future in zip(tasks, futures, strict=True):
                try:
                    result = await future
                except Exception as exc:  # noqa: BLE001  a shard's failure is data
                    error = printable(f"{type(exc).__name__}: {exc}")
                    merger.add(ShardOutcome(shard.root, shard.key, error=error))
                    continue
                merger.add(ShardOutcome(shard.root, shard.key, **_known(result)))
            return merger.finish()
        finally:
            merger.discard()
    finally:
        if temporary:
            shutil.rmtree(base, ignore_errors=True)


def _known(result: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("documents", "failures", "complete", "skipped", "stopped", "details")
    return {name: result[name] for name in fields if name in result}


class _Merger:
    """Each committed shard's records into ``output``, every record once, atomically: a
    staged file, moved onto ``output`` by :meth:`finish`."""

    def __init__(self, output: Path, shards: Path) -> None:
        self._output = output
        self._shards = shards
        self._seen: set[str] = set()
        self._outcomes: list[ShardOutcome] = []
        self._counts = dict.fromkeys(("document", "action", "failure", "duplicate"), 0)
        output.parent.mkdir(parents=True, exist_ok=True)
        self._staged = output.with_name(f".{output.name}.{os.getpid()}.merge")
        self._file = self._staged.open("wb")

    def add(self, outcome: ShardOutcome) -> None:
        self._outcomes.append(outcome)
        records = self._shards / outcome.key / _RECORDS
        if outcome.error is not None or not records.exists():
            return
        seen, counts, write = self._seen, self._counts, self._file.write
        with records.open("rb") as shard:
            for line in shard:
                identity, kind = _identity(line)
                if identity in seen:
                    counts["duplicate"] += 1
                    continue
                seen.add(identity)
                write(line)
                counts[kind] += 1

    def finish(self) -> ClusterSummary:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._staged, self._output)
        counts = self._counts
        return ClusterSummary(
            str(self._output),
            counts["document"],
            counts["action"],
            counts["failure"],
            counts["duplicate"],
            tuple(self._outcomes),
        )

    def discard(self) -> None:
        """Drop the staged file if :meth:`finish` did not move it (an error, a cancel)."""
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._staged.unlink()


_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
"""The JSON string scanner of :mod:`json` (C), not in typeshed."""

_HEAD: Final = 8192
"""Bytes of a record line read for its identity before parsing the whole line."""


def _identity(line: bytes) -> tuple[str, str]:
    """A record line's identity (its URL, and action name) and kind (``"document"``,
    ``"action"``, ``"failure"``). Records start ``{"url":...,"status"`` (a document),
    ``,"action"`` or ``,"depth"`` (a failure): the head is read with the JSON string scanner,
    the whole line parsed only when it is not in that shape."""
    if line.startswith(b'{"url":"'):
        head = line[:_HEAD].decode("utf-8", "ignore")  # a cut character is never in the url
        try:
            url, end = _scanstring(head, 8)
            if head.startswith(',"action":"', end):
                name, _end = _scanstring(head, end + 11)
                return f"{url}\n{name}", "action"
            if head.startswith(',"status":', end):
                return url, "document"
            if head.startswith(',"depth":', end):
                return url, "failure"
        except ValueError:
            pass  # the url goes past the head: parse it all
    record = json.loads(line)
    action = record.get("action")
    if action:
        return f"{record['url']}\n{action}", "action"
    return record["url"], "failure" if "error" in record else "document"
