"""The production front (issue 20): Debian's nginx with the config `ink front-config` writes,
terminating TLS before the hub. Through it alice logs in, uploads and downloads 64 MiB with the
file service; the file service's requests go straight to it: with the hub's proxy gone they
still work while the hub's pages do not. A user's own host gets no file service."""

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import types
from pathlib import Path

import pytest
import requests

from ink_services.front import nginx_site
from ink_spawner.configurer import load_site_config
from tests.helpers.hub import hub_login
from tests.helpers.net import free_port, wait_for
from tests.integration.test_tls import self_signed

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MAIN = """daemon off; worker_processes 1; user nobody nogroup;
pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}/tmp/body; proxy_temp_path {root}/tmp/proxy;
  fastcgi_temp_path {root}/tmp/fcgi; uwsgi_temp_path {root}/tmp/uwsgi; scgi_temp_path {root}/tmp/scgi;
  include {root}/ink-front.conf;
}}
"""
FILES = "/services/ink-files/api/v1/"
USER_HOST = "u-inktalic--x.localhost"  # a user's own host, as per-user origins name them


@pytest.fixture
def front_hub(monkeypatch, make_hub, tmp_path):
    """A hub whose public URL is an nginx front on a loopback port, with the site's TLS."""
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (scripts/test installs Debian's nginx-light)")
    cert, key = self_signed(tmp_path, USER_HOST)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    port = free_port()

    def behind_the_front(site):
        site["hub"] = {**site.get("hub", {}), "public_url": f"https://localhost:{port}/"}
        return site

    hub = make_hub({"type": "local"}, adjust=behind_the_front)
    root = Path(tempfile.mkdtemp(prefix="ink-front-"))
    root.chmod(0o755)
    (root / "tmp").mkdir()
    shutil.chown(root / "tmp", "nobody", "nogroup")
    (root / "ink-front.conf").write_text(
        nginx_site(load_site_config(hub.site_file), str(cert), str(key), listen=f"127.0.0.1:{port}")
    )
    (root / "nginx.conf").write_text(MAIN.format(root=root))
    nginx = subprocess.Popen([NGINX, "-c", str(root / "nginx.conf")], stderr=subprocess.PIPE)
    try:
        wait_for(
            lambda: requests.get(f"https://localhost:{port}/hub/health", timeout=5).status_code == 200,
            30,
            what="nginx in front of the hub",
        )
        yield hub, f"https://localhost:{port}", root
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def test_the_front_serves_the_hub_and_sends_file_transfers_straight_to_the_service(
    front_hub, unix_users, tmp_path
):
    hub, front, root = front_hub
    alice = hub_login(types.SimpleNamespace(url=front), "inkt_alice", unix_users["inkt_alice"])
    assert alice.get(f"{front}/hub/home", timeout=10).status_code == 200
    token = hub.user_token("inkt_alice")
    auth = {"Authorization": f"token {token}"}

    data = os.urandom(64 * 2**20)
    put = requests.put(f"{front}{FILES}files/home/front-test.bin", data=data, headers=auth, timeout=120)
    assert put.status_code in (200, 201), put.text
    got = requests.get(f"{front}{FILES}files/home/front-test.bin", headers=auth, timeout=120)
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    ranged = requests.get(
        f"{front}{FILES}files/home/front-test.bin", headers={**auth, "Range": "bytes=10-19"}, timeout=30
    )
    assert ranged.status_code == 206 and ranged.content == data[10:20]

    # with the hub's proxy frozen, the file service still answers through the front; the hub's
    # pages and a user's own host (which reach only the hub's proxy) do not
    proxy_pid = int((Path(hub.site["paths"]["state"]) / "proxy.pid").read_text())
    os.kill(proxy_pid, signal.SIGSTOP)
    try:
        listed = requests.get(f"{front}{FILES}list/home", headers=auth, timeout=30)
        assert listed.status_code == 200 and "front-test.bin" in listed.text
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(f"{front}/hub/health", timeout=3)
        port = front.rsplit(":", 1)[1]
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(f"https://{USER_HOST}:{port}{FILES}list/home", headers=auth, timeout=3)
    finally:
        os.kill(proxy_pid, signal.SIGCONT)
    Path("/home/inkt_alice/front-test.bin").unlink(missing_ok=True)
