"""Background transfers of the file service through a real hub, as real Unix users: a big copy
POSIX -> XRootD (2 GiB) with its progress in Chromium that survives a restart of the file service, moves
and folder copies between kinds, pulls of https:// and root:// URLs, cancel, and refusals."""

import http.server
import os
import pwd
import signal
import ssl
import subprocess
import threading
import time
import zlib
from pathlib import Path

import psutil
import pytest
import requests
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.net import free_port, wait_for
from tests.helpers.storagehub import start_storage_hub

API = "/services/ink-files/api/v1/"
SHARED = Path("/srv/inkt-transfers-shared")


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder with single byte ranges (what a resumed pull asks for)."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        header = self.headers.get("Range", "")
        start = int(header[len("bytes=") :].split("-")[0]) if header.startswith("bytes=") else 0
        f = open(path, "rb")  # noqa: SIM115 - copyfile closes it
        f.seek(start)
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        return f


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """A TLS server on loopback with its own certificate (the hub is told to trust it)."""
    folder = tmp_path_factory.mktemp("https")
    (folder / "www").mkdir()
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), lambda *a: RangeHandler(*a, directory=str(folder / "www"))
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"https://127.0.0.1:{port}", "www": folder / "www", "cert": cert, "port": port}
    server.shutdown()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, unix_users, profiles_dir, kdc, xrootd, https_server):
    server = start_storage_hub(
        tmp_path_factory.mktemp("transfers-hub"),
        unix_users,
        profiles_dir,
        kdc,
        xrootd,
        SHARED,
        pull_allow_hosts=["127.0.0.1", "localhost"],
        pull_ca_file=str(https_server["cert"]),
    )
    yield server
    server.stop()


def home(name) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)


def api(hub, method, path, token, **kwargs):
    headers = {"Authorization": f"token {token}"}
    return requests.request(method, f"{hub.url}{API}{path}", headers=headers, timeout=60, **kwargs)


def as_user(name, *argv):
    subprocess.run(["runuser", "-u", name, "--", *argv], check=True)


def make_file(name: str, path: Path, mib: int) -> None:
    """A file of random 16 MiB blocks, written as the user."""
    as_user(
        name,
        "python3",
        "-c",
        f"import os\nb = os.urandom(16 << 20)\nf = open({str(path)!r}, 'wb')\n"
        f"for i in range({mib // 16}): f.write(bytes([i % 251]) + b[1:])\nf.close()",
    )


def adler32(path: Path) -> str:
    value = 1
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            value = zlib.adler32(chunk, value)
    return f"{value:08x}"


def wait_transfer(hub, token, transfer_id, timeout=300) -> dict:
    def ended():
        t = api(hub, "GET", f"transfers/{transfer_id}", token).json()
        return t if t.get("state") in ("done", "failed", "cancelled") else None

    return wait_for(ended, timeout)


def file_service(hub) -> psutil.Process:
    hub_proc = psutil.Process(hub.proc.pid)
    for child in hub_proc.children(recursive=True):
        if child.cmdline()[-2:] == ["-m", "ink_services.files"]:
            return child
    raise AssertionError("no file service under the hub")


def test_a_big_copy_to_xrootd_shows_progress_and_survives_a_restart(
    hub, tokens, xrootd, browser, unix_users, output_dir
):
    alice = tokens["inkt_alice"]
    source = home("inkt_alice") / "big.bin"
    target = xrootd.data / "users" / "inkt_alice" / "big.bin"
    target.unlink(missing_ok=True)
    # 2 GiB: room to see the bar move twice and kill the service before the copy ends, on a
    # machine twice as fast as this one too
    make_file("inkt_alice", source, 2048)
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    page.goto(f"{hub.url}/services/ink-files/#home")
    row = page.locator("#ink-list tr[data-name='big.bin']")
    page.once("dialog", lambda dialog: dialog.accept("eos/big.bin"))
    row.locator("button", has_text="copy").first.click()
    transfer = page.locator(".ink-transfer").first
    expect(transfer).to_have_attribute("data-state", "running", timeout=30_000)
    seen = set()
    service = file_service(hub)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = int(transfer.get_attribute("data-done") or 0)
        seen.add(done)
        if len([d for d in seen if d > 0]) >= 2:  # the bar moved: now the service goes down
            break
        time.sleep(0.1)
    page.screenshot(path=str(output_dir / "transfer-running.png"), full_page=True)
    assert transfer.get_attribute("data-state") == "running", "the copy ended before the restart"
    assert len([d for d in seen if d > 0]) >= 2, seen  # the bar moved
    service.send_signal(signal.SIGKILL)  # the hub starts it again; the transfer goes on
    expect(page.locator("#ink-transfers")).to_have_attribute("data-offline", "1", timeout=30_000)
    expect(transfer).to_have_attribute("data-state", "done", timeout=240_000)
    page.screenshot(path=str(output_dir / "transfer-done.png"), full_page=True)
    assert file_service(hub).pid != service.pid
    log = hub.log_text()
    assert "resuming 1 unfinished transfers" in log
    assert "continues from" in log  # it did not start again from byte 0
    assert target.stat().st_size == source.stat().st_size == 2 << 30
    r = api(hub, "GET", "checksum/eos/big.bin?algorithm=adler32", alice)
    assert r.status_code == 200 and r.json()["value"] == adler32(source)
    assert not list(target.parent.glob(".ink-upload-*"))  # no partial file left behind
    as_user("inkt_alice", "rm", "-f", str(source))
    target.unlink()


