"""File checksums as grid storage uses them: adler32 (XRootD, FTS, EOS, dCache; 8 hex digits)
and sha256, computed in one streaming pass, and a worker's memory of them.

Nothing is kept beside the file (an extended attribute, say): anyone who may write the file
could leave a stamp that matches its new size and time but not its content. A worker remembers
a value under the file's identity and version, which only a change of the file moves on."""

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
    if algorithm != "sha256":
        raise ValueError(f"algorithm: expected one of {', '.join(ALGORITHMS)}")
    digest = hashlib.sha256()
    for offset in range(0, size, CHUNK):
        digest.update(read_at(offset, min(CHUNK, size - offset)))
    return digest.hexdigest()


class Remembered:
    """The last ``size`` values, by (file identity, version, algorithm)."""

    def __init__(self, size: int = 4096):
        self.items: OrderedDict = OrderedDict()
        self.size = size

    def get(self, key) -> str | None:
        if key in self.items:
            self.items.move_to_end(key)
        return self.items.get(key)

    def put(self, key, value: str) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)
