"""What INK's services share on top of HubOAuth."""

import json
import re

from jupyterhub.services.auth import HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, web
from tornado.log import app_log, gen_log

from ink_core.errors import Refused


class TokenRequestsSkipXsrf:
    """XSRF protects browser forms; a request that carries a token is not one (a cross-site
    form cannot set an Authorization header), so job agents and scripts need no XSRF token."""

    def check_xsrf_cookie(self):
        if self.request.headers.get("Authorization", "").lower().startswith(("token ", "bearer ")):
            return None
        return super().check_xsrf_cookie()


SHARE_SECRET = re.compile(r"(/s/)[^/]+")


def redacted_path(path: str) -> str:
    """A request's path as logs may show it: share-link secrets replaced (query strings, which
    may carry a token or an XSRF value, are never logged at all)."""
    return SHARE_SECRET.sub(r"\1[secret]", path)


class JsonErrors:
    """Errors as {"status", "message"} JSON, with the handler's own message, never a traceback.
    A ``Refused`` (ink_core.errors) that reaches tornado is answered with its own status."""

    def send_error(self, status_code=500, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Refused):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def _request_summary(self) -> str:  # what tornado's own warnings print about the request
        return f"{self.request.method} {redacted_path(self.request.path)} ({self.request.remote_ip})"

    def log_exception(self, typ, value, tb):
        """tornado's, without the request's repr (its URI and headers) on unexpected errors."""
        if isinstance(value, Refused):
            gen_log.warning("%d %s: %s", value.status, self._request_summary(), value)
        elif isinstance(value, web.HTTPError):
            if value.log_message:
                fmt = "%d %s: " + value.log_message
                gen_log.warning(fmt, value.status_code, self._request_summary(), *value.args)
        else:
            app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

    def write_error(self, status_code, **kwargs):
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        elif isinstance(exc, Refused):
            reason = str(exc)
        self.set_header("Content-Type", "application/json")
        for name, value in getattr(exc, "headers", {}).items():
            self.set_header(name, value)
        self.finish({"status": status_code, "message": reason, **getattr(exc, "fields", {})})


class AnswerError(web.HTTPError):
    """An HTTP error that carries headers and JSON fields to its answer (JsonErrors writes them:
    tornado's send_error would drop headers set before it)."""

    def __init__(self, status: int, message: str, headers: dict | None = None, **fields):
        super().__init__(status, message)
        self.headers = headers or {}
        self.fields = fields


class NoSuchRoute(JsonErrors, web.RequestHandler):
    """A JSON 404 for any path a service does not serve (tornado's default is an HTML page)."""

    def prepare(self):
        raise web.HTTPError(404, "no such route")


def refuse_anonymous(handler) -> None:
    """APIs answer an unauthenticated call with 403 JSON, not a redirect to the login page."""
    if handler.current_user is None:
        raise web.HTTPError(403, "log in, or send a token: Authorization: token <API token>")


class HubApi:
    """The hub's REST API, called with the service's own token (its role's scopes)."""

    def _hub_tls(self) -> dict:
        """The hub's internal_ssl: its CA, and the service's own certificate."""
        auth = self.hub_auth
        if not auth.certfile:
            return {}
        return {"client_cert": auth.certfile, "client_key": auth.keyfile, "ca_certs": auth.client_ca or None}

    async def hub_get(self, path: str):
        auth = self.hub_auth
        response = await httpclient.AsyncHTTPClient().fetch(
            url_path_join(auth.api_url, path),
            headers={"Authorization": f"token {auth.api_token}"},
            request_timeout=10,
            **self._hub_tls(),
        )
        return json.loads(response.body)

    async def hub_post(self, path: str, body: dict, token: str) -> tuple[int, dict]:
        """POST to the hub's API with ``token`` (a caller's own, so the hub judges the caller):
        the hub's status and JSON answer, errors included, for the service to pass on."""
        response = await httpclient.AsyncHTTPClient().fetch(
            url_path_join(self.hub_auth.api_url, path),
            method="POST",
            body=json.dumps(body),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            request_timeout=60,
            raise_error=False,
            **self._hub_tls(),
        )
        if response.code == 599:
            raise web.HTTPError(502, "the hub did not answer")
        try:
            answer = json.loads(response.body or b"{}")
        except ValueError:
            answer = {"status": response.code, "message": "the hub's answer was not JSON"}
        return response.code, answer


def job_server_of(handler) -> str | None:
    """The name of the caller's server whose own token made this request ("" for the default
    server), or None: a request from a browser (cookies) or with an ordinary API token (a
    laptop's) is not a job's. A server's token is sent as a header and is scoped to that one
    server (``access:servers!server=USER/NAME``), which a user's API token is not."""
    header = handler.request.headers.get("Authorization", "")
    if not header.lower().startswith(("token ", "bearer ")):
        return None
    prefix = f"access:servers!server={handler.current_user['name']}/"
    for scope in handler.current_user.get("scopes") or []:
        if scope.startswith(prefix):
            return scope[len(prefix) :]
    return None


class ServiceHandler(JsonErrors, TokenRequestsSkipXsrf, HubOAuthenticated, web.RequestHandler):
    """The base of every INK service's handlers: HubOAuth login (cookies for pages, tokens for
    scripts and jobs), XSRF for cookie requests only, errors as JSON without tracebacks, and
    the request's JSON body."""

    def json_body(self, empty: dict | None = None) -> dict:
        """The request's JSON object; 400 for anything else. An empty body is ``empty`` (None:
        refused as well)."""
        if not self.request.body and empty is not None:
            return dict(empty)
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "expected a JSON object")
        return body
