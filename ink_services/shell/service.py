"""The web shell service (hub-managed, HubOAuth): a terminal in the browser onto a login node.

  GET  ./              the terminal page (xterm.js)
  WS   ./terminal      the caller's own new terminal (terminado's JSON messages)
  GET  ./api/prefs     the caller's font size and theme
  PUT  ./api/prefs     change them (XSRF or token)
  GET  ./metrics       Prometheus, for tokens with read:metrics

The websocket never takes a user name from the request: it opens a shell for whoever the hub
says is calling, so one user cannot reach another's shell. Its origin must be the hub's.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from jupyterhub.services.auth import HubOAuthenticated
from prometheus_client import Counter, Gauge
from terminado import TermSocket
from terminado.management import MaxTerminalsReached
from tornado import web

from ink_core.shell_settings import ShellSettings
from ink_spawner.configurer import credentials_store, load_site_config, service_records
from ink_spawner.site_schema import with_defaults

from ..app import SMALL_BODIES, hub_look, nav_bar, service_app
from ..auth import ServiceHandler
from ..process import run_service, service_prefix, start_logging
from .prefs import PrefsError, PrefsStore
from .terminals import ShellRefused, UserTermManager

log = logging.getLogger("ink.shell")
SESSIONS = Counter("ink_shell_sessions_total", "web shell sessions opened", ["outcome"])
OPEN = Gauge("ink_shell_open_terminals", "web shell terminals open now")
MAX_INPUT = 64 * 1024


class PageHandler(ServiceHandler):
    @web.authenticated
    def get(self):
        me = self.current_user["name"]
        self.render(
            "shell.html",
            prefix=self.settings["prefix"],
            prefs=self.settings["prefs"].get(me),
            xsrf=self.xsrf_token.decode(),
            user=me,
            mode=self.settings["shell"].mode,
            head=hub_look(self.settings["prefix"]),
            nav=nav_bar(me, "shell"),
        )


class PrefsHandler(ServiceHandler):
    @web.authenticated
    def get(self):
        self.finish(self.settings["prefs"].get(self.current_user["name"]))

    @web.authenticated
    def put(self):
        body = self.json_body()
        try:
            prefs = self.settings["prefs"].update(self.current_user["name"], body)
        except PrefsError as e:
            raise web.HTTPError(400, str(e)) from None
        self.finish(prefs)


class TerminalSocket(HubOAuthenticated, TermSocket):
    """terminado's socket, opened only for an authenticated caller, always onto their own shell."""

    async def get(self, *args, **kwargs):
        if self.current_user is None:
            raise web.HTTPError(403, "log in to the hub first")
        return await super().get(*args, **kwargs)

    def open(self, *args):
        manager: UserTermManager = self.term_manager
        name = self.current_user["name"]
        try:
            self.terminal = manager.open_for(name)
        except (ShellRefused, MaxTerminalsReached) as e:
            SESSIONS.labels("refused").inc()
            log.warning("shell refused for %s: %s", name, e)
            self.send_json_message(["stdout", f"\r\nINK: {e}\r\n"])
            self.send_json_message(["disconnect", 1])
            self.close(1008, str(e)[:120])
            return
        except OSError as e:  # runuser/ssh missing, fork failed
            SESSIONS.labels("failed").inc()
            log.error("shell for %s failed to start: %s", name, e)
            self.send_json_message(
                ["stdout", "\r\nINK: the shell could not be started; see the service log.\r\n"]
            )
            self.close(1011, "shell failed to start")
            return
        SESSIONS.labels("opened").inc()
        OPEN.set(len(manager.ptys_by_fd))
        self.term_name = name
        self.terminal.clients.append(self)
        self.send_json_message(["setup", {}])

    async def on_message(self, message):
        """terminado's messages, checked: ["stdin", text] and ["set_size", rows, cols]."""
        if self.terminal is None:
            return
        try:
            command = json.loads(message)
        except ValueError:
            return
        if not isinstance(command, list) or not command:
            return
        if command[0] == "stdin" and len(command) == 2 and isinstance(command[1], str):
            await self.stdin_to_ptyproc(command[1][:MAX_INPUT])
        elif command[0] == "set_size" and len(command) >= 3:
            rows, cols = command[1], command[2]
            if all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in (rows, cols)):
                self.size = (rows, cols)
                self.terminal.resize_to_smallest()

    def on_close(self):
        if self.terminal is not None:
            super().on_close()
        OPEN.set(len(self.term_manager.ptys_by_fd))


def xterm_dir() -> str:
    """xterm.js and its fit add-on (npm), installed by scripts/install into the prefix."""
    return os.path.join(sys.prefix, "node_modules", "@xterm")


def make_app(settings: ShellSettings, prefs: PrefsStore, prefix: str) -> web.Application:
    manager = UserTermManager(settings)

    return service_app(
        prefix,
        [
            ("", PageHandler),
            ("terminal", TerminalSocket, {"term_manager": manager}),
            ("api/prefs", PrefsHandler),
            ("static/xterm/(.*)", web.StaticFileHandler, {"path": xterm_dir()}),
        ],
        shell=settings,
        prefs=prefs,
        term_manager=manager,
        template_path=str(Path(__file__).parent / "templates"),
    )


def main(argv=None):
    """The service, on its own section of the site file (INK_CONFIG)."""
    start_logging("ink-shell")
    site = load_site_config()
    shell = with_defaults("shell", site.shell)
    settings = ShellSettings(
        mode=shell["mode"],
        hosts=list(shell["hosts"]),
        keep_sessions=bool(shell["keep_sessions"]),
        ssh_options=list(shell["ssh_options"]),
        credentials_store=credentials_store(site) if site.credentials.get("enabled") else "",
        max_per_user=shell["max_per_user"],
    )
    app = make_app(settings, PrefsStore(service_records(site, "shell-prefs")), service_prefix("ink-shell"))
    run_service(app, log, shell["port"], SMALL_BODIES, about=f" ({settings.mode} mode)")
