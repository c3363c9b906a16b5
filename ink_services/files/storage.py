"""The POSIX storage adapter: one worker process per user, running with that user's uid and
groups (see worker.py), started on first use and reused; the service talks to it over a Unix
socket and receives open file descriptors from it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import socket
import subprocess
import sys
import threading

from ink_spawner.jobspec import USERNAME

from . import paths
from .worker import recv_frame, send_frame

log = logging.getLogger("ink.files")


class StorageError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class UserWorker:
    """One worker process for one user; requests go one at a time."""

    def __init__(self, username: str, roots: dict[str, str]):
        user = pwd.getpwnam(username)
        self.username = username
        self.roots = roots
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        as_user = {}
        if os.geteuid() == 0:
            groups = os.getgrouplist(username, user.pw_gid)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": groups}
        elif user.pw_uid != os.geteuid():
            raise StorageError(403, "this INK runs without root: it serves files only to its own account")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ink_services.files.worker", str(theirs.fileno()), json.dumps(roots)],
            pass_fds=[theirs.fileno()],
            env=worker_env(user),
            cwd="/",
            stdin=subprocess.DEVNULL,
            **as_user,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()

    def call(self, request: dict) -> tuple[dict, int | None]:
        with self.lock:
            try:
                send_frame(self.sock, request)
                answer, fd = recv_frame(self.sock)
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


def worker_env(user: pwd.struct_passwd) -> dict:
    """A clean environment (never the service's: it holds the service's hub token)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": user.pw_dir}
    if "PYTHONPATH" in os.environ:  # a development checkout run in place
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


class PosixStorage:
    """Users' storage areas (name -> folder template with {username} and {home})."""

    def __init__(self, areas: dict[str, str]):
        for name in areas:
            if not paths.ROOT_NAME.match(name):
                raise ValueError(f"files.areas: not an area name: {name!r}")
        self.areas = areas
        self.workers: dict[str, UserWorker] = {}
        self.lock = threading.Lock()

    def roots_of(self, username: str) -> dict[str, str]:
        user = pwd.getpwnam(username)
        roots = {}
        for name, template in self.areas.items():
            folder = template.format(username=username, home=user.pw_dir)
            if os.path.isdir(folder):
                roots[name] = folder
        return roots

    def worker(self, username: str) -> UserWorker:
        if not USERNAME.match(username or ""):
            raise StorageError(403, "not a valid user name")
        with self.lock:
            worker = self.workers.get(username)
            if worker is None or not worker.alive:
                try:
                    worker = UserWorker(username, self.roots_of(username))
                except KeyError:
                    raise StorageError(403, f"there is no account {username!r} on this machine") from None
                self.workers[username] = worker
            return worker

    async def call(self, username: str, op: str, **request) -> tuple[dict, int | None]:
        worker = await asyncio.to_thread(self.worker, username)
        return await asyncio.to_thread(worker.call, {"op": op, **request})

    async def request(self, username: str, op: str, **request) -> dict:
        answer, fd = await self.call(username, op, **request)
        if fd is not None:
            os.close(fd)
        return answer

    def areas_of(self, username: str) -> list[str]:
        return sorted(self.roots_of(username))

    def close(self):
        for worker in self.workers.values():
            worker.close()
