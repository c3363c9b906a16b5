"""InkSpawner: spawn menu -> validated Choice -> JobSpec -> batch backend, with progress."""

from __future__ import annotations

import asyncio
import functools
import html
import json
import os
import pwd
import sys
import time
from pathlib import Path

import jinja2
from jupyterhub.spawner import Spawner
from jupyterhub.utils import url_path_join
from sqlalchemy.orm import object_session
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httputil import url_concat
from traitlets import Bool, Dict, Float, Instance, Integer, List, Unicode, default
from traitlets.utils.importstring import import_item

from ink_core import jobsettings
from ink_core.units import format_duration_human, format_memory

from . import history
from .accounts import SystemAccountRefused, check_not_system
from .allowances import Allowance, allowance_for_groups, parse_allowance
from .backends import Backend, BackendError, InvalidSubmission, JobState, backend_path
from .clusters import DEFAULT, Cluster, make_backend, usable_clusters
from .culling import idle_limit
from .hubapi import ROUTE
from .images import ImageError, in_image, runs_on
from .jobspec import JobSpec
from .options import Choice, OptionsError, allowed_experiments, unpack_form, validate_options
from .profiles import Profiles, load_profiles

_BACKENDS: dict[tuple, Backend] = {}
HERE = Path(__file__).resolve().parent


@functools.cache
def cached_profiles(directory: str) -> Profiles:
    return load_profiles(directory)


@functools.cache
def form_template(directory: str) -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory), autoescape=True)
    return env.get_template("ink_spawn_form.html")


def _apply_user_options(spawner, user_options):
    """JupyterHub's hook for both the form and the REST API: one validation, 400 on refusal."""
    try:
        spawner.choice = spawner.validate(user_options)
    except OptionsError as e:
        raise web.HTTPError(400, str(e)) from None
    spawner.user_options = spawner.choice.to_options()


