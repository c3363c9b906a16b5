"""INK's SSH node: runs inside the user's job (as the user), behind jupyter-server-proxy.

    python -m ink_spawner.apps.sshnode --unix-socket SOCKET

  GET ./          the page: the ``~/.ssh/config`` stanza to copy, the node's host key
  GET ./connect   a websocket; each connection is one OpenSSH ``sshd -i`` run as the user

No port is opened on the worker node: ssh, scp, sftp and VS Code Remote-SSH reach the job's sshd
only as a byte stream through the hub's proxy and the single-user server, which have already
checked the caller's hub token. That is the authentication; sshd runs as the user (it can give
no one else's account) and accepts the key the client offers, so a physicist needs no key
registered anywhere. Browsers are refused at ./connect (any Origin header), so a web page
cannot reach the node with the user's cookies.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tornado import web, websocket
from tornado.iostream import StreamClosedError

from ink_core import pagelook
from ink_spawner.apps import serve_on_unix_socket
from ink_spawner.nodecheck import pty_problem

CHUNK = 64 * 1024
SBIN = "/usr/sbin:/usr/local/sbin:/sbin"

SSHD_CONFIG = """\
# INK's SSH node: one sshd per connection (inetd mode), run as {user}, fed through the hub
HostKey {host_key}
PidFile none
UsePAM no
AllowUsers {user}
PermitRootLogin no
PubkeyAuthentication yes
AuthorizedKeysFile none
# the hub authenticated the connection: accept the key the client offers (see the module doc)
AuthorizedKeysCommand /bin/echo %t %k
AuthorizedKeysCommandUser {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
GSSAPIAuthentication no
# local forwarding for VS Code Remote-SSH; nothing listens on the node for others
AllowTcpForwarding local
AllowStreamLocalForwarding no
GatewayPorts no
PermitTunnel no
X11Forwarding no
PermitUserEnvironment no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
AcceptEnv LANG LC_* TERM COLORTERM
LogLevel {log_level}
{set_env}
"""

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SSH node {host}</title>
{head}
<style>
main {{ max-width: 60rem; margin: 0 auto; padding: 0 1rem }}
pre {{ background: var(--bs-tertiary-bg); border: 1px solid var(--bs-border-color); padding: .8rem 1rem; overflow-x: auto }}
code, pre {{ font-family: ui-monospace, monospace; font-size: 14px }}
.problem {{ background: var(--bs-danger-bg-subtle); border: 1px solid var(--bs-danger-border-subtle); padding: .8rem 1rem }}
button {{ font: inherit; padding: .2rem .8rem }}
</style></head><body>{bar}<main>
<h1 class="h3">🔑 SSH node <code id="ink-ssh-host">{host}</code></h1>
{problem}
<p>Your job runs on <b>{host}</b> as <b>{user}</b>. Reach it from your own computer with
<code>ssh</code>, <code>scp</code>, <code>sftp</code> or VS Code Remote-SSH. The connection goes
through the hub with your hub token; no port is opened on the node.</p>
<ol>
<li>Install INK's command line once: <code>pip install ink-workbench</code>.</li>
<li>Make an API token on <a id="ink-token-page" href="{hub_url}hub/token">the token page</a> and log in with it:
<code>ink login <span class="ink-hub-url">HUB</span></code>.</li>
<li>Copy this into <code>~/.ssh/config</code>:
<button id="ink-ssh-copy" type="button">Copy</button>
<pre id="ink-ssh-config">Host {alias}
    User {user}
    HostKeyAlias {alias}
    ProxyCommand ink --hub <span class="ink-hub-url">HUB</span> ssh-proxy {target}
    ServerAliveInterval 30</pre></li>
<li>Then: <code>ssh {alias}</code>, <code>scp results.root {alias}:</code>, or in VS Code
<i>Remote-SSH: Connect to Host…</i> → <code>{alias}</code>.</li>
</ol>
<p>Any SSH key of yours is accepted (your hub token is what lets you in); without one, make one
with <code>ssh-keygen</code>. The first connection asks you to trust the node's host key;
it must be:</p>
<pre id="ink-ssh-hostkey">{fingerprint}</pre>
<p>The node ends with your job: stop it on the hub's home page when you are done.</p>
<script>
const hub = ({hub_host_js} || location.origin) + {base_url_js};
document.querySelectorAll(".ink-hub-url").forEach(e => {{ e.textContent = hub.replace(/\\/$/, ""); }});
document.getElementById("ink-ssh-copy").onclick = () =>
  navigator.clipboard.writeText(document.getElementById("ink-ssh-config").textContent);
</script>
</main></body></html>
"""


def find_sshd() -> str | None:
    return shutil.which("sshd", path=os.environ.get("PATH", "") + os.pathsep + SBIN)


def host_key(folder: Path) -> Path:
    """The node's host key, kept in ~/.ink/ssh so the user's known_hosts stays valid from job to
    job; a job whose home is not writable gets one for this job only."""
    for place in (Path.home() / ".ink" / "ssh", folder):
        key = place / "ssh_host_ed25519_key"
        try:
            place.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not key.exists():
                tmp = place / f".new-{os.getpid()}"
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ink-ssh-node", "-f", str(tmp)],
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
                os.replace(tmp.with_suffix(tmp.suffix + ".pub"), key.with_suffix(".pub"))
                os.replace(tmp, key)
            return key
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"ink-sshnode: no host key in {place}: {e}", file=sys.stderr, flush=True)
    raise RuntimeError("cannot make an SSH host key")


