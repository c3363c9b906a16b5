"""Dask from a session: alice's JupyterLab makes an InkCluster whose two workers are batch jobs
of the site's backend (real Slurm, the local backend, the test schedd), run as alice; the
histogram it computes over ROOT files equals the one computed here. Bob, on the same machine,
can neither read the cluster's key nor complete a handshake with its scheduler; the allowance's
batch limit refuses a third job; stopping the session cancels the workers."""

import json
import pwd
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
import uproot
from playwright.sync_api import expect

from tests.conftest import condor_backend
from tests.helpers.browser import open_home_frame
from tests.helpers.condor import slot
from tests.helpers.hub import spawn_and_wait
from tests.helpers.kernel import Kernel
from tests.helpers.net import wait_for
from tests.integration.test_dashboard import summary

USER = "inkt_alice"
API = "/services/ink-jobs/api/v1/"
BINS, RANGE = 20, (0.0, 1.0)

CELL = """
import json, os
from distributed import Client
from ink.dask import InkCluster

cluster = InkCluster(cores=1, memory="1G", walltime="20m")
cluster.scale(2)
client = Client(cluster)
client.wait_for_workers(2, timeout=240)

def histogram(path):
    import numpy as np, uproot
    with uproot.open(path) as f:
        return np.histogram(f["events"]["x"].array(library="np"), bins=BINS, range=RANGE)[0]

counts = sum(client.gather(client.map(histogram, PATHS)))
print(json.dumps({
    "counts": counts.tolist(),
    "jobs": cluster.worker_jobs,
    "uids": sorted(set(client.run(os.getuid).values())),
    "address": cluster.scheduler_address,
    "pid": os.getpid(),
    "tls_dir": str(cluster.tls_dir),
    "dashboard": cluster.dashboard_link,
    "experiment_env": os.environ.get("INK_EXPERIMENT_NAME"),
    "ink_settings": sorted(k for k in os.environ if k.startswith("INK_") and k != "INK_EXPERIMENT_NAME"),
}))
"""

# bob's attempts: without TLS, and with a key of his own (the scheduler wants alice's cluster's)
BOB = """
import sys
from distributed import Client
from distributed.security import Security
address = sys.argv[1]
for label, kwargs in (("plain", {}), ("own-key", {"security": Security.temporary()})):
    target = address if kwargs else address.replace("tls://", "tcp://")
    try:
        Client(target, timeout=8, **kwargs).close()
        print(label, "CONNECTED")
    except Exception as e:
        print(label, "refused", type(e).__name__)
"""


def write_root_files(home: Path) -> tuple[list[str], np.ndarray]:
    account = pwd.getpwnam(USER)
    folder = home / "dask-data"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    paths, expected = [], np.zeros(BINS, dtype=np.int64)
    for i in range(3):
        x = rng.random(5000 + 1000 * i)
        path = folder / f"part{i}.root"
        with uproot.recreate(path) as f:
            f["events"] = {"x": x}
        path.chmod(0o644)
        paths.append(str(path))
        expected += np.histogram(x, bins=BINS, range=RANGE)[0]
    for item in (folder, *folder.iterdir()):
        subprocess.run(["chown", f"{account.pw_uid}:{account.pw_gid}", str(item)], check=True)
    return paths, expected


def jobs_api(hub, method, path, token, **kwargs):
    return requests.request(
        method, f"{hub.url}{API}{path}", headers={"Authorization": f"token {token}"}, timeout=60, **kwargs
    )


def limit_batch_jobs(site):
    site["experiments"]["juno"]["allowance"]["max_batch_jobs"] = 2
    return site


