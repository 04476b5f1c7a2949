"""The hand-written aiohttp crawler every halnav figure is compared with.

What a competent engineer writes in an afternoon instead of using halnav:
one ``aiohttp.ClientSession``, an ``asyncio.Semaphore`` bounding the requests
in flight, ``json.loads``, and a breadth-first walk of every
``_links.<rel>.href`` with a ``set`` of seen URLs. It does the same work as
``halnav.crawl`` so that the two are comparable:

* every non-templated link is followed except ``first`` and ``prev`` (they
  only lead back to pages already reached through ``next``) and ``self``
  (the document itself);
* the items of a Veeam page (``results``) are documents: they are counted
  and their links are followed, but they are not fetched again (halnav does
  the same: the page already carried their full representation);
* a document is identified by its ``self`` href (else the URL it was fetched
  from), so a page reached as ``.../mailboxes`` and listed as
  ``.../mailboxes?offset=0&limit=30`` counts once;
* hrefs are used as the server wrote them (the simulator writes absolute,
  canonical URLs; a relative href is resolved with ``urljoin``).

It does not do what halnav does on top: no retries, no typed errors, no
parsed ``Document`` values, no link graph, no auth refresh, no limits on
hostile input. Those are what the ratios price.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

import aiohttp
import attrs

__all__ = ["CrawlResult", "crawl", "fetch_token", "walk_pages"]

_SKIP_RELS = frozenset({"first", "prev", "self", "curies"})


@attrs.frozen
class CrawlResult:
    """What a baseline walk reached."""

    documents: int
    requests: int


async def fetch_token(
    session: aiohttp.ClientSession, api: str, username: str, password: str
) -> str:
    """One POST of the Veeam password grant to ``<api>token``; the bearer access token."""
    form = {"grant_type": "password", "username": username, "password": password}
    async with session.post(f"{api}token", data=form) as response:
        response.raise_for_status()
        answer = await response.json()
    return str(answer["access_token"])


class _Walk:
    def __init__(
        self, session: aiohttp.ClientSession, headers: dict[str, str], concurrency: int
    ) -> None:
        self.session = session
        self.headers = headers
        self.semaphore = asyncio.Semaphore(concurrency)
        self.seen: set[str] = set()  # every URL scheduled or already described by a document
        self.documents: set[str] = set()
        self.requests = 0
        self.group: asyncio.TaskGroup | None = None

    async def run(self, roots: Iterable[str]) -> CrawlResult:
        async with asyncio.TaskGroup() as group:
            self.group = group
            for url in roots:
                self.schedule(url)
        return CrawlResult(documents=len(self.documents), requests=self.requests)

    def schedule(self, url: str) -> None:
        if url in self.seen:
            return
        self.seen.add(url)
        assert self.group is not None
        self.group.create_task(self.fetch(url))

    async def fetch(self, url: str) -> None:
        async with (
            self.semaphore,
            self.session.get(url, headers=self.headers) as response,
        ):
            response.raise_for_status()
            body = await response.read()
        self.requests += 1
        self.visit(json.loads(body), url)

    def visit(self, doc: dict[str, Any], url: str | None) -> None:
        links = doc.get("_links")
        if not isinstance(links, dict):
            links = {}
        own = links.get("self")
        key = own.get("href") if isinstance(own, dict) else None
        key = key or url
        if key is not None:
            self.seen.add(key)
            self.documents.add(key)
        base = key or ""
        for rel, value in links.items():
            if rel in _SKIP_RELS:
                continue
            for link in value if isinstance(value, list) else (value,):
                if not isinstance(link, dict) or link.get("templated"):
                    continue
                href = link.get("href")
                if isinstance(href, str) and href:
                    if not href.startswith(("http://", "https://")):
                        href = urljoin(base, href)
                    self.schedule(href)
        results = doc.get("results")
        if isinstance(results, list):
            for item in results:
                if isinstance(item, dict):
                    self.visit(item, None)


async def crawl(
    session: aiohttp.ClientSession,
    roots: Iterable[str],
    *,
    token: str,
    concurrency: int = 64,
) -> CrawlResult:
    """Walk every document reachable from ``roots``, at most ``concurrency`` GETs in flight.

    Raises:
        aiohttp.ClientResponseError: a GET answered 4xx/5xx (no retries: the
            benchmark server injects no faults).
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return await _Walk(session, headers, concurrency).run(roots)


async def walk_pages(session: aiohttp.ClientSession, url: str, *, token: str) -> int:
    """Follow ``next`` from ``url`` one page at a time; return how many items the pages held."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    items = 0
    next_url: str | None = url
    while next_url is not None:
        async with session.get(next_url, headers=headers) as response:
            response.raise_for_status()
            page = json.loads(await response.read())
        results = page.get("results") or []
        items += len(results)
        link = (page.get("_links") or {}).get("next")
        next_url = link.get("href") if isinstance(link, dict) and results else None
    return items
