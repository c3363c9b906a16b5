"""The jobs service (hub-managed, HubOAuth): batch (non-interactive) jobs for scripts and
experiments' own web services, submitted to the site's backend as the calling user (on a
site with several clusters, to the one the request names in ``cluster``, among those the
user's allowances grant).

  POST   api/v1/jobs                 submit (custom:ink:jobs:submit); 201 with the job
  GET    api/v1/jobs                 the caller's jobs, newest first (custom:ink:jobs:read)
  GET    api/v1/jobs/ID              one job: state, node, times, exit code, resource use
  GET    api/v1/jobs/ID/stdout       its output (tail=N for the last N lines), streamed
  GET    api/v1/jobs/ID/stderr       the same for stderr
  DELETE api/v1/jobs/ID              cancel (custom:ink:jobs:submit); 202 with the job
  DELETE api/v1/jobs?session=NAME    cancel every job tied to that session (its Dask workers)
  GET    api/v1/openapi.yaml         this API's OpenAPI 3 description
  GET    metrics                     Prometheus, for tokens with read:metrics

A hub admin's token (admin:users) may add ?user=NAME to act for someone else.
"""

from __future__ import annotations

import asyncio
import json
import keyword
import logging
import os
import pwd
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote

from prometheus_client import Counter
from tornado import httpclient, web

from ink_core import arrays, jobsettings
from ink_core.arrays import ArrayError, parse_array
from ink_core.scopes import JOBS_READ, JOBS_SUBMIT
from ink_spawner.allowances import Allowance, allowance_for_groups, parse_allowance
from ink_spawner.backends.base import (
    Backend,
    BackendError,
    InvalidSubmission,
    JobState,
    run_command,
)
from ink_spawner.clusters import DEFAULT, usable_clusters
from ink_spawner.configurer import credentials_url, hub_db_url, rate_limit, service_records, site_backends
from ink_spawner.images import ImageError, in_image
from ink_spawner.jobspec import JobSpec
from ink_spawner.options import OptionsError, validate_options
from ink_spawner.profiles import ENV_NAME, load_profiles
from ink_spawner.site_schema import with_defaults

from ..app import service_app
from ..auth import HubApi, ServiceHandler, job_server_of, refuse_anonymous
from ..openapi import OpenAPIHandler
from ..process import run_service, service_prefix, start_logging
from ..ratelimit import RateLimiter, check_rate
from ..scopes import acting_user, require_scope
from .records import JobRecord, JobStore, new_job_id
from .usage_history import JobHistory

log = logging.getLogger("ink.jobs")
SUBMITTED = Counter("ink_jobs_submitted_total", "batch jobs submitted", ["outcome"])
FIELDS = {"name", "command", "script", "cpus", "memory", "walltime", "gpus", "image", "experiment"}
FIELDS |= {"env", "output_dir", "session", "notebook", "parameters", "array", "cluster"}
MAX_PARAMETERS = 100
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SESSION = re.compile(r"^[A-Za-z0-9_.-]{0,255}$")  # a hub server name; "" is the default server
MAX_BODY = 512 * 1024
READ_LIMIT = 16 * 1024 * 1024
TAIL_LINES_BYTES = 8 * 1024 * 1024  # ?tail=N reads at most this much of the end of the output
MAX_ARGS, MAX_ARG = 1000, 8192
MAX_ENV, MAX_ENV_VALUE = 200, 32 * 1024
OPENAPI = Path(__file__).with_name("openapi.yaml")


class SpecError(ValueError):
    pass


