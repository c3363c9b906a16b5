"""Sessions that explain themselves: a request no node can hold is refused at submit with the
reason, and a running session's time limit is extended in the scheduler itself, up to the
user's max_walltime (real Slurm, the local backend, the stand-in HTCondor pool)."""

import os
import subprocess
import sys

import classad2
import pytest
import requests

from tests.conftest import condor_backend
from tests.helpers.condor import REPO
from tests.helpers.hub import spawn_and_wait
from tests.integration.test_htcondor import job_ads


def extend(hub, name, token, by, server=""):
    path = f"/ink/users/{name}/servers/{server}/extend" if server else f"/ink/users/{name}/extend"
    return hub.api("POST", path, token=token, json={"by": by})


def job_state(hub, name, server=""):
    """The server's INK state as the hub keeps it (admin token)."""
    return hub.api("GET", f"/users/{name}").json()["servers"][server]["state"]


def slurm_time_limit(slurm, job_id) -> str:
    out = slurm.run(["scontrol", "show", "job", job_id]).stdout
    return next(word.split("=", 1)[1] for word in out.split() if word.startswith("TimeLimit="))


@pytest.mark.slurm
def test_slurm_refuses_at_submit_what_no_node_can_hold(make_hub, slurm):
    node_mb = int(slurm.run(["sinfo", "-h", "-o", "%m"]).stdout.strip().rstrip("+"))

    def generous(site):  # carol may ask for twice the node's memory: INK lets it through
        site["users"]["inkt_carol"]["allowance"]["max_memory"] = f"{2 * node_mb}M"
        return site

    hub = make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}}, adjust=generous)
    token = hub.user_token("inkt_carol")
    r = hub.api("POST", "/users/inkt_carol/server", token=token, json={"memory": f"{2 * node_mb}M"})
    assert r.status_code == 400, (r.status_code, r.text)
    message = r.json()["message"]
    assert "This request can never start: no node of the cluster has 1 CPUs and" in message, message
    assert f"The largest have {slurm.cpus} CPUs and {node_mb}M" in message, message
    assert "(Slurm: sbatch: error:" in message, message
    assert not [j for j in slurm.squeue() if j[1] == "inkt_carol"], "nothing was left queued"


@pytest.mark.slurm
def test_slurm_extend_raises_the_time_limit_up_to_max_walltime(make_hub, slurm):
    hub = make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    alice, bob = hub.user_token("inkt_alice"), hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_alice", alice, {"memory": "1G", "walltime": "1h", "experiment": "juno"})
    job_id = job_state(hub, "inkt_alice")["job_id"]
    assert slurm_time_limit(slurm, job_id) == "01:00:00"

    r = extend(hub, "inkt_alice", alice, "2h")
    assert r.status_code == 200 and r.json()["walltime"] == "3h", r.text
    assert slurm_time_limit(slurm, job_id) == "03:00:00"
    assert job_state(hub, "inkt_alice")["job_walltime"] == 3 * 3600
    # juno's max_walltime is 1d, counted from the start: 3h + 22h is refused, Slurm untouched
    r = extend(hub, "inkt_alice", alice, "22h")
    assert r.status_code == 400, r.text
    assert "at most 1d from its start; this one has 3h, so it can be extended by 21h at most" in r.text
    assert slurm_time_limit(slurm, job_id) == "03:00:00"
    # bob may not extend alice's session (JupyterHub answers 404 for what a scope hides); nonsense
    # is a 400 with a message
    r = extend(hub, "inkt_alice", bob, "1h")
    assert r.status_code == 404 and slurm_time_limit(slurm, job_id) == "03:00:00", r.text

    # nor through the dashboard's Extend, which acts only on the caller's own servers
    def dashboard_extend(token):
        return requests.post(
            f"{hub.url}/services/ink-dashboard/api/extend",
            json={"server": "", "by": "1h"},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )

    r = dashboard_extend(bob)
    assert r.status_code == 409 and slurm_time_limit(slurm, job_id) == "03:00:00", r.text
    r = dashboard_extend(alice)
    assert r.status_code == 200 and slurm_time_limit(slurm, job_id) == "04:00:00", r.text
    for body in ({"by": "soon"}, {"by": -5}, {"by": "1h", "x": 1}, ["1h"]):
        r = hub.api("POST", "/ink/users/inkt_alice/extend", token=alice, json=body)
        assert r.status_code == 400 and r.json()["message"], (body, r.text)
    # a server that does not run cannot be extended
    assert extend(hub, "inkt_bob", bob, "1h").status_code == 409
    assert extend(hub, "inkt_alice", alice, "1h", server="nosuch").status_code == 404


def test_local_extend_keeps_the_session_past_its_first_limit(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token, {"walltime": "60s"})
    r = extend(hub, "inkt_bob", token, "2m")
    assert r.status_code == 200 and r.json()["walltime_s"] == 180, r.text
    state = job_state(hub, "inkt_bob")
    # the new limit is in the id the local backend checks at every poll (a session that lives
    # past its first limit: tests/e2e/test_idle_culling.py, which waits long enough anyway)
    assert state["job_id"].endswith(".180") and state["job_walltime"] == 180
    # bob's default allowance: 2h at most
    r = extend(hub, "inkt_bob", token, "2h")
    assert r.status_code == 400 and "at most 2h from its start" in r.json()["message"], r.text


def test_htcondor_extend_edits_what_periodic_remove_reads(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"walltime": "60s", "experiment": "juno"})
    (ad,) = job_ads(schedd, "JobStatus == 2")
    assert ad["InkWalltime"] == 60
    r = extend(hub, "inkt_alice", token, "1h")
    assert r.status_code == 200, r.text
    (ad,) = job_ads(schedd, f"ClusterId == {ad['ClusterId']}")
    assert ad["InkWalltime"] == 3660 and ad["JobStatus"] == 2
    # the owner herself cannot lengthen it behind INK's back (PROTECTED_JOB_ATTRS)
    code = (
        "from tests.helpers.minischedd import MiniScheddClient as C; "
        f"C({schedd.url!r}).edit('ClusterId == {ad['ClusterId']}', 'InkWalltime', '999999')"
    )
    owner = subprocess.run(
        ["runuser", "-u", "inkt_alice", "--", sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert owner.returncode != 0 and "InkWalltime is protected" in owner.stderr, owner.stderr[-500:]
    (ad,) = job_ads(schedd, f"ClusterId == {ad['ClusterId']}")
    assert ad["InkWalltime"] == 3660
    # the job's own periodic_remove, evaluated by classad2 as the schedd does: a minute past the
    # first limit it keeps the job, past the new one it removes it
    policy = ad.lookup("PeriodicRemove")
    now = int(classad2.ExprTree("time()").eval())
    for running_s, removed in ((100, False), (3600, False), (3700, True)):
        probe = classad2.ClassAd(str(ad))
        probe["EnteredCurrentStatus"] = now - running_s
        assert policy.eval(probe) is removed, (running_s, str(policy))


def test_htcondor_refuses_at_submit_what_no_slot_can_hold(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_carol")  # carol may ask for 12G; the pool's slots have 8G
    r = hub.api("POST", "/users/inkt_carol/server", token=token, json={"memory": "12G"})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        "This request can never start: no slot of the pool has 1 CPUs and 12G of memory. "
        "The largest have 2 CPUs and 8G: ask for at most that."
    )
    assert not job_ads(schedd), "nothing was submitted"
