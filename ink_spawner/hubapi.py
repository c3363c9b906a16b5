"""The one hub API endpoint a job calls: "my server listens at host:port".

It accepts exactly two fields, only with the token the hub gave that very server, and only
while that server is starting. Nothing else about a spawner can be set from a job (unlike
batchspawner's stock handler, which INK never registers).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
ROUTE = r"/api/ink/job-ready"


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
