"""WebDAV (RFC 4918, classes 1 and 2) on the user's storage areas: ``dav/<area>/<path>``.

It is the file service's other door: every operation goes to the same per-user worker as the
files API (the kernel or the XRootD server decides), paths are checked the same way, and
uploads land whole (a partial file, then a rename). A client logs in with HTTP Basic: the hub
user name and an API token (scope ``custom:ink:files:*``) as the password. Cookies are never
taken here, so no browser page can make a request count as its user's (no XSRF to check).

Listings stream: PROPFIND depth 1 asks the worker for pages of a folder's entries in the file
system's order and writes each page's XML before it asks for the next. Depth infinity is
refused (RFC 4918 allows it), as are cross-kind moves (POSIX <-> XRootD): those are transfers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from urllib.parse import quote, unquote, urlsplit

from jupyterhub.services.auth import UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import web

from ink_core.scopes import FILES_READ, FILES_WRITE

from ..auth import AnswerError
from ..ratelimit import check_rate
from ..scopes import require_scope
from . import davxml, paths
from .davlocks import LockError, LockTable, parse_if, strong, submitted_tokens, timeout_of
from .handler import MAX_REQUEST_BODY, FilesHandler
from .storage import StorageError
from .uploads import StreamedUpload

READS = ("GET", "HEAD", "OPTIONS", "PROPFIND")
WRITES = ("PUT", "DELETE", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK")
PAGE = 1000  # entries per worker call while a folder's listing streams
REALM = {"WWW-Authenticate": 'Basic realm="INK files", charset="UTF-8"'}


@web.stream_request_body
class DavHandler(FilesHandler):
    SUPPORTED_METHODS = READS + WRITES
    upload = None
    refusal = None
    reading = False  # set once prepare() lets the body be read

    # -- who calls ------------------------------------------------------------------------------
    def get_current_user(self):
        """The token's user, from ``Authorization: Basic`` (hub name : token) or ``token``."""
        scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
        name = None
        if scheme.lower() == "basic":
            try:
                name, _, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
        elif scheme.lower() in ("token", "bearer"):
            token = value.strip()
        else:
            return None
        if not token:
            return None
        model = self.hub_auth.user_for_token(token, use_cache=True)
        if not model or model.get("kind", "user") != "user" or (name is not None and model["name"] != name):
            return None
        try:
            return self.check_hub_user(model)
        except UserNotAllowed:
            return None

    def check_xsrf_cookie(self):
        """Nothing to check: a request here counts only with its own credentials, never cookies."""

    async def prepare(self):
        if self.current_user is None:
            raise AnswerError(401, "log in with your hub user name and an API token as the password", REALM)
        require_scope(self, FILES_READ if self.request.method in READS else FILES_WRITE)
        check_rate(self)
        self.body = bytearray()
        if self.request.method == "PUT":
            # a refusal is answered after the body is read and dropped (see uploads.FileHandler)
            try:
                await self.start_put(self.path_args[0] if self.path_args else "")
            except web.HTTPError as e:
                self.refusal = e
            self.request.connection.set_max_body_size(self.settings["max_upload"] + 1)
        self.reading = True

    def finish(self, chunk=None):
        if not self.reading:  # answered before the body was read: the connection ends with it
            self.set_header("Connection", "close")
        return super().finish(chunk)

    async def data_received(self, chunk: bytes):
        if self.upload is not None:
            await self.upload.receive(chunk)
        elif self.request.method != "PUT" and self.refusal is None:
            self.body += chunk
            if len(self.body) > MAX_REQUEST_BODY:
                self.refusal = web.HTTPError(413, f"the request is larger than {MAX_REQUEST_BODY // 1024} KB")
                self.body = bytearray()

    # -- paths ------------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return url_path_join(self.settings["prefix"], "dav") + "/"

    def target(self, user_path: str) -> tuple[str, list[str]] | None:
        """(area, parts) of the request, or None for the folder of areas itself."""
        try:
            if not paths.parts_of(user_path or ""):
                return None
        except paths.PathRefused as e:
            raise web.HTTPError(400, str(e)) from None
        root, parts = self.split(user_path)
        if root not in self.storage.areas:
            raise web.HTTPError(404, f"no storage area named {root!r}")
        return root, parts

    def in_area(self, user_path: str) -> tuple[str, list[str]]:
        target = self.target(user_path)
        if target is None:
            raise web.HTTPError(403, "the folder of your storage areas cannot be changed")
        return target

    def resolve(self, url: str) -> tuple[str, list[str]] | None:
        """A URL the client names (Destination, an If header's tag) as (area, parts)."""
        parsed = urlsplit(url)
        if parsed.netloc and parsed.netloc != self.request.host:
            raise web.HTTPError(502, "the destination is on another server")
        try:
            path = unquote(parsed.path, errors="strict")
        except UnicodeDecodeError:
            raise web.HTTPError(400, "the destination is not UTF-8") from None
        if not (path + "/").startswith(self.base) and path + "/" != self.base:
            raise web.HTTPError(403, "the destination is outside your WebDAV folders")
        return self.target(path[len(self.base) :])

    def href(self, root: str | None, parts: list[str], is_dir: bool) -> str:
        names = [quote(n, safe="") for n in ([root] if root else []) + parts]
        return self.base + "/".join(names) + ("/" if is_dir and names else "")

    def key(self, root: str, parts: list[str]) -> tuple:
        """Where the entry really is: the lock table's key (each area's location looked up once
        per request)."""
        if not hasattr(self, "_locations"):
            self._locations = {}
        if root not in self._locations:
            self._locations[root] = self.storage.url_of(self.username, root, [])
        return (self._locations[root], *parts)

    @property
    def locks(self) -> LockTable:
        return self.settings["dav_locks"]

    async def entry(self, root: str, parts: list[str]) -> dict | None:
        """The entry, or None where nothing is (a symlink is never served: 403)."""
        try:
            entry = await self.storage.request(self.username, "stat", root=root, parts=parts)
        except StorageError as e:
            if e.status == 404:
                return None
            raise web.HTTPError(e.status, str(e)) from None
        if entry["type"] not in ("file", "dir"):
            raise web.HTTPError(403, "symbolic links and special files are not served")
        return entry

    async def existing(self, root, parts) -> dict:
        entry = await self.entry(root, parts)
        if entry is None:
            raise web.HTTPError(404, "no such file or folder")
        return entry

    async def do(self, op: str, **request) -> dict:
        """A worker operation; a missing folder on the way is WebDAV's 409."""
        try:
            return await self.ask(op, **request)
        except web.HTTPError as e:
            if e.status_code == 404:
                raise web.HTTPError(409, "a folder on the way does not exist") from None
            raise

    # -- preconditions: the If header and locks ----------------------------------------------------
    async def conditions(self, root, parts, entry) -> set[str]:
        """Evaluate the If header (412 when no list holds); the lock tokens it submits."""
        header = self.request.headers.get("If")
        if not header:
            return set()
        try:
            lists = parse_if(header)
        except ValueError as e:
            raise web.HTTPError(400, str(e)) from None
        tokens = submitted_tokens(lists)
        for tag, conditions in lists:
            where, there = (root, parts), entry
            if tag is not None:
                resolved = self.resolve(tag)
                if resolved is None:
                    continue
                if resolved != (root, parts):
                    where, there = resolved, await self.entry(*resolved)
            key = self.key(*where)
            if all(self.holds(c, key, there) for c in conditions):
                return tokens
        raise web.HTTPError(412, "the If header's conditions do not hold")

    def holds(self, condition, key, entry) -> bool:
        if condition.token is not None:
            lock = self.locks.locks.get(condition.token)
            ok = lock is not None and lock in self.locks.live() and lock.covers(key)
        else:
            ok = entry is not None and strong(condition.etag) == davxml.etag(entry)
        return ok != condition.negated

    def check_locks(self, root, parts, tokens: set[str], members=False, deep=False) -> None:
        """423 unless every lock on what changes was taken by the caller and its token shown:
        locks on the entry (and folders above with depth infinity); with ``members``, a lock on
        its folder (its list of members changes); with ``deep``, locks inside it."""
        key = self.key(root, parts)
        held = self.locks.covering(key)
        if members and parts:
            held += self.locks.on_members_of(key[:-1])
        if deep:
            held += self.locks.under(key)
        for lock in held:
            if lock.token not in tokens or lock.principal != self.current_user["name"]:
                raise AnswerError(423, f"{lock.root_href} is locked", lock_root=lock.root_href)

    async def writable(self, root, parts, entry, members=False, deep=False) -> set[str]:
        tokens = await self.conditions(root, parts, entry)
        self.check_locks(root, parts, tokens, members, deep)
        return tokens

    # -- methods ----------------------------------------------------------------------------------
    def options(self, user_path=""):
        self.set_header("DAV", "1, 2")
        self.set_header("MS-Author-Via", "DAV")
        self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        self.set_header("Content-Length", "0")
        self.finish()

    async def get(self, user_path="", head=False):
        target = self.target(user_path)
        entry = None if target is None else await self.existing(*target)
        if target is None or entry["type"] == "dir":
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            if not head:
                self.finish("This is a folder of INK's WebDAV: list it with PROPFIND (a WebDAV client).\n")
            return
        self.set_header("ETag", davxml.etag(entry))
        await self.send_file(*target, head=head)

    async def head(self, user_path=""):
        await self.get(user_path, head=True)

    async def start_put(self, user_path):
        root, parts = self.in_area(user_path)
        if not parts:
            raise web.HTTPError(405, "an area itself cannot be written")
        entry = await self.entry(root, parts)
        if entry is not None and entry["type"] == "dir":
            raise web.HTTPError(405, "a folder cannot be overwritten by a file")
        await self.writable(root, parts, entry, members=entry is None)
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.settings["max_upload"]:
            raise web.HTTPError(413, "the file is larger than this site's upload limit")
        StreamedUpload.check_room(self)
        upload_id = secrets.token_urlsafe(16)
        try:
            writer = await self.storage.writer(self.username, root, parts, upload_id)
        except StorageError as e:
            raise web.HTTPError(409 if e.status == 404 else e.status, str(e)) from None
        self.upload = StreamedUpload(self, root, parts, upload_id, writer, 0, self.settings["max_upload"])
        self.upload.existed = entry is not None

    async def put(self, user_path=""):
        if self.refusal is not None:
            raise self.refusal
        upload = self.upload
        await upload.finish()
        entry = await self.ask("commit", **upload.where, overwrite=True)
        self.set_header("ETag", davxml.etag(entry))
        self.set_status(204 if upload.existed else 201)
        self.finish()

    def on_connection_close(self):
        """A dropped upload leaves nothing: WebDAV has no resume (the files API has)."""
        upload = self.upload
        if upload is not None and upload.writer is not None:
            upload.release()
            task = asyncio.ensure_future(self.storage.request(self.username, "abort", **upload.where))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def on_finish(self):
        if self.upload is not None:
            self.upload.release()

    def check_body(self):
        if self.refusal is not None:
            raise self.refusal

    async def delete(self, user_path=""):
        self.check_body()
        root, parts = self.in_area(user_path)
        if not parts:
            raise web.HTTPError(403, "a storage area itself cannot be deleted")
        entry = await self.existing(root, parts)
        await self.writable(root, parts, entry, members=True, deep=True)
        await self.ask("delete", root=root, parts=parts)
        self.locks.release_at_and_under(self.key(root, parts))
        self.set_status(204)
        self.finish()

    async def mkcol(self, user_path=""):
        self.check_body()
        if self.body.strip():
            raise web.HTTPError(415, "MKCOL takes no body")
        root, parts = self.in_area(user_path)
        entry = await self.entry(root, parts)
        if entry is not None:
            raise web.HTTPError(405, "something of that name already exists")
        await self.writable(root, parts, None, members=True)
        await self.do("mkdir", root=root, parts=parts)
        self.set_status(201)
        self.finish()

    async def copy(self, user_path=""):
        await self.transfer(user_path, move=False)

    async def move(self, user_path=""):
        await self.transfer(user_path, move=True)

    async def transfer(self, user_path, move: bool):
        self.check_body()
        root, parts = self.in_area(user_path)
        if move and not parts:
            raise web.HTTPError(403, "a storage area itself cannot be moved")
        source = await self.existing(root, parts)
        header = self.request.headers.get("Destination")
        if not header:
            raise web.HTTPError(400, "name the Destination")
        destination = self.resolve(header)
        if destination is None or not destination[1]:
            raise web.HTTPError(403, "a storage area itself cannot be replaced")
        to_root, to_parts = destination
        if (to_root, to_parts) == (root, parts):
            raise web.HTTPError(403, "the source and the destination are the same")
        if to_root == root and to_parts[: len(parts)] == parts:
            raise web.HTTPError(403, "a folder cannot go inside itself")
        overwrite = self.request.headers.get("Overwrite", "T").strip().upper()
        if overwrite not in ("T", "F"):
            raise web.HTTPError(400, "Overwrite: expected T or F")
        depth = self.request.headers.get("Depth", "infinity").strip().lower()
        if depth not in (("infinity",) if move else ("0", "infinity")):
            raise web.HTTPError(
                400, f"Depth: {'infinity' if move else '0 or infinity'} for {self.request.method}"
            )
        if self.storage.kind_of(to_root) != self.storage.kind_of(root):
            raise web.HTTPError(502, "between these two kinds of storage, copy with the Files page")
        existing = await self.entry(to_root, to_parts)
        if existing is not None and overwrite == "F":
            raise web.HTTPError(412, "the destination exists and Overwrite is F")
        if move:
            tokens = await self.writable(root, parts, source, members=True, deep=True)
        else:
            tokens = await self.conditions(root, parts, source)
        self.check_locks(to_root, to_parts, tokens, members=True, deep=True)
        if existing is not None:
            await self.ask("delete", root=to_root, parts=to_parts)
        where = {"root": root, "parts": parts, "to_root": to_root, "to_parts": to_parts}
        if move and root == to_root:
            await self.do("rename", **where)
        elif source["type"] == "dir" and depth == "0":
            await self.do("mkdir", root=to_root, parts=to_parts)
            props = (await self.ask("props", root=root, parts=parts))["props"]
            if props:
                await self.ask("setprops", root=to_root, parts=to_parts, set=props)
        else:
            await self.do("copy", **where)
            if move:
                await self.ask("delete", root=root, parts=parts)
        if move:
            self.locks.release_at_and_under(self.key(root, parts))
        self.set_status(204 if existing is not None else 201)
        self.finish()

    async def propfind(self, user_path=""):
        self.check_body()
        depth = self.request.headers.get("Depth", "infinity").strip().lower()
        if depth not in ("0", "1"):
            self.set_status(403)
            self.set_header("Content-Type", "application/xml; charset=utf-8")
            self.finish(davxml.error("propfind-finite-depth"))
            return
        mode, names = davxml.propfind_request(bytes(self.body))
        want_dead = mode != "prop" or any(ns != davxml.DAV for ns, _ in names)
        target = self.target(user_path)
        if target is None:  # the folder of areas
            areas = await self.storage.run(self.username, self.storage.areas_of, self.username)
            own = {"name": "", "type": "dir", "size": 0, "mtime": 0}
            members = [] if depth == "0" else [await self.existing(a, []) for a in areas]
            self.start_multistatus()
            self.write(davxml.propfind_entry(self.base, own, mode, names, davxml.lockdiscovery([])))
            for area, entry in zip(areas if members else [], members, strict=False):
                self.write_entry(area, [], entry, mode, names)
            self.finish("</D:multistatus>")
            return
        root, parts = target
        entry = await self.existing(root, parts)
        if want_dead:
            entry["props"] = (await self.ask("props", root=root, parts=parts))["props"]
        self.start_multistatus()
        self.write_entry(root, parts, entry, mode, names)
        if depth == "1" and entry["type"] == "dir":
            live = self.locks.live()  # once for the whole listing
            cursor = ""
            while True:
                await self.flush()
                page = await self.ask(
                    "scan", root=root, parts=parts, cursor=cursor, limit=PAGE, props=want_dead
                )
                for member in page["entries"]:
                    if member["type"] in ("file", "dir"):
                        self.write_entry(root, [*parts, member["name"]], member, mode, names, live)
                cursor = page["cursor"]
                if not cursor:
                    break
        self.finish("</D:multistatus>")

    def start_multistatus(self):
        self.set_status(207)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.write(f'{davxml.HEAD}<D:multistatus xmlns:D="DAV:">')

    def write_entry(self, root, parts, entry, mode, names, live_locks=None):
        live = self.locks.live() if live_locks is None else live_locks
        locks = [lock for lock in live if lock.covers(self.key(root, parts))] if live else []
        href = self.href(root, parts, entry["type"] == "dir")
        self.write(davxml.propfind_entry(href, entry, mode, names, davxml.lockdiscovery(locks)))

    async def proppatch(self, user_path=""):
        self.check_body()
        root, parts = self.in_area(user_path)
        changes = davxml.proppatch_request(bytes(self.body))
        entry = await self.existing(root, parts)
        await self.writable(root, parts, entry)
        protected = {(ns, name) for _, ns, name, _ in changes if ns == davxml.DAV}
        statuses = {}
        if protected:  # all or nothing: none is changed
            statuses = {(ns, name): 403 if (ns, name) in protected else 424 for _, ns, name, _ in changes}
        else:
            to_set, to_remove = {}, set()
            for op, ns, name, xml in changes:
                key = davxml.prop_key(ns, name)
                if op == "set":
                    to_set[key] = davxml.stored_prop(ns, name, xml)
                    to_remove.discard(key)
                else:
                    to_set.pop(key, None)
                    to_remove.add(key)
            try:
                await self.storage.request(
                    self.username, "setprops", root=root, parts=parts, set=to_set, remove=sorted(to_remove)
                )
                status = 200
            except StorageError as e:
                status = e.status
            statuses = {(ns, name): status for _, ns, name, _ in changes}
        by_status: dict[int, list[str]] = {}
        for (ns, name), status in statuses.items():
            by_status.setdefault(status, []).append(davxml.empty_element(ns, name))
        href = self.href(root, parts, entry["type"] == "dir")
        body = davxml.response(href, [davxml.propstat(p, s) for s, p in by_status.items()])
        self.set_status(207)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(davxml.multistatus(body))

    async def lock(self, user_path=""):
        self.check_body()
        root, parts = self.in_area(user_path)
        info = davxml.lockinfo_request(bytes(self.body))
        timeout = timeout_of(self.request.headers.get("Timeout", ""))
        entry = await self.entry(root, parts)
        key = self.key(root, parts)
        if info is None:  # a refresh: the If header names the lock
            tokens = await self.conditions(root, parts, entry)
            mine = [
                lock
                for lock in self.locks.covering(key)
                if lock.token in tokens and lock.principal == self.current_user["name"]
            ]
            if not mine:
                raise web.HTTPError(412, "name the lock to refresh in the If header")
            lock = self.locks.refresh(mine[0].token, timeout)
            self.send_lock(lock, 200)
            return
        depth = self.request.headers.get("Depth", "infinity").strip().lower()
        if depth not in ("0", "infinity"):
            raise web.HTTPError(400, "Depth: 0 or infinity for LOCK")
        await self.conditions(root, parts, entry)
        exclusive, owner_xml = info
        href = self.href(root, parts, entry is not None and entry["type"] == "dir")
        try:
            lock = self.locks.take(key, href, depth, exclusive, owner_xml, self.current_user["name"], timeout)
        except LockError as e:
            raise AnswerError(e.status, str(e)) from None
        if entry is None:  # an unmapped URL: locking it makes an empty file
            try:
                self.check_locks(root, parts, {lock.token}, members=True)
                upload_id = secrets.token_urlsafe(16)
                (await self.storage.writer(self.username, root, parts, upload_id)).close()
                await self.do("commit", root=root, parts=parts, upload_id=upload_id, overwrite=False)
            except BaseException:
                self.locks.release(lock.token)
                raise
        self.send_lock(lock, 201 if entry is None else 200)

    def send_lock(self, lock, status):
        self.set_status(status)
        self.set_header("Lock-Token", f"<{lock.token}>")
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(davxml.lock_answer(lock))

    async def unlock(self, user_path=""):
        self.check_body()
        root, parts = self.in_area(user_path)
        token = self.request.headers.get("Lock-Token", "").strip().strip("<>")
        lock = self.locks.locks.get(token)
        if lock is None or lock not in self.locks.live() or not lock.covers(self.key(root, parts)):
            raise web.HTTPError(409, "no such lock on this resource")
        if lock.principal != self.current_user["name"]:
            raise web.HTTPError(403, "this lock is not yours")
        self.locks.release(token)
        self.set_status(204)
        self.finish()
