"""Slurm: sbatch as the user, squeue for state and reason, scancel."""

from __future__ import annotations

import datetime
import os
import re
import shlex
from collections.abc import Iterable

from traitlets import Float, Unicode

from ink_core.units import format_duration

from ..jobspec import JobSpec
from .base import (
    Backend,
    BackendError,
    InvalidSubmission,
    JobState,
    JobStatus,
    QueueStats,
    Snapshot,
    Waiting,
    array_status,
    never_fits_message,
    run_command,
)
from .slurm_reasons import explain_reason

JOB_ID = re.compile(r"^\d+$")
SQUEUE_FORMAT = "%i|%T|%r|%N|%k"
COMMENT_PREFIX = "ink:app="

# squeue's long state names -> INK's states
STATES = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.HELD,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.HELD,
    "SUSPENDED": JobState.HELD,
    "STOPPED": JobState.HELD,
    "RUNNING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.DONE,
    "COMPLETING": JobState.DONE,
    "COMPLETED": JobState.DONE,
    "CANCELLED": JobState.DONE,
    "FAILED": JobState.DONE,
    "TIMEOUT": JobState.DONE,
    "NODE_FAIL": JobState.DONE,
    "PREEMPTED": JobState.DONE,
    "BOOT_FAIL": JobState.DONE,
    "DEADLINE": JobState.DONE,
    "OUT_OF_MEMORY": JobState.DONE,
    "SPECIAL_EXIT": JobState.DONE,
    "REVOKED": JobState.DONE,
}
# the pending jobs, highest priority first: id|partition|reason|expected start
PENDING_FORMAT = "%i|%P|%r|%S"
# sbatch's answers to a request no node of the partition can ever hold
NEVER_FITS = (
    "Requested node configuration is not available",
    "CPU count per node can not be satisfied",
    "Memory required by task is not available",
    "Requested GRES option unsupported by configured SelectType plugin",
    "Invalid generic resource (gres) specification",
)
HELD_REASONS = {"JobHeldUser", "JobHeldAdmin", "launch_failed_requeued_held", "BadConstraints"}


def parse_sbatch(output: str) -> str:
    """``sbatch --parsable`` prints "id" or "id;cluster"."""
    job_id = output.strip().split(";")[0]
    if not JOB_ID.match(job_id):
        raise BackendError(f"sbatch answered something that is not a job id: {output.strip()[:200]!r}")
    return job_id


def parse_squeue_line(line: str) -> tuple[str, JobStatus, str]:
    """One line of ``squeue -o '%i|%T|%r|%N|%k'`` -> (job id, status, app)."""
    parts = line.strip().split("|")
    if len(parts) < 4:
        raise ValueError(f"unexpected squeue line: {line!r}")
    job_id, state_name, reason, nodes = parts[:4]
    comment = parts[4] if len(parts) > 4 else ""
    state = STATES.get(state_name, JobState.UNKNOWN)
    if state == JobState.PENDING and reason in HELD_REASONS:
        state = JobState.HELD
    reason = "" if reason in ("None", "(null)") else reason
    if state == JobState.DONE:
        reason = state_name if not reason else f"{state_name} ({reason})"
    host = "" if nodes in ("", "(null)", "n/a") else nodes
    app = comment[len(COMMENT_PREFIX) :] if comment.startswith(COMMENT_PREFIX) else ""
    return job_id, JobStatus(state, host=host, reason=reason), app


def parse_squeue(output: str) -> dict[str, tuple[JobStatus, str]]:
    jobs = {}
    for line in output.splitlines():
        if line.strip():
            job_id, status, app = parse_squeue_line(line)
            jobs[job_id] = (status, app)
    return jobs


def parse_start(text: str) -> float | None:
    """squeue's %S (local time, ``2026-12-01T22:10:00``; ``N/A`` when Slurm has no estimate)."""
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def parse_pending(output: str) -> dict[str, Waiting]:
    """``squeue --states=PENDING --sort=-p,i --format PENDING_FORMAT``: each job's place in its
    partition's line, in the order Slurm will consider them."""
    rows = [line.split("|") for line in output.splitlines() if line.count("|") >= 3]
    per_partition: dict[str, int] = {}
    for row in rows:
        per_partition[row[1]] = per_partition.get(row[1], 0) + 1
    seen: dict[str, int] = {}
    answer = {}
    for job_id, partition, reason, start, *_ in rows:
        seen[partition] = seen.get(partition, 0) + 1
        answer[job_id] = Waiting(
            reason=reason,
            sentence=explain_reason(reason),
            expected_start=parse_start(start),
            position=seen[partition],
            waiting=per_partition[partition],
            where=f"partition {partition}",
        )
    return answer


