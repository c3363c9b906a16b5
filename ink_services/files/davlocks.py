"""WebDAV write locks (RFC 4918 class 2) and the ``If`` header's conditions.

Locks live in the file service's memory: a restart ends them (clients take locks for minutes and
refresh them). A lock belongs to the user who took it; its key is where the entry really is (an
area's location and the path inside it), so a lock in a shared area holds for every user.
Locks guard what is done over WebDAV; the files API and jobs are not held back by them.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

DEFAULT_TIMEOUT = 3600
MAX_TIMEOUT = 7 * 24 * 3600
MAX_LOCKS_PER_USER = 1000


class LockError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Lock:
    token: str
    key: tuple
    root_href: str
    depth: str  # "0" or "infinity"
    exclusive: bool
    owner_xml: str
    principal: str
    expires: float

    def covers(self, key: tuple) -> bool:
        return key == self.key or (self.depth == "infinity" and key[: len(self.key)] == self.key)

    def seconds_left(self) -> int:
        return max(0, int(self.expires - time.monotonic()))


class LockTable:
    def __init__(self):
        self.locks: dict[str, Lock] = {}

    def live(self) -> list[Lock]:
        now = time.monotonic()
        for token in [t for t, lock in self.locks.items() if lock.expires <= now]:
            del self.locks[token]
        return list(self.locks.values())

    def covering(self, key: tuple) -> list[Lock]:
        """Locks on the entry itself or on a folder above it with depth infinity."""
        return [lock for lock in self.live() if lock.covers(key)]

    def under(self, key: tuple) -> list[Lock]:
        """Locks on entries inside the folder ``key``."""
        return [lock for lock in self.live() if len(lock.key) > len(key) and lock.key[: len(key)] == key]

    def on_members_of(self, key: tuple) -> list[Lock]:
        """Locks that guard a folder's list of members: any lock on the folder itself."""
        return [lock for lock in self.live() if lock.key == key]

    def take(self, key, root_href, depth, exclusive, owner_xml, principal, timeout) -> Lock:
        held = self.covering(key) + (self.under(key) if depth == "infinity" else [])
        if any(lock.exclusive or exclusive for lock in held):
            raise LockError(423, "the resource is locked")
        if sum(lock.principal == principal for lock in self.locks.values()) >= MAX_LOCKS_PER_USER:
            raise LockError(503, f"you hold {MAX_LOCKS_PER_USER} locks: unlock some first")
        lock = Lock(
            f"opaquelocktoken:{uuid.uuid4()}",
            key,
            root_href,
            depth,
            exclusive,
            owner_xml,
            principal,
            time.monotonic() + timeout,
        )
        self.locks[lock.token] = lock
        return lock

    def refresh(self, token: str, timeout: int) -> Lock:
        lock = self.locks[token]
        lock.expires = time.monotonic() + timeout
        return lock

    def release(self, token: str) -> None:
        self.locks.pop(token, None)

    def release_at_and_under(self, key: tuple) -> None:
        """An entry deleted or moved away: its locks and those inside it end."""
        for lock in [lock for lock in self.live() if lock.key[: len(key)] == key]:
            del self.locks[lock.token]


TIMEOUT = re.compile(r"^\s*(?:Second-(\d+)|Infinite)\s*$", re.I)


def timeout_of(header: str) -> int:
    """``Timeout: Second-600, Infinite`` -> seconds (the first form understood, capped)."""
    for item in (header or "").split(","):
        match = TIMEOUT.match(item)
        if match:
            return min(int(match.group(1)) if match.group(1) else MAX_TIMEOUT, MAX_TIMEOUT)
    return DEFAULT_TIMEOUT


# -- the If header (RFC 4918 section 10.4) ------------------------------------------------------
IF_TOKEN = re.compile(r'\s*(<[^>]*>|\[(?:W/)?"[^"]*"\]|\(|\)|Not\b)', re.I)


@dataclass
class Condition:
    negated: bool
    token: str | None = None  # a state token (a lock's)
    etag: str | None = None


def parse_if(header: str) -> list[tuple[str | None, list[Condition]]]:
    """``(resource tag or None, [conditions])`` for each list; ValueError when malformed."""
    lists, tag, pos = [], None, 0
    text = header.strip()
    if not text:
        raise ValueError("empty If header")
    while pos < len(text):
        match = IF_TOKEN.match(text, pos)
        if not match:
            if text[pos:].strip():
                raise ValueError("malformed If header")
            break
        item, pos = match.group(1), match.end()
        if item.startswith("<"):
            tag = item[1:-1]
            continue
        if item != "(":
            raise ValueError("malformed If header: expected a list")
        conditions, negated = [], False
        while True:
            match = IF_TOKEN.match(text, pos)
            if not match:
                raise ValueError("malformed If header: unclosed list")
            item, pos = match.group(1), match.end()
            if item == ")":
                break
            if item.lower() == "not":
                negated = True
            elif item.startswith("<"):
                conditions.append(Condition(negated, token=item[1:-1]))
                negated = False
            elif item.startswith("["):
                conditions.append(Condition(negated, etag=item[1:-1]))
                negated = False
            else:
                raise ValueError("malformed If header")
        if not conditions:
            raise ValueError("malformed If header: an empty list")
        lists.append((tag, conditions))
    if not lists:
        raise ValueError("malformed If header")
    return lists


def submitted_tokens(lists) -> set[str]:
    """The lock tokens a request shows (named without Not)."""
    return {c.token for _, conditions in lists for c in conditions if c.token and not c.negated}


def strong(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag
