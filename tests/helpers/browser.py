"""Headless Chromium (Debian's) through Playwright: launch flags and the steps every page test takes."""

from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def login(page, hub, name, password, shots, label):
    page.goto(f"{hub.url}/hub/login")
    expect(page.locator(".ink-login-banner")).to_contain_text("INK")
    page.screenshot(path=str(shots / f"{label}-login.png"))
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")


def open_as(browser, hub, name, password, shots, path):
    """A new page, logged in as ``name``, at the hub's ``path`` (e.g. "spawn")."""
    page = browser.new_page()
    login(page, hub, name, password, shots, name)
    page.goto(f"{hub.url}/hub/{path}")
    return page


def open_home_frame(browser, hub, name, password, shots, frame_id):
    """Log in, open the hub's home page, return (page, the embedded INK frame)."""
    page = open_as(browser, hub, name, password, shots, "home")
    return page, page.frame_locator(f"#{frame_id}")
