#!/usr/bin/env python3
"""Scale-out on real Slurm: seconds from ``InkCluster.scale(N)`` to N Dask workers connected,
against N plain ``sbatch`` jobs of the same user to RUNNING in the same run (INK's overhead:
the jobs API, the batch runner, the worker's start and TLS handshake), and the throughput of a
map over M small ROOT files with 1 and with 2 workers. Run as root from the repo:

    /opt/ink/bin/python bench/scaleout.py [--runs 3] [--workers 2] [--files 40]

The client runs as the bench user (like a notebook in a session) with a token of the hub.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spawn import USER, sbatch_to_running, workspace  # noqa: E402 (bench/spawn.py)

from tests.conftest import site_config  # noqa: E402
from tests.helpers.hub import Hub  # noqa: E402
from tests.helpers.slurm import SlurmCluster  # noqa: E402
from tests.helpers.users import remove_user  # noqa: E402

# run as the bench user: times scale(N) -> N workers, then a map over the files with 1 and 2
CLIENT = """
import json, sys, time
from distributed import Client
from ink.dask import InkCluster

n, runs, files = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])

def entries(path):
    import uproot
    with uproot.open(path) as f:
        return int(f["events"]["x"].array(library="np").sum() > 0) + f["events"].num_entries

out = {"scale": [], "map": {}}
for _ in range(runs):
    with InkCluster(cores=1, memory="1G", walltime="30m") as cluster, Client(cluster) as client:
        started = time.monotonic()
        cluster.scale(n)
        client.wait_for_workers(n, timeout=300)
        out["scale"].append(time.monotonic() - started)
        for workers in (1, n):
            cluster.scale(workers)
            client.wait_for_workers(workers, timeout=300)
            while len(client.scheduler_info()["workers"]) > workers:
                time.sleep(0.2)
            started = time.monotonic()
            total = sum(client.gather(client.map(entries, files, pure=False)))
            out["map"].setdefault(str(workers), []).append(len(files) / (time.monotonic() - started))
print(json.dumps(out))
"""


def write_files(folder: Path, count: int) -> list[str]:
    import numpy as np
    import uproot

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = folder / f"f{i}.root"
        with uproot.recreate(path) as f:
            f["events"] = {"x": rng.random(20_000)}
        paths.append(str(path))
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(folder)], check=True)
    return paths


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()
    work, profiles = workspace()
    cluster = hub = None
    try:
        cluster = SlurmCluster(work / "slurm").start()
        site = site_config({"type": "slurm", "options": {"slurm_conf": str(cluster.conf)}})
        site["paths"]["profiles"] = str(profiles)
        hub = Hub(work / "ink", site).start()
        token = hub.user_token(USER)
        files = write_files(Path(f"/home/{USER}/bench-scaleout"), args.files)
        sbatch = [sbatch_to_running(cluster, args.workers) for _ in range(args.runs)]
        env = [f"INK_HUB={hub.url}", f"INK_TOKEN={token}", f"HOME=/home/{USER}", f"USER={USER}"]
        client = subprocess.run(
            ["runuser", "-u", USER, "--", "env", *env, sys.executable, "-c", CLIENT]
            + [str(args.workers), str(args.runs), json.dumps(files)],
            capture_output=True,
            text=True,
            cwd="/tmp",
            timeout=1800,
        )
        if client.returncode != 0:
            sys.exit(f"the client failed:\n{client.stderr[-3000:]}")
        result = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        if hub:
            hub.stop()
        if cluster:
            cluster.stop()
        subprocess.run(["pkill", "-u", USER], check=False)
        remove_user(USER)
        shutil.rmtree(work, ignore_errors=True)

    n = args.workers
    scale, plain = statistics.median(result["scale"]), statistics.median(sbatch)
    print(f"\nscale-out on one-node Slurm, median of {args.runs} runs (seconds)")
    print(f"{'what':52} {'median':>8} {'min':>8} {'max':>8}")
    print(
        f"{f'{n} plain sbatch jobs -> RUNNING (same user)':52} {plain:8.2f} {min(sbatch):8.2f} {max(sbatch):8.2f}"
    )
    s = result["scale"]
    print(f"{f'InkCluster.scale({n}) -> {n} workers connected':52} {scale:8.2f} {min(s):8.2f} {max(s):8.2f}")
    print(f"{'INK overhead (scale - sbatch; goal <= 1 s)':52} {scale - plain:8.2f}")
    print(f"\nmap over {args.files} small ROOT files (files per second, median)")
    for workers, rates in sorted(result["map"].items()):
        print(f"{f'{workers} worker(s)':52} {statistics.median(rates):8.1f}")


if __name__ == "__main__":
    main()
