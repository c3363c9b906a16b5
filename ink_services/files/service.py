"""The file service (hub-managed, HubOAuth): the user's storage in the browser, no job needed.

API (stable, versioned under api/v1/; PATH is ``<area>/<path inside it>``, e.g. ``home/a.txt``):
  GET    api/v1/areas                 the caller's storage areas
  GET    api/v1/list/PATH             a folder, paged: sort=name|size|mtime, order=asc|desc,
                                      offset, limit (<= 1000), hidden=0|1
  GET    api/v1/stat/PATH             one entry
  GET    api/v1/files/PATH            download (HTTP Range; a folder comes as a streamed zip);
                                      inline=1 for previews
  PUT    api/v1/files/PATH            upload, streamed; resumable with X-Ink-Upload: ID and
                                      Content-Range: bytes START-END/TOTAL; overwrite=1
  GET    api/v1/uploads/PATH?upload=ID  bytes received so far of an unfinished upload
  DELETE api/v1/uploads/PATH?upload=ID  abandon an unfinished upload
  DELETE api/v1/files/PATH            delete (a folder needs recursive=1)
  POST   api/v1/mkdir/PATH            (parents=1)
  POST   api/v1/move  {"from", "to", "overwrite"}     POST api/v1/copy  (the same)
  POST   api/v1/chmod/PATH  {"mode": 0-511}
  GET    api/v1/shares   POST api/v1/shares {"path", "expires_in"}   DELETE api/v1/shares/ID
Share links (no login): s/SECRET/ (page), s/SECRET/list/SUB, s/SECRET/files/SUB.
  GET    metrics                      Prometheus, for tokens with read:metrics
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import errno
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

from prometheus_client import Counter, Gauge
from tornado import httpclient, ioloop, web

from ink_core import STATIC, checksums
from ink_core.ranges import send_ranges
from ink_core.scopes import FILES_READ, FILES_WRITE
from ink_spawner.accounts import SystemAccountRefused, user_account

from ..app import service_app
from ..auth import AnswerError, HubApi, ServiceHandler, refuse_anonymous
from ..credentials.store import deliver_ticket
from ..openapi import OpenAPIHandler
from ..process import run_service, service_prefix, start_logging
from ..ratelimit import RateLimiter, check_rate
from ..scopes import acting_user, require_scope
from . import paths
from .protocol import PARTIAL_PREFIX
from .shares import ShareError, ShareStore
from .storage import Storage, StorageError

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
    def prepare(self):
        if len(self.request.body or b"") > MAX_REQUEST_BODY:
            raise web.HTTPError(413, f"the request is larger than {MAX_REQUEST_BODY // 1024} KB")
        self.check_access()

    def check_access(self):
        """INK's files scopes (read for GET/HEAD, write for the rest) and the rate limit."""
        if self.current_user is None:
            if isinstance(self, PageHandler):
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


class ZipStream:
    """A write-only, non-seekable file for zipfile; the handler takes what was written so far."""

    def __init__(self):
        self.buffer = bytearray()
        self.position = 0

    def write(self, data) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self):
        pass

    def take(self) -> bytes:
        data, self.buffer = bytes(self.buffer), bytearray()
        return data


class AreasHandler(FilesHandler):
    @web.authenticated
    async def get(self):
        try:
            areas = await self.storage.run(self.username, self.storage.areas_of, self.username)
        except StorageError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.finish({"user": self.username, "areas": areas})


class ListHandler(FilesHandler):
    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        self.finish(await self.listing(root, parts))


class StatHandler(FilesHandler):
    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        entry = await self.ask("stat", root=root, parts=parts)
        url = await self.storage.run(self.username, self.storage.url_of, self.username, root, parts)
        self.finish({"path": paths.join(root, parts), **entry, "url": url})


class ChecksumHandler(FilesHandler):
    """adler32 (as XRootD and FTS use it) or sha256 of a file, on request; remembered for the
    file's size and time."""

    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        algorithm = self.get_argument("algorithm", "adler32")
        if algorithm not in checksums.ALGORITHMS:
            raise web.HTTPError(400, f"algorithm: expected one of {', '.join(checksums.ALGORITHMS)}")
        answer = await self.ask("checksum", root=root, parts=parts, algorithm=algorithm)
        self.finish({"path": paths.join(root, parts), **answer})


