"""INK's Linux desktop: runs inside the user's job (as the user), behind jupyter-server-proxy.

    python -m ink_spawner.apps.desktop --unix-socket SOCKET

Starts TigerVNC's Xvnc on a private Unix socket (no TCP port, no VNC password: only this user
can reach the socket, and the browser reaches it only through the hub's authentication and the
single-user server; the X display itself needs a private cookie), a light window manager (openbox) with a terminal, and websockify serving
noVNC on SOCKET for jupyter-server-proxy. Everything it started ends with it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOVNC = Path("/usr/share/novnc")
# noVNC's page asks for its websocket at /PATH; behind the proxy the path is the page's own
INDEX = """<!doctype html><meta charset="utf-8"><title>INK desktop</title><script>
const here = location.pathname.replace(/[^/]*$/, "");
location.replace("vnc.html?autoconnect=true&reconnect=true&resize=remote&path=" +
                 encodeURIComponent(here.slice(1) + "websockify"));
</script>"""


def free_display() -> int:
    for number in range(10, 200):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            return number
    raise RuntimeError("no free X display number")


def write_xauthority(path: Path, number: int) -> None:
    """A private Xauthority file with a fresh MIT-MAGIC-COOKIE-1 for display ``number``.

    Xvnc also listens on an abstract Unix socket, which has no file permissions: without a
    cookie any user of the node could connect to the display, read the screen and type into it.
    The format is X11's (Xau): family, address, display number, auth name, auth data, each
    length-prefixed (big-endian 16 bit); family 0xffff (FamilyWild) matches any host."""

    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    cookie = secrets.token_bytes(16)
    entry = struct.pack(">H", 0xFFFF) + field(b"") + field(str(number).encode())
    entry += field(b"MIT-MAGIC-COOKIE-1") + field(cookie)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(entry)


def web_root(folder: Path) -> Path:
    """noVNC's files plus INK's index page (which points noVNC at the proxied websocket)."""
    web = folder / "web"
    web.mkdir()
    for entry in NOVNC.iterdir():
        (web / entry.name).symlink_to(entry)
    (web / "index.html").write_text(INDEX)
    return web


def wait_for_path(path: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not appear")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-desktop")
    parser.add_argument("--unix-socket", required=True, help="where websockify listens (from the proxy)")
    parser.add_argument("--geometry", default="1280x800")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="ink-desktop-"))  # mode 700
    vnc_socket = str(folder / "vnc.socket")
    number = free_display()
    xauthority = folder / "Xauthority"
    write_xauthority(xauthority, number)
    env = {**os.environ, "DISPLAY": f":{number}", "XAUTHORITY": str(xauthority)}
    children: list[subprocess.Popen] = []

    def stop(*_):
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(folder, ignore_errors=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        xvnc = subprocess.Popen(
            [
                "Xvnc",
                f":{number}",
                "-rfbunixpath",
                vnc_socket,
                "-rfbunixmode",
                "0600",
                "-rfbport",
                "-1",
                "-SecurityTypes",
                "None",
                "-nolisten",
                "tcp",
                "-auth",
                str(xauthority),
                "-geometry",
                args.geometry,
                "-depth",
                "24",
                "-AlwaysShared",
            ],
            stdin=subprocess.DEVNULL,
        )
        children.append(xvnc)
        wait_for_path(vnc_socket, xvnc)
        wait_for_path(f"/tmp/.X11-unix/X{number}", xvnc)
        children.append(subprocess.Popen(["openbox"], env=env, stdin=subprocess.DEVNULL))
        home = os.path.expanduser("~")
        children.append(
            subprocess.Popen(
                [
                    "xterm",
                    "-title",
                    "INK terminal",
                    "-geometry",
                    "110x32+40+40",
                    "-fa",
                    "Monospace",
                    "-fs",
                    "11",
                ],
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
            )
        )
        websockify = [os.path.join(os.path.dirname(sys.executable), "websockify")]
        children.append(
            subprocess.Popen(
                [
                    *websockify,
                    "--web",
                    str(web_root(folder)),
                    "--unix-listen",
                    args.unix_socket,
                    "--unix-target",
                    vnc_socket,
                ],
                stdin=subprocess.DEVNULL,
            )
        )
    except (OSError, RuntimeError) as e:
        print(f"ink-desktop: {e}", file=sys.stderr, flush=True)
        stop()
    while all(child.poll() is None for child in children[:1] + children[-1:]):
        time.sleep(1)  # the display or websockify ended: the desktop is over
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
