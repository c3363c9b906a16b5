"""Live job monitor: a job that allocates memory step by step; the chart's data rises by what
it allocated (within 20%); users see only their own jobs' samples."""

import requests
from playwright.sync_api import expect

from tests.helpers.browser import open_home_frame
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for

SAMPLES = "/services/ink-dashboard/api/samples"
ALLOCATED = 600 * 1024 * 1024


def samples(hub, token, **params):
    r = requests.get(
        f"{hub.url}{SAMPLES}", params=params, headers={"Authorization": f"token {token}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_memory_chart_follows_the_job(make_hub, unix_users, output_dir, browser):
    hub = make_hub({"type": "local"})
    alice, bob = hub.user_token("inkt_alice"), hub.user_token("inkt_bob")
    spawn_and_wait(hub, "inkt_alice", alice, {"experiment": "memhog", "memory": "2G"})

    def grown():
        series = samples(hub, alice)["servers"].get("", [])
        rss = [s["rss_bytes"] for s in series]
        return len(rss) > 3 and max(rss) - rss[0] > 0.8 * ALLOCATED and series

    series = wait_for(grown, 60, interval=1, what="the job's memory to rise")
    rss = [s["rss_bytes"] for s in series]
    assert abs((max(rss) - rss[0]) - ALLOCATED) < 0.2 * ALLOCATED, (rss[0], max(rss))
    assert all(s["cpu_percent"] >= 0 for s in series)
    # bob's token sees none of alice's samples, even when asking for them
    assert samples(hub, bob)["servers"] == {}
    assert samples(hub, bob, user="inkt_alice")["servers"] == {}
    # an admin may look at anyone's job
    carol = hub.user_token("inkt_carol")
    assert len(samples(hub, carol, user="inkt_alice")["servers"][""]) >= len(series)

    page, frame = open_home_frame(
        browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "ink-dashboard"
    )
    chart = frame.locator(".ink-chart[data-server=''] .uplot")
    expect(chart).to_have_count(1, timeout=30_000)
    plotted = frame.locator("#ink-monitor").evaluate("el => JSON.parse(el.dataset.rss || '[]')")
    assert max(plotted) - min(plotted) > 0.8 * ALLOCATED
    page.screenshot(path=str(output_dir / "monitor.png"), full_page=True)
