"""The HTCondor backend end to end through the hub, against the stand-in pool that runs jobs as
HTCondor's manual says (tests/helpers/minischedd.py)."""

import html
import json
import os
import signal
import tempfile
import time
import urllib.request
from pathlib import Path

import htcondor2
import psutil
import pytest
import requests

from ink_spawner.backends.base import JobState
from ink_spawner.backends.htcondor import HTCondorBackend
from tests.conftest import condor_backend, kerberos_site
from tests.helpers.condor import slot
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.helpers.specs import job_spec
from tests.integration.test_kerberos import hub_login
from tests.integration.test_spawn import job_processes, progress_events, reach_server


def job_ads(schedd, constraint="true"):
    return schedd.client().query(constraint, [])


def submissions(schedd):
    return json.loads(urllib.request.urlopen(schedd.url + "/submissions").read())


def events_until(hub, name, token, text, timeout=60) -> str:
    """Read the spawn's progress stream until an event holds ``text`` (or the stream ends)."""
    r = requests.get(
        f"{hub.url}/hub/api/users/{name}/server/progress",
        headers={"Authorization": f"token {token}"},
        stream=True,
        timeout=timeout,
    )
    seen, deadline = [], time.monotonic() + timeout
    for line in r.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            seen.append(json.loads(line[5:]))
            if text in json.dumps(seen[-1]) or seen[-1].get("failed") or seen[-1].get("ready"):
                break
        if time.monotonic() > deadline:
            break
    r.close()
    return json.dumps(seen)


def start_failure_text(hub, name, token, options=None) -> str:
    r = hub.api("POST", f"/users/{name}/server", token=token, json=options or {})
    events = progress_events(hub, name, token) if r.status_code == 202 else []
    return html.unescape(r.text) + json.dumps(events)


def test_spawn_waits_for_negotiation_then_runs_and_stops(make_pool, make_hub):
    schedd = make_pool(negotiation_interval=20)  # NEGOTIATOR_INTERVAL: HTCondor ships 60 s, small pools 20 s
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    options = {"cpus": 2, "memory": "3G", "image": "alma9", "walltime": "2h"}
    spawn_and_wait(hub, "inkt_alice", token, options)
    # the spawn's progress events, as the hub logged them: queued until a negotiation cycle
    log = hub.log_text()
    queued = log.index(
        "inkt_alice: queued: waiting for the negotiator to match it with a slot; number 1 of 1"
    )
    assert queued < log.index("inkt_alice: running on node"), log[queued - 2000 :]
    assert reach_server(hub, "inkt_alice", token).status_code == 200
    (ad,) = job_ads(schedd, "JobStatus == 2")
    assert ad["Owner"] == "inkt_alice" and ad["InkApp"] == "jupyterlab" and ad["InkUser"] == "inkt_alice"
    assert (ad["RequestCpus"], ad["RequestMemory"]) == (2, 3072)
    requirements = str(ad.lookup("Requirements"))
    assert 'OpSysAndVer == "AlmaLinux9"' in requirements
    # condor_submit's own terms are there and the pool's shared FILESYSTEM_DOMAIN meets them
    assert "TARGET.FileSystemDomain == MY.FileSystemDomain" in requirements
    assert "TARGET.Disk >= RequestDisk" in requirements
    assert ad["InkWalltime"] == 7200 and "InkWalltime" in str(ad.lookup("PeriodicRemove"))
    # arguments in the new syntax, parsed as HTCondor parses them
    assert ad["Arguments"] == "'-m' 'ink_spawner.jobscript' '--app' 'jupyterlab'"
    # the server's token is not in the (world-readable) job ad
    assert "JUPYTERHUB_API_TOKEN" not in ad["Environment"] and "INK_ENV_FILE=" in ad["Environment"]
    assert "JUPYTERHUB_API_TOKEN" not in submissions(schedd)[-1]["description"]

    env_file = Path(ad["Environment"].split("INK_ENV_FILE=", 1)[1].strip("'"))
    assert env_file.exists() and env_file.stat().st_mode & 0o777 == 0o600

    cluster = ad["ClusterId"]
    assert hub.api("DELETE", "/users/inkt_alice/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_alice", token)
    ads = job_ads(schedd, f"ClusterId == {cluster}")
    assert not ads or ads[0]["JobStatus"] == 3
    wait_for(lambda: not job_processes("inkt_alice"), 30, what="the removed job's processes to end")
    assert not env_file.exists(), "the file with the server's token goes with the job"


