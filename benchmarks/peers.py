"""The same walk written with two other Python HAL clients: restnavigator and halchemy.

Both are synchronous, ``requests``-based libraries; each crawler below is
written the way the library's documentation follows links, single-threaded
as its users would run it, breadth-first with a ``set`` of seen URLs, and
doing the same work as ``halnav.crawl`` and ``baseline.py`` (every
non-templated link but ``first``/``prev``/``self``; Veeam page ``results``
items are documents that are not fetched again; a document is identified by
its ``self`` href). A walk stops at ``max_documents`` or after ``max_seconds``.

What each library cannot do, and the minimal workaround (also printed by
``run.py`` in the row's notes):

* restnavigator (1.0.1, 2015) knows HAL ``_links`` and ``_embedded`` but not
  Veeam page envelopes: ``results`` stays a list of plain dicts in
  ``nav.state``. Workaround: each result is turned into a navigator with the
  library's own embedded-resource builder (``_recursively_embed``), exactly as
  if the server had put the items in ``_embedded``. It ignores ``_actions``.
* halchemy (1.0.x) follows links with ``api.follow(resource).to(rel).get()``
  and reads page items with ``resource.collection("results")``, so page
  envelopes need no workaround; it has no notion of ``_actions`` either (not
  needed for a walk). Importing halchemy replaces ``requests.Session``
  globally with its own subclass, so restnavigator is given an explicit
  ``requests.sessions.Session``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import attrs
import requests

__all__ = ["PeerResult", "fetch_token", "halchemy_walk", "restnavigator_walk"]

_SKIP_RELS = frozenset({"first", "prev", "self", "curies"})

RESTNAVIGATOR_NOTE = (
    "restnavigator has no Veeam page envelopes: results items built with its "
    "_recursively_embed (as if in _embedded)"
)
HALCHEMY_NOTE = "halchemy: links via api.follow(r).to(rel).get(), items via r.collection('results')"


@attrs.frozen
class PeerResult:
    """What a capped peer walk reached, and in how long."""

    library: str
    documents: int
    requests: int
    seconds: float
    complete: bool
    note: str

    @property
    def rate(self) -> float:
        """Documents per second."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0


def fetch_token(api: str, username: str, password: str) -> str:
    """The Veeam password grant with ``requests`` (one POST); the access token."""
    form = {"grant_type": "password", "username": username, "password": password}
    with requests.sessions.Session() as session:
        response = session.post(f"{api}token", data=form, timeout=30)
        response.raise_for_status()
        return str(response.json()["access_token"])


def restnavigator_walk(
    seed: str, *, token: str, max_documents: int, max_seconds: float
) -> PeerResult:
    """Breadth-first walk from ``seed`` with restnavigator's ``Navigator.hal``."""
    from restnavigator import Navigator
    from restnavigator.halnav import PartialNavigator

    session = requests.sessions.Session()  # not halchemy's patched requests.Session
    root = Navigator.hal(seed, headers={"Authorization": f"Bearer {token}"}, session=session)
    documents: set[str] = set()
    seen: set[str] = {root.uri}
    queue: deque[Any] = deque([root])
    fetches = 0

    def key(nav: Any) -> str:
        href = nav.self.props.get("href") if nav.self is not None else None
        return str(href or nav.uri)

    def visit(nav: Any) -> None:
        documents.add(key(nav))
        seen.add(key(nav))
        for rel, target in nav.links().items():
            if rel in _SKIP_RELS:
                continue
            for linked in target if isinstance(target, list) else (target,):
                if isinstance(linked, PartialNavigator) or linked.uri in seen:
                    continue  # templated, or already known
                seen.add(linked.uri)
                queue.append(linked)
        results = (nav.state or {}).get("results")
        if isinstance(results, list):
            for item in results:
                embedded = nav._recursively_embed(item)  # the workaround (see module doc)
                if key(embedded) not in documents:
                    visit(embedded)

    started = time.perf_counter()
    try:
        while queue and len(documents) < max_documents:
            if time.perf_counter() - started > max_seconds:
                break
            nav = queue.popleft()
            if key(nav) in documents:
                continue  # became known as a page item while queued
            nav()  # GET (raises HALNavigatorError on 4xx/5xx)
            fetches += 1
            visit(nav)
    finally:
        session.close()
    return PeerResult(
        library="restnavigator",
        documents=len(documents),
        requests=fetches,
        seconds=time.perf_counter() - started,
        complete=not queue,
        note=RESTNAVIGATOR_NOTE,
    )


def halchemy_walk(
    api_root: str, seed: str, *, token: str, max_documents: int, max_seconds: float
) -> PeerResult:
    """Breadth-first walk from ``seed`` with halchemy's ``Api.follow(...).to(rel).get()``."""
    from halchemy import Api

    api = Api(api_root, headers={"Authorization": f"Bearer {token}"})
    documents: set[str] = set()
    seen: set[str] = {seed}
    # A queued hop is (resource, rel): halchemy follows a rel of a resource it holds.
    queue: deque[tuple[Any, str | None]] = deque([(None, None)])
    fetches = 0

    def visit(resource: Any) -> None:
        self_href = str(resource["_links"]["self"]["href"])
        documents.add(self_href)
        seen.add(self_href)
        for rel in resource.links:
            if rel in _SKIP_RELS:
                continue
            link = resource["_links"][rel]
            if not isinstance(link, dict) or link.get("templated"):
                continue  # halchemy's .to(rel) takes one link object per rel
            href = link.get("href")
            if isinstance(href, str) and href not in seen:
                seen.add(href)
                queue.append((resource, rel))
        if isinstance(resource.get("results"), list):
            for item in resource.collection("results"):
                if item["_links"]["self"]["href"] not in documents:
                    visit(item)

    started = time.perf_counter()
    while queue and len(documents) < max_documents:
        if time.perf_counter() - started > max_seconds:
            break
        parent, rel = queue.popleft()
        if parent is not None and rel is not None:
            href = parent["_links"][rel]["href"]
            if href in documents:
                continue  # became known as a page item while queued
            resource = api.follow(parent).to(rel).get()
        else:
            resource = api.using_endpoint(seed).get()
        fetches += 1
        status = resource._halchemy.response.status_code
        if status != 200:
            raise RuntimeError(f"halchemy GET answered {status}")
        visit(resource)
    return PeerResult(
        library="halchemy",
        documents=len(documents),
        requests=fetches,
        seconds=time.perf_counter() - started,
        complete=not queue,
        note=HALCHEMY_NOTE,
    )
