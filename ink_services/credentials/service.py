"""The credentials service: a hub-managed tornado app (HubOAuth).

Routes under its prefix (/services/ink-credentials/):
  GET  ./                 the user's Kerberos status widget (the home page embeds it)
  GET  api/status         JSON: valid until, renewable until, state (never the ticket)
  POST api/renew          renew now
  POST api/login          password -> AS exchange on the server (SSO users hand INK a ticket)
  POST api/keytab         keytab upload -> ticket
  GET  api/ticket         the ticket cache itself, for the caller's own jobs (server token)
  GET  metrics            Prometheus, for tokens with the hub's read:metrics scope
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import tempfile
import time
from pathlib import Path

from tornado import web

from ink_spawner.configurer import credentials_store, load_site_config
from ink_spawner.kerberos import tickets
from ink_spawner.kerberos.store import TicketStore
from ink_spawner.site_schema import with_defaults

from ..app import SMALL_BODIES, hub_look, service_app
from ..auth import AnswerError, ServiceHandler, job_server_of
from ..process import run_service, service_prefix, start_logging
from .renewer import Renewer

log = logging.getLogger("ink.credentials")
WARN_BEFORE_LIMIT = 24 * 3600
MAX_KEYTAB = 64 * 1024


def status_of(store: TicketStore, username: str, warn_before: float = WARN_BEFORE_LIMIT) -> dict:
    if not store.has(username):
        return {"held": False, "state": "none", "message": "INK holds no Kerberos ticket for you."}
    state = store.state(username)
    now = time.time()
    answer = {
        "held": True,
        "state": state.get("state", "ok"),
        "principal": state.get("principal", ""),
        "valid_until": state.get("endtime", 0),
        "renewable_until": state.get("renew_till", 0),
        "renewals": state.get("renewals", 0),
        "error": state.get("error", ""),
    }
    answer["near_limit"] = answer["renewable_until"] - now < warn_before
    if answer["state"] == "expired" or now >= answer["renewable_until"]:
        answer["state"] = "expired"
        answer["message"] = "Your Kerberos ticket reached its renewable limit: log in again."
    elif answer["near_limit"]:
        answer["message"] = "Your Kerberos ticket reaches its renewable limit soon: log in again before then."
    return answer


class BaseHandler(ServiceHandler):
    @property
    def store(self) -> TicketStore:
        return self.settings["store"]

    @property
    def username(self) -> str:
        return self.current_user["name"]


class WidgetHandler(BaseHandler):
    @web.authenticated
    def get(self):
        self.render(
            "credentials.html",
            status=status_of(self.store, self.username),
            fmt=lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S"),
            prefix=self.settings["prefix"],
            head=hub_look(self.settings["prefix"], framed=True),
        )


class StatusHandler(BaseHandler):
    @web.authenticated
    def get(self):
        self.finish(status_of(self.store, self.username))


RENEW_EVERY = 10.0  # seconds between two "Renew now" of one user (each is a KDC exchange)


class RenewHandler(BaseHandler):
    @web.authenticated
    async def post(self):
        if not self.store.has(self.username):
            raise web.HTTPError(404, "INK holds no Kerberos ticket for you")
        last = self.settings.setdefault("last_renew", {})
        wait = RENEW_EVERY - (time.monotonic() - last.get(self.username, -RENEW_EVERY))
        if wait > 0:
            seconds = int(wait) + 1
            raise AnswerError(
                429, f"renewed a moment ago: try again in {seconds} s", {"Retry-After": str(seconds)}
            )
        last[self.username] = time.monotonic()
        await self.settings["renewer"].renew_user(self.username)
        self.finish(status_of(self.store, self.username))


class LoginHandler(BaseHandler):
    @web.authenticated
    async def post(self):
        password = (
            self.get_body_argument("password", "")
            if not self.request.headers.get("Content-Type", "").startswith("application/json")
            else self.json_body(empty={}).get("password", "")
        )
        if not isinstance(password, str) or not password:
            raise web.HTTPError(400, "password: required")
        principal = tickets.principal_for(self.username, self.settings["realm"])
        try:
            times = await asyncio.to_thread(
                tickets.login_password, principal, password, self.store.ccache_path(self.username)
            )
        except tickets.TicketError as e:
            raise web.HTTPError(503 if e.unreachable else 400, f"Kerberos refused the login: {e}") from None
        self.store.record_login(self.username, times.to_dict())
        self.finish(status_of(self.store, self.username))


class KeytabHandler(BaseHandler):
    @web.authenticated
    async def post(self):
        files = self.request.files.get("keytab") or []
        if not files:
            raise web.HTTPError(400, "keytab: a file is required")
        data = files[0]["body"]
        if len(data) > MAX_KEYTAB:
            raise web.HTTPError(413, "keytab: larger than 64 KiB")
        principal = tickets.principal_for(self.username, self.settings["realm"])
        with tempfile.TemporaryDirectory(dir=self.store.directory) as tmp:
            keytab = Path(tmp) / "keytab"
            keytab.write_bytes(data)
            try:
                times = await asyncio.to_thread(
                    tickets.login_keytab, principal, keytab, self.store.ccache_path(self.username)
                )
            except tickets.TicketError as e:
                raise web.HTTPError(400, f"Kerberos refused the keytab: {e}") from None
        self.store.record_login(self.username, times.to_dict())
        self.finish(status_of(self.store, self.username))


class TicketHandler(BaseHandler):
    """The caller's own ticket, only for the caller's jobs: the agent asks with its server's
    token. A page in the browser (cookies) or a laptop's API token gets 403: a Kerberos ticket is
    a password-equivalent that only the user's running jobs need."""

    @web.authenticated
    def get(self):
        if job_server_of(self) is None:
            raise web.HTTPError(
                403, "the Kerberos ticket goes only to your running jobs (their server's own token)"
            )
        data = self.store.read(self.username)
        if data is None:
            raise web.HTTPError(404, "INK holds no Kerberos ticket for you")
        state = self.store.state(self.username)
        if state.get("state") == "expired" or time.time() >= state.get("endtime", 0):
            raise web.HTTPError(410, "your Kerberos ticket has expired: log in to INK again")
        left = max(0, state.get("endtime", 0) - time.time())
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Ink-Refresh-After", str(int(max(5, min(300, left / 4)))))
        self.finish(data)


def make_app(store: TicketStore, renewer: Renewer, realm: str, prefix: str) -> web.Application:
    return service_app(
        prefix,
        [
            ("", WidgetHandler),
            ("api/status", StatusHandler),
            ("api/renew", RenewHandler),
            ("api/login", LoginHandler),
            ("api/keytab", KeytabHandler),
            ("api/ticket", TicketHandler),
        ],
        framed_by_hub=True,  # a panel of the hub's home page
        store=store,
        renewer=renewer,
        realm=realm,
        template_path=str(Path(__file__).parent / "templates"),
    )


def main(argv=None):
    """The service, on its own section of the site file (INK_CONFIG)."""
    start_logging("ink-credentials")
    site = load_site_config()
    creds = with_defaults("credentials", site.credentials)
    store = TicketStore(credentials_store(site))
    renewer = Renewer(
        store, fraction=creds["renew_fraction"], retry_base=creds["retry_base"], retry_max=creds["retry_max"]
    )
    app = make_app(store, renewer, creds["realm"], service_prefix("ink-credentials"))
    run_service(app, log, creds["port"], SMALL_BODIES, background=[lambda: renewer.run(creds["interval"])])
