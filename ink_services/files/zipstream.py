"""A folder downloaded as a zip, streamed as it is written."""

from __future__ import annotations


class ZipStream:
    """A write-only, non-seekable file for zipfile; the handler takes what was written so far."""

    def __init__(self):
        self.buffer = bytearray()
        self.position = 0

    def write(self, data) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self):
        pass

    def take(self) -> bytes:
        data, self.buffer = bytes(self.buffer), bytearray()
        return data
