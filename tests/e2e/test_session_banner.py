"""A session near its end says so inside its apps (issue 18): the session's own server adds a
banner to JupyterLab and to VS Code (through jupyter-server-proxy), with Extend buttons that
raise the job's time limit through the hub; a session with time to spare shows none, and the
server's token never reaches the page."""

import pwd
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.test_vscode import CODE_SERVER
from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait

BANNER = "#ink-session-banner"


def open_app(page, hub, path):
    """The app's page, until the banner's script has asked the server how long is left."""
    with page.expect_response(re.compile(r"/ink/session$"), timeout=90_000) as answer:
        page.goto(hub.user_url("inkt_alice") + path)
    assert answer.value.status == 200
    return answer.value.json()


def server_model(hub):
    return hub.api("GET", "/users/inkt_alice").json()["servers"][""]


def test_the_session_warns_near_its_end_and_extends_from_inside_the_app(
    make_hub, unix_users, output_dir, browser
):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_alice")
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")

    # time to spare: no banner
    spawn_and_wait(hub, "inkt_alice", token, {"app": "jupyterlab", "walltime": "8h"})
    session = open_app(page, hub, "lab")
    assert session["walltime_left_s"] > 7 * 3600 and "token" not in str(session).lower()
    expect(page.locator(".jp-LabShell")).to_be_visible(timeout=60_000)
    expect(page.locator(BANNER)).to_have_count(0)
    hub.stop_servers(["inkt_alice"])

    # ten minutes left: the banner, in JupyterLab
    spawn_and_wait(hub, "inkt_alice", token, {"app": "jupyterlab", "walltime": "10m"})
    session = open_app(page, hub, "lab")
    assert 8 * 60 < session["walltime_left_s"] <= 10 * 60
    banner = page.locator(BANNER)
    expect(banner).to_contain_text("This session ends in", timeout=10_000)
    expect(banner).to_contain_text("min")
    page.screenshot(path=str(output_dir / "banner-jupyterlab.png"))
    banner.locator("button.ink-extend[data-by='2h']").click()
    expect(banner).to_contain_text("Extended", timeout=30_000)
    page.screenshot(path=str(output_dir / "banner-extended.png"))
    # the hub's record of the job's limit moved by two hours, and the banner goes
    assert server_model(hub)["user_options"]["walltime"] == "130m"
    expect(banner).to_have_count(0, timeout=30_000)

    # the endpoints are the server's own: without her login, nothing; a made-up amount, a 400
    own = hub.user_url("inkt_alice")
    assert requests.get(own + "ink/session", timeout=30, allow_redirects=False).status_code in (302, 403)
    # bob, with his own token, can neither read her session's end nor extend it
    bob = {"Authorization": f"token {hub.user_token('inkt_bob')}"}
    assert requests.get(own + "ink/session", headers=bob, timeout=30, allow_redirects=False).status_code in (
        302,
        403,
    )
    extend = requests.post(
        own + "ink/extend", headers=bob, json={"by": "2h"}, timeout=30, allow_redirects=False
    )
    assert extend.status_code in (302, 403)
    assert server_model(hub)["user_options"]["walltime"] == "130m"
    bad = page.evaluate(
        r"""async (own) => {
            const xsrf = decodeURIComponent(document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/)[1]);
            const r = await fetch(own + "ink/extend", {method: "POST",
                headers: {"X-XSRFToken": xsrf}, body: JSON.stringify({by: "9999h"})});
            return [r.status, (await r.json()).message];
        }""",
        own,
    )
    assert bad[0] == 400 and "2h" in bad[1], bad
    hub.stop_servers(["inkt_alice"])


@pytest.mark.skipif(
    not CODE_SERVER.exists(), reason="code-server is installed by scripts/install-code-server"
)
def test_vs_code_shows_the_banner_and_a_users_html_file_is_served_untouched(
    make_hub, unix_users, output_dir, browser
):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_alice")
    alice = pwd.getpwnam("inkt_alice")
    mine = Path(alice.pw_dir) / "my-page.html"
    mine.write_text("<html><head><title>mine</title></head><body>my own page</body></html>")
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    spawn_and_wait(hub, "inkt_alice", token, {"app": "vscode", "walltime": "10m"})
    open_app(page, hub, "vscode/")
    expect(page.locator(".monaco-workbench")).to_be_visible(timeout=90_000)
    expect(page.locator(BANNER)).to_contain_text("This session ends in", timeout=10_000)
    page.screenshot(path=str(output_dir / "banner-vscode.png"))
    # her own HTML file, opened as a page of her server: exactly what she wrote
    served = page.goto(hub.user_url("inkt_alice") + "files/my-page.html")
    assert served.body() == mine.read_bytes()
    mine.unlink()
    hub.stop_servers(["inkt_alice"])
