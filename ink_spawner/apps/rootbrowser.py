"""INK's ROOT browser: runs inside the user's job (as the user), behind jupyter-server-proxy.

  GET ./                  the page: the user's ROOT files, their keys, JSROOT drawings
  GET ./api/files         ROOT files under the browsed folder (name, size), a bounded walk
  GET ./api/keys/PATH     the key tree of one file (uproot, reading only what it needs)
  GET ./file/PATH         the file's bytes, with single and multiple HTTP ranges (JSROOT)
  GET ./jsroot/...        JSROOT (npm) from INK's prefix

Paths are relative to the browsed folder (the home by default): '..', absolute paths and
symlinks leading out are refused; everything else is the kernel's call, since this process is
the user. The hub's authentication reaches here through the single-user server's proxy only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import sys
from pathlib import Path

from tornado import ioloop, web

from ink_core import STATIC, pagelook
from ink_core.errors import Refused
from ink_core.previews import CountingFile, root_keys
from ink_core.ranges import send_ranges
from ink_spawner.apps import serve_on_unix_socket

PAGE = Path(__file__).with_name("rootbrowser.html")
MAX_FILES = 2000
MAX_DEPTH = 6


class Base(web.RequestHandler):
    @property
    def root(self) -> Path:
        return self.settings["root"]

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.finish({"status": status_code, "message": message})

    def resolve(self, rel: str) -> Path:
        """A file under the root, never outside it (no '..', no symlink out)."""
        parts = [p for p in rel.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts) or "\x00" in rel:
            raise web.HTTPError(400, "path: a file below the browsed folder, without '..'")
        path = self.root.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            raise web.HTTPError(404, "no such file") from None
        except PermissionError:
            raise web.HTTPError(403, "permission denied") from None
        if not real.is_relative_to(self.root.resolve()):
            raise web.HTTPError(403, "that file is outside the folder this browser shows")
        return real

    def open(self, rel: str) -> tuple[int, os.stat_result]:
        path = self.resolve(rel)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except PermissionError:
            raise web.HTTPError(403, "permission denied") from None
        except OSError as e:
            raise web.HTTPError(404, f"cannot open the file: {e.strerror}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise web.HTTPError(400, "not a regular file")
        return fd, st


class PageHandler(Base):
    def get(self):
        self.set_header("Content-Type", "text/html; charset=utf-8")
        hub, user = pagelook.in_job()  # the hub's look, on the user's own origin
        page = PAGE.read_text().replace("<!-- ink:look -->", pagelook.hub_look(hub))
        self.finish(page.replace("<!-- ink:bar -->", pagelook.nav_bar(hub, user)))


class FilesHandler(Base):
    def get(self):
        found, root = [], self.root.resolve()
        for folder, dirs, files in os.walk(root, onerror=lambda e: None):
            depth = len(Path(folder).relative_to(root).parts)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and depth < MAX_DEPTH)
            for name in sorted(files):
                if name.endswith(".root") and len(found) < MAX_FILES:
                    path = Path(folder) / name
                    try:
                        if not path.resolve().is_relative_to(root):
                            continue  # a link out of the folder: not shown (and refused if asked)
                        size = path.stat().st_size
                    except OSError:
                        continue
                    found.append({"path": str(path.relative_to(root)), "size": size})
        self.finish({"root": str(root), "files": found, "truncated": len(found) >= MAX_FILES})


class KeysHandler(Base):
    async def get(self, rel):
        fd, st = self.open(rel)
        try:
            fileobj = CountingFile(lambda offset, n: os.pread(fd, n, offset), st.st_size)
            answer = await asyncio.to_thread(root_keys, fileobj)
        except Refused as e:
            raise web.HTTPError(e.status, str(e)) from None
        finally:
            os.close(fd)
        self.finish({"path": rel, **answer})


class FileHandler(Base):
    async def get(self, rel):
        fd, st = self.open(rel)
        try:
            self.set_header("Content-Type", "application/octet-stream")
            await send_ranges(self, st.st_size, lambda offset, n: asyncio.to_thread(os.pread, fd, n, offset))
        finally:
            os.close(fd)


def make_app(root: Path) -> web.Application:
    jsroot = os.path.join(sys.prefix, "node_modules", "jsroot")
    return web.Application(
        [
            (r"/", PageHandler),
            (r"/api/files", FilesHandler),
            (r"/api/keys/(.+)", KeysHandler),
            (r"/file/(.+)", FileHandler),
            (r"/jsroot/(.*)", web.StaticFileHandler, {"path": jsroot}),
            (r"/ink/(.*)", web.StaticFileHandler, {"path": str(STATIC)}),
        ],
        root=root.resolve(),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-rootbrowser")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix-socket", help="listen here (mode 600): only this user can connect")
    where.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT (reachable by every local user)")
    parser.add_argument("--root", default=os.path.expanduser("~"), help="the folder to browse")
    args = parser.parse_args(argv)
    app = make_app(Path(args.root))
    print(json.dumps({"rootbrowser": args.root, "at": args.unix_socket or args.port}), flush=True)
    if args.unix_socket:
        serve_on_unix_socket(app, args.unix_socket)
    else:
        app.listen(args.port, "127.0.0.1")
        ioloop.IOLoop.current().start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
