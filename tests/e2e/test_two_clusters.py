"""Two clusters in one hub: real Slurm ("HPC cluster") and the stand-in HTCondor pool ("HTC
cluster"), as IHEP runs them. alice (juno) may use both, with other limits on the HTC one; bob
only the HPC one. The spawn menu, the hub's API, the jobs API and the dashboard all say the same."""

import requests
from playwright.sync_api import expect

from tests.conftest import condor_backend
from tests.helpers.browser import open_as, open_home_frame
from tests.helpers.net import wait_for

SUMMARY = "/services/ink-dashboard/api/summary"
JOBS = "/services/ink-jobs/api/v1/jobs"


def two_clusters(slurm):
    def adjust(site):
        del site["backend"]
        site["clusters"] = {
            "htc": {"title": "HTC cluster", **condor_backend()},
            "hpc": {"title": "HPC cluster", "type": "slurm", "options": {"slurm_conf": str(slurm.conf)}},
        }
        # everyone: the HPC cluster only; juno's members: both, one core and JupyterLab on HTC
        site["default_allowance"]["clusters"] = ["hpc"]
        site["experiments"]["juno"]["allowance"]["per_cluster"] = {
            "htc": {"max_cpus": 1, "apps": ["jupyterlab"], "images": ["host", "alma9"]}
        }
        site["sessions"] = {"named_servers": 2}
        return site

    return adjust


