"""A folder listed page by page in the order the storage keeps it (WebDAV's PROPFIND), without
the whole listing ever being held by the service: the worker keeps each open scan under a
cursor until its last page or until newer scans push it out."""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from collections.abc import Iterator

from ink_core.errors import Refused

OPEN_SCANS = 8  # per worker (one user): a client that abandons scans loses only the oldest


class Scans:
    def __init__(self, keep: int = OPEN_SCANS):
        self.keep = keep
        self.open: OrderedDict[str, Iterator[dict]] = OrderedDict()

    def page(self, start, cursor: str, limit: int) -> dict:
        """The next ``limit`` entries of the scan ``cursor`` ("" starts one with ``start()``,
        an iterator of entries) and the cursor of the rest ("" after the last page)."""
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise Refused(400, "limit: expected 1 to 10000")
        if cursor:
            entries = self.open.pop(cursor, None)
            if entries is None:
                raise Refused(410, "this listing has expired: list the folder again")
        else:
            entries = start()
        page = list(itertools.islice(entries, limit))
        if len(page) < limit:
            close(entries)
            return {"entries": page, "cursor": ""}
        cursor = secrets.token_hex(8)
        self.open[cursor] = entries
        while len(self.open) > self.keep:
            close(self.open.popitem(last=False)[1])
        return {"entries": page, "cursor": cursor}


def close(entries: Iterator) -> None:
    """A generator's own clean-up (closing its folder) runs now, not whenever it is collected."""
    closer = getattr(entries, "close", None)
    if closer is not None:
        closer()
