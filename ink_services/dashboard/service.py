"""The dashboard service (hub-managed, HubOAuth).

  GET ./             the dashboard widget (the hub's home page embeds it)
  GET api/summary    JSON: the caller's servers (state, node, app, image, start, walltime left,
                     and while queued why, from the scheduler), running interactive jobs per
                     app (site-wide), cluster running/queued; for hub admins also every user's
                     active servers ("all_servers")
  POST api/extend    {"server": NAME, "by": "2h"}: lengthen one of the caller's running
                     sessions (the hub's /hub/api/ink/.../extend, with the caller's own token)
  GET api/samples    the caller's live resource samples (an admin may add ?user=NAME)
  POST api/samples   a job's agent reports a sample (with its server's own token)
  GET metrics        Prometheus, for tokens with read:metrics

Cluster figures come from the backend's queue_stats(), refreshed in the background: a slow
scheduler makes the figures older (the answer says how old), never the page slower.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import sys
import time
from collections import OrderedDict, deque
from dataclasses import asdict
from urllib.parse import quote

from prometheus_client import Counter, Gauge, Histogram
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ink_core.units import parse_duration_s
from ink_spawner.backends import Backend
from ink_spawner.clusters import DEFAULT
from ink_spawner.configurer import jobs_api_url, site_backends
from ink_spawner.site_schema import with_defaults

from ..app import SMALL_BODIES, hub_look, service_app
from ..auth import HubApi, ServiceHandler, job_server_of
from ..process import run_service, service_prefix, start_logging

log = logging.getLogger("ink.dashboard")
QUEUE_SECONDS = Histogram("ink_dashboard_queue_stats_seconds", "time the backend's queue_stats() took")
QUEUE_FAILURES = Counter("ink_dashboard_queue_stats_failures_total", "queue_stats() calls that failed")
CLUSTER_JOBS = Gauge(
    "ink_dashboard_cluster_jobs", "cluster jobs by state, from queue_stats()", ["cluster", "state"]
)
INTERACTIVE = Gauge(
    "ink_dashboard_interactive_jobs", "running interactive INK jobs per cluster and app", ["cluster", "app"]
)
SAMPLES = Counter("ink_dashboard_samples_total", "resource samples received from jobs")
SERIES = Gauge("ink_dashboard_monitor_series", "job resource series held in memory")
SUMMARY_SECONDS = Histogram("ink_dashboard_summary_seconds", "time to answer api/summary")
PAGE_SIZE = 200
PER_USER_SECONDS = 15  # how long a user's ended sessions and session workers are reused


class QueueCache:
    """The backend's queue_stats(), refreshed by one background loop."""

    def __init__(self, backend: Backend, timeout: float = 20, name: str = DEFAULT, title: str = "Cluster"):
        self.backend = backend
        self.name, self.title = name, title
        self.timeout = timeout
        self.stats = None
        self.updated = 0.0
        self.error = ""

    async def refresh(self):
        try:
            with QUEUE_SECONDS.time():
                self.stats = await asyncio.wait_for(self.backend.queue_stats(), self.timeout)
            self.updated, self.error = time.time(), ""
        except Exception as e:  # shown to users as "figures from N s ago"
            QUEUE_FAILURES.inc()
            self.error = str(e) or type(e).__name__
            log.warning("%s: queue_stats failed: %s", self.name, self.error)
            return
        CLUSTER_JOBS.labels(self.name, "running").set(self.stats.running)
        CLUSTER_JOBS.labels(self.name, "queued").set(self.stats.queued)
        for app, counts in self.stats.per_app.items():
            INTERACTIVE.labels(self.name, app).set(counts.get("running", 0))

    async def run(self, interval: float):
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    def summary(self) -> dict:
        stats = (
            asdict(self.stats) if self.stats is not None else {"running": None, "queued": None, "per_app": {}}
        )
        return {
            "name": self.name,
            "title": self.title,
            **stats,
            "age_s": round(time.time() - self.updated, 1) if self.updated else None,
            "error": self.error,
        }


