"""The per-user XRootD file worker: talks to an XRootD (EOS, dCache, ...) server as the user,
authenticated with the user's own Kerberos ticket (KRB5CCNAME, XrdSecPROTOCOL=krb5 in its
environment), so the storage's own authorization decides what the user may do. Same operations
as the POSIX worker; file data travels in frames instead of file descriptors.
"""

from __future__ import annotations

import json
import socket
import sys
from urllib.parse import urlparse

from XRootD import client
from XRootD.client.flags import AccessMode, DirListFlags, MkDirFlags, OpenFlags, QueryCode, StatInfoFlags

from ink_core import checksums, previews
from ink_core.previews import CountingFile

from .protocol import PARTIAL_PREFIX, Operations, Refused, serve
from .scans import Scans
from .worker import list_page

MAX_READ = 16 * 1024 * 1024
# kXR error codes (XProtocol.hh) -> (HTTP status, message)
XRD_ERRORS = {
    3009: (507, "the storage is full"),
    3010: (403, "permission denied"),
    3011: (404, "no such file or folder"),
    3015: (409, "not a file"),
    3016: (409, "is a folder"),
    3018: (409, "already exists"),
    3021: (507, "your storage quota is exceeded"),
}


def check(status, what: str = ""):
    if status.ok:
        return
    code, message = XRD_ERRORS.get(status.errno, (502, f"storage error: {status.message.strip()}"))
    raise Refused(code, message)