class RunNotebookHandler(FilesHandler):
    """ "Run as batch job" on a notebook: submitted to the jobs API with the caller's own token
    (so the jobs service applies the user's limits, image and experiment rules), from the
    caller's home, where the jobs API takes notebooks."""

    @web.authenticated
    async def post(self, user_path):
        root, parts = self.split(user_path)
        if not parts or not parts[-1].endswith(".ipynb"):
            raise web.HTTPError(400, "only a notebook (.ipynb) runs as a batch job")
        url, token = self.settings.get("jobs_url"), self.hub_auth.get_token(self)
        if not url:
            raise web.HTTPError(404, "this site runs no batch jobs (the jobs service is off)")
        if self.username != self.current_user["name"]:
            raise web.HTTPError(403, "a notebook runs as a batch job of its owner only: ask them to run it")
        entry = await self.ask("stat", root=root, parts=parts)
        if entry.get("type") != "file":
            raise web.HTTPError(400, "only a notebook (.ipynb) runs as a batch job")
        if self.storage.kind_of(root) != "posix":
            raise web.HTTPError(400, "a notebook runs as a batch job from your home, not from this area")
        area = await self.storage.run(self.username, self.storage.url_of, self.username, root, [])
        notebook = os.path.relpath(os.path.join(area, *parts), self.storage.user(self.username).pw_dir)
        if notebook.startswith("..") or os.path.isabs(notebook):
            raise web.HTTPError(400, "a notebook runs as a batch job from your home, not from this area")
        job, code = await submit_job(url, token, {**self.json_body(empty={}), "notebook": notebook})
        if code != 201:
            raise web.HTTPError(code, job.get("message", "the jobs service refused the job"))
        # where its logs and the executed copy are, as this page names paths ("" if elsewhere)
        folder = os.path.relpath(job["output_dir"], area)
        job["folder"] = "" if folder.startswith("..") else paths.join(root, folder.split("/"))
        self.set_status(201)
        self.finish(job)


async def submit_job(url: str, token: str, body: dict) -> tuple[dict, int]:
    """POST a job to the jobs API as the token's user: (answer, status code)."""
    request = httpclient.HTTPRequest(
        url,
        method="POST",
        body=json.dumps(body),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        request_timeout=60,
    )
    try:
        response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    except OSError as e:
        return {"message": f"the jobs service is unreachable ({e})"}, 503
    try:
        answer = json.loads(response.body or b"{}")
    except ValueError:
        answer = {}
    if response.code == 599:  # no answer (refused, timed out)
        return {"message": "the jobs service did not answer"}, 503
    return answer, response.code


