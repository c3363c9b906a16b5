"""Batch jobs from Python: the jobs API as a notebook uses it.

from ink.jobs import Jobs
jobs = Jobs()                                  # the session's token, or `ink login`'s
job = jobs.submit(["python", "fit.py"], cpus=2, memory="4G")
jobs.wait(job["id"])                           # until completed, failed or cancelled
print(jobs.output(job["id"]))
"""

from __future__ import annotations

import io
import time

from ink_client.api import Client, ClientError

FINAL = ("completed", "failed", "cancelled")

__all__ = ["ClientError", "Jobs"]


class Jobs:
    """The caller's batch jobs (``custom:ink:jobs:*`` scopes)."""

    def __init__(self, hub: str | None = None, token: str | None = None):
        self.client = Client(hub, token, progress=False)

    def submit(self, command: list[str], **fields) -> dict:
        """Submit ``command`` (a list of arguments); ``fields`` as the API takes them (name,
        cpus, memory, walltime, image, experiment, cluster, env, output_dir, session)."""
        return self.client.submit({"command": list(command), **fields})

    def run_notebook(self, notebook: str, parameters: dict | None = None, **fields) -> dict:
        """Run ``notebook`` (a path from your home) unattended as a batch job; the executed copy
        is the job's ``notebook`` (beside its logs)."""
        return self.client.submit({"notebook": notebook, "parameters": parameters or {}, **fields})

    def list(self, state: str = "") -> list[dict]:
        return self.client.jobs(state)

    def get(self, job_id: str) -> dict:
        return self.client.job(job_id)

    def cancel(self, job_id: str, task: int | None = None) -> dict:
        """Cancel the job, or only one task of an array (``task``: its index)."""
        return self.client.cancel(job_id, task)

    def wait(self, job_id: str, timeout: float | None = None, interval: float = 2) -> dict:
        """The job once it has ended; TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["state"] in FINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout:.0f} s")
            time.sleep(interval)

    def output(self, job_id: str, stream: str = "stdout", tail: int | None = None) -> str:
        buffer = io.BytesIO()
        self.client.output(job_id, stream, tail, buffer)
        return buffer.getvalue().decode("utf-8", "replace")
