"""A real PostgreSQL server (Debian's postgresql) on a loopback port, in a folder of its own,
run as Debian's ``postgres`` account: INK's production database, for the hub's tables and INK's
own. Logins over TCP with a password (scram-sha-256), as a site's hub would connect."""

import glob
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from .net import free_port, wait_for

ROLE = "ink"


def server_bin() -> Path | None:
    """The newest installed server's programs (initdb, postgres, psql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgreSQL:
    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.sockets = root / "run"
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self.bin = server_bin()
        self.proc = None
        self.databases = 0

    def _as_postgres(self, *argv, **kwargs):
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, text=True, **kwargs
        )

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.sockets, "postgres", "postgres")
        self._as_postgres(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        self.proc = subprocess.Popen(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",  # a test server: its data may be lost with the machine
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "postgres.log", "wb"),
            start_new_session=True,
        )
        wait_for(self._ready, 60, what="postgres")
        self.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError((self.root / "postgres.log").read_text(errors="replace")[-3000:])
        return (
            subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            ).returncode
            == 0
        )

    def sql(self, statement: str, database: str = "postgres") -> str:
        """A statement as the server's superuser (over its Unix socket)."""
        return self._as_postgres(
            str(self.bin / "psql"),
            "-h",
            str(self.sockets),
            "-p",
            str(self.port),
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            statement,
        ).stdout

    def new_database(self) -> str:
        """A fresh database owned by INK's role: its URL."""
        self.databases += 1
        name = f"ink_test_{self.databases}"
        self.sql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{name}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # runuser passes it on: a "smart" shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