@web.stream_request_body
class FileHandler(FilesHandler):
    """Download (GET/HEAD), streamed upload (PUT), delete (DELETE)."""

    upload = None
    refusal = None
    # True until prepare() lets the body be read: also for what Tornado refuses before
    # prepare() (a method this handler lacks: 405)
    refused_before_body = True

    def finish(self, chunk=None):
        if self.refused_before_body:
            # Tornado closes the connection after answering a request whose body it has not read,
            # without saying so. Say it: the hub's proxy keeps upstream connections alive and
            # would send the next request down the closing socket, answering it 503.
            self.set_header("Connection", "close")
        return super().finish(chunk)

    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        await self.send_file(root, parts)

    @web.authenticated
    async def head(self, user_path):
        root, parts = self.split(user_path)
        await self.send_file(root, parts, head=True)

    @web.authenticated
    async def delete(self, user_path):
        root, parts = self.split(user_path)
        if not parts:
            raise web.HTTPError(400, "a storage area itself cannot be deleted")
        entry = await self.ask("stat", root=root, parts=parts)
        if entry["type"] == "dir" and not self.flag("recursive"):
            listing = await self.ask("list", root=root, parts=parts, limit=1, hidden=True)
            if listing["total"]:
                raise web.HTTPError(
                    409, "the folder is not empty: pass recursive=1 to delete it with everything in it"
                )
        await self.ask("delete", root=root, parts=parts)
        self.set_status(204)

    async def prepare(self):
        await self.check_before_body()
        self.refused_before_body = False

    async def check_before_body(self):
        if self.request.method != "PUT":  # a body, if any, is read and dropped
            self.check_access()
            return
        if self.current_user is None:  # anonymous: answered before a byte of the body is read
            refuse_anonymous(self)
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.settings["max_upload"]:
            limit = self.settings["max_upload"]
            raise web.HTTPError(413, f"the file is larger than this site's upload limit of {limit} bytes")
        if length.isdigit():
            self.request.connection.set_max_body_size(int(length))
        # A refused upload's body is read and dropped, never stored: the answer comes after it.
        # (Cutting the connection instead makes the hub's proxy answer 503, hiding the reason.)
        try:
            await self.start_upload()
        except (web.HTTPError, paths.PathRefused) as e:
            self.refusal = e if isinstance(e, web.HTTPError) else web.HTTPError(400, str(e))

    async def start_upload(self):
        # authenticate before a single byte of the body is stored
        if self.current_user is None:
            raise web.HTTPError(403, "log in or send a token")
        self.check_access()
        self.check_xsrf_cookie()
        root, parts = self.split(self.path_args[0])
        if not parts:
            raise web.HTTPError(400, "upload to a file path inside a storage area")
        limit = self.settings["max_upload"]
        upload_id = self.request.headers.get("X-Ink-Upload") or secrets.token_urlsafe(16)
        if not UPLOAD_ID.match(upload_id):
            raise web.HTTPError(400, "X-Ink-Upload: expected 8-64 letters, digits, - or _")
        length = self.request.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise web.HTTPError(411, "uploads need a Content-Length")
        length = int(length)
        header = self.request.headers.get("Content-Range")
        if header:
            match = CONTENT_RANGE.match(header)
            if not match:
                raise web.HTTPError(400, "Content-Range: expected bytes START-END/TOTAL")
            start, end, total = (int(g) for g in match.groups())
            if end < start or end >= total or end - start + 1 != length:
                raise web.HTTPError(400, "Content-Range does not match the body's length")
        else:
            start, total = 0, length
        if total > limit:
            raise web.HTTPError(413, f"the file is larger than this site's upload limit of {limit} bytes")
        active = self.settings["active_uploads"]
        if active.get(self.username, 0) >= self.settings["max_concurrent_uploads"]:
            raise web.HTTPError(429, "too many uploads at once: wait for one to finish")
        await settle(self.settings, upload_id)
        try:
            writer = await self.storage.writer(self.username, root, parts, upload_id)
        except StorageError as e:
            raise web.HTTPError(e.status, str(e)) from None
        if writer.size != start:
            writer.close()
            raise AnswerError(
                409,
                f"this upload has {writer.size} bytes so far: resume from there",
                {"X-Ink-Received": str(writer.size)},
                received=writer.size,
            )
        active[self.username] = active.get(self.username, 0) + 1
        UPLOADS.inc()
        self.upload = {"root": root, "parts": parts, "id": upload_id, "writer": writer}
        self.upload.update(offset=start, total=total)

    async def data_received(self, chunk: bytes):
        upload = self.upload
        if upload is None or "error" in upload:
            return
        try:
            await upload["writer"].write(upload["offset"], chunk)
        except (OSError, StorageError) as e:
            upload["error"] = e
            return
        upload["offset"] += len(chunk)
        BYTES_IN.inc(len(chunk))

    async def put(self, user_path):
        if self.refusal is not None:
            raise self.refusal
        upload = self.upload
        try:
            error = upload.get("error")
            if error is None:
                try:
                    await upload["writer"].sync()
                except (OSError, StorageError) as e:
                    error = e
        finally:
            self.release_upload()
        kwargs = {"root": upload["root"], "parts": upload["parts"], "upload_id": upload["id"]}
        if error is not None:  # disk full, quota: nothing half-written stays behind
            await self.storage.request(self.username, "abort", **kwargs)
            if (
                getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
                or getattr(error, "status", 0) == 507
            ):
                raise web.HTTPError(507, "the disk or your quota is full: the upload was removed")
            log.error("upload of %s failed: %s", self.username, error)
            raise web.HTTPError(500, "the upload could not be written; it was removed")
        if upload["offset"] < upload["total"]:
            self.set_status(202)
            self.finish({"upload": upload["id"], "received": upload["offset"], "total": upload["total"]})
            return
        entry = await self.ask("commit", **kwargs, overwrite=self.flag("overwrite"))
        self.set_status(201)
        self.finish({"path": paths.join(upload["root"], upload["parts"]), **entry})

    def release_upload(self):
        upload = self.upload
        if upload is not None and "writer" in upload:
            upload.pop("writer").close()
            active = self.settings["active_uploads"]
            active[self.username] = max(0, active.get(self.username, 1) - 1)
            UPLOADS.dec()

    def on_connection_close(self):
        # the partial file stays, to resume from; what a writer still holds goes into it first
        upload = self.upload
        if upload is not None and "writer" in upload and hasattr(upload["writer"], "flush"):
            flushing = self.settings["flushing"]
            task = asyncio.ensure_future(upload["writer"].flush())
            flushing[upload["id"]] = task
            task.add_done_callback(lambda _: flushing.pop(upload["id"], None))
        self.release_upload()

    def on_finish(self):
        self.release_upload()


