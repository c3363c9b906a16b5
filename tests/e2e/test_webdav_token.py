"""The token page tells how to mount the storage (WebDAV) and makes the token for it: the token
made by following it in Chromium opens alice's files over WebDAV and does nothing else."""

import pwd
import re
from pathlib import Path

import requests
from playwright.sync_api import expect

from tests.helpers.browser import login


def test_the_token_page_makes_a_token_for_a_mount(make_hub, unix_users, output_dir, browser):
    hub = make_hub({"type": "local"})
    home = Path(pwd.getpwnam("inkt_alice").pw_dir)
    (home / "mounted.txt").write_text("through WebDAV\n")
    page = browser.new_context(viewport={"width": 1300, "height": 1100}).new_page()
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    page.goto(f"{hub.url}/hub/token")
    url = f"{hub.url}/services/ink-files/dav/"
    expect(page.locator("#ink-dav-url")).to_have_text(url)
    expect(page.locator("#ink-dav-example")).to_contain_text(f"url={url} user=inkt_alice")
    page.click("#ink-dav-fill")
    expect(page.locator("#token-scopes")).to_have_value(
        "custom:ink:files:write access:services!service=ink-files"
    )
    page.click("#request-token-form button[type=submit]")
    expect(page.locator("#token-result")).to_have_text(re.compile(r"^\w{20,}$"), timeout=20_000)
    token = page.locator("#token-result").inner_text()
    page.screenshot(path=str(output_dir / "token-page-mount.png"), full_page=True)

    auth = ("inkt_alice", token)
    r = requests.get(f"{url}home/mounted.txt", auth=auth, timeout=30)
    assert r.status_code == 200 and r.text == "through WebDAV\n"
    r = requests.put(f"{url}home/from-laptop.txt", data=b"hello", auth=auth, timeout=30)
    assert r.status_code == 201 and (home / "from-laptop.txt").read_bytes() == b"hello"
    # the mount's token opens files, not the hub's API or the jobs API
    assert requests.get(f"{hub.url}/hub/api/users", auth=auth, timeout=30).status_code in (401, 403)
    headers = {"Authorization": f"token {token}"}
    r = requests.post(f"{hub.url}/hub/api/users/inkt_alice/tokens", json={}, headers=headers, timeout=30)
    assert r.status_code == 403  # it cannot make itself a wider token
    r = requests.post(f"{hub.url}/hub/api/users/inkt_alice/server", headers=headers, timeout=30)
    assert r.status_code == 403
    r = requests.get(f"{hub.url}/services/ink-jobs/api/v1/jobs", headers=headers, timeout=30)
    assert r.status_code == 403
