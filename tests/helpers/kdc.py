"""A real MIT KDC (Debian krb5-kdc) for a test realm on a loopback port, with short lifetimes."""

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from .net import free_port, wait_for

REALM = "INK.TEST"


class KDC:
    def __init__(self, root: Path, lifetime="2m", renewable="10m"):
        self.root = root
        self.port = free_port()
        self.lifetime = lifetime
        self.renewable = renewable
        self.krb5_conf = root / "krb5.conf"
        self.kdc_conf = root / "kdc.conf"
        self.pid_file = root / "krb5kdc.pid"
        self.env = {**os.environ, "KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    def write_config(self):
        self.krb5_conf.write_text(
            f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    clockskew = 10
    renew_lifetime = {self.renewable}
    ticket_lifetime = {self.lifetime}
    udp_preference_limit = 1
[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{self.port}
    }}
"""
        )
        self.kdc_conf.write_text(
            f"""[kdcdefaults]
    kdc_ports = {self.port}
    kdc_tcp_ports = {self.port}
[realms]
    {REALM} = {{
        database_name = {self.root}/principal
        key_stash_file = {self.root}/stash
        acl_file = {self.root}/kadm5.acl
        max_life = {self.lifetime}
        max_renewable_life = {self.renewable}
        supported_enctypes = aes256-cts-hmac-sha1-96:normal
    }}
[logging]
    kdc = FILE:{self.root}/kdc.log
"""
        )
        (self.root / "kadm5.acl").write_text("")
        for path in (self.krb5_conf,):
            path.chmod(0o644)

    def kadmin(self, *queries: str):
        script = "\n".join(queries) + "\n"
        result = subprocess.run(
            ["kadmin.local"], input=script, env=self.env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # users' jobs read krb5.conf
        self.write_config()
        subprocess.run(
            ["kdb5_util", "create", "-s", "-r", REALM, "-P", "masterpw-not-secret"],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.kadmin(
            f"modprinc -maxlife {self.lifetime} -maxrenewlife {self.renewable} krbtgt/{REALM}@{REALM}"
        )
        self.run_kdc()
        return self

    def run_kdc(self):
        subprocess.run(["krb5kdc", "-P", str(self.pid_file)], env=self.env, check=True)
        wait_for(lambda: self.kinit_probe(), 20, what="the KDC")

    def kinit_probe(self):
        pid = self.pid()
        return (
            pid
            and psutil.pid_exists(pid)
            and any(c.laddr.port == self.port for c in psutil.Process(pid).net_connections("inet"))
        )

    def pid(self):
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def add_user(self, name: str, password: str):
        self.kadmin(f"addprinc -pw {password} -maxlife {self.lifetime} -maxrenewlife {self.renewable} {name}")

    def stop_kdc(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                psutil.Process(pid).wait(10)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        self.pid_file.unlink(missing_ok=True)
        time.sleep(0.2)

    def stop(self):
        self.stop_kdc()