class XRootDWorker(Operations):
    def __init__(self, roots: dict[str, str]):
        self.roots = {}
        for name, url in roots.items():
            parsed = urlparse(url)
            self.roots[name] = (f"{parsed.scheme}://{parsed.netloc}", "/" + parsed.path.lstrip("/"))
        self.clients: dict[str, client.FileSystem] = {}
        self.uploads: dict[str, client.File] = {}
        self.remembered = checksums.Remembered()
        self.scans = Scans()

    def locate(self, root: str, parts: list[str]) -> tuple[client.FileSystem, str, str]:
        """(file system, path on the server, full URL) of root/parts..."""
        if root not in self.roots:
            raise Refused(404, f"no storage area named {root!r}")
        for part in parts:
            if not part or part in (".", "..") or "/" in part or "\x00" in part:
                raise Refused(400, "path: bad name")
        server, base = self.roots[root]
        if server not in self.clients:
            self.clients[server] = client.FileSystem(server)
        # the area itself ends in "/": storage authorization is often granted on "prefix/"
        path = base.rstrip("/") + "/" + "/".join(parts)
        return self.clients[server], path, f"{server}/{path}"

    @staticmethod
    def entry(name: str, info) -> dict:
        is_dir = bool(info.flags & StatInfoFlags.IS_DIR)
        mode = getattr(info, "mode", "") or ""
        try:
            mode = int(mode, 8)
        except ValueError:
            mode = (0o755 if is_dir else 0o644) if info.flags & StatInfoFlags.IS_WRITABLE else 0o444
        return {
            "name": name,
            "type": "dir" if is_dir else "file",
            "size": info.size,
            "mtime": info.modtime,
            "mode": mode,
            # what the server tells of them (XRootD's stat often tells nothing)
            "owner": str(getattr(info, "owner", "") or ""),
            "group": str(getattr(info, "group", "") or ""),
        }

    def stat(self, root, parts):
        fs, path, _ = self.locate(root, parts)
        status, info = fs.stat(path)
        check(status)
        return self.entry(parts[-1] if parts else root, info)

    def exists(self, root, parts) -> bool:
        fs, path, _ = self.locate(root, parts)
        status, _ = fs.stat(path)
        return status.ok

    def op_stat(self, root, parts):
        return self.stat(root, parts)

    def entries(self, root, parts) -> list[dict]:
        fs, path, _ = self.locate(root, parts)
        status, listing = fs.dirlist(path.rstrip("/") + "/", DirListFlags.STAT)
        check(status)
        return [self.entry(e.name, e.statinfo) for e in listing if e.name not in (".", "..")]

    def op_list(self, root, parts, sort="name", reverse=False, offset=0, limit=200, hidden=False):
        return list_page(self.entries(root, parts), sort, reverse, offset, limit, hidden)

    def op_scan(self, root, parts, cursor="", limit=1000, props=False):
        """A folder's entries page by page (the server lists a folder in one answer)."""
        return self.scans.page(lambda: iter(self.entries(root, parts)), cursor, limit)

    def op_props(self, root, parts):
        self.stat(root, parts)
        return {"props": {}}

    def op_setprops(self, root, parts, set=None, remove=()):
        raise Refused(403, "XRootD storage keeps no custom properties")

    def op_open(self, root, parts):
        """The entry of a file or a folder (the data comes with op_read)."""
        return self.stat(root, parts)

    @staticmethod
    def remote(url: str) -> tuple[client.FileSystem, str]:
        """A root:// URL anywhere (a pull): its server and path, read with the user's ticket."""
        parsed = urlparse(url)
        if parsed.scheme not in ("root", "roots") or not parsed.hostname or "\x00" in url:
            raise Refused(400, "url: expected a root:// URL")
        return client.FileSystem(f"{parsed.scheme}://{parsed.netloc}"), "/" + parsed.path.lstrip("/")

    def op_url_stat(self, url):
        fs, path = self.remote(url)
        status, info = fs.stat(path)
        check(status)
        if info.flags & StatInfoFlags.IS_DIR:
            raise Refused(409, "the URL names a folder: fetch its files one by one")
        return {"size": info.size}

    def op_url_read(self, url, offset, length):
        self.remote(url)
        return self.read_url(url, offset, length)

    def op_read(self, root, parts, offset, length):
        _, _, url = self.locate(root, parts)
        return self.read_url(url, offset, length)

    @staticmethod
    def read_url(url, offset, length):
        f = client.File()
        check(f.open(url, OpenFlags.READ)[0])
        try:
            status, data = f.read(int(offset), min(int(length), MAX_READ))
            check(status)
        finally:
            f.close()
        return {"length": len(data)}, None, data

    def opened(self, root, parts) -> tuple[CountingFile, client.File]:
        info = self.op_open(root, parts)
        if info["type"] != "file":
            raise Refused(409, "is a folder")
        _, _, url = self.locate(root, parts)
        f = client.File()
        check(f.open(url, OpenFlags.READ)[0])

        def read_at(offset, n):
            status, data = f.read(offset, n)
            check(status)
            return data

        return CountingFile(read_at, info["size"]), f

    def op_checksum(self, root, parts, algorithm):
        """adler32 as the server keeps it (its checksum query); sha256, or adler32 from a
        server that has none, read through once. Remembered by this worker for the file's size
        and time."""
        info = self.stat(root, parts)
        if info["type"] != "file":
            raise Refused(409, "is a folder")
        fs, path, url = self.locate(root, parts)
        size = info["size"]
        key = (url, size, info["mtime"], algorithm)
        value = self.remembered.get(key)
        cached = value is not None
        if not cached and algorithm == "adler32":
            status, answer = fs.query(QueryCode.CHECKSUM, path)
            words = (answer or b"").decode(errors="replace").strip("\x00 \n").split()
            if status.ok and len(words) == 2 and words[0].lower() == "adler32":
                value = words[1].lower().rjust(8, "0")
        if value is None:
            fileobj, f = self.opened(root, parts)
            try:
                value = checksums.compute(fileobj.read_at, size, algorithm)
            finally:
                f.close()
        self.remembered.put(key, value)
        return {"algorithm": algorithm, "value": value, "size": size, "cached": cached}

    def op_root_keys(self, root, parts):
        fileobj, f = self.opened(root, parts)
        try:
            previews.preload("uproot")
            return previews.bounded(previews.root_keys, fileobj)
        finally:
            f.close()

    def op_fits(self, root, parts):
        fileobj, f = self.opened(root, parts)
        try:
            previews.preload("numpy", "astropy.io.fits")
            answer, image = previews.bounded(previews.fits_preview, fileobj)
        finally:
            f.close()
        return answer, None, image

    def partial(self, root, parts, upload_id):
        if not parts:
            raise Refused(400, "upload to a file path inside a storage area")
        return parts[:-1] + [f"{PARTIAL_PREFIX}{upload_id}"]

    def op_partial(self, root, parts, upload_id):
        partial = self.partial(root, parts, upload_id)
        if self.stat(root, parts[:-1])["type"] != "dir":  # XRootD would make missing folders
            raise Refused(404, "a part of the path is not a folder")
        _, _, url = self.locate(root, partial)
        f = self.uploads.get(upload_id)
        if f is None:
            f = client.File()
            status, _ = f.open(url, OpenFlags.UPDATE)
            if not status.ok:  # a File that failed to open cannot be opened again: a new one
                f = client.File()
                check(f.open(url, OpenFlags.NEW)[0])
            self.uploads[upload_id] = f
        status, info = f.stat(force=True)
        check(status)
        return {"size": info.size}

    def op_write(self, root, parts, upload_id, offset, _payload=b""):
        f = self.uploads.get(upload_id)
        if f is None:
            self.op_partial(root, parts, upload_id)
            f = self.uploads[upload_id]
        check(f.write(_payload or b"", int(offset))[0])
        return {}

    def op_sync(self, root, parts, upload_id):
        f = self.uploads.pop(upload_id, None)
        if f is not None:
            try:
                check(f.sync()[0])
            finally:
                f.close()
        return {}

    def op_commit(self, root, parts, upload_id, overwrite=False, mode=0o644):
        self.op_sync(root, parts, upload_id)
        fs, target, _ = self.locate(root, parts)
        _, partial, _ = self.locate(root, self.partial(root, parts, upload_id))
        if self.exists(root, parts):
            if not overwrite:
                raise Refused(409, "already exists")
            check(fs.rm(target)[0])
        check(fs.mv(partial, target)[0])
        return self.stat(root, parts)

    def op_abort(self, root, parts, upload_id):
        f = self.uploads.pop(upload_id, None)
        if f is not None:
            f.close()
        fs, partial, _ = self.locate(root, self.partial(root, parts, upload_id))
        fs.rm(partial)
        return {}

    def op_mkdir(self, root, parts, parents=False):
        fs, path, _ = self.locate(root, parts)
        if not parents and self.exists(root, parts):
            raise Refused(409, "already exists")
        check(fs.mkdir(path, MkDirFlags.MAKEPATH if parents else MkDirFlags.NONE)[0])
        return self.stat(root, parts)

    def op_rename(self, root, parts, to_root, to_parts, overwrite=False):
        if root != to_root:
            raise Refused(409, "cannot move across storage areas; copy instead")
        if to_parts[: len(parts)] == parts:
            raise Refused(400, "cannot move a folder into itself")
        fs, src, _ = self.locate(root, parts)
        _, dst, _ = self.locate(to_root, to_parts)
        if self.exists(to_root, to_parts):
            if not overwrite:
                raise Refused(409, f"{'/'.join([to_root, *to_parts])} already exists")
            self.op_delete(to_root, to_parts)
        check(fs.mv(src, dst)[0])
        return self.stat(to_root, to_parts)

    def op_copy(self, root, parts, to_root, to_parts, overwrite=False):
        if root == to_root and to_parts[: len(parts)] == parts:
            raise Refused(400, "cannot copy a folder into itself")
        if self.exists(to_root, to_parts) and not overwrite:
            raise Refused(409, f"{'/'.join([to_root, *to_parts])} already exists")
        self.copy_tree(root, parts, to_root, to_parts)
        return self.stat(to_root, to_parts)

    def copy_tree(self, root, parts, to_root, to_parts):
        info = self.stat(root, parts)
        if info["type"] == "dir":
            fs, path, _ = self.locate(to_root, to_parts)
            check(fs.mkdir(path, MkDirFlags.MAKEPATH)[0])
            for e in self.entries(root, parts):
                self.copy_tree(root, parts + [e["name"]], to_root, to_parts + [e["name"]])
            return
        _, _, src_url = self.locate(root, parts)
        _, _, dst_url = self.locate(to_root, to_parts)
        src, dst = client.File(), client.File()
        check(src.open(src_url, OpenFlags.READ)[0])
        try:
            check(dst.open(dst_url, OpenFlags.DELETE)[0])
            try:
                offset = 0
                while True:
                    status, data = src.read(offset, MAX_READ)
                    check(status)
                    if not data:
                        break
                    check(dst.write(data, offset)[0])
                    offset += len(data)
            finally:
                dst.close()
        finally:
            src.close()

    def op_delete(self, root, parts):
        if not parts:
            raise Refused(400, "a storage area itself cannot be deleted")
        fs, path, _ = self.locate(root, parts)
        if self.stat(root, parts)["type"] == "dir":
            for e in self.entries(root, parts):
                self.op_delete(root, parts + [e["name"]])
            check(fs.rmdir(path)[0])
        else:
            check(fs.rm(path)[0])
        return {}

    def op_chmod(self, root, parts, mode):
        if not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise Refused(400, "mode: expected permission bits 0-0777")
        bits = [
            (0o400, AccessMode.UR),
            (0o200, AccessMode.UW),
            (0o100, AccessMode.UX),
            (0o040, AccessMode.GR),
        ]
        bits += [
            (0o020, AccessMode.GW),
            (0o010, AccessMode.GX),
            (0o004, AccessMode.OR),
            (0o002, AccessMode.OW),
        ]
        bits += [(0o001, AccessMode.OX)]
        flags = AccessMode.NONE
        for bit, flag in bits:
            if mode & bit:
                flags |= flag
        fs, path, _ = self.locate(root, parts)
        check(fs.chmod(path, flags)[0])
        return self.stat(root, parts)

    def op_walk(self, root, parts, max_entries=100_000):
        files = []

        def visit(prefix):
            for e in self.entries(root, parts + prefix):
                if len(files) >= max_entries:
                    raise Refused(413, f"more than {max_entries} files: download a smaller folder")
                if e["type"] == "dir":
                    visit(prefix + [e["name"]])
                else:
                    files.append({"path": prefix + [e["name"]], "size": e["size"], "mtime": e["mtime"]})

        visit([])
        return {"files": files}


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(sock, XRootDWorker(json.loads(sys.argv[2])).handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
