"""The file service through a real hub, as real Unix users: every operation, its confinement
(paths, symlinks, other users, the kernel's own permission checks), uploads that survive a
dropped connection, Range downloads, zips, share links, XSRF."""

import hashlib
import io
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import USERS, kerberos_site, site_config
from tests.helpers.hub import Hub, login_session, service_records
from tests.helpers.net import wait_for
from tests.helpers.samples import fits_bomb, fits_file, root_file
from tests.helpers.users import ensure_user, remove_user
from tests.helpers.xrootd import SERVER_USER

API = "/services/ink-files/api/v1/"
SHARED = Path("/srv/inkt-files-shared")
TINY = Path("/srv/inkt-files-tiny")  # a 1 MiB tmpfs: a full disk


@pytest.fixture(scope="module")
def hub(tmp_path_factory, unix_users, profiles_dir, kdc, xrootd):
    SHARED.mkdir(parents=True, exist_ok=True)
    SHARED.chmod(0o1777)
    TINY.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "inkt-tiny", str(TINY)], check=True)
    site = kerberos_site(site_config({"type": "local"}), kdc)
    site["paths"]["profiles"] = str(profiles_dir)
    site["files"] = {
        "port": site["files"]["port"],
        "areas": {
            "home": "{home}",
            "shared": str(SHARED),
            "tiny": str(TINY),
            "eos": {"type": "xrootd", "url": xrootd.url("/users/{username}")},
            "eosall": {"type": "xrootd", "url": xrootd.url("/users")},
        },
        "max_upload": "64M",
        "max_concurrent_uploads": 2,
        "preview_memory": "256M",
    }
    server = Hub(tmp_path_factory.mktemp("files-hub"), site).start()
    for name in USERS:  # a password login gives INK the Kerberos ticket XRootD wants
        login_session(server, name, unix_users[name], "/services/ink-files/")
    yield server
    server.stop()
    subprocess.run(["umount", str(TINY)], check=False)
    shutil.rmtree(SHARED, ignore_errors=True)


@pytest.fixture(params=["home", "eos"])
def area(request):
    """The same tests on both storage adapters: POSIX (the user's home) and XRootD."""
    return request.param


@pytest.fixture
def stored(area, xrootd):
    """Where a user's file of this area lies on the storage's own disk."""

    def where(name: str, rel: str) -> Path:
        base = home(name) if area == "home" else xrootd.data / "users" / name
        return base / rel

    return where


def home(name) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)


def api(hub, method, path, token, **kwargs):
    headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{hub.url}{API}{path}", headers=headers, timeout=60, **kwargs)


def as_user(name, *argv):
    subprocess.run(["runuser", "-u", name, "--", *argv], check=True)


