"""The URLs a walk has queued or written, in about 20 bytes per written URL.

A walk must remember every document it wrote, so that no link makes it fetch or write
one twice. Kept as strings (a Veeam item URL is ~250 characters), that memory grows by
~300 bytes per document: 100 million documents would not fit in 24 GiB. :class:`SeenSet`
keeps

* the URLs queued but not written yet, and the most recently written ones, as strings
  (exact, and C-fast for the links that point close by: a document's ``self``, its page);
* every older written URL as a 96-bit fingerprint in an open-addressing table of two flat
  arrays (12 bytes a slot, at most 60% full): the 64-bit ``hash()`` of the string (the
  slot) and its CRC-32 (checked on a 64-bit match only).

Two different URLs are confused only when both fingerprints agree: the odds are about
``n**2 / 2**97`` for ``n`` written URLs (1e-13 for 100 million). The fingerprints are
never stored: ``hash()`` of a string changes between processes, and a resumed walk
rebuilds the set from its state (:mod:`halnav._resume`).
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable
from typing import Final

__all__ = ["SeenSet"]

_RECENT: Final = 1 << 12  # written URLs kept as strings before they move to the table
_START: Final = 1 << 16  # slots of the first table (a power of two)
_CHECK_BYTES: Final = array("I").itemsize  # 4 on every CPython platform


def _check(url: str) -> int:
    return zlib.crc32(url.encode("utf-8", "surrogatepass"))


class SeenSet:
    """Canonical URLs a walk has queued (:meth:`queue`) or written (:meth:`write`).

    ``url in seen`` is true for both; :meth:`written` only for written ones. Only
    canonical URLs go in, so a URL found here is canonical.

    >>> seen = SeenSet()
    >>> seen.queue("https://h/a")
    >>> "https://h/a" in seen, seen.written("https://h/a")
    (True, False)
    >>> seen.write("https://h/a")
    >>> seen.written("https://h/a"), len(seen)
    (True, 1)
    """

    __slots__ = ("_checks", "_keys", "_mask", "_pending", "_recent", "_used")

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._recent: set[str] = set()
        self._keys = array("q")
        self._checks = array("I")
        self._mask = -1  # no table yet
        self._used = 0

    def __contains__(self, url: str) -> bool:
        return url in self._recent or url in self._pending or self._stored(url)

    def __len__(self) -> int:
        """How many URLs were written (queued ones are not counted)."""
        return len(self._recent) + self._used

    def written(self, url: str) -> bool:
        """Whether ``url`` was written (not only queued)."""
        return url in self._recent or self._stored(url)

    def queue(self, url: str) -> None:
        """Remember ``url`` as queued (it is seen from now on)."""
        self._pending.add(url)

    def forget(self, url: str) -> None:
        """``url`` is no longer queued (nothing was written for it): not seen any more."""
        self._pending.discard(url)

    def write(self, url: str) -> None:
        """Remember ``url`` as written (a queued ``url`` is written now)."""
        self._pending.discard(url)
        recent = self._recent
        if url in recent or self._stored(url):
            return
        recent.add(url)
        if len(recent) >= _RECENT:
            self._keep(recent)
            recent.clear()

    # -- the table -----------------------------------------------------------------------
    def _stored(self, url: str) -> bool:
        if not self._used:
            return False
        keys = self._keys
        mask = self._mask
        h = hash(url) or 1  # 0 marks an empty slot
        i = h & mask
        check = -1
        while True:
            key = keys[i]
            if key == 0:
                return False
            if key == h:
                if check < 0:
                    check = _check(url)
                if self._checks[i] == check:
                    return True
            i = (i + 1) & mask

    def _keep(self, urls: set[str]) -> None:
        """Move ``urls`` (none of them stored yet) into the table."""
        needed = self._used + len(urls)
        size = self._mask + 1
        if needed * 5 > size * 3:  # keep the table at most 60% full
            while needed * 5 > size * 3:
                size = max(size * 2, _START)
            old = zip(self._keys, self._checks, strict=True)
            self._keys = array("q", bytes(8 * size))
            self._checks = array("I", bytes(_CHECK_BYTES * size))
            self._mask = size - 1
            self._insert((h, check) for h, check in old if h != 0)
        self._insert((hash(url) or 1, _check(url)) for url in urls)
        self._used = needed

    def _insert(self, fingerprints: Iterable[tuple[int, int]]) -> None:
        """Put ``(hash, check)`` pairs into free slots (linear probing)."""
        keys, checks, mask = self._keys, self._checks, self._mask
        for h, check in fingerprints:
            i = h & mask
            while keys[i] != 0:
                i = (i + 1) & mask
            keys[i] = h
            checks[i] = check
