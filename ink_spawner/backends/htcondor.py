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
import pwd
import re
import threading
import time
from collections.abc import Iterable

from traitlets import Bool, Dict, Enum, Float, Unicode
from traitlets.utils.importstring import import_item

from ink_core.arrays import parse_array
from ink_core.units import format_duration_human

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
)

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
    "ExitBySignal",
    "ExitSignal",
    "EnteredCurrentStatus",
    "InkApp",
    "InkWalltime",
    "InkTasks",  # an array: how many procs it has
]
# reads the job's own InkWalltime, which "Extend" edits (PROTECTED_JOB_ATTRS keeps owners off it)
WALLTIME_REMOVE = "(JobStatus == 2) && (time() - EnteredCurrentStatus > InkWalltime)"
# the attributes only INK (a queue super user) may change: else an owner extends his own walltime
WALLTIME_ATTRS = ("InkWalltime", "PeriodicRemove")
# serialises process-wide settings (KRB5CCNAME) around a bindings call
_IDENTITY_LOCK = threading.Lock()


# characters no submit value may carry: a newline ends the command (and could start another)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# a ``$`` that condor_submit would read as the start of a macro: $(name), $ENV(..), $INT(..)...
MACRO_START = re.compile(r"\$(?=[(\[]|[A-Za-z_][A-Za-z0-9_]*\()")
# ``$$(attr)`` is substituted from the matched slot's ad by the schedd, even after $(DOLLAR)
MATCH_TIME_MACRO = "$$("
# where condor_submit's added terms and INK's own terms name what failed, for the user
CLAUSE_HINTS = {
    "FileSystemDomain": "the nodes do not share the submit host's FILESYSTEM_DOMAIN (a pool setting, "
    "see etc/htcondor/README.md)",
    "OpSysAndVer": "no slot runs the chosen OS image",
    "GPUs": "no slot has the GPUs asked for",
    "Memory": "no slot has the memory asked for",
    "Cpus": "no slot has the cores asked for",
    "Disk": "no slot has the scratch disk INK asks for (request_disk)",
}


class SubmitSyntaxError(InvalidSubmission):
    """Text HTCondor's submit language cannot carry faithfully: the caller's request is at fault."""


def submit_text(value: str, what: str) -> str:
    """A literal text as a submit value: each ``$`` that starts a macro escaped as ``$(DOLLAR)``
    so condor_submit expands nothing (``verify_literals`` proves it with the real expansion)."""
    if CONTROL.search(value):
        raise SubmitSyntaxError(
            f"{what}: control characters (newline, tab, ...) cannot be passed to HTCondor"
        )
    if MATCH_TIME_MACRO in value:
        raise SubmitSyntaxError(
            f"{what}: HTCondor would replace '$$(' with a value of the matched slot; avoid '$$('"
        )
    return MACRO_START.sub("$(DOLLAR)", value)


def quote_arguments(args: list[str], what: str = "arguments") -> str:
    """HTCondor's new argument syntax: the whole list in double quotes (inner ones doubled), each
    argument in single quotes (inner ones doubled), every ``$`` escaped."""
    raw = " ".join("'" + submit_text(a, what).replace("'", "''") + "'" for a in args)
    return '"' + raw.replace('"', '""') + '"'


