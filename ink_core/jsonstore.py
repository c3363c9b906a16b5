"""Small JSON records on the server's disk, in one private folder (mode 700), each file
replaced atomically and readable only by the service's account. What INK's services keep per
user (job records, share links, terminal preferences, ticket state) is a store of these."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from .names import USERNAME
from .private import write_private


class JsonStore:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def user_path(self, username: str, suffix: str = ".json") -> Path:
        """``<folder>/<username><suffix>``; ValueError for a name that is not a user name."""
        if not isinstance(username, str) or not USERNAME.match(username):
            raise ValueError(f"not a valid user name: {username!r}")
        return self.directory / f"{username}{suffix}"

    @staticmethod
    def read_json(path: Path, default=None):
        """The JSON value in ``path``; ``default`` when it is missing or not JSON."""
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return default

    @staticmethod
    def write_json(path: Path, value) -> None:
        write_private(path, json.dumps(value).encode())

    def all(self, pattern: str = "*.json", folder: Path | None = None) -> Iterator[tuple[Path, object]]:
        """(path, value) of each readable JSON file matching ``pattern``."""
        for path in (folder or self.directory).glob(pattern):
            value = self.read_json(path)
            if value is not None:
                yield path, value
