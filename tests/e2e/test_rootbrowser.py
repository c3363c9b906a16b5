"""The ROOT browser app: spawned as alice's job (local backend), reached through the hub's proxy
and her single-user server; lists her ROOT files' keys, draws a histogram and a tree branch
with JSROOT; another user's file and paths out of her home are refused."""

import pwd
import shutil
from pathlib import Path

import requests
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait
from tests.helpers.samples import root_file


def test_root_browser_in_a_job(make_hub, unix_users, output_dir, browser, tmp_path):
    hub = make_hub({"type": "local"})
    alice = pwd.getpwnam("inkt_alice")
    folder = Path(alice.pw_dir) / "analysis"
    folder.mkdir(exist_ok=True)
    root_file(folder / "run42.root")
    shutil.chown(folder, alice.pw_uid, alice.pw_gid)
    shutil.chown(folder / "run42.root", alice.pw_uid, alice.pw_gid)
    bob = pwd.getpwnam("inkt_bob")
    secret = Path(bob.pw_dir) / "bob-private.root"
    root_file(secret)
    shutil.chown(secret, bob.pw_uid, bob.pw_gid)
    secret.chmod(0o600)

    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"app": "rootbrowser"})
    base = hub.user_url("inkt_alice") + "rootbrowser/"
    headers = {"Authorization": f"token {token}"}
    files = requests.get(base + "api/files", headers=headers, timeout=30).json()["files"]
    assert {"path": "analysis/run42.root", "size": (folder / "run42.root").stat().st_size} in files
    # out of her home, or someone else's file: refused
    for rel in ("..%2Finkt_bob%2Fbob-private.root", "analysis/..%2F..%2Finkt_bob%2Fbob-private.root"):
        r = requests.get(base + "file/" + rel, headers=headers, timeout=30)
        assert r.status_code in (400, 403) and b"root" not in r.content[:4].lower(), rel
    (Path(alice.pw_dir) / "bob-link.root").unlink(missing_ok=True)
    (Path(alice.pw_dir) / "bob-link.root").symlink_to(secret)
    r = requests.get(base + "file/bob-link.root", headers=headers, timeout=30)
    assert r.status_code == 403
    files = requests.get(base + "api/files", headers=headers, timeout=30).json()["files"]
    assert "bob-link.root" not in [f["path"] for f in files]
    # the app is reached only with alice's hub login: bob's token is turned away
    r = requests.get(
        base + "api/files",
        headers={"Authorization": f"token {hub.user_token('inkt_bob')}"},
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code == 403 and "run42" not in r.text, (r.status_code, r.headers.get("Location"))

    page = browser.new_page(viewport={"width": 1300, "height": 900})
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    page.goto(base)
    page.click("#ink-root-files li[data-path='analysis/run42.root']")
    expect(page.locator("#ink-root-keys li[data-path='maps/deeper/hdeep']")).to_be_visible(timeout=30_000)
    page.click("#ink-root-keys li[data-path='hpx'] > a")
    drawing = page.locator("#ink-root-draw")
    expect(drawing).to_have_attribute("data-drawn", "hpx", timeout=30_000)
    longest = drawing.locator("svg path").evaluate_all(
        "ps => Math.max(...ps.map(p => (p.getAttribute('d') || '').length))"
    )
    assert longest > 200  # the histogram's bins
    page.screenshot(path=str(output_dir / "rootbrowser-hist.png"))
    page.click("#ink-root-keys li[data-branch='px'] > a")
    expect(drawing).to_have_attribute("data-drawn", "events:px", timeout=30_000)
    expect(drawing.locator("svg.root_canvas")).to_contain_text("px")
    page.screenshot(path=str(output_dir / "rootbrowser-branch.png"))