async def settle(settings, upload_id: str) -> None:
    """Wait for what a dropped connection's writer was still putting into this upload."""
    task = settings["flushing"].get(upload_id)
    if task is not None:
        try:
            await task
        except Exception as e:  # the upload resumes from what did land
            log.warning("flushing upload %s failed: %s", upload_id, e)


class UploadsHandler(FilesHandler):
    def upload_of(self, user_path):
        root, parts = self.split(user_path)
        upload_id = self.get_argument("upload", "")
        if not UPLOAD_ID.match(upload_id) or not parts:
            raise web.HTTPError(400, "upload: expected the upload's id")
        return root, parts, upload_id

    @web.authenticated
    async def get(self, user_path):
        root, parts, upload_id = self.upload_of(user_path)
        await settle(self.settings, upload_id)
        partial = parts[:-1] + [f"{PARTIAL_PREFIX}{upload_id}"]
        try:
            entry = await self.storage.request(self.username, "stat", root=root, parts=partial)
            received = entry["size"]
        except StorageError as e:
            if e.status != 404:
                raise web.HTTPError(e.status, str(e)) from None
            received = 0
        self.finish({"upload": upload_id, "received": received})

    @web.authenticated
    async def delete(self, user_path):
        root, parts, upload_id = self.upload_of(user_path)
        await self.ask("abort", root=root, parts=parts, upload_id=upload_id)
        self.set_status(204)


class PreviewHandler(FilesHandler):
    @web.authenticated
    async def get(self, kind, user_path):
        root, parts = self.split(user_path)
        self.set_header("Cache-Control", "no-store")
        self.finish(await self.preview(kind, root, parts))


class MkdirHandler(FilesHandler):
    @web.authenticated
    async def post(self, user_path):
        root, parts = self.split(user_path)
        if not parts:
            raise web.HTTPError(400, "name the new folder")
        entry = await self.ask("mkdir", root=root, parts=parts, parents=self.flag("parents"))
        self.set_status(201)
        self.finish({"path": paths.join(root, parts), **entry})


class TransferHandler(FilesHandler):
    """move and copy: {"from": PATH, "to": PATH, "overwrite": false}"""

    @web.authenticated
    async def post(self, op):
        body = self.json_body(empty={})
        unknown = sorted(set(body) - {"from", "to", "overwrite"})
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r}")
        root, parts = self.split(body.get("from"))
        to_root, to_parts = self.split(body.get("to"))
        if not parts or not to_parts:
            raise web.HTTPError(400, "from and to must be paths inside storage areas")
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise web.HTTPError(400, "overwrite: expected true or false")
        entry = await self.ask(
            {"move": "rename", "copy": "copy"}[op],
            root=root,
            parts=parts,
            to_root=to_root,
            to_parts=to_parts,
            overwrite=overwrite,
        )
        self.finish({"path": paths.join(to_root, to_parts), **entry})


class ChmodHandler(FilesHandler):
    @web.authenticated
    async def post(self, user_path):
        root, parts = self.split(user_path)
        mode = self.json_body(empty={}).get("mode")
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise web.HTTPError(400, "mode: expected permission bits, 0 to 511 (0o777)")
        self.finish(
            {"path": paths.join(root, parts), **await self.ask("chmod", root=root, parts=parts, mode=mode)}
        )


def share_model(link, secret: str | None, base: str) -> dict:
    model = {
        "id": link.id,
        "path": link.path,
        "created": link.created,
        "expires": link.expires,
        "is_dir": link.is_dir,
    }
    if secret is not None:
        model["url"] = f"{base}s/{secret}/"
    return model


