"""The queue explanation's parts that do not need a scheduler: one query shared by all callers."""

import asyncio

from ink_spawner.backends.base import Snapshot, Waiting


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
