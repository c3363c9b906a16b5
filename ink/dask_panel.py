"""The Dask dashboard and JupyterLab's Dask panel in a session, through the hub.

A Jupyter server extension of the session's own server (enabled by
``etc/jupyter/jupyter_server_config.d/ink.json``, installed with INK). It serves:

- ``dask/dashboard/<cluster>/...``: the dashboard of one of the user's clusters, proxied by
  jupyter-server-proxy to the Unix socket the cluster's scheduler serves its pages on
  (``~/.ink/dask/<cluster>/http.sock``, mode 600: see ``ink.dask.PrivateScheduler``). Only the
  session's own user reaches it (the server's hub login), never a port on the node.
  ``<cluster>`` is an ``InkCluster``'s name (``cluster.dashboard_link``) or the id the Dask
  panel gave a cluster it made.
- ``dask/clusters``: dask-labextension's cluster API, so the panel lists, creates, scales and
  stops clusters; new ones are ``InkCluster`` s (a site or user ``labextension.factory`` in
  Dask's config still wins).
- ``dask/dashboard-check/<url>``: the panel's "is this a dashboard?" question, answered from the
  socket. dask-labextension's own check fetches the URL again from the server without the
  user's login, which the hub's login wall turns away, so the panel would never show the plots.

dask-labextension's own server extension is disabled in the same config file: its dashboard
route expects a TCP host and port, which INK's clusters do not open.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import dask.config
from dask_labextension.clusterhandler import DaskClusterHandler
from dask_labextension.manager import manager
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from jupyter_server_proxy.handlers import ProxyHandler
from jupyter_server_proxy.unixsock import UnixResolver
from tornado import httpclient, web

CLUSTER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")  # no "..", no hidden names
FACTORY = {"module": "ink.dask", "class": "InkCluster", "args": [], "kwargs": {}}


def dask_folder() -> Path:
    return Path.home() / ".ink" / "dask"


def socket_of(cluster: str) -> str:
    """The socket of the user's cluster named ``cluster`` (an InkCluster's name, or the id the
    panel gave one it made); 404 when there is none."""
    if not CLUSTER.match(cluster):
        raise web.HTTPError(404, "no such Dask cluster")
    made_by_panel = manager._clusters.get(cluster)
    name = getattr(made_by_panel, "cluster_id", cluster)
    path = dask_folder() / name / "http.sock"
    if not path.is_socket():
        raise web.HTTPError(404, f"no Dask cluster {cluster!r} is running in this session")
    return str(path)


class DashboardProxy(ProxyHandler):
    """jupyter-server-proxy's proxy, to the cluster's Unix socket."""

    def resolve(self, cluster: str) -> None:
        self.unix_socket = socket_of(cluster)

    async def http_get(self, cluster, path):
        return await self.proxy(cluster, path)

    async def open(self, cluster, path):
        self.resolve(cluster)
        return await self.proxy_open("localhost", 0, path)

    def post(self, cluster, path):
        return self.proxy(cluster, path)

    def head(self, cluster, path):
        return self.proxy(cluster, path)

    def proxy(self, cluster, path):
        self.resolve(cluster)
        return super().proxy("localhost", 0, path or "/")


class DashboardCheck(APIHandler):
    """The panel asks whether a URL is a Dask dashboard and which plots it has: for a cluster of
    this session, the answer comes from its socket."""

    @web.authenticated
    async def get(self, url):
        url = unquote(url)
        base = url_path_join(self.base_url, "dask/dashboard/")
        path = urlparse(url).path
        match = re.match(re.escape(base) + r"([^/]+)(?:/status)?/?$", path)
        answer = {"url": url, "isActive": False, "plots": {}}
        if match:
            try:
                plots = await self.plots(socket_of(match.group(1)))
            except (web.HTTPError, OSError, httpclient.HTTPError, ValueError):
                plots = None
            if plots is not None:
                link = url_path_join(base, match.group(1))
                answer = {"url": link, "isActive": True, "effectiveUrl": None, "plots": plots}
        self.finish(json.dumps(answer))

    @staticmethod
    async def plots(socket_path: str) -> dict:
        client = httpclient.AsyncHTTPClient(
            force_instance=True, resolver=UnixResolver(socket_path=socket_path)
        )
        try:
            response = await client.fetch("http://localhost/individual-plots.json", request_timeout=10)
        finally:
            client.close()
        return json.loads(response.body)


def _jupyter_server_extension_points():
    return [{"module": "ink.dask_panel"}]


def _load_jupyter_server_extension(server_app):
    dask.config.update_defaults({"labextension": {"factory": FACTORY}})
    base = server_app.web_app.settings["base_url"]
    server_app.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, r"dask/dashboard/([^/]+)(/.*)?"), DashboardProxy),
            (url_path_join(base, "dask/dashboard-check/(.+)"), DashboardCheck),
            (url_path_join(base, r"dask/clusters/(?P<cluster_id>[\w-]+)"), DaskClusterHandler),
            (url_path_join(base, "dask/clusters/?"), DaskClusterHandler),
        ],
    )
    server_app.log.info("INK: the Dask panel and dashboards of this session's clusters")
