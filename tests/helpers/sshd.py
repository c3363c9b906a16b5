"""A real OpenSSH server on a loopback port that accepts Kerberos (GSSAPI) logins of the test
realm: a login host for the web shell's ssh mode."""

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
PubkeyAuthentication no
GSSAPIAuthentication yes
GSSAPICleanupCredentials yes
GSSAPIStrictAcceptorCheck no
AllowUsers {users}
PrintMotd no
"""


class Sshd:
    def __init__(self, root: Path, kdc, users):
        self.root = root
        self.kdc = kdc
        self.users = users
        self.port = free_port()
        self.proc = None

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / "host_ed25519")], check=True
        )
        keytab = self.root / "krb5.keytab"
        self.kdc.kadmin("addprinc -randkey host/localhost", f"ktadd -k {keytab} host/localhost")
        config = self.root / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=self.port, root=self.root, users=" ".join(self.users)))
        env = {**self.kdc.env, "KRB5_KTNAME": f"FILE:{keytab}"}
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
