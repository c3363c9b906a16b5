"""The HTCondor backend end to end through the hub, against the test schedd that runs jobs."""

import json
import urllib.request

import htcondor2
import requests

from tests.conftest import condor_backend
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_spawn import progress_events, reach_server


def job_ads(schedd, constraint="true"):
    return schedd.client().query(
        constraint,
        [
            "ClusterId",
            "Owner",
            "JobStatus",
            "InkApp",
            "InkUser",
            "RequestCpus",
            "RequestMemory",
            "RemoteHost",
            "Environment",
            "Requirements",
            "PeriodicRemove",
            "AcctGroup",
        ],
    )


def test_spawn_ready_stop(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"cpus": 2, "memory": "3G", "image": "alma9", "walltime": "2h"})
    assert reach_server(hub, "inkt_alice", token).status_code == 200
    (ad,) = job_ads(schedd, "JobStatus == 2")
    assert ad["Owner"] == "inkt_alice" and ad["InkApp"] == "jupyterlab" and ad["InkUser"] == "inkt_alice"
    assert (ad["RequestCpus"], ad["RequestMemory"]) == (2, 3072)
    assert 'OpSysAndVer == "AlmaLinux9"' in str(ad.lookup("Requirements"))
    assert "7200" in str(ad.lookup("PeriodicRemove"))
    # the server's token is not in the (world-readable) job ad
    assert "JUPYTERHUB_API_TOKEN" not in ad["Environment"] and "INK_ENV_FILE=" in ad["Environment"]
    submitted = json.loads(urllib.request.urlopen(schedd.url + "/submissions").read())
    assert "JUPYTERHUB_API_TOKEN" not in submitted[-1]["description"]

    cluster = ad["ClusterId"]
    assert hub.api("DELETE", "/users/inkt_alice/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_alice", token)
    ads = job_ads(schedd, f"ClusterId == {cluster}")
    assert not ads or ads[0]["JobStatus"] == 3


def test_idle_reason_then_hold_reaches_the_user(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    r = hub.api("POST", "/users/inkt_alice/server", token=token, json={"image": "sl6"})
    assert r.status_code == 202
    wait_for(lambda: job_ads(schedd, "JobStatus == 1"), 20, what="an idle job")
    schedd.client().act(
        htcondor2.JobAction.Hold, 'Owner == "inkt_alice"', reason="Site policy: SL6 slots are retired"
    )
    events = progress_events(hub, "inkt_alice", token)
    text = json.dumps(events)
    assert "queued (no match found" in text, text
    assert "held by the scheduler: Site policy: SL6 slots are retired" in text
    hub.wait_stopped("inkt_alice", token, timeout=30)
    # the held job was removed when the hub gave up on it
    wait_for(lambda: all(ad["JobStatus"] == 3 for ad in job_ads(schedd)), 20, what="removal")


def test_walltime_expiry_is_removed_and_noticed(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"walltime": "60s"})
    (ad,) = job_ads(schedd, "JobStatus == 2")
    wait_for(
        lambda: job_ads(schedd, f"ClusterId == {ad['ClusterId']} && JobStatus == 3"),
        90,
        what="PeriodicRemove at the walltime",
    )
    hub.wait_stopped("inkt_alice", token, timeout=60)
    assert "the walltime of 1m was reached" in hub.log_text()


def test_hub_restart_reconnects(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token)
    (ad,) = job_ads(schedd, "JobStatus == 2")
    hub.stop()
    hub.start()
    hub.wait_ready("inkt_bob", token, 60)
    assert reach_server(hub, "inkt_bob", token).status_code == 200
    assert job_ads(schedd, "JobStatus == 2")[0]["ClusterId"] == ad["ClusterId"]


def test_unreachable_schedd_is_one_clear_sentence(schedd, make_hub, monkeypatch):
    monkeypatch.setenv("INK_TEST_SCHEDD", "http://127.0.0.1:9")  # nothing listens there
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_bob")
    r = hub.api("POST", "/users/inkt_bob/server", token=token, json={})
    events = progress_events(hub, "inkt_bob", token) if r.status_code == 202 else []
    text = r.text + json.dumps(events)
    assert "The HTCondor scheduler could not be reached" in text, text
    assert "Traceback" not in text
    # the hub keeps working
    assert hub.api("GET", "/users/inkt_bob", token=token).status_code == 200
    assert requests.get(f"{hub.url}/hub/login", timeout=10).status_code == 200
