"""What every request of the file service shares: the caller's scopes and rate, the user it
acts for, paths split and checked, the user's worker asked, downloads, zips and previews sent."""

from __future__ import annotations

import base64
import logging
import mimetypes
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

from prometheus_client import Counter, Gauge
from tornado import web

from ink_core.ranges import send_ranges
from ink_core.scopes import FILES_READ, FILES_WRITE

from ..auth import HubApi, ServiceHandler, refuse_anonymous
from ..ratelimit import check_rate
from ..scopes import acting_user, require_scope
from . import paths
from .previewcache import PreviewCache
from .storage import Storage, StorageError
from .zipstream import ZipStream

log = logging.getLogger("ink.files")
CHUNK = 4 * 1024 * 1024
MAX_REQUEST_BODY = 1024 * 1024  # everything but an upload's body
READ_LIMIT = 16 * 1024 * 1024
OPENAPI = Path(__file__).with_name("openapi.yaml")
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
SAFE_INLINE = re.compile(r"^(image/(png|jpeg|gif|webp|bmp)|application/pdf|text/plain|video/\w+|audio/\w+)$")
BYTES_OUT = Counter("ink_files_bytes_sent_total", "bytes downloaded from the file service")
BYTES_IN = Counter("ink_files_bytes_received_total", "bytes uploaded to the file service")
REQUESTS = Counter("ink_files_operations_total", "file operations", ["op", "outcome"])
UPLOADS = Gauge("ink_files_uploads_in_progress", "uploads being received now")


