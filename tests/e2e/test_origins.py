"""Per-user origins: a page that bob's own server serves (his ~/.jupyter config is his to write)
cannot read anything of alice's when alice opens it in her logged-in browser: not her hub
identity or tokens, not her files or the files page's XSRF token, not her web shell, not her own
server. The same page, on a hub configured with one origin, opens INK's files page in a window
(alice clicked), takes its XSRF token, lists her files and writes into her home: the probes are
real (framing the page fails even there: service pages send ``frame-ancestors 'none'``).
"""

import json
import pwd
import re
import shutil
from pathlib import Path

import requests
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait

# bob's page tries, with alice's cookies, everything a script on INK's origin could do
EVIL_PAGE = """<!doctype html><html><body><h1>bob's page</h1><button id="go">Show me</button>
<pre id="results">waiting for a click</pre>
<script>
const hub = new URLSearchParams(location.search).get("hub");
const alice = new URLSearchParams(location.search).get("alice");
const results = {};
// an INK page's XSRF token: in the JSON settings its scripts read
const token = html => (html.match(/"xsrf": "([^"]+)"/) || [])[1];
async function read(name, url, options) {
  try {
    const r = await fetch(url, {credentials: "include", redirect: "manual", ...options});
    const text = await r.text();
    results[name] = r.type === "opaqueredirect" ? "blocked: redirect" : "read " + r.status + ": " + text.slice(0, 300);
    return text;
  } catch (e) { results[name] = "blocked: " + e; return ""; }
}
async function frame(name, url) {
  // a page of INK's in a frame: read its DOM and the XSRF token its scripts hold
  const f = document.createElement("iframe");
  f.src = url;
  document.body.appendChild(f);
  await new Promise(done => { f.onload = done; setTimeout(done, 5000); });
  try {
    const html = f.contentDocument.documentElement.innerHTML;
    results[name] = "read: " + html.slice(0, 200);
    const jhdata = f.contentWindow.jhdata;
    return jhdata ? jhdata.xsrf_token : token(html);
  } catch (e) { results[name] = "blocked: " + e; return ""; }
}
async function popup(name, url) {
  // a page of INK's in a window this page opened (alice clicked): read it while it loads
  const w = window.open(url, "ink-popup");
  let html = "";
  try {
    // until its settings (near the page's end) are parsed, not only its title
    for (let i = 0; i < 100 && !token(html); i++) {
      await new Promise(done => setTimeout(done, 100));
      html = w.document.documentElement.innerHTML;
    }
    results[name] = html.includes("INK files") ? "read: " + html.slice(0, 200) : "blocked: never loaded";
  } catch (e) { results[name] = "blocked: " + e; }
  try { w.close(); } catch (e) {}
  return token(html);
}
function shell(name, url) {
  return new Promise(done => {
    let seen = "";
    try {
      const ws = new WebSocket(url);
      ws.onopen = () => { seen = "opened"; ws.send(JSON.stringify(["stdin", "id -un\\r"])); };
      ws.onmessage = m => { seen = "read: " + m.data; };
      ws.onerror = () => { if (!seen) seen = "blocked: error"; };
      ws.onclose = e => { results[name] = seen || "blocked: closed " + e.code; done(); };
      setTimeout(() => { results[name] = seen || "blocked: timeout"; try { ws.close(); } catch (e) {} done(); }, 5000);
    } catch (e) { results[name] = "blocked: " + e; done(); }
  });
}
document.getElementById("go").onclick = async () => {
  document.getElementById("results").textContent = "running";
  const hubXsrf = await frame("framed hub page", hub + "hub/token");
  const framedXsrf = await frame("framed files page", hub + "services/ink-files/");
  // the files page itself, fetched (its login redirects followed): its XSRF token is in it
  const page = await read("files page (its XSRF token)", hub + "services/ink-files/", {redirect: "follow"});
  // last: loading the page sets a new XSRF cookie, which ends the tokens of earlier loads
  const popupXsrf = await popup("files page in a window", hub + "services/ink-files/");
  const filesXsrf = framedXsrf || popupXsrf || token(page);
  const withHub = {headers: {"X-XSRFToken": hubXsrf || "none"}};
  const withFiles = {headers: {"X-XSRFToken": filesXsrf || "none"}};
  await read("hub identity", hub + "hub/api/user", withHub);
  await read("hub token made", hub + "hub/api/users/inkt_alice/tokens",
             {method: "POST", body: JSON.stringify({note: "bob's"}), ...withHub});
  await read("files listing", hub + "services/ink-files/api/v1/list/home/alice-secrets", withFiles);
  await read("files write", hub + "services/ink-files/api/v1/mkdir/home/bob-was-here", {method: "POST", ...withFiles});
  await read("her own server", alice + "api/status");
  await shell("her web shell", hub.replace(/^http/, "ws") + "services/ink-shell/terminal");
  document.getElementById("results").textContent = JSON.stringify(results);
};
</script></body></html>
"""