def all_clusters(summaries: list[dict]) -> dict:
    """The site's figures over every cluster (a cluster not yet asked counts as unknown)."""
    if len(summaries) == 1:
        return summaries[0]

    def total(key):
        values = [s[key] for s in summaries]
        return None if None in values else sum(values)

    per_app: dict = {}
    for summary in summaries:
        for app, counts in summary["per_app"].items():
            mine = per_app.setdefault(app, {})
            for state, n in counts.items():
                mine[state] = mine.get(state, 0) + n
    ages = [s["age_s"] for s in summaries]
    return {
        "name": "",
        "title": "All clusters",
        "running": total("running"),
        "queued": total("queued"),
        "per_app": per_app,
        "age_s": None if None in ages else max(ages),
        "error": "; ".join(f"{s['title']}: {s['error']}" for s in summaries if s["error"]),
    }


class SampleStore:
    """Recent resource samples per (user, server): bounded in samples, in series per user and in
    series overall; one user's many series evict only his own."""

    FIELDS = ("t", "cpu_percent", "rss_bytes", "read_bytes", "write_bytes", "processes")
    # the largest value each field may hold (anything larger is a broken or lying agent)
    CEILINGS = {
        "cpu_percent": 100.0 * 4096,
        "rss_bytes": 2.0**50,
        "read_bytes": 2.0**60,
        "write_bytes": 2.0**60,
        "processes": 10.0**6,
    }

    def __init__(
        self, per_series: int = 720, max_series: int = 5000, per_user: int = 16, min_gap: float = 0.5
    ):
        self.per_series = per_series
        self.max_series = max_series
        self.per_user = per_user
        self.min_gap = min_gap  # seconds between two samples of one series (more: 429)
        self.series: OrderedDict[tuple[str, str], deque] = OrderedDict()
        self.last: dict[tuple[str, str], float] = {}

    def add(self, user: str, server: str, sample: dict) -> None:
        key = (user, server)
        now = time.monotonic()
        if now - self.last.get(key, -1e9) < self.min_gap:
            raise web.HTTPError(429, f"at most one sample every {self.min_gap} s per server")
        self.last[key] = now
        if key not in self.series:
            mine = [k for k in self.series if k[0] == user]
            if len(mine) >= self.per_user:
                self._drop(mine[0])  # the user's own longest-silent series
            elif len(self.series) >= self.max_series:
                self._drop(next(iter(self.series)))  # the longest-silent series of anyone
            self.series[key] = deque(maxlen=self.per_series)
        self.series.move_to_end(key)
        self.series[key].append(sample)
        SAMPLES.inc()
        SERIES.set(len(self.series))

    def _drop(self, key) -> None:
        self.series.pop(key, None)
        self.last.pop(key, None)

    def of_user(self, user: str) -> dict:
        return {server: list(samples) for (owner, server), samples in self.series.items() if owner == user}

    @classmethod
    def validate(cls, body) -> dict:
        """A sample's numbers: finite, >= 0, at most their ceiling; the time is the service's."""
        if not isinstance(body, dict):
            raise web.HTTPError(400, "expected a JSON object")
        unknown = sorted(set(body) - set(cls.FIELDS) - {"server"})
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r}")
        sample = {"t": time.time()}
        for field, ceiling in cls.CEILINGS.items():
            value = body.get(field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= ceiling:
                raise web.HTTPError(400, f"{field}: expected a number from 0 to {ceiling:g}")
            sample[field] = value
        return sample


def server_rows(user_model: dict, now: float) -> list[dict]:
    rows = []
    for name, server in sorted((user_model.get("servers") or {}).items()):
        options = server.get("user_options") or {}
        state = server.get("state") or {}
        started = server.get("started")
        started_ts = (
            datetime.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() if started else None
        )
        try:  # the job's limit now (Extend raises it), else the one it was started with
            walltime = int(state.get("job_walltime") or 0) or parse_duration_s(options.get("walltime", 0))
        except ValueError:
            walltime = 0
        rows.append(
            {
                "name": name,
                "url": server.get("url"),
                "state": "ready" if server.get("ready") else (server.get("pending") or "stopped"),
                "job_id": state.get("job_id", ""),
                "cluster": state.get("job_cluster") or DEFAULT,
                "node": state.get("job_node") or state.get("job_host", ""),
                "app": options.get("app", ""),
                "image": options.get("image", ""),
                "experiment": options.get("experiment", ""),
                "cpus": options.get("cpus"),
                "memory": options.get("memory"),
                "started": started,
                "walltime_left_s": int(started_ts + walltime - now) if started_ts and walltime else None,
            }
        )
    return rows


async def explain_waiting(caches: dict[str, QueueCache], rows: list[dict], now: float) -> list[dict]:
    """Each queued server's reason from its cluster's scheduler (one query per cluster)."""
    for name, cache in caches.items():
        mine = [row for row in rows if row["cluster"] == name]
        queued = [row["job_id"] for row in mine if row["state"] == "spawn" and row["job_id"]]
        waiting = {}
        if queued:
            try:
                waiting = await asyncio.wait_for(cache.backend.waiting(queued), cache.timeout)
            except Exception as e:  # the figures stay; the explanation is missing this time
                log.warning("%s: no queue explanation: %s", name, e)
        for row in mine:
            row["waiting"] = waiting[row["job_id"]].text(now) if row["job_id"] in waiting else ""
    for row in rows:
        row.setdefault("waiting", "")
    return rows


class BaseHandler(HubApi, ServiceHandler):
    async def user_model(self, name: str) -> dict:
        return await self.hub_get(f"users/{quote(name, safe='')}")

    async def active_users(self) -> list[dict]:
        users, offset = [], 0
        while True:
            page = await self.hub_get(f"users?state=active&limit={PAGE_SIZE}&offset={offset}")
            users += page
            if len(page) < PAGE_SIZE:
                return users
            offset += len(page)

    async def per_user_cached(self, what: str, name: str, fetch):
        """``fetch()``'s answer for ``name``, asked at most every PER_USER_SECONDS per user, not at
        every page refresh."""
        cache = self.settings["cached"].setdefault(what, {})
        kept = cache.get(name)
        if kept and time.monotonic() - kept[0] < PER_USER_SECONDS:
            return kept[1]
        answer = await fetch()
        if len(cache) > 10_000:
            cache.clear()
        cache[name] = (time.monotonic(), answer)
        return answer

    async def recently_ended(self, name: str, limit: int = 5) -> list[dict]:
        """The user's sessions that ended in the last day, and why (the hub's session history)."""
        return await self.per_user_cached("ended", name, lambda: self._recently_ended(name, limit))

    async def session_workers(self, name: str) -> dict[str, list[dict]]:
        """The caller's live batch jobs tied to a session (its Dask workers), by server name,
        from the jobs API with the caller's own token."""
        url, token = self.settings.get("jobs_url"), self.hub_auth.get_token(self)
        if not url or not token:
            return {}

        async def fetch():
            request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=15)
            try:
                jobs = json.loads((await AsyncHTTPClient().fetch(request)).body)["jobs"]
            except Exception as e:  # the rest of the dashboard does not depend on it
                log.warning("no batch jobs for %s: %s", name, e)
                return {}
            by_session = {}
            for job in jobs:
                if job.get("session") is not None and job.get("state") in ("pending", "running", "held"):
                    keep = {k: job.get(k) for k in ("id", "name", "state", "node")}
                    by_session.setdefault(job["session"], []).append(keep)
            return by_session

        return await self.per_user_cached("workers", name, fetch)

    async def _recently_ended(self, name: str, limit: int) -> list[dict]:
        yesterday = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)).date()
        try:
            answer = await self.hub_get(f"ink/users/{quote(name, safe='')}/history?since={yesterday}")
        except Exception as e:  # the rest of the dashboard does not depend on it
            log.warning("no session history for %s: %s", name, e)
            return []
        ended = [s for s in answer.get("sessions", []) if s.get("ended")]
        ended.sort(key=lambda s: s["ended"], reverse=True)
        keep = ("server", "app", "started", "ended", "end_reason", "peak_memory_mb", "memory_mb")
        return [{k: s.get(k) for k in keep} for s in ended[:limit]]

    @property
    def is_admin(self) -> bool:
        """Admin views by scope: reading every user's servers (``read:servers`` without a
        filter, which a hub admin's browser session brings through this service's OAuth
        client; ``admin:users`` of an admin's API token implies it)."""
        scopes = self.current_user.get("scopes") or []
        return "read:servers" in scopes or "admin:users" in scopes

    async def summary(self) -> dict:
        me = self.current_user["name"]  # only ever the caller's own servers
        caches: dict[str, QueueCache] = self.settings["queues"]
        now = time.time()
        servers = await explain_waiting(caches, server_rows(await self.user_model(me), now), now)
        workers = await self.session_workers(me) if servers else {}
        for row in servers:
            row["workers"] = workers.get(row["name"], [])
        figures = [c.summary() for c in caches.values()]
        answer = {
            "user": me,
            "admin": self.is_admin,
            "servers": servers,
            "ended": await self.recently_ended(me),
            "cluster": all_clusters(figures),
            "clusters": figures,
        }
        if self.is_admin:
            answer["all_servers"] = [
                {"user": user["name"], **row}
                for user in await self.active_users()
                for row in server_rows(user, now)
            ]
        return answer


