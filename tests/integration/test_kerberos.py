"""Kerberos: login against a real MIT KDC, tickets renewed by the credentials service and
delivered into running jobs (local and Slurm), KDC outage, isolation."""

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.conftest import kerberos_site
from tests.helpers.ccache import secret_texts
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_spawn import job_processes

SERVICE = "/services/ink-credentials"


def hub_login(hub, name, password) -> requests.Session:
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=10)
    xsrf = session.cookies.get("_xsrf")
    r = session.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    session.login_status = r.status_code
    return session


def store_state(hub, name):
    import json

    path = Path(hub.site["paths"]["state"]) / "credentials" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def expiries(home: Path) -> list[int]:
    """'Expires' times of the krbtgt ticket from the job's klist loop, in order seen."""
    text = (home / "klist.log").read_text() if (home / "klist.log").exists() else ""
    found = []
    for match in re.finditer(r"^(\S+ \S+)\s+(\S+ \S+)\s+krbtgt/", text, re.M):
        stamp = time.mktime(time.strptime(match.group(2), "%m/%d/%y %H:%M:%S"))
        if not found or found[-1] != stamp:
            found.append(int(stamp))
    return found


def test_login_right_and_wrong_password_keeps_the_ticket(make_hub, kdc, unix_users):
    hub = make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc))
    bad = hub_login(hub, "inkt_alice", "wrong-password")
    assert bad.login_status == 403
    good = hub_login(hub, "inkt_alice", unix_users["inkt_alice"])
    assert good.login_status == 302
    ccache = Path(hub.site["paths"]["state"]) / "credentials" / "inkt_alice.ccache"
    assert ccache.exists() and ccache.stat().st_mode & 0o777 == 0o600
    state = store_state(hub, "inkt_alice")
    assert state["principal"] == "inkt_alice@INK.TEST" and state["renew_till"] > state["endtime"]
    # the status API (through the hub's proxy, as the logged-in user) never shows the ticket
    token = hub.user_token("inkt_alice")
    status = requests.get(
        f"{hub.url}{SERVICE}/api/status", headers={"Authorization": f"token {token}"}, timeout=10
    )
    assert status.status_code == 200 and status.json()["held"] is True
    secrets = secret_texts(ccache.read_bytes())  # the session key and the encrypted ticket
    assert len(secrets) >= 4
    for text in (status.text, hub.log_text(), hub.api("GET", "/users/inkt_alice").text):
        for secret in secrets:
            assert secret not in text


def test_tickets_stay_fresh_in_jobs_on_local_and_slurm(make_hub, kdc, slurm, unix_users):
    # renewed when 15% of the ticket's (1 minute) lifetime is gone: about every 9 s
    hubs = {
        "inkt_alice": make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc, renew_fraction=0.15)),
        "inkt_bob": make_hub(
            {"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}},
            lambda s: kerberos_site(s, kdc, renew_fraction=0.15),
        ),
    }
    for name, hub in hubs.items():
        Path(f"/home/{name}/klist.log").unlink(missing_ok=True)
        assert hub_login(hub, name, unix_users[name]).login_status == 302
    tokens = {name: hub.user_token(name) for name, hub in hubs.items()}
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: spawn_and_wait(hubs[n], n, tokens[n], {"experiment": "klist"}), hubs))

    # until each job has seen its ticket renewed three times (at most 4 minutes)
    def renewed_three_times(name) -> bool:
        seen = expiries(Path(f"/home/{name}"))
        return len(seen) >= 4 and store_state(hubs[name], name).get("renewals", 0) >= 3

    wait_for(
        lambda: all(renewed_three_times(n) for n in hubs), 240, interval=5, what="three renewals in each job"
    )
    for name in hubs:
        seen = expiries(Path(f"/home/{name}"))
        assert seen == sorted(seen) and seen[-1] - seen[0] >= 20, f"{name}: {seen}"  # 3 x ~9 s


def job_ticket(username) -> tuple[str, int]:
    """(principal, krbtgt expiry) of the ticket cache the user's running server uses."""
    (wrapper,) = job_processes(username)
    server = next(p for p in wrapper.children(recursive=True) if "KRB5CCNAME" in p.environ())
    cache = server.environ()["KRB5CCNAME"].removeprefix("FILE:")
    out = subprocess.run(["klist", "-c", cache], capture_output=True, text=True, check=True).stdout
    principal = re.search(r"Default principal:\s*(\S+)", out).group(1)
    match = re.search(r"^(\S+ \S+)\s+(\S+ \S+)\s+krbtgt/", out, re.M)
    return principal, int(time.mktime(time.strptime(match.group(2), "%m/%d/%y %H:%M:%S")))


