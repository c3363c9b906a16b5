"""Terminals onto a login node, one per browser tab, each running as the user who opened it.

Two ways to reach the login node (``ShellSettings.mode``):
  local  the hub's host is the login node: ``runuser -l USER`` (a login shell with the user's
         uid, groups and a clean environment); without root, only the service's own account.
  ssh    ``ssh -tt`` to one of the site's login hosts as the user, authenticated with the
         user's Kerberos ticket (GSSAPI) from the credentials service's store; the ticket is
         copied for the session into a file only the user can read and removed at the end.

With ``keep_sessions`` the shell runs inside ``tmux new-session -A``: closing the tab detaches,
the next tab reattaches. Otherwise closing the tab ends everything the session started.
"""

from __future__ import annotations

import logging
import os
import pwd
import random
import signal
from pathlib import Path

import psutil
from terminado import UniqueTermManager
from terminado.management import PtyWithClients

from ink_core.names import USERNAME
from ink_core.shell_settings import ShellSettings
from ink_spawner.accounts import SystemAccountRefused, user_account
from ink_spawner.kerberos.store import deliver_ticket

log = logging.getLogger("ink.shell")
SESSION_NAME = "ink-web"


class ShellRefused(Exception):
    """The shell cannot be opened for this user; the message is for the user."""


def account(username: str) -> pwd.struct_passwd:
    if not isinstance(username, str) or not USERNAME.match(username):
        raise ShellRefused(f"not a valid user name: {username!r}")
    try:
        return user_account(username, "open a shell")
    except KeyError:
        raise ShellRefused(f"there is no account {username!r} on the login node") from None
    except SystemAccountRefused as e:
        raise ShellRefused(str(e)) from None


def inner_command(settings: ShellSettings) -> list[str]:
    """What runs on the login node once logged in: the login shell, or a tmux to come back to."""
    if settings.keep_sessions:
        return ["tmux", "new-session", "-A", "-s", SESSION_NAME]
    return []


def local_command(settings: ShellSettings, user: pwd.struct_passwd) -> list[str]:
    inner = inner_command(settings)
    if os.geteuid() == 0:
        return ["runuser", "-l", user.pw_name] + (["-c", " ".join(inner)] if inner else [])
    if user.pw_uid != os.geteuid():
        raise ShellRefused("this INK runs without root: a shell is offered only to its own account")
    return inner or [user.pw_shell or "/bin/sh", "-l"]


def ssh_command(settings: ShellSettings, user: pwd.struct_passwd, ccache: str) -> list[str]:
    host = random.choice(settings.hosts)
    argv = ["ssh", "-tt", "-l", user.pw_name, "-o", "BatchMode=yes", "-o", "GSSAPIAuthentication=yes"]
    argv += ["-o", "GSSAPIDelegateCredentials=yes", "-o", "PasswordAuthentication=no"]
    for option in settings.ssh_options:
        argv += ["-o", option]
    argv += ["--", host] + inner_command(settings)
    env = ["env", "-i", f"HOME={user.pw_dir}", f"USER={user.pw_name}", "TERM=xterm-256color"]
    env += [f"KRB5CCNAME=FILE:{ccache}", "PATH=/usr/local/bin:/usr/bin:/bin"]
    if "KRB5_CONFIG" in os.environ:
        env.append(f"KRB5_CONFIG={os.environ['KRB5_CONFIG']}")
    if os.geteuid() == 0:
        return ["runuser", "-u", user.pw_name, "--"] + env + argv
    if user.pw_uid != os.geteuid():
        raise ShellRefused("this INK runs without root: a shell is offered only to its own account")
    return env + argv


def session_ticket(settings: ShellSettings, user: pwd.struct_passwd) -> str:
    """A copy of the user's ticket for this session, owned by the user, mode 600."""
    try:
        if not settings.credentials_store:
            raise FileNotFoundError
        return deliver_ticket(settings.credentials_store, user)
    except FileNotFoundError:
        raise ShellRefused(
            "INK holds no Kerberos ticket for you: log in again or renew it on the home page"
        ) from None


class UserTermManager(UniqueTermManager):
    """One terminal per websocket, started for the websocket's user; ended with the tab.

    The only limit is per user (``max_per_user``): a global pool (terminado's max_terminals)
    would let 25 users with 8 tabs each lock everyone else out."""

    def __init__(self, settings: ShellSettings, **kwargs):
        super().__init__(shell_command=[], max_terminals=None, **kwargs)
        self.settings = settings

    def make_term_env(self, height=25, width=80, **kwargs) -> dict[str, str]:
        # never the service's own environment: it holds the service's hub token
        return {
            "TERM": "xterm-256color",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "COLUMNS": str(width),
            "LINES": str(height),
        }

    def open_for(self, username: str) -> PtyWithClients:
        user = account(username)
        if self.owners().count(username) >= self.settings.max_per_user:
            raise ShellRefused(f"you have {self.settings.max_per_user} shells open already: close one first")
        cleanup = []
        if self.settings.mode == "ssh":
            ccache = session_ticket(self.settings, user)
            cleanup.append(ccache)
            argv = ssh_command(self.settings, user, ccache)
        else:
            argv = local_command(self.settings, user)
        terminal = self.new_terminal(
            shell_command=argv, cwd=user.pw_dir if os.path.isdir(user.pw_dir) else "/"
        )
        terminal.owner, terminal.cleanup = username, cleanup
        self.start_reading(terminal)
        log.info("shell opened for %s (%s, pid %d)", username, self.settings.mode, terminal.ptyproc.pid)
        return terminal

    def owners(self) -> list[str]:
        return [t.owner for t in self.ptys_by_fd.values()]

    def client_disconnected(self, websocket) -> None:
        terminal = websocket.terminal
        if terminal is not None:
            end_session(terminal)

    def on_eof(self, ptywclients) -> None:
        super().on_eof(ptywclients)
        for path in getattr(ptywclients, "cleanup", []):
            Path(path).unlink(missing_ok=True)


def end_session(terminal: PtyWithClients) -> None:
    """End what the tab started: every process of the terminal's session (a tmux server that
    detached itself into its own session survives, as it would on a login node)."""
    sid = terminal.ptyproc.pid
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    for proc in members:
        try:
            proc.send_signal(signal.SIGHUP)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(members, timeout=2)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
