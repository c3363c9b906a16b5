"""The SSH node app: spawned as alice's job (local backend and Slurm). Its page, seen in Chromium,
gives the ~/.ssh/config stanza; OpenSSH's own client, with exactly that stanza and `ink ssh-proxy`
as ProxyCommand, runs commands in the job and copies files both ways through the hub. A wrong
token, bob's token and a browser's websocket are refused; no TCP port is opened on the node;
stopping the server ends every sshd."""

import hashlib
import os
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect

from ink_client import api
from ink_client.sshproxy import stream_connect
from tests.helpers.browser import login
from tests.helpers.devpts import devpts_mounted
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.helpers.sshclient import Laptop
from tests.integration.test_callback_security import server_token

USER = "inkt_alice"
# sshd speaks first ("SSH-2.0-..."): a page that reaches it would see that banner
BROWSER_WEBSOCKET = """url => new Promise(done => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onmessage = m => done(new TextDecoder().decode(m.data).slice(0, 20));
  ws.onclose = () => done("closed");
  setTimeout(() => done("silent"), 15000);
})"""


@pytest.fixture
def standard_devpts():
    """Linux systems mount /dev/pts with gid=5,mode=620 (systemd's default), which is what lets a
    user's sshd hand out terminals; some containers mount it otherwise: use the standard options
    for the test and put the old ones back after."""
    with devpts_mounted("gid=5,mode=620"):
        yield


def ssh_processes(user: str) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "username", "cmdline"])
        if p.info["username"] == user
        and (p.info["name"] == "sshd" or "ink_spawner.apps.sshnode" in " ".join(p.info["cmdline"] or []))
    ]