def test_kdc_outage_is_retried_and_jobs_keep_their_ticket(make_hub, kdc, unix_users):
    # renewals every 12 s: the outage is noticed within seconds, the ticket still valid for 60
    hub = make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc, renew_fraction=0.2))
    assert hub_login(hub, "inkt_carol", unix_users["inkt_carol"]).login_status == 302
    token = hub.user_token("inkt_carol")
    spawn_and_wait(hub, "inkt_carol", token, {})
    first = store_state(hub, "inkt_carol").get("renewals", 0)
    wait_for(lambda: store_state(hub, "inkt_carol").get("renewals", 0) > first, 60, what="a renewal")
    before = store_state(hub, "inkt_carol")
    principal, job_expiry = wait_for(
        lambda: (t := job_ticket("inkt_carol"))[1] >= before["endtime"] and t, 60, what="the job's copy"
    )
    assert principal == "inkt_carol@INK.TEST"
    kdc.stop_kdc()
    try:
        # wait on what the service saw: two failed renewals (retried with backoff)
        during = wait_for(
            lambda: (st := store_state(hub, "inkt_carol")).get("failures", 0) >= 2 and st,
            120,
            what="two failed renewals while the KDC is down",
        )
        assert during["state"] == "renew-failed" and "cannot be reached" in during["error"]
        assert during["endtime"] == before["endtime"] and during["endtime"] > time.time(), "still valid"
        # the job keeps its still-valid ticket: same principal, same expiry, not yet expired
        assert job_ticket("inkt_carol") == (principal, job_expiry) and job_expiry > time.time()
        r = requests.get(
            hub.user_url("inkt_carol") + "api/status", headers={"Authorization": f"token {token}"}, timeout=10
        )
        assert r.status_code == 200
    finally:
        kdc.run_kdc()
    wait_for(lambda: store_state(hub, "inkt_carol")["state"] == "ok", 60, what="the next renewal to land")
    assert store_state(hub, "inkt_carol")["endtime"] > before["endtime"]
    # and the job's copy moves forward with it
    wait_for(lambda: job_ticket("inkt_carol")[1] > job_expiry, 60, what="the job's ticket to move forward")
    assert job_ticket("inkt_carol")[0] == principal
    assert hub.proc.poll() is None


def test_a_token_fetches_only_its_own_users_ticket(make_hub, kdc, unix_users):
    hub = make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc))
    assert hub_login(hub, "inkt_alice", unix_users["inkt_alice"]).login_status == 302
    from tests.integration.test_callback_security import server_token

    def ticket(token, query=""):
        url = f"{hub.url}{SERVICE}/api/ticket{query}"
        return requests.get(url, headers={"Authorization": f"token {token}"}, timeout=10)

    alice, bob = hub.user_token("inkt_alice"), hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_alice", alice, {})
    spawn_and_wait(hub, "inkt_bob", bob, {})
    # the path jobs depend on: alice's own server token gets her ticket
    mine = ticket(server_token("inkt_alice"))
    assert mine.status_code == 200 and b"inkt_alice" in mine.content
    # her ordinary API token (a laptop's) does not, nor her browser session (cookies)
    refused = ticket(alice)
    assert refused.status_code == 403 and b"inkt_alice" not in refused.content
    browser = hub_login(hub, "inkt_alice", unix_users["inkt_alice"])
    page = browser.get(f"{hub.url}{SERVICE}/api/ticket", timeout=10)
    assert b"inkt_alice" not in page.content and page.status_code in (302, 403), page.status_code
    # bob: his API token, his job's server token, with or without ?user=alice; the hub's token
    for token in (bob, server_token("inkt_bob"), hub.token):
        for query in ("", "?user=inkt_alice"):
            r = ticket(token, query)
            assert r.status_code in (403, 404) and b"inkt_alice" not in r.content, (r.status_code, query)