def quote_environment(env: dict[str, str]) -> str:
    """HTCondor's new environment syntax: ``"NAME='value' ..."`` with the same quoting rules."""
    for name in env:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise SubmitSyntaxError(f"environment: {name!r} is not a variable name")
    return quote_arguments([f"{k}={v}" for k, v in env.items()], "environment")


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
        if get("ExitBySignal") is True:
            signal_number = int(get("ExitSignal", 0) or 0)
            # the shell's convention (128 + N), as INK's batch wrapper records it
            return JobStatus(
                JobState.DONE, reason=f"killed by signal {signal_number}", exit_code=128 + signal_number
            )
        exit_code = get("ExitCode")
        if exit_code is None:
            return JobStatus(JobState.DONE, reason="completed (the scheduler gave no exit code)")
        exit_code = int(exit_code)
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
    """The submit description (keys as condor_submit reads them) for one INK job.

    Every text INK or a user chose is a literal: ``$`` escaped, control characters refused,
    arguments and environment in HTCondor's new (double-quoted) syntax. Only the site's
    ``extra`` commands are taken as written, macros and all."""
    env_path = os.path.basename(env_file) if not shared_filesystem else env_file
    log_path = submit_text(spec.log_path or "/dev/null", "log path")
    description = {
        "universe": "vanilla",
        "executable": submit_text(spec.command[0], "command"),
        "transfer_executable": "false",
        "arguments": quote_arguments(spec.command[1:]),
        "environment": quote_environment({"INK_ENV_FILE": env_path}),
        "request_cpus": str(spec.cpus),
        "request_memory": str(spec.memory_mb),
        "request_disk": request_disk,
        "output": log_path,
        "error": log_path,
        "batch_name": submit_text(spec.name, "name"),
        "My.InkApp": submit_text(json.dumps(spec.app), "app"),
        "My.InkUser": submit_text(json.dumps(spec.username), "user"),
        "My.InkServer": submit_text(json.dumps(spec.name), "name"),
        "My.InkWalltime": str(spec.walltime_s),
    }
    if spec.workdir:
        description["initialdir"] = submit_text(spec.workdir, "working folder")
    if spec.gpus:
        description["request_gpus"] = str(spec.gpus)
    if walltime_attribute:
        description[f"My.{walltime_attribute}"] = str(spec.walltime_s)
    else:
        description["periodic_remove"] = WALLTIME_REMOVE
    if spec.container_image:
        description["universe"] = "container"
        description["container_image"] = submit_text(spec.container_image, "image")
        # what the image needs bound in, for the pool's container binds
        # (etc/htcondor/ink-slots.conf: SINGULARITY_BIND_EXPR), as a ClassAd string
        description["My.InkImageBinds"] = submit_text(json.dumps(",".join(spec.image_binds)), "image binds")
    elif spec.opsys:
        description["requirements"] = submit_text(
            f"(TARGET.OpSysAndVer == {json.dumps(spec.opsys)})", "image"
        )
    if spec.accounting_group:
        description["accounting_group"] = submit_text(spec.accounting_group, "accounting group")
        description["accounting_group_user"] = spec.username
    if shared_filesystem:
        description["should_transfer_files"] = "NO"
    else:
        if "," in env_file:
            raise SubmitSyntaxError("log path: a ',' cannot be in a file HTCondor transfers")
        description["should_transfer_files"] = "YES"
        description["when_to_transfer_output"] = "ON_EXIT_OR_EVICT"
        description["transfer_input_files"] = submit_text(env_file, "log path")
    if owner:
        description["My.Owner"] = json.dumps(owner)
    verify_literals(description)
    if spec.array:
        description.update(array_commands(spec.array, description, env_path, log_path))
    description.update(extra or {})
    return description


ITEM = "InkIndex"  # the submit variable an array's items bind (queue InkIndex from ...)
TASK_INDEX_VARIABLE = "INK_TASK_INDEX"  # where a task's runner finds its index


def array_items(array: str) -> list[dict]:
    """The itemdata of ``queue InkIndex from (...)``: one item per task, its index."""
    return [{ITEM: str(index)} for index in parse_array(array).indices]


def array_commands(array: str, description: dict, env_path: str, log_path: str) -> dict:
    """What turns the description into an array, added after the literals were proven (these
    are INK's own macros): each proc's index in its environment, its ad (``InkIndex``, so one
    task can be removed) and its log's name; at most ``%N`` procs in the queue at once
    (``max_materialize``, late materialization)."""
    tasks = parse_array(array)
    environment = quote_environment({"INK_ENV_FILE": env_path})  # "NAME='value'": add one before the quote
    commands = {
        "environment": f"{environment[:-1]} {TASK_INDEX_VARIABLE}=$({ITEM}){environment[-1]}",
        f"My.{ITEM}": f"$({ITEM})",
        "My.InkTasks": str(len(tasks.indices)),
    }
    if description["output"] != "/dev/null":
        root, ext = os.path.splitext(log_path)
        commands["output"] = commands["error"] = f"{root}-$({ITEM}){ext}"
    if tasks.at_once < len(tasks.indices):
        commands["max_materialize"] = str(tasks.at_once)
    return commands


# submit keys whose values INK writes as literals, and what the user calls them
LITERAL_KEYS = {
    "executable": "command",
    "arguments": "arguments",
    "environment": "environment",
    "output": "log path",
    "error": "log path",
    "initialdir": "working folder",
    "batch_name": "name",
    "container_image": "image",
    "accounting_group": "accounting group",
    "transfer_input_files": "log path",
}


