"""The user's storage areas behind one interface, each area (a path prefix) of a kind the
site YAML names: posix or xrootd, each served by its adapter (``kinds.py``) and a worker process
per user and kind, which checks nothing itself but asks as the user (the kernel or the XRootD
server decides).

The service sees the same operations for both: ``request(user, op, root=AREA, parts=[...])``,
``reader(...)`` for downloads and previews, ``writer(...)`` for uploads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import pwd
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ink_core.areas import parse_areas
from ink_core.errors import Refused
from ink_core.names import USERNAME
from ink_spawner.accounts import SystemAccountRefused, user_account

from .kinds import ADAPTERS
from .protocol import recv_frame, send_frame

log = logging.getLogger("ink.files")
WRITE_CHUNK = 1024 * 1024
# how long one operation may take before its worker counts as hung (it is then replaced)
DEFAULT_OP_SECONDS = 60
OP_SECONDS = {"copy": 3600, "move": 3600, "delete": 3600, "walk": 600, "root_keys": 120, "fits": 120}
OP_SECONDS["checksum"] = 3600  # one pass over a file of any size
# each user's own threads: one user's slow operations queue behind each other, never in front
# of another user's; this many may wait before he is told to let some finish
LANE_THREADS = 2
MAX_PENDING = 16
IDLE_SECONDS = 600  # a user's workers and threads end after this long without a request


StorageError = Refused  # the one error with an HTTP status and a sentence (ink_core.errors)


def worker_env(user: pwd.struct_passwd, extra: dict | None = None) -> dict:
    """A clean environment (never the service's: it holds the service's hub token)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": user.pw_dir, **(extra or {})}
    # a development checkout; the site's krb5.conf; the previews' limits (files.preview_*)
    for name in ("PYTHONPATH", "KRB5_CONFIG", "INK_PREVIEW_MEMORY_MB", "INK_PREVIEW_SECONDS"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class Lane:
    """One user's threads in the service."""

    def __init__(self, username: str):
        self.executor = ThreadPoolExecutor(LANE_THREADS, thread_name_prefix=f"files-{username}")
        self.pending, self.last_used, self.closed = 0, time.monotonic(), False

    def close(self):
        self.closed = True
        self.executor.shutdown(wait=False)


class WorkerProcess:
    """One worker process for one user and one kind of storage; requests go one at a time."""

    def __init__(self, user: pwd.struct_passwd, module: str, roots: dict[str, str], env: dict):
        self.username = user.pw_name
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        as_user = {}
        if os.geteuid() == 0:
            groups = os.getgrouplist(user.pw_name, user.pw_gid)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": groups}
        elif user.pw_uid != os.geteuid():
            raise StorageError(403, "this INK runs without root: it serves files only to its own account")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), json.dumps(roots)],
            pass_fds=[theirs.fileno()],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            **as_user,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()

    def call(self, request: dict, payload: bytes | None = None) -> tuple[dict, int | None]:
        seconds = OP_SECONDS.get(request.get("op"), DEFAULT_OP_SECONDS)
        with self.lock:
            self.sock.settimeout(seconds)
            try:
                send_frame(self.sock, request, payload=payload)
                answer, fd = recv_frame(self.sock)
            except TimeoutError:
                # a hung storage (a dead NFS server, a stuck XRootD call): this worker is lost
                log.error(
                    "file worker of %s: %s took longer than %s s", self.username, request.get("op"), seconds
                )
                self.close()
                raise StorageError(504, f"the storage did not answer in {seconds} s; try again") from None
            except (OSError, EOFError) as e:
                log.error("file worker of %s failed: %s", self.username, e)
                self.close()
                raise StorageError(503, "the file worker stopped; try again") from None
        if not answer.pop("ok"):
            raise StorageError(answer.get("status", 500), answer.get("error", "storage error"))
        return answer, fd

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self):
        try:
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()


class FdReader:
    """A POSIX file opened by the user's worker: reads straight from the descriptor (on the
    user's own threads: a slow disk of his delays only him)."""

    def __init__(self, info: dict, fd: int, run):
        self.size, self.mtime, self.fd = info["size"], info["mtime"], fd
        self.run = run  # the user's lane (Storage.run for him)

    async def read(self, offset: int, n: int) -> bytes:
        return await self.run(os.pread, self.fd, n, offset)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class FdWriter:
    def __init__(self, info: dict, fd: int):
        self.size, self.fd = info["size"], fd

    async def write(self, offset: int, data: bytes) -> None:
        os.pwrite(self.fd, data, offset)  # page-cache writes: cheaper inline than a thread hop

    async def sync(self) -> None:
        await asyncio.to_thread(os.fsync, self.fd)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class WorkerReader:
    """A file the worker reads for us (XRootD): data comes back in frames."""

    def __init__(self, storage: Storage, username: str, info: dict, request: dict):
        self.storage, self.username, self.request = storage, username, request
        self.size, self.mtime = info["size"], info["mtime"]

    async def read(self, offset: int, n: int) -> bytes:
        answer, _ = await self.storage.call(self.username, "read", **self.request, offset=offset, length=n)
        return answer.get("_payload") or b""

    def close(self):
        pass


class WorkerWriter:
    """Writes through the worker (XRootD), gathered into WRITE_CHUNK-sized frames: big enough
    to be cheap, small enough that a dropped connection loses little to resend."""

    def __init__(self, storage: Storage, username: str, info: dict, request: dict):
        self.storage, self.username, self.request = storage, username, request
        self.size = info["size"]
        self.buffer, self.buffer_offset = bytearray(), 0

    async def write(self, offset: int, data: bytes) -> None:
        if self.buffer and self.buffer_offset + len(self.buffer) != offset:
            await self.flush()
        if not self.buffer:
            self.buffer_offset = offset
        self.buffer += data
        if len(self.buffer) >= WRITE_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            await self.storage.call(
                self.username, "write", **self.request, offset=self.buffer_offset, payload=data
            )

    async def sync(self) -> None:
        await self.flush()
        await self.storage.call(self.username, "sync", **self.request)

    def close(self):
        pass