def test_round_trip_as_the_user(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    data = os.urandom(3 * 1024 * 1024 + 17)
    api(hub, "DELETE", f"files/{area}/ft?recursive=1", alice)
    r = api(hub, "PUT", f"files/{area}/ft/round.bin", alice, data=data)
    assert r.status_code == 404  # the folder does not exist yet: nothing is created on the way
    assert api(hub, "POST", f"mkdir/{area}/ft", alice).status_code == 201
    r = api(hub, "PUT", f"files/{area}/ft/round.bin", alice, data=data)
    assert r.status_code == 201, r.text
    target = stored("inkt_alice", "ft/round.bin")
    owner = "inkt_alice" if area == "home" else SERVER_USER  # XRootD keeps files as its own user
    assert target.read_bytes() == data and target.stat().st_uid == pwd.getpwnam(owner).pw_uid
    assert api(hub, "GET", f"files/{area}/ft/round.bin", alice).content == data
    # the same name again is refused unless overwrite=1: nothing is lost by accident
    assert api(hub, "PUT", f"files/{area}/ft/round.bin", alice, data=b"x").status_code == 409
    assert target.read_bytes() == data
    assert api(hub, "PUT", f"files/{area}/ft/round.bin?overwrite=1", alice, data=b"x").status_code == 201
    assert target.read_bytes() == b"x"
    stat = api(hub, "GET", f"stat/{area}/ft/round.bin", alice).json()
    assert stat["size"] == 1 and stat["type"] == "file" and stat["path"] == f"{area}/ft/round.bin"


def test_range_downloads_resume_with_identical_bytes(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    data = os.urandom(5 * 1024 * 1024)
    assert api(hub, "PUT", f"files/{area}/range.bin?overwrite=1", alice, data=data).status_code == 201
    r = api(hub, "GET", f"files/{area}/range.bin", alice, headers={"Range": "bytes=1000-"})
    assert r.status_code == 206 and r.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert r.content == data[1000:]
    r = api(hub, "GET", f"files/{area}/range.bin", alice, headers={"Range": "bytes=-10"})
    assert r.content == data[-10:]
    r = api(hub, "GET", f"files/{area}/range.bin", alice, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    # curl -C - resumes a partial download to identical bytes
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "range.bin"
        out.write_bytes(data[:12345])
        subprocess.run(
            [
                "curl",
                "-sf",
                "-C",
                "-",
                "-o",
                str(out),
                "-H",
                f"Authorization: token {alice}",
                f"{hub.url}{API}files/{area}/range.bin",
            ],
            check=True,
        )
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()


def send_half_and_drop(hub, token, path, upload_id, data, sent):
    """A PUT whose connection dies after ``sent`` bytes of the body."""
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        head = (
            f"PUT {API}files/{path} HTTP/1.1\r\nHost: localhost:{hub.port}\r\n"
            f"Authorization: token {token}\r\nX-Ink-Upload: {upload_id}\r\n"
            f"Content-Range: bytes 0-{len(data) - 1}/{len(data)}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[:sent])
        # drop the connection once the server has stored what arrived (and stopped growing)
        seen = [-1]

        def stored_and_still():
            r = api(hub, "GET", f"uploads/{path}?upload={upload_id}", token)
            received = r.json().get("received", 0) if r.status_code == 200 else 0
            settled = received > 0 and received == seen[0]
            seen[0] = received
            return settled

        wait_for(stored_and_still, 30, interval=0.3, what="the server to store the first part")


def test_an_upload_killed_midway_leaves_nothing_and_resumes(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    data = os.urandom(8 * 1024 * 1024)
    upload_id = "resume-" + os.urandom(6).hex()
    send_half_and_drop(hub, alice, f"{area}/resumed.bin", upload_id, data, 3 * 1024 * 1024)
    assert not (stored("inkt_alice", "resumed.bin")).exists()
    received = api(hub, "GET", f"uploads/{area}/resumed.bin?upload={upload_id}", alice).json()["received"]
    assert 0 < received <= 3 * 1024 * 1024
    # resuming from a wrong offset is refused with what the server has
    r = api(
        hub,
        "PUT",
        f"files/{area}/resumed.bin",
        alice,
        data=data[:10],
        headers={"X-Ink-Upload": upload_id, "Content-Range": f"bytes 0-9/{len(data)}"},
    )
    assert r.status_code == 409 and int(r.headers["X-Ink-Received"]) == received
    rest = data[received:]
    r = api(
        hub,
        "PUT",
        f"files/{area}/resumed.bin",
        alice,
        data=rest,
        headers={"X-Ink-Upload": upload_id, "Content-Range": f"bytes {received}-{len(data) - 1}/{len(data)}"},
    )
    assert r.status_code == 201, r.text
    assert (stored("inkt_alice", "resumed.bin")).read_bytes() == data
    assert not [p for p in os.listdir(stored("inkt_alice", "")) if p.startswith(".ink-upload-")]


def test_two_uploads_of_one_name_do_not_interleave(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    one, two = b"1" * (6 * 1024 * 1024), b"2" * (6 * 1024 * 1024)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda d: api(hub, "PUT", f"files/{area}/same.bin?overwrite=1", alice, data=d).status_code,
                [one, two],
            )
        )
    assert answers == [201, 201]
    assert (stored("inkt_alice", "same.bin")).read_bytes() in (one, two)


def test_limits_answer_clearly(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    r = api(
        hub,
        "PUT",
        f"files/{area}/big.bin",
        alice,
        data=b"x",
        headers={"Content-Range": f"bytes 0-0/{65 * 1024 * 1024}"},
    )
    assert r.status_code == 413 and "upload limit" in r.json()["message"]
    assert api(hub, "GET", "list/home?limit=5000", alice).status_code == 400
    assert api(hub, "GET", "list/home?sort=owner", alice).status_code == 400


def test_folder_operations(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    api(hub, "DELETE", f"files/{area}/ops?recursive=1", alice)
    assert api(hub, "POST", f"mkdir/{area}/ops/deep/er?parents=1", alice).status_code == 201
    api(hub, "PUT", f"files/{area}/ops/deep/a.txt", alice, data=b"A")
    api(hub, "PUT", f"files/{area}/ops/deep/er/b.txt", alice, data=b"B")
    r = api(hub, "POST", "copy", alice, json={"from": f"{area}/ops/deep", "to": f"{area}/ops/copy"})
    assert r.status_code == 200, r.text
    assert (
        api(
            hub, "POST", "move", alice, json={"from": f"{area}/ops/copy", "to": f"{area}/ops/moved"}
        ).status_code
        == 200
    )
    assert (stored("inkt_alice", "ops/moved/er/b.txt")).read_text() == "B"
    assert (
        api(
            hub, "POST", "move", alice, json={"from": f"{area}/ops/moved", "to": f"{area}/ops/deep"}
        ).status_code
        == 409
    )
    assert (
        api(hub, "POST", "move", alice, json={"from": f"{area}/ops/deep", "to": "shared/x"}).status_code
        == 409
    )
    assert (
        api(hub, "POST", f"chmod/{area}/ops/deep/a.txt", alice, json={"mode": 0o600}).json()["mode"] == 0o600
    )
    assert api(hub, "POST", f"chmod/{area}/ops/deep/a.txt", alice, json={"mode": "777"}).status_code == 400
    r = api(hub, "DELETE", f"files/{area}/ops/moved", alice)
    assert r.status_code == 409 and "recursive=1" in r.json()["message"]
    assert api(hub, "DELETE", f"files/{area}/ops/moved?recursive=1", alice).status_code == 204
    assert not (stored("inkt_alice", "ops/moved")).exists()
    # a folder downloads as a zip of what is in it
    r = api(hub, "GET", f"files/{area}/ops/deep", alice)
    assert r.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["a.txt", "er/b.txt"] and z.read("er/b.txt") == b"B"
    for _ in range(3):
        listing = api(hub, "GET", f"list/{area}/ops", alice).json()
    assert [e["name"] for e in listing["entries"]] == ["deep"] and listing["total"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "files/AREA/%2e%2e/inkt_bob/.bashrc",
        "files/AREA/..%2finkt_bob%2f.bashrc",
        "files/%2fetc/passwd",
        "files/AREA/a%00b",
        "list/AREA/%2e%2e",
        "files//etc/passwd",
        "files/etc/passwd",
    ],
)
def test_escapes_are_refused(hub, tokens, path, area):
    path = path.replace("AREA", area)
    r = requests.get(
        f"{hub.url}{API}{path}", headers={"Authorization": f"token {tokens['inkt_alice']}"}, timeout=30
    )
    assert 400 <= r.status_code < 500 and "root:" not in r.text and "message" in r.json()


def test_symlinks_and_other_users_are_refused(hub, tokens):
    alice = tokens["inkt_alice"]
    ahome = home("inkt_alice")
    for name, target in (
        ("link-etc", "/etc"),
        ("link-bob", str(home("inkt_bob"))),
        ("link-shadow", "/etc/shadow"),
    ):
        (ahome / name).unlink(missing_ok=True)
        as_user("inkt_alice", "ln", "-s", target, str(ahome / name))
    for path in (
        "files/home/link-etc/passwd",
        "files/home/link-shadow",
        "list/home/link-bob",
        "files/home/link-bob/.bashrc",
    ):
        r = api(hub, "GET", path, alice)
        assert r.status_code == 403 and "symbolic links" in r.json()["message"], (path, r.text)
    r = api(hub, "PUT", "files/home/link-bob/planted.txt", alice, data=b"x")
    assert r.status_code == 403 and not (home("inkt_bob") / "planted.txt").exists()
    # the kernel's own check: bob's private file in the shared area is closed to alice
    (SHARED / "bob-only.txt").unlink(missing_ok=True)
    as_user(
        "inkt_bob", "sh", "-c", f"echo private > {SHARED}/bob-only.txt && chmod 600 {SHARED}/bob-only.txt"
    )
    assert api(hub, "GET", "files/shared/bob-only.txt", tokens["inkt_bob"]).content == b"private\n"
    r = api(hub, "GET", "files/shared/bob-only.txt", alice)
    assert r.status_code == 403 and r.json()["message"] == "permission denied"
    assert api(hub, "DELETE", "files/shared/bob-only.txt", alice).status_code == 403  # sticky folder
    assert (SHARED / "bob-only.txt").exists()
    # "home" is always the caller's own
    api(hub, "PUT", "files/home/mine.txt?overwrite=1", tokens["inkt_bob"], data=b"bob's")
    assert api(hub, "GET", "files/home/mine.txt", alice).status_code == 404
    # no token, a wrong token
    assert requests.get(f"{hub.url}{API}list/home", timeout=10, allow_redirects=False).status_code in (
        302,
        403,
    )
    assert api(hub, "GET", "list/home", "wrong", allow_redirects=False).status_code in (302, 403)


def test_cookie_requests_need_xsrf(hub, tokens, unix_users):
    session, xsrf = login_session(hub, "inkt_alice", unix_users["inkt_alice"], "/services/ink-files/")
    assert session.get(f"{hub.url}{API}list/home").status_code == 200
    assert session.post(f"{hub.url}{API}mkdir/home/xsrf-dir").status_code == 403
    assert not (home("inkt_alice") / "xsrf-dir").exists()
    r = session.post(f"{hub.url}{API}mkdir/home/xsrf-dir", headers={"X-XSRFToken": xsrf})
    assert r.status_code == 201, r.text
    assert session.put(f"{hub.url}{API}files/home/xsrf.txt", data=b"x").status_code == 403
    assert not (home("inkt_alice") / "xsrf.txt").exists()


def test_share_links(hub, tokens, area, stored):
    alice = tokens["inkt_alice"]
    api(hub, "POST", f"mkdir/{area}/shared-dir/inner?parents=1", alice)
    api(hub, "PUT", f"files/{area}/shared-dir/inner/data.txt?overwrite=1", alice, data=b"shared data")
    api(hub, "PUT", f"files/{area}/sibling.txt?overwrite=1", alice, data=b"not shared")
    api(hub, "PUT", f"files/{area}/shared-dir/.netrc?overwrite=1", alice, data=b"machine x password y")
    api(hub, "POST", f"mkdir/{area}/shared-dir/.ssh?parents=1", alice)
    api(hub, "PUT", f"files/{area}/shared-dir/.ssh/id_rsa?overwrite=1", alice, data=b"PRIVATE KEY")
    r = api(hub, "POST", "shares", alice, json={"path": f"{area}/shared-dir", "expires_in": 3600})
    assert r.status_code == 201, r.text
    link = r.json()
    url = f"{hub.url}{link['url']}"
    # a folder's link never lists or serves its dotfiles, nor puts them in its zip
    entries = requests.get(f"{url}list/?hidden=1", timeout=10).json()["entries"]
    names = [e["name"] for e in entries]
    # the visitor learns no account or group names (the owner sees them in ls -l columns)
    assert entries and not any("owner" in e or "group" in e for e in entries), entries
    assert names == ["inner"], names
    for hidden in ("files/.netrc", "files/.ssh/id_rsa", "list/.ssh", "files/inner/../.netrc"):
        r = requests.get(f"{url}{hidden}", timeout=10)
        assert r.status_code in (400, 404) and b"PRIVATE" not in r.content and b"password" not in r.content
    archive = requests.get(f"{url}files/", timeout=30).content
    assert b"PRIVATE KEY" not in archive and b"password y" not in archive and b"shared data" in archive
    # a dotfile the owner shares itself is served
    r = api(hub, "POST", "shares", alice, json={"path": f"{area}/shared-dir/.netrc", "expires_in": 60})
    assert requests.get(f"{hub.url}{r.json()['url']}files/", timeout=10).content == b"machine x password y"
    # no login needed; read-only; confined to the shared folder
    assert requests.get(f"{url}list/inner", timeout=10).json()["entries"][0]["name"] == "data.txt"
    assert requests.get(f"{url}files/inner/data.txt", timeout=10).content == b"shared data"
    assert (
        requests.get(f"{url}files/inner/data.txt", headers={"Range": "bytes=7-"}, timeout=10).content
        == b"data"
    )
    for sub in ("files/../sibling.txt", "files/%2e%2e/sibling.txt", "files/inner/../../sibling.txt"):
        r = requests.get(f"{url}{sub}", timeout=10)
        assert r.status_code in (400, 404) and b"not shared" not in r.content, sub
    assert requests.put(f"{url}files/inner/new.txt", data=b"x", timeout=10).status_code in (403, 405)
    assert requests.get(f"{url}", timeout=10).status_code == 200
    # a file link opens that file only
    file_link = api(
        hub, "POST", "shares", alice, json={"path": f"{area}/sibling.txt", "expires_in": 600}
    ).json()
    assert requests.get(f"{hub.url}{file_link['url']}files/", timeout=10).content == b"not shared"
    assert requests.get(f"{hub.url}{file_link['url']}files/x", timeout=10).status_code == 404
    # listed for their owner only; revocable by the owner only
    mine = api(hub, "GET", "shares", alice).json()["shares"]
    assert {s["id"] for s in mine} >= {link["id"], file_link["id"]} and all("url" not in s for s in mine)
    assert api(hub, "GET", "shares", tokens["inkt_bob"]).json()["shares"] == []
    assert api(hub, "DELETE", f"shares/{link['id']}", tokens["inkt_bob"]).status_code == 404
    assert api(hub, "DELETE", f"shares/{link['id']}", alice).status_code == 204
    assert requests.get(f"{url}files/inner/data.txt", timeout=10).status_code == 404
    # an expired link is gone
    store = service_records(hub, "shares")
    expired = list(store.items(file_link["id"]))
    assert len(expired) == 1
    for key, data in expired:
        store.put(key, {**data, "expires": time.time() - 1})
    assert requests.get(f"{hub.url}{file_link['url']}files/", timeout=10).status_code == 410
    # bad requests get a 400 naming the field
    r = api(hub, "POST", "shares", alice, json={"path": f"{area}/sibling.txt", "expires_in": 10**9})
    assert r.status_code == 400 and "expires_in" in r.json()["message"]
    assert requests.get(f"{hub.url}/services/ink-files/s/guess/files/", timeout=10).status_code == 404
    # the secrets were used above, many times: none of them is in any log
    secret = link["url"].split("/s/", 1)[1].split("/", 1)[0]
    assert len(secret) >= 40 and secret not in hub.log_text()
    assert "/s/[secret]/" in hub.log_text(), "the access log shows share requests, without secrets"


def test_share_links_die_with_their_owners_account(hub):
    """A link whose owner left the hub, or whose Unix account was removed, answers 410 and is
    deleted."""
    links = {}
    for name in ("inkt_dave", "inkt_erin"):
        ensure_user(name)
        token = hub.user_token(name)
        assert (
            api(hub, "PUT", "files/home/for-all.txt", token, data=b"shared by " + name.encode()).status_code
            == 201
        )
        r = api(hub, "POST", "shares", token, json={"path": "home/for-all.txt", "expires_in": 3600})
        links[name] = f"{hub.url}{r.json()['url']}files/"
        assert requests.get(links[name], timeout=10).content == b"shared by " + name.encode()
    try:
        assert hub.api("DELETE", "/users/inkt_dave").status_code == 204  # left the hub
        remove_user("inkt_erin")  # the site removed the account
        time.sleep(6)  # the service remembers a hub user for 5 s
        for name, url in links.items():
            r = requests.get(url, timeout=10)
            assert r.status_code == 410 and b"shared by" not in r.content, (name, r.status_code)
            assert "no longer has an account" in r.json()["message"]
        stored = [link["owner"] for _, link in service_records(hub, "shares").items()]
        assert "inkt_dave" not in stored and "inkt_erin" not in stored
    finally:
        remove_user("inkt_dave")
        remove_user("inkt_erin")


def test_new_files_and_folders_get_the_umask_of_the_users_login(hub):
    """What a login would give: ``umask=0077`` in gina's GECOS field (pam_umask) makes her uploads
    600 and her folders 700; bob, with Debian's defaults and his own group, gets 664 and 775."""
    ensure_user("inkt_gina")
    subprocess.run(["usermod", "-c", "Gina,,,,umask=0077", "inkt_gina"], check=True)
    try:
        for name, file_mode, dir_mode in (("inkt_gina", 0o600, 0o700), ("inkt_bob", 0o664, 0o775)):
            token = hub.user_token(name)
            assert api(hub, "PUT", "files/home/umask.txt?overwrite=1", token, data=b"x").status_code == 201
            api(hub, "DELETE", "files/home/umask-dir?recursive=1", token)
            assert api(hub, "POST", "mkdir/home/umask-dir", token).status_code == 201
            assert (home(name) / "umask.txt").stat().st_mode & 0o777 == file_mode, name
            assert (home(name) / "umask-dir").stat().st_mode & 0o777 == dir_mode, name
    finally:
        remove_user("inkt_gina")


@pytest.mark.parametrize(
    "path", ["/hub/%c0%ae%c0%ae/", "/services/ink-files/api/v1/list/home/%ff", "/user/inkt_alice/%c0%af"]
)
def test_a_path_that_is_not_utf8_gets_a_clear_400(hub, tokens, path):
    """configurable-http-proxy decodes every path and answered 500 (URIError) before INK saw it."""
    r = requests.get(hub.url + path, headers={"Authorization": f"token {tokens['inkt_alice']}"}, timeout=10)
    assert r.status_code == 400 and "not valid percent-encoded UTF-8" in r.json()["message"], r.text[:200]


@pytest.mark.parametrize("method", ["DELETE", "GET"])
def test_a_refused_request_with_a_body_gets_its_answer(hub, tokens, method):
    """Refused before its body was read (alice may not act for bob), a request still gets its
    403 through the hub's proxy, not the proxy's 503 for a connection cut mid-body."""
    r = api(hub, method, "files/home/x.txt?user=inkt_bob", tokens["inkt_alice"], data=b"x" * 2 * 1024 * 1024)
    assert r.status_code == 403 and "message" in r.json(), (r.status_code, r.text[:200])


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send a request's head (and the start of its body) to a service's own port; its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n" + body)
        return sock.recv(4096)


def test_anonymous_bodies_are_refused_before_they_are_read(hub):
    """An anonymous 10 MB upload gets its 403 after its headers, not after its body; a service
    without uploads refuses a large body at once instead of reading it."""
    files = hub.site["files"]["port"]
    head = b"PUT /services/ink-files/api/v1/files/home/x.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10485760"
    assert raw_request(files, head, b"x" * 1024).startswith(b"HTTP/1.1 403")
    dashboard = hub.site["dashboard"]["port"]
    head = b"POST /services/ink-dashboard/api/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 52428800"
    answer = raw_request(dashboard, head, b"x" * 1024)
    assert answer == b"" or answer.split(b" ")[1] in (b"400", b"413"), answer[:100]


def test_metrics(hub, tokens):
    r = hub.metrics_of("ink-files")
    assert r.status_code == 200 and "ink_files_bytes_received_total" in r.text
    assert hub.metrics_of("ink-files", tokens["inkt_bob"]).status_code == 403


def test_xrootd_storage_decides_as_the_user(hub, tokens, xrootd):
    alice = tokens["inkt_alice"]
    api(hub, "PUT", "files/eos/whoami.txt?overwrite=1", alice, data=b"alice's")
    listing = api(hub, "GET", "list/eosall/inkt_alice", alice)
    assert listing.status_code == 200 and "whoami.txt" in [e["name"] for e in listing.json()["entries"]]
    r = api(hub, "GET", "list/eosall/inkt_bob", alice)
    assert r.status_code == 403 and r.json()["message"] == "permission denied"
    r = api(hub, "PUT", "files/eosall/inkt_bob/planted.txt", alice, data=b"x")
    assert r.status_code == 403 and not (xrootd.data / "users/inkt_bob/planted.txt").exists()
    # the server saw alice herself, authenticated by her own Kerberos ticket
    assert "grant krb5 inkt_alice@" in xrootd.log()
    assert "deny krb5 inkt_alice@" in xrootd.log()
    # her worker's ticket copy: in a folder of hers (700) inside one nobody can list (711),
    # under a name nobody can guess in advance (not a fixed /tmp/krb5cc_... another user could plant)
    caches = set()
    for proc in psutil.process_iter(["username"]):
        try:
            if proc.info["username"] == "inkt_alice" and "KRB5CCNAME" in proc.environ():
                caches.add(proc.environ()["KRB5CCNAME"].removeprefix("FILE:"))
        except psutil.Error:
            continue
    assert caches, "alice's XRootD worker runs with her ticket"
    for cache in map(Path, caches):
        assert (
            cache.stat().st_uid == pwd.getpwnam("inkt_alice").pw_uid and cache.stat().st_mode & 0o777 == 0o600
        )
        assert cache.parent.stat().st_mode & 0o777 == 0o700
        assert cache.parent.parent.stat().st_mode & 0o777 == 0o711 and cache.parent.parent.stat().st_uid == 0
        assert (
            cache.parent.parent.name.startswith("ink-files-tickets-") and len(cache.parent.parent.name) > 20
        )


def test_previews_of_root_and_fits_files(hub, tokens, area, stored, tmp_path):
    alice = tokens["inkt_alice"]
    root_file(tmp_path / "sample.root")
    fits_file(tmp_path / "sample.fits")
    for name in ("sample.root", "sample.fits"):
        r = api(hub, "PUT", f"files/{area}/{name}?overwrite=1", alice, data=(tmp_path / name).read_bytes())
        assert r.status_code == 201, r.text
    keys = api(hub, "GET", f"preview/root/{area}/sample.root", alice).json()
    by_name = {k["name"]: k for k in keys["keys"]}
    assert by_name["hpx"]["class"].startswith("TH1") and by_name["events"]["class"] == "TTree"
    assert by_name["events"]["branches"] == ["px", "py", "energy"] and by_name["events"]["entries"] == 2000
    maps = {k["name"]: k for k in by_name["maps"]["children"]}
    assert (
        maps["h2"]["class"].startswith("TH2") and maps["deeper"]["children"][0]["path"] == "maps/deeper/hdeep"
    )
    assert 0 < keys["bytes_read"] <= keys["size"]
    fits = api(hub, "GET", f"preview/fits/{area}/sample.fits", alice).json()
    assert any("INK test field" in card for card in fits["headers"][0]["cards"])
    assert fits["image"]["shape"] == [200, 300] and fits["png"].startswith("data:image/png;base64,")
    # not what the name says: a clear 422, not a 500
    api(hub, "PUT", f"files/{area}/fake.root?overwrite=1", alice, data=b"not a root file at all")
    r = api(hub, "GET", f"preview/root/{area}/fake.root", alice)
    assert r.status_code == 422 and "not a readable ROOT file" in r.json()["message"]
    r = api(hub, "GET", f"preview/fits/{area}/fake.root", alice)
    assert r.status_code == 422
    # a decompression bomb (5 MiB that inflate to 512 MiB) gets a clear 422, also through a share
    # link, and is not parsed again: the answer is kept for that version of the file
    fits_bomb(tmp_path / "bomb.fits", 8000)
    r = api(
        hub, "PUT", f"files/{area}/bomb.fits?overwrite=1", alice, data=(tmp_path / "bomb.fits").read_bytes()
    )
    assert r.status_code == 201, r.text
    r = api(hub, "GET", f"preview/fits/{area}/bomb.fits", alice)
    assert r.status_code == 422 and "more than 256 MiB of memory" in r.json()["message"], r.text
    link = api(hub, "POST", "shares", alice, json={"path": f"{area}/bomb.fits", "expires_in": 600}).json()
    if area == "home":  # kept: a file the worker could no longer read still gets the same answer
        stored("inkt_alice", "bomb.fits").chmod(0)
    r = requests.get(f"{hub.url}{link['url']}preview/fits/", timeout=30)
    assert r.status_code == 422 and "more than 256 MiB of memory" in r.json()["message"], r.text
    api(hub, "DELETE", f"files/{area}/bomb.fits", alice)
    # JSROOT's multi-range reads get exactly the bytes asked for
    data = (tmp_path / "sample.root").read_bytes()
    r = api(hub, "GET", f"files/{area}/sample.root", alice, headers={"Range": "bytes=0-99,1000-1099"})
    assert r.status_code == 206 and r.headers["Content-Type"].startswith("multipart/byteranges")
    assert data[0:100] in r.content and data[1000:1100] in r.content and len(r.content) < 1000


def test_a_full_disk_is_said_and_leaves_nothing(hub, tokens):
    alice = tokens["inkt_alice"]
    r = api(hub, "PUT", "files/tiny/too-big.bin", alice, data=os.urandom(3 * 1024 * 1024))
    assert r.status_code == 507 and "full" in r.json()["message"]
    assert os.listdir(TINY) == []  # neither the file nor a partial one
    r = api(hub, "PUT", "files/tiny/fits.bin", alice, data=b"small")
    assert r.status_code == 201 and (TINY / "fits.bin").read_bytes() == b"small"


def test_scopes_and_acting_for_others(hub, tokens):
    r = hub.api(
        "POST", "/users/inkt_alice/tokens", json={"scopes": ["custom:ink:files:read", "access:services"]}
    )
    read_only = r.json()["token"]
    listing = api(hub, "GET", "list/home", read_only)
    assert listing.status_code == 200
    assert listing.headers["Content-Security-Policy"] == "frame-ancestors 'none'"  # never framed
    page = requests.get(f"{hub.url}/services/ink-files/", timeout=10, allow_redirects=False)
    assert page.headers["X-Frame-Options"] == "DENY"
    r = api(hub, "PUT", "files/home/ro.txt", read_only, data=b"x")
    assert r.status_code == 403 and "custom:ink:files:write" in r.json()["message"]
    assert not (home("inkt_alice") / "ro.txt").exists()
    r = hub.api(
        "POST", "/users/inkt_alice/tokens", json={"scopes": ["custom:ink:jobs:read", "access:services"]}
    )
    r = api(hub, "GET", "list/home", r.json()["token"])
    assert r.status_code == 403 and "custom:ink:files:read" in r.json()["message"]
    # a hub admin (carol) may act for alice; bob may not
    api(hub, "PUT", "files/home/for-admin.txt?overwrite=1", tokens["inkt_alice"], data=b"alice's")
    r = api(hub, "GET", "files/home/for-admin.txt?user=inkt_alice", tokens["inkt_carol"])
    assert r.status_code == 200 and r.content == b"alice's"
    r = api(hub, "GET", "files/home/for-admin.txt?user=inkt_alice", tokens["inkt_bob"])
    assert r.status_code == 403 and "admin:users" in r.json()["message"]
    # but never for a system account: not root's home, not daemon's, not for writing either
    for name, why in (("root", "never acts as"), ("daemon", "system account (uid 1 < 1000)")):
        r = api(hub, "GET", f"list/home?user={name}", tokens["inkt_carol"])
        assert r.status_code == 403 and why in r.json()["message"], r.text
        r = api(hub, "PUT", f"files/home/x.txt?user={name}", tokens["inkt_carol"], data=b"x")
        assert r.status_code == 403, r.text
    assert not Path("/root/x.txt").exists()
    assert "refused to serve" in hub.log_text() or "refused to" in hub.log_text()


def test_a_refusal_before_the_body_does_not_poison_the_proxys_connection(hub, tokens):
    """A request refused before its body is read (anonymous; a method Tornado does not serve,
    as schemathesis found) ends its connection to the service. The proxy keeps upstream connections alive, so unless the answer says `Connection:
    close` the proxy may send the next request down the dying socket and answer it 503."""
    alice = tokens["inkt_alice"]
    api(hub, "PUT", "files/home/poison.txt?overwrite=1", alice, data=b"ok")
    url = f"{hub.url}{API}files/home/poison.txt"

    auth = {"Authorization": f"token {alice}"}

    def pair(i):
        if i % 2:  # anonymous: refused in prepare()
            refused = requests.get(url, timeout=30)
        else:  # a method Tornado does not serve, with a body: 405 before prepare() runs
            headers = {**auth, "Content-Type": "application/octet-stream"}
            refused = requests.request("TRACE", url, data=b"\x89PNG" * 20, headers=headers, timeout=30)
        good = requests.get(url, headers=auth, timeout=30)
        return refused.status_code, good.status_code

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(pair, range(80)))
    assert {refused for refused, _ in answers} == {403, 405}, answers
    assert {good for _, good in answers} == {200}, [a for a in answers if a[1] != 200][:5]


def test_checksums_on_request_and_storage_urls(hub, tokens, area, stored, xrootd):
    """adler32 as XRootD and FTS give it (the XRootD area asks the server) and sha256; a second
    ask is remembered, a changed file is computed again; stat gives the URL for ROOT or a job."""
    alice = tokens["inkt_alice"]
    data = os.urandom(5 * 1024 * 1024 + 3)  # more than one read
    api(hub, "DELETE", f"files/{area}/cks?recursive=1", alice)
    assert api(hub, "POST", f"mkdir/{area}/cks", alice).status_code == 201
    assert api(hub, "PUT", f"files/{area}/cks/run.root", alice, data=data).status_code == 201
    adler = f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
    first = api(hub, "GET", f"checksum/{area}/cks/run.root", alice)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "path": f"{area}/cks/run.root",
        "algorithm": "adler32",
        "value": adler,
        "size": len(data),
        "cached": False,
    }
    assert api(hub, "GET", f"checksum/{area}/cks/run.root", alice).json()["cached"] is True
    sha = api(hub, "GET", f"checksum/{area}/cks/run.root?algorithm=sha256", alice).json()
    assert sha["value"] == hashlib.sha256(data).hexdigest() and sha["cached"] is False
    # a new version of the file (other size and time): computed again, not the old answer
    time.sleep(1.1)  # XRootD's modification times are whole seconds
    assert api(hub, "PUT", f"files/{area}/cks/run.root?overwrite=1", alice, data=data[:-1]).status_code == 201
    again = api(hub, "GET", f"checksum/{area}/cks/run.root", alice).json()
    assert again["value"] == f"{zlib.adler32(data[:-1]) & 0xFFFFFFFF:08x}" and again["cached"] is False
    # refusals say why; bob asks for alice's file and is refused
    assert api(hub, "GET", f"checksum/{area}/cks/run.root?algorithm=md5", alice).status_code == 400
    assert api(hub, "GET", f"checksum/{area}/cks", alice).status_code == 409
    assert (
        api(hub, "GET", f"checksum/{area}/cks/run.root?user=inkt_alice", tokens["inkt_bob"]).status_code
        == 403
    )
    # the storage URL: root:// for XRootD, the path on the cluster for POSIX
    url = api(hub, "GET", f"stat/{area}/cks/run.root", alice).json()["url"]
    if area == "home":
        assert url == str(stored("inkt_alice", "cks/run.root")), url
    else:
        assert url == xrootd.url("/users/inkt_alice") + "/cks/run.root", url


FORGE = """
import os, sys
path, forged = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"TAMPERED", 0)  # same size, other bytes
st = os.fstat(fd)
# the stamp a cache kept beside the file would hold: this size and time, the old checksum
os.setxattr(fd, "user.ink.adler32", f"{st.st_size}:{st.st_mtime_ns}:{forged}".encode())
os.close(fd)
"""


def test_another_writer_cannot_plant_a_checksum(hub, tokens):
    """Bob may write alice's shared file (she made it 666). He changes its bytes and leaves a
    checksum beside it that matches its new size and time but the old content: alice must
    still get the checksum of what the file holds."""
    alice = tokens["inkt_alice"]
    original = b"the original data of alice\n" * 100
    assert api(hub, "PUT", "files/shared/alice-cks.txt?overwrite=1", alice, data=original).status_code == 201
    assert api(hub, "POST", "chmod/shared/alice-cks.txt", alice, json={"mode": 0o666}).status_code == 200
    first = api(hub, "GET", "checksum/shared/alice-cks.txt", alice).json()["value"]
    assert first == f"{zlib.adler32(original) & 0xFFFFFFFF:08x}"
    time.sleep(0.01)
    as_user("inkt_bob", sys.executable, "-c", FORGE, str(SHARED / "alice-cks.txt"), first)
    tampered = (SHARED / "alice-cks.txt").read_bytes()
    assert tampered != original and len(tampered) == len(original)
    again = api(hub, "GET", "checksum/shared/alice-cks.txt", alice).json()
    assert again["value"] == f"{zlib.adler32(tampered) & 0xFFFFFFFF:08x}", again
