"""The job callback accepts host and port only, from that server's own token, while starting."""

import requests

from tests.helpers.net import wait_for
from tests.integration.test_spawn import job_processes


def server_token(username):
    """The token the hub gave the job (read as root from the wrapper's environment)."""
    proc = job_processes(username)[0]
    return proc.environ()["JUPYTERHUB_API_TOKEN"]


def post(hub, token, body):
    return requests.post(
        f"{hub.url}/hub/api/ink/job-ready", json=body, headers={"Authorization": f"token {token}"}, timeout=10
    )


def test_callback_refuses_everything_but_its_own_host_and_port(make_hub):
    hub = make_hub({"type": "local"})
    alice = hub.user_token("inkt_alice")
    bob = hub.user_token("inkt_bob")
    r = hub.api("POST", "/users/inkt_alice/server", token=alice, json={"experiment": "slow"})
    assert r.status_code in (201, 202)
    # the set-up script sleeps: the server is starting and waiting for its report
    wait_for(lambda: job_processes("inkt_alice"), 20, what="alice's job")
    token = server_token("inkt_alice")

    r = post(hub, token, {"host": "127.0.0.1", "port": 1, "exec_prefix": "rm -rf /"})
    assert r.status_code == 400 and "exec_prefix" in r.json()["message"]
    r = post(hub, token, {"host": "127.0.0.1", "port": 1, "cmd": ["/bin/sh"]})
    assert r.status_code == 400
    r = post(hub, token, {"host": "bad host;", "port": 1})
    assert r.status_code == 400
    r = post(hub, bob, {"host": "127.0.0.1", "port": 1})
    assert r.status_code == 403, "another user's token"
    r = post(hub, alice, {"host": "127.0.0.1", "port": 1})
    assert r.status_code == 403, "the user's own API token is not the server's token"
    r = post(hub, hub.token, {"host": "127.0.0.1", "port": 1})
    assert r.status_code == 403, "a service token"

    server = hub.wait_ready("inkt_alice", alice, 120)
    model = hub.api("GET", "/users/inkt_alice").json()["servers"][""]
    assert server["ready"] and model["url"] == hub.user_url("inkt_alice")
    # the server really answers: the hub took the job's own report, not a forged one
    r = requests.get(
        hub.user_url("inkt_alice") + "api/status", headers={"Authorization": f"token {alice}"}, timeout=10
    )
    assert r.status_code == 200
    # once running, even the right token cannot move the server
    r = post(hub, token, {"host": "127.0.0.1", "port": 2})
    assert r.status_code == 409
    r = requests.get(
        hub.user_url("inkt_alice") + "api/status", headers={"Authorization": f"token {alice}"}, timeout=10
    )
    assert r.status_code == 200


def test_batchspawner_stock_handler_is_not_reachable(make_hub):
    hub = make_hub({"type": "local"})
    alice = hub.user_token("inkt_alice")
    r = requests.post(
        f"{hub.url}/hub/api/batchspawner",
        json={"port": 1, "exec_prefix": "x"},
        headers={"Authorization": f"token {alice}"},
        timeout=10,
    )
    assert r.status_code == 404
