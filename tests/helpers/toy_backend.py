"""The backend of docs/extending.md's walk-through: one file, a Backend subclass with its own
setting. It runs jobs on this machine (as the local backend does) and writes each call INK
makes into a journal, so a test sees the spawner and the jobs service go through it."""

from __future__ import annotations

import json
import time

from traitlets import Unicode

from ink_spawner.backends.local import LocalBackend


class ToyBackend(LocalBackend):
    name = "toy"

    journal = Unicode("", config=True, help="A file each call is appended to (empty: none).")

    def note(self, call: str, **facts) -> None:
        if self.journal:
            with open(self.journal, "a") as f:
                f.write(json.dumps({"call": call, "time": time.time(), **facts}) + "\n")

    async def submit(self, spec):
        job_id = await super().submit(spec)
        self.note("submit", user=spec.username, app=spec.app, job=job_id)
        return job_id

    async def status(self, job_id):
        status = await super().status(job_id)
        self.note("status", job=job_id, state=status.state.name)
        return status

    async def cancel(self, job_id):
        self.note("cancel", job=job_id)
        await super().cancel(job_id)