class SharesHandler(FilesHandler):
    @property
    def shares(self) -> ShareStore:
        return self.settings["shares"]

    @web.authenticated
    def get(self):
        links = self.shares.of_owner(self.username)
        self.finish({"shares": [share_model(link, None, self.settings["prefix"]) for link in links]})

    @web.authenticated
    async def post(self):
        body = self.json_body(empty={})
        unknown = sorted(set(body) - {"path", "expires_in"})
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r}")
        root, parts = self.split(body.get("path"))
        entry = await self.ask("stat", root=root, parts=parts)
        if entry["type"] not in ("file", "dir"):
            raise web.HTTPError(400, "only files and folders can be shared")
        try:
            secret, link = self.shares.create(
                self.username,
                paths.join(root, parts),
                body.get("expires_in", 7 * 24 * 3600),
                entry["type"] == "dir",
            )
        except ShareError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.set_status(201)
        self.finish(share_model(link, secret, self.settings["prefix"]))


class ShareHandler(FilesHandler):
    @web.authenticated
    def delete(self, link_id):
        try:
            self.settings["shares"].revoke(self.username, link_id)
        except ShareError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.set_status(204)


HUB_USERS_SECONDS = 5
_hub_users: dict[str, tuple[float, bool]] = {}  # name -> (when asked, exists)


async def hub_user_exists(handler, name: str) -> bool:
    """Whether the hub still has this user (asked with the service's token, kept 5 s). A
    hub that cannot answer keeps links alive: an outage must not delete them."""
    asked, exists = _hub_users.get(name, (0.0, True))
    if time.monotonic() - asked < HUB_USERS_SECONDS:
        return exists
    try:
        await handler.hub_get(f"users/{quote(name, safe='')}")
        exists = True
    except httpclient.HTTPClientError as e:
        if e.code != 404:
            return True
        exists = False
    except OSError:
        return True
    _hub_users[name] = (time.monotonic(), exists)
    return exists


class PublicShareHandler(FilesHandler):
    """What a share link opens: read-only, confined to the shared file or folder, no login."""

    def prepare(self):
        pass  # no login, no scopes: the link's secret is the key

    def check_xsrf_cookie(self):
        pass  # read-only GETs only

    def resolve(self, secret: str, sub: str):
        try:
            link = self.settings["shares"].resolve(secret)
            root, parts = paths.split(link.path)
            extra = paths.parts_of(sub or "")
        except ShareError as e:
            raise web.HTTPError(e.status, str(e)) from None
        except paths.PathRefused as e:
            raise web.HTTPError(400, str(e)) from None
        if extra and not link.is_dir:
            raise web.HTTPError(404, "this link shares one file")
        if any(part.startswith(".") for part in extra):
            # dotfiles (.ssh, .netrc, tokens...) are never shared through a folder's link; a
            # dotfile the owner shared itself is the link's own path, which this does not touch
            raise web.HTTPError(404, "no such file in this share")
        return link, root, parts + extra

    async def check_owner(self, link) -> None:
        """A link dies with its owner's account: gone from the machine, a system account, or
        no longer a hub user. Its links are then deleted, not merely refused."""
        try:
            user_account(link.owner, "serve a share link")
            alive = await hub_user_exists(self, link.owner)
        except (KeyError, SystemAccountRefused):
            alive = False
        if not alive:
            self.settings["shares"].forget_owner(link.owner)
            raise web.HTTPError(410, "this share link's owner no longer has an account here")

    async def get(self, secret, kind, sub):
        link, root, parts = self.resolve(secret, sub)
        await self.check_owner(link)

        def inside_link(answer):  # paths as the link's holder sees them: below the shared path
            answer["path"] = "/".join(answer["path"].split("/")[len(link.path.split("/")) :])
            return answer

        if kind == "list":
            self.finish(inside_link(await self.listing(root, parts, owner=link.owner, hidden=False)))
        elif kind == "files":
            await self.send_file(root, parts, owner=link.owner, hidden=False)
        elif kind.startswith("preview/"):
            self.finish(inside_link(await self.preview(kind.split("/")[1], root, parts, owner=link.owner)))
        else:
            self.render(
                "files.html",
                prefix=self.settings["prefix"],
                xsrf="",
                user="",
                share=secret,
                share_name=link.path.rsplit("/", 1)[-1],
                share_is_dir=link.is_dir,
                max_upload=0,
            )


class PageHandler(FilesHandler):
    @web.authenticated
    def get(self):
        self.render(
            "files.html",
            prefix=self.settings["prefix"],
            xsrf=self.xsrf_token.decode(),
            user=self.username,
            share="",
            share_name="",
            share_is_dir=False,
            max_upload=self.settings["max_upload"],
        )


