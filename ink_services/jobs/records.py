"""The batch jobs users submitted through the API: one small JSON record per job, per user, in
INK's state folder (the scheduler forgets finished jobs; INK remembers what it submitted)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass, field

from ink_core.arrays import at_once
from ink_core.jsonstore import RecordStore
from ink_core.names import USERNAME

JOB_ID = re.compile(r"^j[0-9]{8}-[0-9a-f]{8}$")
FINAL = ("completed", "failed", "cancelled")


def new_job_id() -> str:
    return time.strftime("j%Y%m%d-") + secrets.token_hex(4)


@dataclass
class JobRecord:
    id: str
    user: str
    name: str
    backend: str
    backend_id: str
    command: list[str]
    output_dir: str
    submitted: float
    resources: dict
    image: str = ""
    experiment: str = ""
    env_names: list[str] = field(default_factory=list)  # names only: values may be secrets
    notebook: str = ""  # a notebook run: the executed copy (beside the logs)
    array: str = ""  # an array: its tasks (ink_core.arrays); each has OUTPUT_DIR/INDEX/
    tasks: list[dict] = field(default_factory=list)  # an array's tasks: index, state, node, exit code
    session: str | None = None  # the server whose end cancels the job (Dask workers); None: none
    ticket: bool = False  # submitted by a session: the job gets the user's Kerberos ticket, kept fresh
    state: str = "pending"  # pending, running, held, completed, failed, cancelled, unknown
    node: str = ""
    reason: str = ""
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    usage: dict = field(default_factory=dict)
    cancel_requested: bool = False
    cancelled_tasks: list[int] = field(default_factory=list)  # an array's tasks cancelled one by one
    history_id: int = 0  # its row in the usage history (usage_history.py); 0: none
    history_written: str = ""  # what that row holds of it: "", "started" or "ended"
    cluster: str = "default"  # the site's cluster it runs on (ink_spawner/clusters.py)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def at_once(self) -> int:
        """Jobs it counts as against the batch limits: an array's tasks at once, else 1."""
        return at_once(self.array)

    @property
    def cpus_at_once(self) -> int:
        return int(self.resources.get("cpus", 1)) * self.at_once


def as_record(value) -> JobRecord | None:
    try:
        return JobRecord(**value) if isinstance(value, dict) else None
    except TypeError:  # a record of another version's fields
        return None


class JobStore(RecordStore):
    """One record per job, keyed ``<user>/<job id>``."""

    def save(self, record: JobRecord) -> None:
        self.records.put(f"{record.user}/{record.id}", asdict(record))

    def get(self, user: str, job_id: str) -> JobRecord | None:
        if not JOB_ID.match(job_id or "") or not USERNAME.match(user or ""):
            return None
        return as_record(self.records.get(f"{user}/{job_id}"))

    def of_user(self, user: str) -> list[JobRecord]:
        if not USERNAME.match(user or ""):
            raise ValueError(f"not a valid user name: {user!r}")
        records = [as_record(value) for _, value in self.records.items(f"{user}/j")]
        return sorted((r for r in records if r), key=lambda r: r.submitted, reverse=True)

    def unfinished(self) -> list[JobRecord]:
        """Every user's jobs that have not ended (the service's sweep)."""
        records = [as_record(value) for key, value in self.records.items() if "/j" in key]
        return [r for r in records if r and not r.final]
