"""Single sign-on through a real OpenID Connect provider (django-oidc-provider), in Chromium:
login and logout, a refused user, and the provider's group claim mapped onto INK's experiments
and their allowances. SSO users need no local account to log in (none of them has one here)."""

import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import site_config
from tests.helpers.hub import Hub
from tests.helpers.oidc import OIDCProvider

USERS = {
    "sso_alice": {"password": "alice-" + "pw-1234", "groups": ["juno", "ink-admins"]},
    "sso_bob": {"password": "bob-" + "pw-1234", "groups": ["physics"]},
    "sso_eve": {"password": "eve-" + "pw-1234", "groups": ["visitors"]},
}


@pytest.fixture
def sso_hub(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="ink-oidc-"))
    provider = OIDCProvider(root)
    site = site_config({"type": "local"})
    site["experiments"] = {
        # juno's members come from the provider's claim, not from this file
        "juno": {
            "members": [],
            "allowance": {
                "apps": ["jupyterlab", "rootbrowser", "vscode"],
                "images": ["host", "alma9"],
                "max_cpus": 4,
                "max_memory": "8G",
                "max_walltime": "1d",
            },
        }
    }
    site["users"] = {}
    hub = Hub(tmp_path / "hub", site)
    hub.site["authenticator"] = provider.authenticator(
        hub.url,
        groups_claim="groups",
        allowed_groups=["juno", "physics"],
        admin_groups=["ink-admins"],
        allow_all=False,
    )
    provider.start(USERS, f"{hub.url}/hub/oauth_callback", f"{hub.url}/hub/login")
    try:
        yield hub.start(), provider
    finally:
        hub.stop()
        provider.stop()
        shutil.rmtree(root, ignore_errors=True)


def sso_login(browser, hub, name, shots):
    """A fresh browser context (no cookies) logging ``name`` in through the provider's form."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    expect(page.locator(".ink-login-banner")).to_contain_text("INK")
    page.get_by_text("Sign in with Site SSO").click()
    expect(page.locator("#sso-title")).to_be_visible(timeout=15_000)  # the provider's own page
    page.screenshot(path=str(shots / f"{name}-provider-login.png"))
    page.fill("#sso-username", name)
    page.fill("#sso-password", USERS[name]["password"])
    page.click("#sso-submit")
    return context, page


def open_spawn_menu(page, hub):
    """Back on the hub after the provider's login: its spawn menu."""
    page.wait_for_url(f"{hub.url}/hub/**", timeout=30_000)
    page.goto(f"{hub.url}/hub/spawn")


def test_sso_login_groups_and_logout(sso_hub, browser, output_dir):
    hub, provider = sso_hub
    # alice (claim: juno, ink-admins) gets juno's cards and limits, and is an admin
    context, page = sso_login(browser, hub, "sso_alice", output_dir)
    open_spawn_menu(page, hub)
    expect(page.locator(".ink-card")).to_have_count(3)
    expect(page.locator(".ink-card[data-app=vscode]")).to_be_visible()
    expect(page.locator(".ink-limits")).to_contain_text("4 cores")
    expect(page.locator("#ink-experiment option[value=juno]")).to_have_count(1)
    page.screenshot(path=str(output_dir / "alice-spawn-menu.png"), full_page=True)
    model = hub.api("GET", "/users/sso_alice").json()
    assert sorted(model["groups"]) == ["ink-admins", "juno"] and model["admin"] is True
    juno = hub.api("GET", "/groups/juno").json()
    assert juno["properties"]["ink"]["max_cpus"] == 4 and juno["users"] == ["sso_alice"]
    # the hub never shows the provider's tokens to the browser
    assert provider.client_secret not in page.content()

    # logout ends the hub's session: the next page asks for a login again
    page.goto(f"{hub.url}/hub/logout")
    page.wait_for_load_state()
    page.goto(f"{hub.url}/hub/home")
    expect(page.get_by_text("Sign in with Site SSO")).to_be_visible(timeout=15_000)
    assert "/hub/login" in page.url
    context.close()

    # bob (claim: physics) may log in, with the default allowance only
    context, page = sso_login(browser, hub, "sso_bob", output_dir)
    open_spawn_menu(page, hub)
    expect(page.locator(".ink-card")).to_have_count(1)
    expect(page.locator(".ink-card[data-app=jupyterlab]")).to_be_visible()
    expect(page.locator("#ink-experiment option[value=juno]")).to_have_count(0)
    page.screenshot(path=str(output_dir / "bob-spawn-menu.png"), full_page=True)
    bob = hub.api("GET", "/users/sso_bob").json()
    assert bob["groups"] == ["physics"] and bob["admin"] is False
    context.close()

    # eve (claim: visitors, not an allowed group) is refused by the hub, and gets no account
    context, page = sso_login(browser, hub, "sso_eve", output_dir)
    expect(page.locator("body")).to_contain_text("403", timeout=30_000)
    page.screenshot(path=str(output_dir / "eve-refused.png"), full_page=True)
    assert hub.api("GET", "/users/sso_eve").status_code == 404
    page.goto(f"{hub.url}/hub/spawn")
    expect(page.get_by_text("Sign in with Site SSO")).to_be_visible(timeout=15_000)
    context.close()