@pytest.fixture(params=["slurm", "local", "htcondor"])
def dask_hub(request, make_hub):
    if request.param == "slurm":
        slurm = request.getfixturevalue("slurm")
        backend = {"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}}
        return make_hub(backend, adjust=limit_batch_jobs), slurm
    if request.param == "htcondor":
        request.getfixturevalue("make_pool")(slots=[slot(1), slot(2), slot(3)])  # session + 2 workers
        return make_hub(condor_backend(), adjust=limit_batch_jobs), None
    return make_hub({"type": "local"}, adjust=limit_batch_jobs), None


def test_a_session_fans_out_with_dask_and_takes_its_workers_along(dask_hub, unix_users, request, output_dir):
    hub, slurm = dask_hub
    alice = hub.user_token(USER)
    home = Path(pwd.getpwnam(USER).pw_dir)
    paths, expected = write_root_files(home)
    spawn_and_wait(hub, USER, alice, {"experiment": "juno", "memory": "2G"})
    kernel = Kernel(hub.user_url(USER), alice)
    code = CELL.replace("BINS", str(BINS)).replace("RANGE", repr(RANGE)).replace("PATHS", repr(paths))
    result = json.loads(kernel.run(code).strip().splitlines()[-1])

    # the answer is the one computed here, by workers running as alice
    assert result["counts"] == expected.tolist()
    # the session's code sees its experiment's own variables and, of INK's settings, only
    # what INK's client reads (ink_core/jobsettings.py)
    assert result["experiment_env"] == "JUNO", result
    assert set(result["ink_settings"]) <= {"INK_APP", "INK_HUB", "INK_IMAGE", "INK_EXPERIMENT"}, result
    assert result["uids"] == [pwd.getpwnam(USER).pw_uid]
    worker_jobs = sorted(result["jobs"].values())
    assert len(worker_jobs) == 2, result
    listed = {j["id"]: j for j in jobs_api(hub, "GET", "jobs", alice).json()["jobs"]}
    for job_id in worker_jobs:
        job = listed[job_id]
        assert job["state"] == "running" and job["session"] == "" and job["experiment"] == "juno", job
        assert job["name"].startswith("dask-") and job["resources"]["cpus"] == 1
    if slurm is not None:
        backend_ids = {listed[j]["backend_id"] for j in worker_jobs}
        running = {j[0] for j in slurm.squeue() if j[1] == USER and j[2] == "RUNNING"}
        assert backend_ids <= running, (backend_ids, slurm.squeue())

    # the dashboard shows them under the session: how many, their state, their node
    (row,) = summary(hub, alice)["servers"]
    assert sorted(w["id"] for w in row["workers"]) == worker_jobs, row
    assert {w["state"] for w in row["workers"]} == {"running"} and all(w["node"] for w in row["workers"]), row
    if slurm is None and "htcondor" not in hub.site["backend"]["type"]:  # once, in a real browser
        browser = request.getfixturevalue("browser")
        home, frame = open_home_frame(browser, hub, USER, unix_users[USER], output_dir, "ink-dashboard")
        workers = frame.locator("tr.ink-workers[data-server='']")
        expect(workers).to_have_attribute("data-running", "2")
        expect(workers).to_contain_text(f"Workers: 2 (2 running on {row['workers'][0]['node']}, 0 waiting)")
        home.screenshot(path=str(output_dir / "dashboard-workers.png"), full_page=True)
        home.close()

    # the batch limit (2 at once): a third job is refused with the reason
    r = jobs_api(hub, "POST", "jobs", alice, json={"command": ["/bin/true"], "experiment": "juno"})
    assert r.status_code == 400, r.text
    assert "at most 2 batch jobs pending or running at a time, and 2 are" in r.json()["message"]

    # beyond loopback (the kernel's own ZMQ ports, signed with its key), the scheduler's process
    # listens on its TLS port alone: its HTTP pages (worker logs, call stacks, metrics) are on
    # a Unix socket only alice may open, not on 8787 for anyone on the node
    port = int(result["address"].rsplit(":", 1)[1])
    sockets = psutil.Process(result["pid"]).net_connections("tcp")
    listening = {c.laddr.port for c in sockets if c.status == "LISTEN" and not c.laddr.ip.startswith("127.")}
    assert listening == {port}, listening
    pages = Path(result["tls_dir"]) / "http.sock"
    assert pages.is_socket() and pages.stat().st_mode & 0o777 == 0o600
    # which the session's server proxies through the hub, to alice alone
    dashboard = f"{hub.user_url(USER).split('/user/')[0]}{result['dashboard']}"
    assert result["dashboard"].endswith(f"/dask/dashboard/{Path(result['tls_dir']).name}/status")
    seen = requests.get(dashboard, headers={"Authorization": f"token {alice}"}, timeout=30)
    assert seen.status_code == 200 and "bokeh" in seen.text.lower(), seen.status_code
    theirs = requests.get(
        dashboard,
        headers={"Authorization": f"token {hub.user_token('inkt_bob')}"},
        timeout=30,
        allow_redirects=False,
    )
    assert theirs.status_code in (302, 403) and "bokeh" not in theirs.text.lower(), theirs.status_code

    # bob cannot read the cluster's key, nor connect with his own or none
    key = Path(result["tls_dir"]) / "key.pem"
    as_bob = subprocess.run(
        ["runuser", "-u", "inkt_bob", "--", "cat", str(key)], capture_output=True, text=True
    )
    assert as_bob.returncode != 0 and "Permission denied" in as_bob.stderr, as_bob
    bob = subprocess.run(
        ["runuser", "-u", "inkt_bob", "--", sys.executable, "-c", BOB, result["address"]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    lines = dict(
        line.split(" ", 1) for line in bob.stdout.splitlines() if line.startswith(("plain", "own-key"))
    )
    assert lines.get("plain", "").startswith("refused") and lines.get("own-key", "").startswith("refused"), (
        bob.stdout + bob.stderr[-2000:]
    )

    # bob cannot end them: his "cancel my session's jobs" finds none of alice's, acting for her
    # needs admin; alice's session token is hers alone (not bob's jobs, not acting for him)
    bob_token = hub.user_token("inkt_bob")
    r = jobs_api(hub, "DELETE", "jobs?session=", bob_token)
    assert r.status_code == 202 and r.json()["cancelled"] == [], r.text
    assert jobs_api(hub, "DELETE", f"jobs?session=&user={USER}", bob_token).status_code == 403
    session_token = psutil.Process(result["pid"]).environ()["JUPYTERHUB_API_TOKEN"]  # the kernel's
    assert jobs_api(hub, "GET", "jobs?user=inkt_bob", session_token).status_code == 403
    assert jobs_api(hub, "DELETE", "jobs?session=&user=inkt_bob", session_token).status_code == 403
    states = {j["id"]: j["state"] for j in jobs_api(hub, "GET", "jobs", alice).json()["jobs"]}
    assert [states[j] for j in worker_jobs] == ["running", "running"], states

    # the session's end takes its workers along (no close() in the notebook)
    assert hub.api("DELETE", f"/users/{USER}/server", token=alice).status_code in (202, 204)
    hub.wait_stopped(USER, alice)

    def all_cancelled():
        jobs = {j["id"]: j for j in jobs_api(hub, "GET", "jobs", alice).json()["jobs"]}
        return all(jobs[j]["state"] == "cancelled" for j in worker_jobs) and jobs

    wait_for(all_cancelled, 60, what="the workers' jobs to be cancelled")
    if slurm is not None:
        wait_for(lambda: not [j for j in slurm.squeue() if j[1] == USER], 60, what="squeue without alice")

    def worker_processes():
        found = subprocess.run(
            ["pgrep", "-u", USER, "-f", "distributed.cli.dask_worker"], capture_output=True
        )
        return found.stdout.decode()

    # removed jobs get SIGTERM, and a worker closes gracefully: gone within seconds
    wait_for(lambda: worker_processes() == "", 30, what="the worker processes to end")


ADAPT = """
import json, time
from distributed import Client
from ink.dask import InkCluster

cluster = InkCluster(cores=1, memory="1G", walltime="10m")
cluster.adapt(minimum=0, maximum=2, interval="500ms", wait_count=2, target_duration="1s")
client = Client(cluster)
answer = client.submit(lambda x: x * 7, 6).result(timeout=180)
started = dict(cluster.worker_jobs)
deadline = time.time() + 90
while cluster.workers and time.time() < deadline:   # idle: the adaptive policy retires them
    time.sleep(0.5)
left = len(cluster.workers)
client.close()
cluster.close()  # as a notebook's end does: the scheduler goes, and a worker still closing with it
print(json.dumps({"answer": answer, "started": started, "left": left}))
"""


def test_adaptive_scaling_starts_workers_for_work_and_retires_them(make_hub, unix_users):
    """cluster.adapt(): no worker job until there is work; when it is done, the idle workers'
    jobs are cancelled (local backend: the policy is distributed's, the jobs are INK's)."""
    hub = make_hub({"type": "local"})
    alice = hub.user_token(USER)
    spawn_and_wait(hub, USER, alice, {"experiment": "juno", "memory": "2G"})
    result = json.loads(Kernel(hub.user_url(USER), alice).run(ADAPT).strip().splitlines()[-1])
    assert result["answer"] == 42 and result["left"] == 0, result
    assert 1 <= len(result["started"]) <= 2, result
    jobs = {j["id"]: j for j in jobs_api(hub, "GET", "jobs", alice).json()["jobs"]}
    for job_id in result["started"].values():
        assert jobs[job_id]["state"] in ("cancelled", "completed"), jobs[job_id]
