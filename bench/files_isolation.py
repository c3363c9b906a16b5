#!/usr/bin/env python3
"""One user's slow file operations against another user's listing (root; no hub needed).

bob starts 8 copies of a large file at once (each one goes through his own worker, so they
queue); meanwhile alice lists her home every 50 ms. Her listing's latency is printed with bob
idle and with bob busy, for INK's storage layer as it is (each user's operations on his own
threads) and for the same layer with every operation on one shared thread pool (asyncio's
default executor, what INK did before), in the same run:

    /opt/ink/bin/python bench/files_isolation.py [--size-mib 512] [--copies 8]
"""

import argparse
import asyncio
import os
import pwd
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ink_services.files.storage import Storage  # noqa: E402
from tests.helpers.users import ensure_user, remove_user  # noqa: E402

ALICE, BOB = "inkt_isoa", "inkt_isob"


async def alice_latencies(storage: Storage, until: asyncio.Future) -> list[float]:
    seen = []
    while not until.done():
        started = time.perf_counter()
        await storage.request(ALICE, "list", root="home", parts=[])
        seen.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return seen


async def measure(storage: Storage, copies: int, busy: bool) -> tuple[list[float], float]:
    started = time.perf_counter()
    if busy:
        work = asyncio.gather(
            *(
                storage.request(
                    BOB, "copy", root="home", parts=["big.bin"], to_root="home", to_parts=[f"copy{i}.bin"]
                )
                for i in range(copies)
            )
        )
    else:
        work = asyncio.ensure_future(asyncio.sleep(3))
    latencies = await alice_latencies(storage, work)
    await work
    return latencies, time.perf_counter() - started


def shared_pool(storage: Storage) -> None:
    """The storage layer as before: every user's operations on asyncio's default executor."""

    async def run(username, func, *args):
        return await asyncio.to_thread(func, *args)

    storage.run = run


def row(label: str, latencies: list[float], wall: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[int(len(ms) * 0.95) - 1] if len(ms) > 1 else ms[0]
    return f"{label:<44} {statistics.median(ms):9.1f} {p95:9.1f} {max(ms):9.1f} {len(ms):6d} {wall:7.1f}"


async def main(size_mib: int, copies: int) -> None:
    for name in (ALICE, BOB):
        ensure_user(name)
    bob = pwd.getpwnam(BOB)
    big = Path(bob.pw_dir) / "big.bin"
    with open(big, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1024 * 1024))
    os.chown(big, bob.pw_uid, bob.pw_gid)
    print(f"alice's listing while bob copies {copies} x {size_mib} MiB (ms; {os.cpu_count()} cores)")
    print(f"{'':<44} {'median':>9} {'p95':>9} {'max':>9} {'lists':>6} {'wall s':>7}")
    try:
        for design in ("INK: each user's own threads", "one shared pool (before)"):
            storage = Storage({"home": "{home}"})
            if design.startswith("one"):
                shared_pool(storage)
            await storage.request(ALICE, "list", root="home", parts=[])  # workers started
            await storage.request(BOB, "list", root="home", parts=[])
            idle, wall = await measure(storage, copies, busy=False)
            print(row(f"{design}, bob idle", idle, wall))
            busy, wall = await measure(storage, copies, busy=True)
            print(row(f"{design}, bob copying", busy, wall))
            for i in range(copies):
                (Path(bob.pw_dir) / f"copy{i}.bin").unlink(missing_ok=True)
            storage.close()
    finally:
        for name in (ALICE, BOB):
            remove_user(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--copies", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.size_mib, args.copies))
