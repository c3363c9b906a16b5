"""A session near its end says so inside the app, with Extend buttons.

A Jupyter server extension of the session's own server (enabled by
``etc/jupyter/jupyter_server_config.d/ink.json``, installed with INK). Every app of a session
is a page of this server (JupyterLab itself, and VS Code, the desktop, the ROOT browser and the
SSH node through jupyter-server-proxy), so one place adds the banner to all of them:

- an output transform adds ``<script src=".../ink/session-banner.js">`` to the session's landing
  page (JUPYTERHUB_DEFAULT_URL and below), only to top-level HTML documents (``Sec-Fetch-Dest:
  document``) that are not downloads and not compressed: never to a user's file the server
  serves, never to an app's inner frames;
- ``ink/session``: how long the session has left (from the hub: the server's start and its
  time limit, which Extend raises), the warning threshold, and the XSRF token for Extend;
- ``ink/extend`` (POST ``{"by": "2h"}``): asks the hub, with the server's own token, to
  lengthen the job's time limit; the hub decides (the user's max_walltime from the start).

Both endpoints are the server's own (the user's login to her server, on her origin); the
server's token never reaches the browser.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient, web

from ink_core.hubtls import hub_tls
from ink_core.units import parse_duration_s

ENDING_S = 15 * 60  # the banner shows from a quarter of an hour before the end (as the dashboard)
EXTEND_BY = ("2h", "8h")
CACHE_S = 20  # the hub is asked at most this often, whatever the pages ask
SCRIPT = Path(__file__).with_name("static") / "session-banner.js"
HEAD = re.compile(rb"<head(\s[^>]*)?>", re.IGNORECASE)


def time_left(server: dict, now: float) -> int | None:
    """Seconds until the session's job reaches its time limit, from the hub's model of it."""
    started = server.get("started")
    try:
        walltime = parse_duration_s((server.get("user_options") or {}).get("walltime"))
    except ValueError:
        return None
    if not started or not walltime:
        return None
    start = datetime.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    return int(start + walltime - now)


class Hub:
    """The hub's API as this server reaches it: its own token, its own name."""

    def __init__(self, env=os.environ):
        self.api_url = env.get("JUPYTERHUB_API_URL", "").rstrip("/")
        self.token = env.get("JUPYTERHUB_API_TOKEN", "")
        self.user = env.get("JUPYTERHUB_USER", "")
        self.server = env.get("JUPYTERHUB_SERVER_NAME", "")
        self.tls = hub_tls(env)
        self._cached: tuple[float, dict] | None = None

    async def call(self, path: str, method="GET", body=None) -> tuple[int, dict]:
        request = httpclient.HTTPRequest(
            f"{self.api_url}/{path}",
            method=method,
            body=None if body is None else json.dumps(body),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            ssl_options=self.tls,
            request_timeout=30,
        )
        response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        try:
            answer = json.loads(response.body or b"{}")
        except ValueError:
            answer = {}
        if response.code >= 599:
            return 502, {"message": "the hub cannot be reached"}
        return response.code, answer if isinstance(answer, dict) else {}

    async def own_server(self) -> dict:
        """This server's model at the hub (cached a little)."""
        now = time.monotonic()
        if self._cached and now - self._cached[0] < CACHE_S:
            return self._cached[1]
        code, model = await self.call("user")
        if code != 200:
            raise web.HTTPError(502, f"the hub did not say how long this session has ({code})")
        server = (model.get("servers") or {}).get(self.server) or {}
        self._cached = (now, server)
        return server

    def forget(self) -> None:
        self._cached = None

    def extend_path(self) -> str:
        user = quote(self.user, safe="")
        if self.server:
            return f"ink/users/{user}/servers/{quote(self.server, safe='')}/extend"
        return f"ink/users/{user}/extend"


class SessionHandler(APIHandler):
    @web.authenticated
    async def get(self):
        hub: Hub = self.settings["ink_hub"]
        left = time_left(await hub.own_server(), time.time())
        self.set_header("Cache-Control", "no-store")
        self.finish(
            {
                "walltime_left_s": left,
                "ending_s": ENDING_S,
                "extend_by": list(EXTEND_BY),
                "xsrf": self.xsrf_token.decode(),
            }
        )


class ExtendHandler(APIHandler):
    @web.authenticated
    async def post(self):
        hub: Hub = self.settings["ink_hub"]
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("by") not in EXTEND_BY:
            raise web.HTTPError(400, f"by: one of {', '.join(EXTEND_BY)}")
        code, answer = await hub.call(hub.extend_path(), "POST", {"by": body["by"]})
        hub.forget()
        self.set_status(code)
        self.finish(answer if code == 200 else {"message": answer.get("message") or f"the hub said {code}"})


class ScriptHandler(JupyterHandler):
    """The banner's script: public like the server's other static files (it holds nothing)."""

    def get(self):
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(SCRIPT.read_bytes())


def landing_prefix(base_url: str, env=os.environ) -> str:
    """The session's landing page, e.g. /user/alice/lab or /user/alice/vscode/."""
    return url_path_join(base_url, env.get("JUPYTERHUB_DEFAULT_URL", "/lab"))


def make_transform(landing: str, script_url: str):
    tag = f'<script src="{script_url}" defer></script>'.encode()

    class AddBanner(web.OutputTransform):
        """Adds the banner's script to the session's app pages (see the module's docstring)."""

        def __init__(self, request):
            self.wanted = (
                request.method == "GET"
                and request.path.startswith(landing.rstrip("/"))
                and request.headers.get("Sec-Fetch-Dest") == "document"
            )
            if self.wanted:
                # the page itself uncompressed (code-server answers brotli otherwise), so that
                # the tag can go in; jupyter-server-proxy passes the request's headers on
                request.headers.pop("Accept-Encoding", None)

        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            if not self.wanted or status_code != 200:
                return status_code, headers, chunk
            if not headers.get("Content-Type", "").startswith("text/html"):
                return status_code, headers, chunk
            if "Content-Disposition" in headers:
                return status_code, headers, chunk
            if headers.get("Content-Encoding", "identity") != "identity":
                return status_code, headers, chunk
            match = HEAD.search(chunk)
            if match is None:
                return status_code, headers, chunk
            chunk = chunk[: match.end()] + tag + chunk[match.end() :]
            if "Content-Length" in headers:
                headers["Content-Length"] = (
                    str(len(chunk)) if finishing else str(int(headers["Content-Length"]) + len(tag))
                )
            return status_code, headers, chunk

    return AddBanner


def _jupyter_server_extension_points():
    return [{"module": "ink.session_banner"}]


def _load_jupyter_server_extension(server_app):
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        return  # not a server the hub started: no session to speak of
    web_app = server_app.web_app
    base = web_app.settings["base_url"]
    web_app.settings["ink_hub"] = Hub()
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "ink/session"), SessionHandler),
            (url_path_join(base, "ink/extend"), ExtendHandler),
            (url_path_join(base, "ink/session-banner.js"), ScriptHandler),
        ],
    )
    transform = make_transform(landing_prefix(base), url_path_join(base, "ink/session-banner.js"))
    web_app.transforms.append(transform)
    server_app.log.info("INK: the session's end and Extend in its app pages")
