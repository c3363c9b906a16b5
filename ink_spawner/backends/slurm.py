"""Slurm: sbatch as the user, squeue for state and reason, scancel."""

from __future__ import annotations

import re
import shlex

from traitlets import Unicode

from ..jobspec import JobSpec
from ..units import format_duration
from .base import Backend, BackendError, JobState, JobStatus, QueueStats, run_command

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

    partition = Unicode("", config=True, help="Partition for INK's jobs (empty: the cluster's default).")
    account = Unicode("", config=True, help="Slurm account; the experiment's accounting group wins if set.")
    slurm_conf = Unicode("", config=True, help="SLURM_CONF for the commands (empty: Slurm's default).")
    bin_dir = Unicode("", config=True, help="Folder holding sbatch/squeue/scancel (empty: PATH).")
    extra_sbatch_args = Unicode(
        "", config=True, help="Extra sbatch options the site adds to every job (split like a shell would)."
    )

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
            f"--output={spec.log_path or '/dev/null'}",
        ]
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
            raise BackendError(f"Slurm refused the job: {message}")
        return parse_sbatch(out)

    async def _squeue(self, args: list[str]) -> tuple[int, str, str]:
        argv = [self._cmd("squeue"), "--noheader", "--format", SQUEUE_FORMAT, *args]
        if self._env():
            argv = ["env", *(f"{k}={v}" for k, v in self._env().items()), *argv]
        return await run_command(argv, what="squeue")

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
        if job_id not in jobs:
            return JobStatus(JobState.DONE, reason="the job is no longer known to Slurm")
        return jobs[job_id][0]

    async def cancel(self, job_id: str) -> None:
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not a Slurm job id: {job_id!r}")
        argv = [self._cmd("scancel"), job_id]
        if self._env():
            argv = ["env", *(f"{k}={v}" for k, v in self._env().items()), *argv]
        code, _, err = await run_command(argv, what="scancel")
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