def fingerprint(key: Path) -> str:
    result = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True)
    return result.stdout.strip() or "(unknown)"


def write_sshd_config(folder: Path, key: Path, log_level: str) -> Path:
    user = getpass.getuser()
    env = [f"KRB5CCNAME={os.environ['KRB5CCNAME']}"] if os.environ.get("KRB5CCNAME") else []
    config = folder / "sshd_config"
    config.write_text(
        SSHD_CONFIG.format(
            user=user,
            host_key=key,
            log_level=log_level,
            set_env=f"SetEnv {' '.join(env)}" if env else "",
        )
    )
    return config


class PageHandler(web.RequestHandler):
    def get(self):
        self.set_header("Cache-Control", "no-store")
        self.finish(self.settings["page"])


class ConnectHandler(websocket.WebSocketHandler):
    """One websocket, one ``sshd -i``: binary messages in are sshd's input, its output goes out."""

    sshd: asyncio.subprocess.Process | None = None

    def prepare(self):
        # Browsers always send Origin (and Sec-Fetch-*) on a websocket; `ink ssh-proxy` sends
        # neither. Tornado's check_origin trusts same-origin pages, but on a shared hub origin
        # another user's page is same-origin too: no browser may reach sshd, whatever its origin.
        headers = self.request.headers
        if "Origin" in headers or "Sec-Fetch-Site" in headers or "Sec-WebSocket-Origin" in headers:
            raise web.HTTPError(403, "the SSH node is for ssh clients (ink ssh-proxy), not browsers")

    async def open(self):
        sshd = self.settings["sshd"]
        if not sshd:
            self.close(1011, "sshd is not installed on this node (openssh-server)")
            return
        try:
            self.sshd = await asyncio.create_subprocess_exec(
                sshd,
                "-i",
                "-e",
                "-f",
                str(self.settings["sshd_config"]),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            print(f"ink-sshnode: cannot run {sshd}: {e.strerror}", file=sys.stderr, flush=True)
            self.close(1011, f"cannot run sshd on this node: {e.strerror}")
            return
        self.pump = asyncio.ensure_future(self.send_output())

    async def send_output(self):
        try:
            while data := await self.sshd.stdout.read(CHUNK):
                await self.write_message(data, binary=True)
        except (websocket.WebSocketClosedError, StreamClosedError):
            pass
        finally:
            self.close()

    async def on_message(self, message):
        if self.sshd is None or self.sshd.stdin.is_closing():
            return
        if isinstance(message, str):
            message = message.encode()
        try:
            self.sshd.stdin.write(message)
            await self.sshd.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self.close()

    def on_close(self):
        if self.sshd is not None and self.sshd.returncode is None:
            self.sshd.stdin.close()
            asyncio.ensure_future(end(self.sshd))


async def end(proc: asyncio.subprocess.Process, grace: float = 5) -> None:
    """sshd ends when its input does; a session that does not is ended with its process group."""
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def render_page(problems: list[str], user: str, server: str, key: Path) -> str:
    """The node's page: fixed for the life of the job, so made once."""
    base_url = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    # with per-user origins this page is on the user's own host; the hub is on its own
    hub_host = os.environ.get("JUPYTERHUB_HOST", "")
    alias = f"ink-{user}" + (f"-{server}" if server else "")
    hub, me = pagelook.in_job()
    return PAGE.format(
        head=pagelook.hub_look(hub),
        bar=pagelook.nav_bar(hub, me),
        host=html.escape(socket.gethostname()),
        user=html.escape(user),
        alias=html.escape(alias),
        target=html.escape(f"{user}/{server}" if server else user),
        hub_url=html.escape(hub_host + base_url),
        hub_host_js=json.dumps(hub_host).replace("<", "\\u003c"),
        base_url_js=json.dumps(base_url).replace("<", "\\u003c"),
        fingerprint=html.escape(fingerprint(key.with_suffix(".pub"))),
        problem="".join(f'<p class="problem">{html.escape(p)}</p>' for p in problems),
    )


def make_app(folder: Path, log_level: str = "INFO") -> web.Application:
    sshd = find_sshd()
    problems = [] if sshd else ["sshd is not installed on this node: ask the site to install openssh-server"]
    problems += [p for p in [pty_problem()] if p]
    for problem in problems:
        print(f"ink-sshnode: {problem}", file=sys.stderr, flush=True)
    key = host_key(folder)
    user = getpass.getuser()
    return web.Application(
        [(r"/", PageHandler), (r"/connect", ConnectHandler)],
        sshd=sshd,
        sshd_config=write_sshd_config(folder, key, log_level),
        page=render_page(problems, user, os.environ.get("JUPYTERHUB_SERVER_NAME", ""), key),
        websocket_max_message_size=4 * CHUNK,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-sshnode")
    parser.add_argument("--unix-socket", required=True, help="where to listen (from the proxy)")
    parser.add_argument("--log-level", default="INFO", help="sshd's LogLevel (its log is the job's)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="ink-sshnode-"))  # mode 700: the sshd config
    try:
        app = make_app(folder, args.log_level)
    except RuntimeError as e:
        print(f"ink-sshnode: {e}", file=sys.stderr, flush=True)
        return 1
    serve_on_unix_socket(app, args.unix_socket, on_stop=lambda: shutil.rmtree(folder, ignore_errors=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
