"""Memory a bulk walk adds per document: peak RSS of ``halnav crawl``, big walk minus small.

    .venv/bin/python benchmarks/crawl_memory.py [MAILBOXES]   # default 800: ~100,000 docs

Both walks run the real CLI in a child process (``/usr/bin/time -v`` reads its peak RSS)
against an in-process simulator, writing records to /dev/null; the difference of the two
peaks over the difference of their document counts is the growth per document (the goal
of issue 11 is at most 100 bytes).
"""

from __future__ import annotations

import asyncio
import re
import sys

from halnav import veeam
from halnav.simulator import SimulatorConfig, open_simulator

_RSS = re.compile(rb"Maximum resident set size \(kbytes\): (\d+)")


async def peak(mailboxes: int) -> tuple[int, int]:
    """``(documents, peak RSS in KiB)`` of one ``halnav crawl`` of a session's tree."""
    config = SimulatorConfig(organizations=1, mailboxes=mailboxes, folders=10, items=10)
    async with (
        open_simulator(config) as sim,
        veeam.open_navigator(sim.url, username=sim.username, password=sim.password) as nav,
        veeam.explore(nav, sim.organization_ids[0]) as session,
    ):
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "halnav",
            "crawl",
            session.organization_url,
            "--username",
            sim.username,
            "--password",
            sim.password,
            "--out",
            "/dev/null",
            "--quiet",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await proc.communicate()
        found = _RSS.search(err)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"halnav crawl failed: {err.decode(errors='replace')[-500:]}")
        return sim.count_documents(), int(found[1])


async def main(mailboxes: int) -> None:
    small = await peak(40)
    big = await peak(mailboxes)
    per_doc = (big[1] - small[1]) * 1024 / (big[0] - small[0])
    print(f"{small[0]:,} docs: {small[1]:,} KiB; {big[0]:,} docs: {big[1]:,} KiB")
    print(f"growth: {per_doc:.0f} bytes/document (goal <= 100)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 800))
