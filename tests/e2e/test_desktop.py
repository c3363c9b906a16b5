"""The Linux desktop app: spawned as alice's job (local backend), noVNC connects through the
hub's proxy and her single-user server, a window is drawn, and a command typed into the desktop's
xterm runs as alice. Nothing listens on TCP for it; stopping the server ends it all."""

import pwd
import subprocess
from pathlib import Path

import psutil
import requests
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for

PIXELS = """() => { const c = document.querySelector('#noVNC_container canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();
  for (let i = 0; i < d.length; i += 4 * 997) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
  return [c.width, c.height, seen.size]; }"""


def desktop_processes(user: str) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "username"])
        if p.info["username"] == user and p.info["name"] in ("Xvnc", "openbox", "xterm", "websockify")
    ]


def test_desktop_in_a_job(make_hub, unix_users, output_dir, browser):
    hub = make_hub({"type": "local"})
    home = Path(pwd.getpwnam("inkt_alice").pw_dir)
    (home / "desktop-test.txt").unlink(missing_ok=True)
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"app": "desktop"})

    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    page.goto(hub.user_url("inkt_alice") + "desktop/")
    expect(page.locator("html.noVNC_connected")).to_have_count(1, timeout=60_000)
    width, height, colours = wait_for(
        lambda: (p := page.evaluate(PIXELS))[2] > 3 and p, 30, what="a drawn desktop"
    )
    assert width >= 800 and height >= 600 and colours > 3  # not a uniform screen: windows are drawn
    page.screenshot(path=str(output_dir / "desktop-connected.png"))

    # the xterm has the focus: type a command into the desktop
    canvas = page.locator("#noVNC_container canvas")
    canvas.click(position={"x": 300, "y": 200})
    page.keyboard.type("echo desktop-ok-$((6*7)) $(id -un) > ~/desktop-test.txt\n", delay=20)
    wait_for(lambda: (home / "desktop-test.txt").exists(), 30, what="the command typed in the desktop")
    assert (home / "desktop-test.txt").read_text().strip() == "desktop-ok-42 inkt_alice"
    page.screenshot(path=str(output_dir / "desktop-command.png"))

    # no TCP port for VNC or websockify: Unix sockets only
    procs = desktop_processes("inkt_alice")
    assert {p.info["name"] for p in procs} >= {"Xvnc", "openbox", "xterm"}
    for proc in procs:
        assert not [c for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN], proc
    # the X display needs alice's cookie: bob, on the same node, can neither look nor type
    (xvnc,) = [p for p in procs if p.info["name"] == "Xvnc"]
    display = next(arg for arg in xvnc.cmdline() if arg.startswith(":"))
    seen = subprocess.run(
        ["runuser", "-u", "inkt_bob", "--", "xdpyinfo", "-display", display],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seen.returncode != 0 and "unable to open display" in seen.stderr, seen
    assert "-auth" in xvnc.cmdline()
    # bob cannot reach alice's desktop
    r = requests.get(
        hub.user_url("inkt_alice") + "desktop/",
        headers={"Authorization": f"token {hub.user_token('inkt_bob')}"},
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code in (302, 403, 404)
    # stopping the server ends the desktop
    page.close()
    assert hub.api("DELETE", "/users/inkt_alice/server", token=token).status_code in (202, 204)
    hub.wait_stopped("inkt_alice", token)
    wait_for(lambda: not desktop_processes("inkt_alice"), 30, what="the desktop to end with the job")
