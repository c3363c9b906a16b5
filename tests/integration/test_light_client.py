"""The light client: `pip install` of INK without extras brings the `ink` command a laptop needs
(login, jobs, files, ssh-proxy) and none of the hub's dependencies; it works against a running
hub, and the hub-side commands say which install has them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HUB_ONLY = {"jupyterhub", "krb5", "xrootd", "astropy", "distributed", "uproot", "jupyterlab"}


@pytest.fixture(scope="module")
def laptop(tmp_path_factory) -> Path:
    """A fresh virtual environment with INK installed as a laptop would (no extras)."""
    root = tmp_path_factory.mktemp("laptop")
    source = root / "src"  # a copy without build leftovers of the checkout
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "test-output", "build", "*.egg-info", "node_modules", ".ruff_cache"
        ),
    )
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(root / "venv")], check=True)
    pip = [str(root / "venv" / "bin" / "pip"), "install", "-q", str(source)]
    subprocess.run(pip, check=True, timeout=600, capture_output=True)
    return root / "venv" / "bin"


def test_the_client_installs_without_the_hub(laptop):
    listed = subprocess.run([laptop / "pip", "list", "--format=json"], capture_output=True, text=True)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert "ink-workbench" in installed and "requests" in installed
    assert not installed & HUB_ONLY, installed & HUB_ONLY
    up = subprocess.run([laptop / "ink", "up"], capture_output=True, text=True)
    assert up.returncode == 2 and "pip install 'ink-workbench[hub]'" in up.stderr, up.stderr
    assert "Traceback" not in up.stderr


def test_the_client_works_against_a_hub(laptop, make_hub, unix_users, tmp_path):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_alice")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    login = subprocess.run(
        [laptop / "ink", "login", hub.url, "--token", token], env=env, capture_output=True, text=True
    )
    assert login.returncode == 0 and "as inkt_alice" in login.stdout, login.stderr
    submit = subprocess.run(
        [laptop / "ink", "--json", "jobs", "submit", "--", "/bin/echo", "from the laptop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submit.returncode == 0, submit.stderr
    job = json.loads(submit.stdout)
    listed = subprocess.run([laptop / "ink", "jobs", "ls"], env=env, capture_output=True, text=True)
    assert job["id"] in listed.stdout, listed.stdout
    files = subprocess.run([laptop / "ink", "files", "ls", "home"], env=env, capture_output=True, text=True)
    assert files.returncode == 0, files.stderr
    proxy = subprocess.run([laptop / "python", "-c", "import ink_client.sshproxy"], capture_output=True)
    assert proxy.returncode == 0, proxy.stderr
    assert sys.executable not in str(laptop)
