"""The web shell: a real terminal (xterm.js in Chromium, terminado, runuser) as the logged-in user;
tmux works and follows a resize; preferences persist per user; closing the tab ends the shell;
one user's token or cookie never reaches another user's shell."""

import pwd
import subprocess
from pathlib import Path

import psutil
import pytest
import requests
from playwright.sync_api import expect
from tornado.httpclient import HTTPClientError

from tests.helpers.browser import login
from tests.helpers.net import wait_for
from tests.helpers.shell import terminal_output

SHELL = "/services/ink-shell/"
BUFFER_TEXT = """() => { const b = window.inkTerminal.buffer.active; const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\\n"); }"""


def home(name) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)


def run_in_terminal(page, command):
    page.locator("#ink-terminal").click()
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def read_when_written(path: Path, timeout=20) -> str:
    return wait_for(lambda: path.exists() and path.read_text().strip(), timeout, what=f"{path}")


def test_shell_in_the_browser_as_the_user(make_hub, unix_users, output_dir, browser):
    hub = make_hub({"type": "local"})
    for leftover in ("shell-id.txt", "tmux-1.txt", "tmux-2.txt", "shell-pid.txt"):
        (home("inkt_alice") / leftover).unlink(missing_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    expect(page.locator("#ink-nav-shell")).to_have_attribute("href", SHELL)
    page.goto(f"{hub.url}{SHELL}")
    expect(page.locator("#ink-shell-status")).to_have_attribute("data-state", "connected", timeout=20_000)

    run_in_terminal(page, "id -un > ~/shell-id.txt; echo $$ > ~/shell-pid.txt; id -un")
    assert read_when_written(home("inkt_alice") / "shell-id.txt") == "inkt_alice"
    wait_for(lambda: page.evaluate(BUFFER_TEXT).count("inkt_alice") >= 1, 10, what="id -un in the terminal")
    shell_pid = int(read_when_written(home("inkt_alice") / "shell-pid.txt"))
    assert psutil.Process(shell_pid).username() == "inkt_alice"
    page.screenshot(path=str(output_dir / "shell-id.png"))

    # tmux runs in the terminal and follows the browser's size
    run_in_terminal(page, "tmux new-session -s t")
    wait_for(lambda: "[t]" in page.evaluate(BUFFER_TEXT), 15, what="tmux's status line")
    run_in_terminal(page, "tmux display -p '#{client_width}x#{client_height}' > ~/tmux-1.txt")
    before = read_when_written(home("inkt_alice") / "tmux-1.txt")
    assert before == f"{page.evaluate('inkTerminal.cols')}x{page.evaluate('inkTerminal.rows')}"
    page.screenshot(path=str(output_dir / "shell-tmux-wide.png"))
    page.set_viewport_size({"width": 700, "height": 500})
    wait_for(lambda: page.evaluate("inkTerminal.cols") < int(before.split("x")[0]), 10, what="xterm to refit")
    run_in_terminal(page, "tmux display -p '#{client_width}x#{client_height}' > ~/tmux-2.txt")
    after = read_when_written(home("inkt_alice") / "tmux-2.txt")
    assert after == f"{page.evaluate('inkTerminal.cols')}x{page.evaluate('inkTerminal.rows')}"
    assert int(after.split("x")[0]) < int(before.split("x")[0])
    page.screenshot(path=str(output_dir / "shell-tmux-narrow.png"))
    run_in_terminal(page, "tmux kill-server")

    # font size and theme are kept for the user, on the server
    page.select_option("#ink-font-size", "20")
    page.select_option("#ink-theme", "light")
    wait_for(lambda: page.evaluate("inkTerminal.options.fontSize") == 20, 5, what="the font size")
    token = hub.user_token("inkt_alice")
    prefs = wait_for(
        lambda: (
            (
                r := requests.get(f"{hub.url}{SHELL}api/prefs", headers={"Authorization": f"token {token}"})
            ).json()["theme"]
            == "light"
            and r.json()
        ),
        10,
        what="the saved preferences",
    )
    assert prefs == {"font_size": 20, "theme": "light"}

    # closing the tab ends the shell
    page.close()
    wait_for(lambda: not psutil.pid_exists(shell_pid), 15, what="the shell to end with its tab")
    page = context.new_page()
    page.goto(f"{hub.url}{SHELL}")
    expect(page.locator("#ink-font-size")).to_have_value("20", timeout=20_000)
    page.screenshot(path=str(output_dir / "shell-prefs-kept.png"))
    context.close()


def test_shell_isolation(make_hub, unix_users):
    hub = make_hub({"type": "local"})
    url = f"ws://localhost:{hub.port}{SHELL}terminal"
    bob = hub.user_token("inkt_bob")
    # bob's token opens bob's shell; nothing in the request can name another user
    out = terminal_output(url, {"Authorization": f"token {bob}"}, "echo who=$(id -un)", "who=inkt_")
    assert "who=inkt_bob" in out and "who=inkt_alice" not in out
    out = terminal_output(
        url + "?user=inkt_alice", {"Authorization": f"token {bob}"}, "echo who=$(id -un)", "who=inkt_"
    )
    assert "who=inkt_bob" in out
    # no credentials, a wrong token, a foreign origin: refused before any shell starts
    for headers in ({}, {"Authorization": "token not-a-token"}):
        with pytest.raises(HTTPClientError) as refused:
            terminal_output(url, headers, "id", "x")
        assert refused.value.code == 403
    before = {p.pid for p in psutil.process_iter(["username"]) if p.info["username"] == "inkt_bob"}
    with pytest.raises(HTTPClientError) as refused:  # refused at the handshake, not opened then closed
        terminal_output(url, {"Authorization": f"token {bob}", "Origin": "http://evil.example"}, "id", "x")
    assert refused.value.code == 403
    after = {p.pid for p in psutil.process_iter(["username"]) if p.info["username"] == "inkt_bob"}
    assert after <= before, "no shell process of bob's started for the foreign page"
    # preferences: bad values get a 400 naming the field; bob's own are his alone
    r = requests.put(
        f"{hub.url}{SHELL}api/prefs", json={"font_size": 99}, headers={"Authorization": f"token {bob}"}
    )
    assert r.status_code == 400 and "font_size" in r.json()["message"]
    r = requests.put(f"{hub.url}{SHELL}api/prefs", json={"theme": "light"})
    assert r.status_code in (302, 403)  # no token, no cookie: nothing changes
    # metrics need read:metrics
    assert hub.metrics_of("ink-shell", bob).status_code == 403
    metrics = hub.metrics_of("ink-shell")
    assert metrics.status_code == 200 and 'ink_shell_sessions_total{outcome="opened"}' in metrics.text


def test_kept_sessions_survive_a_closed_tab(make_hub, unix_users):
    def keep(site):
        site["shell"] = {**site["shell"], "keep_sessions": True}
        return site

    hub = make_hub({"type": "local"}, adjust=keep)
    url = f"ws://localhost:{hub.port}{SHELL}terminal"
    headers = {"Authorization": f"token {hub.user_token('inkt_bob')}"}
    subprocess.run(["runuser", "-u", "inkt_bob", "--", "tmux", "kill-server"], capture_output=True)
    try:
        out = terminal_output(
            url, headers, "export INK_MARK=kept-$((20+22)); echo set-$INK_MARK", "set-kept-42"
        )
        assert "set-kept-42" in out
        # the tab closed; a new one finds the same shell inside tmux
        out = terminal_output(url, headers, "echo again-$INK_MARK-$TMUX", "again-kept-42-")
        assert "again-kept-42-/tmp/tmux-" in out
    finally:
        subprocess.run(["runuser", "-u", "inkt_bob", "--", "tmux", "kill-server"], capture_output=True)
