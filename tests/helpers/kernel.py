"""Run code in a kernel of a user's running JupyterLab as a notebook cell would: through the
hub's proxy, on the server's own origin, with the user's token, over the kernel's websocket."""

from __future__ import annotations

import asyncio
import json
import uuid

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class CellError(AssertionError):
    pass


class Kernel:
    def __init__(self, server_url: str, token: str):
        self.url = server_url
        self.headers = {"Authorization": f"token {token}"}
        r = requests.post(
            f"{server_url}api/kernels", json={"name": "python3"}, headers=self.headers, timeout=60
        )
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = 300) -> str:
        """The cell's printed output; CellError with the traceback when it raises."""
        return asyncio.run(asyncio.wait_for(self._run(code), timeout))

    async def _run(self, code: str) -> str:
        ws_url = self.url.replace("http", "ws", 1) + f"api/kernels/{self.id}/channels"
        ws = await websocket_connect(HTTPRequest(ws_url, headers=self.headers), max_message_size=64 << 20)
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "test"}
        header |= {"session": self.session, "version": "5.3", "date": ""}
        content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
        content |= {"allow_stdin": False, "stop_on_error": True}
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        await ws.write_message(json.dumps({**message, "channel": "shell", "buffers": []}))
        out, error = [], None
        try:
            while True:
                raw = await ws.read_message()
                if raw is None:
                    raise CellError("the kernel's websocket closed")
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = reply["header"]["msg_type"]
                if kind == "stream":
                    out.append(reply["content"]["text"])
                elif kind == "error":
                    error = "\n".join(reply["content"]["traceback"])
                elif kind == "status" and reply["content"]["execution_state"] == "idle":
                    break
        finally:
            ws.close()
        if error is not None:
            raise CellError(f"the cell raised:\n{error}\noutput:\n{''.join(out)}")
        return "".join(out)

    def shutdown(self) -> None:
        requests.delete(f"{self.url}api/kernels/{self.id}", headers=self.headers, timeout=60)
