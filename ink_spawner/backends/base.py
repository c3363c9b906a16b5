"""The one small interface every batch system sits behind."""

from __future__ import annotations

import asyncio
import enum
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from ink_core.units import format_memory

from ..accounts import SystemAccountRefused, user_account
from ..jobspec import JobSpec

# how much of a user's file INK reads for a tail (a log) or a small record (ink-job.json)
TAIL_BYTES = 256 * 1024
RECORD_BYTES = 64 * 1024


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    HELD = "held"  # will not start without someone's action (HTCondor hold, Slurm JobHeld...)
    DONE = "done"  # ended: completed, cancelled, failed, timed out
    UNKNOWN = "unknown"  # the scheduler could not be asked; keep waiting


@dataclass
class JobStatus:
    state: JobState
    host: str = ""
    reason: str = ""  # the scheduler's words: "Resources", "TIMEOUT", "HoldReason..."
    exit_code: int | None = None

    @property
    def active(self) -> bool:
        return self.state in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)


def array_status(tasks: list[JobStatus]) -> JobStatus:
    """An array as one job: running while a task runs, pending while one waits, else done."""
    for state in (JobState.RUNNING, JobState.PENDING, JobState.HELD):
        active = [t for t in tasks if t.state == state]
        if active:
            hosts = sorted({t.host for t in active if t.host})
            return JobStatus(state, host=",".join(hosts), reason=active[0].reason)
    return JobStatus(JobState.DONE, reason="every task has ended")


@dataclass
class Waiting:
    """Why a queued job has not started yet, from the scheduler itself."""

    reason: str = ""  # the scheduler's own words: "Resources", "Priority", a ClassAd clause
    sentence: str = ""  # the same in plain words
    expected_start: float | None = None  # epoch seconds, when the scheduler has an estimate
    position: int | None = None  # 1: the next to start among the jobs waiting where it waits
    waiting: int | None = None  # how many jobs wait there
    where: str = ""  # "partition ink", "the pool"

    def text(self, now: float) -> str:
        """One paragraph a user reads on the spawn page and the dashboard."""
        parts = [self.sentence or self.reason or "waiting for the scheduler"]
        if self.expected_start is not None:
            when = time.strftime("%H:%M", time.localtime(self.expected_start))
            minutes = max(0, round((self.expected_start - now) / 60))
            parts.append(f"expected to start around {when} (in {format_minutes(minutes)})")
        if self.position is not None and self.waiting:
            where = f" in {self.where}" if self.where else ""
            parts.append(f"number {self.position} of {self.waiting} waiting jobs{where}")
        return "; ".join(parts)


def format_minutes(minutes: int) -> str:
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Snapshot:
    """One answer of the scheduler shared by every caller for ``seconds``: a hundred waiting
    sessions refreshing their explanation cost one query, not a hundred."""

    def __init__(self, fetch: Callable[[], Awaitable], seconds: float):
        self.fetch = fetch
        self.seconds = seconds
        self._value = None
        self._taken = float("-inf")
        self._lock: asyncio.Lock | None = None
        self._loop = None

    async def get(self):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a lock belongs to one event loop
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:  # callers arriving during a fetch wait for its answer
            if time.monotonic() - self._taken >= self.seconds:
                self._value = await self.fetch()
                self._taken = time.monotonic()
            return self._value


@dataclass
class QueueStats:
    running: int = 0
    queued: int = 0
    per_app: dict = field(default_factory=dict)  # app -> {"running": n, "queued": n}


def never_fits_message(spec: JobSpec, where: str, sizes: list[tuple[int, int]]) -> str:
    """The refusal of a request no ``where`` ("node of the cluster", "slot of the pool") can
    ever hold, with what the largest have (``sizes``: CPUs and memory MB of each, if known)."""
    asked = f"{spec.cpus} CPUs and {format_memory(spec.memory_mb)} of memory"
    if spec.gpus:
        asked += f" and {spec.gpus} GPUs"
    sentence = f"This request can never start: no {where} has {asked}."
    if sizes:
        cpus, memory = max(c for c, _ in sizes), max(m for _, m in sizes)
        sentence += f" The largest have {cpus} CPUs and {format_memory(memory)}: ask for at most that."
    return sentence


