"""Talking to the web shell's websocket the way xterm.js does (terminado's JSON messages)."""

import asyncio
import json

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


def terminal_output(url, headers, command, marker, timeout=20) -> str:
    """Open the shell's websocket with ``headers``, run ``command``, return output up to ``marker``."""

    async def talk():
        ws = await websocket_connect(HTTPRequest(url, headers=headers, connect_timeout=10))
        ws.write_message(json.dumps(["stdin", command + "\r"]))
        seen = ""
        while marker not in seen:
            message = await asyncio.wait_for(ws.read_message(), timeout)
            if message is None:
                break
            kind, *data = json.loads(message)
            if kind == "stdout":
                seen += data[0]
        ws.close()
        return seen

    return asyncio.run(talk())