def test_idle_reason_then_hold_reaches_the_user(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    r = hub.api("POST", "/users/inkt_alice/server", token=token, json={"image": "sl6"})
    assert r.status_code == 202
    text = events_until(hub, "inkt_alice", token, "no slot meets")
    assert 'no slot meets TARGET.OpSysAndVer == \\"SL6\\" (0 of 2 slots)' in text, text
    schedd.client().act(
        htcondor2.JobAction.Hold, 'Owner == "inkt_alice"', reason="Site policy: SL6 slots are retired"
    )
    text = json.dumps(progress_events(hub, "inkt_alice", token))
    assert "held by the scheduler: Site policy: SL6 slots are retired" in text, text
    hub.wait_stopped("inkt_alice", token, timeout=30)
    # the held job was removed when the hub gave up on it
    wait_for(lambda: all(ad["JobStatus"] == 3 for ad in job_ads(schedd)), 20, what="removal")


def test_a_pool_without_a_shared_filesystem_domain_says_so(make_pool, make_hub):
    # each node keeps HTCondor's default FILESYSTEM_DOMAIN: its own host name
    make_pool(slots=[slot(1, FileSystemDomain="wn1.ink.test"), slot(2, FileSystemDomain="wn2.ink.test")])
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_bob")
    assert hub.api("POST", "/users/inkt_bob/server", token=token, json={}).status_code == 202
    text = events_until(hub, "inkt_bob", token, "FILESYSTEM_DOMAIN")
    assert "no slot meets TARGET.FileSystemDomain == MY.FileSystemDomain (0 of 2 slots)" in text, text
    assert "FILESYSTEM_DOMAIN" in text
    assert hub.api("DELETE", "/users/inkt_bob/server", token=token).status_code in (202, 204)


def test_owner_mode_needs_impersonation_rights(make_pool, make_hub):
    schedd = make_pool(may_impersonate="")  # QUEUE_SUPER_USERS only, as the old etc/ shipped
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_bob")
    text = start_failure_text(hub, "inkt_bob", token)
    assert 'SetAttribute security violation: setting owner to "inkt_bob"' in text, text
    assert "QUEUE_SUPER_USER_MAY_IMPERSONATE" in text
    assert job_ads(schedd) == []


def test_kerberos_identity_runs_a_spawn_with_the_users_ticket(make_pool, make_hub, kdc, unix_users):
    # the hub's own calls (queries) authenticate by FS; a user's submit by the user's ticket
    schedd = make_pool(auth_methods=["KERBEROS", "FS"], kerberos_realms=["INK.TEST"])
    hub = make_hub(condor_backend(identity="kerberos"), lambda s: kerberos_site(s, kdc))
    assert hub_login(hub, "inkt_alice", unix_users["inkt_alice"]).login_status == 302
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token)
    (ad,) = job_ads(schedd, "JobStatus == 2")
    assert ad["Owner"] == "inkt_alice"
    record = submissions(schedd)[-1]
    assert record["identity"] == "inkt_alice" and "Owner" not in record["description"]
    assert reach_server(hub, "inkt_alice", token).status_code == 200
    # stop: the removal is made with alice's own ticket (the hub is no super user here)
    assert hub.api("DELETE", "/users/inkt_alice/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_alice", token)
    wait_for(lambda: not job_ads(schedd, "JobStatus == 2"), 30, what="the removal")

    # bob has no ticket: Kerberos fails, FS names the hub's account, and root is refused
    bob = hub.user_token("inkt_bob")
    text = start_failure_text(hub, "inkt_bob", bob)
    assert "Submitting jobs as user/owner 'root' is not allowed" in text, text


