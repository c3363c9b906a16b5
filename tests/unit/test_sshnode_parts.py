"""The SSH node's parts that need no job: the proxy's URL and errors, sshd's config, the page."""

import getpass
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tornado.testing import AsyncHTTPTestCase, gen_test
from tornado.websocket import websocket_connect

from ink_client import api
from ink_client.sshproxy import explain, node_url, parse_target
from ink_spawner.apps import sshnode


@pytest.mark.parametrize(
    "server_url, url",
    [
        ("http://alice.localhost:8000/user/alice/", "ws://alice.localhost:8000/user/alice/sshnode/connect"),
        (
            "https://hub.example.org/ink/user/alice/gpu1/",
            "wss://hub.example.org/ink/user/alice/gpu1/sshnode/connect",
        ),
        ("https://h/user/a.b-c%40x/", "wss://h/user/a.b-c%40x/sshnode/connect"),
    ],
)
def test_node_url(server_url, url):
    assert node_url(server_url) == url


@pytest.mark.parametrize(
    "target, parts",
    [("alice", ("alice", "")), ("alice/gpu1", ("alice", "gpu1")), ("a.b-c@x", ("a.b-c@x", ""))],
)
def test_targets(target, parts):
    assert parse_target(target) == parts


@pytest.mark.parametrize("target", ["", "../alice", "alice/../bob", "a/b/c", "alice/", "al ice", "alice?x=1"])
def test_odd_targets_are_refused(target):
    with pytest.raises(api.ClientError) as e:
        parse_target(target)
    assert e.value.code == api.USAGE


def test_localhost_names_resolve_to_loopback():
    """Per-user origins of a hub on localhost: the ``ink`` command resolves them as browsers do."""
    import socket

    api.resolve_localhost_names()
    for name in ("u-inktalic--abf5d49.localhost", "alice.LOCALHOST."):
        assert {a[4][0] for a in socket.getaddrinfo(name, 80)} <= {"127.0.0.1", "::1"}
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("alice.localhost.invalid", 80)


@pytest.mark.parametrize(
    "code, words, exit_code",
    [
        (403, "refused the token", api.AUTH),
        (302, "refused the token", api.AUTH),
        (404, "no SSH node is running", api.NOT_FOUND),
        (503, "no SSH node is running", api.UNAVAILABLE),
    ],
)
def test_proxy_errors_are_one_sentence(code, words, exit_code):
    error = explain("ws://h/user/a/sshnode/connect?token=x", code)
    assert words in str(error) and "token=x" not in str(error)
    assert error.code == exit_code


def test_sshd_config_gives_only_this_user_and_no_passwords(tmp_path, monkeypatch):
    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/krb5cc_job")
    config = sshnode.write_sshd_config(tmp_path, tmp_path / "key", "INFO").read_text()
    lines = {
        line.split(None, 1)[0]: line.split(None, 1)[1]
        for line in config.splitlines()
        if line and line[0] != "#"
    }
    assert lines["AllowUsers"] == getpass.getuser()
    assert lines["AuthorizedKeysCommandUser"] == getpass.getuser()
    assert lines["PasswordAuthentication"] == "no" and lines["PermitRootLogin"] == "no"
    assert lines["AllowTcpForwarding"] == "local" and lines["GatewayPorts"] == "no"
    assert lines["SetEnv"] == "KRB5CCNAME=FILE:/tmp/krb5cc_job"
    assert lines["HostKey"] == str(tmp_path / "key")


def test_host_key_is_kept_from_job_to_job(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    first = sshnode.host_key(tmp_path / "job1")
    assert first.parent == tmp_path / "home" / ".ink" / "ssh"
    assert (first.stat().st_mode & 0o777) == 0o600
    again = sshnode.host_key(tmp_path / "job2")
    assert again == first and sshnode.fingerprint(first.with_suffix(".pub")).startswith("256 SHA256:")


class PageTest(AsyncHTTPTestCase):
    def get_app(self):
        self.folder = Path(self.enterContext(__import__("tempfile").TemporaryDirectory()))
        self.env = self.enterContext(pytest.MonkeyPatch.context())
        self.env.setenv("HOME", str(self.folder))
        self.env.setenv("JUPYTERHUB_SERVER_NAME", "gpu<1>")
        self.env.setenv("JUPYTERHUB_BASE_URL", "/ink/</script>/")
        return sshnode.make_app(self.folder)

    def test_page_escapes_and_names_the_server(self):
        page = self.fetch("/").body.decode()
        assert "ssh-proxy " + getpass.getuser() + "/gpu&lt;1&gt;" in page
        assert "</script>/" not in page.split("<script>")[1].split("</script>")[0]
        assert "SHA256:" in page

    def test_a_browser_is_refused_at_connect(self):
        r = self.fetch(
            "/connect",
            headers={
                "Origin": "http://evil.example",
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert r.code == 403

    @gen_test
    async def test_an_sshd_that_cannot_run_closes_with_the_reason(self):
        self._app.settings["sshd"] = str(self.folder / "no-such-sshd")
        conn = await websocket_connect(f"ws://127.0.0.1:{self.get_http_port()}/connect")
        assert await conn.read_message() is None
        assert conn.close_code == 1011 and "cannot run sshd" in conn.close_reason


@pytest.mark.parametrize(
    "mounts, warned",
    [
        ("devpts /dev/pts devpts rw,relatime,gid=5,mode=620,ptmxmode=000 0 0\n", False),
        ("devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0\n", True),
        (
            "devpts /dev/pts devpts rw,mode=600 0 0\ndevpts /dev/pts devpts rw,gid=5,mode=620 0 0\n",
            False,
        ),
        ("proc /proc proc rw 0 0\n", False),
    ],
)
def test_terminal_warning_follows_the_devpts_in_use(mounts, warned, tmp_path):
    fake = tmp_path / "mounts"
    fake.write_text(mounts)
    assert bool(sshnode.pty_problem(str(fake))) == warned


@pytest.mark.parametrize("kernel", [True, False], ids=["splice", "copying (no splice: a Mac)"])
def test_the_proxy_pipes_both_ways_until_the_node_hangs_up(kernel):
    """ink ssh-proxy's two directions, as ssh runs it (pipes on stdin and stdout): what the node
    sent with its 101 comes first, stdin reaches the node, and closing stdin ends the stream."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo():
        conn, _ = server.accept()
        conn.sendall(b"SSH-2.0-node\r\n")
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.close()

    threading.Thread(target=echo, daemon=True).start()
    code = (
        "import os, socket\n"
        + ("" if kernel else "del os.splice\n")
        + "from ink_client.sshproxy import pipe\n"
        + f"pipe(socket.create_connection(('127.0.0.1', {server.getsockname()[1]})), b'early ')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    payload = os.urandom(3 << 20)
    out, _ = proc.communicate(payload, timeout=60)
    assert proc.returncode == 0
    assert out == b"early SSH-2.0-node\r\n" + payload
    server.close()
