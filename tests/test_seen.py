"""SeenSet: the walk's compact memory of queued and written URLs, against a plain set."""

from __future__ import annotations

import random

from halnav._seen import _RECENT, SeenSet


def _url(n: int) -> str:
    return f"https://veeam.example:4443/v5/RestoreSessions/s/Organization/Mailboxes/m/Items/{n}"


def test_agrees_with_sets_across_the_move_to_the_table_and_its_growth() -> None:
    rng = random.Random(7)
    seen = SeenSet()
    queued: set[str] = set()
    written: set[str] = set()
    for n in range(200_000):  # past _RECENT many times and past two table sizes
        url = _url(rng.randrange(150_000))
        if rng.random() < 0.3:
            if url not in written:
                seen.queue(url)
                queued.add(url)
        else:
            seen.write(url)
            written.add(url)
            queued.discard(url)
        if n % 997 == 0:
            probe = _url(rng.randrange(300_000))
            assert (probe in seen) == (probe in queued or probe in written), probe
            assert seen.written(probe) == (probe in written), probe
    assert len(seen) == len(written)
    assert all(seen.written(url) for url in written)
    assert not any(seen.written(url) for url in queued)
    assert all(url in seen for url in queued)
    assert not any(_url(n) in seen for n in range(150_000, 160_000))


def test_forget_drops_a_queued_url_but_not_a_written_one() -> None:
    seen = SeenSet()
    seen.queue("https://h/a")
    seen.forget("https://h/a")
    assert "https://h/a" not in seen
    seen.write("https://h/b")
    seen.forget("https://h/b")
    assert seen.written("https://h/b")


def test_a_matching_hash_with_another_crc_is_not_a_match() -> None:
    """The second fingerprint is checked: a 64-bit hash match alone proves nothing."""
    seen = SeenSet()
    for n in range(_RECENT):  # fills the recent strings: they all move into the table
        seen.write(_url(n))
    target = _url(5)
    assert seen.written(target)
    slot = seen._keys.index(hash(target) or 1)
    seen._checks[slot] ^= 1  # as if another URL with the same hash() had been stored
    assert not seen.written(target)
    assert target not in seen


def test_strings_that_are_not_valid_unicode_are_kept_too() -> None:
    seen = SeenSet()
    lone = "https://h/\ud800"
    for n in range(_RECENT):
        seen.write(_url(n))
    seen.write(lone)
    for n in range(_RECENT, 2 * _RECENT):
        seen.write(_url(n))
    assert seen.written(lone)
