"""Start a real INK hub (jupyterhub + configurable-http-proxy) as a subprocess for tests."""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
import yaml

from ink_spawner import origins

from .net import Gone, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]

LAYERED_CONFIG = """
# A site's own config layered on INK's, as sites do: load INK's, then override.
import os
import re
load_subconfig({repo_config!r})
c.JupyterHub.services.append({{"name": "ink-test", "api_token": os.environ["INK_TEST_TOKEN"]}})
c.JupyterHub.load_roles.append({{
    "name": "ink-test",
    "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups", "read:users", "list:users"],
    "services": ["ink-test"],
}})
c.ConfigurableHTTPProxy.api_url = "{proxy_api_scheme}://127.0.0.1:{proxy_api_port}"
c.JupyterHub.log_level = "DEBUG"
"""


class Hub:
    def __init__(self, workdir: Path, site: dict):
        self.workdir = workdir
        self.port = free_port()
        self.hub_port = free_port()
        self.token = secrets.token_hex(16)
        site = dict(site)
        site.setdefault("hub", {}).update(ip="127.0.0.1", port=self.port, hub_port=self.hub_port)
        site.setdefault("paths", {}).setdefault("state", str(workdir / "state"))
        self.site = site
        self.site_file = workdir / "ink.yaml"
        self.config_file = workdir / "jupyterhub_config.py"
        self.log_file = workdir / "hub.log"
        self.proc = None
        # the hub's public URL: users' servers get their own *.localhost origins
        self.url = f"{origins.scheme(site['hub'])}://localhost:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.proxy_api_port = free_port()

    def write(self):
        self.site_file.write_text(yaml.safe_dump(self.site))
        self.config_file.write_text(
            LAYERED_CONFIG.format(
                repo_config=str(REPO / "jupyterhub_config.py"),
                proxy_api_port=self.proxy_api_port,
                # with internal_ssl the proxy's API speaks TLS too
                proxy_api_scheme="https" if self.site["hub"].get("internal_ssl") else "http",
            )
        )

    def start(self):
        self.write()
        env = {**os.environ, "INK_CONFIG": str(self.site_file), "INK_TEST_TOKEN": self.token}
        env["PYTHONPATH"] = str(REPO)  # the test schedd's client lives in tests/
        env.pop("INK_STATE_DIR", None)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.config_file)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, 60, what=f"the hub (log: {self.log_file})")
        return self

    def _up(self):
        if self.proc.poll() is not None:
            raise Gone(f"hub exited: {self.log_file.read_text()[-3000:]}")
        return requests.get(f"{self.url}/hub/health", timeout=2).status_code == 200

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # the proxy the hub started goes with it
        pid_file = Path(self.site["paths"]["state"]) / "proxy.pid"
        if pid_file.exists():
            try:
                psutil.Process(int(pid_file.read_text())).terminate()
            except (psutil.Error, ValueError):
                pass
        self.proc = None

    def stop_servers(self, names, timeout: float = 60) -> None:
        """Stop the users' servers and wait until the hub says they are gone (the hub itself
        must still be up to cancel their jobs)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        asked = [(n, "") for n in names if self.api("DELETE", f"/users/{n}/server").status_code in (202, 204)]
        for name in names:  # named servers (sessions.named_servers) too
            model = self.api("GET", f"/users/{name}").json()
            for server in model.get("servers") or {}:
                if server and self.api("DELETE", f"/users/{name}/servers/{server}").status_code in (202, 204):
                    asked.append((name, server))
        for name, server in asked:
            self.wait_stopped(name, self.token, timeout=timeout, server=server)

    def user_url(self, name: str) -> str:
        """Where the hub serves ``name``'s server: ``http://<name>.localhost:PORT/user/<name>/``
        (JupyterHub's IDNA rule for the host), or under the hub's own origin without per-user
        origins."""
        return origins.user_url(self.site["hub"], name)

    def api(self, method, path, token=None, **kwargs):
        headers = {"Authorization": f"token {token or self.token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)

    def user_token(self, name: str) -> str:
        if self.api("GET", f"/users/{name}").status_code == 404:
            assert self.api("POST", f"/users/{name}").status_code == 201
        r = self.api("POST", f"/users/{name}/tokens", json={"note": "test", "expires_in": 3600})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def metrics_token(self, admin: str = "inkt_carol") -> str:
        """A token of an admin with read:metrics, for the services' Prometheus endpoints."""
        r = self.api("POST", f"/users/{admin}/tokens", json={"scopes": ["read:metrics", "access:services"]})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def metrics_of(self, service: str, token: str | None = None) -> requests.Response:
        """A service's Prometheus page, with ``token`` (default: an admin's read:metrics token)."""
        headers = {"Authorization": f"token {token or self.metrics_token()}"}
        return requests.get(f"{self.url}/services/{service}/metrics", headers=headers, timeout=10)

    def wait_ready(self, name: str, token: str, timeout: float = 180, server: str = ""):
        def ready():
            model = self.api("GET", f"/users/{name}", token=token).json()
            entry = model.get("servers", {}).get(server)
            if entry is None and model.get("pending") is None:
                raise Gone(f"server is gone: {model}")
            return entry if entry and entry.get("ready") else None

        return wait_for(ready, timeout, interval=0.5, what=f"{name}'s server")

    def wait_stopped(self, name: str, token: str, timeout: float = 120, server: str = ""):
        def stopped():
            model = self.api("GET", f"/users/{name}", token=token).json()
            return server not in model.get("servers", {})

        return wait_for(stopped, timeout, interval=0.5, what=f"{name}'s server to stop")

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")


def service_records(hub: Hub, name: str):
    """A service's records (jobs, shares, shell-prefs) where the hub's services keep them
    (``configurer.service_records``: the hub's database when the site names one, else files)."""
    from ink_core.jsonstore import RecordStore
    from ink_spawner.configurer import load_site_config
    from ink_spawner.configurer import service_records as records_of

    return RecordStore(records_of(load_site_config(hub.site_file), name)).records


def spawn_and_wait(hub: Hub, name: str, token: str, options=None, timeout=180):
    started = time.monotonic()
    r = hub.api("POST", f"/users/{name}/server", token=token, json=options or {})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(name, token, timeout)
    return time.monotonic() - started


def hub_login(hub: Hub, name: str, password: str) -> requests.Session:
    """A requests session logged in through the hub's login form."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=10)
    xsrf = next(c.value for c in session.cookies if c.name == "_xsrf")
    r = session.post(
        f"{hub.url}/hub/login", data={"username": name, "password": password, "_xsrf": xsrf}, timeout=30
    )
    assert r.status_code == 200, r.text[-500:]
    return session


def login_session(hub: Hub, name: str, password: str, service_path: str):
    """A requests session logged in through the hub's login form, opened on a service's page:
    (session, the XSRF token that page carries)."""
    session = hub_login(hub, name, password)
    page = session.get(f"{hub.url}{service_path}", timeout=30)
    assert page.status_code == 200, page.text[-500:]
    return session, page_xsrf(page.text)


def page_xsrf(html: str) -> str:
    """The XSRF token an INK page carries for its scripts (in its JSON settings block)."""
    return re.search(r'"xsrf": "([^"]+)"', html).group(1)
