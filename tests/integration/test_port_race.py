"""Another user of the node races for the port of alice's server: whatever he binds, the hub's
route goes to alice's own server (a listener of her job's process tree), never to his."""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil

from tests.helpers.hub import spawn_and_wait
from tests.integration.test_spawn import reach_server

# bob's racer: every port on a command line of alice's processes, bound at once (all addresses)
RACER = textwrap.dedent(
    r"""
    import json, re, socket, sys, threading, time
    import psutil
    owner, record = sys.argv[1], sys.argv[2]
    taken = {}
    def serve(sock):
        while True:
            conn, _ = sock.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nracer!")
            conn.close()
    while True:
        for proc in psutil.process_iter(["username", "cmdline"]):
            if proc.info["username"] != owner:
                continue
            for port in re.findall(r"--port[= ](\d+)", " ".join(proc.info["cmdline"] or [])):
                port = int(port)
                if port in taken:
                    continue
                for ip in ("0.0.0.0", "127.0.0.1"):
                    try:
                        sock = socket.socket()
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        sock.bind((ip, port)); sock.listen(16)
                    except OSError:
                        continue
                    taken[port] = ip
                    threading.Thread(target=serve, args=(sock,), daemon=True).start()
                    with open(record, "w") as f:
                        json.dump(taken, f)
                    break
        time.sleep(0.005)
    """
)


def test_a_racer_never_gets_the_route(make_hub):
    folder = Path(tempfile.mkdtemp(prefix="ink-racer-"))  # bob writes what he bound here
    folder.chmod(0o777)
    record = folder / "taken.json"
    racer = subprocess.Popen(
        ["runuser", "-u", "inkt_bob", "--", sys.executable, "-c", RACER, "inkt_alice", str(record)],
        start_new_session=True,
    )
    try:
        hub = make_hub({"type": "local"})
        token = hub.user_token("inkt_alice")
        for _ in range(3):  # three spawns: three chances for the racer
            spawn_and_wait(hub, "inkt_alice", token)
            r = reach_server(hub, "inkt_alice", token)
            assert r.status_code == 200 and "racer" not in r.text, r.text
            assert "started" in r.json()  # jupyter-server's /api/status, not the racer
            port = int(
                re.search(r"is listening on [^:]+:(\d+)", hub.log_text().split("inkt_alice:")[-1]).group(1)
            )
            owners = {
                c.pid and psutil.Process(c.pid).username()
                for c in psutil.net_connections("inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            }
            assert owners == {"inkt_alice"}, owners
            assert hub.api("DELETE", "/users/inkt_alice/server", token=token).status_code in (202, 204)
            hub.wait_stopped("inkt_alice", token)
        taken = json.loads(record.read_text()) if record.exists() else {}
        assert racer.poll() is None, "the racer ran all along"
        print("ports the racer bound:", taken)
    finally:
        subprocess.run(["pkill", "-KILL", "-s", str(racer.pid)], check=False)
        racer.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