def check_request(body) -> dict:
    """The submission's own fields (resources are checked against the user's limits later)."""
    if not isinstance(body, dict):
        raise SpecError("expected a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise SpecError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(FIELDS))})")
    if sum(k in body for k in ("command", "script", "notebook")) != 1:
        raise SpecError(
            "command: give one of command (a list of arguments), script (text) or notebook (a path)"
        )
    if "parameters" in body and "notebook" not in body:
        raise SpecError("parameters: only for a notebook")
    if "notebook" in body:
        notebook = body["notebook"]
        if not isinstance(notebook, str) or not notebook.endswith(".ipynb") or not home_relative(notebook):
            raise SpecError(
                "notebook: expected the path of a .ipynb inside your home, e.g. analysis/fit.ipynb"
            )
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict) or len(parameters) > MAX_PARAMETERS:
            raise SpecError(f"parameters: expected an object of at most {MAX_PARAMETERS} name: value pairs")
        for key in parameters:
            if not key.isidentifier() or keyword.iskeyword(key) or key.startswith("_"):
                raise SpecError(f"parameters: {key!r} is not a Python variable name")
        if len(json.dumps(parameters)) > MAX_ARG:
            raise SpecError(f"parameters: at most {MAX_ARG} characters as JSON (pass a file's path for more)")
    elif "command" in body:
        command = body["command"]
        if not isinstance(command, list) or not command or len(command) > MAX_ARGS:
            raise SpecError(f"command: expected a list of 1 to {MAX_ARGS} arguments")
        if not all(isinstance(a, str) and 0 < len(a) <= MAX_ARG and "\x00" not in a for a in command):
            raise SpecError("command: every argument must be non-empty text without NUL bytes")
    else:
        script = body["script"]
        if not isinstance(script, str) or not script.strip() or "\x00" in script:
            raise SpecError("script: expected the script's text")
    name = body.get("name", "job")
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError("name: expected 1-64 letters, digits, '.', '_' or '-'")
    env = body.get("env", {})
    if not isinstance(env, dict) or len(env) > MAX_ENV:
        raise SpecError(f"env: expected an object of at most {MAX_ENV} NAME: value pairs")
    for key, value in env.items():
        if not ENV_NAME.match(key) or key.startswith(("INK_", "JUPYTERHUB_")):
            raise SpecError(f"env: {key!r} is not a variable name you may set")
        if not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise SpecError(f"env.{key}: expected text of at most {MAX_ENV_VALUE} characters")
    output_dir = body.get("output_dir", "ink-jobs")
    if not home_relative(output_dir):
        raise SpecError("output_dir: expected a folder inside your home, e.g. ink-jobs/fits")
    session = body.get("session")
    if session is not None and not (isinstance(session, str) and SESSION.match(session)):
        raise SpecError("session: expected the name of one of your servers ('' for the default one)")
    array = None
    if "array" in body:
        if "notebook" in body:
            raise SpecError("array: for command and script jobs (a notebook sweeps its parameters)")
        try:
            array = parse_array(body["array"])
        except ArrayError as e:
            raise SpecError(str(e)) from None
    return {"name": name, "env": env, "output_dir": output_dir, "session": session, "array": array}


def home_relative(path) -> bool:
    """A relative path that stays inside the home it is joined to (no '..', '.', empty parts)."""
    if not isinstance(path, str) or path.startswith("/") or "\x00" in path or len(path) > 4096:
        return False
    return all(p not in ("", ".", "..") for p in path.split("/"))


