"""The SSH node's byte stream without relays: a Jupyter server extension of an SSH node session.

``GET <server>/ink/ssh`` with a WebSocket upgrade and the caller's hub token: the session's own
server checks the token (as for every page of it), answers 101, and hands the connection itself
to a new ``sshd -i`` run as the user, as inetd does. After the handshake the bytes are SSH's own,
not WebSocket frames: the hub's proxy (configurable-http-proxy, or nginx in front) pipes an
upgraded connection as it is, and ``ink ssh-proxy`` speaks the same. So no Python process relays
the bytes on the node, where the websocket path (``sshnode/connect``) had two (jupyter-server-
proxy and the app). With ``internal_ssl`` the connection is TLS: the server relays it once.

Only in a session whose app is the SSH node (JUPYTERHUB_DEFAULT_URL ``/sshnode/``), and, as at
``sshnode/connect``, never for a browser (any Origin or Sec-Fetch header: 403).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import tempfile
from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import SSLIOStream, StreamClosedError

from .sshnode import CHUNK, end, find_sshd, host_key, write_sshd_config

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()


class SshStreamHandler(JupyterHandler):
    def check_xsrf_cookie(self):
        """A GET; and browsers are refused outright below."""

    @web.authenticated
    async def get(self):
        headers = self.request.headers
        if "Origin" in headers or "Sec-Fetch-Site" in headers or "Sec-WebSocket-Origin" in headers:
            raise web.HTTPError(403, "the SSH node is for ssh clients (ink ssh-proxy), not browsers")
        key = headers.get("Sec-WebSocket-Key", "")
        if headers.get("Upgrade", "").lower() != "websocket" or not key:
            raise web.HTTPError(400, "connect with ink ssh-proxy (an upgraded connection)")
        sshd = find_sshd()
        if not sshd:
            raise web.HTTPError(503, "sshd is not installed on this node (openssh-server)")
        argv = [sshd, "-i", "-e", "-f", str(self.settings["ink_sshd_config"]())]
        self.clear_header("Content-Type")
        self.set_status(101)
        self.set_header("Upgrade", "websocket")
        self.set_header("Connection", "Upgrade")
        self.set_header("Sec-WebSocket-Accept", accept_key(key))
        self.finish()
        stream = self.detach()
        await stream.write(b"")  # the 101 is on its way before sshd speaks
        if isinstance(stream, SSLIOStream):
            await relay_tls(stream, argv)
            return
        fd = os.dup(stream.socket.fileno())
        stream.close()  # the server lets go of the connection: it is sshd's alone
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=fd, stdout=fd, start_new_session=True)
        finally:
            os.close(fd)
        await proc.wait()  # reaped by asyncio's child watcher, not a thread of the server's pool


async def relay_tls(stream: SSLIOStream, argv: list[str]) -> None:
    """A TLS connection (internal_ssl) cannot be handed over: relayed once, in this server."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )

    async def down():
        while data := await proc.stdout.read(CHUNK):
            await stream.write(data)

    pump = asyncio.ensure_future(down())
    try:
        while True:
            data = await stream.read_bytes(CHUNK, partial=True)
            proc.stdin.write(data)
            await proc.stdin.drain()
    except (StreamClosedError, BrokenPipeError, ConnectionResetError):
        pass
    finally:
        pump.cancel()
        stream.close()
        if proc.returncode is None:
            proc.stdin.close()
            await end(proc)


def sshd_config_maker():
    """The sshd config of this session (and its host key, the SSH node app's own), made once."""
    made: list[Path] = []

    def config() -> Path:
        if not made:
            folder = Path(tempfile.mkdtemp(prefix="ink-sshstream-"))  # mode 700
            made.append(write_sshd_config(folder, host_key(folder), "INFO"))
        return made[0]

    return config


def _jupyter_server_extension_points():
    return [{"module": "ink_spawner.apps.sshstream"}]


def _load_jupyter_server_extension(server_app):
    if os.environ.get("JUPYTERHUB_DEFAULT_URL", "").strip("/") != "sshnode":
        return  # only an SSH node session serves SSH
    web_app = server_app.web_app
    web_app.settings["ink_sshd_config"] = sshd_config_maker()
    web_app.add_handlers(".*$", [(url_path_join(web_app.settings["base_url"], "ink/ssh"), SshStreamHandler)])
    server_app.log.info("INK: the SSH node's stream at ink/ssh")
