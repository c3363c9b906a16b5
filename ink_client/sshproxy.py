"""`ink ssh-proxy USER[/SERVER]`: the ProxyCommand that carries an ssh connection to a user's
SSH node job through the hub, as a websocket authenticated with the stored hub token.

ssh writes to our stdin and reads our stdout; both are relayed as binary websocket messages to
``sshnode/connect`` under the server's URL, which the hub gives (with per-user origins it is
on the user's own host, ``http://USER.HUB/user/USER/``). Nothing is printed on stdout but the node's bytes;
problems go to stderr as one sentence (ssh shows them) and set the exit code.
"""

from __future__ import annotations

import asyncio
import os
import re

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


def run(hub: str | None, target: str) -> int:
    user, server = parse_target(target)
    c = api.Client(hub, progress=False)
    api.resolve_localhost_names()
    try:
        url = node_url(c.server_url(user, server))
    except api.ClientError as e:
        if e.code == api.AUTH:
            raise api.ClientError(REFUSED_TOKEN, api.AUTH) from None
        raise
    asyncio.run(relay(url, c.token))
    return 0
