"""Batch jobs in the usage history, beside sessions (``ink_spawner.history``, on the hub's
database): a record when the job is submitted, its start when the scheduler runs it, its end,
state and usage when it ends. The job's own record (``JobRecord.history_id``) remembers its row
and what was written, so each change is written once whoever looks (the owner listing her jobs,
or the service's own sweep).

History never fails a job: without a database, or when a write fails (logged), the job goes on.
"""

from __future__ import annotations

import datetime
import logging

from ink_spawner import history
from ink_spawner.jobspec import JobSpec

from .records import JobRecord

log = logging.getLogger("ink-jobs")


def utc(timestamp: float | None) -> datetime.datetime | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).replace(tzinfo=None)


def usage_fields(record: JobRecord) -> dict:
    """What the batch runner measured (its rusage; an array's summed over its tasks) as the
    history's usage columns. A job's notes are the user's to write: anything odd is dropped."""
    usage = record.usage or {}
    try:
        cpu_s, rss, run_s = (float(usage.get(k, -1)) for k in ("cpu_s", "max_rss_bytes", "run_s"))
    except (TypeError, ValueError):
        return {}
    if run_s < 0 and record.started is not None and record.ended is not None:
        run_s = record.ended - record.started
    fields = {}
    if rss >= 0:
        fields["peak_memory_mb"] = round(rss / 2**20, 1)
    if cpu_s >= 0 and run_s > 0:
        fields["mean_cpu"] = round(cpu_s / run_s, 3)
    return fields


def end_reason(record: JobRecord) -> str:
    """completed, cancelled, or failed with its exit code (or the signal that killed it)."""
    if record.state != "failed":
        return record.state
    if record.reason.startswith("killed by signal"):
        return f"failed: {record.reason}"
    return f"failed: exit code {record.exit_code}" if record.exit_code is not None else "failed"


class JobHistory:
    def __init__(self, db_url: str):
        self.db_url = db_url

    def _write(self, what: str, write, default=None):
        return history.write_quietly(self.db_url, write, log, f"job history: {what}", default)

    def submitted(self, record: JobRecord, spec: JobSpec) -> None:
        """The job's row (its id kept in ``record.history_id``; 0: none)."""
        fields = dict(
            kind="batch",
            ink_job=record.id,
            user=record.user,
            server="",
            app="batch",
            image=spec.image,
            experiment=spec.experiment,
            backend=record.backend,
            job_id=record.backend_id,
            cpus=spec.cpus,
            memory_mb=spec.memory_mb,
            walltime_s=spec.walltime_s,
            gpus=spec.gpus,
        )
        record.history_id = self._write(
            f"no record of {record.id}", lambda db: history.record_submit(db, **fields), 0
        )

    def follow(self, record: JobRecord) -> bool:
        """Write what changed since the last write (start, end); True when something was."""
        if not record.history_id:
            return False
        if record.final and record.history_written != "ended":
            reason = end_reason(record)
            run_s = (record.usage or {}).get("run_s")

            def close(db):
                history.record(db, record.history_id, end_reason=reason[:500], **usage_fields(record))
                history.record_times(
                    db,
                    record.history_id,
                    started=utc(record.started),
                    ended=utc(record.ended) or history.utcnow(),
                )
                if isinstance(run_s, int | float) and run_s >= 0:  # an array: its tasks' time, summed
                    history.record(db, record.history_id, run_s=float(run_s))

            self._write(f"{record.id} not closed", close)
            record.history_written = "ended"
            return True
        if record.started is not None and not record.history_written:
            self._write(
                f"{record.id} not updated",
                lambda db: history.record_times(db, record.history_id, started=utc(record.started)),
            )
            record.history_written = "started"
            return True
        return False
