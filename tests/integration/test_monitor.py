"""Live job monitor: a job allocates 100 MiB steps on the test's signal; the samples rise by
each step and by the total within 10 %, agree with the job's processes' own RSS, and the page
warns past 90 % of the request; users see only their own jobs' samples."""

import os
import pwd
from pathlib import Path

import psutil
import requests
from playwright.sync_api import expect

from tests.helpers.browser import open_home_frame
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_callback_security import server_token

SAMPLES = "/services/ink-dashboard/api/samples"
STEP = 100 * 1024 * 1024
STEPS = 8  # with a 1 GiB request, JupyterLab + 800 MiB passes the 90 % warning line
USER = "inkt_alice"


def samples(hub, token, **params):
    r = requests.get(
        f"{hub.url}{SAMPLES}", params=params, headers={"Authorization": f"token {token}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()


def rss_at(series, after: float, before: float) -> int:
    """The last sample taken in (after, before - 0.5 s): not while the next step allocates."""
    inside = [s for s in series if after < s["t"] < before - 0.5]
    assert inside, f"no sample between {after} and {before}"
    return inside[-1]["rss_bytes"]


def test_memory_chart_follows_the_job(make_hub, unix_users, output_dir, browser):
    account = pwd.getpwnam(USER)
    home = Path(account.pw_dir)
    for old in home.glob("memhog.*"):
        old.unlink()
    hub = make_hub({"type": "local"})
    alice, bob = hub.user_token(USER), hub.user_token("inkt_bob")
    spawn_and_wait(hub, USER, alice, {"experiment": "memhog", "memory": "1G"})

    def series():
        return samples(hub, alice)["servers"].get("", [])

    # JupyterLab's own start-up first: a plateau of 3 samples within 5 MiB, then the signal
    def settled():
        rss = [s["rss_bytes"] for s in series()][-3:]
        return len(rss) == 3 and max(rss) - min(rss) < 5 * 1024 * 1024 and series()

    before_signal = wait_for(settled, 60, interval=1, what="the job's memory to settle")
    signal_time = before_signal[-1]["t"]
    go = home / "memhog.go"
    go.write_text(str(STEPS))
    os.chown(go, account.pw_uid, account.pw_gid)

    steps = [home / f"memhog.step{i}" for i in range(1, STEPS + 1)]
    wait_for(lambda: steps[-1].exists(), 60, what="every allocation step")
    done_at = steps[-1].stat().st_mtime
    final = wait_for(
        lambda: (s := series()) and s[-1]["t"] > done_at + 2 and s, 30, interval=1, what="a sample after"
    )
    times = [signal_time] + [p.stat().st_mtime for p in steps] + [final[-1]["t"] + 1]
    baseline = rss_at(final, times[0] - 2, times[0] + 0.6)
    levels = [rss_at(final, times[i], times[i + 1]) for i in range(1, STEPS + 1)]
    deltas = [b - a for a, b in zip([baseline, *levels], levels, strict=False)]
    for number, delta in enumerate(deltas, 1):
        assert abs(delta - STEP) < 0.1 * STEP, f"step {number}: {delta / 2**20:.0f} MiB, {deltas}"
    assert abs((levels[-1] - baseline) - STEPS * STEP) < 0.1 * STEPS * STEP
    # the samples agree with the job's processes as the kernel counts them (within 10 %)
    own = sum(p.memory_info().rss for p in psutil.process_iter(["username"]) if p.info["username"] == USER)
    assert abs(own - final[-1]["rss_bytes"]) < 0.1 * own, (own, final[-1]["rss_bytes"])
    assert all(s["cpu_percent"] >= 0 for s in final)

    # only the job itself reports, with its server's own token, for its own server
    def post(token, body):
        return requests.post(
            f"{hub.url}{SAMPLES}", json=body, headers={"Authorization": f"token {token}"}, timeout=10
        )

    fake = {"cpu_percent": 1, "rss_bytes": 1, "read_bytes": 0, "write_bytes": 0, "processes": 1}
    assert post(alice, fake).status_code == 403  # her laptop's token is not her job
    assert post(bob, {**fake, "server": ""}).status_code == 403
    job = server_token(USER)
    assert post(job, {**fake, "server": "other"}).status_code == 403
    assert post(job, {**fake, "rss_bytes": 1e30}).status_code in (400, 429)

    # bob's token sees none of alice's samples, even when asking for them
    assert samples(hub, bob)["servers"] == {}
    assert samples(hub, bob, user=USER)["servers"] == {}
    # an admin may look at anyone's job
    carol = hub.user_token("inkt_carol")
    assert len(samples(hub, carol, user=USER)["servers"][""]) >= len(final)

    page, frame = open_home_frame(browser, hub, USER, unix_users[USER], output_dir, "ink-dashboard")
    chart = frame.locator(".ink-chart[data-server=''] .uplot")
    expect(chart).to_have_count(1, timeout=30_000)
    plotted = frame.locator("#ink-monitor").evaluate("el => JSON.parse(el.dataset.rss || '[]')")
    assert max(plotted) - min(plotted) > 0.9 * STEPS * STEP
    # past 90 % of the 1 GiB request the chart warns
    assert final[-1]["rss_bytes"] > 0.9 * 1024 * 2**20, final[-1]["rss_bytes"]
    expect(frame.locator(".ink-chart[data-server=''] .ink-warn")).to_contain_text(
        "Memory is near this job's request", timeout=30_000
    )
    page.screenshot(path=str(output_dir / "monitor.png"), full_page=True)
