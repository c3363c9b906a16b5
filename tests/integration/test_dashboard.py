"""The dashboard: my jobs (node, app), per-app counts and cluster load match the scheduler."""

import requests
from playwright.sync_api import expect

from ink_spawner.backends.slurm import COMMENT_PREFIX
from tests.helpers.browser import open_home_frame
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for

SUMMARY = "/services/ink-dashboard/api/summary"


def summary(hub, token):
    r = requests.get(f"{hub.url}{SUMMARY}", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_dashboard_matches_squeue_and_is_private(make_hub, slurm, unix_users, output_dir, browser):
    hub = make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    alice, bob = hub.user_token("inkt_alice"), hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_alice", alice, {"memory": "1G", "walltime": "1h"})
    # a second, queued job from someone else (too big to run now): cancelled whatever happens
    node_mb = int(slurm.run(["sinfo", "-h", "-o", "%m"]).stdout.strip())
    held = slurm.run(
        ["sbatch", "--parsable", "--hold", f"--mem={node_mb}M", "--output=/dev/null", "--wrap", "sleep 1"]
    )
    held_id = held.stdout.strip().split(";")[0]
    assert held_id.isdigit(), held.stdout + held.stderr
    try:
        check_dashboard(hub, slurm, alice, bob, unix_users, output_dir, browser)
    finally:
        slurm.run(["scancel", held_id])


def check_dashboard(hub, slurm, alice, bob, unix_users, output_dir, browser):
    def figures_match():
        jobs = slurm.squeue()
        running = sum(1 for j in jobs if j[2] == "RUNNING")
        queued = sum(1 for j in jobs if j[2] == "PENDING")
        cluster = summary(hub, alice)["cluster"]
        # per app, from the scheduler's own view of INK's jobs (their comment names the app)
        apps = slurm.run(["squeue", "-h", "-t", "RUNNING", "-o", "%k"]).stdout.split()
        lab = sum(1 for comment in apps if comment == f"{COMMENT_PREFIX}jupyterlab")
        per_app = cluster["per_app"].get("jupyterlab", {}).get("running", 0)
        return (cluster["running"], cluster["queued"], per_app) == (running, queued, lab) and cluster

    cluster = wait_for(figures_match, 30, what="dashboard figures to match squeue")
    assert cluster["per_app"]["jupyterlab"]["running"] == 1
    mine = summary(hub, alice)["servers"]
    node = [
        j for j in slurm.run(["squeue", "-h", "-o", "%u|%N"]).stdout.split() if j.startswith("inkt_alice|")
    ]
    assert len(mine) == 1 and mine[0]["app"] == "jupyterlab" and mine[0]["node"] == node[0].split("|")[1]
    assert 0 < mine[0]["walltime_left_s"] <= 3600 and mine[0]["job_id"].isdigit()
    # bob sees the cluster, not alice's jobs; carol (admin) sees everyone's
    theirs = summary(hub, bob)
    assert theirs["user"] == "inkt_bob" and theirs["servers"] == [] and "all_servers" not in theirs
    everyone = summary(hub, hub.user_token("inkt_carol"))["all_servers"]
    assert [(r["user"], r["node"], r["job_id"]) for r in everyone] == [
        ("inkt_alice", mine[0]["node"], mine[0]["job_id"])
    ]
    metrics = hub.metrics_of("ink-dashboard")
    assert metrics.status_code == 200
    assert 'ink_dashboard_interactive_jobs{app="jupyterlab",cluster="default"} 1.0' in metrics.text
    assert "ink_dashboard_queue_stats_seconds_count" in metrics.text
    assert hub.metrics_of("ink-dashboard", bob).status_code == 403
    assert (
        requests.get(
            f"{hub.url}{SUMMARY}?user=inkt_alice", headers={"Authorization": f"token {bob}"}, timeout=10
        ).json()["servers"]
        == []
    )

    page, frame = open_home_frame(
        browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "ink-dashboard"
    )
    row = frame.locator("#ink-jobs tbody tr[data-app=jupyterlab]")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row).to_contain_text(mine[0]["node"])
    expect(frame.locator("#ink-running")).to_have_text(str(cluster["running"]), timeout=15_000)
    expect(frame.locator("#ink-queued")).to_have_text(str(cluster["queued"]))
    expect(frame.locator("#ink-apps")).to_contain_text("jupyterlab: 1")
    page.screenshot(path=str(output_dir / "home-dashboard.png"), full_page=True)
    expect(frame.locator("#ink-admin")).to_be_hidden()
    page, frame = open_home_frame(
        browser, hub, "inkt_carol", unix_users["inkt_carol"], output_dir, "ink-dashboard"
    )
    expect(frame.locator("#ink-all-jobs tbody tr[data-user=inkt_alice]")).to_contain_text(mine[0]["node"])
    page.screenshot(path=str(output_dir / "home-dashboard-admin.png"), full_page=True)