def figures(hub, token) -> dict:
    r = requests.get(f"{hub.url}{SUMMARY}", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return {c["name"]: c for c in r.json()["clusters"]}


def submit(hub, token, body):
    return requests.post(
        f"{hub.url}{JOBS}", headers={"Authorization": f"token {token}"}, json=body, timeout=30
    )


def test_alice_on_both_clusters_bob_on_his_one(make_pool, slurm, make_hub, browser, unix_users, output_dir):
    schedd = make_pool()
    hub = make_hub({}, adjust=two_clusters(slurm))
    alice, bob = hub.user_token("inkt_alice"), hub.user_token("inkt_bob")

    # the hub's API: bob may not use the HTC cluster, alice's limits there are its own
    r = hub.api("POST", "/users/inkt_bob/server", token=bob, json={"cluster": "htc"})
    assert r.status_code == 400 and "cluster: 'htc' is not allowed for you (allowed: hpc)" in r.text, r.text
    r = hub.api("POST", "/users/inkt_alice/server", token=alice, json={"cluster": "htc", "cpus": 2})
    assert r.status_code == 400 and "cpus: 2 exceeds your limit of 1" in r.text, r.text
    r = hub.api("POST", "/users/inkt_alice/server", token=alice, json={"cluster": "htc", "app": "vscode"})
    assert r.status_code == 400 and "'vscode' is not allowed for you" in r.text, r.text
    r = hub.api("POST", "/users/inkt_alice/server", token=alice, json={"cluster": "nowhere"})
    assert r.status_code == 400 and "unknown cluster 'nowhere' (clusters: hpc, htc)" in r.text, r.text

    # alice's session on the HTC cluster through the API: a job of the pool's, not Slurm's
    r = hub.api("POST", "/users/inkt_alice/servers/analysis", token=alice, json={"cluster": "htc"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("inkt_alice", alice, server="analysis")
    (ad,) = schedd.client().query('Owner == "inkt_alice" && JobStatus == 2', [])
    assert ad["InkApp"] == "jupyterlab" and ad["RequestCpus"] == 1
    assert not [j for j in slurm.squeue() if j[1] == "inkt_alice"]
    server = hub.api("GET", "/users/inkt_alice", token=alice).json()["servers"]["analysis"]
    assert server["user_options"]["cluster"] == "htc"

    # the spawn menu in Chromium: bob sees no cluster choice he cannot use
    page = open_as(browser, hub, "inkt_bob", unix_users["inkt_bob"], output_dir, "spawn")
    expect(page.locator("#ink-clusters label")).to_have_count(1)
    expect(page.locator("#ink-clusters")).to_contain_text("HPC cluster")
    expect(page.locator("#ink-clusters")).not_to_contain_text("HTC cluster")
    page.screenshot(path=str(output_dir / "bob-spawn-menu.png"), full_page=True)
    page.close()

    # alice: both; on HTC one card and her HTC limits, on HPC five cards; she starts on HPC
    page = open_as(browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "spawn/inkt_alice/fit")
    expect(page.locator("#ink-clusters label")).to_have_count(2)
    page.locator("label[for=ink-cluster-htc]").click()
    expect(page.locator(".ink-card:visible")).to_have_count(1)
    expect(page.locator(".ink-limits:visible")).to_contain_text("on the HTC cluster: 1 cores")
    expect(page.locator("#ink-cpus")).to_have_attribute("max", "1")
    page.screenshot(path=str(output_dir / "alice-htc-menu.png"), full_page=True)
    page.locator("label[for=ink-cluster-hpc]").click()
    expect(page.locator(".ink-card:visible")).to_have_count(5)
    expect(page.locator(".ink-limits:visible")).to_contain_text("on the HPC cluster: 2 cores")
    page.locator(".ink-card[data-app=jupyterlab]").click()
    page.fill("#ink-memory", "1G")
    page.screenshot(path=str(output_dir / "alice-hpc-menu.png"), full_page=True)
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url("**/lab**", timeout=120_000)
    page.close()
    hub.wait_ready("inkt_alice", alice, server="fit")
    assert [j[2] for j in slurm.squeue() if j[1] == "inkt_alice"] == ["RUNNING"]
    options = hub.api("GET", "/users/inkt_alice", token=alice).json()["servers"]["fit"]["user_options"]
    assert options["cluster"] == "hpc"

    # a hub restart finds each session on its own cluster (the cluster is in the spawner's state)
    hub.stop()
    hub.start()
    for server in ("analysis", "fit"):
        hub.wait_ready("inkt_alice", alice, 60, server=server)
    assert (
        schedd.client().query('Owner == "inkt_alice" && JobStatus == 2', ["ClusterId"])[0]["ClusterId"]
        == ad["ClusterId"]
    )
    assert [j[2] for j in slurm.squeue() if j[1] == "inkt_alice"] == ["RUNNING"]

    # the jobs API takes a cluster too, within the same rules
    r = submit(hub, bob, {"command": ["true"], "cluster": "htc"})
    assert r.status_code == 400 and "not allowed for you (allowed: hpc)" in r.text, r.text
    r = submit(hub, alice, {"command": ["sleep", "300"], "cluster": "htc", "name": "on-htc"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["cluster"], job["backend"]) == ("htc", "htcondor")
    r = submit(hub, bob, {"command": ["sleep", "300"], "name": "on-hpc"})  # his first (only) cluster
    assert r.status_code == 201 and r.json()["cluster"] == "hpc" and r.json()["backend"] == "slurm", r.text
    bob_job = r.json()

    # the dashboard: each cluster's figures equal its own scheduler's
    def match():
        shown = figures(hub, alice)
        running_slurm = sum(1 for j in slurm.squeue() if j[2] == "RUNNING")
        queued_slurm = sum(1 for j in slurm.squeue() if j[2] == "PENDING")
        ads = schedd.client().query("true", ["JobStatus"])
        running_condor = sum(1 for a in ads if a["JobStatus"] == 2)
        queued_condor = sum(1 for a in ads if a["JobStatus"] == 1)
        want = {"hpc": (running_slurm, queued_slurm), "htc": (running_condor, queued_condor)}
        got = {name: (c["running"], c["queued"]) for name, c in shown.items()}
        return got == want and running_slurm >= 2 and running_condor >= 2 and shown

    shown = wait_for(match, 60, what="each cluster's figures to match its scheduler")
    assert (shown["htc"]["title"], shown["hpc"]["title"]) == ("HTC cluster", "HPC cluster")
    page, frame = open_home_frame(
        browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "ink-dashboard"
    )
    expect(frame.locator(".ink-cluster[data-cluster=htc]")).to_contain_text("HTC cluster:")
    expect(frame.locator(".ink-cluster[data-cluster=hpc] .running")).to_have_text(
        str(shown["hpc"]["running"]), timeout=15_000
    )
    expect(frame.locator(".ink-cluster[data-cluster=htc] .running")).to_have_text(
        str(shown["htc"]["running"])
    )
    expect(frame.locator("#ink-total-label")).to_have_text("All clusters")
    expect(frame.locator("#ink-jobs tbody tr")).to_have_count(2, timeout=15_000)
    expect(frame.locator("#ink-jobs tbody tr[data-cluster=htc]")).to_contain_text("(HTC cluster)")
    expect(frame.locator("#ink-jobs tbody tr[data-cluster=hpc]")).to_contain_text("(HPC cluster)")
    page.screenshot(path=str(output_dir / "dashboard-two-clusters.png"), full_page=True)

    for token, job_id in ((alice, job["id"]), (bob, bob_job["id"])):
        r = requests.delete(
            f"{hub.url}{JOBS}/{job_id}", headers={"Authorization": f"token {token}"}, timeout=30
        )
        assert r.status_code == 202, r.text