class FilesHandler(HubApi, ServiceHandler):
    anonymous_page = False  # the page itself: a browser without a login is sent to log in

    def prepare(self):
        if len(self.request.body or b"") > MAX_REQUEST_BODY:
            raise web.HTTPError(413, f"the request is larger than {MAX_REQUEST_BODY // 1024} KB")
        self.check_access()

    def check_access(self):
        """INK's files scopes (read for GET/HEAD, write for the rest) and the rate limit."""
        if self.current_user is None:
            if self.anonymous_page:
                return  # the page's @web.authenticated sends the browser to log in
            refuse_anonymous(self)
        read = self.request.method in ("GET", "HEAD")
        require_scope(self, FILES_READ if read else FILES_WRITE)
        check_rate(self)

    @property
    def storage(self) -> Storage:
        return self.settings["storage"]

    @property
    def username(self) -> str:
        """Whose storage this request touches: the caller's (an admin's token may name a user)."""
        if not hasattr(self, "_acting_user"):
            self._acting_user = acting_user(self)
        return self._acting_user

    def split(self, user_path: str) -> tuple[str, list[str]]:
        try:
            return paths.split(user_path)
        except paths.PathRefused as e:
            raise web.HTTPError(400, str(e)) from None

    async def ask(self, op: str, owner: str | None = None, **request) -> dict:
        try:
            answer = await self.storage.request(owner or self.username, op, **request)
        except StorageError as e:
            REQUESTS.labels(op, str(e.status)).inc()
            raise web.HTTPError(e.status, str(e)) from None
        REQUESTS.labels(op, "ok").inc()
        return answer

    async def reader(self, root, parts, owner=None):
        try:
            return await self.storage.reader(owner or self.username, root, parts)
        except StorageError as e:
            raise web.HTTPError(e.status, str(e)) from None

    def flag(self, name: str) -> bool:
        return self.get_argument(name, "0").lower() in ("1", "true", "yes")

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name}: expected a whole number") from None
        if not low <= value <= high:
            raise web.HTTPError(400, f"{name}: expected {low} to {high}")
        return value

    # -- shared by owners' and share-link requests ---------------------------------------------
    async def listing(self, root, parts, owner=None, hidden=None) -> dict:
        sort = self.get_argument("sort", "name")
        if sort not in ("name", "size", "mtime"):
            raise web.HTTPError(400, "sort: expected name, size or mtime")
        order = self.get_argument("order", "asc")
        if order not in ("asc", "desc"):
            raise web.HTTPError(400, "order: expected asc or desc")
        answer = await self.ask(
            "list",
            owner,
            root=root,
            parts=parts,
            sort=sort,
            reverse=order == "desc",
            offset=self.int_argument("offset", 0, 0, 10**9),
            limit=self.int_argument("limit", 200, 1, 1000),
            hidden=self.flag("hidden") if hidden is None else hidden,
        )
        return {"path": paths.join(root, parts), **answer}

    async def send_file(self, root, parts, owner=None, head=False, hidden=True):
        reader = await self.reader(root, parts, owner)
        if reader is None:  # a folder
            return await self.send_zip(root, parts, owner, head, hidden)
        try:
            self.set_header(
                "Last-Modified", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reader.mtime))
            )
            self.content_headers(parts[-1] if parts else root)
            await send_ranges(self, reader.size, reader.read, head=head, on_sent=BYTES_OUT.inc)
        finally:
            reader.close()

    async def preview(self, kind: str, root, parts, owner=None) -> dict:
        """ROOT keys or FITS headers + image, made by the owner's worker, cached per file version."""
        entry = await self.ask("stat", owner, root=root, parts=parts)
        if entry["type"] != "file":
            raise web.HTTPError(400, "previews are for files")
        cache: PreviewCache = self.settings["previews"]
        key = (owner or self.username, kind, root, tuple(parts), entry["size"], entry["mtime"])
        answer = cache.get(key)
        if answer is None:
            try:
                answer, _ = await self.storage.call(
                    owner or self.username, PREVIEW_OPS[kind], root=root, parts=parts
                )
            except StorageError as e:
                if e.status == 422:  # this version of the file cannot be previewed: not again
                    cache.put(key, {"_refused": str(e)})
                raise web.HTTPError(e.status, str(e)) from None
            image = answer.pop("_payload", None)
            if image:
                answer["png"] = "data:image/png;base64," + base64.b64encode(image).decode()
            cache.put(key, answer)
        if "_refused" in answer:
            raise web.HTTPError(422, answer["_refused"])
        return {"path": paths.join(root, parts), **answer}

    def content_headers(self, name: str, zip_file: bool = False):
        kind = (
            "application/zip" if zip_file else (mimetypes.guess_type(name)[0] or "application/octet-stream")
        )
        inline = self.flag("inline") and (kind.startswith("text/") or SAFE_INLINE.match(kind))
        if inline and kind.startswith("text/"):
            kind = "text/plain; charset=utf-8"  # never run a user's HTML or SVG in our origin
        self.set_header("Content-Type", kind)
        self.set_header("X-Content-Type-Options", "nosniff")
        # a sandbox (no scripts, no same origin) for anything a browser might render; PDF is
        # left to the browser's own viewer, which a sandbox would block
        if kind != "application/pdf":
            self.set_header("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'")
        else:  # the files page shows it in a frame of its own (the hub's origin)
            self.set_header("Content-Security-Policy", "frame-ancestors 'self'")
            self.set_header("X-Frame-Options", "SAMEORIGIN")
        disposition = "inline" if inline else "attachment"
        self.set_header("Content-Disposition", f"{disposition}; filename*=UTF-8''{quote(name)}")

    async def send_zip(self, root, parts, owner=None, head=False, hidden=True):
        listing = await self.ask("walk", owner, root=root, parts=parts)
        if not hidden:  # a share link's zip: no dotfile or anything inside a dot-folder
            listing["files"] = [f for f in listing["files"] if not any(p.startswith(".") for p in f["path"])]
        name = (parts[-1] if parts else root) + ".zip"
        self.content_headers(name, zip_file=True)
        if head:
            return
        stream = ZipStream()
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for item in listing["files"]:
                try:
                    reader = await self.reader(root, parts + item["path"], owner)
                except web.HTTPError:
                    reader = None
                if reader is None:
                    continue  # unreadable or changed since the walk: left out, not a broken zip
                try:
                    info = zipfile.ZipInfo("/".join(item["path"]), time.localtime(item["mtime"])[:6])
                    with archive.open(info, "w", force_zip64=True) as member:
                        offset = 0
                        while chunk := await reader.read(offset, CHUNK):
                            member.write(chunk)
                            offset += len(chunk)
                            await self.drain(stream)
                finally:
                    reader.close()
        await self.drain(stream)  # the central directory, written as the archive closes

    async def drain(self, stream: ZipStream):
        data = stream.take()
        if data:
            self.write(data)
            BYTES_OUT.inc(len(data))
            await self.flush()


PREVIEW_OPS = {"root": "root_keys", "fits": "fits"}