def bobs_page(hub) -> str:
    """bob configures his own server (as any user may) to serve a page of his: its URL."""
    bob = pwd.getpwnam("inkt_bob")
    home = Path(bob.pw_dir)
    folder = home / "evil"
    folder.mkdir(exist_ok=True)
    (folder / "evil.html").write_text(EVIL_PAGE)
    config = home / ".jupyter"
    config.mkdir(exist_ok=True)
    (config / "jupyter_server_config.py").write_text(f"c.ServerApp.extra_static_paths = [{str(folder)!r}]\n")
    for path in (folder, folder / "evil.html", config, config / "jupyter_server_config.py"):
        shutil.chown(path, bob.pw_uid, bob.pw_gid)
    try:
        spawn_and_wait(hub, "inkt_bob", hub.user_token("inkt_bob"))
    finally:  # read at the server's start; other tests' servers of bob's go without it
        shutil.rmtree(config)
    return hub.user_url("inkt_bob") + "static/evil.html"


def probe(hub, browser, unix_users, output_dir, label) -> dict:
    """alice, logged in, with her own server running, opens bob's page: what its script read."""
    alice = pwd.getpwnam("inkt_alice")
    alice_home = Path(alice.pw_dir)
    # in a folder of its own: the probe's answer (its first 300 characters) shows it whatever
    # else earlier tests left in her home
    secrets = alice_home / "alice-secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "alice-private-notes.txt").write_text("alice's secret analysis\n")
    for path in (secrets, secrets / "alice-private-notes.txt"):
        shutil.chown(path, alice.pw_uid, alice.pw_gid)
    shutil.rmtree(alice_home / "bob-was-here", ignore_errors=True)
    url = bobs_page(hub)
    spawn_and_wait(hub, "inkt_alice", hub.user_token("inkt_alice"))
    page = browser.new_page()
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, f"{label}-alice")
    page.goto(hub.url + "/services/ink-files/#home/alice-secrets")  # she has used INK's pages
    expect(page.locator("body")).to_contain_text("alice-private-notes.txt", timeout=30_000)
    page.goto(f"{url}?hub={hub.url}/&alice={hub.user_url('inkt_alice')}")
    page.click("#go")  # alice clicks on bob's page (a window it opens needs her click)
    expect(page.locator("#results")).to_have_text(re.compile(r"^\{"), timeout=60_000)
    page.screenshot(path=str(output_dir / f"{label}-bobs-page.png"))
    results = json.loads(page.locator("#results").text_content())
    (output_dir / f"{label}-results.json").write_text(json.dumps(results, indent=1))
    return results


def test_bobs_page_reads_nothing_of_alices(make_hub, unix_users, output_dir, browser):
    hub = make_hub({"type": "local"})
    results = probe(hub, browser, unix_users, output_dir, "per-user-origins")
    assert len(results) == 10, results
    read = {name: what for name, what in results.items() if not what.startswith("blocked")}
    assert not read, f"bob's page read alice's {sorted(read)}: {read}"
    assert not (Path(pwd.getpwnam("inkt_alice").pw_dir) / "bob-was-here").exists()
    # the hub answers only on its own host: alice cannot be led to log in on bob's
    bob_host = hub.user_url("inkt_bob").split("/user/")[0]
    r = requests.get(f"{bob_host}/hub/login", timeout=10, allow_redirects=False)
    assert r.status_code == 404 and "login_submit" not in r.text and "ink-not-here" in r.text


def test_on_one_origin_the_same_page_reads_her_files(make_hub, unix_users, output_dir, browser):
    """The control: what per-user origins prevent really happens without them."""

    def one_origin(site):
        site["hub"] = {**site.get("hub", {}), "per_user_origins": False}
        return site

    hub = make_hub({"type": "local"}, adjust=one_origin)
    results = probe(hub, browser, unix_users, output_dir, "one-origin")
    assert "INK files: inkt_alice" in results["files page in a window"], results
    assert results["framed files page"].startswith("blocked"), (
        "frame-ancestors 'none' holds on one origin too"
    )
    assert "alice-private-notes.txt" in results["files listing"], results
    assert results["files write"].startswith("read 201"), results
    assert (Path(pwd.getpwnam("inkt_alice").pw_dir) / "bob-was-here").is_dir()
