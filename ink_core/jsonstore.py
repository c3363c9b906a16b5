"""Small JSON records that INK's services keep (job records, share links, terminal
preferences, ticket state).

``RecordStore`` is a store of JSON values by key (``alice/j20261202-0a1b2c3d``): on the server's
disk (``FileRecords``: one private folder, mode 700, a file per key replaced atomically and
readable only by the service's account) or in the hub's database when the site has one
(``ink_spawner.dbrecords.DBRecords``), behind the same four calls. ``JsonStore`` is the older
file-only base the ticket store keeps: a ticket must be a file for ``KRB5CCNAME``, and a
credential never goes into a database's tables or its backups."""

from __future__ import annotations

import json
import os
import re
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


KEY_PART = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,127}$")


def check_key(key: str) -> str:
    """A record's key: parts of letters, digits, ``_.@-`` joined by ``/`` (no ``..``, no empty
    part, at most 255 characters); ValueError otherwise."""
    if not isinstance(key, str) or len(key) > 255 or not all(KEY_PART.match(p) for p in key.split("/")):
        raise ValueError(f"not a record key: {key!r}")
    return key


class FileRecords:
    """Records as files: ``<folder>/<key>.json`` (the layout INK's services always had)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def _path(self, key: str) -> Path:
        return self.directory / f"{check_key(key)}.json"

    def get(self, key: str):
        return JsonStore.read_json(self._path(key))

    def put(self, key: str, value) -> None:
        JsonStore.write_json(self._path(key), value)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def items(self, prefix: str = "") -> Iterator[tuple[str, object]]:
        """(key, value) of every readable record whose key starts with ``prefix``."""
        folder = prefix.rpartition("/")[0]
        base = self.directory / folder if folder else self.directory
        if folder:
            check_key(folder)
        for path in base.rglob("*.json"):
            key = path.relative_to(self.directory).as_posix()[: -len(".json")]
            if key.startswith(prefix) and not path.name.startswith("."):
                value = JsonStore.read_json(path)
                if value is not None:
                    yield key, value


class RecordStore:
    """A service's store of records: ``records`` is a FileRecords or DBRecords (a folder's
    path is taken as FileRecords)."""

    def __init__(self, records):
        self.records = FileRecords(records) if isinstance(records, str | os.PathLike) else records
