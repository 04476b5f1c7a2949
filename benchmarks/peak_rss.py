"""Run one walk in this (child) process and print its peak RSS: ``PEAK <KiB>`` on stderr.

    python benchmarks/peak_rss.py halnav crawl URL --username U --password P --out /dev/null -q
    python benchmarks/peak_rss.py baseline API USER PASSWORD SEED

The walk-memory row (``run.py``) runs each walk twice, small and big, in a fresh process
each time: the difference of the peaks over the difference of the documents is what the
walk's memory grows by per document.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline


async def _baseline(api: str, username: str, password: str, seed: str) -> int:
    async with aiohttp.ClientSession() as http:
        token = await baseline.fetch_token(http, api, username, password)
        result = await baseline.crawl(http, [seed], token=token, concurrency=64)
    return result.documents


def main(argv: list[str]) -> int:
    if argv[0] == "halnav":
        from halnav.cli import main as halnav_main

        status = halnav_main(argv[1:])
    else:
        print(f"documents {asyncio.run(_baseline(*argv[1:5]))}", file=sys.stderr)
        status = 0
    print(f"PEAK {peak_kib()}", file=sys.stderr)
    return status


def peak_kib() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` (Linux). Not ``getrusage``: Linux carries
    ``ru_maxrss`` across ``execve``, so a child started by a big parent reports the
    parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