def parse_nodes(output: str) -> list[tuple[int, int]]:
    """``sinfo --noheader --Node --format '%c|%m'``: (CPUs, memory MB) of each node."""
    nodes = []
    for line in output.splitlines():
        cpus, _, memory = line.strip().partition("|")
        if cpus.isdigit() and memory.rstrip("+").isdigit():
            nodes.append((int(cpus), int(memory.rstrip("+"))))
    return nodes


def array_log(log_path: str) -> str:
    """Each task of an array its own scheduler log (``%a``: the task's index)."""
    if not log_path:
        return "/dev/null"
    root, ext = os.path.splitext(log_path)
    return f"{root}-%a{ext}"


def batch_script(spec: JobSpec) -> str:
    """The script sbatch reads on stdin: the job's environment, then the wrapper.

    Options go on sbatch's command line; the script only exports (quoted) and execs.
    """
    lines = ["#!/bin/bash", "# INK job: environment, then the job wrapper"]
    for key, value in spec.env.items():
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in spec.command))
    return "\n".join(lines) + "\n"


class SlurmBackend(Backend):
    name = "slurm"
    array_index_env = "SLURM_ARRAY_TASK_ID"

    partition = Unicode("", config=True, help="Partition for INK's jobs (empty: the cluster's default).")
    account = Unicode("", config=True, help="Slurm account; the experiment's accounting group wins if set.")
    slurm_conf = Unicode("", config=True, help="SLURM_CONF for the commands (empty: Slurm's default).")
    bin_dir = Unicode("", config=True, help="Folder holding sbatch/squeue/scancel (empty: PATH).")
    extra_sbatch_args = Unicode(
        "", config=True, help="Extra sbatch options the site adds to every job (split like a shell would)."
    )
    explain_seconds = Float(
        10,
        config=True,
        help="How long one squeue of the pending jobs (why each session waits) is reused.",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pending = Snapshot(self._fetch_pending, self.explain_seconds)

    def _cmd(self, name: str) -> str:
        return f"{self.bin_dir.rstrip('/')}/{name}" if self.bin_dir else name

    def _env(self) -> dict:
        return {"SLURM_CONF": self.slurm_conf} if self.slurm_conf else {}

    def sbatch_args(self, spec: JobSpec) -> list[str]:
        args = [
            self._cmd("sbatch"),
            "--parsable",
            f"--job-name={spec.name}",
            f"--comment={COMMENT_PREFIX}{spec.app}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={spec.cpus}",
            f"--mem={spec.memory_mb}M",
            f"--time={format_duration(spec.walltime_s)}",
            "--export=NONE",
            f"--output={array_log(spec.log_path) if spec.array else spec.log_path or '/dev/null'}",
        ]
        if spec.array:
            args.append(f"--array={spec.array}")
        if spec.workdir:
            args.append(f"--chdir={spec.workdir}")
        if spec.gpus:
            args.append(f"--gres=gpu:{spec.gpus}")
        if self.partition:
            args.append(f"--partition={self.partition}")
        account = spec.accounting_group or self.account
        if account:
            args.append(f"--account={account}")
        args.extend(shlex.split(self.extra_sbatch_args))
        return args

    async def submit(self, spec: JobSpec) -> str:
        argv = self.as_user(spec.username, self.sbatch_args(spec), self._env())
        code, out, err = await run_command(argv, stdin=batch_script(spec), what="sbatch")
        if code != 0:
            message = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
            if any(words in err for words in NEVER_FITS):
                raise InvalidSubmission(await self._never_fits(spec, message))
            raise BackendError(f"Slurm refused the job: {message}")
        return parse_sbatch(out)

    async def _never_fits(self, spec: JobSpec, message: str) -> str:
        """Slurm's refusal of a job no node can hold, with what the largest nodes have."""
        args = ["--noheader", "--Node", "--format", "%c|%m"]
        if self.partition:
            args.append(f"--partition={self.partition}")
        try:
            code, out, _ = await run_command(self._slurm_argv("sinfo", args), what="sinfo")
        except BackendError:
            code, out = 1, ""
        where = f"node of partition {self.partition}" if self.partition else "node of the cluster"
        sentence = never_fits_message(spec, where, parse_nodes(out) if code == 0 else [])
        return f"{sentence} (Slurm: {message})"

    def _slurm_argv(self, command: str, args: list[str]) -> list[str]:
        """A Slurm command run as the hub itself, with the site's SLURM_CONF."""
        argv = [self._cmd(command), *args]
        if self._env():
            argv = ["env", *(f"{k}={v}" for k, v in self._env().items()), *argv]
        return argv

    async def _squeue(self, args: list[str]) -> tuple[int, str, str]:
        argv = self._slurm_argv("squeue", ["--noheader", "--format", SQUEUE_FORMAT, *args])
        return await run_command(argv, what="squeue")

    async def _fetch_pending(self) -> dict[str, Waiting]:
        args = ["--noheader", "--states=PENDING", "--sort=-p,i", "--format", PENDING_FORMAT]
        code, out, err = await run_command(self._slurm_argv("squeue", args), what="squeue")
        if code != 0:
            raise BackendError(f"squeue failed: {err.strip()[:200]}")
        return parse_pending(out)

    async def waiting(self, job_ids: Iterable[str]) -> dict[str, Waiting]:
        pending = await self._pending.get()
        return {job_id: pending[job_id] for job_id in job_ids if job_id in pending}

    async def set_walltime(self, job_id: str, seconds: int) -> str:
        """``scontrol update TimeLimit``, as the hub: raising a limit is for Slurm's operators
        (root, SlurmUser, or an account with AdminLevel=Operator), never for the job's owner."""
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not a Slurm job id: {job_id!r}")
        args = ["update", f"JobId={job_id}", f"TimeLimit={format_duration(seconds)}"]
        code, _, err = await run_command(self._slurm_argv("scontrol", args), what="scontrol")
        if code != 0:
            message = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
            raise BackendError(f"Slurm refused the new time limit: {message}")
        return job_id

    async def status(self, job_id: str) -> JobStatus:
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not a Slurm job id: {job_id!r}")
        try:
            code, out, err = await self._squeue(["--jobs", job_id, "--states=all"])
        except BackendError as e:
            return JobStatus(JobState.UNKNOWN, reason=str(e))
        if code != 0:
            if "Invalid job id" in err:
                return JobStatus(JobState.DONE, reason="the job is no longer known to Slurm")
            return JobStatus(JobState.UNKNOWN, reason=err.strip()[:200])
        jobs = parse_squeue(out)
        if job_id in jobs:
            return jobs[job_id][0]
        tasks = [status for key, (status, _) in jobs.items() if key.startswith(f"{job_id}_")]
        if tasks:
            return array_status(tasks)
        return JobStatus(JobState.DONE, reason="the job is no longer known to Slurm")

    async def cancel(self, job_id: str) -> None:
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not a Slurm job id: {job_id!r}")
        await self._scancel(job_id)

    async def cancel_task(self, job_id: str, index: int, username: str, folder: str) -> None:
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not a Slurm job id: {job_id!r}")
        await super().cancel_task(job_id, index, username, folder)
        await self._scancel(f"{job_id}_{int(index)}")

    async def _scancel(self, target: str) -> None:
        code, _, err = await run_command(self._slurm_argv("scancel", [target]), what="scancel")
        if code != 0 and "already completed" not in err and "Invalid job id" not in err:
            raise BackendError(f"scancel failed: {err.strip()[:200]}")

    async def queue_stats(self) -> QueueStats:
        code, out, err = await self._squeue([])
        if code != 0:
            raise BackendError(f"squeue failed: {err.strip()[:200]}")
        stats = QueueStats()
        for status, app in parse_squeue(out).values():
            key = "running" if status.state == JobState.RUNNING else "queued"
            if status.state not in (JobState.RUNNING, JobState.PENDING, JobState.HELD):
                continue
            setattr(stats, key, getattr(stats, key) + 1)
            if app:
                stats.per_app.setdefault(app, {"running": 0, "queued": 0})[key] += 1
        return stats
