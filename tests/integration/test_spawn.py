"""A real Unix user spawns JupyterLab through the hub REST API on local and Slurm backends."""

import json

import psutil
import pytest
import requests

from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for


def reach_server(hub, name, token):
    r = requests.get(
        hub.user_url(name) + "api/status", headers={"Authorization": f"token {token}"}, timeout=10
    )
    return r


def command_lines(processes) -> list[str]:
    """The command lines of those processes still there (a short-lived child may have ended,
    or be a zombie, between listing and asking)."""
    found = []
    for process in processes:
        try:
            found.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue
    return found


def job_processes(username):
    return [
        p
        for p in psutil.process_iter(["username", "cmdline"])
        if p.info["username"] == username and "ink_spawner.jobscript" in (p.info["cmdline"] or [])
    ]


def test_local_spawn_runs_as_user_and_stops(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token)
    r = reach_server(hub, "inkt_bob", token)
    assert r.status_code == 200, r.text
    # a JupyterLab session serves no SSH stream: that is the SSH node app's alone
    r = requests.get(
        hub.user_url("inkt_bob") + "ink/ssh",
        headers={
            "Authorization": f"token {token}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
        timeout=10,
    )
    assert r.status_code == 404
    procs = job_processes("inkt_bob")
    assert procs, "the job wrapper runs as the user"
    tree = procs[0].children(recursive=True)
    assert tree and all(p.username() == "inkt_bob" for p in tree)
    assert hub.api("DELETE", "/users/inkt_bob/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_bob", token)
    wait_for(
        lambda: not job_processes("inkt_bob") and not any(p.is_running() for p in tree),
        30,
        what="the job's whole process tree to end",
    )


def test_local_spawn_survives_hub_restart(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token)
    pid = job_processes("inkt_bob")[0].pid
    hub.stop()
    assert psutil.pid_exists(pid), "stopping the hub must not stop the user's job"
    hub.start()
    hub.wait_ready("inkt_bob", token, 60)
    assert reach_server(hub, "inkt_bob", token).status_code == 200
    assert job_processes("inkt_bob")[0].pid == pid


def test_hub_restart_during_a_start_leaves_no_orphan_job(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_alice")
    r = hub.api("POST", "/users/inkt_alice/server", token=token, json={"experiment": "slow"})
    assert r.status_code == 202
    wait_for(lambda: job_processes("inkt_alice"), 20, what="alice's job")
    hub.stop()
    hub.start()
    wait_for(lambda: not job_processes("inkt_alice"), 60, what="the interrupted job to be cancelled")
    hub.wait_stopped("inkt_alice", token, timeout=30)
    spawn_and_wait(hub, "inkt_alice", token, {})  # and the user can start again


def test_local_job_killed_outside_is_noticed(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token)
    for proc in job_processes("inkt_bob"):
        proc.kill()
    # the hub polls (poll_interval); a request for the server triggers a check too
    hub.wait_stopped("inkt_bob", token, timeout=90)


def test_spawn_beyond_limits_is_refused_with_400(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_bob")
    r = hub.api("POST", "/users/inkt_bob/server", token=token, json={"memory": "64G"})
    assert r.status_code == 400
    assert "memory" in r.json()["message"] and "2G" in r.json()["message"]
    r = hub.api("POST", "/users/inkt_bob/server", token=token, json={"app": "rootbrowser"})
    assert r.status_code == 400 and "app" in r.json()["message"]
    r = hub.api("POST", "/users/inkt_bob/server", token=token, json={"cmd": ["/bin/sh"]})
    assert r.status_code == 400 and "cmd" in r.json()["message"]
    assert not job_processes("inkt_bob")


def test_admin_changes_group_allowance_without_restart(make_hub):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_alice")
    r = hub.api("POST", "/users/inkt_alice/server", token=token, json={"memory": "8G"})
    assert r.status_code == 400, "juno allows 4G"
    group = hub.api("GET", "/groups/juno").json()
    properties = group["properties"]
    properties["ink"]["max_memory"] = "8G"
    r = hub.api("PUT", "/groups/juno/properties", json=properties)
    assert r.status_code == 200, r.text
    spawn_and_wait(hub, "inkt_alice", token, {"memory": "8G", "app": "jupyterlab"})
    options = hub.api("GET", "/users/inkt_alice", token=token).json()["servers"][""]["user_options"]
    assert options["memory"] == "8G"


@pytest.mark.slurm
def test_slurm_spawn_stop_scancel_and_restart(make_hub, slurm):
    hub = make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"cpus": 2, "memory": "1G", "experiment": "juno"})
    jobs = slurm.squeue()
    mine = [j for j in jobs if j[1] == "inkt_alice" and j[2] == "RUNNING"]
    assert len(mine) == 1, jobs
    job_id = mine[0][0]
    assert reach_server(hub, "inkt_alice", token).status_code == 200

    # the hub restarts while the server runs: still reachable after
    hub.stop()
    hub.start()
    hub.wait_ready("inkt_alice", token, 60)
    assert reach_server(hub, "inkt_alice", token).status_code == 200
    assert [j[0] for j in slurm.squeue() if j[1] == "inkt_alice"] == [job_id]

    # stopping the server removes the job
    assert hub.api("DELETE", "/users/inkt_alice/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_alice", token)
    wait_for(
        lambda: not [j for j in slurm.squeue() if j[0] == job_id and j[2] in ("RUNNING", "PENDING")],
        30,
        what="the job to leave squeue",
    )

    # scancel from outside is noticed by the hub
    spawn_and_wait(hub, "inkt_alice", token, {"memory": "1G"})
    job_id = [j for j in slurm.squeue() if j[1] == "inkt_alice" and j[2] == "RUNNING"][0][0]
    assert slurm.run(["scancel", job_id]).returncode == 0
    hub.wait_stopped("inkt_alice", token, timeout=90)


def progress_events(hub, name, token):
    r = requests.get(
        f"{hub.url}/hub/api/users/{name}/server/progress",
        headers={"Authorization": f"token {token}"},
        stream=True,
        timeout=120,
    )
    events = []
    for line in r.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            events.append(json.loads(line[5:]))
            if events[-1].get("failed") or events[-1].get("ready"):
                break
    return events


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_failed_job_shows_reason_and_log_tail(make_hub, backend, request):
    options = {}
    if backend == "slurm":
        options = {"slurm_conf": str(request.getfixturevalue("slurm").conf)}
    hub = make_hub({"type": backend, "options": options})
    token = hub.user_token("inkt_carol")
    r = hub.api("POST", "/users/inkt_carol/server", token=token, json={"experiment": "broken"})
    assert r.status_code in (201, 202, 500), r.text
    events = progress_events(hub, "inkt_carol", token) if r.status_code == 202 else []
    text = json.dumps(events) + r.text
    assert "ended before JupyterLab started" in text
    assert "/nonexistent/ink/setup.sh" in text, "the job log's tail reaches the user"
    messages = [e.get("message", "") for e in events]
    assert any("submitted" in m for m in messages) or r.status_code == 500
    hub.wait_stopped("inkt_carol", token, timeout=30)


def test_a_hub_user_named_like_a_system_account_gets_no_server(make_hub):
    """A hub admin can create any hub name; INK still never runs a job as daemon (uid 1)."""
    hub = make_hub({"type": "local"})
    assert hub.api("POST", "/users/daemon").status_code == 201
    token = hub.user_token("daemon")
    r = hub.api("POST", "/users/daemon/server", token=token, json={})
    text = r.text + (json.dumps(progress_events(hub, "daemon", token)) if r.status_code == 202 else "")
    assert "system account (uid 1 &lt; 1000)" in text or "system account (uid 1 < 1000)" in text, text
    assert not [p for p in psutil.process_iter(["username"]) if p.info["username"] == "daemon"]
    assert "refused to start a server: 'daemon' is a system account" in hub.log_text()


def user_processes(username):
    return [p for p in psutil.process_iter(["username", "cmdline"]) if p.info["username"] == username]


def test_a_killed_wrapper_leaves_nothing_behind(make_hub):
    """The user (or the OOM killer) kills the wrapper: the hub notices, and stopping the job
    ends the single-user server too, though its leader is gone."""
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token)
    (wrapper,) = job_processes("inkt_bob")
    assert any(
        "jupyterhub.singleuser" in command for command in command_lines(wrapper.children(recursive=True))
    ), "the single-user server runs under the wrapper"
    wrapper.kill()
    hub.wait_stopped("inkt_bob", token, timeout=60)
    wait_for(lambda: not user_processes("inkt_bob"), 30, what="the server to end with its job")


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_a_set_up_scripts_background_process_ends_with_the_job(make_hub, backend, request):
    """The klist experiment's set-up starts a double-forked loop (reparented to init): it ends
    when the server stops, as everything of the job's session does (on Slurm with
    ``proctrack/pgid``, as production sites track jobs, not ``linuxproc``)."""
    site_backend = {"type": "local"}
    if backend == "slurm":
        site_backend = {
            "type": "slurm",
            "options": {"slurm_conf": str(request.getfixturevalue("slurm").conf)},
        }
    hub = make_hub(site_backend)
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token, {"experiment": "klist"})
    wrapper = job_processes("inkt_bob")[0]
    tree = {p.pid for p in wrapper.children(recursive=True)}
    orphans = wait_for(
        lambda: [p for p in user_processes("inkt_bob") if p.pid not in tree and p.pid != wrapper.pid],
        20,
        what="the set-up's background loop",
    )
    assert orphans, "the loop is outside the wrapper's tree"
    assert hub.api("DELETE", "/users/inkt_bob/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_bob", token)
    wait_for(lambda: not user_processes("inkt_bob"), 30, what="every process of the job to end")
