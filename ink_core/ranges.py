"""HTTP byte ranges (RFC 9110): one range, several (multipart/byteranges, as JSROOT asks for
ROOT files), or the whole file; shared by the file service and the in-job ROOT browser."""

from __future__ import annotations

import re
import secrets

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 4 * 1024 * 1024
MAX_RANGES = 256


def parse_ranges(header: str | None, size: int, limit: int = MAX_RANGES) -> list[tuple[int, int]] | None:
    """``bytes=a-b,c-,-n`` -> [(start, end), ...] within the file; None when none is satisfiable;
    [] when there is no usable Range header (the whole file is sent: RFC 9110 lets a server
    ignore a Range it does not understand)."""
    header = (header or "").strip()
    if not header.startswith("bytes="):
        return []
    ranges = []
    for spec in header[len("bytes=") :].split(",")[:limit]:
        match = RANGE.match("bytes=" + spec.strip())
        if not match or match.groups() == ("", ""):
            return []
        first, last = match.groups()
        if first == "":  # the last N bytes
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        if start < size and start <= end:
            ranges.append((start, end))
    return ranges or None


async def send_ranges(handler, size: int, read, head: bool = False, on_sent=None) -> None:
    """Answer ``handler``'s GET/HEAD from ``await read(offset, n)``, honouring its Range header.
    The Content-Type of the file must already be set (it goes into each part of a multipart)."""
    ranges = parse_ranges(handler.request.headers.get("Range"), size)
    handler.set_header("Accept-Ranges", "bytes")
    if ranges is None:  # answered here: send_error would drop the Content-Range header
        handler.set_status(416)
        handler.set_header("Content-Range", f"bytes */{size}")
        handler.set_header("Content-Type", "application/json")
        handler.finish({"status": 416, "message": f"range not satisfiable: the file has {size} bytes"})
        return

    async def copy(start, end):
        offset = start
        while offset <= end:
            chunk = await read(offset, min(CHUNK, end - offset + 1))
            if not chunk:
                break
            handler.write(chunk)
            await handler.flush()
            offset += len(chunk)
            if on_sent is not None:
                on_sent(len(chunk))

    if len(ranges) <= 1:
        start, end = ranges[0] if ranges else (0, size - 1)
        if ranges:
            handler.set_status(206)
            handler.set_header("Content-Range", f"bytes {start}-{end}/{size}")
        handler.set_header("Content-Length", str(max(0, end - start + 1)))
        if not head:
            await copy(start, end)
        return
    boundary = secrets.token_hex(16)
    kind = handler._headers.get("Content-Type", "application/octet-stream")
    heads = [
        f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Range: bytes {a}-{b}/{size}\r\n\r\n".encode()
        for a, b in ranges
    ]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + (b - a + 1) + 2 for h, (a, b) in zip(heads, ranges, strict=True)) + len(tail)
    handler.set_status(206)
    handler.set_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
    handler.set_header("Content-Length", str(length))
    if head:
        return
    for part_head, (start, end) in zip(heads, ranges, strict=True):
        handler.write(part_head)
        await copy(start, end)
        handler.write(b"\r\n")
    handler.write(tail)
