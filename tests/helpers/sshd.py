"""A real OpenSSH server on a loopback port: a login host for the web shell's ssh mode (Kerberos,
GSSAPI logins of the test realm), or a plain key-login peer for bench/sshnode.py."""

import os
import signal
import subprocess
from pathlib import Path

from .net import free_port, wait_for

SSHD_CONFIG = """
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_ed25519
PidFile {root}/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers {users}
PrintMotd no
Subsystem sftp internal-sftp
"""
GSSAPI = """
PubkeyAuthentication no
GSSAPIAuthentication yes
GSSAPICleanupCredentials yes
GSSAPIStrictAcceptorCheck no
"""
PUBKEY = """
PubkeyAuthentication yes
AuthorizedKeysFile {keys}
StrictModes no
"""


class Sshd:
    """With ``kdc``: GSSAPI logins of the test realm. With ``authorized_keys`` (a file of public
    keys) instead: key logins, a plain peer for the SSH node's benchmark."""

    def __init__(self, root: Path, kdc, users, authorized_keys: Path | None = None):
        self.root = root
        self.kdc = kdc
        self.users = users
        self.authorized_keys = authorized_keys
        self.port = free_port()
        self.proc = None

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / "host_ed25519")], check=True
        )
        text = SSHD_CONFIG.format(port=self.port, root=self.root, users=" ".join(self.users))
        env = dict(os.environ)
        if self.kdc is not None:
            keytab = self.root / "krb5.keytab"
            self.kdc.kadmin("addprinc -randkey host/localhost", f"ktadd -k {keytab} host/localhost")
            env = {**self.kdc.env, "KRB5_KTNAME": f"FILE:{keytab}"}
            text += GSSAPI
        if self.authorized_keys is not None:
            text += PUBKEY.format(keys=self.authorized_keys)
        config = self.root / "sshd_config"
        config.write_text(text)
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
            env=env,
            stdout=open(self.root / "sshd.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self._listening, 20, what="sshd")
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError((self.root / "sshd.log").read_text())
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        pid_file = self.root / "sshd.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
