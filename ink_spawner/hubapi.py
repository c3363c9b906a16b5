"""INK's endpoints in the hub's API.

``POST /hub/api/ink/job-ready``: the one endpoint a job calls, "my server listens at
host:port". It accepts exactly two fields, only with the token the hub gave that very server,
and only while that server is starting. Nothing else about a spawner can be set from a job
(unlike batchspawner's stock handler, which INK never registers).

``POST /hub/api/ink/users/NAME/extend`` (the default server) and
``POST /hub/api/ink/users/NAME/servers/SERVER/extend`` with ``{"by": "2h"}``: lengthen a
running session's time limit, up to the user's max_walltime counted from its start; needs the
``servers`` scope on that server (as starting and stopping it do).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from ink_core.units import parse_duration_s

HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
ROUTE = r"/api/ink/job-ready"
EXTEND_ROUTES = [r"/api/ink/users/([^/]+)/extend", r"/api/ink/users/([^/]+)/servers/([^/]+)/extend"]


def validate_report(body) -> tuple[str, int]:
    if not isinstance(body, dict):
        raise web.HTTPError(400, "expected a JSON object with host and port")
    extra = sorted(set(body) - {"host", "port"})
    if extra:
        raise web.HTTPError(400, f"only 'host' and 'port' may be reported, not {extra[0]!r}")
    host, port = body.get("host"), body.get("port")
    if not isinstance(host, str):
        raise web.HTTPError(400, "host: expected a host name or IP address")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not HOSTNAME.match(host):
            raise web.HTTPError(400, "host: expected a host name or IP address") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise web.HTTPError(400, "port: expected a whole number from 1 to 65535")
    return host, port


class JobReadyHandler(APIHandler):
    async def post(self):
        token = self.get_auth_token()
        user = self.current_user
        if not token or user is None or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "a job reports with its own server's token")
        spawner = None
        for candidate in self.users[user.name].spawners.values():
            candidate_token = getattr(candidate, "api_token", None) or ""
            if candidate_token and hmac.compare_digest(candidate_token.encode(), token.encode()):
                spawner = candidate
                break
        if spawner is None or not hasattr(spawner, "job_reported"):
            raise web.HTTPError(403, "this token does not belong to one of your INK servers")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "expected a JSON object with host and port") from None
        host, port = validate_report(body)
        if not spawner.job_reported(host, port):
            raise web.HTTPError(409, "this server is not waiting for its job's address")
        self.set_status(200)
        self.finish({"status": "ok"})


class ExtendHandler(APIHandler):
    @needs_scope("servers")
    async def post(self, user_name, server_name=""):
        user = self.find_user(user_name)
        if user is None or (server_name and server_name not in user.spawners):
            raise web.HTTPError(404, "no such server")
        spawner = user.spawners.get(server_name)
        if spawner is None:  # a default server that never started
            raise web.HTTPError(409, "only a running server can be extended")
        if not hasattr(spawner, "extend"):
            raise web.HTTPError(400, "this server is not started by INK")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or set(body) != {"by"} or not isinstance(body["by"], str | int):
            raise web.HTTPError(400, 'expected a JSON object {"by": "2h"}')
        try:
            seconds = parse_duration_s(body["by"])
        except ValueError as e:
            raise web.HTTPError(400, f"by: {e}") from None
        if seconds <= 0:
            raise web.HTTPError(400, "by: expected a positive duration")
        if not spawner.active or spawner.pending or not spawner.ready:
            raise web.HTTPError(409, "only a running server can be extended")
        self.finish(await spawner.extend(seconds))
