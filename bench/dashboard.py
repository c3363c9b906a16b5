#!/usr/bin/env python3
"""Dashboard API latency with many users and running jobs (target: < 200 ms per answer with
200 users and 300 running jobs), beside the hub's own REST API the dashboard builds on.

    /opt/ink/bin/python bench/dashboard.py [--users 200] [--jobs 300]

Runs as root: the jobs are real processes (sleep) started by the test schedd as a test user,
and the hub uses the HTCondor backend against it, so queue_stats() counts all of them.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import htcondor2  # noqa: E402

from tests.conftest import FIXTURES, condor_backend, site_config  # noqa: E402
from tests.helpers import condor  # noqa: E402
from tests.helpers.hub import Hub  # noqa: E402
from tests.helpers.net import wait_for  # noqa: E402
from tests.helpers.users import ensure_user, remove_user  # noqa: E402

USER = "inkt_bench"


def timed_get(url, token, n=1):
    durations = []
    for _ in range(n):
        start = time.perf_counter()
        r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
        durations.append(time.perf_counter() - start)
        assert r.status_code == 200, r.text
    return durations


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    ensure_user(USER)
    work = Path(tempfile.mkdtemp(prefix="ink-bench-dash-"))
    work.chmod(0o755)
    slots = [condor.slot(i, Cpus=1, Memory=64) for i in range(1, args.jobs + 1)]
    schedd = condor.MiniPoolProcess(work, slots=slots).start()
    os.environ["INK_TEST_SCHEDD"] = schedd.url
    hub = None
    try:
        client = schedd.client()
        for _ in range(args.jobs):
            client.submit(
                htcondor2.Submit(
                    {
                        "executable": "/bin/sleep",
                        "arguments": "3600",
                        "request_memory": "10",
                        "request_cpus": "1",
                        "My.InkApp": '"jupyterlab"',
                        "My.Owner": json.dumps(USER),
                        "output": "/dev/null",
                    }
                )
            )
        wait_for(
            lambda: len(client.query("JobStatus == 2", ["ClusterId"])) == args.jobs, 120, what="jobs running"
        )
        profiles = work / "profiles"
        shutil.copytree(FIXTURES / "profiles", profiles)
        site = site_config(condor_backend())
        site["paths"]["profiles"] = str(profiles)
        # bench users are hub users only (PAM would want 200 Unix accounts)
        site["authenticator"] = {"type": "shared-password", "admin_users": ["benchadmin"]}
        hub = Hub(work / "hub", site).start()
        names = [f"bench{i:03d}" for i in range(args.users)]
        hub.api("POST", "/users", json={"usernames": names})
        tokens = [hub.user_token(n) for n in names]
        summary = f"{hub.url}/services/ink-dashboard/api/summary"
        wait_for(
            lambda: (
                requests.get(summary, headers={"Authorization": f"token {tokens[0]}"}, timeout=10).json()[
                    "cluster"
                ]["running"]
                == args.jobs
            ),
            60,
            what="queue_stats",
        )
        ink, stock = [], []
        for name, token in zip(names, tokens, strict=True):
            ink += timed_get(summary, token)
            stock += timed_get(f"{hub.url}/hub/api/users/{name}", token)
    finally:
        if hub:
            hub.stop()
        schedd.stop()
        remove_user(USER)
        shutil.rmtree(work, ignore_errors=True)

    def row(label, values):
        ms = sorted(v * 1000 for v in values)
        p95 = ms[int(len(ms) * 0.95) - 1]
        print(f"{label:48} {statistics.median(ms):8.1f} {p95:8.1f} {ms[-1]:8.1f}")

    print(f"\n{args.users} users, {args.jobs} running jobs (test schedd), one request per user, ms")
    print(f"{'what':48} {'median':>8} {'p95':>8} {'max':>8}")
    row("INK dashboard GET api/summary", ink)
    row("JupyterHub GET /hub/api/users/{name} (peer)", stock)
    print(f"ratio of medians INK/peer: {statistics.median(ink) / statistics.median(stock):.2f}")


if __name__ == "__main__":
    main()
