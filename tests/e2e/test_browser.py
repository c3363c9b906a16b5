"""A physicist's path in a real browser: login, spawn menu, progress, JupyterLab."""

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.helpers.browser import login, open_as
from tests.helpers.net import wait_for


def test_wrong_password_is_refused(make_hub, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"})
    page = browser.new_page()
    login(page, hub, "inkt_bob", "not-the-password", output_dir, "bob")
    expect(page.locator(".login_error")).to_be_visible()
    page.screenshot(path=str(output_dir / "wrong-password.png"))


def test_spawn_menu_shows_only_allowed_cards_and_lab_opens(make_hub, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"})

    # bob: default allowance, JupyterLab only
    page = open_as(browser, hub, "inkt_bob", unix_users["inkt_bob"], output_dir, "spawn")
    expect(page.locator(".ink-card")).to_have_count(1)
    expect(page.locator(".ink-card[data-app=jupyterlab]")).to_be_visible()
    expect(page.locator("#ink-image option")).to_have_count(1)
    page.screenshot(path=str(output_dir / "bob-spawn-menu.png"), full_page=True)
    page.close()

    # alice (juno): five cards, her images, her experiment
    page = open_as(browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "spawn")
    expect(page.locator(".ink-card")).to_have_count(5)
    expect(page.locator(".ink-card[data-app=rootbrowser]")).to_be_visible()
    expect(page.locator(".ink-card[data-app=desktop]")).to_be_visible()
    expect(page.locator(".ink-card[data-app=vscode]")).to_be_visible()
    expect(page.locator(".ink-card[data-app=sshnode]")).to_contain_text("SSH node")
    expect(page.locator("#ink-experiment option[value=juno]")).to_have_count(1)
    expect(page.locator("#ink-experiment option[value=lhaaso]")).to_have_count(0)
    page.screenshot(path=str(output_dir / "alice-spawn-menu.png"), full_page=True)

    # a choice beyond her limit comes back with the field named
    page.fill("#ink-memory", "64G")
    page.click("#spawn_form button[type=submit]")
    expect(page.locator(".spawn-error-msg")).to_contain_text("memory")
    page.screenshot(path=str(output_dir / "alice-over-limit.png"), full_page=True)

    page.locator(".ink-card[data-app=jupyterlab]").click()
    page.fill("#ink-memory", "2G")
    page.select_option("#ink-experiment", "juno")
    page.click("#spawn_form button[type=submit]")
    # progress page with the scheduler's words, then JupyterLab itself
    page.wait_for_url("**/lab**", timeout=120_000)
    expect(page.locator("#jp-main-dock-panel, .jp-LabShell").first).to_be_visible(timeout=120_000)
    page.screenshot(path=str(output_dir / "alice-jupyterlab.png"))
    options = hub.api("GET", "/users/inkt_alice").json()["servers"][""]["user_options"]
    assert options["experiment"] == "juno" and options["memory"] == "2G"


def test_progress_page_shows_scheduler_words(make_hub, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"})
    page = open_as(browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "spawn")
    page.select_option("#ink-experiment", "slow")
    page.click("#spawn_form button[type=submit]")
    expect(page.locator("#progress-message")).to_contain_text("starting JupyterLab", timeout=30_000)
    log = page.locator("#progress-log").text_content()
    assert "submitted" in log and "running" in log, log
    page.screenshot(path=str(output_dir / "progress.png"))
    page.wait_for_url("**/lab**", timeout=120_000)


def test_kerberos_login_and_home_widget(make_hub, kdc, browser, unix_users, output_dir):
    from tests.conftest import kerberos_site

    hub = make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc))
    page = browser.new_page()
    login(page, hub, "inkt_bob", "wrong", output_dir, "krb-wrong")
    expect(page.locator(".login_error")).to_be_visible()
    login(page, hub, "inkt_bob", unix_users["inkt_bob"], output_dir, "krb-right")
    page.goto(f"{hub.url}/hub/home")
    widget = page.frame_locator("#ink-credentials")
    expect(widget.locator("#ink-krb")).to_contain_text("Kerberos: valid until", timeout=30_000)
    expect(widget.locator("#ink-krb")).to_contain_text("renewable until")
    page.screenshot(path=str(output_dir / "home-kerberos.png"), full_page=True)
    store = Path(hub.site["paths"]["state"]) / "credentials" / "inkt_bob.json"
    renewals = json.loads(store.read_text()).get("renewals", 0)
    widget.locator("#ink-krb-renew button").click()
    # the click renewed the ticket at the KDC (the store counts it), and the panel shows it
    wait_for(lambda: json.loads(store.read_text()).get("renewals", 0) == renewals + 1, 15, what="the renewal")
    expect(widget.locator("#ink-krb")).to_contain_text("Kerberos: valid until", timeout=15_000)
    page.screenshot(path=str(output_dir / "home-kerberos-renewed.png"), full_page=True)
    # the ticket itself never reaches the browser
    html = page.content() + widget.locator("body").inner_html()
    assert "BEGIN" not in html and "krbtgt" not in html
