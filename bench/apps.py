#!/usr/bin/env python3
"""Start time of each app, from the spawn request (the card's click) to the app answering
through the hub's proxy, on the local backend (and Slurm with --slurm). Prints a table.

    /opt/ink/bin/python bench/apps.py [--runs 3] [--slurm]

Runs as root: the jobs are real processes of a test user.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import FIXTURES, site_config  # noqa: E402
from tests.helpers.hub import Hub  # noqa: E402
from tests.helpers.net import wait_for  # noqa: E402
from tests.helpers.slurm import SlurmCluster  # noqa: E402
from tests.helpers.users import ensure_user, remove_user  # noqa: E402

USER = "inkt_alice"  # the test site's juno member, allowed every app
APPS = {  # app -> what must answer 200 before a user can work in it
    "jupyterlab": "lab",
    "rootbrowser": "rootbrowser/api/files",
    "desktop": "desktop/vnc.html",
    "vscode": "vscode/",  # code-server's workbench page (scripts/install-code-server)
}


def start_time(hub: Hub, token: str, app: str) -> float:
    headers = {"Authorization": f"token {token}"}
    started = time.monotonic()
    r = hub.api("POST", f"/users/{USER}/server", token=token, json={"app": app})
    assert r.status_code in (201, 202), r.text
    url = hub.user_url(USER) + APPS[app]  # on the user's own origin
    wait_for(lambda: requests.get(url, headers=headers, timeout=10).status_code == 200, 300, interval=0.1)
    elapsed = time.monotonic() - started
    hub.api("DELETE", f"/users/{USER}/server", token=token)
    hub.wait_stopped(USER, token)
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slurm", action="store_true")
    args = parser.parse_args()
    ensure_user(USER)
    work = Path(tempfile.mkdtemp(prefix="ink-bench-apps-"))
    work.chmod(0o755)
    shutil.copytree(FIXTURES / "profiles", work / "profiles")
    backends = {"local": {"type": "local"}}
    cluster = None
    if args.slurm:
        (work / "slurm").mkdir(mode=0o755)
        cluster = SlurmCluster(work / "slurm").start()
        backends["slurm"] = {"type": "slurm", "options": {"slurm_conf": str(cluster.conf)}}
    results = {}
    try:
        for name, backend in backends.items():
            site = site_config(backend)
            site["paths"]["profiles"] = str(work / "profiles")
            hub = Hub(work / f"hub-{name}", site).start()
            try:
                token = hub.user_token(USER)
                for app in APPS:
                    results[(name, app)] = [start_time(hub, token, app) for _ in range(args.runs)]
            finally:
                hub.stop()
    finally:
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
        remove_user(USER)
    print(f"\napp start: spawn request -> app answering through the hub's proxy, s ({args.runs} runs)")
    print(f"{'backend':8} {'app':12} {'median':>7} {'min':>7} {'max':>7}")
    for (backend, app), times in results.items():
        print(f"{backend:8} {app:12} {statistics.median(times):7.2f} {min(times):7.2f} {max(times):7.2f}")


if __name__ == "__main__":
    main()
