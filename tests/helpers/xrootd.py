"""A real XRootD server (Debian xrootd-server) on a loopback port, run as a non-root user,
accepting only Kerberos (krb5) logins of the test realm; each user may touch only
/users/<name>/ (an authorization file, as EOS-like storage decides for itself)."""

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from .net import free_port, wait_for
from .users import ensure_user

SERVER_USER = "inkt_xrootd"
CONFIG = """all.export /
oss.localroot {data}
all.adminpath {run}
all.pidpath {run}
xrootd.seclib libXrdSec.so
sec.protocol krb5 {keytab} xrootd/localhost@{realm}
sec.protbind * only krb5
ofs.authorize
acc.authdb {root}/authdb
acc.audit deny grant
xrootd.chksum adler32
"""


class XRootD:
    def __init__(self, root: Path, kdc, users):
        self.root = root
        self.kdc = kdc
        self.users = users
        self.port = free_port()
        self.data = root / "data"
        self.run = root / "run"
        self.proc = None

    def url(self, path: str) -> str:
        return f"root://localhost:{self.port}/{path}"

    def start(self):
        ensure_user(SERVER_USER)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for user in self.users:
            (self.data / "users" / user).mkdir(parents=True, exist_ok=True)
        self.run.mkdir(exist_ok=True)
        keytab = self.run / "xrootd.keytab"
        self.kdc.kadmin("addprinc -randkey xrootd/localhost", f"ktadd -k {keytab} xrootd/localhost")
        (self.root / "authdb").write_text("u = /users/@=/ a\n")
        config = self.root / "xrootd.cfg"
        config.write_text(
            CONFIG.format(data=self.data, run=self.run, keytab=keytab, realm="INK.TEST", root=self.root)
        )
        shutil.chown(self.root / "authdb", SERVER_USER)
        subprocess.run(["chown", "-R", SERVER_USER, str(self.data), str(self.run)], check=True)
        env = {**self.kdc.env, "KRB5_KTNAME": f"FILE:{keytab}"}
        self.proc = subprocess.Popen(
            [
                "runuser",
                "-u",
                SERVER_USER,
                "--",
                "xrootd",
                "-p",
                str(self.port),
                "-c",
                str(config),
                "-l",
                str(self.run / "xrootd.log"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._listening, 30, what="xrootd")
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError(self.log())
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        try:
            return (self.run / "xrootd.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
