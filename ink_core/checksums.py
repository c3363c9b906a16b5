"""File checksums as grid storage uses them: adler32 (XRootD, FTS, EOS, dCache; 8 hex digits)
and sha256. Computed in one streaming pass; a cached value counts only for the same size and
modification time."""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict

ALGORITHMS = ("adler32", "sha256")
CHUNK = 4 * 1024 * 1024


def compute(read_at, size: int, algorithm: str) -> str:
    """``read_at(offset, n)`` -> bytes, over ``size`` bytes."""
    if algorithm == "adler32":
        value = 1
        for offset in range(0, size, CHUNK):
            value = zlib.adler32(read_at(offset, min(CHUNK, size - offset)), value)
        return f"{value & 0xFFFFFFFF:08x}"
    digest = hashlib.sha256()
    for offset in range(0, size, CHUNK):
        digest.update(read_at(offset, min(CHUNK, size - offset)))
    return digest.hexdigest()


def stamp(size: int, mtime_ns: int, value: str) -> str:
    """What a cache keeps: the value with the size and time it holds for."""
    return f"{size}:{mtime_ns}:{value}"


def unstamp(text: str, size: int, mtime_ns: int) -> str | None:
    """The cached value when it holds for this size and time, else None."""
    parts = text.split(":")
    if len(parts) == 3 and parts[0] == str(size) and parts[1] == str(mtime_ns):
        return parts[2]
    return None


class Remembered:
    """A worker's small in-memory cache: (file identity, algorithm) -> stamped value."""

    def __init__(self, size: int = 4096):
        self.items: OrderedDict = OrderedDict()
        self.size = size

    def get(self, key, size: int, mtime_ns: int) -> str | None:
        text = self.items.get(key)
        return unstamp(text, size, mtime_ns) if text else None

    def put(self, key, size: int, mtime_ns: int, value: str) -> None:
        self.items[key] = stamp(size, mtime_ns, value)
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)