class BackendError(RuntimeError):
    """The scheduler refused or could not be reached; the message is for the user."""


class InvalidSubmission(BackendError):
    """The request holds something this scheduler cannot carry faithfully: the caller's fault
    (HTTP 400), not the scheduler's."""


class Backend(LoggingConfigurable):
    """submit(spec) -> job id; status(job id) -> JobStatus; cancel(job id); queue_stats()."""

    name = "base"
    # job arrays: the variable a task of a native array finds its index in; "" when INK's runner
    # runs the tasks inside one job; None when this backend has no arrays yet
    array_index_env: str | None = None
    # the scheduler writes a job's output to its log (JobSpec.log_path); False: the job's wrapper
    # opens its log itself, as the user
    captures_output = True
    # the jobs run on the hub's own host (they may bind to loopback)
    same_host = False
    # the scheduler itself runs a job in its OS image (JobSpec.container_image: HTCondor's
    # container universe); False: INK's own runner does (ink_spawner/images.py)
    runs_containers = False

    @classmethod
    def site_defaults(cls, credentials_store: str) -> dict:
        """Settings this backend takes from the rest of the site (the site's own options win):
        e.g. where the credentials service keeps each user's ticket."""
        return {}

    def site_warnings(self) -> list[str]:
        """What ``ink check`` can see of the scheduler's own configuration that would make INK's
        jobs fail or idle (empty when nothing is known to be wrong)."""
        return []

    submit_as = Unicode(
        "auto",
        config=True,
        help="""How the hub becomes the user when it submits: 'runuser' (hub runs as root),
        'sudo' (hub user has sudo rights for the scheduler commands), 'self' (submit as the
        hub's own user, e.g. a single-user install) or 'auto' (runuser when root, else self).""",
    )

    async def submit(self, spec: JobSpec) -> str:
        raise NotImplementedError

    async def status(self, job_id: str) -> JobStatus:
        raise NotImplementedError

    async def cancel(self, job_id: str) -> None:
        raise NotImplementedError

    async def cancel_task(self, job_id: str, index: int, username: str, folder: str) -> None:
        """End one task of an array (``folder``: the array's output folder; its tasks are in
        ``folder/INDEX``); the others go on. Here, as the user: a mark in the task's folder,
        which its runner reads before it starts the command (a task the scheduler has not
        queued yet), and SIGTERM to its runner if it runs on this host (INK's own arrays);
        schedulers add their own cancel of the task."""
        runner = [sys.executable, "-m", "ink_spawner.jobscript.batch", "--dir", folder]
        argv = self.as_user(username, [*runner, "--cancel-task", str(int(index))])
        code, _, err = await run_command(argv, timeout=30, what="cancelling the task")
        if code != 0:
            raise BackendError(f"could not cancel task {index}: {err.strip()[-200:]}")

    async def queue_stats(self) -> QueueStats:
        raise NotImplementedError

    async def waiting(self, job_ids: Iterable[str]) -> dict[str, Waiting]:
        """Why each of these queued jobs waits (jobs the scheduler does not explain are left
        out). One scheduler query per refresh, whatever the number of jobs asked about."""
        return {}

    async def set_walltime(self, job_id: str, seconds: int) -> str:
        """Change a job's time limit to ``seconds`` from its start; the job's id afterwards
        (a backend that encodes the limit in its ids gives a new one)."""
        raise BackendError(f"the {self.name} backend cannot change a running job's time limit")

    async def prepare_log_dir(self, username: str, path: str) -> None:
        """Create the folder of a job's log as the user (the scheduler will not create it)."""
        if not path:
            return
        argv = self.as_user(username, ["mkdir", "-p", "-m", "700", "--", os.path.dirname(path)])
        code, _, err = await run_command(argv, timeout=10, what="mkdir")
        if code != 0:
            raise BackendError(f"cannot create the job's log folder: {err.strip()[:200]}")

    async def write_private_file(
        self, username: str, path: str, text: str, what: str = "a private file"
    ) -> None:
        """Write ``text`` to ``path`` as the user, mode 600 in a mode-700 folder, atomically
        (never as root into a folder the user controls)."""
        # INK's own Python, not the job's program (which may not exist: HTCondor holds it)
        argv = self.as_user(username, [sys.executable, "-m", "ink_spawner.jobscript.private_file", path])
        code, _, err = await run_command(argv, stdin=text, timeout=20, what=f"writing {what}")
        if code != 0:
            raise BackendError(f"cannot write {what}: {err.strip()[:200]}")

    async def log_tail(self, username: str, path: str, lines: int = 20, max_bytes: int = TAIL_BYTES) -> str:
        """The last ``lines`` lines of a job's log, read as the user (a symlink in their home
        shows nothing more), from its last ``max_bytes`` only: a huge log, or one with no
        newline at all (a sparse 20 GB file), costs no more than that."""
        if not path:
            return ""
        argv = self.as_user(username, ["tail", "-c", str(int(max_bytes)), "--", path])
        try:
            code, out, _ = await run_command(argv, timeout=10)
        except BackendError:
            return ""
        return last_lines(out, lines, cut=len(out.encode()) >= max_bytes) if code == 0 else ""

    async def read_record(self, username: str, path: str) -> dict:
        """A small JSON record the job keeps (``ink-job.json``, the usage summary), read as the
        user and capped at RECORD_BYTES: the user writes it, so it is data, never trusted more
        than that. Empty when missing or not a JSON object."""
        if not path:
            return {}
        argv = self.as_user(username, ["head", "-c", str(RECORD_BYTES), "--", path])
        try:
            code, out, _ = await run_command(argv, timeout=15)
        except BackendError:
            return {}
        try:
            data = json.loads(out) if code == 0 and out else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def read_records(self, username: str, folder: str, name: str, limit: int = 2000) -> list[dict]:
        """``folder/*/name`` (an array's task records), read as the user in one command, each
        capped at 4 KB; what is not a JSON object is skipped."""
        find = ["find", folder, "-mindepth", "2", "-maxdepth", "2", "-type", "f", "-name", name]
        argv = self.as_user(username, [*find, "-exec", "head", "-q", "-c", "4096", "{}", "+"])
        try:
            code, out, _ = await run_command(argv, timeout=30)
        except BackendError:
            return []
        records, decoder, at = [], json.JSONDecoder(), 0
        while len(records) < limit:
            start = out.find("{", at)
            if start < 0:
                break
            try:
                value, at = decoder.raw_decode(out, start)
            except ValueError:
                at = start + 1
                continue
            if isinstance(value, dict):
                records.append(value)
        return records

    # helpers shared by command-line backends

    def as_user(self, username: str, argv: list[str], public_env: dict | None = None) -> list[str]:
        """Prefix argv so that it runs as ``username`` (argument lists only, no shell).

        ``public_env`` lands on the command line, visible in ``ps``: never put secrets in it.
        """
        mode = self.submit_as
        if mode == "auto":
            mode = "runuser" if os.geteuid() == 0 else "self"
        env_args = [f"{k}={v}" for k, v in (public_env or {}).items()]
        if mode == "self":
            return (["env", *env_args] if env_args else []) + argv
        try:  # KeyError for an unknown user, before anything runs
            user_account(username, "run commands")
        except SystemAccountRefused as e:
            raise BackendError(str(e)) from None
        if mode == "runuser":
            return ["runuser", "-u", username, "--", "env", *env_args, *argv]
        if mode == "sudo":
            return ["sudo", "-n", "-u", username, "--", "env", *env_args, *argv]
        raise BackendError(f"unknown submit_as mode {mode!r}")


def last_lines(text: str, lines: int, cut: bool) -> str:
    """The last ``lines`` lines of ``text``; when ``cut`` (the text is the end of something
    longer) its first, partial line is dropped, unless it is the only one."""
    parts = text.splitlines(keepends=True)
    if cut and len(parts) > 1:
        parts = parts[1:]
    return "".join(parts[-lines:]) if lines > 0 else ""


async def run_command(
    argv: list[str], stdin: str | None = None, timeout: float = 30, what: str = ""
) -> tuple[int, str, str]:
    """Run a command (argument list) and return (exit code, stdout, stderr)."""
    what = what or os.path.basename(argv[0])
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise BackendError(f"{what} is not installed on the hub host") from None
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BackendError(f"{what} did not answer within {timeout:.0f} s") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
