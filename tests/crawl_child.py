"""One resumable crawl of a simulator session, run as a child process and SIGKILLed by tests.

    python tests/crawl_child.py <server-url> <root-url> <output.jsonl> <state-dir>
        [--concurrency N] [--commit-records N]

The credentials are the simulator's documented defaults (``SimulatorConfig()``).
``run_child`` below starts it and kills it once the output holds enough lines.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import zlib
from pathlib import Path

from halnav import Crawler, Limits, _crawl, veeam
from halnav.simulator import SimulatorConfig

CHILD = Path(__file__).resolve()


async def main(server: str, root: str, output: str, state_dir: str, concurrency: int) -> None:
    """Crawl from ``root`` into ``output``, resuming from ``state_dir`` when it holds a state."""
    config = SimulatorConfig()
    async with veeam.open_navigator(
        server,
        username=config.username,
        password=config.password,
        limits=Limits(concurrency=concurrency),
    ) as nav:
        summary = await Crawler(nav, [root], output=output, state_dir=state_dir).run()
    print(f"resumed={summary.resumed} documents={summary.documents}", flush=True)


def lines_in(out: Path) -> int:
    """Lines written so far; for ``.gz``, of the whole gzip members (a cut tail is ignored)."""
    data = out.read_bytes()
    if not out.name.endswith(".gz"):
        return data.count(b"\n")
    count = 0
    while data:
        unpack = zlib.decompressobj(31)
        try:
            count += unpack.decompress(data).count(b"\n")
        except zlib.error:
            break
        if not unpack.eof:
            break
        data = unpack.unused_data
    return count


async def run_child(
    server: str,
    root: str,
    out: Path,
    state: Path,
    kill_at: int | None,
    *options: str,
) -> int:
    """Run this script; SIGKILL it once ``out`` holds ``kill_at`` lines; return its status."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        server,
        root,
        str(out),
        str(state),
        *options,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        if kill_at is not None:
            while proc.returncode is None:
                if out.exists() and lines_in(out) >= kill_at:
                    proc.send_signal(signal.SIGKILL)
                    break
                await asyncio.sleep(0.002)
        _stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert kill_at is not None or proc.returncode == 0, stderr.decode()
    assert proc.returncode is not None
    return proc.returncode


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("root")
    parser.add_argument("output")
    parser.add_argument("state")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--commit-records", type=int, default=None)
    args = parser.parse_args()
    # A small write buffer (and, if asked, frequent commits): a kill lands between two
    # commits, with items in flight and uncommitted lines in the file (the resume cuts them).
    _crawl._BUFFER = 4096
    if args.commit_records is not None:
        _crawl._COMMIT_RECORDS = args.commit_records
    asyncio.run(main(args.server, args.root, args.output, args.state, args.concurrency))