class InkSpawner(Spawner):
    backend = Unicode(
        "local",
        config=True,
        help="Batch system: 'local', 'slurm', or an import path of a Backend subclass.",
    )
    clusters = Dict(
        config=True,
        help="""Several batch systems in one hub: name -> {"title", "type", "options"} (the site
        YAML's clusters:). Empty: the one `backend`, its options its class's configuration.""",
    )
    profiles_dir = Unicode(
        config=True, help="Folder holding apps.yaml, resources.yaml, images.yaml, experiments/."
    )
    form_template_dir = Unicode(config=True, help="Folder holding ink_spawn_form.html.")
    default_allowance = Dict(
        config=True,
        help="""What every user may run, before their groups' allowances are added
        (same fields as a group's `ink` property).""",
    )
    job_ip = Unicode(
        "",
        config=True,
        help="""Address the job's server binds to and reports. Empty: the node's own address
        (multi-node clusters). 127.0.0.1 when hub and jobs share one machine.""",
    )
    job_python = Unicode(
        sys.executable, config=True, help="Python (with INK installed) that runs the job wrapper."
    )
    log_dir = Unicode(
        "{home}/.ink/logs",
        config=True,
        help="Folder for each job's log, writable by the user on the node; {home}, {username} expand.",
    )
    hub_callback_url = Unicode(
        "", config=True, help="Hub API URL as the job reaches it (empty: the hub's own API URL)."
    )
    credentials_url = Unicode(
        "",
        config=True,
        help="URL of the credentials service's ticket endpoint as jobs reach it (empty: no ticket delivery).",
    )
    monitor_url = Unicode(
        "", config=True, help="Dashboard endpoint the job's agent sends resource samples to (empty: none)."
    )
    jobs_api_url = Unicode(
        "",
        config=True,
        help="""The jobs service's api/v1/jobs as the hub reaches it: a session's end cancels the
        batch jobs tied to it (its Dask workers). Empty: none are.""",
    )
    client_hub_url = Unicode(
        "",
        config=True,
        help="The hub's URL as jobs reach it, for INK's Python client in a session (INK_HUB).",
    )
    monitor_interval = Float(5, config=True, help="Seconds between the job's resource samples.")
    status_interval = Float(1.0, config=True, help="Seconds between scheduler queries while a job starts.")
    history_db_url = Unicode(
        "", config=True, help="Database of the session history (the hub's db_url; empty: no history)."
    )
    idle_timeouts = Dict(
        config=True,
        help="""The site's idle timeouts as the culler gets them ({"default": s, "apps": {app: s}}),
        to say why a session was stopped.""",
    )
    log_tail_lines = Integer(20, config=True, help="Lines of the job's log shown when a start fails.")
    server_command = List(
        Unicode(),
        config=True,
        help="The single-user server command the wrapper runs (default: jupyterhub-singleuser of job_python).",
    )

    choice = Instance(Choice, allow_none=True)
    job_id = Unicode("")
    job_cluster = Unicode(DEFAULT)  # the cluster the job runs on (clusters.py)
    job_log = Unicode("")
    job_host = Unicode("")  # where the job reported from
    job_node = Unicode("")  # the scheduler's name for the node (the dashboard shows it)
    job_walltime = Integer(0)  # the job's time limit in seconds from its start (Extend raises it)
    job_usage = Unicode("")  # the monitor agent's usage summary (beside the log)
    record_id = Integer(0)  # this session's row in ink_sessions (history.py); 0 once it is closed
    # False from submit until the job reported: a job found in that phase after a hub
    # restart is an interrupted start, cancelled rather than left queued forever
    job_reported_ok = Bool(False)

    @default("server_command")
    def _default_server_command(self):
        return [self.job_python, "-m", "jupyterhub.singleuser"]

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_user_options

    @default("start_timeout")
    def _default_start_timeout(self):
        return 600  # a batch job may queue

    @default("http_timeout")
    def _default_http_timeout(self):
        return 120

    @default("options_form")
    def _default_options_form(self):
        return lambda spawner: spawner.render_form()

    @default("form_template_dir")
    def _default_form_template_dir(self):
        return str(HERE.parent / "templates")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._events: list[dict] = []
        self._report: asyncio.Future | None = None
        self._started_recorded = False
        self._submitted_at = time.monotonic()

    # --- who may run what -------------------------------------------------

    @property
    def profiles(self) -> Profiles:
        return cached_profiles(self.profiles_dir)

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.user.groups]

    @property
    def cluster_names(self) -> list[str]:
        return list(self.clusters) or [DEFAULT]

    def usable_clusters(self) -> dict[str, Allowance]:
        """The clusters this user may run an application on, each with what they may do there."""
        default = parse_allowance(self.default_allowance or None)
        return usable_clusters(self.cluster_names, self.user.groups, default)

    def allowance_on(self, cluster: str) -> Allowance:
        default = parse_allowance(self.default_allowance or None)
        return allowance_for_groups(self.user.groups, default, cluster=cluster)

    @property
    def allowance(self) -> Allowance:
        """What the user may do on the cluster of the session (the first one before a start)."""
        return self.allowance_on(
            self.job_cluster if self.job_cluster in self.cluster_names else self.cluster_names[0]
        )

    def validate(self, options) -> Choice:
        clusters = (self.usable_clusters(), self.cluster_names) if self.clusters else None
        return validate_options(options, self.profiles, self.allowance, self.group_names, clusters)

    def options_from_form(self, formdata):
        options = unpack_form(formdata)
        self.validate(options)  # refuse early: the form is shown again with the message
        return options

    def render_form(self) -> str:
        profiles = self.profiles
        usable = self.usable_clusters() if self.clusters else {DEFAULT: self.allowance}

        def limits_of(allowance: Allowance) -> dict:
            return {
                "cpus": min(allowance.max_cpus, profiles.ceiling.cpus),
                "memory_mb": min(allowance.max_memory_mb, profiles.ceiling.memory_mb),
                "walltime_s": min(allowance.max_walltime_s, profiles.ceiling.walltime_s),
                "gpus": min(allowance.max_gpus, profiles.ceiling.gpus),
            }

        # what each cluster the user may use allows (the form shows the chosen one's)
        choices = [
            {
                "name": name,
                "title": (self.clusters.get(name) or {}).get("title") or name,
                "apps": [a for a in profiles.apps if allowance.allows_app(a)],
                "images": [
                    i
                    for i, image in profiles.images.items()
                    if allowance.allows_image(i) and runs_on(image, self.backend_for(name))
                ],
                "limits": limits_of(allowance),
            }
            for name, allowance in usable.items()
        ]
        apps = [a for a in profiles.apps.values() if any(a.name in c["apps"] for c in choices)]
        images = [i for i in profiles.images.values() if any(i.name in c["images"] for c in choices)]
        first = next(iter(usable.values()), self.allowance)
        limits = limits_of(first)
        return form_template(self.form_template_dir).render(
            clusters=choices if self.clusters else [],
            apps=apps,
            hints=self.right_sizing(apps, limits["memory_mb"]),
            images=images,
            default_image=profiles.default_image,
            experiments=allowed_experiments(profiles, self.group_names),
            presets=profiles.presets,
            limits=limits,
            defaults=profiles.defaults,
            format_memory=format_memory,
            format_duration=format_duration_human,
        )

    def right_sizing(self, apps, max_memory_mb: int) -> dict:
        """Per app, what the user's recent sessions used and the memory that would do."""
        found = self._history("no right-sizing hints", lambda db: history.hints(db, self.user.name), {})
        answer = {}
        for app in apps:
            hint = found.get(app.name)
            if hint is not None:
                memory = min(hint.suggest_memory_mb, max_memory_mb)
                hint.suggest_memory_mb = memory
                answer[app.name] = {"text": hint.text(app.display_name), "memory": format_memory(memory)}
        return answer

    # --- the backend --------------------------------------------------------

    @property
    def backend_impl(self) -> Backend:
        """The backend of the session's cluster."""
        return self.backend_for(self.job_cluster)

    def backend_for(self, cluster: str) -> Backend:
        if not self.clusters:  # the one backend, configured through its class
            key = (DEFAULT, backend_path(self.backend), id(self.config))
            if key not in _BACKENDS:
                _BACKENDS[key] = import_item(key[1])(config=self.config, log=self.log)
            return _BACKENDS[key]
        spec = self.clusters.get(cluster)
        if spec is None:
            raise web.HTTPError(409, f"the site has no cluster {cluster!r} any more")
        key = (cluster, repr(spec), id(self.config))
        if key not in _BACKENDS:
            _BACKENDS[key] = make_backend(Cluster(cluster, **spec), self.config, self.log)
        return _BACKENDS[key]

    def _unix_account(self):
        try:
            return pwd.getpwnam(self.user.name)
        except KeyError:
            return None

    def job_env(self, choice: Choice) -> dict:
        env = self.get_env()
        # the hub's own PYTHONPATH is not the job's: jobs run from job_python's environment
        for key in ("JPY_API_TOKEN", "PYTHONPATH"):
            env.pop(key, None)
        account = self._unix_account()
        if account is not None and os.geteuid() == 0:
            env.update(
                HOME=account.pw_dir,
                USER=account.pw_name,
                LOGNAME=account.pw_name,
                SHELL=account.pw_shell or "/bin/bash",
            )
        bin_dir = str(Path(self.job_python).parent)
        env["PATH"] = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
        env.update(choice.image.env)
        if choice.experiment:
            env.update(choice.experiment.env)
            if choice.experiment.kernels_path:
                env["JUPYTER_PATH"] = choice.experiment.kernels_path
        env["JUPYTERHUB_DEFAULT_URL"] = choice.app.default_url
        env.update(jobsettings.to_env(self.job_settings(choice, env["JUPYTERHUB_API_URL"])))
        return env

    def job_settings(self, choice: Choice, api_url: str) -> jobsettings.JobSettings:
        """What the job's wrapper and agents are told (ink_core/jobsettings.py)."""
        setup = [s for s in (choice.image.setup, choice.experiment.setup if choice.experiment else "") if s]
        api_url = self.hub_callback_url or api_url
        return jobsettings.JobSettings(
            app=choice.app.name,
            app_title=choice.app.display_name,
            image=choice.image.name,
            experiment=choice.experiment.name if choice.experiment else "",
            cluster=choice.cluster if self.clusters else "",
            setup=setup,
            job_ip=self.job_ip,
            callback_url=url_path_join(api_url, ROUTE.replace("/api", "", 1)),
            server_command=list(self.server_command),
            app_args=list(choice.app.args),
            server_proxy={choice.app.name: choice.app.server_proxy} if choice.app.server_proxy else {},
            hub=self.client_hub_url,
            credentials_url=self.credentials_url,
            monitor_url=self.monitor_url,
            monitor_interval=self.monitor_interval,
        )

    def job_spec(self, choice: Choice) -> JobSpec:
        account = self._unix_account()
        home = account.pw_dir if account is not None else os.path.expanduser("~")
        server = self.name or "default"
        log_dir = self.log_dir.format(home=home, username=self.user.name)
        log_path = os.path.join(log_dir, f"{server}-{int(time.time())}.log")
        env = self.job_env(choice)
        # where the monitor keeps the session's usage; the wrapper opens its own log, as the
        # user, where no scheduler writes the job's output
        env[jobsettings.VARIABLE["usage"]] = log_path.removesuffix(".log") + ".usage.json"
        if not self.backend_impl.captures_output:
            env[jobsettings.VARIABLE["log"]] = log_path
        wrapper = [self.job_python, "-m", "ink_spawner.jobscript", "--app", choice.app.name]
        return JobSpec(
            username=self.user.name,
            name=f"ink-{choice.app.name}",
            app=choice.app.name,
            command=in_image(choice.image, self.backend_impl, self.job_python, wrapper),
            env=env,
            workdir=home if os.path.isdir(home) else "",
            log_path=log_path,
            **choice.spec_fields(),
        )

    # --- the spawner contract -------------------------------------------------

    def _event(self, progress: int, message: str):
        if all(event["message"] != message for event in self._events):
            self._events.append({"progress": progress, "message": message})
            self.log.info("%s: %s", self._log_name, message)

    def job_reported(self, host: str, port: int) -> bool:
        """Called by the hub API handler; True when this spawner was waiting for it."""
        if self._report is None or self._report.done():
            return False
        self._report.set_result((host, port))
        self.job_host = host
        return True

    async def _failure(self, what: str) -> web.HTTPError:
        tail = await self.backend_impl.log_tail(self.user.name, self.job_log, self.log_tail_lines)
        message = what
        if tail.strip():
            message += "\nLast lines of the job's log:\n" + tail.rstrip()
        return web.HTTPError(500, html.escape(message))

    async def start(self):
        if self.job_id:  # left from a start the hub did not finish
            await self._cancel_quietly()
        try:  # the one rule for system accounts (ink_spawner/accounts.py), before anything runs
            check_not_system(self.user.name, "start a server")
        except SystemAccountRefused as e:
            raise web.HTTPError(403, html.escape(str(e))) from None
        choice = self.choice or self.validate(self.user_options or {})
        self.choice = None
        self.job_cluster = choice.cluster
        try:
            spec = self.job_spec(choice)
        except ImageError as e:
            raise web.HTTPError(400, html.escape(str(e))) from None
        backend = self.backend_impl
        self._events = []
        self._report = asyncio.get_running_loop().create_future()
        where = (
            backend.name
            if not self.clusters
            else f"{self.clusters[choice.cluster].get('title')} ({backend.name})"
        )
        self._event(10, f"submitting {choice.app.display_name} to {where}")
        try:
            await backend.prepare_log_dir(spec.username, spec.log_path)
            self.job_id = await backend.submit(spec)
        except BackendError as e:
            self._report = None
            status = 400 if isinstance(e, InvalidSubmission) else 500
            raise web.HTTPError(status, html.escape(str(e))) from None
        self.job_log = spec.log_path
        self.job_usage = spec.env[jobsettings.VARIABLE["usage"]]
        self.job_walltime = spec.walltime_s
        self.job_reported_ok = False
        self._started_recorded = False
        self._submitted_at = time.monotonic()
        self._open_record(choice, backend.name)
        self._save_state()
        self.log.info("%s: job %s submitted (%s)", self._log_name, self.job_id, spec.public())
        self._event(20, f"job {self.job_id} submitted")
        try:
            host, port = await self._wait_for_report(choice)
        except BaseException as e:
            await self._cancel_quietly()
            reason = e.log_message if isinstance(e, web.HTTPError) else "the start was stopped"
            await self._close_record(f"did not start: {html.unescape(reason or '')}".strip()[:500])
            raise
        finally:
            self._report = None
        self.job_reported_ok = True
        self._event(90, f"{choice.app.display_name} is listening on {host}:{port}")
        return f"{'https' if self.internal_ssl else 'http'}://{host}:{port}"

    async def move_certs(self, paths: dict) -> dict:
        """The server's TLS key and certificates (``internal_ssl``) into a private folder of the
        user's (``~/.ink/certs/<server>``, mode 700), written as the user: the job reads them
        there (a cluster's homes are shared), and root never writes into a folder the user
        controls (a symlink there would point root's write anywhere)."""
        account = self._unix_account()
        home = account.pw_dir if account is not None else os.path.expanduser("~")
        folder = os.path.join(home, ".ink", "certs", self.name or "default")
        moved = {}
        for key, source in paths.items():
            target = os.path.join(folder, os.path.basename(source))
            text = Path(source).read_text()
            await self.backend_impl.write_private_file(self.user.name, target, text, "the server's TLS files")
            moved[key] = target
        for key in ("keyfile", "certfile"):  # the user's key lives only with the user
            Path(paths[key]).unlink(missing_ok=True)
        return moved

    def _save_state(self):
        """Commit the job id now, not when start returns: a hub restart must find queued jobs."""
        orm_spawner = self.orm_spawner
        session = object_session(orm_spawner) if orm_spawner is not None else None
        if session is not None:
            orm_spawner.state = self.get_state()
            session.commit()

    async def _wait_for_report(self, choice: Choice) -> tuple[str, int]:
        backend = self.backend_impl
        while True:
            status = await backend.status(self.job_id)
            if status.state == JobState.PENDING:
                self._event(30, await self._queued_message(status.reason))
            elif status.state == JobState.RUNNING:
                if not self._started_recorded:
                    self._started_recorded = True
                    self._record_started()
                    history.QUEUE_WAIT.labels(choice.app.name).observe(time.monotonic() - self._submitted_at)
                self.job_node = status.host
                where = f"running on node {status.host}" if status.host else "running"
                self._event(50, where)
                self._event(60, f"starting {choice.app.display_name}")
            elif status.state == JobState.HELD:
                raise await self._failure(
                    f"The job was held by the scheduler: {status.reason or 'no reason given'}."
                )
            elif status.state == JobState.DONE:
                raise await self._failure(
                    f"The job ended before {choice.app.display_name} started"
                    f" ({status.reason or 'no reason given'})."
                )
            try:
                return await asyncio.wait_for(asyncio.shield(self._report), self.status_interval)
            except TimeoutError:
                continue

    async def _queued_message(self, reason: str) -> str:
        """Why the job waits, in the scheduler's words made plain (one shared scheduler query
        per refresh for all waiting sessions); the bare reason when the scheduler says no more."""
        try:
            waiting = (await self.backend_impl.waiting([self.job_id])).get(self.job_id)
        except BackendError as e:
            self.log.debug("%s: no queue explanation: %s", self._log_name, e)
            waiting = None
        if waiting is not None:
            return f"queued: {waiting.text(time.time())}"
        return f"queued ({reason})" if reason else "queued"

    def walltime_limit(self) -> int:
        """The longest time limit this user's session may have (seconds from its start)."""
        return min(self.allowance.max_walltime_s, self.profiles.ceiling.walltime_s)

    async def extend(self, seconds: int) -> dict:
        """Lengthen the running job's time limit by ``seconds``, up to ``walltime_limit()``."""
        current = self.job_walltime or self.validate(self.user_options or {}).walltime_s
        limit = self.walltime_limit()
        wanted = current + seconds
        if wanted > limit:
            room = max(0, limit - current)
            raise web.HTTPError(
                400,
                f"you may run a session for at most {format_duration_human(limit)} from its start; "
                f"this one has {format_duration_human(current)}"
                + (f", so it can be extended by {format_duration_human(room)} at most" if room else ""),
            )
        try:
            self.job_id = await self.backend_impl.set_walltime(self.job_id, wanted)
        except BackendError as e:
            raise web.HTTPError(502, html.escape(str(e))) from None
        self.job_walltime = wanted
        self._record(walltime_s=wanted, job_id=self.job_id)
        self.user_options = {**(self.user_options or {}), "walltime": format_duration_human(wanted)}
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = self.user_options
        self._save_state()
        self.log.info("%s: job %s extended to %s", self._log_name, self.job_id, format_duration_human(wanted))
        return {"walltime": format_duration_human(wanted), "walltime_s": wanted, "max_walltime_s": limit}

    async def _cancel_quietly(self):
        if self.job_id:
            try:
                await self.backend_impl.cancel(self.job_id)
            except BackendError as e:
                self.log.warning("%s: could not cancel job %s: %s", self._log_name, self.job_id, e)

    async def _cancel_session_jobs(self):
        """Batch jobs tied to this session (its Dask workers) end with it: the jobs service
        cancels them, asked with the session's own token (the hub revokes it after stop)."""
        if not (self.jobs_api_url and self.api_token):
            return
        request = HTTPRequest(
            url_concat(self.jobs_api_url, {"session": self.name or ""}),
            method="DELETE",
            headers={"Authorization": f"token {self.api_token}"},
            request_timeout=60,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
            cancelled = json.loads(response.body).get("cancelled") or []
        except Exception as e:
            self.log.warning("%s: the session's batch jobs were not cancelled: %s", self._log_name, e)
            return
        if cancelled:
            self.log.info("%s: cancelled the session's batch jobs %s", self._log_name, ", ".join(cancelled))

    async def poll(self):
        if not self.job_id:
            return 0
        if not self.job_reported_ok and self._report is None:
            self.log.warning(
                "%s: job %s was still starting when the hub stopped", self._log_name, self.job_id
            )
            return 1  # the hub then stops the server, which cancels the job
        status = await self.backend_impl.status(self.job_id)
        if status.active:
            return None
        # a held job is not running: the hub stops the server, which removes the job
        self.log.info("%s: job %s ended: %s", self._log_name, self.job_id, status.reason)
        await self._close_record(status.reason or "the job ended")
        return status.exit_code if status.exit_code not in (None, 0) else 1

    async def stop(self, now=False):
        await self._cancel_session_jobs()
        await self._cancel_quietly()
        await self._close_record(self._stop_reason())

    def _stop_reason(self) -> str:
        """Why a running session is stopped: the hub does not say who asked, but the idle culler
        only stops a server idle for longer than the site's timeout."""
        activity = self.orm_spawner.last_activity if self.orm_spawner is not None else None
        timeouts = self.idle_timeouts or {}
        timeout = idle_limit(
            {"user_options": self.user_options}, int(timeouts.get("default", 0)), timeouts.get("apps") or {}
        )
        if timeout and activity is not None:
            idle = (history.utcnow() - activity).total_seconds()
            if idle >= timeout:
                idle_s = int(idle) if idle < 120 else int(idle // 60) * 60
                return f"stopped after {format_duration_human(idle_s)} without activity (idle timeout)"
        return "stopped"

    # --- history (history.py) -------------------------------------------------

    def _history(self, what: str, write, default=None):
        """``write(db)`` on INK's own session of the hub's database. History never fails a
        session: without a database, or when the write fails (logged), ``default``."""
        return history.write_quietly(
            self.history_db_url, write, self.log, f"{self._log_name}: {what}", default
        )

    def _open_record(self, choice: Choice, backend: str) -> None:
        history.SESSIONS.labels(choice.app.name).inc()
        fields = dict(
            user=self.user.name,
            server=self.name or "",
            app=choice.app.name,
            image=choice.image.name,
            experiment=choice.experiment.name if choice.experiment else "",
            backend=backend,
            job_id=self.job_id,
            cpus=choice.cpus,
            memory_mb=choice.memory_mb,
            walltime_s=choice.walltime_s,
            gpus=choice.gpus,
        )
        self.record_id = self._history("no history record", lambda db: history.record_submit(db, **fields), 0)
        self._save_state()

    def _record(self, **fields) -> None:
        if self.record_id:
            self._history(
                "history record not updated", lambda db: history.record(db, self.record_id, **fields)
            )

    def _record_started(self) -> None:
        if self.record_id:
            self._history(
                "history record not updated",
                lambda db: history.record_times(db, self.record_id, started=history.utcnow()),
            )

    async def _close_record(self, reason: str) -> None:
        """The session's end: why, and what it used (the monitor agent's summary, read as the
        user). Once: a second stop or poll finds no open record."""
        record_id, self.record_id = self.record_id, 0
        if not record_id or not self.history_db_url:
            return
        usage = await self.backend_impl.read_record(self.user.name, self.job_usage)
        self._history("history record not closed", lambda db: history.close(db, record_id, reason, usage))

    async def progress(self):
        sent = 0
        while True:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            if self._report is None and sent >= len(self._events):
                if self._events:
                    return
            await asyncio.sleep(0.2)

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state["job_id"] = self.job_id
            state["job_cluster"] = self.job_cluster
            state["job_log"] = self.job_log
            state["job_reported"] = self.job_reported_ok
            state["job_host"] = self.job_host
            state["job_node"] = self.job_node
            state["job_walltime"] = self.job_walltime
            state["job_usage"] = self.job_usage
            state["record_id"] = self.record_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.job_id = state.get("job_id", "")
        self.job_cluster = state.get("job_cluster", DEFAULT)
        self.job_log = state.get("job_log", "")
        self.job_reported_ok = state.get("job_reported", True)
        self.job_host = state.get("job_host", "")
        self.job_node = state.get("job_node", "")
        self.job_walltime = state.get("job_walltime", 0)
        self.job_usage = state.get("job_usage", "")
        self.record_id = state.get("record_id", 0)

    def clear_state(self):
        super().clear_state()
        self.job_id = ""
        self.job_cluster = DEFAULT
        self.job_log = ""
        self.job_host = ""
        self.job_node = ""
        self.job_walltime = 0
        self.job_usage = ""
        self.record_id = 0