def verify_literals(description: dict) -> None:
    """Let the real condor_submit expansion (htcondor2.Submit) prove each literal comes out as
    written; HTCondor re-expands some escaped text (a literal ``$(DOLLAR)``): refuse that."""
    import htcondor2

    submit = htcondor2.Submit(description)
    for key, what in LITERAL_KEYS.items():
        if key in description:
            expected = description[key].replace("$(DOLLAR)", "$")
            if submit.expand(key) != expected:
                raise SubmitSyntaxError(
                    f"{what}: HTCondor's submit language cannot carry this text unchanged "
                    f"({expected[:80]!r}); avoid '$(DOLLAR)'"
                )


def _outside_strings(text: str):
    """(index, character, parentheses open before it) of each character outside string literals."""
    depth, quote, i = 0, None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        else:
            yield i, ch, depth
            depth += {"(": 1, ")": -1}.get(ch, 0)
        i += 1


def requirement_clauses(expression: str) -> list[str]:
    """The top-level ``&&`` terms of a ClassAd expression, nested parentheses opened."""
    text = expression.strip()
    while (
        text.startswith("(")
        and next((i for i, ch, depth in _outside_strings(text) if ch == ")" and depth == 1), -1)
        == len(text) - 1
    ):
        text = text[1:-1].strip()
    parts, start = [], 0
    for i, _, depth in _outside_strings(text):
        if depth == 0 and i >= start and text.startswith("&&", i):
            parts.append(text[start:i].strip())
            start = i + 2
    parts.append(text[start:].strip())
    if len(parts) == 1:
        return parts
    return [clause for part in parts for clause in requirement_clauses(part)]


def explain_idle(job, slots: list) -> str:
    """Why no slot runs an idle job, in one sentence, or empty when every slot could."""
    import classad2

    if not slots:
        return "no slot of the pool is available (the collector lists none)"
    requirements = job.lookup("Requirements") if "Requirements" in job else None
    for clause in requirement_clauses(str(requirements)) if requirements is not None else []:
        probe = classad2.ClassAd(str(job))
        probe["Requirements"] = classad2.ExprTree(clause)
        if not any(slot.matches(probe) for slot in slots):
            hint = next((h for attr, h in CLAUSE_HINTS.items() if attr.lower() in clause.lower()), "")
            sentence = f"no slot meets {clause} (0 of {len(slots)} slots)"
            return f"{sentence}: {hint}" if hint else sentence
    # a.matches(b) evaluates b's Requirements against a
    fitting = [slot for slot in slots if slot.matches(job)]
    if not fitting:
        return f"no single slot meets all of the job's requirements at once ({len(slots)} slots)"
    admitting = [slot for slot in fitting if job.matches(slot)]
    if not admitting:
        return f"the START policy of all {len(fitting)} fitting slots refuses the job"
    busy = [slot for slot in admitting if str(slot.get("State", "Unclaimed")) != "Unclaimed"]
    if len(busy) == len(admitting):
        return f"waiting for a free slot: all {len(admitting)} slots that can run it are busy"
    return ""


