"""Background transfers: copy or move between storage areas of any kinds (POSIX <-> XRootD), and
a pull of an ``https://`` or ``root://`` URL into an area, run by the file service while the
user's tab is closed.

Every byte goes through the user's own workers (read as the user, written as the user), into a
partial file beside the target that becomes the target only when whole, as uploads do. A
transfer's record (the service's record store) says how far it got: after a restart of the
service, unfinished transfers start again and each file continues from the bytes its partial
file already holds. A folder is copied file by file in name order; files already complete are
not copied again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import requests

from ink_core.errors import Refused

from . import paths
from .storage import Storage

log = logging.getLogger("ink.files.transfers")
CHUNK = 8 * 1024 * 1024
ACTIVE_PER_USER = 2  # transfers of one user that run at once; more wait their turn
KEPT_PER_USER = 200  # records a user keeps (the oldest finished ones go first)
SAVE_SECONDS = 1.0  # how often a running transfer's progress is written down
MAX_REDIRECTS = 5
FINISHED = ("done", "failed", "cancelled")
ID = re.compile(r"^[a-f0-9]{16}$")


class Cancelled(Exception):
    pass


@dataclass
class Transfer:
    id: str
    user: str
    kind: str  # copy, move or pull
    source: str  # an area path, or the URL of a pull
    target: str  # an area path
    overwrite: bool = False
    state: str = "queued"
    done: int = 0  # bytes
    total: int = 0
    files_done: int = 0
    files_total: int = 0
    current: str = ""
    error: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def public(self) -> dict:
        return asdict(self)


def check_pull_url(url: str, allow_hosts: list[str]) -> str:
    """An https:// or root:// URL whose host is not this site's inside (loopback, private,
    link-local addresses) unless the site names it; 400 otherwise."""
    if not isinstance(url, str) or len(url) > 4096 or any(ord(c) < 33 for c in url):
        raise Refused(400, "url: expected an https:// or root:// URL")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "root", "roots") or not parts.hostname:
        raise Refused(400, "url: only https:// and root:// URLs can be fetched")
    if parts.username or parts.password:
        raise Refused(400, "url: credentials in a URL are not taken")
    if parts.hostname in allow_hosts:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise Refused(400, f"url: the host {parts.hostname} is unknown") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise Refused(
                403, f"url: {parts.hostname} is inside this site's network; INK fetches public URLs"
            )
    return url


class Transfers:
    def __init__(self, storage: Storage, records, allow_hosts=(), ca_file: str | None = None):
        self.storage = storage
        self.records = records  # a FileRecords or DBRecords: key USER/ID
        self.allow_hosts = list(allow_hosts)
        self.ca_file = ca_file
        self.tasks: dict[str, asyncio.Task] = {}
        self.cancelled: set[str] = set()
        self.forgotten: set[str] = set()  # removed from the list while still running

    # -- records -----------------------------------------------------------------------------
    def load(self, value) -> Transfer | None:
        try:
            return Transfer(**value)
        except TypeError:
            return None

    def save(self, transfer: Transfer) -> None:
        if transfer.id in self.forgotten:
            return
        transfer.updated = time.time()
        self.records.put(f"{transfer.user}/{transfer.id}", transfer.public())

    def of_user(self, user: str) -> list[Transfer]:
        found = [self.load(v) for _, v in self.records.items(f"{user}/")]
        return sorted((t for t in found if t is not None), key=lambda t: t.created, reverse=True)

    def get(self, user: str, transfer_id: str) -> Transfer:
        if not ID.match(transfer_id or ""):
            raise Refused(404, "no such transfer")
        found = self.load(self.records.get(f"{user}/{transfer_id}") or {})
        if found is None or found.user != user:
            raise Refused(404, "no such transfer")
        return found

    # -- what users ask --------------------------------------------------------------------------
    async def submit(self, user: str, kind: str, source, target, overwrite: bool) -> Transfer:
        if kind not in ("copy", "move", "pull"):
            raise Refused(400, "kind: expected copy, move or pull")
        to_root, to_parts = split(target, "to")
        if not to_parts:
            raise Refused(400, "to: name a file or folder inside a storage area")
        if kind == "pull":
            source = await asyncio.to_thread(check_pull_url, source, self.allow_hosts)
            if urlsplit(source).scheme != "https" and "xrootd" not in self.storage.adapters:
                raise Refused(400, "this site has no XRootD storage to fetch root:// URLs with")
        else:
            root, parts = split(source, "from")
            if not parts:
                raise Refused(400, "from: a storage area itself is not copied")
            if root == to_root and to_parts[: len(parts)] == parts:
                raise Refused(400, "a folder cannot go inside itself")
            await self.storage.request(user, "stat", root=root, parts=parts)  # 404 / 403 now
        parent = await self.storage.request(user, "stat", root=to_root, parts=to_parts[:-1])
        if parent["type"] != "dir":
            raise Refused(409, "the target's folder is not a folder")
        if not overwrite and await self.exists(user, to_root, to_parts):
            raise Refused(409, f"{target} already exists")
        mine = self.of_user(user)
        for old in [t for t in mine if t.state in FINISHED][KEPT_PER_USER - 1 :]:
            self.records.delete(f"{user}/{old.id}")
        transfer = Transfer(
            secrets.token_hex(8), user, kind, source, paths.join(to_root, to_parts), overwrite
        )
        self.save(transfer)
        self.schedule(transfer)
        return transfer

    def cancel(self, user: str, transfer_id: str) -> Transfer:
        """Stop a transfer (an ended one is left as it is)."""
        transfer = self.get(user, transfer_id)
        if transfer.state in FINISHED:
            return transfer
        self.cancelled.add(transfer.id)
        if transfer.id not in self.tasks:  # waiting for its turn
            transfer.state = "cancelled"
            self.save(transfer)
        return transfer

    def forget(self, user: str, transfer_id: str) -> None:
        """Remove a transfer from the list, cancelling it if it still runs."""
        transfer = self.get(user, transfer_id)
        if transfer.id in self.tasks:
            self.cancelled.add(transfer.id)
            self.forgotten.add(transfer.id)
        self.records.delete(f"{user}/{transfer.id}")

    # -- running ----------------------------------------------------------------------------------
    def resume_all(self) -> int:
        """After a start of the service: every unfinished transfer goes on."""
        count = 0
        for key, value in list(self.records.items("")):
            transfer = self.load(value)
            if (
                transfer is not None
                and transfer.state not in FINISHED
                and key == f"{transfer.user}/{transfer.id}"
            ):
                transfer.state = "queued"
                self.save(transfer)
                self.schedule(transfer)
                count += 1
        if count:
            log.info("resuming %d unfinished transfers", count)
        return count

    def schedule(self, transfer: Transfer) -> None:
        running = [t for t in self.tasks.values() if getattr(t, "ink_user", None) == transfer.user]
        if len(running) >= ACTIVE_PER_USER:
            return  # started when one of the user's transfers ends
        task = asyncio.get_running_loop().create_task(self.run(transfer))
        task.ink_user = transfer.user
        self.tasks[transfer.id] = task

    def next_of(self, user: str) -> None:
        for transfer in reversed(self.of_user(user)):
            if transfer.state == "queued" and transfer.id not in self.tasks:
                self.schedule(transfer)
                return

    async def run(self, transfer: Transfer) -> None:
        transfer.state, transfer.error = "running", ""
        self.save(transfer)
        try:
            if transfer.kind == "pull":
                await self.pull(transfer)
            else:
                await self.copy(transfer)
            transfer.state, transfer.current = "done", ""
        except Cancelled:
            transfer.state = "cancelled"
        except Refused as e:
            transfer.state, transfer.error = "failed", str(e)
        except asyncio.CancelledError:  # the service stops: the record says running, resumed later
            self.save(transfer)
            raise
        except Exception as e:  # noqa: BLE001 - a transfer's failure is reported, never lost
            log.exception("transfer %s of %s failed", transfer.id, transfer.user)
            transfer.state, transfer.error = "failed", f"the transfer failed ({e.__class__.__name__})"
        finally:
            self.tasks.pop(transfer.id, None)
            self.cancelled.discard(transfer.id)
        self.save(transfer)
        self.forgotten.discard(transfer.id)
        log.info("transfer %s of %s: %s", transfer.id, transfer.user, transfer.state)
        self.next_of(transfer.user)

    def progress(self, transfer: Transfer, last_save: list[float]) -> None:
        if transfer.id in self.cancelled:
            raise Cancelled()
        if time.monotonic() - last_save[0] >= SAVE_SECONDS:
            self.save(transfer)
            last_save[0] = time.monotonic()

    async def exists(self, user, root, parts) -> bool:
        try:
            await self.storage.request(user, "stat", root=root, parts=parts)
            return True
        except Refused as e:
            if e.status == 404:
                return False
            raise

    async def copy(self, transfer: Transfer) -> None:
        user = transfer.user
        root, parts = paths.split(transfer.source)
        to_root, to_parts = paths.split(transfer.target)
        entry = await self.storage.request(user, "stat", root=root, parts=parts)
        if entry["type"] == "dir":
            listing = await self.storage.request(user, "walk", root=root, parts=parts)
            files = sorted(listing["files"], key=lambda f: f["path"])
        else:
            files = [{"path": [], "size": entry["size"]}]
        transfer.files_total, transfer.total = len(files), sum(f["size"] for f in files)
        if entry["type"] == "dir":
            await self.storage.request(user, "mkdir", root=to_root, parts=to_parts, parents=True)
        done_before = 0
        last_save = [time.monotonic()]
        for index, item in enumerate(files):
            source, target = parts + item["path"], to_parts + item["path"]
            transfer.current = paths.join(root, source)
            if index < transfer.files_done:  # finished before a restart
                done_before += item["size"]
                continue
            if len(item["path"]) > 1:
                await self.storage.request(user, "mkdir", root=to_root, parts=target[:-1], parents=True)
            reader = await self.storage.reader(user, root, source)
            if reader is None:
                raise Refused(409, f"{transfer.current} became a folder")
            try:

                async def chunks(offset, reader=reader):
                    while chunk := await reader.read(offset, CHUNK):
                        yield chunk
                        offset += len(chunk)

                await self.write_file(
                    transfer, f"{transfer.id}{index:06d}", to_root, target, chunks, done_before, last_save
                )
            finally:
                reader.close()
            done_before += item["size"]
            transfer.files_done = index + 1
            transfer.done = done_before
            self.save(transfer)
        if transfer.kind == "move":
            await self.storage.request(user, "delete", root=root, parts=parts)

    async def write_file(
        self, transfer, upload_id, to_root, to_parts, chunks, done_before, last_save
    ) -> None:
        """One file into its partial file, from where an earlier attempt stopped, then committed."""
        user = transfer.user
        writer = await self.storage.writer(user, to_root, to_parts, upload_id)
        try:
            offset = writer.size
            if offset:
                log.info(
                    "transfer %s: %s continues from %d bytes",
                    transfer.id,
                    paths.join(to_root, to_parts),
                    offset,
                )
            transfer.done = done_before + offset
            async for chunk in chunks(offset):
                await writer.write(offset, chunk)
                offset += len(chunk)
                transfer.done = done_before + offset
                self.progress(transfer, last_save)
            await writer.sync()
        except Cancelled:
            writer.close()
            await self.storage.request(user, "abort", root=to_root, parts=to_parts, upload_id=upload_id)
            raise
        finally:
            writer.close()
        await self.storage.request(
            user, "commit", root=to_root, parts=to_parts, upload_id=upload_id, overwrite=transfer.overwrite
        )

    async def pull(self, transfer: Transfer) -> None:
        to_root, to_parts = paths.split(transfer.target)
        transfer.files_total = 1
        last_save = [time.monotonic()]
        scheme = urlsplit(transfer.source).scheme
        chunks = self.https_chunks if scheme == "https" else self.xrootd_chunks
        transfer.current = transfer.source
        await self.write_file(
            transfer,
            f"{transfer.id}000000",
            to_root,
            to_parts,
            lambda offset: chunks(transfer, offset),
            0,
            last_save,
        )
        transfer.files_done = 1

    async def xrootd_chunks(self, transfer: Transfer, offset: int):
        """A root:// URL read by the user's XRootD worker, with his own ticket."""
        info = await self.storage.call_kind(transfer.user, "xrootd", "url_stat", url=transfer.source)
        transfer.total = info[0]["size"]
        while True:
            answer, _ = await self.storage.call_kind(
                transfer.user, "xrootd", "url_read", url=transfer.source, offset=offset, length=CHUNK
            )
            data = answer.get("_payload") or b""
            if not data:
                return
            yield data
            offset += len(data)

    async def https_chunks(self, transfer: Transfer, offset: int):
        """An https:// URL, read in a thread (requests), handed over with back-pressure."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=4)
        stop = threading.Event()

        def fetch():
            try:
                url = transfer.source
                for _ in range(MAX_REDIRECTS + 1):
                    headers = {"Range": f"bytes={offset}-"} if offset else {}
                    r = requests.get(
                        url,
                        headers=headers,
                        stream=True,
                        timeout=60,
                        allow_redirects=False,
                        verify=self.ca_file or True,
                    )
                    if r.is_redirect:  # each hop is checked as the first was
                        url = check_pull_url(
                            requests.compat.urljoin(url, r.headers["Location"]), self.allow_hosts
                        )
                        continue
                    break
                else:
                    raise Refused(502, "url: too many redirects")
                if r.status_code == 416 and offset:
                    put(None)
                    return
                if r.status_code not in (200, 206):
                    raise Refused(502, f"the server answered {r.status_code} for {transfer.source}")
                skip = offset if r.status_code == 200 else 0  # no Range support: read past what we have
                length = r.headers.get("Content-Length")
                if length and length.isdigit():
                    transfer.total = int(length) + (offset if r.status_code == 206 else 0)
                for chunk in r.iter_content(CHUNK):
                    if stop.is_set():
                        return
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if chunk:
                        put(chunk)
                put(None)
            except Exception as e:  # noqa: BLE001 - handed to the transfer, which reports it
                put(
                    e
                    if isinstance(e, Refused)
                    else Refused(502, f"fetching the URL failed ({e.__class__.__name__})")
                )

        def put(item):
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while not stop.is_set():
                try:
                    return future.result(timeout=1)
                except TimeoutError:
                    continue
            future.cancel()

        loop.run_in_executor(None, fetch)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()  # the thread stops at its next chunk


def split(path, name: str) -> tuple[str, list[str]]:
    try:
        return paths.split(path)
    except paths.PathRefused as e:
        raise Refused(400, f"{name}: {e}") from None
