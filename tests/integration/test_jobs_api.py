"""The jobs API through the hub, on a real one-node Slurm cluster and on the local backend: as
user A submit, watch, read output, cancel; B sees none of it; scopes are enforced."""

import json
import pwd
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import condor_backend
from tests.helpers.net import wait_for

API = "/services/ink-jobs/api/v1/"


def api(hub, method, path, token, **kwargs):
    return requests.request(
        method, f"{hub.url}{API}{path}", headers={"Authorization": f"token {token}"}, timeout=60, **kwargs
    )


def scoped_token(hub, name, scopes):
    r = hub.api("POST", f"/users/{name}/tokens", json={"scopes": scopes, "expires_in": 3600})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def wait_state(hub, token, job_id, states, timeout=90):
    def reached():
        job = api(hub, "GET", f"jobs/{job_id}", token).json()
        return job if job["state"] in states else None

    return wait_for(reached, timeout, interval=1, what=f"job {job_id} to be {states}")


@pytest.fixture(params=["slurm", "local", "htcondor"])
def jobs_hub(request, make_hub):
    """The same API on every backend (HTCondor: the test schedd, see the README)."""
    if request.param == "slurm":
        slurm = request.getfixturevalue("slurm")
        return make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    if request.param == "htcondor":
        request.getfixturevalue("schedd")
        return make_hub(condor_backend())
    return make_hub({"type": "local"})