class HTCondorBackend(Backend):
    name = "htcondor"
    runs_containers = True  # the container universe (an unpacked image, or a registry's)
    array_index_env = TASK_INDEX_VARIABLE  # queue InkIndex from (...): one proc per task

    schedd_name = Unicode("", config=True, help="Name of the schedd to submit to (empty: the local schedd).")
    collector = Unicode("", config=True, help="Collector (host[:port]) that locates the named schedd.")
    schedd_factory = Unicode(
        "",
        config=True,
        help="Import path of a callable(backend) returning a Schedd-like object (tests, special sites).",
    )
    collector_factory = Unicode(
        "",
        config=True,
        help="Import path of a callable(backend) returning a Collector-like object (tests, special sites).",
    )
    identity = Enum(
        ["kerberos", "owner"],
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
    slot_cache_seconds = Float(
        60,
        config=True,
        help="How long the pool's slot ads (for 'why is my job idle') are reused before asking again.",
    )

    def __init__(self, **kw):
        super().__init__(**kw)
        self._idle = Snapshot(self._fetch_idle, min(self.slot_cache_seconds, 10))
        self._slots: tuple[float, list] = (0.0, [])
        # job constraint -> (when the slot ads it used were fetched, the diagnosis): evaluated
        # once per slot refresh, not at every status poll of a waiting spawn
        self._why: dict[str, tuple[float, str]] = {}

    def connect(self):
        if self.schedd_factory:
            return import_item(self.schedd_factory)(self)
        import htcondor2

        if self.schedd_name:
            collector = htcondor2.Collector(self.collector or None)
            location = collector.locate(htcondor2.DaemonTypes.Schedd, self.schedd_name)
            return htcondor2.Schedd(location)
        return htcondor2.Schedd()

    @classmethod
    def site_defaults(cls, credentials_store: str) -> dict:
        # kerberos identity: the ticket caches the credentials service keeps fresh
        return {"credential_cache": os.path.join(credentials_store, "{username}.ccache")}

    def site_warnings(self, param=None) -> list[str]:
        """The hub host's HTCondor configuration (``htcondor2.param``) against INK's needs."""
        if param is None:
            try:
                import htcondor2
            except ImportError:
                return ["htcondor: the htcondor2 bindings are not installed in INK's environment"]
            param = htcondor2.param
        warnings = []
        if self.shared_filesystem:
            domain = param.get("FILESYSTEM_DOMAIN", "")
            if not domain or domain == param.get("FULL_HOSTNAME", ""):
                warnings.append(
                    f"htcondor: FILESYSTEM_DOMAIN is this host's own name ({domain or 'unset'}); with "
                    "shared_filesystem every INK job requires TARGET.FileSystemDomain == "
                    "MY.FileSystemDomain and stays idle unless the nodes advertise the same value: "
                    "set one FILESYSTEM_DOMAIN pool-wide (etc/htcondor/ink-pool.conf)"
                )
        account = pwd.getpwuid(os.geteuid()).pw_name
        protected = re.split(r"[\s,]+", param.get("PROTECTED_JOB_ATTRS", "").strip().lower())
        missing = [a for a in (*WALLTIME_ATTRS, self.walltime_attribute) if a and a.lower() not in protected]
        if missing:
            warnings.append(
                f"htcondor: PROTECTED_JOB_ATTRS lacks {', '.join(missing)}: a user could lengthen "
                "his own session's walltime with condor_qedit (etc/htcondor/ink-pool.conf)"
            )
        if self.identity == "owner":
            super_users = re.split(r"[\s,]+", param.get("QUEUE_SUPER_USERS", "").strip())
            if account not in super_users:
                warnings.append(
                    f"htcondor: identity owner needs the hub's account {account!r} in QUEUE_SUPER_USERS"
                )
            if not param.get("QUEUE_SUPER_USER_MAY_IMPERSONATE", "").strip():
                warnings.append(
                    "htcondor: identity owner needs QUEUE_SUPER_USER_MAY_IMPERSONATE (a regex of the "
                    "users INK may submit for); without it every spawn is refused"
                )
        else:
            methods = [
                m.upper() for m in re.split(r"[\s,]+", param.get("SEC_CLIENT_AUTHENTICATION_METHODS", ""))
            ]
            if "KERBEROS" not in methods:
                warnings.append(
                    "htcondor: identity kerberos needs KERBEROS in SEC_CLIENT_AUTHENTICATION_METHODS"
                )
            elif any(m in methods[methods.index("KERBEROS") + 1 :] for m in ("FS", "IDTOKENS", "TOKEN")):
                warnings.append(
                    "htcondor: SEC_CLIENT_AUTHENTICATION_METHODS falls back after KERBEROS: a user "
                    f"without a ticket would submit as the hub's account {account!r}"
                )
        return warnings

    def connect_collector(self):
        if self.collector_factory:
            return import_item(self.collector_factory)(self)
        import htcondor2

        return htcondor2.Collector(self.collector or None)

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
            if any(word in lowered for word in ("authenticat", "permission", "denied", "security violation")):
                hint = ""
                if "security violation" in lowered and self.identity == "owner":
                    hint = (
                        " (owner mode needs the hub's account in QUEUE_SUPER_USERS and the user in "
                        "QUEUE_SUPER_USER_MAY_IMPERSONATE)"
                    )
                raise BackendError(
                    f"The HTCondor scheduler refused INK's credentials for this {what}: {text}{hint}"
                ) from None
            if any(word in lowered for word in ("locate", "connect", "unreachable", "communication")):
                raise BackendError(f"The HTCondor scheduler could not be reached: {text}") from None
            raise BackendError(f"HTCondor refused the {what}: {text}") from None

    async def write_env_file(self, spec: JobSpec) -> str:
        """The job's environment as a mode-600 JSON file written by the user, beside its log."""
        base = spec.log_path[:-4] if spec.log_path.endswith(".log") else spec.log_path
        path = base + ".env.json"
        await self.write_private_file(spec.username, path, json.dumps(spec.env), "the job's environment file")
        return path

    async def never_fits(self, spec: JobSpec) -> str:
        """Why no slot of the pool could ever hold the request (cores, memory, GPUs), from the
        collector's slot ads; empty when one could, or when the pool cannot be asked."""
        try:
            slots = await self.pool_slots()
        except Exception as e:  # the schedd decides then; the idle diagnosis explains
            self.log.debug("no slot ads before submit: %s", e)
            return ""
        if not slots:
            return ""

        def size(slot, name: str) -> int:
            values = []
            for key in (f"TotalSlot{name}", f"Total{name}", name):  # partitionable slots: the totals
                try:
                    values.append(int(slot.eval(key)) if key in slot else 0)
                except (TypeError, ValueError):
                    continue
            return max(values, default=0)

        wanted = {"Cpus": spec.cpus, "Memory": spec.memory_mb, "GPUs": spec.gpus}
        if any(all(size(slot, k) >= v for k, v in wanted.items()) for slot in slots):
            return ""
        return never_fits_message(
            spec, "slot of the pool", [(size(slot, "Cpus"), size(slot, "Memory")) for slot in slots]
        )

    async def submit(self, spec: JobSpec) -> str:
        import htcondor2

        refusal = await self.never_fits(spec)
        if refusal:
            raise InvalidSubmission(refusal)
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
        if spec.array:
            items = array_items(spec.array)
            submitting = lambda schedd: schedd.submit(submit, itemdata=iter(items))  # noqa: E731
        else:
            submitting = lambda schedd: schedd.submit(submit, count=1)  # noqa: E731
        result = await self._call("job submission", spec.username, submitting)
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
        if "InkTasks" in ads[0]:  # an array: its procs in the queue, or all in the history
            return await self.array_status(job_id, ads)
        status = status_from_ad(ads[0])
        if status.state == JobState.PENDING and ads[0].get("LastRejMatchReason"):
            why = await self.why_idle(constraint)
            if why:
                status.reason = why
        return status

    async def array_status(self, job_id: str, ads: list) -> JobStatus:
        """An array as one job. With none of its procs running or waiting, it has ended when
        its cluster ad is gone (no procs left to materialize: all ran, or the cluster was
        removed) or when every proc has been queued; otherwise the next ones are on their way
        (late materialization can leave a moment with none in the queue)."""
        import htcondor2

        in_queue = [ad for ad in ads if int(ad.get("JobStatus", 0) or 0) not in (3, 4)]
        if in_queue:
            return array_status([status_from_ad(ad) for ad in in_queue])
        constraint = f"ClusterId == {job_id}"
        # the cluster's own ad stays while it has procs queued or still to materialize
        queued = await self._call(
            "job query",
            None,
            lambda s: s.query(
                constraint=constraint, projection=["ProcId"], opts=htcondor2.QueryOpt.IncludeClusterAd
            ),
        )
        if not any("ProcId" not in ad for ad in queued):
            return JobStatus(JobState.DONE, reason="every task has ended")
        done = await self._call(
            "history query", None, lambda s: s.history(constraint=constraint, projection=["ProcId"], match=-1)
        )
        seen = {int(ad["ProcId"]) for ad in [*done, *queued] if "ProcId" in ad}
        if len(seen) < int(ads[0]["InkTasks"]):
            return JobStatus(JobState.PENDING, reason="the next tasks are being queued (max_materialize)")
        return JobStatus(JobState.DONE, reason="every task has ended")

    async def cancel_task(self, job_id: str, index: int, username: str, folder: str) -> None:
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not an HTCondor cluster id: {job_id!r}")
        import htcondor2

        # a task not materialized yet (max_materialize) finds the mark when it starts
        await super().cancel_task(job_id, index, username, folder)
        constraint = f"ClusterId == {job_id} && {ITEM} == {int(index)}"
        await self._call(
            "removal",
            await self._remover(job_id),
            lambda s: s.act(htcondor2.JobAction.Remove, constraint, reason="stopped from INK"),
        )

    async def pool_slots(self) -> list:
        """The pool's slot ads, reused for ``slot_cache_seconds``."""
        import htcondor2

        fetched, slots = self._slots
        if time.monotonic() - fetched < self.slot_cache_seconds:
            return slots

        def query():
            return self.connect_collector().query(htcondor2.AdTypes.Startd, constraint="true")

        slots = await asyncio.wait_for(asyncio.to_thread(query), self.call_timeout)
        self._slots = (time.monotonic(), list(slots))
        return self._slots[1]

    async def why_idle(self, constraint: str) -> str:
        """HTCondor says only "no match found": find which of the job's requirements no slot
        meets, with classad2, from the job ad and the pool's slot ads. Empty when unknown."""
        try:
            slots = await self.pool_slots()
            fetched = self._slots[0]
            cached = self._why.get(constraint)
            if cached and cached[0] == fetched:  # same slot ads: the same answer, no job query
                return cached[1]
            ads = await self._call("job query", None, lambda s: s.query(constraint=constraint))
        except Exception as e:  # the plain reason is still right; the diagnosis is a bonus
            self.log.debug("no match diagnosis: %s", e)
            return ""
        why = explain_idle(ads[0], slots) if ads else ""
        if len(self._why) > 10_000:
            self._why.clear()
        self._why[constraint] = (fetched, why)
        return why

    async def _fetch_idle(self) -> list[tuple[str, bool]]:
        """The idle jobs (cluster id, whether a negotiation found no slot), in the order the
        schedd offers them: job priority, then submission (user priorities between owners
        are the negotiator's and not shown)."""
        projection = ["ClusterId", "JobPrio", "QDate", "LastRejMatchReason"]
        ads = await self._call(
            "queue query", None, lambda s: s.query(constraint="JobStatus == 1", projection=projection)
        )
        ads = sorted(ads, key=lambda a: (-int(a.get("JobPrio", 0) or 0), int(a.get("QDate", 0) or 0)))
        return [(str(ad.get("ClusterId")), bool(ad.get("LastRejMatchReason"))) for ad in ads]

    async def waiting(self, job_ids: Iterable[str]) -> dict[str, Waiting]:
        idle = await self._idle.get()
        place = {job_id: (i, rejected) for i, (job_id, rejected) in enumerate(idle, 1)}
        answer = {}
        for job_id in job_ids:
            if job_id not in place or not JOB_ID.match(job_id):
                continue
            position, rejected = place[job_id]
            why = await self.why_idle(f"ClusterId == {job_id}") if rejected else ""
            if not why:
                why = (
                    "no slot was free for it at the last negotiation"
                    if rejected
                    else "waiting for the negotiator to match it with a slot"
                )
            answer[job_id] = Waiting(
                reason=why, sentence=why, position=position, waiting=len(idle), where="the queue"
            )
        return answer

    async def set_walltime(self, job_id: str, seconds: int) -> str:
        """Edit the attribute the walltime policy reads, as the hub: with PROTECTED_JOB_ATTRS
        holding it (as INK's site set-up advises) only a queue super user may."""
        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not an HTCondor cluster id: {job_id!r}")
        constraint = f"ClusterId == {job_id}"
        for attr in dict.fromkeys(["InkWalltime", self.walltime_attribute or "InkWalltime"]):
            edited = await self._call(
                "time limit change", None, lambda s, attr=attr: s.edit(constraint, attr, str(int(seconds)))
            )
            if not edited:
                raise BackendError("the job is no longer in HTCondor's queue")
        return job_id

    async def cancel(self, job_id: str) -> None:
        import htcondor2

        if not JOB_ID.match(job_id or ""):
            raise BackendError(f"not an HTCondor cluster id: {job_id!r}")
        # the cluster's id as the job spec: an array's procs not yet materialized go too
        await self._call(
            "removal",
            await self._remover(job_id),
            lambda s: s.act(htcondor2.JobAction.Remove, job_id, reason="stopped from INK"),
        )

    async def _remover(self, job_id: str) -> str | None:
        """Who removes: in Kerberos mode the job's owner with the ticket INK keeps for him (the
        schedd lets an owner remove his jobs), else INK's own identity (None)."""
        if self.identity != "kerberos":
            return None
        ads = await self._call(
            "job query",
            None,
            lambda s: s.query(constraint=f"ClusterId == {job_id}", projection=["Owner"]),
        )
        name = str(ads[0].get("Owner", "")) if ads else ""
        if name and os.path.exists(self.credential_cache.format(username=name)):
            return name
        return None

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
