"""The embedded default: each job is a process tree on this host, run as the user."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time

import psutil
from traitlets import Float

from ..accounts import SystemAccountRefused, user_account
from ..jobspec import JobSpec
from .base import Backend, BackendError, JobState, JobStatus, QueueStats

# pid.start-time-in-centiseconds.walltime-seconds: the start time guards against pid reuse
JOB_ID = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
WRAPPER_MODULE = "ink_spawner.jobscript"


def _parse(job_id: str) -> tuple[int, int, int]:
    match = JOB_ID.match(job_id or "")
    if not match:
        raise BackendError(f"not a local job id: {job_id!r}")
    return tuple(int(x) for x in match.groups())


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class LocalBackend(Backend):
    name = "local"
    array_index_env = ""  # the runner runs an array's tasks inside the one job
    captures_output = False  # a process of its own: the wrapper writes its log
    same_host = True

    stop_grace = Float(5, config=True, help="Seconds between SIGTERM and SIGKILL on cancel.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._children: dict[int, subprocess.Popen] = {}

    async def submit(self, spec: JobSpec) -> str:
        kwargs = {}
        cwd = spec.workdir or None
        if os.geteuid() == 0:
            try:
                pw = user_account(spec.username, "start a job")
            except KeyError:
                raise BackendError(f"there is no Unix account {spec.username!r} on this host") from None
            except SystemAccountRefused as e:
                raise BackendError(str(e)) from None
            kwargs.update(
                user=pw.pw_uid,
                group=pw.pw_gid,
                extra_groups=os.getgrouplist(pw.pw_name, pw.pw_gid),
            )
            cwd = cwd or pw.pw_dir
        try:
            proc = subprocess.Popen(
                spec.command,
                env=spec.env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: cancel kills the whole tree
                **kwargs,
            )
        except OSError as e:
            raise BackendError(f"could not start the job: {e.strerror or e}") from None
        self._children[proc.pid] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            started = time.time()
        return f"{proc.pid}.{int(started * 100)}.{int(spec.walltime_s)}"

    def _process(self, pid: int, started_cs: int) -> psutil.Process | None:
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            self._children.pop(pid, None)
            return None
        try:
            proc = psutil.Process(pid)
            if abs(int(proc.create_time() * 100) - started_cs) > 1 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    async def status(self, job_id: str) -> JobStatus:
        pid, started_cs, walltime = _parse(job_id)
        proc = self._process(pid, started_cs)
        if proc is None:
            child = self._children.pop(pid, None)
            code = child.returncode if child is not None else None
            if self._job_group(pid, started_cs):
                # the wrapper is gone (killed by the user, the OOM killer) but not all it
                # started: the hub will not call stop for a job that ended, so end it here
                await self.cancel(job_id)
            return JobStatus(JobState.DONE, reason="process ended", exit_code=code)
        if walltime and time.time() - started_cs / 100 > walltime:
            await self.cancel(job_id)
            return JobStatus(JobState.DONE, reason="TIMEOUT (walltime reached)")
        return JobStatus(JobState.RUNNING, host="127.0.0.1")

    async def set_walltime(self, job_id: str, seconds: int) -> str:
        """The limit is part of a local job's id: the same process, a new id."""
        pid, started_cs, _ = _parse(job_id)
        if self._process(pid, started_cs) is None:
            raise BackendError("the job has already ended")
        return f"{pid}.{started_cs}.{int(seconds)}"

    @staticmethod
    def _job_group(pid: int, started_cs: int) -> list[psutil.Process]:
        """The job's process group, also when its leader (the wrapper) is already gone (killed by
        the user or the OOM killer): members of group ``pid`` started since the job did (a
        reused group id belongs to someone newer, but never to processes older than the job)."""
        members = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pid and proc.create_time() * 100 >= started_cs - 1:
                    members.append(proc)
            except (OSError, psutil.Error):
                continue
        return members

    async def cancel(self, job_id: str) -> None:
        pid, started_cs, _ = _parse(job_id)
        members = self._job_group(pid, started_cs)
        for proc in members:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        deadline = time.monotonic() + self.stop_grace
        while time.monotonic() < deadline and any(
            p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in members
        ):
            await asyncio.sleep(0.1)
        # whatever is left of the group (or a leader ignoring SIGTERM) goes now
        for proc in self._job_group(pid, started_cs):
            try:
                proc.kill()
            except psutil.Error:
                pass
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait()

    async def queue_stats(self) -> QueueStats:
        stats = QueueStats()
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if WRAPPER_MODULE in cmdline and "--app" in cmdline:
                index = cmdline.index("--app")
                app = cmdline[index + 1] if index + 1 < len(cmdline) else "?"
                stats.running += 1
                stats.per_app.setdefault(app, {"running": 0, "queued": 0})["running"] += 1
        return stats
