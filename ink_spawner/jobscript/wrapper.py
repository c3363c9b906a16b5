"""The job wrapper: set up the image and experiment, start the server, report host:port.

Runs as the user inside the batch job. Everything it needs comes in the environment the hub
gave the job (INK_* and JUPYTERHUB_*). On SIGTERM (stop, scancel, walltime) it ends the whole
process tree it started, so nothing the server launched is left behind on the node.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import psutil

from ink_core import jobsettings
from ink_core.hubtls import hub_tls

from .credentials_agent import start_agent
from .monitor_agent import start_monitor
from .processes import job_processes

CALLBACK_RETRIES = 10


def log(message: str) -> None:
    print(f"[ink-wrapper {time.strftime('%H:%M:%S')}] {message}", flush=True)


def source_setup(script: str, env: dict) -> dict:
    """Environment after sourcing a site's set-up script (paths come from the admin's profiles).

    The environment comes back through a private file, not a pipe: a set-up script that starts
    a background process (an agent, a daemon) must not keep the wrapper waiting.
    """
    with tempfile.NamedTemporaryFile(prefix="ink-env-") as out:
        result = subprocess.run(
            [
                "bash",
                "-c",
                'set -a; source "$1" >&2 || exit $?; env -0 > "$2"',
                "ink-setup",
                script,
                out.name,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"set-up script {script} failed with exit code {result.returncode}")
        data = out.read()
    new_env = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            key, _, value = item.partition(b"=")
            new_env[key.decode()] = value.decode(errors="replace")
    return new_env


def job_host(configured: str) -> str:
    """The address the hub's proxy reaches this job at."""
    if configured:
        return configured
    name = socket.getfqdn()
    try:
        return socket.gethostbyname(name)
    except OSError:
        return name


def free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def own_listener(pid: int, port: int) -> bool:
    """Whether the process ``pid`` itself listens on ``port``: a socket another user bound on
    the same port (a racer that read the port somewhere) is not the job's server."""
    try:
        connections = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def wait_own_listener(port: int, child: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if own_listener(child.pid, port):
            return True
        time.sleep(0.1)
    return False


def start_server(command: list[str], env: dict, bind_ip: str, attempts: int = 5):
    """Start the single-user server on a free port and wait until it listens there itself.

    The port travels only in the server's environment (JUPYTERHUB_SERVICE_URL, readable by the
    user alone), never on its command line, which every user of the node sees in ``ps``. If
    someone bound the port in the moment between choosing and binding, the server cannot listen
    (it does not retry other ports) and another port is tried. Returns (child, port) or None."""
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    for attempt in range(attempts):
        port = free_port(bind_ip)
        scheme = "https" if env.get("JUPYTERHUB_SSL_CERTFILE") else "http"  # internal_ssl
        env["JUPYTERHUB_SERVICE_URL"] = f"{scheme}://{bind_ip}:{port}{prefix}"
        child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        if wait_own_listener(port, child, timeout=300):
            return child, port
        code = child.poll()
        if code is None:  # never listened within the timeout: give up
            child.kill()
            return None
        log(f"the server exited with {code} before listening on port {port} (taken?); attempt {attempt + 2}")
    return None


def report(url: str, token: str, host: str, port: int) -> None:
    body = json.dumps({"host": host, "port": port}).encode()
    for attempt in range(CALLBACK_RETRIES):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=hub_tls()):
                return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                raise RuntimeError(f"the hub refused the report: {e.code} {e.read()[:200]!r}") from None
            log(f"the hub answered {e.code}; retrying")
        except OSError as e:
            log(f"cannot reach the hub ({e}); retrying")
        time.sleep(min(2**attempt * 0.2, 5))
    raise RuntimeError("the hub could not be reached to report this job's address")


def kill_tree(grace: float = 5.0) -> None:
    """End everything the job started: polite first, then SIGKILL."""
    children = job_processes()
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass


def build_env(base: dict) -> dict:
    """``base`` after the image's and the experiment's set-up scripts (INK_SETUP), in order."""
    env = dict(base)
    for script in jobsettings.from_env(base).setup:
        log(f"sourcing {script}")
        env = source_setup(script, env)
    return env


