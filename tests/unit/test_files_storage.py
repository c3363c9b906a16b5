"""The file service's storage layer with real per-user workers: one user's stuck or slow
operations never hold up another user's, a hung worker is replaced, idle workers end."""

import asyncio
import os
import signal

import pytest

from ink_services.files import storage as storage_module
from ink_services.files.storage import MAX_PENDING, Storage, StorageError


@pytest.fixture
def storage(unix_users):
    store = Storage({"home": "{home}"})
    yield store
    for worker in store.workers.values():  # a test may leave one stopped
        if worker.alive:
            os.kill(worker.proc.pid, signal.SIGCONT)
    store.close()


async def stuck_worker(storage, name):
    """``name``'s worker, stopped (SIGSTOP): every call of his hangs until it continues."""
    await storage.request(name, "list", root="home", parts=[])
    worker = storage.workers[(name, "posix")]
    os.kill(worker.proc.pid, signal.SIGSTOP)
    return worker


async def test_a_users_stuck_operations_do_not_hold_up_another_user(storage):
    bob = await stuck_worker(storage, "inkt_bob")
    waiting = [
        asyncio.ensure_future(storage.request("inkt_bob", "list", root="home", parts=[]))
        for _ in range(MAX_PENDING)
    ]
    await asyncio.sleep(0.5)
    # more than the service's shared threads: on them alice would wait for bob
    with pytest.raises(StorageError) as refused:
        await storage.request("inkt_bob", "list", root="home", parts=[])
    assert refused.value.status == 429
    listing = await asyncio.wait_for(storage.request("inkt_alice", "list", root="home", parts=[]), 10)
    assert "entries" in listing and not any(task.done() for task in waiting)
    os.kill(bob.proc.pid, signal.SIGCONT)
    assert all("entries" in answer for answer in await asyncio.gather(*waiting))


async def test_a_hung_worker_is_replaced(storage, monkeypatch):
    monkeypatch.setattr(storage_module, "DEFAULT_OP_SECONDS", 1)
    hung = await stuck_worker(storage, "inkt_bob")
    with pytest.raises(StorageError) as refused:
        await storage.request("inkt_bob", "stat", root="home", parts=[])
    assert refused.value.status == 504 and "did not answer in 1 s" in str(refused.value)
    hung.proc.wait(10)  # ended, not left behind stopped
    assert "entries" in await storage.request("inkt_bob", "list", root="home", parts=[])
    assert storage.workers[("inkt_bob", "posix")].proc.pid != hung.proc.pid


async def test_idle_workers_end(storage):
    await storage.request("inkt_alice", "list", root="home", parts=[])
    await storage.request("inkt_bob", "list", root="home", parts=[])
    workers = dict(storage.workers)
    assert storage.reap_idle(3600) == []  # not idle long enough
    assert sorted(storage.reap_idle(0)) == ["inkt_alice", "inkt_bob"]
    for worker in workers.values():
        assert worker.proc.wait(10) is not None
    assert storage.workers == {}
    # the next request starts them again
    assert "entries" in await storage.request("inkt_alice", "list", root="home", parts=[])
