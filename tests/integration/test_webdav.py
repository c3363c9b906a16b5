"""WebDAV on the user's storage areas (``/services/ink-files/dav/``) through a real hub, as real
Unix users: the litmus suite, real clients (rclone, davfs2), other users' tokens, hostile paths
and Destination headers, locks between users, a streamed listing, and an XRootD area."""

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import USERS, kerberos_site, site_config
from tests.helpers.hub import Hub, login_session
from tests.helpers.users import ensure_user, remove_user
from tests.helpers.xrootd import XRootD

DAV = "/services/ink-files/dav/"
SHARED = Path("/srv/inkt-dav-shared")
PROPFIND_NAMES = b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/><resourcetype/></prop></propfind>'


@pytest.fixture(scope="module")
def xrootd(kdc):
    root = Path(tempfile.mkdtemp(prefix="ink-dav-xrootd-"))
    server = XRootD(root, kdc, USERS).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, unix_users, profiles_dir, kdc, xrootd):
    SHARED.mkdir(parents=True, exist_ok=True)
    SHARED.chmod(0o1777)
    site = kerberos_site(site_config({"type": "local"}), kdc)
    site["paths"]["profiles"] = str(profiles_dir)
    site["files"] = {
        "port": site["files"]["port"],
        "areas": {
            "home": "{home}",
            "shared": str(SHARED),
            "eos": {"type": "xrootd", "url": xrootd.url("/users/{username}")},
        },
        "max_upload": "256M",
    }
    # a sync makes one request per file: the test site lets 1,000 files through at once
    site["api"] = {"rate_per_minute": 60000, "burst": 5000}
    server = Hub(tmp_path_factory.mktemp("dav-hub"), site).start()
    for name in USERS:  # a password login gives INK the Kerberos ticket XRootD wants
        login_session(server, name, unix_users[name], "/services/ink-files/")
    yield server
    server.stop()
    shutil.rmtree(SHARED, ignore_errors=True)


@pytest.fixture(scope="module")
def tokens(hub):
    return {name: hub.user_token(name) for name in USERS}


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
