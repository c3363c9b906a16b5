"""Dask on the site's scheduler: a cluster whose workers are batch jobs, submitted as you.

    from ink.dask import InkCluster
    from distributed import Client
    cluster = InkCluster(cores=1, memory="2G")    # the session's image and experiment
    cluster.scale(20)                             # or cluster.adapt(minimum=0, maximum=20)
    client = Client(cluster)

The scheduler runs in this process (the session's job). Each worker is one batch job of INK's
jobs API, so it runs on whatever backend the site has (local, Slurm, HTCondor), as the user,
in the image and experiment set-up the spawn menu allows, within the allowance's batch limits
(``max_batch_jobs``, ``max_batch_cpus``); a refusal is the API's sentence.

Every connection is mutual TLS with a key made for this cluster alone: the scheduler, the
workers and the clients must all show it. The workers read it from a folder only the user can
read (``~/.ink/dask/<cluster>/``, 0700), removed when the cluster closes. Another user on the
same nodes can reach the ports but cannot complete a handshake.

The dashboard listens on a Unix socket in that folder, not on a port; in a session it opens
through the hub at ``cluster.dashboard_link`` (``ink.dask_panel``), and JupyterLab's Dask panel
lists, makes and scales InkClusters.

Workers are tagged with the session (``JUPYTERHUB_SERVER_NAME``): stopping the session, its
walltime ending or the idle culler cancel them; a worker whose scheduler is gone for
``death_timeout`` seconds ends itself as well.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import sys
from pathlib import Path

from distributed import Scheduler
from distributed.deploy.spec import ProcessInterface, SpecCluster
from distributed.http.routing import RoutingApplication
from distributed.security import Security
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_unix_socket

from ink_client.api import ClientError
from ink_core.private import write_private

from .jobs import Jobs

__all__ = ["InkCluster", "InkWorkerJob"]
# under distributed's logger: a notebook shows its messages (a refused worker says why there)
log = logging.getLogger("distributed.deploy.ink")


def worker_command(scheduler: str, name: str, cores: int, memory: str, tls: dict, death_timeout: int):
    """How a worker job starts: this process's Python, so the worker's Dask matches the client's."""
    return [
        sys.executable,
        "-m",
        "distributed.cli.dask_worker",
        scheduler,
        "--name",
        name,
        "--nthreads",
        str(cores),
        "--memory-limit",
        memory,
        "--no-nanny",
        "--no-dashboard",
        "--death-timeout",
        str(death_timeout),
        "--tls-ca-file",
        tls["ca.pem"],
        "--tls-cert",
        tls["cert.pem"],
        "--tls-key",
        tls["key.pem"],
    ]


class PrivateScheduler(Scheduler):
    """distributed's scheduler with its HTTP pages (info pages with worker logs and call stacks,
    metrics, the dashboard) on a Unix socket only the user can open, instead of a TCP port
    (8787 on every interface by default) that anyone on the node could browse."""

    def __init__(self, *args, http_socket: str, **kwargs):
        self.http_socket = http_socket
        super().__init__(*args, **kwargs)

    def start_http_server(self, routes, dashboard_address, default_port=0, ssl_options=None):
        self.http_application = RoutingApplication(routes)
        self.http_server = HTTPServer(self.http_application)
        self.http_server.add_socket(bind_unix_socket(self.http_socket, mode=0o600))
        self.http_server.port = None  # no TCP port: the dashboard's websocket origins are not tied to one


class InkWorkerJob(ProcessInterface):
    """One Dask worker as one batch job of INK's jobs API."""

    def __init__(
        self,
        scheduler: str,
        name: str,
        *,
        jobs: Jobs,
        cluster_name: str,
        cores: int,
        memory: str,
        tls: dict,
        resources: dict,
        death_timeout: int,
    ):
        super().__init__()
        self.scheduler_address = scheduler
        self.name = str(name)
        self.jobs = jobs
        self.job_name = f"dask-{cluster_name}-{self.name}"[:64]
        self.command = worker_command(scheduler, self.name, cores, memory, tls, death_timeout)
        self.resources = {"cpus": cores, "memory": memory, **resources}
        self.job_id = ""

    async def start(self):
        try:
            job = await asyncio.to_thread(
                self.jobs.submit,
                self.command,
                name=self.job_name,
                output_dir="ink-jobs/dask",
                **self.resources,
            )
        except ClientError as e:
            log.error("Dask worker %s was not started: %s", self.name, e)
            raise
        self.job_id = job["id"]
        log.info("Dask worker %s: INK job %s", self.name, self.job_id)
        await super().start()

    async def close(self):
        if self.job_id:
            try:
                await asyncio.to_thread(self.jobs.cancel, self.job_id)
            except ClientError:
                pass  # already gone (ended by its death timeout, or cancelled with the session)
        await super().close()