class Submitter:
    """Turns a request into a JobSpec for the site's backend, within the user's allowance."""

    def __init__(self, backends: dict[str, Backend], site, job_python: str):
        self.backends = backends
        self.site = site
        self.job_python = job_python
        self.default_allowance = parse_allowance(site.default_allowance or None)
        self.credentials_url = credentials_url(site)

    def profiles(self):
        return load_profiles(self.site.profiles_dir)

    def allowance(self, groups: list, cluster: str = DEFAULT) -> Allowance:
        return allowance_for_groups(groups, self.default_allowance, cluster=cluster)

    def clusters(self, groups: list):
        """(usable, known) for validate_options on a site with several clusters; None with one."""
        if "clusters" not in self.site.raw:
            return None
        return usable_clusters(self.backends, groups, self.default_allowance), list(self.backends)

    async def spec(
        self, user: str, body: dict, groups: list, job_id: str, session_token: str = ""
    ) -> tuple[JobSpec, dict]:
        """``session_token``: the token of the user's running session that submits the job (its
        Dask workers, a notebook's jobs); the job then gets the session's Kerberos ticket, kept
        fresh by the same agent as the session's. A laptop's or a browser's request gets none."""
        own = check_request(body)
        options = {
            k: body[k]
            for k in ("cpus", "memory", "walltime", "gpus", "image", "experiment", "cluster")
            if k in body
        }
        clusters = self.clusters(groups)
        choice = validate_options(
            options, self.profiles(), self.allowance(groups), [g.name for g in groups], clusters
        )
        allowance = self.allowance(groups, choice.cluster)
        backend = self.backends[choice.cluster]
        try:
            home = pwd.getpwnam(user).pw_dir
        except KeyError:
            raise SpecError(f"there is no account {user!r} on the cluster") from None
        folder = os.path.join(home, own["output_dir"], job_id)
        log_path = os.path.join(folder, "scheduler.log")
        await backend.prepare_log_dir(user, log_path)
        if "notebook" in body:
            notebook = os.path.join(home, body["notebook"])
            executed = os.path.join(folder, os.path.basename(notebook))
            parameters = json.dumps(body.get("parameters", {}))
            runner = [self.job_python, "-m", "ink_spawner.jobscript.notebook"]
            command = [*runner, notebook, executed, "--parameters", parameters]
        elif "script" in body:
            script = os.path.join(folder, "job.sh")
            argv = backend.as_user(
                user, [self.job_python, "-m", "ink_spawner.jobscript.private_file", script]
            )
            code, _, err = await run_command(
                argv, stdin=body["script"], timeout=30, what="writing the script"
            )
            if code != 0:
                raise BackendError(f"cannot write the job's script: {err.strip()[:200]}")
            command = ["/bin/bash", script]
        else:
            command = list(body["command"])
        runner, array = ["--dir", folder], own["array"]
        if array is not None:
            if backend.array_index_env is None:
                raise SpecError(f"array: the {backend.name} backend runs no job arrays yet")
            if backend.array_index_env:  # the scheduler's own arrays
                runner += ["--index-from", backend.array_index_env]
            else:  # the runner runs the tasks in one job, as many at once as the allowance's cores
                array = array.bounded(max(1, allowance.max_cpus // choice.cpus))
                runner += ["--tasks", str(array)]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "USER": user,
            "LANG": "C.UTF-8",
            "INK_JOB_ID": job_id,
            **choice.image.env,
            **(choice.experiment.env if choice.experiment else {}),
            **own["env"],
        }
        if choice.experiment and choice.experiment.kernels_path:  # its kernels, as in a session
            env["JUPYTER_PATH"] = choice.experiment.kernels_path
        ticket = bool(session_token and self.credentials_url)
        settings = jobsettings.JobSettings(
            image=choice.image.name,
            experiment=choice.experiment.name if choice.experiment else "",
            cluster=choice.cluster if clusters is not None else "",
            setup=[
                s for s in (choice.image.setup, choice.experiment.setup if choice.experiment else "") if s
            ],
            # for the runner's ticket agent only; the command does not see it, nor the token
            credentials_url=self.credentials_url if ticket else "",
        )
        env.update(jobsettings.to_env(settings))
        if ticket:
            env["JUPYTERHUB_API_TOKEN"] = session_token
        try:  # inside the image the user picked, on every backend
            job_command = in_image(
                choice.image,
                backend,
                self.job_python,
                [self.job_python, "-m", "ink_spawner.jobscript.batch", *runner, "--", *command],
            )
        except ImageError as e:
            raise SpecError(str(e)) from None
        spec = JobSpec(
            username=user,
            name=f"ink-batch-{own['name']}",
            app="batch",
            command=job_command,
            array=str(array) if array is not None and backend.array_index_env else "",
            env=env,
            workdir=home,
            log_path=log_path,
            **choice.spec_fields(),
        )
        facts = {
            "name": own["name"],
            "command": command,
            "output_dir": folder,
            "resources": choice.to_options(),
            "env_names": sorted(own["env"]),
            "session": own["session"],
            "notebook": executed if "notebook" in body else "",
            "array": str(array) if array is not None else "",
            "ticket": ticket,
            "cluster": choice.cluster,
        }
        return spec, facts


class Group:
    def __init__(self, name, properties):
        self.name, self.properties = name, properties


class BaseHandler(HubApi, ServiceHandler):
    def prepare(self):
        if len(self.request.body or b"") > MAX_BODY:
            raise web.HTTPError(413, f"the request is larger than {MAX_BODY // 1024} KB")
        refuse_anonymous(self)
        check_rate(self)

    def backend(self, record: JobRecord) -> Backend:
        """The backend of the record's cluster (503 when the site no longer has it)."""
        return backend_of(self.settings["backends"], record)

    @property
    def store(self) -> JobStore:
        return self.settings["store"]

    @property
    def job_history(self) -> JobHistory:
        return self.settings["tracker"].history

    def target_user(self) -> str:
        return acting_user(self)

    async def groups_of(self, user: str) -> list[Group]:
        try:
            model = await self.hub_get(f"users/{quote(user, safe='')}")
        except httpclient.HTTPClientError as e:
            if e.code == 404:
                raise web.HTTPError(404, f"the hub has no user {user!r}") from None
            raise
        groups = []
        for name in model.get("groups") or []:
            group = await self.hub_get(f"groups/{quote(name, safe='')}")
            groups.append(Group(name, group.get("properties") or {}))
        return groups

    def record(self, user: str, job_id: str) -> JobRecord:
        record = self.store.get(user, job_id)
        if record is None:
            raise web.HTTPError(404, f"you have no job {job_id!r}")
        return record

    async def cancel(self, record: JobRecord) -> None:
        """Ask the scheduler to end a job, remembering it was asked (its end reads "cancelled")."""
        record.cancel_requested = True
        self.store.save(record)
        await self.backend(record).cancel(record.backend_id)

    async def refresh(self, record: JobRecord) -> JobRecord:
        return await self.settings["tracker"].refresh(record)


class JobTracker:
    """Brings job records up to date from the scheduler and the jobs' own notes, when their
    owner looks and in a sweep of its own (so that ends reach the usage history unlooked-at)."""

    def __init__(self, backends: dict[str, Backend], store: JobStore, history: JobHistory):
        self.backends, self.store, self.history = backends, store, history

    async def sweep(self) -> None:
        for record in self.store.unfinished():
            try:
                await self.refresh(record)
            except Exception:  # one odd record does not stop the others
                log.exception("job %s of %s: not refreshed", record.id, record.user)

    async def refresh(self, record: JobRecord) -> JobRecord:
        """Bring a record up to date from the scheduler and the job's own notes."""
        if record.final:
            return record
        try:
            backend = backend_of(self.backends, record)
            status = await backend.status(record.backend_id)
        except BackendError as e:
            record.reason = str(e)
            return record
        except web.HTTPError as e:
            record.reason = e.log_message
            return record
        if record.array:
            return await self.refresh_array(record, status, backend)
        # the job's own record, capped: the user writes it
        notes = await backend.read_record(record.user, os.path.join(record.output_dir, "ink-job.json"))
        record.node = status.host or notes.get("host", record.node)
        record.reason = status.reason
        record.started = notes.get("started", record.started)
        if status.state == JobState.DONE:
            record.ended = notes.get("ended") or time.time()
            record.exit_code = notes.get("exit_code", status.exit_code)
            if notes.get("signal"):
                record.reason = f"killed by signal {notes['signal']}"
            if record.cancel_requested:
                record.state = "cancelled"
            elif record.exit_code == 0:
                record.state = "completed"
            else:
                record.state = "failed"
            record.usage = {k: notes[k] for k in ("cpu_s", "max_rss_bytes") if k in notes}
        else:
            record.state = {
                JobState.PENDING: "pending",
                JobState.RUNNING: "running",
                JobState.HELD: "held",
            }.get(status.state, "unknown")
        self.history.follow(record)
        self.store.save(record)
        return record

    async def refresh_array(self, record: JobRecord, status, backend: Backend) -> JobRecord:
        """An array: the scheduler says whether any task is still active, each task's own
        record what it did."""
        ended = status.state == JobState.DONE
        notes = await backend.read_records(record.user, record.output_dir, "ink-job.json")
        record.tasks = task_rows(
            parse_array(record.array).indices, notes, ended, record.cancel_requested, record.cancelled_tasks
        )
        states = {t["state"] for t in record.tasks}
        record.node = ",".join(
            sorted({t["node"] for t in record.tasks if t["state"] == "running" and t["node"]})
        )
        record.reason = status.reason
        started = [n.get("started") for n in notes if isinstance(n.get("started"), int | float)]
        record.started = min(started) if started else record.started
        if not ended:
            record.state = "running" if "running" in states or status.state == JobState.RUNNING else "pending"
        else:
            record.ended = time.time()
            if record.cancel_requested:
                record.state = "cancelled"
            else:
                # tasks the user cancelled one by one do not fail the array
                record.state = "completed" if states <= {"completed", "cancelled"} else "failed"
            record.exit_code = 0 if record.state == "completed" else 1
            record.usage = array_usage(notes)
        self.history.follow(record)
        self.store.save(record)
        return record


TASK_STATES = ("pending", "running", "completed", "failed", "cancelled")


def array_usage(notes: list[dict]) -> dict:
    """An array's usage from its tasks' records: CPU time and run time summed, the largest
    peak memory (plain numbers only: the user writes them)."""

    def number(note, key):
        value = note.get(key)
        return float(value) if isinstance(value, int | float) and value >= 0 else None

    cpu_s = run_s = 0.0
    rss = []
    for note in notes:
        started, ended = number(note, "started"), number(note, "ended")
        if started is not None and ended is not None and ended >= started:
            run_s += ended - started
        cpu_s += number(note, "cpu_s") or 0.0
        if number(note, "max_rss_bytes") is not None:
            rss.append(number(note, "max_rss_bytes"))
    usage = {"cpu_s": round(cpu_s, 3), "run_s": round(run_s, 3)}
    if rss:
        usage["max_rss_bytes"] = max(rss)
    return usage


def task_rows(
    indices, notes: list[dict], ended: bool, cancelled: bool, cancelled_tasks: list[int] = ()
) -> list[dict]:
    """Each task of an array from its own ink-job.json (the user writes them: only known
    indices and plain values are kept); a task without one has not started, or never will.
    ``cancelled_tasks``: cancelled one by one; unless they had completed, that is their state."""
    by_index = {}
    for note in notes:
        if isinstance(note.get("index"), int) and note["index"] in indices:
            by_index[note["index"]] = note
    rows = []
    for index in indices:
        note = by_index.get(index, {})
        exit_code = note.get("exit_code") if isinstance(note.get("exit_code"), int) else None
        if exit_code is not None:
            state = "completed" if exit_code == 0 else "failed"
        elif note and not ended:
            state = "running"
        elif ended:
            state = "cancelled" if cancelled else "failed"
        else:
            state = "pending"
        if index in cancelled_tasks and state != "completed":
            state = "cancelled"
        node = note.get("host") if isinstance(note.get("host"), str) else ""
        rows.append({"index": index, "state": state, "node": node[:255], "exit_code": exit_code})
    return rows


PRIVATE_FIELDS = ("cancel_requested", "history_id", "history_written")


def job_model(record: JobRecord) -> dict:
    model = {k: v for k, v in record.__dict__.items() if k not in PRIVATE_FIELDS}
    if record.array:
        model["task_counts"] = {
            state: sum(t["state"] == state for t in record.tasks) for state in TASK_STATES
        }
    return model


class JobsHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        require_scope(self, JOBS_READ)
        user = self.target_user()
        state = self.get_argument("state", "")
        records = self.store.of_user(user)
        records = await asyncio.gather(*(self.refresh(r) for r in records))
        jobs = [job_model(r) for r in records if not state or r.state == state]
        self.finish({"user": user, "jobs": jobs})

    @web.authenticated
    async def post(self):
        require_scope(self, JOBS_SUBMIT)
        user = self.target_user()
        body = self.json_body()
        job_id = new_job_id()
        try:
            groups = await self.groups_of(user)
            submitter = self.settings["submitter"]
            spec, facts = await submitter.spec(user, body, groups, job_id, self.session_token(user))
            cluster = facts["cluster"]
            await self.check_batch_limits(
                user, submitter.allowance(groups, cluster), spec.cpus, arrays.at_once(facts["array"]), cluster
            )
            backend = self.settings["backends"][cluster]
            backend_id = await backend.submit(spec)
        except (SpecError, OptionsError, InvalidSubmission) as e:
            SUBMITTED.labels("refused").inc()
            raise web.HTTPError(400, str(e)) from None
        except BackendError as e:
            SUBMITTED.labels("failed").inc()
            raise web.HTTPError(503, f"the scheduler refused the job: {e}") from None
        record = JobRecord(
            id=job_id,
            user=user,
            backend=backend.name,
            backend_id=backend_id,
            submitted=time.time(),
            image=spec.image,
            experiment=spec.experiment,
            **facts,
        )
        self.job_history.submitted(record, spec)
        self.store.save(record)
        SUBMITTED.labels("submitted").inc()
        log.info("job %s (%s %s on %s) submitted for %s", job_id, backend.name, backend_id, cluster, user)
        self.set_status(201)
        self.finish(job_model(record))

    def session_token(self, user: str) -> str:
        """The caller's token when it is a running session of ``user`` itself (not an admin
        acting for someone, not a laptop's token, not a browser's cookie)."""
        if user != self.current_user["name"] or job_server_of(self) is None:
            return ""
        return self.request.headers["Authorization"].split(None, 1)[1].strip()

    async def check_batch_limits(
        self, user: str, allowance: Allowance, cpus: int, at_once: int = 1, cluster: str = DEFAULT
    ) -> None:
        """The allowance's batch limits on ``cluster``: jobs (an array: the tasks it may run at
        once) and cores pending or running at once there. Counted from the records as they are; only when that
        count is over a limit are the active ones asked of the scheduler (some may have ended),
        so a Dask cluster's scale(20) does not query the scheduler 20 times per worker."""
        if not (allowance.max_batch_jobs or allowance.max_batch_cpus):
            return

        def over(active) -> str:
            jobs, in_use = sum(r.at_once for r in active), sum(r.cpus_at_once for r in active)
            what = f"this array runs up to {at_once} at once" if at_once > 1 else "this is one more"
            if allowance.max_batch_jobs and jobs + at_once > allowance.max_batch_jobs:
                return (
                    f"you may have at most {allowance.max_batch_jobs} batch jobs pending or running "
                    f"at a time, and {jobs} are ({what}): wait for some to end, cancel them, or "
                    "give the array a %N limit"
                )
            if allowance.max_batch_cpus and in_use + cpus * at_once > allowance.max_batch_cpus:
                return (
                    f"you may use at most {allowance.max_batch_cpus} cores in batch jobs at a time: "
                    f"{in_use} are in use or asked for, and this asks for {cpus * at_once}"
                )
            return ""

        active = [r for r in self.store.of_user(user) if not r.final and r.cluster == cluster]
        if over(active):
            active = [r for r in await asyncio.gather(*(self.refresh(r) for r in active)) if not r.final]
            refusal = over(active)
            if refusal:
                raise SpecError(refusal)

    @web.authenticated
    async def delete(self):
        """Cancel every job of one session (``?session=NAME``): the session's end calls it."""
        require_scope(self, JOBS_SUBMIT)
        user = self.target_user()
        session = self.get_argument("session", None)
        if session is None or not SESSION.match(session):
            raise web.HTTPError(400, "session: expected the name of one of your servers ('' for the default)")
        mine = [r for r in self.store.of_user(user) if not r.final and r.session == session]

        async def cancel(record: JobRecord) -> str:
            try:
                await self.cancel(record)
                return record.id
            except BackendError as e:
                log.warning("job %s of %s's session %r: cancel failed: %s", record.id, user, session, e)
                return ""

        cancelled = [job_id for job_id in await asyncio.gather(*map(cancel, mine)) if job_id]
        log.info("cancelled %d jobs of %s's session %r", len(cancelled), user, session)
        self.set_status(202)
        self.finish({"user": user, "session": session, "cancelled": cancelled})


class JobHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id):
        require_scope(self, JOBS_READ)
        record = await self.refresh(self.record(self.target_user(), job_id))
        self.finish(job_model(record))

    @web.authenticated
    async def delete(self, job_id):
        require_scope(self, JOBS_SUBMIT)
        record = self.record(self.target_user(), job_id)
        if self.get_argument("task", None) is not None:
            return await self.cancel_task(record)
        if not record.final:
            try:
                await self.cancel(record)
            except BackendError as e:
                raise web.HTTPError(503, f"the scheduler did not cancel the job: {e}") from None
            record = await self.refresh(record)
        self.set_status(202)
        self.finish(job_model(record))

    async def cancel_task(self, record: JobRecord) -> None:
        """``?task=N``: one task of an array; the others go on."""
        index = task_index(record, self.get_argument("task"))
        record = await self.refresh(record)
        row = next(t for t in record.tasks if t["index"] == index) if record.tasks else None
        if record.final or (row and row["state"] in ("completed", "failed", "cancelled")):
            raise web.HTTPError(409, f"task {index} has already ended")
        record.cancelled_tasks = sorted({*record.cancelled_tasks, index})
        self.store.save(record)
        try:
            await self.backend(record).cancel_task(record.backend_id, index, record.user, record.output_dir)
        except BackendError as e:
            record.cancelled_tasks.remove(index)
            self.store.save(record)
            raise web.HTTPError(409, f"task {index} was not cancelled: {e}") from None
        log.info("job %s: task %s cancelled for %s", record.id, index, record.user)
        self.set_status(202)
        self.finish(job_model(await self.refresh(record)))


