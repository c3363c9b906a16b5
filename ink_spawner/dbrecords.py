"""The services' records in the hub's database (``hub.db_url``), behind the same four calls as
``ink_core.jsonstore.FileRecords``: a site on PostgreSQL keeps job records, share links and
terminal preferences where it keeps its sessions and history, backed up and restored as one.

``import_folder`` brings a service's records from its folder into the database once (the way
up from a site that ran on files): every file becomes a row (a row already there wins), then the
folder is renamed ``<folder>.imported`` and kept as it was."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import delete, select

from ink_core.jsonstore import FileRecords, check_key

from . import history

log = logging.getLogger("ink.records")


class DBRecords:
    def __init__(self, url: str, store: str):
        self.url, self.store = url, store
        with history.session(url) as db:
            history.upgrade(db)

    def get(self, key: str):
        table = history.records
        with history.session(self.url) as db:
            value = db.execute(
                select(table.c.value).where(table.c.store == self.store, table.c.key == check_key(key))
            ).scalar()
        return json.loads(value) if value is not None else None

    def put(self, key: str, value) -> None:
        table = history.records
        row = {"store": self.store, "key": check_key(key), "value": json.dumps(value), "updated": time.time()}
        with history.session(self.url) as db:
            # one service writes each store: an update, or an insert when there was nothing
            done = db.execute(
                table.update()
                .where(table.c.store == self.store, table.c.key == key)
                .values(value=row["value"], updated=row["updated"])
            )
            if done.rowcount == 0:
                db.execute(table.insert().values(**row))
            db.commit()

    def delete(self, key: str) -> None:
        table = history.records
        with history.session(self.url) as db:
            db.execute(delete(table).where(table.c.store == self.store, table.c.key == check_key(key)))
            db.commit()

    def items(self, prefix: str = "") -> Iterator[tuple[str, object]]:
        table = history.records
        query = select(table.c.key, table.c.value).where(table.c.store == self.store)
        if prefix:
            query = query.where(table.c.key.startswith(prefix, autoescape=True))
        with history.session(self.url) as db:
            rows = db.execute(query.order_by(table.c.key)).all()
        for key, value in rows:
            try:
                yield key, json.loads(value)
            except ValueError:
                continue

    def import_folder(self, folder) -> int:
        """The folder's records into the database, once; how many were imported."""
        folder = Path(folder)
        if not folder.is_dir():
            return 0
        files = FileRecords(folder)
        count = 0
        for key, value in files.items():
            if self.get(key) is None:
                self.put(key, value)
                count += 1
        target = folder.with_name(folder.name + ".imported")
        n = 1
        while target.exists():
            n += 1
            target = folder.with_name(f"{folder.name}.imported{n}")
        folder.rename(target)
        log.info(
            "%d %s records moved from %s into the database (the folder is now %s)",
            count,
            self.store,
            folder,
            target,
        )
        return count
