"""Downloads, deletes and streamed, resumable uploads (a partial file beside the target,
committed whole at the end); unfinished uploads listed and abandoned."""

from __future__ import annotations

import asyncio
import errno
import secrets

from tornado import web

from ..auth import AnswerError, refuse_anonymous
from . import paths
from .handler import (
    BYTES_IN,
    CONTENT_RANGE,
    UPLOAD_ID,
    UPLOADS,
    FilesHandler,
    log,
)
from .protocol import PARTIAL_PREFIX
from .storage import StorageError


class StreamedUpload:
    """A request body on its way into an upload's partial file (the files API's PUT and
    WebDAV's): the user's count of uploads at once, bytes written at their offset, and the end:
    synced, or on any failure the partial file removed and the failure answered."""

    def __init__(self, handler: FilesHandler, root, parts, upload_id: str, writer, offset: int, limit: int):
        self.settings, self.storage, self.username = handler.settings, handler.storage, handler.username
        self.root, self.parts, self.id = root, parts, upload_id
        self.writer, self.offset, self.limit, self.error = writer, offset, limit, None
        active = self.settings["active_uploads"]
        active[self.username] = active.get(self.username, 0) + 1
        UPLOADS.inc()

    @staticmethod
    def check_room(handler: FilesHandler) -> None:
        if (
            handler.settings["active_uploads"].get(handler.username, 0)
            >= handler.settings["max_concurrent_uploads"]
        ):
            raise AnswerError(429, "too many uploads at once: wait for one to finish", {"Retry-After": "2"})

    @property
    def where(self) -> dict:
        return {"root": self.root, "parts": self.parts, "upload_id": self.id}

    async def receive(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        if self.offset + len(chunk) > self.limit:
            self.error = web.HTTPError(413, "the file is larger than this site's upload limit")
            return
        try:
            await self.writer.write(self.offset, chunk)
        except (OSError, StorageError) as e:
            self.error = e
            return
        self.offset += len(chunk)
        BYTES_IN.inc(len(chunk))

    async def finish(self) -> None:
        """Everything received is in the partial file; else it is removed and the failure raised
        (disk full or quota: 507; nothing half-written stays behind)."""
        error = self.error
        try:
            if error is None:
                try:
                    await self.writer.sync()
                except (OSError, StorageError) as e:
                    error = e
        finally:
            self.release()
        if error is None:
            return
        await self.storage.request(self.username, "abort", **self.where)
        if isinstance(error, web.HTTPError):
            raise error
        if (
            getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
            or getattr(error, "status", 0) == 507
        ):
            raise web.HTTPError(507, "the disk or your quota is full: the upload was removed")
        log.error("upload of %s failed: %s", self.username, error)
        raise web.HTTPError(500, "the upload could not be written; it was removed")

    def release(self) -> None:
        """The writer closed and the user's count lowered (once)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            active = self.settings["active_uploads"]
            active[self.username] = max(0, active.get(self.username, 1) - 1)
            UPLOADS.dec()


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
        StreamedUpload.check_room(self)
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
        self.upload = StreamedUpload(self, root, parts, upload_id, writer, start, total)
        self.upload.total = total

    async def data_received(self, chunk: bytes):
        if self.upload is not None:
            await self.upload.receive(chunk)

    async def put(self, user_path):
        if self.refusal is not None:
            raise self.refusal
        upload = self.upload
        await upload.finish()
        if upload.offset < upload.total:
            self.set_status(202)
            self.finish({"upload": upload.id, "received": upload.offset, "total": upload.total})
            return
        entry = await self.ask("commit", **upload.where, overwrite=self.flag("overwrite"))
        self.set_status(201)
        self.finish({"path": paths.join(upload.root, upload.parts), **entry})

    def on_connection_close(self):
        # the partial file stays, to resume from; what a writer still holds goes into it first
        upload = self.upload
        if upload is not None and upload.writer is not None and hasattr(upload.writer, "flush"):
            flushing = self.settings["flushing"]
            task = asyncio.ensure_future(upload.writer.flush())
            flushing[upload.id] = task
            task.add_done_callback(lambda _: flushing.pop(upload.id, None))
        self.on_finish()

    def on_finish(self):
        if self.upload is not None:
            self.upload.release()


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
