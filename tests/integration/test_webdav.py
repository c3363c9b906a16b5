"""WebDAV on the user's storage areas (``/services/ink-files/dav/``) through a real hub, as real
Unix users: the litmus suite, real clients (rclone, davfs2), other users' tokens, hostile paths
and Destination headers, locks between users, a streamed listing, and an XRootD area."""

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.hub import login_session
from tests.helpers.storagehub import start_storage_hub

DAV = "/services/ink-files/dav/"
SHARED = Path("/srv/inkt-dav-shared")
PROPFIND_NAMES = (
    b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/><resourcetype/></prop></propfind>'
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, unix_users, profiles_dir, kdc, xrootd):
    server = start_storage_hub(
        tmp_path_factory.mktemp("dav-hub"), unix_users, profiles_dir, kdc, xrootd, SHARED
    )
    yield server
    server.stop()
    shutil.rmtree(SHARED, ignore_errors=True)


def home(name) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)


def dav(hub, method, path, user, token, **kwargs):
    """A WebDAV request with HTTP Basic: the hub name and an API token as the password."""
    return requests.request(method, f"{hub.url}{DAV}{path}", auth=(user, token), timeout=120, **kwargs)


def as_user(name, *argv):
    subprocess.run(["runuser", "-u", name, "--", *argv], check=True)


def hrefs(answer: requests.Response) -> list[str]:
    return re.findall(r"<D:href>([^<]*)</D:href>", answer.text)


def litmus_summary(output: str) -> dict[str, tuple[int, int]]:
    """{group: (tests run, failed)} from litmus's summary lines."""
    found = re.findall(r"summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed", output)
    return {group: (int(run), int(failed)) for group, run, _passed, failed in found}