class SamplesHandler(BaseHandler):
    """POST: a job's agent reports (server token). GET: the caller's own series."""

    @web.authenticated
    def post(self):
        server = job_server_of(self)
        if server is None:
            raise web.HTTPError(403, "samples come only from a job, with its server's own token")
        body = self.json_body()
        if body.get("server", server) != server:
            raise web.HTTPError(403, "a job reports samples only for its own server")
        self.settings["samples"].add(self.current_user["name"], server, SampleStore.validate(body))
        self.set_status(204)

    @web.authenticated
    def get(self):
        self.set_header("Cache-Control", "no-store")
        me = self.current_user["name"]
        user = self.get_argument("user", me) if self.is_admin else me  # others' only for admins
        if user != me:
            log.info("%s reads the samples of %s", me, user)
        self.finish({"user": user, "servers": self.settings["samples"].of_user(user)})


class WidgetHandler(BaseHandler):
    @web.authenticated
    def get(self):
        self.render(
            "dashboard.html",
            prefix=self.settings["prefix"],
            refresh=self.settings["refresh"],
            xsrf=self.xsrf_token.decode(),
            head=hub_look(self.settings["prefix"], framed=True),
        )


class SummaryHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        self.set_header("Cache-Control", "no-store")
        with SUMMARY_SECONDS.time():
            answer = await self.summary()
        self.finish(answer)