def test_renew_now_and_metrics(make_hub, kdc, unix_users):
    hub = make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc))
    assert hub_login(hub, "inkt_alice", unix_users["inkt_alice"]).login_status == 302
    token = hub.user_token("inkt_alice")
    before = store_state(hub, "inkt_alice").get("renewals", 0)
    time.sleep(1.1)
    r = requests.post(
        f"{hub.url}{SERVICE}/api/renew", headers={"Authorization": f"token {token}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert store_state(hub, "inkt_alice")["renewals"] == before + 1
    # each renewal is a KDC exchange: at most one per user every few seconds
    again = requests.post(
        f"{hub.url}{SERVICE}/api/renew", headers={"Authorization": f"token {token}"}, timeout=10
    )
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    assert store_state(hub, "inkt_alice")["renewals"] == before + 1
    metrics = hub.metrics_of("ink-credentials")
    assert metrics.status_code == 200
    assert "ink_credentials_tickets_held 1.0" in metrics.text
    assert 'ink_credentials_renewals_total{result="ok"}' in metrics.text
    assert hub.metrics_of("ink-credentials", token).status_code == 403


def test_sso_users_hand_in_a_ticket_by_password_or_keytab(make_hub, kdc, unix_users, tmp_path):
    hub = make_hub({"type": "local"}, lambda s: kerberos_site(s, kdc))
    bob, carol = hub.user_token("inkt_bob"), hub.user_token("inkt_carol")
    status = requests.get(
        f"{hub.url}{SERVICE}/api/status", headers={"Authorization": f"token {bob}"}, timeout=10
    )
    assert status.json() == {
        "held": False,
        "state": "none",
        "message": "INK holds no Kerberos ticket for you.",
    }
    wrong = requests.post(
        f"{hub.url}{SERVICE}/api/login",
        json={"password": "nope"},
        headers={"Authorization": f"token {bob}"},
        timeout=30,
    )
    assert wrong.status_code == 400 and "wrong password" in wrong.json()["message"]
    right = requests.post(
        f"{hub.url}{SERVICE}/api/login",
        json={"password": unix_users["inkt_bob"]},
        headers={"Authorization": f"token {bob}"},
        timeout=30,
    )
    assert right.status_code == 200 and right.json()["held"] is True
    keytab = tmp_path / "carol.keytab"
    kdc.kadmin(f"ktadd -k {keytab} -norandkey inkt_carol")
    r = requests.post(
        f"{hub.url}{SERVICE}/api/keytab",
        files={"keytab": keytab.read_bytes()},
        headers={"Authorization": f"token {carol}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert store_state(hub, "inkt_carol")["principal"] == "inkt_carol@INK.TEST"
    garbage = requests.post(
        f"{hub.url}{SERVICE}/api/keytab",
        files={"keytab": b"not a keytab"},
        headers={"Authorization": f"token {carol}"},
        timeout=30,
    )
    assert garbage.status_code == 400


TICKET_WATCH = (
    'klist; echo "cache=$KRB5CCNAME"; env | grep -c -e JUPYTERHUB_API_TOKEN -e INK_CREDENTIALS_URL; '
    "sleep 24; klist"
)


def test_a_sessions_batch_jobs_get_its_ticket_kept_fresh_and_a_laptops_do_not(
    make_hub, kdc, slurm, unix_users
):
    """Dask workers and other jobs a session submits (with its own token) get the user's ticket
    on Slurm, renewed as the session's is; the token that fetches it stays with the agent. A
    job from a laptop's token gets no ticket; the cache goes when the job ends."""
    from tests.integration.test_callback_security import server_token
    from tests.integration.test_jobs_api import api, wait_state

    hub = make_hub(
        {"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}},
        lambda s: kerberos_site(s, kdc, renew_fraction=0.15),
    )
    name = "inkt_alice"
    assert hub_login(hub, name, unix_users[name]).login_status == 302
    laptop = hub.user_token(name)
    spawn_and_wait(hub, name, laptop, {})
    session = server_token(name)
    command = {"command": ["/bin/sh", "-c", TICKET_WATCH], "walltime": "5m"}
    from_session = api(hub, "POST", "jobs", session, json=command)
    from_laptop = api(hub, "POST", "jobs", laptop, json=command)
    assert from_session.status_code == 201 and from_laptop.status_code == 201, from_laptop.text
    assert from_session.json()["ticket"] is True and from_laptop.json()["ticket"] is False
    jobs = {"session": from_session.json(), "laptop": from_laptop.json()}
    done = {
        k: wait_state(hub, laptop, j["id"], ("completed", "failed"), timeout=150) for k, j in jobs.items()
    }
    outputs = {k: Path(j["output_dir"], "stdout.log").read_text() for k, j in jobs.items()}

    out = outputs["session"]
    assert done["session"]["state"] == "completed", out
    assert out.count(f"Default principal: {name}@INK.TEST") == 2, out
    assert "\n0\n" in out, "the command saw the agent's token or URL:\n" + out
    stamps = re.findall(r"^\S+ \S+\s+(\S+ \S+)\s+krbtgt/", out, re.M)
    first, last = (time.mktime(time.strptime(s, "%m/%d/%y %H:%M:%S")) for s in (stamps[0], stamps[-1]))
    assert last > first, f"the job's ticket was not renewed in 24 s: {stamps}"
    cache = re.search(r"cache=FILE:(\S+)", out).group(1)
    assert not Path(cache).exists(), "the ticket cache outlived the job"
    record = json.loads(Path(jobs["session"]["output_dir"], "ink-job.json").read_text())
    assert record["ticket"] == "delivered", record
    secrets = secret_texts(Path(hub.site["paths"]["state"], "credentials", f"{name}.ccache").read_bytes())
    for text in (out, hub.log_text(), api(hub, "GET", f"jobs/{jobs['session']['id']}", laptop).text):
        assert session not in text and not any(s in text for s in secrets)

    out = outputs["laptop"]
    assert "Default principal" not in out and "cache=\n" in out, out
