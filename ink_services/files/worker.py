"""The per-user POSIX file worker: runs with the user's uid and groups, so the kernel decides what the
user may read and write. The file service (which may be root) never opens a user's file itself:
it asks this worker, which opens it and hands the open file descriptor back over a Unix socket.

Every path is walked one component at a time from the storage root with O_NOFOLLOW: a symlink
anywhere in a path is refused (listed, never followed), and one swapped in during an operation
cannot redirect it, because each step opens relative to the folder already open.

It speaks protocol.py's frames, one request at a time.
"""

from __future__ import annotations

import errno
import functools
import grp
import json
import os
import pwd
import shutil
import socket
import stat
import sys

from ink_core import checksums, previews
from ink_core.previews import CountingFile
from ink_spawner.accounts import login_umask

from .protocol import PARTIAL_PREFIX, Operations, Refused, serve
from .scans import Scans

TYPES = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link"}
# WebDAV's custom ("dead") properties of a file or folder: user extended attributes, which move
# with the file and are copied with it
PROP_PREFIX = "user.ink.dav."
MAX_PROP_BYTES = 4000


@functools.lru_cache(maxsize=8192)
def account_name(lookup, number: int) -> str:
    """A file's owner or group as ls -l names it (the number when it is unknown here)."""
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


class Worker(Operations):
    def __init__(self, roots: dict[str, str]):
        self.roots = roots
        self.remembered = checksums.Remembered()
        self.scans = Scans()

    # -- walking ------------------------------------------------------------------------------
    def root_fd(self, root: str) -> int:
        if root not in self.roots:
            raise Refused(404, f"no storage area named {root!r}")
        return os.open(self.roots[root], os.O_RDONLY | os.O_DIRECTORY)

    def walk(self, root: str, parts: list[str]) -> int:
        """An fd of the folder root/parts..., never through a symlink."""
        fd = self.root_fd(root)
        try:
            for part in parts:
                fd = descend(fd, part)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def parent(self, root: str, parts: list[str]) -> tuple[int, str]:
        if not parts:
            raise Refused(400, "this operation needs a path inside a storage area")
        return self.walk(root, parts[:-1]), parts[-1]

    # -- operations ---------------------------------------------------------------------------
    @staticmethod
    def entry(name: str, st: os.stat_result) -> dict:
        return {
            "name": name,
            "type": TYPES.get(stat.S_IFMT(st.st_mode), "other"),
            "size": st.st_size,
            "mtime": st.st_mtime,
            "mode": stat.S_IMODE(st.st_mode),
            "owner": account_name(pwd.getpwuid, st.st_uid),
            "group": account_name(grp.getgrgid, st.st_gid),
        }

    def op_stat(self, root, parts):
        if not parts:
            fd = self.root_fd(root)
            try:
                return self.entry(root, os.fstat(fd))
            finally:
                os.close(fd)
        fd, name = self.parent(root, parts)
        try:
            return self.entry(name, os.stat(name, dir_fd=fd, follow_symlinks=False))
        finally:
            os.close(fd)

    def op_list(self, root, parts, sort="name", reverse=False, offset=0, limit=200, hidden=False):
        fd = self.walk(root, parts)
        try:
            with os.scandir(fd) as it:
                names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            if not hidden:
                names = [(n, d) for n, d in names if not n.startswith(".")]
            if sort == "name":  # folders first, then by name: no stat needed before the page
                names.sort(key=lambda nd: (not nd[1], nd[0].lower(), nd[0]), reverse=reverse)
                page = names[offset : offset + limit]
                entries = [self.entry(n, os.stat(n, dir_fd=fd, follow_symlinks=False)) for n, _ in page]
            else:
                stats = []
                for n, _ in names:
                    try:
                        stats.append(self.entry(n, os.stat(n, dir_fd=fd, follow_symlinks=False)))
                    except FileNotFoundError:
                        continue
                key = {"size": lambda e: e["size"], "mtime": lambda e: e["mtime"]}[sort]
                stats.sort(key=key, reverse=reverse)
                entries = stats[offset : offset + limit]
            return {"total": len(names), "entries": entries}
        finally:
            os.close(fd)

    def op_scan(self, root, parts, cursor="", limit=1000, props=False):
        """A folder's entries page by page, dotfiles included, in the file system's order (no
        sort: a folder of any size costs one pass); ``props``: each entry's custom properties."""

        def start():
            fd = self.walk(root, parts)

            def entries():
                try:
                    with os.scandir(fd) as it:
                        for e in it:
                            try:
                                entry = self.entry(e.name, e.stat(follow_symlinks=False))
                                if props:
                                    entry["props"] = read_props(fd, e.name)
                            except FileNotFoundError:
                                continue
                            yield entry
                finally:
                    os.close(fd)

            return entries()

        return self.scans.page(start, cursor, limit)

    def node(self, root, parts) -> str:
        """A /proc path of the entry itself, opened without following a symlink (O_PATH), for
        the calls that take no dir_fd; the caller closes the descriptor named in it."""
        if not parts:
            return f"/proc/self/fd/{self.root_fd(root)}"
        fd, name = self.parent(root, parts)
        try:
            return f"/proc/self/fd/{os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)}"
        finally:
            os.close(fd)

    def op_props(self, root, parts):
        """The custom properties of a file or folder: {key: value}."""
        fd, name = (self.root_fd(root), ".") if not parts else self.parent(root, parts)
        try:
            return {"props": read_props(fd, name)}
        finally:
            os.close(fd)

    def op_setprops(self, root, parts, set=None, remove=()):
        """Set and remove custom properties (keys as op_props gives them), all or none."""
        path = self.node(root, parts)
        fd = int(path.rsplit("/", 1)[1])
        try:
            before = read_props_at(path)
            try:
                for key, value in (set or {}).items():
                    check_prop_key(key)
                    data = value.encode()
                    if len(data) > MAX_PROP_BYTES:
                        raise Refused(507, f"a property may hold at most {MAX_PROP_BYTES} bytes")
                    os.setxattr(path, PROP_PREFIX + key, data)
                for key in remove:
                    check_prop_key(key)
                    try:
                        os.removexattr(path, PROP_PREFIX + key)
                    except OSError as e:
                        if e.errno != errno.ENODATA:
                            raise
            except BaseException:
                restore_props(path, before)
                raise
            return {"props": read_props_at(path)}
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EPERM):
                raise Refused(403, "this storage keeps no custom properties here") from None
            if e.errno in (errno.E2BIG, errno.ENOSPC):
                raise Refused(507, "no room for more properties on this entry") from None
            raise
        finally:
            os.close(fd)

    def op_open(self, root, parts):
        """(entry, fd) of a file; the entry alone for a folder."""
        if not parts:
            return self.op_stat(root, parts)
        fd, name = self.parent(root, parts)
        try:
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)
        st = os.fstat(file_fd)
        if stat.S_ISDIR(st.st_mode):
            os.close(file_fd)
            return self.entry(parts[-1], st)  # no descriptor: the caller zips the folder
        if not stat.S_ISREG(st.st_mode):
            os.close(file_fd)
            raise Refused(409, "not a regular file")
        os.set_blocking(file_fd, True)
        return self.entry(parts[-1], st), file_fd

    def opened(self, root, parts) -> tuple[CountingFile, int]:
        opened = self.op_open(root, parts)
        if not isinstance(opened, tuple):
            raise Refused(409, "is a folder")
        info, fd = opened
        return CountingFile(lambda offset, n: os.pread(fd, n, offset), info["size"]), fd

    def op_checksum(self, root, parts, algorithm):
        """adler32 or sha256 of a file, remembered by this worker for the file's version: its
        size, mtime and ctime (which no user can set back)."""
        fileobj, fd = self.opened(root, parts)
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, algorithm)
            value = self.remembered.get(key)
            cached = value is not None
            if not cached:
                value = checksums.compute(fileobj.read_at, st.st_size, algorithm)
                self.remembered.put(key, value)
            return {"algorithm": algorithm, "value": value, "size": st.st_size, "cached": cached}
        finally:
            os.close(fd)

    def op_root_keys(self, root, parts):
        fileobj, fd = self.opened(root, parts)
        try:
            previews.preload("uproot")
            return previews.bounded(previews.root_keys, fileobj)
        finally:
            os.close(fd)

    def op_fits(self, root, parts):
        fileobj, fd = self.opened(root, parts)
        try:
            previews.preload("numpy", "astropy.io.fits")
            answer, image = previews.bounded(previews.fits_preview, fileobj)
        finally:
            os.close(fd)
        return answer, None, image

    def op_partial(self, root, parts, upload_id):
        """Open (or reopen, to resume) the partial file of an upload beside its target."""
        fd, name = self.parent(root, parts)
        try:
            partial = f"{PARTIAL_PREFIX}{upload_id}"
            file_fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        finally:
            os.close(fd)
        return {"size": os.fstat(file_fd).st_size}, file_fd

    def op_commit(self, root, parts, upload_id, overwrite=False, mode=0o666):
        fd, name = self.parent(root, parts)
        try:
            partial = f"{PARTIAL_PREFIX}{upload_id}"
            os.chmod(partial, mode & ~current_umask() & 0o777, dir_fd=fd, follow_symlinks=False)
            if overwrite:
                os.rename(partial, name, src_dir_fd=fd, dst_dir_fd=fd)
            else:  # a hard link fails if the name exists: no check-then-act race
                os.link(partial, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                os.unlink(partial, dir_fd=fd)
            return self.entry(name, os.stat(name, dir_fd=fd, follow_symlinks=False))
        finally:
            os.close(fd)

    def op_abort(self, root, parts, upload_id):
        fd, _ = self.parent(root, parts)
        try:
            os.unlink(f"{PARTIAL_PREFIX}{upload_id}", dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
        return {}

    def op_mkdir(self, root, parts, parents=False):
        if parents:
            fd = self.root_fd(root)
            try:
                for part in parts:
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                    fd = descend(fd, part)
            finally:
                os.close(fd)
            return self.op_stat(root, parts)
        fd, name = self.parent(root, parts)
        try:
            os.mkdir(name, 0o777, dir_fd=fd)
        finally:
            os.close(fd)
        return self.op_stat(root, parts)

    def op_rename(self, root, parts, to_root, to_parts, overwrite=False):
        if root != to_root:
            raise Refused(409, "cannot move across storage areas; copy instead")
        if to_parts[: len(parts)] == parts:
            raise Refused(400, "cannot move a folder into itself")
        src_fd, src = self.parent(root, parts)
        try:
            dst_fd, dst = self.parent(to_root, to_parts)
            try:
                if not overwrite and exists(dst, dst_fd):
                    raise Refused(409, f"{'/'.join([to_root, *to_parts])} already exists")
                os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
        return self.op_stat(to_root, to_parts)

    def op_copy(self, root, parts, to_root, to_parts, overwrite=False):
        if root == to_root and to_parts[: len(parts)] == parts:
            raise Refused(400, "cannot copy a folder into itself")
        src_fd, src = self.parent(root, parts)
        dst_fd, dst = self.parent(to_root, to_parts)
        try:
            if not overwrite and exists(dst, dst_fd):
                raise Refused(409, f"{'/'.join([to_root, *to_parts])} already exists")
            copy_tree(src_fd, src, dst_fd, dst)
        finally:
            os.close(src_fd)
            os.close(dst_fd)
        return self.op_stat(to_root, to_parts)

    def op_delete(self, root, parts):
        fd, name = self.parent(root, parts)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=fd)  # the fd-based, symlink-safe rmtree
            else:
                os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)
        return {}

    def op_chmod(self, root, parts, mode):
        if not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise Refused(400, "mode: expected permission bits 0-0777")
        fd, name = self.parent(root, parts)
        try:
            os.chmod(name, mode, dir_fd=fd, follow_symlinks=False)
        except NotImplementedError:  # Linux has no lchmod: open the name without following
            file_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            try:
                os.chmod(f"/proc/self/fd/{file_fd}", mode)
            finally:
                os.close(file_fd)
        finally:
            os.close(fd)
        return self.op_stat(root, parts)

    def op_walk(self, root, parts, max_entries=100_000):
        """Every regular file under a folder (for zip downloads), relative paths, no symlinks."""
        files = []

        def visit(fd, prefix):
            with os.scandir(fd) as it:
                entries = list(it)
            for e in entries:
                if len(files) >= max_entries:
                    raise Refused(413, f"more than {max_entries} files: download a smaller folder")
                if e.is_dir(follow_symlinks=False):
                    sub = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                    try:
                        visit(sub, prefix + [e.name])
                    finally:
                        os.close(sub)
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    files.append({"path": prefix + [e.name], "size": st.st_size, "mtime": st.st_mtime})

        fd = self.walk(root, parts)
        try:
            visit(fd, [])
        finally:
            os.close(fd)
        return {"files": files}