class ExtendHandler(BaseHandler):
    """The dashboard's Extend button: the hub decides (scope, max_walltime) with the caller's
    own token, which this service's OAuth client holds for the caller's page session."""

    @web.authenticated
    async def post(self):
        body = self.json_body()
        if not isinstance(body.get("server", ""), str):
            raise web.HTTPError(400, 'expected a JSON object {"server": NAME, "by": "2h"}')
        server = body.get("server", "")
        me = quote(self.current_user["name"], safe="")
        path = (
            f"ink/users/{me}/servers/{quote(server, safe='')}/extend" if server else f"ink/users/{me}/extend"
        )
        token = self.hub_auth.get_token(self)
        code, answer = await self.hub_post(path, {"by": body.get("by")}, token)
        self.set_status(code)
        self.finish(answer)


def uplot_dir() -> str:
    """uPlot (npm), installed by scripts/install into the prefix."""
    return os.path.join(sys.prefix, "node_modules", "uplot", "dist")


def make_app(
    queues: dict[str, QueueCache], prefix: str, refresh: float, jobs_url: str = ""
) -> web.Application:
    return service_app(
        prefix,
        [
            ("", WidgetHandler),
            ("api/summary", SummaryHandler),
            ("api/samples", SamplesHandler),
            ("api/extend", ExtendHandler),
            ("static/uplot/(.*)", web.StaticFileHandler, {"path": uplot_dir()}),
        ],
        framed_by_hub=True,  # a panel of the hub's home page
        queues=queues,
        samples=SampleStore(),
        cached={},  # what -> user -> (when asked, answer): ended sessions, session workers
        jobs_url=jobs_url,
        refresh=refresh,
        template_path=os.path.join(os.path.dirname(__file__), "templates"),
    )


def main(argv=None):
    """The service, on its own section of the site file (INK_CONFIG)."""
    start_logging("ink-dashboard")
    site, backends = site_backends()
    dashboard = with_defaults("dashboard", site.dashboard)
    queues = {
        name: QueueCache(backend, name=name, title=site.clusters[name].title)
        for name, backend in backends.items()
    }
    app = make_app(queues, service_prefix("ink-dashboard"), dashboard["refresh"], jobs_api_url(site))

    def refresher(queue: QueueCache):
        return lambda: queue.run(dashboard["refresh"])

    run_service(app, log, dashboard["port"], SMALL_BODIES, background=[refresher(q) for q in queues.values()])
