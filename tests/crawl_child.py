"""One resumable crawl of a simulator session; ``test_crawl`` runs it as a child and SIGKILLs it.

    python tests/crawl_child.py <server-url> <root-url> <output.jsonl> <state-dir>

The credentials are the simulator's documented defaults (``SimulatorConfig()``).
"""

from __future__ import annotations

import asyncio
import sys

from halnav import Crawler, Limits, _crawl, veeam
from halnav.simulator import SimulatorConfig


async def main(server: str, root: str, output: str, state_dir: str) -> None:
    """Crawl from ``root`` into ``output``, resuming from ``state_dir`` when it holds a state."""
    config = SimulatorConfig()
    async with veeam.open_navigator(
        server,
        username=config.username,
        password=config.password,
        limits=Limits(concurrency=4),
    ) as nav:
        summary = await Crawler(nav, [root], output=output, state_dir=state_dir).run()
    print(f"resumed={summary.resumed} documents={summary.documents}")


if __name__ == "__main__":
    # Commits every 50 records and a small write buffer: a kill lands between two commits,
    # with items in flight and uncommitted lines in the file (which the resume cuts off).
    _crawl._COMMIT_RECORDS = 50
    _crawl._BUFFER = 4096
    server_url, root_url, output_path, state_path = sys.argv[1:5]
    asyncio.run(main(server_url, root_url, output_path, state_path))