class InkCluster(SpecCluster):
    """A Dask cluster on the site's batch system.

    cores, memory, walltime, image, experiment, cluster: what each worker job asks for (image,
    experiment and, on a site with several clusters, cluster default to the session's). ``hub``/``token`` default to the session's (or to
    ``ink login``'s on a laptop).
    """

    def __init__(
        self,
        cores: int = 1,
        memory: str = "2G",
        walltime: str | None = None,
        image: str | None = None,
        experiment: str | None = None,
        cluster: str | None = None,
        n_workers: int = 0,
        hub: str | None = None,
        token: str | None = None,
        host: str = "0.0.0.0",
        death_timeout: int = 60,
        name: str | None = None,
        asynchronous: bool = False,
        **kwargs,
    ):
        self.jobs = Jobs(hub, token)
        self.cluster_id = name or f"{os.environ.get('USER', 'dask')}-{secrets.token_hex(3)}"
        security = Security.temporary()
        self.tls_dir = Path.home() / ".ink" / "dask" / self.cluster_id
        self.tls_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.tls_dir.mkdir(mode=0o700)
        tls = {}  # what the workers read: the cluster's CA, their certificate and key (mode 600)
        for name, text in (
            ("ca.pem", security.tls_ca_file),
            ("cert.pem", security.tls_worker_cert),
            ("key.pem", security.tls_worker_key),
        ):
            tls[name] = str(self.tls_dir / name)
            write_private(tls[name], text.encode())
        resources = {
            "image": image or os.environ.get("INK_IMAGE") or None,
            "experiment": experiment if experiment is not None else os.environ.get("INK_EXPERIMENT") or None,
            "walltime": walltime,
            # the session's own cluster: its workers must reach the scheduler in the session
            "cluster": cluster or os.environ.get("INK_CLUSTER") or None,
            "session": os.environ.get("JUPYTERHUB_SERVER_NAME", "") if "INK_APP" in os.environ else None,
        }
        resources = {k: v for k, v in resources.items() if v is not None}
        scheduler = {
            "cls": PrivateScheduler,
            "options": {
                "protocol": "tls://",
                "host": host,
                "security": security,
                "dashboard": True,  # on the private socket; the session's server proxies it
                "http_socket": str(self.tls_dir / "http.sock"),
            },
        }
        worker = {
            "cls": InkWorkerJob,
            "options": {
                "jobs": self.jobs,
                "cluster_name": self.cluster_id,
                "cores": int(cores),
                "memory": str(memory),
                "tls": tls,
                "resources": resources,
                "death_timeout": int(death_timeout),
            },
        }
        try:
            super().__init__(
                scheduler=scheduler,
                worker=worker,
                security=security,
                name=self.cluster_id,
                asynchronous=asynchronous,
                **kwargs,
            )
        except BaseException:
            shutil.rmtree(self.tls_dir, ignore_errors=True)
            raise
        if n_workers:
            self.scale(n_workers)

    @property
    def dashboard_link(self) -> str:
        """The dashboard through the hub: the session's server proxies the cluster's private
        socket (``ink.dask_panel``); "" outside a session."""
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")
        return f"{prefix}dask/dashboard/{self.cluster_id}/status" if prefix else ""

    @property
    def worker_jobs(self) -> dict[str, str]:
        """Worker name -> INK job id, for the workers submitted so far."""
        return {str(name): w.job_id for name, w in self.workers.items() if getattr(w, "job_id", "")}

    async def _close(self):
        try:
            await super()._close()
        finally:
            shutil.rmtree(self.tls_dir, ignore_errors=True)
