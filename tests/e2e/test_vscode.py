"""The VS Code app: code-server spawned as alice's job (local backend), reached through the hub's
proxy and her single-user server; the workbench loads, a file of her home opens in the editor,
and a command typed into its terminal runs as alice."""

import pwd
import shutil
import sys
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect

from tests.conftest import STRICT
from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for

CODE_SERVER = Path(sys.prefix) / "code-server" / "node_modules" / ".bin" / "code-server"


@pytest.mark.skipif(
    not CODE_SERVER.exists() and not STRICT, reason="code-server is installed by scripts/install-code-server"
)
def test_vscode_in_a_job(make_hub, unix_users, output_dir, browser):
    assert CODE_SERVER.exists(), "scripts/install-code-server did not install code-server"
    hub = make_hub({"type": "local"})
    alice = pwd.getpwnam("inkt_alice")
    home = Path(alice.pw_dir)
    notes = home / "ink-notes.py"
    notes.write_text("# written before the job started\nanswer = 6 * 7\n")
    shutil.chown(notes, alice.pw_uid, alice.pw_gid)
    (home / "vscode-test.txt").unlink(missing_ok=True)
    spawn_and_wait(hub, "inkt_alice", hub.user_token("inkt_alice"), {"app": "vscode"})

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    page.goto(hub.user_url("inkt_alice") + "vscode/")
    expect(page.locator(".monaco-workbench")).to_be_visible(timeout=90_000)
    expect(page.locator(".explorer-folders-view, .explorer-viewlet").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(output_dir / "vscode-workbench.png"))

    # open the file from the explorer; its text shows in the editor
    page.locator(".monaco-list-row", has_text="ink-notes.py").first.click(timeout=60_000)
    expect(page.locator(".monaco-editor .view-lines").first).to_contain_text("answer = 6 * 7", timeout=30_000)
    page.screenshot(path=str(output_dir / "vscode-editor.png"))

    # a terminal: the command runs as alice, in her home
    page.keyboard.press("Control+Backquote")
    expect(page.locator(".terminal-wrapper, .xterm").first).to_be_visible(timeout=30_000)
    # the terminal's shell runs (xterm.js draws on a canvas: its text is not in the page)
    wait_for(
        lambda: [
            p
            for p in psutil.process_iter(["username", "name"])
            if p.info["username"] == "inkt_alice" and p.info["name"] == "bash"
        ],
        30,
        what="the terminal's shell",
    )
    page.locator(".xterm").first.click()
    page.keyboard.type("echo vscode-ok-$((6*7)) $(id -un) > ~/vscode-test.txt\n", delay=20)
    wait_for(lambda: (home / "vscode-test.txt").exists(), 30, what="the terminal's command")
    assert (home / "vscode-test.txt").read_text().strip() == "vscode-ok-42 inkt_alice"
    page.screenshot(path=str(output_dir / "vscode-terminal.png"))