def task_index(record: JobRecord, task: str) -> int:
    """``task`` as one of the array's indices (400 otherwise)."""
    if not record.array:
        raise web.HTTPError(400, "task: this job is not an array")
    if not task.isdigit() or int(task) not in parse_array(record.array).indices:
        raise web.HTTPError(400, f"task: expected one of the array's indices ({record.array})")
    return int(task)


class OutputHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id, stream):
        require_scope(self, JOBS_READ)
        record = self.record(self.target_user(), job_id)
        folder = record.output_dir
        task = self.get_argument("task", "")
        if task or record.array:  # an array: one task's output
            folder = os.path.join(folder, str(task_index(record, task)))
        path = os.path.join(folder, f"{stream}.log")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        tail = self.get_argument("tail", "")
        if tail:
            if not tail.isdigit() or not 0 < int(tail) <= 100_000:
                raise web.HTTPError(400, "tail: expected a number of lines, 1 to 100000")
            self.finish(
                await self.backend(record).log_tail(record.user, path, int(tail), max_bytes=TAIL_LINES_BYTES)
            )
            return
        # the whole output, streamed as the user reads it (never whole in memory)
        proc = await asyncio.create_subprocess_exec(
            *self.backend(record).as_user(record.user, ["cat", "--", path]),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            while chunk := await proc.stdout.read(1024 * 1024):
                self.write(chunk)
                await self.flush()
        finally:
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
            await proc.wait()


def backend_of(backends: dict[str, Backend], record: JobRecord) -> Backend:
    backend = backends.get(record.cluster)
    if backend is None:
        raise web.HTTPError(503, f"the site has no cluster {record.cluster!r} any more")
    return backend


def make_app(
    backends: dict[str, Backend],
    site,
    prefix: str,
    store: JobStore,
    job_python: str,
    limiter,
    job_history=None,
) -> web.Application:
    return service_app(
        prefix,
        [
            ("api/v1/jobs", JobsHandler),
            ("api/v1/jobs/(j[0-9]{8}-[0-9a-f]{8})", JobHandler),
            ("api/v1/jobs/(j[0-9]{8}-[0-9a-f]{8})/(stdout|stderr)", OutputHandler),
            ("api/v1/openapi.yaml", OpenAPIHandler, {"path": OPENAPI}),
        ],
        backends=backends,
        submitter=Submitter(backends, site, job_python),
        store=store,
        tracker=JobTracker(backends, store, job_history or JobHistory("")),
        rate_limiter=limiter,
    )


def main(argv=None):
    """The service, on its own section of the site file (INK_CONFIG)."""
    start_logging("ink-jobs")
    site, backends = site_backends()
    job_python = site.spawner.get("job_python") or sys.executable
    store = JobStore(service_records(site, "jobs"))
    settings = with_defaults("jobs", site.raw.get("jobs"))
    app = make_app(
        backends,
        site,
        service_prefix("ink-jobs"),
        store,
        job_python,
        RateLimiter(*rate_limit(site)),
        JobHistory(hub_db_url(site)),
    )
    tracker = app.settings["tracker"]

    async def sweep():
        while settings["sweep_interval"]:
            await asyncio.sleep(settings["sweep_interval"])
            await tracker.sweep()

    # bodies up to READ_LIMIT are read and answered (413 past MAX_BODY); larger ones are cut off
    run_service(
        app,
        log,
        settings["port"],
        READ_LIMIT,
        background=[sweep],
        about=" (" + ", ".join(f"{n}: {b.name}" for n, b in backends.items()) + ")",
    )