def test_litmus_passes_basic_copymove_props_and_locks(hub, tokens, tmp_path):
    """The WebDAV conformance suite, against alice's home."""
    as_user("inkt_alice", "rm", "-rf", str(home("inkt_alice") / "litmus"))
    result = subprocess.run(
        ["litmus", f"{hub.url}{DAV}home/", "inkt_alice", tokens["inkt_alice"]],
        env={**os.environ, "TESTS": "basic copymove props locks", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    (tmp_path / "litmus.out").write_text(output)
    summary = litmus_summary(output)
    assert set(summary) == {"basic", "copymove", "props", "locks"}, output[-3000:]
    failed = {group: f for group, (_, f) in summary.items() if f}
    assert not failed, output[-6000:]
    assert summary["locks"][0] >= 30 and summary["props"][0] >= 25, summary
    assert tokens["inkt_alice"] not in hub.log_text()  # the password never reaches a log


def sha256_tree(top: Path) -> dict[str, str]:
    return {
        str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(top.rglob("*"))
        if p.is_file()
    }


def test_rclone_syncs_a_thousand_files_up_and_back(hub, tokens, tmp_path):
    as_user("inkt_alice", "rm", "-rf", str(home("inkt_alice") / "rclone"))
    up = tmp_path / "up"
    for i in range(1000):
        folder = up / f"run{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"event{i:04d}.dat").write_bytes(os.urandom(256 + i * 7))
    (up / ".hidden").write_bytes(b"dotfiles travel too")
    obscured = subprocess.run(
        ["rclone", "obscure", tokens["inkt_alice"]], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_INK_TYPE": "webdav",
        "RCLONE_CONFIG_INK_URL": f"{hub.url}{DAV}home/",
        "RCLONE_CONFIG_INK_VENDOR": "other",
        "RCLONE_CONFIG_INK_USER": "inkt_alice",
        "RCLONE_CONFIG_INK_PASS": obscured,
    }

    def rclone(*argv):
        result = subprocess.run(["rclone", *argv], env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    started = time.monotonic()
    rclone("sync", str(up), "ink:rclone")
    uploaded = time.monotonic() - started
    stored = home("inkt_alice") / "rclone"
    assert sha256_tree(stored) == sha256_tree(up)
    assert {p.stat().st_uid for p in stored.rglob("*")} == {pwd.getpwnam("inkt_alice").pw_uid}
    down = tmp_path / "down"
    rclone("sync", "ink:rclone", str(down))
    assert sha256_tree(down) == sha256_tree(up)
    # a change and a removal travel on the next sync
    (up / "run3" / "event0003.dat").write_bytes(b"changed")
    (up / "run4" / "event0004.dat").unlink()
    rclone("sync", str(up), "ink:rclone")
    assert (stored / "run3" / "event0003.dat").read_bytes() == b"changed"
    assert not (stored / "run4" / "event0004.dat").exists()
    print(f"rclone: 1,000 files up in {uploaded:.1f} s")


def test_davfs2_mounts_a_home(hub, tokens, tmp_path):
    mount = tmp_path / "mnt"
    mount.mkdir()
    secrets = tmp_path / "secrets"
    url = f"{hub.url}{DAV}home/"
    secrets.write_text(f'"{url}" inkt_alice {tokens["inkt_alice"]}\n')
    secrets.chmod(0o600)
    conf = tmp_path / "davfs2.conf"
    conf.write_text(f"secrets {secrets}\ndelay_upload 0\nuse_locks 1\n")
    as_user("inkt_alice", "rm", "-rf", str(home("inkt_alice") / "davfs"))
    mounted = subprocess.run(
        ["mount", "-t", "davfs", url, str(mount), "-o", f"conf={conf}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert mounted.returncode == 0, mounted.stderr
    try:
        (mount / "davfs").mkdir()
        data = os.urandom(3 * 1024 * 1024 + 5)
        source = tmp_path / "data.bin"
        source.write_bytes(data)
        subprocess.run(["cp", str(source), str(mount / "davfs" / "copied.bin")], check=True)
        (mount / "davfs" / "gone.txt").write_text("to be removed")
        # ls of the files (davfs2 1.6.1's readdir fails on this kernel with any server, rclone's
        # own WebDAV server too: "reading directory: Invalid argument"; names are looked up)
        listed = subprocess.run(
            ["ls", "-l", str(mount / "davfs" / "copied.bin"), str(mount / "davfs" / "gone.txt")],
            capture_output=True,
            text=True,
        )
        assert listed.returncode == 0, listed.stderr
        assert f" {len(data)} " in listed.stdout.splitlines()[0]
        subprocess.run(["rm", str(mount / "davfs" / "gone.txt")], check=True)
        assert subprocess.run(["ls", str(mount / "davfs" / "gone.txt")], capture_output=True).returncode == 2
        subprocess.run(["sync"], check=True)
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=120)
    stored = home("inkt_alice") / "davfs"
    assert sorted(p.name for p in stored.iterdir()) == ["copied.bin"]
    assert (stored / "copied.bin").read_bytes() == data
    assert (stored / "copied.bin").stat().st_uid == pwd.getpwnam("inkt_alice").pw_uid


def test_other_users_and_missing_credentials_see_nothing(hub, tokens, unix_users):
    alice, bob = tokens["inkt_alice"], tokens["inkt_bob"]
    as_user("inkt_alice", "sh", "-c", f"echo secret > {home('inkt_alice')}/alice-only.txt")
    r = requests.request("PROPFIND", f"{hub.url}{DAV}home/", headers={"Depth": "1"}, timeout=30)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    # bob's token under alice's name, a wrong token, a token as someone else's password
    for user, token in (("inkt_alice", bob), ("inkt_alice", "not-a-token"), ("inkt_bob", alice)):
        r = dav(hub, "GET", "home/alice-only.txt", user, token)
        assert r.status_code == 401, (user, r.status_code)
        assert "secret" not in r.text
    # bob with his own token sees his own home, where alice's file is not
    r = dav(hub, "GET", "home/alice-only.txt", "inkt_bob", bob)
    assert r.status_code == 404
    r = dav(hub, "PROPFIND", "home/", "inkt_bob", bob, headers={"Depth": "1"})
    assert r.status_code == 207 and "alice-only" not in r.text
    # a browser's cookies count for nothing here (no XSRF can be forged with them)
    session, _ = login_session(hub, "inkt_bob", unix_users["inkt_bob"], "/services/ink-files/")
    r = session.request("PROPFIND", f"{hub.url}{DAV}home/", headers={"Depth": "0"}, timeout=30)
    assert r.status_code == 401
    # scopes: a read-only token reads but cannot write; a jobs-only token cannot read
    read_only = hub.api(
        "POST",
        "/users/inkt_alice/tokens",
        json={"scopes": ["custom:ink:files:read", "access:services!service=ink-files"]},
    ).json()["token"]
    assert dav(hub, "GET", "home/alice-only.txt", "inkt_alice", read_only).text == "secret\n"
    r = dav(hub, "PUT", "home/ro.txt", "inkt_alice", read_only, data=b"x")
    assert r.status_code == 403 and "custom:ink:files:write" in r.json()["message"]
    assert not (home("inkt_alice") / "ro.txt").exists()
    jobs_only = hub.api(
        "POST", "/users/inkt_alice/tokens", json={"scopes": ["custom:ink:jobs:read", "access:services"]}
    ).json()["token"]
    assert dav(hub, "PROPFIND", "home/", "inkt_alice", jobs_only, headers={"Depth": "0"}).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "home/%2e%2e/inkt_bob/x.txt",
        "home/a/%2E%2E/%2e%2e/etc/passwd",
        "home/..%2F..%2Fetc/passwd",
        "%2Fetc/passwd",
    ],
)
def test_encoded_escapes_are_refused(hub, tokens, path):
    for method in ("GET", "PUT", "PROPFIND", "DELETE", "MKCOL"):
        r = dav(hub, method, path, "inkt_alice", tokens["inkt_alice"], data=b"x" if method == "PUT" else None)
        assert r.status_code in (400, 403, 404), (method, path, r.status_code)
    assert not Path("/etc/x.txt").exists() and not (home("inkt_bob") / "x.txt").exists()


def test_symlinks_out_and_destinations_elsewhere_are_refused(hub, tokens):
    alice = tokens["inkt_alice"]
    mine = home("inkt_alice")
    as_user("inkt_alice", "rm", "-rf", str(mine / "hostile"))
    as_user("inkt_alice", "mkdir", str(mine / "hostile"))
    as_user("inkt_alice", "ln", "-s", "/etc", str(mine / "hostile" / "etc"))
    as_user("inkt_alice", "ln", "-s", str(home("inkt_bob")), str(mine / "hostile" / "bob"))
    as_user("inkt_alice", "sh", "-c", f"echo mine > {mine}/hostile/mine.txt")
    for path in ("hostile/etc/passwd", "hostile/bob/", "hostile/etc"):
        for method in ("GET", "PROPFIND", "PUT", "DELETE"):
            body = b"x" if method == "PUT" else None
            r = dav(hub, method, f"home/{path}", "inkt_alice", alice, headers={"Depth": "0"}, data=body)
            assert r.status_code == 403, (method, path, r.status_code)
    # a listing names the links, never what they point to
    r = dav(hub, "PROPFIND", "home/hostile/", "inkt_alice", alice, headers={"Depth": "1"})
    assert r.status_code == 207 and "passwd" not in r.text and "mine.txt" in r.text
    assert os.path.islink(mine / "hostile" / "etc")
    outside = [
        "/etc/evil.txt",  # not a WebDAV URL
        f"{DAV}../api/v1/files/home/x.txt",  # out of dav/ by a dot-dot
        f"{DAV}home/%2e%2e/%2e%2e/tmp/evil.txt",  # an encoded dot-dot
        f"{DAV}home/hostile/bob/evil.txt",  # through a symlink into bob's home
        f"{DAV}home/hostile/etc/evil.txt",
        "http://elsewhere.example/services/ink-files/dav/home/evil.txt",  # another server
        f"{DAV}",  # the folder of areas itself
    ]
    for destination in outside:
        for method in ("COPY", "MOVE"):
            r = dav(
                hub,
                method,
                "home/hostile/mine.txt",
                "inkt_alice",
                alice,
                headers={"Destination": destination},
            )
            assert r.status_code in (400, 403, 409, 502), (method, destination, r.status_code)
    assert (mine / "hostile" / "mine.txt").read_text() == "mine\n"
    assert not (home("inkt_bob") / "evil.txt").exists() and not Path("/etc/evil.txt").exists()
    assert not Path("/tmp/evil.txt").exists()


def test_locks_hold_between_users_in_a_shared_area(hub, tokens):
    alice, bob = tokens["inkt_alice"], tokens["inkt_bob"]
    assert dav(hub, "PUT", "shared/report.txt", "inkt_alice", alice, data=b"v1").status_code in (201, 204)
    body = (
        b'<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope>'
        b"<locktype><write/></locktype><owner>alice</owner></lockinfo>"
    )
    r = dav(
        hub, "LOCK", "shared/report.txt", "inkt_alice", alice, data=body, headers={"Timeout": "Second-60"}
    )
    assert r.status_code == 200, r.text
    token = r.headers["Lock-Token"].strip("<>")
    # bob may not write, delete, move or unlock it, even naming alice's lock token
    bad_if = {"If": f"(<{token}>)"}
    assert dav(hub, "PUT", "shared/report.txt", "inkt_bob", bob, data=b"bob's").status_code == 423
    assert (
        dav(hub, "PUT", "shared/report.txt", "inkt_bob", bob, data=b"bob's", headers=bad_if).status_code
        == 423
    )
    assert dav(hub, "DELETE", "shared/report.txt", "inkt_bob", bob).status_code == 423
    r = dav(hub, "UNLOCK", "shared/report.txt", "inkt_bob", bob, headers={"Lock-Token": f"<{token}>"})
    assert r.status_code == 403
    assert (SHARED / "report.txt").read_bytes() == b"v1"
    # bob sees the lock, alice writes with her token and unlocks
    r = dav(hub, "PROPFIND", "shared/report.txt", "inkt_bob", bob, headers={"Depth": "0"})
    assert token in r.text
    r = dav(hub, "PUT", "shared/report.txt", "inkt_alice", alice, data=b"v2", headers=bad_if)
    assert r.status_code == 204
    r = dav(hub, "UNLOCK", "shared/report.txt", "inkt_alice", alice, headers={"Lock-Token": f"<{token}>"})
    assert r.status_code == 204
    assert dav(hub, "PUT", "shared/report.txt", "inkt_bob", bob, data=b"v3").status_code in (204, 403)


def test_a_big_listing_streams_page_by_page(hub, tokens):
    """PROPFIND depth 1 of a folder of several worker pages: every entry once, sent chunked
    (streamed, never one answer held whole)."""
    count = 4321
    folder = home("inkt_alice") / "many"
    as_user("inkt_alice", "rm", "-rf", str(folder))
    as_user(
        "inkt_alice",
        "python3",
        "-c",
        f"import os\nos.mkdir({str(folder)!r})\n"
        f"for i in range({count}): open(os.path.join({str(folder)!r}, f'f{{i:05d}}.root'), 'w').close()",
    )
    r = dav(
        hub,
        "PROPFIND",
        "home/many/",
        "inkt_alice",
        tokens["inkt_alice"],
        headers={"Depth": "1"},
        data=PROPFIND_NAMES,
        stream=True,
    )
    assert r.status_code == 207
    assert r.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.headers
    r._content = r.raw.read()
    names = hrefs(r)
    assert names[0] == f"{DAV}home/many/"
    assert sorted(names[1:]) == [f"{DAV}home/many/f{i:05d}.root" for i in range(count)]
    assert (
        dav(
            hub, "PROPFIND", "home/many/", "inkt_alice", tokens["inkt_alice"], headers={"Depth": "infinity"}
        ).status_code
        == 403
    )


def test_an_xrootd_area_over_webdav(hub, tokens, xrootd):
    alice = tokens["inkt_alice"]
    dav(hub, "DELETE", "eos/davx/", "inkt_alice", alice)
    assert dav(hub, "MKCOL", "eos/davx/", "inkt_alice", alice).status_code == 201
    data = os.urandom(2 * 1024 * 1024 + 3)
    assert dav(hub, "PUT", "eos/davx/a.bin", "inkt_alice", alice, data=data).status_code == 201
    assert (xrootd.data / "users" / "inkt_alice" / "davx" / "a.bin").read_bytes() == data
    r = dav(hub, "GET", "eos/davx/a.bin", "inkt_alice", alice, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    r = dav(
        hub, "MOVE", "eos/davx/a.bin", "inkt_alice", alice, headers={"Destination": f"{DAV}eos/davx/b.bin"}
    )
    assert r.status_code == 201
    r = dav(hub, "PROPFIND", "eos/davx/", "inkt_alice", alice, headers={"Depth": "1"})
    assert r.status_code == 207 and hrefs(r) == [f"{DAV}eos/davx/", f"{DAV}eos/davx/b.bin"]
    assert f"<D:getcontentlength>{len(data)}</D:getcontentlength>" in r.text
    # custom properties need a file system that keeps them: refused, said per property
    body = b'<?xml version="1.0"?><propertyupdate xmlns="DAV:" xmlns:x="urn:x"><set><prop><x:a>1</x:a></prop></set></propertyupdate>'
    r = dav(hub, "PROPPATCH", "eos/davx/b.bin", "inkt_alice", alice, data=body)
    assert r.status_code == 207 and "HTTP/1.1 403" in r.text
    # bob's ticket does not open alice's XRootD folder through his own areas
    assert dav(hub, "GET", "eos/davx/b.bin", "inkt_bob", tokens["inkt_bob"]).status_code == 404
    # between kinds of storage WebDAV moves nothing (that is a transfer)
    r = dav(hub, "COPY", "eos/davx/b.bin", "inkt_alice", alice, headers={"Destination": f"{DAV}home/b.bin"})
    assert r.status_code == 502 and not (home("inkt_alice") / "b.bin").exists()
    assert dav(hub, "DELETE", "eos/davx/", "inkt_alice", alice).status_code == 204