def test_missing_program_is_held_with_htcondors_reason(schedd, make_hub):
    def missing_python(site):
        site["spawner"]["job_python"] = "/nonexistent/ink/bin/python"
        return site

    hub = make_hub(condor_backend(), missing_python)
    token = hub.user_token("inkt_bob")
    text = start_failure_text(hub, "inkt_bob", token)
    assert "The job was held by the scheduler: Error from slot" in text, text
    assert "Failed to execute '/nonexistent/ink/bin/python': (errno=2: 'No such file or directory')" in text
    held = schedd.client().history('Owner == "inkt_bob"', ["HoldReasonCode"]) or job_ads(schedd)
    assert held and held[0]["HoldReasonCode"] == 6


def test_an_output_the_user_cannot_open_is_held(schedd, unix_users):
    """The starter opens the output as the user: a folder only root may write gives a hold."""
    folder = Path(tempfile.mkdtemp(prefix="ink-ro-logs-"))
    folder.chmod(0o755)
    env_dir = Path(tempfile.mkdtemp(prefix="ink-env-"))
    env_dir.chmod(0o755)
    backend = HTCondorBackend(
        schedd_factory="tests.helpers.minischedd.connect",
        collector_factory="tests.helpers.minischedd.connect_collector",
        identity="owner",
    )

    async def env_file(spec):
        return str(env_dir / "e.json")

    backend.write_env_file = env_file
    spec = job_spec(
        username="inkt_bob",
        command=["/usr/bin/python3", "-c", "print(1)"],
        log_path=str(folder / "job.log"),
        workdir="/tmp",
        gpus=0,
        opsys="",
        image="host",
    )
    try:
        job_id = asyncio_run(backend.submit(spec))
        status = wait_for(
            lambda: (s := asyncio_run(backend.status(job_id))).state == JobState.HELD and s, 20, what="a hold"
        )
        log_path = folder / "job.log"
        assert f"Failed to open '{log_path}' as standard output: Permission denied" in status.reason
        asyncio_run(backend.cancel(job_id))
    finally:
        for path in (folder, env_dir):
            for child in path.iterdir():
                child.unlink()
            path.rmdir()


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)


def test_a_job_killed_by_sigkill_says_so(schedd, make_hub):
    hub = make_hub(condor_backend())
    token = hub.user_token("inkt_alice")
    # the slow experiment's set-up takes 14 s: kill the wrapper meanwhile
    assert (
        hub.api("POST", "/users/inkt_alice/server", token=token, json={"experiment": "slow"}).status_code
        == 202
    )
    (wrapper,) = wait_for(lambda: job_processes("inkt_alice"), 30, what="the job's wrapper")
    os.kill(wrapper.pid, signal.SIGKILL)
    text = json.dumps(progress_events(hub, "inkt_alice", token))
    assert "(killed by signal 9)" in text, text
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(wrapper.pid).status()


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


def test_unreachable_schedd_is_one_clear_sentence(make_hub, monkeypatch):
    # the real bindings against an address where no schedd listens
    monkeypatch.delenv("INK_TEST_SCHEDD", raising=False)
    hub = make_hub(
        {
            "type": "htcondor",
            "options": {
                "identity": "owner",
                "schedd_name": "nosuch@127.0.0.1",
                "collector": "127.0.0.1:9",
                "call_timeout": 20,
            },
        }
    )
    token = hub.user_token("inkt_bob")
    text = start_failure_text(hub, "inkt_bob", token)
    assert "The HTCondor scheduler could not be reached" in text, text
    assert "Traceback" not in text
    # the hub keeps working
    assert hub.api("GET", "/users/inkt_bob", token=token).status_code == 200
    assert requests.get(f"{hub.url}/hub/login", timeout=10).status_code == 200
