"""`ink ssh-proxy USER[/SERVER]`: the ProxyCommand that carries an ssh connection to a user's
SSH node job through the hub, authenticated with the stored hub token.

It asks the session's server for ``ink/ssh`` (under the server's URL, which the hub gives; with
per-user origins on the user's own host, ``http://USER.HUB/user/USER/``) with a WebSocket upgrade;
after the server's 101 the connection carries SSH's own bytes, which the hub's proxy pipes as
they are and the node hands to sshd: two threads here copy stdin to the socket and the socket to
stdout. A node of an older INK has no ``ink/ssh`` (404): then the bytes go as binary websocket
messages to ``sshnode/connect``. Nothing is printed on stdout but the node's bytes; problems go
to stderr as one sentence (ssh shows them) and set the exit code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import select
import socket
import ssl
import stat
import threading
from urllib.parse import urlsplit

from tornado import httpclient, websocket

from . import api

CHUNK = 64 * 1024
REFUSED_TOKEN = "the hub refused the token (log in again with `ink login`)"
TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")


def parse_target(target: str) -> tuple[str, str]:
    """USER or USER/SERVER, checked: (user, server name or "")."""
    if not TARGET.match(target):
        raise api.ClientError(f"{target!r}: give USER or USER/SERVER", api.USAGE)
    user, _, server = target.partition("/")
    return user, server


def node_url(server_url: str) -> str:
    """The SSH node's websocket under a server's URL (on the user's own origin, or the hub's)."""
    return re.sub(r"^http", "ws", server_url.rstrip("/")) + "/sshnode/connect"


def explain(url: str, code: int) -> api.ClientError:
    if code in (301, 302, 303, 307, 401, 403):
        message, exit_code = REFUSED_TOKEN, api.AUTH
    elif code in (404, 424, 503):
        message = "no SSH node is running there: start the SSH node app on the hub first"
        exit_code = api.exit_code_for(code)
    else:
        message, exit_code = f"the hub answered HTTP {code}", api.exit_code_for(code)
    return api.ClientError(f"{message} ({url.split('?')[0]})", exit_code)


async def relay(url: str, token: str) -> None:
    request = httpclient.HTTPRequest(
        url,
        headers={"Authorization": f"token {token}"},
        follow_redirects=False,
        connect_timeout=30,
        request_timeout=60,
    )
    try:
        conn = await websocket.websocket_connect(request, max_message_size=16 * CHUNK)
    except httpclient.HTTPClientError as e:
        raise explain(url, e.code) from None
    except OSError as e:
        raise api.ClientError(f"cannot reach the hub: {e.strerror or e}", api.UNAVAILABLE) from None

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(1, "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def upstream():
        while data := await reader.read(CHUNK):
            await conn.write_message(data, binary=True)
        conn.close()  # ssh closed its side

    async def downstream():
        while (message := await conn.read_message()) is not None:
            writer.write(message if isinstance(message, bytes) else message.encode())
            await writer.drain()

    up = asyncio.ensure_future(upstream())
    try:
        await downstream()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        up.cancel()
        conn.close()
    if conn.close_code not in (None, 1000) and conn.close_reason:
        raise api.ClientError(f"the SSH node closed the connection: {conn.close_reason}")


STREAM_CHUNK = 1024 * 1024
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def stream_connect(url: str, token: str) -> tuple[socket.socket, bytes] | None:
    """The upgraded connection to ``url`` and any bytes already read past the 101; None when
    the server has no such endpoint (404)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=30)
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE") or None)
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
    except OSError as e:
        raise api.ClientError(f"cannot reach the hub: {e.strerror or e}", api.UNAVAILABLE) from None
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: token {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = sock.recv(65536)
        if not data or len(answer) > 65536:
            raise api.ClientError("the hub closed the connection", api.UNAVAILABLE)
        answer += data
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1]) if len(lines[0].split()) > 1 and lines[0].split()[1].isdigit() else 0
    if code == 404:
        sock.close()
        return None
    expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if code != 101 or fields.get("sec-websocket-accept") != expected:
        sock.close()
        raise explain(url, code)
    sock.settimeout(None)
    return sock, rest


def pipe(sock: socket.socket, first: bytes) -> None:
    """stdin -> the socket and the socket -> stdout, one thread each, until the node hangs up.
    Where ssh gave pipes and the connection is plain TCP, the kernel moves the bytes (splice):
    they never pass through this process."""
    plain = not isinstance(sock, ssl.SSLSocket)
    # splice is Linux's; a Mac or Windows laptop copies in this process
    kernel = plain and hasattr(os, "splice") and is_pipe(0) and is_pipe(1)
    if kernel:
        import fcntl

        # a blocking TCP splice waits to fill its whole count: never for an interactive stream
        sock.setblocking(False)
        for fd in (0, 1):  # fewer, larger moves (the default pipe holds 64 KiB)
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, STREAM_CHUNK)
            except OSError:
                pass

    def copy(source, sink) -> None:
        if kernel:
            splice_all(source, sink)
            return
        while data := (sock.recv(STREAM_CHUNK) if source == sock.fileno() else os.read(source, STREAM_CHUNK)):
            if sink == sock.fileno():
                sock.sendall(data)
            else:
                write_all(sink, data)

    def up():
        try:
            copy(0, sock.fileno())
            if plain:
                sock.shutdown(socket.SHUT_WR)  # ssh closed its side
        except OSError:
            pass

    threading.Thread(target=up, daemon=True).start()
    try:
        write_all(1, first)
        copy(sock.fileno(), 1)
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        sock.close()


def splice_all(source: int, sink: int) -> None:
    """Move bytes from ``source`` to ``sink`` in the kernel until ``source`` ends."""
    readable, writable = select.poll(), select.poll()
    readable.register(source, select.POLLIN)
    writable.register(sink, select.POLLOUT)
    while True:
        try:
            if not os.splice(source, sink, STREAM_CHUNK, flags=os.SPLICE_F_NONBLOCK | os.SPLICE_F_MOVE):
                return
        except BlockingIOError:
            readable.poll()
            writable.poll()


def is_pipe(fd: int) -> bool:
    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def run(hub: str | None, target: str) -> int:
    user, server = parse_target(target)
    c = api.Client(hub, progress=False)
    api.resolve_localhost_names()
    try:
        server_url = c.server_url(user, server)
    except api.ClientError as e:
        if e.code == api.AUTH:
            raise api.ClientError(REFUSED_TOKEN, api.AUTH) from None
        raise
    connected = stream_connect(server_url.rstrip("/") + "/ink/ssh", c.token)
    if connected is not None:
        pipe(*connected)
        return 0
    asyncio.run(relay(node_url(server_url), c.token))  # a node of an older INK
    return 0
