"""One resumable walk of a simulator session; ``test_faults`` runs it as a child and SIGKILLs it.

    python tests/fault_child.py <server-url> <root-url> <output.jsonl> <state-dir>

Prints ``walking`` once the crawl is about to start. The credentials are the
simulator's documented defaults (``SimulatorConfig()``).
"""

from __future__ import annotations

import asyncio
import sys

from halnav import Crawler, Limits, _crawl, veeam
from halnav.simulator import SimulatorConfig


async def main(server: str, root: str, output: str, state_dir: str) -> None:
    """Walk from ``root`` into ``output``, resuming from ``state_dir`` when it holds a state."""
    config = SimulatorConfig()
    async with veeam.open_navigator(
        server,
        username=config.username,
        password=config.password,
        limits=Limits(concurrency=8),
    ) as nav:
        print("walking", flush=True)
        summary = await Crawler(nav, [root], output=output, state_dir=state_dir).run()
    print(f"resumed={summary.resumed} documents={summary.documents}", flush=True)


if __name__ == "__main__":
    # A small write buffer, so records reach the file between two commits and a kill
    # leaves uncommitted lines behind (which the resume must cut off).
    _crawl._BUFFER = 4096
    server_url, root_url, output_path, state_path = sys.argv[1:5]
    asyncio.run(main(server_url, root_url, output_path, state_path))