def npm_dir(package: str) -> str:
    """A browser package from npm (JSROOT, highlight.js), installed by scripts/install."""
    return os.path.join(sys.prefix, "node_modules", package)


def make_app(
    storage,
    shares: ShareStore,
    prefix: str,
    max_upload: int,
    max_concurrent_uploads: int,
    limiter=None,
    jobs_url: str = "",
) -> web.Application:
    return service_app(
        prefix,
        [
            ("", PageHandler),
            ("api/v1/areas", AreasHandler),
            ("api/v1/list/(.*)", ListHandler),
            ("api/v1/stat/(.*)", StatHandler),
            ("api/v1/files/(.*)", FileHandler),
            ("api/v1/uploads/(.*)", UploadsHandler),
            ("api/v1/mkdir/(.*)", MkdirHandler),
            ("api/v1/preview/(root|fits)/(.*)", PreviewHandler),
            ("api/v1/(move|copy)", TransferHandler),
            ("api/v1/chmod/(.*)", ChmodHandler),
            ("api/v1/checksum/(.*)", ChecksumHandler),
            ("api/v1/run/(.*)", RunNotebookHandler),
            ("api/v1/shares", SharesHandler),
            ("api/v1/shares/([^/]+)", ShareHandler),
            ("s/([^/]+)/(list|files|preview/root|preview/fits)/(.*)", PublicShareHandler),
            ("s/([^/]+)/()()", PublicShareHandler),
            ("static/jsroot/(.*)", web.StaticFileHandler, {"path": npm_dir("jsroot")}),
            (
                "static/ink/(.*)",
                web.StaticFileHandler,
                {"path": str(STATIC)},
            ),
            (
                "static/highlight/(.*)",
                web.StaticFileHandler,
                {"path": npm_dir("@highlightjs/cdn-assets")},
            ),
            ("api/v1/openapi.yaml", OpenAPIHandler, {"path": OPENAPI}),
        ],
        storage=storage,
        shares=shares,
        max_upload=max_upload,
        max_concurrent_uploads=max_concurrent_uploads,
        active_uploads={},
        flushing={},
        previews=PreviewCache(),
        rate_limiter=limiter,
        jobs_url=jobs_url,
        template_path=str(Path(__file__).parent / "templates"),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ink-files")
    parser.add_argument(
        "--areas", default='{"home": "{home}"}', help="JSON: area name -> folder or xrootd spec"
    )
    parser.add_argument("--shares", required=True, help="folder of share links")
    parser.add_argument("--credentials-store", default="", help="the credentials service's tickets (xrootd)")
    parser.add_argument("--max-upload", type=int, default=100 * 1024**3)
    parser.add_argument("--max-concurrent-uploads", type=int, default=8)
    parser.add_argument("--rate", type=float, default=600, help="requests per minute per token (0: no limit)")
    parser.add_argument("--burst", type=int, default=120)
    parser.add_argument("--jobs-url", default="", help="the jobs API's api/v1/jobs (Run as batch job)")
    args = parser.parse_args(argv)
    start_logging("ink-files")
    ticket_for = None
    if args.credentials_store:
        # the workers' ticket copies: one private folder per user (mode 700, the user's) inside a
        # folder of unpredictable name that others may pass through but not list (mode 711)
        tickets = tempfile.mkdtemp(prefix="ink-files-tickets-")
        os.chmod(tickets, 0o711)
        atexit.register(shutil.rmtree, tickets, True)

        def ticket_for(user):
            folder = os.path.join(tickets, str(user.pw_uid))
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(folder, user.pw_uid, user.pw_gid)
            return deliver_ticket(args.credentials_store, user, os.path.join(folder, "krb5cc"))

    storage = Storage(json.loads(args.areas), ticket_for)
    limiter = RateLimiter(args.rate, args.burst)
    app = make_app(
        storage,
        ShareStore(args.shares),
        service_prefix("ink-files"),
        args.max_upload,
        args.max_concurrent_uploads,
        limiter,
        args.jobs_url,
    )
    ioloop.PeriodicCallback(storage.reap_idle, 60_000).start()
    # bodies up to READ_LIMIT are read and answered (413 past MAX_REQUEST_BODY); an upload's own
    # limit is set from its Content-Length (prepare)
    about = f"; areas {', '.join(storage.areas)}"
    run_service(app, log, 8085, READ_LIMIT, about=about, idle_connection_timeout=3600)
