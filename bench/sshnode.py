#!/usr/bin/env python3
"""The SSH node against plain OpenSSH, in the same run, on this machine (local backend):

- start: spawn request (the card's click) -> `ssh ink-USER true` succeeds through the hub;
- a command: `ssh HOST true`, a whole connection each time (ProxyCommand start, websocket
  through configurable-http-proxy and the single-user server, sshd -i, key exchange), against
  the same command to a plain sshd on a loopback port;
- scp of a 256 MiB file up and down, through the hub and to the plain sshd.

    /opt/ink/bin/python bench/sshnode.py [--runs 3] [--commands 10] [--mib 256]

Runs as root: the job is a real process of a test user; the plain sshd is started and stopped here.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import FIXTURES, site_config  # noqa: E402
from tests.helpers.hub import Hub  # noqa: E402
from tests.helpers.net import wait_for  # noqa: E402
from tests.helpers.sshclient import Laptop  # noqa: E402
from tests.helpers.sshd import Sshd  # noqa: E402
from tests.helpers.users import ensure_user, remove_user  # noqa: E402

USER = "inkt_alice"
ALIAS = f"ink-{USER}"


def plain_sshd(root: Path, laptop: Laptop) -> Sshd:
    """Plain OpenSSH on a loopback port that takes the laptop's key, as host "plain"."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(laptop.root / "id_ed25519.pub", root / "authorized_keys")
    sshd = Sshd(root, None, [USER], authorized_keys=root / "authorized_keys").start()
    with open(laptop.config, "a") as f:
        f.write(f"\nHost plain\n    HostName 127.0.0.1\n    Port {sshd.port}\n    User {USER}\n")
        f.write(f"    IdentityFile {laptop.root / 'id_ed25519'}\n")
        f.write(f"    UserKnownHostsFile {laptop.root / 'known_hosts'}\n")
        f.write("    StrictHostKeyChecking accept-new\n    BatchMode yes\n")
    return sshd


def timed(action) -> float:
    started = time.monotonic()
    result = action()
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="spawns to time")
    parser.add_argument("--commands", type=int, default=10, help="ssh commands to time per host")
    parser.add_argument("--mib", type=int, default=256, help="size of the scp file")
    args = parser.parse_args()
    ensure_user(USER)
    work = Path(tempfile.mkdtemp(prefix="ink-bench-ssh-"))
    work.chmod(0o755)
    shutil.copytree(FIXTURES / "profiles", work / "profiles")
    site = site_config({"type": "local"})
    site["paths"]["profiles"] = str(work / "profiles")
    hub = Hub(work / "hub", site).start()
    sshd = None
    rows = []
    try:
        token = hub.user_token(USER)
        stanza = f"Host {ALIAS}\n    User {USER}\n    HostKeyAlias {ALIAS}\n    ProxyCommand ink --hub {hub.url} ssh-proxy {USER}\n"
        laptop = Laptop(work / "laptop", hub, token, stanza)
        starts = []
        for run in range(args.runs):
            started = time.monotonic()
            r = hub.api("POST", f"/users/{USER}/server", token=token, json={"app": "sshnode"})
            assert r.status_code in (201, 202), r.text
            wait_for(lambda: laptop.ssh(ALIAS, "true", timeout=30).returncode == 0, 120, interval=0.1)
            starts.append(time.monotonic() - started)
            if run < args.runs - 1:
                hub.api("DELETE", f"/users/{USER}/server", token=token)
                hub.wait_stopped(USER, token)
        rows.append(("start: spawn -> ssh works", starts, None))
        sshd = plain_sshd(work / "plain", laptop)
        for host in (ALIAS, "plain"):
            laptop.ssh(host, "true")  # warm
        hub_cmd = [timed(lambda: laptop.ssh(ALIAS, "true")) for _ in range(args.commands)]
        plain_cmd = [timed(lambda: laptop.ssh("plain", "true")) for _ in range(args.commands)]
        rows.append(("ssh HOST true", hub_cmd, plain_cmd))
        data = laptop.root / "data.bin"
        with open(data, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(2**20))
        home = Path(os.path.expanduser(f"~{USER}"))
        up = {"hub": [], "plain": []}
        down = {"hub": [], "plain": []}
        for _ in range(3):
            for name, host in (("hub", ALIAS), ("plain", "plain")):
                up[name].append(timed(lambda h=host: laptop.scp(str(data), f"{h}:bench-data.bin")))
                down[name].append(
                    timed(lambda h=host: laptop.scp(f"{h}:bench-data.bin", str(laptop.root / "back.bin")))
                )
        (home / "bench-data.bin").unlink(missing_ok=True)
        rate = lambda times: [args.mib / t for t in times]  # noqa: E731
        rows.append((f"scp up {args.mib} MiB (MiB/s)", rate(up["hub"]), rate(up["plain"])))
        rows.append((f"scp down {args.mib} MiB (MiB/s)", rate(down["hub"]), rate(down["plain"])))
    finally:
        if sshd is not None:
            sshd.stop()
        hub.api("DELETE", f"/users/{USER}/server")
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)
        remove_user(USER)
    print("\nSSH node through the hub vs plain OpenSSH on loopback (medians; seconds unless said)")
    print(f"{'what':32} {'INK':>10} {'plain sshd':>11} {'ratio':>7}")
    for what, ink, plain in rows:
        ink_median = statistics.median(ink)
        if plain is None:
            print(f"{what:32} {ink_median:10.2f} {'':>11} {'':>7}")
        else:
            plain_median = statistics.median(plain)
            print(f"{what:32} {ink_median:10.2f} {plain_median:11.2f} {ink_median / plain_median:6.2f}x")


if __name__ == "__main__":
    main()
