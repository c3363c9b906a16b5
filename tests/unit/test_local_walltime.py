"""The local backend's time limit lives in the job's id: a job past its limit is ended at the
next status, and the id Extend gives it keeps the same process running."""

import asyncio
import subprocess
import time

import psutil
import pytest

from ink_spawner.backends.base import BackendError, JobState
from ink_spawner.backends.local import LocalBackend


def job_id_of(proc: subprocess.Popen, walltime_s: int) -> str:
    started = psutil.Process(proc.pid).create_time()
    return f"{proc.pid}.{int(started * 100)}.{walltime_s}"


def test_an_extended_limit_keeps_the_job_and_the_old_one_ends_it():
    backend = LocalBackend()
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        first = job_id_of(proc, 1)
        time.sleep(1.5)  # past the first limit
        extended = asyncio.run(backend.set_walltime(first, 3600))
        assert extended == first.rsplit(".", 1)[0] + ".3600"
        assert asyncio.run(backend.status(extended)).state == JobState.RUNNING
        assert proc.poll() is None
        # without the extension, the next status ends it
        ended = asyncio.run(backend.status(first))
        assert ended.state == JobState.DONE and "walltime" in ended.reason
        assert proc.wait(10) is not None
        # nothing to extend once it has ended
        with pytest.raises(BackendError, match="already ended"):
            asyncio.run(backend.set_walltime(extended, 7200))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
