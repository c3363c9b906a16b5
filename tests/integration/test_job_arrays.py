"""Job arrays through the jobs API and the `ink` command: on real Slurm (`sbatch --array`) and on
the local backend (the runner runs the tasks, as many at once as the allowance's cores). Each
task runs as the user with its index in its arguments and keeps its own folder and record;
`ink jobs ls` counts the tasks; cancelling the array cancels the tasks still waiting; an array
that would run more at once than the batch limit is refused, and HTCondor says it has none yet."""

import json
import pwd
import socket
from pathlib import Path

import pytest

from tests.conftest import condor_backend
from tests.helpers.cli import ink, token_env
from tests.helpers.net import wait_for
from tests.integration.test_jobs_api import api, wait_state

USER = "inkt_alice"
TASK = ["/bin/sh", "-c", "echo task {index} of $(id -un) on $(hostname); sleep 1"]


def limit_batch_jobs(site):
    site["experiments"]["juno"]["allowance"]["max_batch_jobs"] = 4
    return site


@pytest.fixture(params=["slurm", "local"])
def array_hub(request, make_hub):
    if request.param == "slurm":
        slurm = request.getfixturevalue("slurm")
        backend = {"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}}
        return make_hub(backend, adjust=limit_batch_jobs), slurm
    return make_hub({"type": "local"}, adjust=limit_batch_jobs), None


def test_an_array_runs_each_task_with_its_index(array_hub, unix_users, tmp_path):
    hub, slurm = array_hub
    token = hub.user_token(USER)
    env = token_env(hub, token, tmp_path / "config")
    job = json.loads(
        ink(env, "--json", "jobs", "submit", "--name", "sweep", "--array", "0-19%4", "--", *TASK).stdout
    )
    # Slurm runs its own %4; here the runner runs as many at once as alice's 2 cores allow
    assert job["array"] == ("0-19%4" if slurm else "0-19%2"), job
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
    if slurm is not None:
        r = api(hub, "POST", "jobs", token, json={"command": ["true"], "array": "0-9"})
        assert r.status_code == 400, r.text
        assert "at most 4 batch jobs" in r.json()["message"] and "%N" in r.json()["message"], r.text
    for bad in ("0-5000", "9-1", "1,x", "0-3%0"):
        r = api(hub, "POST", "jobs", token, json={"command": ["true"], "array": bad})
        assert r.status_code == 400 and r.json()["message"].startswith("array"), (bad, r.text)


def test_htcondor_says_it_has_no_arrays_yet(schedd, make_hub, unix_users):
    hub = make_hub(condor_backend())
    token = hub.user_token(USER)
    r = api(hub, "POST", "jobs", token, json={"command": ["true"], "array": "0-3"})
    assert r.status_code == 400 and "the htcondor backend runs no job arrays yet" in r.json()["message"], (
        r.text
    )
