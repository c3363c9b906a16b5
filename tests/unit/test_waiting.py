"""The queue explanation's parts that do not need a scheduler: one query shared by all callers."""

import asyncio
import os
import stat
import time

from ink_spawner.backends.base import Snapshot, Waiting
from ink_spawner.backends.slurm import SlurmBackend


def test_one_fetch_serves_every_caller_until_it_is_stale():
    calls = []

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.05)
        return len(calls)

    async def main():
        snapshot = Snapshot(fetch, seconds=60)
        answers = await asyncio.gather(*(snapshot.get() for _ in range(50)))
        stale = Snapshot(fetch, seconds=0)
        return answers, [await stale.get(), await stale.get()]

    answers, fresh_each_time = asyncio.run(main())
    assert answers == [1] * 50 and fresh_each_time == [2, 3]


def test_a_waiting_job_reads_as_one_paragraph():
    bare = Waiting(reason="Priority")
    assert bare.text(now=0) == "Priority"
    soon = Waiting(sentence="waiting", expected_start=1000.0, position=2, waiting=2, where="the queue")
    assert soon.text(now=990.0).endswith("(in less than a minute); number 2 of 2 waiting jobs in the queue")
    assert "(in 2 h 05 min)" in Waiting(expected_start=7500.0).text(now=0)


def test_fifty_waiting_sessions_cost_slurm_one_squeue_per_refresh(tmp_path):
    """The spawn pages and the dashboard of 50 queued sessions ask at once: one squeue answers
    them all, and the next refresh asks again."""

    calls = tmp_path / "calls"
    lines = "".join(f"{100 + i}|ink|Priority|N/A\\n" for i in range(50))
    squeue = tmp_path / "squeue"
    squeue.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nprintf "{lines}"\n')
    squeue.chmod(squeue.stat().st_mode | stat.S_IXUSR)
    backend = SlurmBackend(bin_dir=str(tmp_path), explain_seconds=0.5)

    async def refresh():
        answers = await asyncio.gather(*(backend.waiting([str(100 + i)]) for i in range(50)))
        return [a[str(100 + i)].position for i, a in enumerate(answers)]

    assert asyncio.run(refresh()) == list(range(1, 51))
    assert len(calls.read_text().splitlines()) == 1
    time.sleep(0.6)
    asyncio.run(refresh())  # another event loop, as in another process: the same answers
    assert len(calls.read_text().splitlines()) == 2
    assert "--states=PENDING" in calls.read_text() and os.access(squeue, os.X_OK)