def read_props(dir_fd: int, name: str) -> dict:
    """The custom properties of ``name`` in the folder ``dir_fd`` ({} for a symlink)."""
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return {}
    try:
        return read_props_at(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def read_props_at(path: str) -> dict:
    try:
        names = [n for n in os.listxattr(path) if n.startswith(PROP_PREFIX)]
        return {n[len(PROP_PREFIX) :]: os.getxattr(path, n).decode() for n in names}
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM, errno.ENODATA):
            return {}
        raise


def restore_props(path: str, props: dict) -> None:
    for key in set(read_props_at(path)) - set(props):
        os.removexattr(path, PROP_PREFIX + key)
    for key, value in props.items():
        os.setxattr(path, PROP_PREFIX + key, value.encode())


def check_prop_key(key) -> None:
    if not isinstance(key, str) or not key.isalnum() or len(key) > 64:
        raise Refused(400, "bad property key")


def copy_props(src_fd: int, dst_fd: int) -> None:
    """A copy keeps the custom properties (where both file systems keep them)."""
    try:
        for name in os.listxattr(src_fd):
            if name.startswith(PROP_PREFIX):
                os.setxattr(dst_fd, name, os.getxattr(src_fd, name))
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise


def list_page(entries: list[dict], sort="name", reverse=False, offset=0, limit=200, hidden=False) -> dict:
    """A page of a listing whose entries are already stat'ed (storage that lists with stats)."""
    if not hidden:
        entries = [e for e in entries if not e["name"].startswith(".")]
    keys = {
        "name": lambda e: (e["type"] != "dir", e["name"].lower(), e["name"]),
        "size": lambda e: e["size"],
        "mtime": lambda e: e["mtime"],
    }
    entries = sorted(entries, key=keys[sort], reverse=reverse)
    return {"total": len(entries), "entries": entries[offset : offset + limit]}


