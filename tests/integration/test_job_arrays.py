"""Job arrays through the jobs API and the `ink` command: on real Slurm (`sbatch --array`), on
the test schedd (`queue InkIndex from (...)`, `max_materialize` for %N) and on the local backend
(the runner runs the tasks, as many at once as the allowance's cores). Each task runs as the user
with its index in its arguments and keeps its own folder and record; `ink jobs ls` counts the
tasks; cancelling the array cancels the tasks still waiting; one task can be cancelled alone,
running or not yet started; an array that would run more at once than the batch limit is
refused."""

import json
import pwd
import socket
from pathlib import Path

import pytest

from tests.conftest import condor_backend
from tests.helpers.cli import ink, token_env
from tests.helpers.condor import slot
from tests.helpers.net import wait_for
from tests.integration.test_htcondor import submissions
from tests.integration.test_jobs_api import api, wait_state

USER = "inkt_alice"
TASK = ["/bin/sh", "-c", "echo task {index} of $(id -un) on $(hostname); sleep 1"]


def limit_batch_jobs(site):
    site["experiments"]["juno"]["allowance"]["max_batch_jobs"] = 4
    return site


@pytest.fixture(params=["slurm", "local", "htcondor"])
def array_hub(request, make_hub):
    """(hub, the Slurm cluster or None, whether the scheduler runs the array itself)"""
    if request.param == "slurm":
        slurm = request.getfixturevalue("slurm")
        backend = {"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}}
        return make_hub(backend, adjust=limit_batch_jobs), slurm, True
    if request.param == "htcondor":
        request.getfixturevalue("make_pool")(slots=[slot(n) for n in range(1, 5)])
        return make_hub(condor_backend(), adjust=limit_batch_jobs), None, True
    return make_hub({"type": "local"}, adjust=limit_batch_jobs), None, False


def test_an_array_runs_each_task_with_its_index(array_hub, unix_users, tmp_path):
    hub, slurm, native = array_hub
    token = hub.user_token(USER)
    env = token_env(hub, token, tmp_path / "config")
    job = json.loads(
        ink(env, "--json", "jobs", "submit", "--name", "sweep", "--array", "0-19%4", "--", *TASK).stdout
    )
    # the scheduler runs its own %4; INK's runner as many at once as alice's 2 cores allow
    assert job["array"] == ("0-19%4" if native else "0-19%2"), job
    done = wait_state(hub, token, job["id"], ("completed", "failed"), timeout=180)
    assert done["state"] == "completed", done["tasks"]
    assert [t["index"] for t in done["tasks"]] == list(range(20))
    assert done["task_counts"]["completed"] == 20 and {t["exit_code"] for t in done["tasks"]} == {0}
    host = socket.gethostname()
    for index in (0, 7, 19):
        out = api(hub, "GET", f"jobs/{job['id']}/stdout?task={index}", token).text
        assert out == f"task {index} of {USER} on {host}\n", out
        record = json.loads((Path(done["output_dir"]) / str(index) / "ink-job.json").read_text())
        assert record["index"] == index and record["exit_code"] == 0
        assert (Path(done["output_dir"]) / str(index)).stat().st_uid == pwd.getpwnam(USER).pw_uid
    assert api(hub, "GET", f"jobs/{job['id']}/stdout", token).status_code == 400  # which task?
    assert api(hub, "GET", f"jobs/{job['id']}/stdout?task=20", token).status_code == 400
    listed = ink(env, "jobs", "ls")
    assert f"sweep [array {job['array']}: 20 completed]" in listed.stdout, listed.stdout
    logs = ink(env, "jobs", "logs", job["id"], "--task", "3")
    assert logs.stdout == f"task 3 of {USER} on {host}\n", logs

    # cancelling the array: the running task ends, the waiting ones never start
    long = api(hub, "POST", "jobs", token, json={"command": ["sleep", "60"], "array": "0-9%1"}).json()
    wait_for(
        lambda: api(hub, "GET", f"jobs/{long['id']}", token).json()["task_counts"]["running"] == 1,
        60,
        what="the first task to run",
    )
    assert api(hub, "DELETE", f"jobs/{long['id']}", token).status_code == 202
    cancelled = wait_state(hub, token, long["id"], ("cancelled",), timeout=60)
    counts = cancelled["task_counts"]
    assert counts["completed"] == 0 and counts["pending"] == 0 and counts["running"] == 0, counts
    assert counts["cancelled"] >= 9, counts
    if slurm is not None:  # the killed task leaves squeue once Slurm has reaped it (COMPLETING)
        tasks = lambda: [j for j in slurm.squeue() if j[0].startswith(f"{long['backend_id']}_")]  # noqa: E731
        wait_for(lambda: not tasks(), 30, what="the array's tasks to leave squeue")

    # the batch limit counts what an array may run at once
    if native:
        r = api(hub, "POST", "jobs", token, json={"command": ["true"], "array": "0-9"})
        assert r.status_code == 400, r.text
        assert "at most 4 batch jobs" in r.json()["message"] and "%N" in r.json()["message"], r.text
    for bad in ("0-5000", "9-1", "1,x", "0-3%0"):
        r = api(hub, "POST", "jobs", token, json={"command": ["true"], "array": bad})
        assert r.status_code == 400 and r.json()["message"].startswith("array"), (bad, r.text)


def test_one_task_is_cancelled_alone(array_hub, unix_users, tmp_path):
    """A running task and one not started yet are cancelled; the others run to their end."""
    hub, slurm, native = array_hub
    token = hub.user_token(USER)
    env = token_env(hub, token, tmp_path / "config")
    command = ["/bin/sh", "-c", "echo started {index}; sleep 12"]
    job = api(hub, "POST", "jobs", token, json={"command": command, "array": "0-3%2"}).json()

    def task(index):
        tasks = api(hub, "GET", f"jobs/{job['id']}", token).json()["tasks"]
        return next((t for t in tasks if t["index"] == index), {"state": "pending"})

    wait_for(lambda: task(0)["state"] == "running" and task(1)["state"] == "running", 90, what="two tasks")
    # task 3 waits for its turn (%2); task 0 runs
    assert api(hub, "DELETE", f"jobs/{job['id']}?task=3", token).status_code == 202
    cancelled = json.loads(ink(env, "--json", "jobs", "cancel", job["id"], "--task", "0").stdout)
    assert cancelled["cancelled_tasks"] == [0, 3], cancelled
    wait_for(lambda: task(0)["state"] == "cancelled", 30, what="task 0 to be cancelled")
    assert task(1)["state"] == "running"
    # what cannot be cancelled says why
    assert api(hub, "DELETE", f"jobs/{job['id']}?task=0", token).status_code == 409
    for bad in ("7", "x", "-1"):
        r = api(hub, "DELETE", f"jobs/{job['id']}?task={bad}", token)
        assert r.status_code == 400 and r.json()["message"].startswith("task"), (bad, r.text)
    bob = api(hub, "DELETE", f"jobs/{job['id']}?task=1", hub.user_token("inkt_bob"))
    assert bob.status_code == 404, bob.text

    done = wait_state(hub, token, job["id"], ("completed", "failed"), timeout=120)
    states = {t["index"]: t["state"] for t in done["tasks"]}
    assert states == {0: "cancelled", 1: "completed", 2: "completed", 3: "cancelled"}, done["tasks"]
    assert done["state"] == "completed", done  # tasks cancelled one by one do not fail the array
    out = lambda i: api(hub, "GET", f"jobs/{job['id']}/stdout?task={i}", token).text  # noqa: E731
    assert out(1) == "started 1\n" and out(2) == "started 2\n" and "started" not in out(3), out(3)
    if slurm is not None:
        assert not [j for j in slurm.squeue() if j[0].startswith(f"{job['backend_id']}_")]


def test_htcondor_arrays_are_one_cluster_with_late_materialization(schedd, make_hub, unix_users):
    """What the schedd receives: one cluster, items of InkIndex, %N as max_materialize, the
    index in each proc's environment and ad, a log per task; a user's `$(...)` stays literal."""
    hub = make_hub(condor_backend())
    token = hub.user_token(USER)
    body = {"command": ["/bin/echo", "$(ProcId)", "{index}"], "array": "3,5,7%2"}
    job = api(hub, "POST", "jobs", token, json=body).json()
    (submitted,) = [s for s in submissions(schedd) if str(s["cluster"]) == job["backend_id"]]
    text = submitted["description"]
    assert "max_materialize = 2" in text and "QUEUE InkIndex FROM (\n3\n5\n7\n)" in text, text
    assert "INK_TASK_INDEX=$(InkIndex)" in text and "My.InkIndex = $(InkIndex)" in text, text
    assert "scheduler-$(InkIndex).log" in text, text
    done = wait_state(hub, token, job["id"], ("completed", "failed"), timeout=90)
    assert done["state"] == "completed", done["tasks"]
    for index in (3, 5, 7):
        out = api(hub, "GET", f"jobs/{job['id']}/stdout?task={index}", token).text
        assert out == f"$(ProcId) {index}\n", out
        assert (Path(done["output_dir"]) / f"scheduler-{index}.log").exists()
