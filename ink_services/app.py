"""The tornado application every INK service runs: its routes under the service's prefix, plus
what they all share (the HubOAuth callback, Prometheus metrics, XSRF for cookie requests, JSON
404s for unknown paths)."""

import os

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.log import access_log

from .auth import NoSuchRoute, redacted_path
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


# what a service without uploads reads of a request body before answering 413 (tornado reads a
# body before any handler runs: its default of 100 MB would let anyone make a service hold it)
SMALL_BODIES = 1024 * 1024


def log_request(handler: web.RequestHandler) -> None:
    """The access log without secrets: share-link secrets replaced, query strings (which may
    carry a token or an XSRF value) left out."""
    status = handler.get_status()
    write = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    path = redacted_path(handler.request.path)
    write("%d %s %s %.2fms", status, handler.request.method, path, 1000 * handler.request.request_time())


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
        **{"log_function": log_request, **settings},
    )
    app.add_transform(FramedOnlyByTheHub)
    return app
