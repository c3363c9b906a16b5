"""HTCondor through the htcondor2 bindings: Submit, Schedd.submit / query / act.

The job's environment (it holds the server's hub token) never goes into the job ad, which every
pool user can read with condor_q -l: it is written, as the user, to a mode-600 file beside the
job's log, and the job gets only that file's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading

from traitlets import Bool, Dict, Float, Unicode
from traitlets.utils.importstring import import_item

from ..jobspec import JobSpec
from ..units import format_duration_human
from .base import Backend, BackendError, JobState, JobStatus, QueueStats, run_command

JOB_ID = re.compile(r"^\d+$")
PROJECTION = [
    "ClusterId",
    "ProcId",
    "Owner",
    "JobStatus",
    "RemoteHost",
    "LastRejMatchReason",
    "HoldReason",
    "HoldReasonCode",
    "RemoveReason",
    "ExitCode",
    "EnteredCurrentStatus",
    "InkApp",
    "InkWalltime",
]
WALLTIME_REMOVE = "(JobStatus == 2) && (time() - EnteredCurrentStatus > {seconds})"
# serialises process-wide settings (KRB5CCNAME) around a bindings call
_IDENTITY_LOCK = threading.Lock()


def _quote_argument(arg: str) -> str:
    """HTCondor's new argument syntax: each argument in single quotes, quotes doubled."""
    return "'" + arg.replace("'", "''") + "'"


def _node(remote_host: str) -> str:
    return remote_host.rsplit("@", 1)[-1] if remote_host else ""


def status_from_ad(ad) -> JobStatus:
    """Map a job ad (ClassAd or dict) onto INK's JobStatus, with the reason a user can read."""
    get = ad.get
    code = int(get("JobStatus", 0) or 0)
    if code == 1:
        reason = get("LastRejMatchReason") or "waiting for a matching slot"
        return JobStatus(JobState.PENDING, reason=str(reason))
    if code == 2:
        return JobStatus(JobState.RUNNING, host=_node(str(get("RemoteHost") or "")))
    if code == 3:
        reason = str(get("RemoveReason") or "removed")
        walltime = get("InkWalltime")
        if walltime and "PeriodicRemove" in reason:
            reason = f"the walltime of {format_duration_human(int(walltime))} was reached"
        return JobStatus(JobState.DONE, reason=f"removed: {reason}")
    if code == 4:
        exit_code = get("ExitCode")
        exit_code = int(exit_code) if exit_code is not None else None
        return JobStatus(JobState.DONE, reason=f"completed (exit code {exit_code})", exit_code=exit_code)
    if code == 5:
        return JobStatus(JobState.HELD, reason=str(get("HoldReason") or "held"))
    if code == 6:
        return JobStatus(JobState.DONE, reason="transferring output after the job ended")
    if code == 7:
        return JobStatus(JobState.HELD, reason="suspended")
    return JobStatus(JobState.UNKNOWN, reason=f"unknown JobStatus {code}")


def submit_description(
    spec: JobSpec,
    env_file: str,
    *,
    walltime_attribute="",
    shared_filesystem=True,
    request_disk="1G",
    extra=None,
    owner="",
) -> dict:
    """The submit description (keys as condor_submit reads them) for one INK job."""
    description = {
        "universe": "vanilla",
        "executable": spec.command[0],
        "transfer_executable": "false",
        "arguments": " ".join(_quote_argument(a) for a in spec.command[1:]),
        "environment": f'"INK_ENV_FILE={os.path.basename(env_file) if not shared_filesystem else env_file}"',
        "request_cpus": str(spec.cpus),
        "request_memory": str(spec.memory_mb),
        "request_disk": request_disk,
        "output": spec.log_path or "/dev/null",
        "error": spec.log_path or "/dev/null",
        "batch_name": spec.name,
        "My.InkApp": json.dumps(spec.app),
        "My.InkUser": json.dumps(spec.username),
        "My.InkServer": json.dumps(spec.name),
        "My.InkWalltime": str(spec.walltime_s),
    }
    if spec.workdir:
        description["initialdir"] = spec.workdir
    if spec.gpus:
        description["request_gpus"] = str(spec.gpus)
    if walltime_attribute:
        description[f"My.{walltime_attribute}"] = str(spec.walltime_s)
    else:
        description["periodic_remove"] = WALLTIME_REMOVE.format(seconds=spec.walltime_s)
    if spec.container_image:
        description["universe"] = "container"
        description["container_image"] = spec.container_image
    elif spec.opsys:
        description["requirements"] = f"(TARGET.OpSysAndVer == {json.dumps(spec.opsys)})"
    if spec.accounting_group:
        description["accounting_group"] = spec.accounting_group
        description["accounting_group_user"] = spec.username
    if shared_filesystem:
        description["should_transfer_files"] = "NO"
    else:
        description["should_transfer_files"] = "YES"
        description["when_to_transfer_output"] = "ON_EXIT_OR_EVICT"
        description["transfer_input_files"] = env_file
    if owner:
        description["My.Owner"] = json.dumps(owner)
    description.update(extra or {})
    return description