def load_env_file(keep: bool = False) -> None:
    """Batch systems whose job ads are public get the environment in a private file instead.
    It holds the server's token: removed when the job ends (kept while it runs, so a job the
    scheduler restarts after an eviction can read it again). ``keep``: an array's task, whose
    file the tasks still to come read too."""
    path = os.environ.get("INK_ENV_FILE")
    if path:
        with open(path) as f:
            os.environ.update(json.load(f))
        if not keep:
            atexit.register(_remove_quietly, path)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def server_proxy_config(servers: dict, env: dict) -> str:
    """The app's jupyter-server-proxy entry as Jupyter config the single-user server reads:
    a private folder put first on JUPYTER_CONFIG_PATH. In a command ``{python}`` is this job's
    Python, ``{prefix}`` INK's prefix, ``{home}`` the user's home; ``{port}`` and
    ``{unix_socket}`` are left for jupyter-server-proxy. Apps on a Unix socket run behind INK's
    launcher, which shows the user why an app did not start instead of a spinning page."""
    places = {"{python}": sys.executable, "{prefix}": sys.prefix, "{home}": os.path.expanduser("~")}
    title = jobsettings.from_env(env).app_title or "The app"
    for entry in servers.values():
        command = entry.get("command", [])
        for placeholder, value in places.items():
            command = [part.replace(placeholder, value) for part in command]
        if entry.get("unix_socket") is True and command:
            # a failed start becomes a page with the app's last output (ink_spawner/apps/launch.py)
            launch = [sys.executable, "-m", "ink_spawner.apps.launch", "--unix-socket", "{unix_socket}"]
            command = [*launch, "--title", title, "--", *command]
        entry["command"] = command
        entry.setdefault("absolute_url", False)
    folder = tempfile.mkdtemp(prefix="ink-jupyter-config-")  # mode 700, the user's
    with open(os.path.join(folder, "jupyter_server_config.json"), "w") as f:
        json.dump({"ServerProxy": {"servers": servers}}, f)
    return os.pathsep.join(p for p in (folder, env.get("JUPYTER_CONFIG_PATH", "")) if p)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-job")
    parser.add_argument("--app", required=True, help="the app this job serves (for ps and stats)")
    args = parser.parse_args(argv)
    load_env_file()
    settings = jobsettings.from_env(os.environ)  # what the hub sent, before any set-up script runs

    log_path = settings.log
    if log_path:
        os.makedirs(os.path.dirname(log_path), mode=0o700, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def on_signal(signum, frame):
        log(f"signal {signum}: stopping")
        kill_tree()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    base_env = dict(os.environ)
    start_agent(base_env, log)  # KRB5CCNAME set before set-up scripts and the app
    try:
        env = build_env(base_env)
    except RuntimeError as e:
        log(str(e))
        return 2
    bind_ip = settings.job_ip or "0.0.0.0"
    host = job_host(settings.job_ip)
    start_monitor(env, log)
    if settings.server_proxy:
        env["JUPYTER_CONFIG_PATH"] = server_proxy_config(settings.server_proxy, env)
    # the server and the user's code do not need the wrapper's settings (a site's own INK_*
    # variables, an experiment's env, stay)
    for key in [*jobsettings.INTERNAL, "INK_ENV_FILE"]:
        env.pop(key, None)
    command = settings.server_command + settings.app_args
    log(f"starting {args.app} on {host}")
    started = start_server(command, env, bind_ip)
    if started is None:
        log("the server did not start listening")
        kill_tree()
        return 3
    child, port = started
    log(f"{args.app} listens on {host}:{port}")
    try:
        report(settings.callback_url, os.environ["JUPYTERHUB_API_TOKEN"], host, port)
    except RuntimeError as e:
        log(str(e))
        kill_tree()
        return 4
    log("reported to the hub; serving")
    code = child.wait()
    log(f"server exited with {code}")
    kill_tree()
    return code
