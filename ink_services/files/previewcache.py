"""Previews (ROOT key trees, FITS headers) remembered for a file's identity and version."""

from __future__ import annotations

import json


class PreviewCache:
    """Recent previews, bounded in entries and bytes; keyed by file, size and mtime, so a
    changed file is previewed anew."""

    def __init__(self, max_entries=256, max_bytes=64 * 1024 * 1024):
        self.entries: dict = {}  # key -> (answer, size); oldest first
        self.max_entries, self.max_bytes, self.bytes = max_entries, max_bytes, 0

    def get(self, key):
        hit = self.entries.pop(key, None)
        if hit is None:
            return None
        self.entries[key] = hit  # now the most recent
        return hit[0]

    def put(self, key, value):
        size = len(json.dumps(value))
        if size > self.max_bytes:
            return
        self.entries[key] = (value, size)
        self.bytes += size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self.entries))
            self.bytes -= self.entries.pop(oldest)[1]