class HTCondorBackend(Backend):
    name = "htcondor"

    schedd_name = Unicode("", config=True, help="Name of the schedd to submit to (empty: the local schedd).")
    collector = Unicode("", config=True, help="Collector (host[:port]) that locates the named schedd.")
    schedd_factory = Unicode(
        "",
        config=True,
        help="Import path of a callable(backend) returning a Schedd-like object (tests, special sites).",
    )
    identity = Unicode(
        "kerberos",
        config=True,
        help="""Whose job it is. 'kerberos': the hub submits with the user's own Kerberos ticket
        (KRB5CCNAME -> credential_cache); 'owner': the hub is a queue super user and sets Owner.""",
    )
    credential_cache = Unicode(
        "/var/lib/ink/credentials/{username}.ccache",
        config=True,
        help="The user's Kerberos ticket cache (kept fresh by INK's credentials service).",
    )
    walltime_attribute = Unicode(
        "",
        config=True,
        help="A site job attribute that enforces walltime (e.g. MaxWallTime); empty: INK's periodic_remove.",
    )
    shared_filesystem = Bool(True, config=True, help="Home is shared with the nodes (else file transfer).")
    request_disk = Unicode("1G", config=True, help="request_disk of INK's jobs.")
    extra_submit = Dict(config=True, help="Extra submit commands the site adds to every INK job.")
    call_timeout = Float(30, config=True, help="Seconds a schedd call may take before INK gives up.")

    def connect(self):
        if self.schedd_factory:
            return import_item(self.schedd_factory)(self)
        import htcondor2

        if self.schedd_name:
            collector = htcondor2.Collector(self.collector or None)
            location = collector.locate(htcondor2.DaemonTypes.Schedd, self.schedd_name)
            return htcondor2.Schedd(location)
        return htcondor2.Schedd()

    @contextlib.contextmanager
    def _as(self, username: str | None):
        """In kerberos mode the bindings authenticate with the user's own ticket cache."""
        if self.identity != "kerberos" or not username:
            yield
            return
        with _IDENTITY_LOCK:
            previous = os.environ.get("KRB5CCNAME")
            os.environ["KRB5CCNAME"] = "FILE:" + self.credential_cache.format(username=username)
            try:
                yield
            finally:
                if previous is None:
                    os.environ.pop("KRB5CCNAME", None)
                else:
                    os.environ["KRB5CCNAME"] = previous

    async def _call(self, what: str, username: str | None, fn):
        def run():
            with self._as(username):
                return fn(self.connect())

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), self.call_timeout)
        except TimeoutError:
            raise BackendError(
                f"The HTCondor scheduler did not answer within {self.call_timeout:.0f} s."
            ) from None
        except BackendError:
            raise
        except Exception as e:  # the bindings raise HTCondorException, ValueError, RuntimeError...
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            lowered = text.lower()
            if "authenticat" in lowered or "permission" in lowered or "denied" in lowered:
                raise BackendError(
                    f"The HTCondor scheduler refused INK's credentials for this {what}: {text}"
                ) from None
            if "locate" in lowered or "connect" in lowered or "unreachable" in lowered:
                raise BackendError(f"The HTCondor scheduler could not be reached: {text}") from None
            raise BackendError(f"HTCondor refused the {what}: {text}") from None

    async def write_env_file(self, spec: JobSpec) -> str:
        """The job's environment as a mode-600 JSON file written by the user, beside its log."""
        base = spec.log_path[:-4] if spec.log_path.endswith(".log") else spec.log_path
        path = base + ".env.json"
        argv = self.as_user(
            spec.username, [spec.command[0], "-m", "ink_spawner.jobscript.private_file", path]
        )
        code, _, err = await run_command(
            argv, stdin=json.dumps(spec.env), timeout=20, what="writing the job's environment"
        )
        if code != 0:
            raise BackendError(f"cannot write the job's environment file: {err.strip()[:200]}")
        return path

    async def submit(self, spec: JobSpec) -> str:
        import htcondor2

        env_file = await self.write_env_file(spec)
        description = submit_description(
            spec,
            env_file,
            walltime_attribute=self.walltime_attribute,
            shared_filesystem=self.shared_filesystem,
            request_disk=self.request_disk,
            extra=self.extra_submit,
            owner=spec.username if self.identity == "owner" else "",
        )
        submit = htcondor2.Submit(description)
        result = await self._call(
            "job submission", spec.username, lambda schedd: schedd.submit(submit, count=1)
        )
        return str(result.cluster())

    async def status(self, job_id: str) -> JobStatus:
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not an HTCondor cluster id: {job_id!r}")
        constraint = f"ClusterId == {job_id}"
        try:
            ads = await self._call(
                "job query", None, lambda s: s.query(constraint=constraint, projection=PROJECTION)
            )
            if not ads:
                ads = await self._call(
                    "history query",
                    None,
                    lambda s: s.history(constraint=constraint, projection=PROJECTION, match=1),
                )
        except BackendError as e:
            return JobStatus(JobState.UNKNOWN, reason=str(e))
        if not ads:
            return JobStatus(JobState.DONE, reason="the job is no longer in the queue")
        return status_from_ad(ads[0])

    async def cancel(self, job_id: str) -> None:
        import htcondor2

        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not an HTCondor cluster id: {job_id!r}")
        await self._call(
            "removal",
            None,
            lambda s: s.act(htcondor2.JobAction.Remove, f"ClusterId == {job_id}", reason="stopped from INK"),
        )

    async def queue_stats(self) -> QueueStats:
        ads = await self._call(
            "queue query", None, lambda s: s.query(constraint="true", projection=["JobStatus", "InkApp"])
        )
        stats = QueueStats()
        for ad in ads:
            code = int(ad.get("JobStatus", 0) or 0)
            key = {1: "queued", 2: "running"}.get(code)
            if key is None:
                continue
            setattr(stats, key, getattr(stats, key) + 1)
            app = ad.get("InkApp")
            if app:
                stats.per_app.setdefault(str(app), {"running": 0, "queued": 0})[key] += 1
        return stats
