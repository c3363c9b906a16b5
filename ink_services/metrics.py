"""Prometheus metrics of an INK service, for callers whose token has the hub's read:metrics."""

from jupyterhub.services.auth import HubOAuthenticated
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from .auth import JsonErrors


class MetricsHandler(JsonErrors, HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self):
        if "read:metrics" not in self.current_user.get("scopes", []):
            raise web.HTTPError(403, "metrics need the read:metrics scope")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())
