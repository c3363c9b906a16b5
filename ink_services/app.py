"""The tornado application every INK service runs: its routes under the service's prefix, plus
what they all share (the HubOAuth callback, Prometheus metrics, XSRF for cookie requests, JSON
404s for unknown paths)."""

import hashlib
import hmac
import os

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.log import access_log

from ink_core import STATIC, pagelook

from .auth import NoSuchRoute, redacted_path
from .metrics import MetricsHandler


class NeverFramed(web.OutputTransform):
    """No page of an INK service may be framed (``frame-ancestors 'none'``, X-Frame-Options
    DENY): a framing page could read or click through it. An answer that sets its own policy
    keeps it (the file service's PDF previews are framed by its own page)."""

    policy, legacy = "frame-ancestors 'none'", "DENY"

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        headers.setdefault("Content-Security-Policy", self.policy)
        headers.setdefault("X-Frame-Options", self.legacy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        return status_code, headers, chunk


class FramedOnlyByTheHub(NeverFramed):
    """For the panels the hub's home page embeds (the dashboard, the Kerberos panel): framed
    only by pages of the hub's own origin (``'self'``), which with per-user origins serves no
    user's code."""

    policy, legacy = "frame-ancestors 'self'", "SAMEORIGIN"


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


def cookie_secret() -> bytes:
    """The key of the service's login cookies, the same for as long as the hub keeps the
    service's token: a service the hub restarts (after a crash) keeps its users logged in. It is
    derived from that token (HMAC-SHA256), which only the hub and the service hold."""
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        return os.urandom(32)
    return hmac.new(token.encode(), b"ink service login cookies", hashlib.sha256).digest()


def service_app(prefix: str, routes: list[tuple], framed_by_hub: bool = False, **settings) -> web.Application:
    """``routes``: (path below the prefix, handler[, its arguments]); "" is the prefix itself.
    ``framed_by_hub``: the hub's home page embeds this service's page."""

    def under_prefix(path: str) -> str:
        return url_path_join(prefix, path) if path else prefix

    handlers = [
        (under_prefix("oauth_callback"), HubOAuthCallbackHandler),
        (under_prefix("metrics"), MetricsHandler),
        # the scripts and stylesheet INK's pages share (ink_core/static)
        (under_prefix("static/ink/(.*)"), web.StaticFileHandler, {"path": str(STATIC)}),
    ]
    handlers += [(under_prefix(path), *rest) for path, *rest in routes]
    app = web.Application(
        handlers,
        prefix=prefix,
        cookie_secret=cookie_secret(),
        xsrf_cookies=True,
        default_handler_class=NoSuchRoute,
        **{"log_function": log_request, **settings},
    )
    app.add_transform(FramedOnlyByTheHub if framed_by_hub else NeverFramed)
    return app


def hub_prefix() -> str:
    """The hub's base URL (``/`` unless the site sets one): where its pages and static files are."""
    return os.environ.get("JUPYTERHUB_BASE_URL", "/")


def nav_bar(user: str = "", active: str = "") -> str:
    """The hub's navigation bar on a service page (ink_core/pagelook.py)."""
    return pagelook.nav_bar(hub_prefix(), user, active)


def hub_look(prefix: str, framed: bool = False) -> str:
    """The hub's stylesheet and dark mode, INK's shared stylesheet and fetch helper, on a
    service page (ink_core/pagelook.py)."""
    return pagelook.hub_look(hub_prefix(), prefix, framed)