def test_moves_folders_pulls_and_cancels(hub, tokens, xrootd, https_server):
    alice, bob = tokens["inkt_alice"], tokens["inkt_bob"]
    mine, eos = home("inkt_alice"), xrootd.data / "users" / "inkt_alice"
    as_user("inkt_alice", "rm", "-rf", str(mine / "run"), str(mine / "pulled.bin"), str(mine / "huge.bin"))
    subprocess.run(["rm", "-rf", str(eos / "run"), str(eos / "pulled.bin")], check=True)
    # a folder moves from the home to XRootD: every file arrives, the source is gone
    as_user("inkt_alice", "mkdir", "-p", str(mine / "run" / "sub"))
    for rel, size in (("a.dat", 1000), ("sub/b.dat", 3 << 20), ("sub/c.dat", 0)):
        as_user("inkt_alice", "sh", "-c", f"head -c {size} /dev/urandom > {mine / 'run' / rel}")
    sums = {rel: adler32(mine / "run" / rel) for rel in ("a.dat", "sub/b.dat", "sub/c.dat")}
    r = api(hub, "POST", "transfers", alice, json={"kind": "move", "from": "home/run", "to": "eos/run"})
    assert r.status_code == 201, r.text
    ended = wait_transfer(hub, alice, r.json()["id"])
    assert ended["state"] == "done" and ended["files_done"] == 3 and ended["done"] == 1000 + (3 << 20), ended
    assert {rel: adler32(eos / "run" / rel) for rel in sums} == sums
    assert not (mine / "run").exists()
    # bob sees none of alice's transfers and cannot touch them
    assert api(hub, "GET", "transfers", bob).json()["transfers"] == []
    assert api(hub, "GET", f"transfers/{ended['id']}", bob).status_code == 404
    assert api(hub, "DELETE", f"transfers/{ended['id']}", bob).status_code == 404
    # an https:// pull (the site trusts the test server's certificate)
    (https_server["www"] / "data.bin").write_bytes(os.urandom(5 << 20))
    r = api(
        hub,
        "POST",
        "transfers",
        alice,
        json={"kind": "pull", "url": f"{https_server['url']}/data.bin", "to": "home/pulled.bin"},
    )
    assert r.status_code == 201, r.text
    assert wait_transfer(hub, alice, r.json()["id"])["state"] == "done"
    assert (mine / "pulled.bin").read_bytes() == (https_server["www"] / "data.bin").read_bytes()
    assert (mine / "pulled.bin").stat().st_uid == pwd.getpwnam("inkt_alice").pw_uid
    # a root:// pull reads with alice's own ticket
    url = xrootd.url("/users/inkt_alice/run/sub/b.dat")
    r = api(hub, "POST", "transfers", alice, json={"kind": "pull", "url": url, "to": "eos/pulled.bin"})
    assert wait_transfer(hub, alice, r.json()["id"])["state"] == "done"
    assert adler32(eos / "pulled.bin") == sums["sub/b.dat"]
    # refused: inside the site's network, plain http, bad fields, an existing target, ..
    for body, status in (
        ({"kind": "pull", "url": f"https://127.0.0.2:{https_server['port']}/data.bin", "to": "home/x"}, 403),
        ({"kind": "pull", "url": "https://[::1]/x", "to": "home/x"}, 403),
        ({"kind": "pull", "url": "https://10.1.2.3/x", "to": "home/x"}, 403),
        ({"kind": "pull", "url": f"http://127.0.0.1:{https_server['port']}/data.bin", "to": "home/x"}, 400),
        ({"kind": "pull", "url": "file:///etc/passwd", "to": "home/x"}, 400),
        ({"kind": "copy", "from": "home/pulled.bin", "to": "eos/pulled.bin"}, 409),
        ({"kind": "copy", "from": "home/../inkt_bob", "to": "eos/x"}, 400),
        ({"kind": "copy", "from": "home/nothing", "to": "eos/x"}, 404),
        ({"kind": "copy", "from": "home/pulled.bin", "to": "eos/no/such/x"}, 404),
        ({"kind": "rsync", "from": "home/pulled.bin", "to": "eos/x"}, 400),
        ({"kind": "copy", "from": "home/pulled.bin", "to": "eos/x", "extra": 1}, 400),
    ):
        r = api(hub, "POST", "transfers", alice, json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
    assert not (mine / "x").exists()
    # cancel: a running copy stops and leaves neither the target nor a partial file
    make_file("inkt_alice", mine / "huge.bin", 1024)
    r = api(
        hub, "POST", "transfers", alice, json={"kind": "copy", "from": "home/huge.bin", "to": "eos/huge.bin"}
    )
    transfer_id = r.json()["id"]
    wait_for(lambda: api(hub, "GET", f"transfers/{transfer_id}", alice).json()["done"] > 0, 60)
    assert api(hub, "POST", f"transfers/{transfer_id}/cancel", bob).status_code == 404
    assert api(hub, "POST", f"transfers/{transfer_id}/cancel", alice).status_code == 200
    assert wait_transfer(hub, alice, transfer_id)["state"] == "cancelled"
    assert not (eos / "huge.bin").exists() and not list(eos.glob(".ink-upload-*"))
    assert api(hub, "DELETE", f"transfers/{transfer_id}", alice).status_code == 204
    assert transfer_id not in [t["id"] for t in api(hub, "GET", "transfers", alice).json()["transfers"]]
    as_user("inkt_alice", "rm", "-f", str(mine / "huge.bin"))