def test_submit_watch_read_cancel(jobs_hub, unix_users):
    hub = jobs_hub
    alice, bob = hub.user_token("inkt_alice"), hub.user_token("inkt_bob")
    r = api(
        hub,
        "POST",
        "jobs",
        alice,
        json={
            "name": "fit",
            "command": ["/bin/sh", "-c", 'echo "hello from $(id -un) on $(hostname)"; echo oops >&2; exit 3'],
            "cpus": 1,
            "memory": "512M",
            "walltime": "10m",
            "env": {"RUN": "42"},
        },
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "pending" and job["user"] == "inkt_alice" and job["env_names"] == ["RUN"]
    done = wait_state(hub, alice, job["id"], ("completed", "failed"))
    assert done["state"] == "failed" and done["exit_code"] == 3 and done["ended"] >= done["started"]
    assert done["node"] and "cpu_s" in done["usage"]
    out = api(hub, "GET", f"jobs/{job['id']}/stdout", alice)
    assert out.status_code == 200 and out.text.startswith("hello from inkt_alice on ")
    assert api(hub, "GET", f"jobs/{job['id']}/stderr?tail=1", alice).text == "oops\n"
    folder = Path(done["output_dir"])
    assert folder.parent == Path(pwd.getpwnam("inkt_alice").pw_dir) / "ink-jobs"
    assert folder.stat().st_uid == pwd.getpwnam("inkt_alice").pw_uid  # made as alice

    # a script, and a cancel
    r = api(
        hub, "POST", "jobs", alice, json={"script": "#!/bin/bash\necho started\nsleep 300\n", "name": "long"}
    )
    assert r.status_code == 201, r.text
    long = r.json()
    wait_state(hub, alice, long["id"], ("running",))
    r = api(hub, "DELETE", f"jobs/{long['id']}", alice)
    assert r.status_code == 202
    cancelled = wait_state(hub, alice, long["id"], ("cancelled",))
    assert cancelled["ended"] is not None
    listing = api(hub, "GET", "jobs", alice).json()["jobs"]
    assert [j["id"] for j in listing] == [long["id"], job["id"]]

    # bob sees none of alice's jobs, and cannot touch them
    assert api(hub, "GET", "jobs", bob).json()["jobs"] == []
    assert api(hub, "GET", f"jobs/{job['id']}", bob).status_code == 404
    assert api(hub, "GET", f"jobs/{job['id']}/stdout", bob).status_code == 404
    assert api(hub, "DELETE", f"jobs/{long['id']}", bob).status_code == 404
    assert api(hub, "GET", "jobs?user=inkt_alice", bob).status_code == 403
    # an admin's token with admin:users may look
    carol = hub.user_token("inkt_carol")
    assert [j["id"] for j in api(hub, "GET", "jobs?user=inkt_alice", carol).json()["jobs"]] == [
        long["id"],
        job["id"],
    ]


# what a scheduler's submit language could mangle: blanks, both quotes, macros, backslashes
ARGV = ["a b", "it's", 'say "hi"', "$(x)", "$ENV(HOME)", "$(Cluster)", "back\\slash", "#", "a;b", "*"]


def test_arguments_reach_the_job_exactly(jobs_hub, unix_users):
    """The job prints its argv as JSON: byte for byte what was sent, on every backend."""
    hub = jobs_hub
    alice = hub.user_token("inkt_alice")
    printer = "import json, sys; print(json.dumps(sys.argv[1:]))"
    r = api(hub, "POST", "jobs", alice, json={"command": ["/usr/bin/python3", "-c", printer, *ARGV]})
    assert r.status_code == 201, r.text
    shell = api(hub, "POST", "jobs", alice, json={"command": ["/bin/sh", "-c", 'echo "on $(hostname)"']})
    assert shell.status_code == 201, shell.text
    killed = api(hub, "POST", "jobs", alice, json={"command": ["/bin/sh", "-c", "kill -9 $$"]})
    assert killed.status_code == 201, killed.text
    # the experiment's set-up and variables, as a session gets them; a broken set-up fails the job
    env_printer = ["/bin/sh", "-c", 'echo "$INK_FROM_SETUP / $INK_EXPERIMENT_NAME"']
    set_up = api(hub, "POST", "jobs", alice, json={"command": env_printer, "experiment": "batchenv"})
    assert set_up.status_code == 201, set_up.text
    carol = hub.user_token("inkt_carol")
    broken = api(hub, "POST", "jobs", carol, json={"command": ["/bin/true"], "experiment": "broken"})
    assert broken.status_code == 201, broken.text
    for job in (r.json(), shell.json(), set_up.json()):
        done = wait_state(hub, alice, job["id"], ("completed", "failed"))
        assert done["state"] == "completed", done
    out = api(hub, "GET", f"jobs/{set_up.json()['id']}/stdout", alice).text
    assert out == "set up for inkt_alice / BATCHENV\n", out
    done = wait_state(hub, carol, broken.json()["id"], ("completed", "failed"))
    assert (done["state"], done["exit_code"]) == ("failed", 126), done
    err = api(hub, "GET", f"jobs/{broken.json()['id']}/stderr", carol).text
    assert "set-up script /nonexistent/ink/setup.sh failed" in err, err
    done = wait_state(hub, alice, killed.json()["id"], ("completed", "failed"))
    assert (done["state"], done["exit_code"], done["reason"]) == ("failed", 137, "killed by signal 9")
    assert json.loads(api(hub, "GET", f"jobs/{r.json()['id']}/stdout", alice).text) == ARGV
    if "htcondor" in hub.site["backend"]["type"]:
        # a newline would end HTCondor's arguments line (and could start a submit command)
        bad = api(hub, "POST", "jobs", alice, json={"command": ["/bin/echo", "a\nqueue 100"]})
        assert bad.status_code == 400 and "control characters" in bad.json()["message"], bad.text
    host = socket.gethostname()
    assert api(hub, "GET", f"jobs/{shell.json()['id']}/stdout", alice).text == f"on {host}\n"


def test_limits_and_scopes(make_hub, unix_users):
    hub = make_hub({"type": "local"})
    alice = hub.user_token("inkt_alice")
    read_only = scoped_token(hub, "inkt_alice", ["custom:ink:jobs:read", "access:services"])
    r = api(hub, "POST", "jobs", read_only, json={"command": ["true"]})
    assert r.status_code == 403 and "custom:ink:jobs:submit" in r.json()["message"]
    assert api(hub, "GET", "jobs", read_only).status_code == 200
    no_jobs = scoped_token(hub, "inkt_alice", ["custom:ink:files:read", "access:services"])
    r = api(hub, "GET", "jobs", no_jobs)
    assert r.status_code == 403 and "custom:ink:jobs:read" in r.json()["message"]
    # the spawn menu's limits hold here too; bad input names the field
    for body, field in (
        ({"command": ["true"], "memory": "64G"}, "memory"),
        ({"command": ["true"], "image": "centos7"}, "image"),
        ({"command": ["true"], "experiment": "lhaaso"}, "experiment"),
        ({"command": []}, "command"),
        ({"command": "rm -rf /"}, "command"),
        ({"script": "x", "command": ["true"]}, "command"),
        ({"command": ["true"], "env": {"LD_PRELOAD": 1}}, "env"),
        ({"command": ["true"], "env": {"INK_JOB_ID": "x"}}, "env"),
        ({"command": ["true"], "output_dir": "../../etc"}, "output_dir"),
        ({"command": ["true"], "output_dir": "/tmp"}, "output_dir"),
        ({"command": ["true"], "priority": 1}, "priority"),
    ):
        r = api(hub, "POST", "jobs", alice, json=body)
        assert r.status_code == 400 and r.json()["message"].startswith(field), (body, r.text)
    # an admin acting for a system account is refused before anything runs
    carol = hub.user_token("inkt_carol")
    r = api(hub, "POST", "jobs?user=daemon", carol, json={"command": ["/usr/bin/id"]})
    assert r.status_code == 403 and "system account" in r.json()["message"], r.text
    assert api(hub, "GET", "jobs?user=root", carol).status_code == 403
    assert api(hub, "POST", "jobs", alice, data="{not json").status_code == 400
    assert api(hub, "GET", "jobs/j20260101-00000000", alice).status_code == 404
    assert api(hub, "GET", "jobs/../../etc", alice).status_code == 404


def test_rate_limit(make_hub, unix_users):
    def limited(site):
        site["api"] = {"rate_per_minute": 60, "burst": 5}
        return site

    hub = make_hub({"type": "local"}, adjust=limited)
    alice = hub.user_token("inkt_alice")
    answers = [api(hub, "GET", "jobs", alice) for _ in range(8)]
    codes = [a.status_code for a in answers]
    assert codes[:5] == [200] * 5 and 429 in codes[5:]
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1 and "too many requests" in refused.json()["message"]
    # another token has its own budget
    assert api(hub, "GET", "jobs", hub.user_token("inkt_bob")).status_code == 200
    time.sleep(int(refused.headers["Retry-After"]))  # what the refusal said, not a guess
    assert api(hub, "GET", "jobs", alice).status_code == 200
