"""``hub.internal_ssl``: the hub, its proxy and a job's server talk TLS with certificates of the
hub's own CAs. The job's server refuses plain HTTP and any client without a certificate of the
hub's; its key reached the job in a private folder of the user's, written as the user."""

import pwd
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import psutil
import pytest
import requests

from tests.helpers.hub import spawn_and_wait
from tests.helpers.sshclient import Laptop

USER = "inkt_alice"


def internal_ssl(site):
    site["hub"] = {**site.get("hub", {}), "internal_ssl": True}
    return site


def server_port(name: str) -> int:
    for proc in psutil.process_iter(["username", "cmdline"]):
        if proc.info["username"] == name and "singleuser" in " ".join(proc.info["cmdline"] or []):
            for conn in proc.net_connections("inet"):
                if conn.status == psutil.CONN_LISTEN:
                    return conn.laddr.port
    raise AssertionError(f"no listening server of {name}")


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_jobs_speak_tls_with_the_hubs_certificates(make_hub, unix_users, request, backend):
    site_backend = {"type": "local"}
    if backend == "slurm":
        site_backend = {
            "type": "slurm",
            "options": {"slurm_conf": str(request.getfixturevalue("slurm").conf)},
        }
    hub = make_hub(site_backend, adjust=internal_ssl)
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token)  # the job reported its address over the hub's TLS API
    r = requests.get(
        hub.user_url(USER) + "api/status", headers={"Authorization": f"token {token}"}, timeout=10
    )
    assert r.status_code == 200, r.text[:300]
    assert "=> https://127.0.0.1:" in hub.log_text()  # the proxy's route to the job is TLS

    port = server_port(USER)
    url = f"127.0.0.1:{port}/user/{USER}/api/status"
    with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP
        requests.get(f"http://{url}", timeout=10)
    # a TLS client without a certificate of the hub's CAs gets no answer
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(f"GET /user/{USER}/api/status HTTP/1.0\r\n\r\n".encode())
                answer = tls.recv(100)
    except (ssl.SSLError, ConnectionResetError):
        pass
    assert answer == b"", answer

    alice = pwd.getpwnam(USER)
    folder = Path(alice.pw_dir) / ".ink" / "certs" / "default"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == alice.pw_uid
    files = list(folder.iterdir())
    assert len(files) == 3, files  # key, certificate, the CA's certificate
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600 and file.stat().st_uid == alice.pw_uid, file
    key = [f for f in files if f.read_text().startswith("-----BEGIN") and "PRIVATE KEY" in f.read_text()]
    assert len(key) == 1
    # another user of the node cannot read alice's key (nor list her certificates' folder)
    for argv in (["cat", str(key[0])], ["ls", str(folder)]):
        theft = subprocess.run(["runuser", "-u", "inkt_bob", "--", *argv], capture_output=True, text=True)
        assert theft.returncode != 0 and "PRIVATE" not in theft.stdout, argv
    # the hub keeps no copy of the user's key
    state = Path(hub.site["paths"]["state"]) / "internal-ssl"
    assert not [p for p in state.rglob("*") if p.is_file() and p.read_bytes() == key[0].read_bytes()]


def test_the_ssh_node_over_internal_ssl(make_hub, unix_users, tmp_path):
    """With TLS to the job the session's server cannot hand the connection to sshd: it relays
    the TLS stream once (ink_spawner/apps/sshstream.py); ssh and scp work the same."""
    hub = make_hub({"type": "local"}, adjust=internal_ssl)
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token, {"app": "sshnode"})
    alias = f"ink-{USER}"
    stanza = (
        f"Host {alias}\n    User {USER}\n    HostKeyAlias {alias}\n"
        f"    ProxyCommand ink --hub {hub.url} ssh-proxy {USER}\n"
    )
    laptop = Laptop(tmp_path / "laptop", hub, token, stanza)
    ran = laptop.ssh(alias, "id -un; head -c 3000000 /dev/urandom | sha256sum")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == USER
    sent = tmp_path / "laptop" / "up.bin"
    sent.write_bytes(bytes(range(256)) * 4096)
    assert laptop.scp(str(sent), f"{alias}:tls-up.bin").returncode == 0
    home = Path(pwd.getpwnam(USER).pw_dir)
    assert (home / "tls-up.bin").read_bytes() == sent.read_bytes()
    (home / "tls-up.bin").unlink()
    assert "=> https://127.0.0.1:" in hub.log_text()  # the route to the job was TLS