def descend(fd: int, name: str) -> int:
    """The folder ``name`` inside the open folder ``fd`` (which is closed); never a symlink."""
    try:
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    except NotADirectoryError:
        if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            raise Refused(403, "symbolic links are not followed") from None
        raise
    os.close(fd)
    return inner


def exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def copy_tree(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    st = os.stat(src, dir_fd=src_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dst, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=dst_fd)
        inner_src = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
        inner_dst = os.open(dst, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_fd)
        try:
            copy_props(inner_src, inner_dst)
            for name in os.listdir(inner_src):
                copy_tree(inner_src, name, inner_dst, name)
        finally:
            os.close(inner_src)
            os.close(inner_dst)
    elif stat.S_ISREG(st.st_mode):
        s = os.open(src, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_fd)
        try:
            d = os.open(
                dst,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                stat.S_IMODE(st.st_mode),
                dir_fd=dst_fd,
            )
            try:
                copy_props(s, d)
                while os.sendfile(d, s, None, 1 << 30) > 0:
                    pass
            finally:
                os.close(d)
        finally:
            os.close(s)
    # symlinks and special files are not copied (never followed)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    roots = json.loads(sys.argv[2])
    # new files and folders get the permissions the user's own login would give them
    os.umask(login_umask(pwd.getpwuid(os.getuid())))
    serve(sock, Worker(roots).handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
