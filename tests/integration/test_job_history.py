"""Batch jobs in the usage history beside sessions (issue 18): the jobs service writes what each
job asked for, used, waited and why it ended into the hub's database, even when nobody lists
the job (its own sweep); the owner's history, the admin figures and the CSV show it."""

import csv
import io
import sys

import pytest

from tests.helpers.hub import hub_login
from tests.helpers.net import wait_for
from tests.integration.test_jobs_api import api

# allocates and touches 200 MB, then keeps a core busy for 1.5 s
BURN = "b = bytearray(200 * 2**20)\nimport time\nt = time.time()\nwhile time.time() - t < 1.5: pass"


def history_of(hub, user):
    r = hub.api("GET", f"/ink/users/{user}/history")
    assert r.status_code == 200, r.text
    return r.json()["sessions"]


def ended_record(hub, user, job_id, timeout=90):
    def ended():
        found = [s for s in history_of(hub, user) if s["ink_job"] == job_id]
        return found[0] if found and found[0]["ended"] else None

    return wait_for(ended, timeout, interval=1, what=f"job {job_id}'s end in the history")


def statistics(hub, unix_users, kind):
    """The admin statistics, as carol (an admin) reads them, logged in."""
    carol = hub_login(hub, "inkt_carol", unix_users["inkt_carol"])
    return carol.get(f"{hub.url}/hub/ink/statistics?format={kind}", timeout=30)


@pytest.fixture
def hub(make_hub):
    def quick_sweep(site):
        site["jobs"] = {**site.get("jobs", {}), "sweep_interval": 1}
        return site

    return make_hub({"type": "local"}, adjust=quick_sweep)


def test_batch_jobs_reach_the_history_without_anyone_looking(hub, unix_users):
    alice = hub.user_token("inkt_alice")
    body = {
        "name": "burn",
        "command": [sys.executable, "-c", BURN],
        "cpus": 1,
        "memory": "1G",
        "walltime": "10m",
    }
    r = api(hub, "POST", "jobs", alice, json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    array = api(
        hub, "POST", "jobs", alice, json={"name": "three", "command": ["/bin/sleep", "1"], "array": "0-2"}
    )
    assert array.status_code == 201, array.text
    # nobody lists them: the service's sweep writes their ends
    row = ended_record(hub, "inkt_alice", job["id"])
    assert (row["kind"], row["app"], row["user"], row["backend"]) == ("batch", "batch", "inkt_alice", "local")
    assert row["job_id"] == job["backend_id"]
    assert (row["cpus"], row["memory_mb"], row["walltime_s"]) == (1, 1024, 600)
    assert row["end_reason"] == "completed"
    assert row["started"] and row["wait_s"] >= 0 and row["run_s"] >= 1.5
    assert row["peak_memory_mb"] >= 200, row  # the job's own rusage
    assert 0.3 < row["mean_cpu"] <= 1.2, row
    tasks = ended_record(hub, "inkt_alice", array.json()["id"])
    assert tasks["end_reason"] == "completed"
    assert tasks["run_s"] >= 3.0, tasks  # three tasks of a second each, summed
    # the job's own record now says the same, and keeps the history's bookkeeping to itself
    listed = api(hub, "GET", f"jobs/{job['id']}", alice).json()
    assert listed["state"] == "completed" and "history_id" not in listed
    assert [s for s in history_of(hub, "inkt_bob") if s["kind"] == "batch"] == []


def test_a_failed_and_a_cancelled_job_say_why_and_count_in_the_figures(hub, unix_users):
    alice = hub.user_token("inkt_alice")
    failed = api(
        hub, "POST", "jobs", alice, json={"name": "oops", "command": ["/bin/sh", "-c", "exit 3"]}
    ).json()
    slow = api(hub, "POST", "jobs", alice, json={"name": "slow", "command": ["/bin/sleep", "300"]}).json()
    wait_for(
        lambda: api(hub, "GET", f"jobs/{slow['id']}", alice).json()["state"] == "running",
        60,
        interval=1,
        what="the slow job to run",
    )
    assert api(hub, "DELETE", f"jobs/{slow['id']}", alice).status_code in (200, 202, 204)
    assert ended_record(hub, "inkt_alice", failed["id"])["end_reason"] == "failed: exit code 3"
    assert ended_record(hub, "inkt_alice", slow["id"])["end_reason"] == "cancelled"
    figures = statistics(hub, unix_users, "json")
    assert figures.status_code == 200, figures.text
    batch = [row for row in figures.json()["sessions_per_app_per_day"] if row["app"] == "batch"]
    assert sum(row["sessions"] for row in batch) == 2
    exported = statistics(hub, unix_users, "csv")
    rows = [r for r in csv.DictReader(io.StringIO(exported.text)) if r["kind"] == "batch"]
    assert sorted(r["ink_job"] for r in rows) == sorted([failed["id"], slow["id"]])