def stream_sshds() -> list[psutil.Process]:
    """alice's sshds started by her session's own server (ink/ssh), not by the node's app."""
    found = []
    for proc in ssh_processes(USER):
        try:
            parent = proc.parent()
            if proc.name() == "sshd" and parent and "jupyterhub.singleuser" in " ".join(parent.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_ssh_node_in_a_job(
    backend, request, make_hub, unix_users, output_dir, browser, tmp_path, standard_devpts
):
    if backend == "slurm":
        slurm = request.getfixturevalue("slurm")
        hub = make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    else:
        hub = make_hub({"type": "local"})
    alice = pwd.getpwnam(USER)
    home = Path(alice.pw_dir)
    for name in ("from-laptop.txt", "made-on-node.txt"):
        (home / name).unlink(missing_ok=True)
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token, {"app": "sshnode"})

    # the node's page, as alice sees it after the spawn: the stanza to copy and the host key
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    login(page, hub, USER, unix_users[USER], output_dir, "alice")
    page.goto(hub.user_url(USER) + "sshnode/")
    expect(page.locator("#ink-ssh-host")).to_have_text(socket.gethostname())
    expect(page.locator(".problem")).to_have_count(0)  # sshd found, terminals possible
    stanza = page.locator("#ink-ssh-config").text_content()
    assert f"ProxyCommand ink --hub {hub.url} ssh-proxy {USER}" in stanza
    assert f"Host ink-{USER}" in stanza and f"User {USER}" in stanza
    fingerprint = page.locator("#ink-ssh-hostkey").text_content().split()[1]
    assert fingerprint.startswith("SHA256:")
    page.screenshot(path=str(output_dir / f"sshnode-page-{backend}.png"))
    # a web page cannot open the node's websocket with alice's cookies
    ws_url = re.sub("^http", "ws", hub.user_url(USER))
    assert page.evaluate(BROWSER_WEBSOCKET, ws_url + "sshnode/connect") == "closed"
    assert page.evaluate(BROWSER_WEBSOCKET, ws_url + "ink/ssh") == "closed"

    laptop = Laptop(tmp_path / "laptop", hub, token, stanza)
    alias = f"ink-{USER}"
    ran = laptop.ssh(alias, "hostname; id -un; pwd")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [socket.gethostname(), USER, str(home)]
    # the host key ssh trusted is the one the page shows
    seen = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "laptop" / "known_hosts")], capture_output=True, text=True
    )
    assert fingerprint in seen.stdout and alias in seen.stdout

    # scp both ways (OpenSSH 9 copies over SFTP): 2 MiB of random bytes, compared by SHA-256
    sent = tmp_path / "laptop" / "results.bin"
    sent.write_bytes(os.urandom(2 * 1024 * 1024))
    assert laptop.scp(str(sent), f"{alias}:from-laptop.bin").returncode == 0
    digest = hashlib.sha256(sent.read_bytes()).hexdigest()
    assert hashlib.sha256((home / "from-laptop.bin").read_bytes()).hexdigest() == digest
    assert (home / "from-laptop.bin").stat().st_uid == alice.pw_uid
    made = laptop.ssh(alias, "head -c 2097152 /dev/urandom > made-on-node.bin && sha256sum made-on-node.bin")
    assert made.returncode == 0, made.stderr
    back = tmp_path / "laptop" / "back.bin"
    copied = laptop.scp(f"{alias}:made-on-node.bin", str(back))
    assert copied.returncode == 0, copied.stderr
    assert back.stat().st_size == 2 * 1024 * 1024
    assert hashlib.sha256(back.read_bytes()).hexdigest() == made.stdout.split()[0]
    who = laptop.ssh(alias, "echo on $(hostname) as $(id -un)")
    assert who.stdout == f"on {socket.gethostname()} as {USER}\n"
    # no relay on the node: the session's server hands the connection itself to sshd
    held = subprocess.Popen(
        ["ssh", "-F", str(laptop.config), alias, "sleep 8"], env=laptop.env, stdin=subprocess.DEVNULL
    )
    try:
        handed = wait_for(lambda: stream_sshds(), 20, what="an sshd of the stream")
        # sshd holds the TCP connection from the hub's proxy itself (through pipes before)
        for sshd in handed:
            held_by_sshd = [c for c in sshd.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED]
            assert held_by_sshd, sshd
    finally:
        held.wait(30)

    # an interactive terminal
    tty = laptop.ssh("-tt", alias, "tty")
    assert tty.returncode == 0 and "/dev/pts/" in tty.stdout, tty.stdout + tty.stderr

    # the job's hub token never reaches the ssh session's environment
    env = laptop.ssh(alias, "env")
    job_token = server_token(USER)
    assert env.returncode == 0 and "JUPYTERHUB_API_TOKEN" not in env.stdout
    assert job_token not in env.stdout and token not in env.stdout
    found = laptop.ssh(alias, f"grep -rl {job_token} /proc/self/environ ~/.ssh 2>/dev/null; true")
    assert job_token not in found.stdout and found.stdout.strip() == "", found.stdout

    # a wrong token, and bob's token, are turned away before any sshd runs
    wrong = Laptop(tmp_path / "wrong", hub, token, stanza)
    tokens = Path(wrong.env["XDG_CONFIG_HOME"]) / "ink" / "tokens.json"
    tokens.write_text(tokens.read_text().replace(token, "0" * len(token)))
    refused = wrong.ssh(alias, "id -un")
    assert refused.returncode == 255 and "refused the token" in refused.stderr
    assert USER not in refused.stdout
    bob_token = hub.user_token("inkt_bob")
    bob = Laptop(tmp_path / "bob", hub, bob_token, stanza)
    refused = bob.ssh(alias, "id -un")
    assert refused.returncode == 255 and USER not in refused.stdout
    # bob (or no one) asking alice's server for her stream directly gets no sshd
    api.resolve_localhost_names()
    before = {p.pid for p in stream_sshds()}
    for attacker in (bob_token, ""):
        with pytest.raises(api.ClientError) as turned_away:
            stream_connect(hub.user_url(USER) + "ink/ssh", attacker)
        assert turned_away.value.code == api.AUTH, turned_away.value
    assert {p.pid for p in stream_sshds()} <= before

    # nothing of the node listens on TCP
    procs = ssh_processes(USER)
    assert procs, "the node's launcher runs as alice"
    for proc in procs:
        assert not [c for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN], proc

    # stopping the server ends the node and every sshd
    page.close()
    assert hub.api("DELETE", f"/users/{USER}/server", token=token).status_code in (202, 204)
    hub.wait_stopped(USER, token)
    wait_for(lambda: not ssh_processes(USER), 30, what="the SSH node to end with the job")
    shutil.rmtree(tmp_path / "laptop", ignore_errors=True)