class Storage:
    """The areas of a site; one worker per (user, kind of storage), started on first use."""

    def __init__(self, areas: dict, ticket_for=None):
        self.areas = parse_areas(areas)
        self.ticket_for = ticket_for  # user -> path of a ticket copy the user owns (xrootd)
        self.adapters = {kind: ADAPTERS[kind](ticket_for) for kind in {a.kind for a in self.areas.values()}}
        self.workers: dict[tuple[str, str], WorkerProcess] = {}
        self.lanes: dict[str, Lane] = {}
        self.lock = threading.Lock()

    def user(self, username: str) -> pwd.struct_passwd:
        if not USERNAME.match(username or ""):
            raise StorageError(403, "not a valid user name")
        try:
            return user_account(username, "open files")
        except KeyError:
            raise StorageError(403, f"there is no account {username!r} on this machine") from None
        except SystemAccountRefused as e:
            raise StorageError(403, str(e)) from None

    def areas_of(self, username: str) -> list[str]:
        user = self.user(username)
        return sorted(
            name for name, area in self.areas.items() if self.adapters[area.kind].present(area.location(user))
        )

    def url_of(self, username: str, root: str, parts: list[str]) -> str:
        """Where a file is for ROOT or a job: its root:// URL in an XRootD area, its path on
        the cluster's file system in a POSIX area."""
        location = self.areas[root].location(self.user(username)).rstrip("/")
        return "/".join([location, *parts]) if parts else location

    def on_cluster_filesystem(self, root: str) -> bool:
        """Whether a job can open the area's files by their paths."""
        return self.adapters[self.kind_of(root)].on_cluster_filesystem

    def kind_of(self, root: str) -> str:
        area = self.areas.get(root)
        if area is None:
            raise StorageError(404, f"no storage area named {root!r}")
        return area.kind

    def worker(self, username: str, kind: str) -> WorkerProcess:
        with self.lock:
            worker = self.workers.get((username, kind))
            if worker is not None and worker.alive:
                return worker
            user, adapter = self.user(username), self.adapters[kind]
            roots = {n: a.location(user) for n, a in self.areas.items() if a.kind == kind}
            roots = {n: location for n, location in roots.items() if adapter.present(location)}
            env = worker_env(user, adapter.worker_env(user))
            worker = WorkerProcess(user, adapter.worker_module, roots, env)
            self.workers[(username, kind)] = worker
            return worker

    async def call(self, username: str, op: str, **request) -> tuple[dict, int | None]:
        kind = self.kind_of(request.get("root", ""))
        if "to_root" in request and self.kind_of(request["to_root"]) != kind:
            raise StorageError(409, "cannot move or copy between different kinds of storage here")
        return await self.call_kind(username, kind, op, **request)

    async def call_kind(self, username: str, kind: str, op: str, **request) -> tuple[dict, int | None]:
        """An operation of the user's worker of one kind of storage (a pull's root:// reads)."""
        if kind not in self.adapters:
            raise StorageError(400, f"this site has no {kind} storage")
        payload = request.pop("payload", None)

        def run():
            self.adapters[kind].before_call(self.user(username))
            return self.worker(username, kind).call({"op": op, **request}, payload)

        return await self.run(username, run)

    async def run(self, username: str, func, *args):
        """``func(*args)`` on the user's own threads; 429 when too many of his already wait."""
        lane = self.lanes.get(username)
        if lane is None or lane.closed:
            lane = self.lanes[username] = Lane(username)
        if lane.pending >= MAX_PENDING:
            raise StorageError(
                429, f"you have {MAX_PENDING} file operations under way: let some finish first"
            )
        lane.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(lane.executor, func, *args)
        finally:
            lane.pending -= 1
            lane.last_used = time.monotonic()

    def reap_idle(self, idle_seconds: float = IDLE_SECONDS) -> list[str]:
        """End the workers and threads of users idle this long; whose were ended."""
        now = time.monotonic()
        idle = [
            n for n, lane in self.lanes.items() if not lane.pending and now - lane.last_used >= idle_seconds
        ]
        for name in idle:
            self.lanes.pop(name).close()
            with self.lock:
                for key in [k for k in self.workers if k[0] == name]:
                    self.workers.pop(key).close()
        if idle:
            log.info("ended the idle file workers of %d users", len(idle))
        return idle

    async def request(self, username: str, op: str, **request) -> dict:
        answer, fd = await self.call(username, op, **request)
        if fd is not None:
            os.close(fd)
        return answer

    async def reader(self, username: str, root: str, parts: list[str]):
        """A reader of the file, or None when the path is a folder."""
        info, fd = await self.call(username, "open", root=root, parts=parts)
        if info.get("type") == "dir":
            return None
        if fd is not None:
            return FdReader(info, fd, functools.partial(self.run, username))
        return WorkerReader(self, username, info, {"root": root, "parts": parts})

    async def writer(self, username: str, root: str, parts: list[str], upload_id: str):
        request = {"root": root, "parts": parts, "upload_id": upload_id}
        info, fd = await self.call(username, "partial", **request)
        if fd is not None:
            return FdWriter(info, fd)
        return WorkerWriter(self, username, info, request)

    def close(self):
        for worker in self.workers.values():
            worker.close()
        for lane in self.lanes.values():
            lane.close()
