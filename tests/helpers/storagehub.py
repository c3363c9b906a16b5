"""A hub whose file service has a home, a shared folder and an XRootD area, with every test
user logged in by password (which gives INK the Kerberos ticket XRootD wants)."""

import shutil
import tempfile
from pathlib import Path

from tests.conftest import USERS, kerberos_site, site_config

from .hub import Hub, login_session
from .xrootd import XRootD


def start_xrootd(kdc) -> XRootD:
    root = Path(tempfile.mkdtemp(prefix="ink-xrootd-"))
    return XRootD(root, kdc, USERS).start()


def stop_xrootd(server: XRootD) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def start_storage_hub(workdir: Path, unix_users, profiles_dir, kdc, xrootd, shared: Path, **files) -> Hub:
    shared.mkdir(parents=True, exist_ok=True)
    shared.chmod(0o1777)
    site = kerberos_site(site_config({"type": "local"}), kdc)
    site["paths"]["profiles"] = str(profiles_dir)
    site["files"] = {
        "port": site["files"]["port"],
        "areas": {
            "home": "{home}",
            "shared": str(shared),
            "eos": {"type": "xrootd", "url": xrootd.url("/users/{username}")},
        },
        "max_upload": "2G",
        **files,
    }
    # a sync makes one request per file: the test site lets 1,000 files through at once
    site["api"] = {"rate_per_minute": 60000, "burst": 5000}
    server = Hub(workdir, site).start()
    for name in USERS:
        login_session(server, name, unix_users[name], "/services/ink-files/")
    return server
