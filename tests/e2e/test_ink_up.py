"""The embedded default as a new site runs it (issue 20): `ink up` on the shipped etc/ink.yaml
(ports and state moved out of the way) says how to log in, a user of this machine sees all
five app cards in the spawn menu, and each of them starts from that hub and works in Chromium
(the same first checks as each app's own test)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from playwright.sync_api import expect

from tests.helpers.browser import open_as
from tests.helpers.net import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
# app -> where the hub sends the browser once it runs, and what shows the app works there
APPS = {
    "jupyterlab": ("**/lab**", "#jp-main-dock-panel"),
    "rootbrowser": ("**/rootbrowser/**", "#ink-root-files"),
    "desktop": ("**/desktop/**", "html.noVNC_connected"),
    "vscode": ("**/vscode/**", ".monaco-workbench"),
    "sshnode": ("**/sshnode/**", "#ink-ssh-host"),
}


def test_ink_up_on_the_embedded_default_offers_every_app(unix_users, browser, output_dir, tmp_path):
    site = yaml.safe_load((REPO / "etc" / "ink.yaml").read_text())
    port = free_port()
    site["hub"].update(port=port, hub_port=free_port())
    for service in ("credentials", "dashboard", "jobs", "files", "shell"):  # not on the default ports
        site[service] = {**(site.get(service) or {}), "port": free_port()}
    site["paths"] = {"state": str(tmp_path / "state")}
    site_file = tmp_path / "ink.yaml"
    site_file.write_text(yaml.safe_dump(site))
    log = tmp_path / "ink-up.log"
    env = {**os.environ, "INK_CONFIG": str(site_file)}
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "ink"), "up"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = type("Up", (), {"url": f"http://localhost:{port}"})
    try:
        wait_for(lambda: requests.get(f"{hub.url}/hub/health", timeout=2).ok, 90, what=f"ink up (log: {log})")
        said = log.read_text()
        assert f"INK is starting at http://localhost:{port}/" in said
        assert "Log in with an account of this machine (PAM)" in said and "useradd" in said
        page = open_as(browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "spawn")
        expect(page.locator(".ink-card")).to_have_count(5, timeout=30_000)
        for app in ("jupyterlab", "rootbrowser", "desktop", "vscode", "sshnode"):
            expect(page.locator(f".ink-card[data-app={app}]")).to_be_visible()
        page.screenshot(path=str(output_dir / "ink-up-spawn-menu.png"), full_page=True)
        for app, (url, works) in APPS.items():  # each card, started from this hub, works
            page.goto(f"{hub.url}/hub/spawn")
            page.locator(f".ink-card[data-app={app}]").click()
            page.click("#spawn_form button[type=submit]")
            page.wait_for_url(url, timeout=180_000)
            expect(page.locator(works)).to_have_count(1, timeout=120_000)
            page.screenshot(path=str(output_dir / f"ink-up-{app}.png"))
            page.goto(f"{hub.url}/hub/home")
            page.click("#stop")
            expect(page.locator("#stop")).to_be_hidden(timeout=90_000)  # the hub said it stopped
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(60)
