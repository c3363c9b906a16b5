"""Idle culling counts every app's traffic: alice runs JupyterLab, VS Code and the desktop twice
each (named servers). The idle three, with no browser in them, are stopped by the site's idle
timeout; the three she types into every few seconds from Chromium stay."""

import re
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import STRICT
from tests.helpers.browser import login
from tests.integration.test_dashboard import summary

CODE_SERVER = Path(sys.prefix) / "code-server" / "node_modules" / ".bin" / "code-server"
APPS = {"lab": ("jupyterlab", "lab"), "code": ("vscode", "vscode/"), "desk": ("desktop", "desktop/")}
IDLE_TIMEOUT = 20


def culling(site):
    site["sessions"] = {
        # the site's default would never cull here: the per-app timeouts (read from each server's
        # user_options by INK's arbiter inside the culler) must do it
        "idle_timeout": "1d",
        "idle_timeout_per_app": {app: f"{IDLE_TIMEOUT}s" for app, _ in APPS.values()},
        "idle_check_interval": "3s",
        "activity_interval": "2s",
        "named_servers": 6,
    }
    return site


@pytest.mark.skipif(
    not CODE_SERVER.exists() and not STRICT, reason="code-server is installed by scripts/install-code-server"
)
def test_idle_sessions_are_culled_and_busy_ones_kept(make_hub, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"}, adjust=culling)
    token = hub.user_token("inkt_alice")
    names = [f"{kind}-{short}" for kind in ("idle", "busy") for short in APPS]
    for name in names:
        app = APPS[name.split("-")[1]][0]
        r = hub.api(
            "POST", f"/users/inkt_alice/servers/{name}", token=token, json={"app": app, "experiment": "juno"}
        )
        assert r.status_code in (201, 202), r.text
    for name in names:
        hub.wait_ready("inkt_alice", token, 180, server=name)

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    busy = {}
    for short, (_, path) in APPS.items():
        tab = page if not busy else context.new_page()
        tab.goto(f"{hub.user_url('inkt_alice')}busy-{short}/{path}")
        busy[short] = tab
    expect(busy["lab"].locator(".jp-LabShell").first).to_be_visible(timeout=90_000)
    expect(busy["code"].locator(".monaco-workbench")).to_be_visible(timeout=90_000)
    expect(busy["desk"].locator("canvas").first).to_be_visible(timeout=60_000)

    def servers() -> dict:
        return hub.api("GET", "/users/inkt_alice", token=token).json()["servers"]

    deadline = time.monotonic() + 2.5 * IDLE_TIMEOUT + 30
    while time.monotonic() < deadline:
        for tab in busy.values():  # a physicist at work: a key now and then in each app
            tab.bring_to_front()
            tab.mouse.click(600, 400)
            tab.keyboard.type("x")
        running = servers()
        if not any(name.startswith("idle-") for name in running):
            break
        time.sleep(5)
    running = servers()
    assert not [n for n in running if n.startswith("idle-")], f"idle sessions still run: {sorted(running)}"
    assert sorted(n for n in running if n.startswith("busy-")) == sorted(f"busy-{s}" for s in APPS), running
    assert all(running[f"busy-{s}"]["ready"] for s in APPS), running
    # the culler's own account of each: inactive for at least the timeout
    culled = re.findall(
        r"Culling server inkt_alice/(idle-\w+) \(inactive for (\d+):(\d+):(\d+)\)", hub.log_text()
    )
    assert sorted(name for name, *_ in culled) == sorted(f"idle-{s}" for s in APPS), culled
    for name, h, m, s in culled:
        assert int(h) * 3600 + int(m) * 60 + int(s) >= IDLE_TIMEOUT, (name, h, m, s)
    # the busy ones, as old as the idle ones, stay on while someone works in them
    for _ in range(3):
        for tab in busy.values():
            tab.bring_to_front()
            tab.keyboard.type("y")
        time.sleep(IDLE_TIMEOUT / 4)
    running = servers()
    assert sorted(n for n in running if n.startswith("busy-")) == sorted(f"busy-{s}" for s in APPS), running
    busy["desk"].screenshot(path=str(output_dir / "busy-desktop.png"))
    assert "Culling server inkt_alice/busy" not in hub.log_text()
    # each culled session's record, and the dashboard, say why it ended
    ended = {e["server"]: e for e in summary(hub, token)["ended"]}
    for short in APPS:
        reason = ended[f"idle-{short}"]["end_reason"]
        assert reason.startswith("stopped after") and reason.endswith("without activity (idle timeout)"), (
            reason
        )
    context.close()
