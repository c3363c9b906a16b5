"""Paths as users write them, checked before anything touches the disk.

A user path is ``<root>/<rest>``: the first part names one of the user's storage roots (e.g.
``home``), the rest is relative to it. Refused: empty parts are folded, but ``..``, ``.``, NUL
bytes, backslashes-as-escapes and absolute rest paths are errors, not something to clean up.
"""

from __future__ import annotations

from ink_core.areas import ROOT_NAME

MAX_PATH = 4096
MAX_NAME = 255


class PathRefused(ValueError):
    """The path is not acceptable; the message says why (for a 400/403 answer)."""


def parts_of(text: str) -> list[str]:
    """``"a//b/"`` -> ``["a", "b"]``, refusing NUL bytes, '.', '..' and over-long names."""
    if not isinstance(text, str):
        raise PathRefused("path: expected text")
    if "\x00" in text:
        raise PathRefused("path: NUL bytes are not allowed")
    if len(text.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise PathRefused("path: too long")
    parts = [p for p in text.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise PathRefused("path: '.' and '..' are not allowed")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise PathRefused("path: a name is longer than 255 bytes")
    return parts


def split(user_path: str) -> tuple[str, list[str]]:
    """``"home/a/b"`` -> ``("home", ["a", "b"])``; raises PathRefused."""
    parts = parts_of(user_path)
    if not parts:
        raise PathRefused("path: name a storage area, e.g. home/")
    root, rest = parts[0], parts[1:]
    if not ROOT_NAME.match(root):
        raise PathRefused(f"path: no storage area named {root!r}")
    return root, rest


def join(root: str, parts: list[str]) -> str:
    return "/".join([root, *parts])
