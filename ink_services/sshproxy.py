"""`ink ssh-proxy USER[/SERVER]`: the ProxyCommand that carries an ssh connection to a user's
SSH node job through the hub, as a websocket authenticated with the stored hub token.

ssh writes to our stdin and reads our stdout; both are relayed as binary websocket messages to
``/user/USER[/SERVER]/sshnode/connect``. Nothing is printed on stdout but the node's bytes;
problems go to stderr as one sentence (ssh shows them) and set the exit code.
"""

from __future__ import annotations

import asyncio
import os
import re
from urllib.parse import quote

from tornado import httpclient, websocket

from . import client as api

CHUNK = 64 * 1024
TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")


def node_url(hub: str, target: str) -> str:
    if not TARGET.match(target):
        raise api.ClientError(f"{target!r}: give USER or USER/SERVER", api.USAGE)
    path = "/".join(quote(part, safe="") for part in target.split("/"))
    return re.sub(r"^http", "ws", hub) + f"/user/{path}/sshnode/connect"


def explain(url: str, code: int) -> api.ClientError:
    if code in (301, 302, 303, 307, 401, 403):
        message, exit_code = "the hub refused the token (log in again with `ink login`)", api.AUTH
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
    c = api.Client(hub, progress=False)
    asyncio.run(relay(node_url(c.hub, target), c.token))
    return 0
