"""Paths as users write them, checked before anything touches the disk.

A user path is ``<root>/<rest>``: the first part names one of the user's storage roots (e.g.
``home``), the rest is relative to it. Refused: empty parts are folded, but ``..``, ``.``, NUL
bytes, backslashes-as-escapes and absolute rest paths are errors, not something to clean up.
"""

from __future__ import annotations

import re

MAX_PATH = 4096
MAX_NAME = 255
ROOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class PathRefused(ValueError):
    """The path is not acceptable; the message says why (for a 400/403 answer)."""


def split(user_path: str) -> tuple[str, list[str]]:
    """``"home/a/b"`` -> ``("home", ["a", "b"])``; raises PathRefused."""
    if not isinstance(user_path, str):
        raise PathRefused("path: expected text")
    if "\x00" in user_path:
        raise PathRefused("path: NUL bytes are not allowed")
    if len(user_path.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise PathRefused("path: too long")
    parts = [p for p in user_path.split("/") if p]
    if not parts:
        raise PathRefused("path: name a storage area, e.g. home/")
    for part in parts:
        if part in (".", ".."):
            raise PathRefused("path: '.' and '..' are not allowed")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise PathRefused("path: a name is longer than 255 bytes")
    root, rest = parts[0], parts[1:]
    if not ROOT_NAME.match(root):
        raise PathRefused(f"path: no storage area named {root!r}")
    return root, rest


def join(root: str, parts: list[str]) -> str:
    return "/".join([root, *parts])


def check_name(name: str) -> str:
    """A single new file or folder name (mkdir, rename target's last part)."""
    if not isinstance(name, str) or not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise PathRefused(f"name: not a valid file name: {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise PathRefused("name: longer than 255 bytes")
    return name
