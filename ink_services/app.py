"""The tornado application every INK service runs: its routes under the service's prefix, plus
what they all share (the HubOAuth callback, Prometheus metrics, XSRF for cookie requests, JSON
404s for unknown paths)."""

import os

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web

from .auth import NoSuchRoute
from .metrics import MetricsHandler


class FramedOnlyByTheHub(web.OutputTransform):
    """Every answer of every INK service may be framed only by pages of its own origin (the
    hub's home page embeds the dashboard and the Kerberos panel), never by another site:
    ``frame-ancestors 'self'`` (and X-Frame-Options for old browsers)."""

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        headers.setdefault("Content-Security-Policy", "frame-ancestors 'self'")
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        return status_code, headers, chunk


def service_app(prefix: str, routes: list[tuple], **settings) -> web.Application:
    """``routes``: (path below the prefix, handler[, its arguments]); "" is the prefix itself."""

    def under_prefix(path: str) -> str:
        return url_path_join(prefix, path) if path else prefix

    handlers = [
        (under_prefix("oauth_callback"), HubOAuthCallbackHandler),
        (under_prefix("metrics"), MetricsHandler),
    ]
    handlers += [(under_prefix(path), *rest) for path, *rest in routes]
    app = web.Application(
        handlers,
        prefix=prefix,
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,
        default_handler_class=NoSuchRoute,
        **settings,
    )
    app.add_transform(FramedOnlyByTheHub)
    return app
