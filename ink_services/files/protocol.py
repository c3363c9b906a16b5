"""How the file service talks to its per-user workers: one request at a time over a Unix
socket. A frame is a 4-byte big-endian length, a JSON object and, when the object says
``"_payload": N``, N raw bytes (file data). An answer that carries an open file descriptor
sends it with the frame's first bytes (SCM_RIGHTS).

Answers are {"ok": true, ...} or {"ok": false, "status": 4xx/5xx, "error": "..."}.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct

from ink_core.errors import Refused

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
PARTIAL_PREFIX = ".ink-upload-"  # an unfinished upload, beside its target
ERRORS = {
    errno.ENOENT: (404, "no such file or folder"),
    errno.ENOTDIR: (404, "a part of the path is not a folder"),
    errno.EACCES: (403, "permission denied"),
    errno.EPERM: (403, "operation not permitted"),
    errno.ELOOP: (403, "symbolic links are not followed"),
    errno.EEXIST: (409, "already exists"),
    errno.ENOTEMPTY: (409, "the folder is not empty"),
    errno.EISDIR: (409, "is a folder"),
    errno.ENOSPC: (507, "the disk is full"),
    errno.EDQUOT: (507, "your disk quota is exceeded"),
    errno.EXDEV: (409, "cannot move across storage areas; copy instead"),
    errno.ENAMETOOLONG: (400, "name too long"),
    errno.EROFS: (403, "read-only storage"),
}


def send_frame(sock: socket.socket, obj: dict, fd: int | None = None, payload: bytes | None = None) -> None:
    if payload is not None:
        obj = {**obj, "_payload": len(payload)}
    data = json.dumps(obj).encode()
    frame = HEADER.pack(len(data)) + data
    if fd is None:
        sock.sendall(frame)
    else:
        sent = socket.send_fds(sock, [frame], [fd])
        if sent < len(frame):
            sock.sendall(frame[sent:])
    if payload:
        sock.sendall(payload)


def recv_exact(sock: socket.socket, n: int, first: bytes = b"") -> bytes:
    buf = bytearray(first)
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("worker connection closed")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[dict, int | None]:
    """(object, fd or None); a payload, if any, is in the object as ``_payload`` (bytes)."""
    data, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, 1)
    if not data:
        raise EOFError("worker connection closed")
    head = recv_exact(sock, HEADER.size, data)
    (length,) = HEADER.unpack(head)
    if length > MAX_FRAME:
        raise EOFError("frame too large")
    obj = json.loads(recv_exact(sock, length))
    if obj.get("_payload"):
        obj["_payload"] = recv_exact(sock, int(obj["_payload"]))
    return obj, (fds[0] if fds else None)


class Operations:
    """A worker's operations: ``op_NAME`` methods, called by name with the request's fields."""

    def handle(self, request: dict):
        op = request.pop("op", "")
        method = getattr(self, f"op_{op}", None)
        if not isinstance(op, str) or method is None:
            raise Refused(400, f"unknown operation {op!r}")
        return method(**request)


def serve(sock: socket.socket, handle) -> None:
    """Answer requests until the service closes the socket. ``handle(request)`` returns a dict,
    (dict, fd) or (dict, None, payload bytes); raises Refused or OSError for errors."""
    while True:
        try:
            request, _ = recv_frame(sock)
        except EOFError:
            return
        fd = payload = None
        try:
            result = handle(request)
            if isinstance(result, tuple):
                result, fd, *rest = result
                payload = rest[0] if rest else None
            answer = {"ok": True, **result}
        except Refused as e:
            answer = {"ok": False, "status": e.status, "error": str(e)}
        except OSError as e:
            status, message = ERRORS.get(e.errno, (500, "storage error"))
            answer = {"ok": False, "status": status, "error": message, "errno": e.errno}
        except (TypeError, ValueError, KeyError) as e:
            answer = {"ok": False, "status": 400, "error": f"bad request: {e}"}
        try:
            send_frame(sock, answer, fd, payload)
        finally:
            if fd is not None:
                os.close(fd)
