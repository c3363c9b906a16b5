"""A crash is not an outage: a hub killed outright (``kill -9``) takes its managed services
with it, so the next hub starts its own on the same ports; the running session lives on."""

import os
import signal

import psutil
import requests

from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_spawn import job_processes

SERVICES = ("files", "shell", "jobs", "dashboard")


def listeners(ports) -> dict[int, int]:
    """port -> pid of the process listening there."""
    found = {}
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in ports and conn.pid:
            found[conn.laddr.port] = conn.pid
    return found


def test_a_hub_killed_outright_takes_its_services_but_not_the_session(make_hub):
    hub = make_hub({"type": "local"}, adjust=lambda site: {**site, "sessions": {"idle_timeout": "1h"}})
    token = hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_bob", token)
    ports = {hub.site[name]["port"] for name in SERVICES}
    services = listeners(ports)
    assert set(services) == ports, services
    culler = [p for p in psutil.Process(hub.proc.pid).children() if "jupyterhub_idle_culler" in p.cmdline()]
    assert len(culler) == 1
    (wrapper,) = job_processes("inkt_bob")

    os.kill(hub.proc.pid, signal.SIGKILL)
    hub.proc.wait()
    pids = [*services.values(), culler[0].pid]
    wait_for(lambda: not [p for p in pids if psutil.pid_exists(p)], 15, what="the services to end")
    assert wrapper.is_running(), "the running session outlives the hub"

    hub.proc = None
    hub.start()  # the same site: the same ports, now free
    assert set(listeners(ports)) == ports
    r = requests.get(
        f"{hub.url}/services/ink-files/api/v1/list/home",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    hub.wait_ready("inkt_bob", token, 60)  # the new hub finds the session's job again
    assert wrapper.is_running()
