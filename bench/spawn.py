#!/usr/bin/env python3
"""Click->ready: INK (local backend) vs stock JupyterHub's SimpleLocalProcessSpawner, the same
session in an OS image (the tests' Debian image, built here by mmdebstrap) against the host's OS,
and INK's overhead on Slurm over the job's own sbatch->RUNNING time. Run as root from the repo:

    /opt/ink/bin/python bench/spawn.py [--runs 5]

Prints a table of medians. Both hubs run in the same run with the same JupyterLab.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import FIXTURES, site_config  # noqa: E402
from tests.helpers.hub import Hub  # noqa: E402
from tests.helpers.images import build_image  # noqa: E402
from tests.helpers.net import wait_for  # noqa: E402
from tests.helpers.slurm import SlurmCluster  # noqa: E402
from tests.helpers.users import ensure_user, remove_user  # noqa: E402

USER = "inkt_bench"

STOCK_CONFIG = """
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = {proxy!r}
c.JupyterHub.db_url = "sqlite:///{dir}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie"
c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
c.Spawner.args = ["--allow-root"]
c.Spawner.default_url = "/lab"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.JupyterHub.services = [{{"name": "bench", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [{{"name": "bench", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["bench"]}}]
"""


class StockHub(Hub):
    def write(self):
        from ink_spawner.configurer import proxy_command

        self.config_file.write_text(
            STOCK_CONFIG.format(
                port=self.port,
                hub_port=self.hub_port,
                api_port=self.proxy_api_port,
                proxy=proxy_command(),
                dir=self.workdir,
                python=sys.executable,
                token=self.token,
            )
        )
        self.site["paths"]["state"] = str(self.workdir)


def spawn_time(hub: Hub, name: str, options: dict | None = None) -> float:
    token = hub.user_token(name)
    started = time.monotonic()
    r = hub.api("POST", f"/users/{name}/server", token=token, json=options or {})
    assert r.status_code in (201, 202), r.text

    def ready():
        entry = hub.api("GET", f"/users/{name}", token=token).json()["servers"].get("")
        return entry and entry.get("ready")

    wait_for(ready, 180, interval=0.05, what="ready")
    elapsed = time.monotonic() - started
    hub.api("DELETE", f"/users/{name}/server", token=token)
    hub.wait_stopped(name, token)
    return elapsed


def sbatch_to_running(cluster: SlurmCluster, jobs: int = 1) -> float:
    """Seconds from submitting ``jobs`` plain sbatch jobs of the bench user (one after the
    other) to all of them RUNNING; then they are cancelled."""
    started = time.monotonic()
    ids = []
    for _ in range(jobs):
        out = cluster.run(
            ["runuser", "-u", USER, "--", "env", f"SLURM_CONF={cluster.conf}", "sbatch", "--parsable"]
            + ["--mem=1G", "--output=/dev/null", "--chdir=/tmp", "--wrap", "sleep 60"]
        )
        ids.append(out.stdout.strip().split(";")[0])
        if not ids[-1]:
            raise RuntimeError(f"sbatch failed: {out.stderr}")

    def all_running():
        states = cluster.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%T"]).stdout.split()
        return len(states) == jobs and set(states) == {"RUNNING"}

    wait_for(all_running, 120, interval=0.05, what="RUNNING")
    elapsed = time.monotonic() - started
    cluster.run(["scancel", *ids])
    return elapsed


def workspace() -> tuple[Path, Path]:
    """As root: the bench user, a scratch folder every user can read, the test profiles in it."""
    if os.geteuid() != 0:
        sys.exit("run as root: INK starts jobs as a real Unix user")
    ensure_user(USER)
    work = Path(tempfile.mkdtemp(prefix="ink-bench-"))
    work.chmod(0o755)
    shutil.copytree(FIXTURES / "profiles", work / "profiles")
    return work, work / "profiles"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work, profiles = workspace()
    results = {"stock": [], "ink_local": [], "ink_image": [], "ink_slurm": [], "sbatch_running": []}
    hubs = []
    cluster = None
    try:
        rootfs = build_image(work / "image")
        images = profiles / "images.yaml"
        images.write_text(
            images.read_text()
            + f"  testimage:\n    display_name: Debian 12 test image\n    rootfs: {rootfs}\n"
        )
        site = site_config({"type": "local"})
        site["paths"]["profiles"] = str(profiles)
        site["default_allowance"]["images"] = ["host", "testimage"]
        ink = Hub(work / "ink", site).start()
        hubs.append(ink)
        stock = StockHub(work / "stock", {"paths": {}}).start()
        hubs.append(stock)
        for _ in range(args.runs):  # alternate so that machine noise hits both alike
            results["stock"].append(spawn_time(stock, USER))
            results["ink_local"].append(spawn_time(ink, USER))
            results["ink_image"].append(spawn_time(ink, USER, {"image": "testimage"}))
        ink.stop()
        cluster = SlurmCluster(work / "slurm").start()
        site = site_config({"type": "slurm", "options": {"slurm_conf": str(cluster.conf)}})
        site["paths"]["profiles"] = str(profiles)
        ink_slurm = Hub(work / "ink-slurm", site).start()
        hubs.append(ink_slurm)
        for _ in range(args.runs):
            results["sbatch_running"].append(sbatch_to_running(cluster))
            results["ink_slurm"].append(spawn_time(ink_slurm, USER))
    finally:
        for hub in hubs:
            hub.stop()
        if cluster:
            cluster.stop()
        subprocess.run(["pkill", "-u", USER], check=False)
        remove_user(USER)
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    overhead = med["ink_slurm"] - med["sbatch_running"] - med["ink_local"]
    print(f"\nclick->ready, median of {args.runs} runs (seconds)")
    print(f"{'what':48} {'median':>8} {'min':>8} {'max':>8}")
    for key, label in [
        ("stock", "stock JupyterHub SimpleLocalProcessSpawner"),
        ("ink_local", "INK local backend"),
        ("ink_image", "INK local backend, in the OS image"),
        ("sbatch_running", "plain sbatch -> RUNNING (same user)"),
        ("ink_slurm", "INK Slurm backend"),
    ]:
        v = results[key]
        print(f"{label:48} {med[key]:8.2f} {min(v):8.2f} {max(v):8.2f}")
    print(f"{'INK local / stock (target <= 1.05)':48} {med['ink_local'] / med['stock']:8.2f}")
    print(f"{'the OS image adds (image - host; goal <= 1 s)':48} {med['ink_image'] - med['ink_local']:8.2f}")
    print(f"{'INK Slurm overhead (slurm - sbatch - local; <= 1 s)':48} {overhead:8.2f}")


if __name__ == "__main__":
    main()
