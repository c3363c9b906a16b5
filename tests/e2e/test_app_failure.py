"""An app that dies at start: instead of jupyter-server-proxy's spinning page until its timeout
(120 s here), the user sees at once which app failed, its exit code and its last output, in
Chromium; the job's log keeps the whole output. A program missing on the node says so."""

import pwd
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait
from tests.integration.test_callback_security import server_token

USER = "inkt_alice"


@pytest.mark.parametrize(
    "app, heading, lines",
    [
        (
            "brokenapp",
            "Broken app could not start (exit code 3)",
            ["starting the broken app", "token=[hidden]", "cannot open display :99"],
        ),
        ("missingapp", "Missing app could not start (exit code 127)", ["/nonexistent/ink-no-such-program"]),
    ],
)
def test_a_failed_app_start_shows_why(app, heading, lines, make_hub, unix_users, output_dir, browser):
    def allow_broken_apps(site):
        site["experiments"]["juno"]["allowance"]["apps"] += ["brokenapp", "missingapp"]
        return site

    hub = make_hub({"type": "local"}, allow_broken_apps)
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token, {"app": app})
    job_token = server_token(USER)  # what the app could print: the job's own server token

    page = browser.new_page(viewport={"width": 1100, "height": 700})
    login(page, hub, USER, unix_users[USER], output_dir, "alice")
    # the hub sends the user to the app's URL after the spawn; far less than the proxy's 120 s
    page.goto(hub.user_url(USER) + f"{app}/", timeout=60_000)
    expect(page.locator("#ink-app-failed")).to_have_text(heading, timeout=30_000)
    log = page.locator("#ink-app-log")
    for line in lines:
        expect(log).to_contain_text(line)
    assert job_token not in page.content() and token not in page.content()
    page.screenshot(path=str(output_dir / f"{app}-failed.png"))
    # the same lines are in the job's log, for the user and the admins
    logs = sorted(
        (Path(pwd.getpwnam(USER).pw_dir) / ".ink" / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime
    )
    assert lines[0] in logs[-1].read_text()
    assert job_token not in logs[-1].read_text()
