"""JupyterLab's Dask panel (dask-labextension) in a session, in Chromium: "NEW" makes an
InkCluster, "SCALE" submits its worker as a batch job, the panel lists it and shows the
dashboard's plots, which the session's server proxies from the cluster's private socket through
the hub. Nobody else reaches that dashboard: not bob, not an anonymous browser; "SHUTDOWN"
cancels the worker's job."""

import re
from urllib.parse import quote

import requests
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_jobs_api import api

USER = "inkt_alice"


def lab_api(hub, method, path, token, **kwargs):
    url = f"{hub.user_url(USER)}{path}"
    return requests.request(method, url, headers={"Authorization": f"token {token}"}, timeout=60, **kwargs)


def test_the_dask_panel_makes_scales_and_shows_an_ink_cluster(make_hub, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"})
    alice, bob = hub.user_token(USER), hub.user_token("inkt_bob")
    spawn_and_wait(hub, USER, alice, {"experiment": "juno", "memory": "2G"})

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, hub, USER, unix_users[USER], output_dir, "dask")
    page.goto(f"{hub.user_url(USER)}lab")
    expect(page.locator(".jp-LabShell").first).to_be_visible(timeout=120_000)
    page.locator(".jp-SideBar [data-id='dask-dashboard-launcher']").click()
    panel = page.locator(".dask-DaskClusterManager")
    panel.locator("jp-button, button").filter(has_text="NEW").first.click()
    item = panel.locator(".dask-ClusterListingItem").first
    expect(item).to_contain_text("InkCluster 1", timeout=60_000)
    (cluster,) = lab_api(hub, "GET", "dask/clusters", alice).json()
    assert "/dask/dashboard/" in cluster["dashboard_link"], cluster

    # SCALE: one worker, a batch job of alice's
    item.locator(".dask-ClusterListingItem-scale").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").first.fill("1")
    page.screenshot(path=str(output_dir / "dask-panel-scale.png"))
    dialog.locator(".jp-mod-accept").click()
    wait_for(
        lambda: lab_api(hub, "GET", f"dask/clusters/{cluster['id']}", alice).json()["workers"] == 1,
        120,
        what="the panel's cluster to have its worker",
    )
    jobs = [j for j in api(hub, "GET", "jobs", alice).json()["jobs"] if j["name"].startswith("dask-")]
    assert [j["state"] for j in jobs] == ["running"], jobs

    # the dashboard's plots, through the hub, in the panel
    item.click()
    plots = page.locator(".dask-DashboardListing-item:not(.dask-DashboardListing-inactive)")
    expect(plots.filter(has_text="Task Stream")).to_have_count(1, timeout=60_000)
    plots.filter(has_text=re.compile(r"^\s*Workers\s*$", re.I)).click()
    frame = page.frame_locator(".dask-DaskDashboard-widget iframe").first
    expect(frame.locator("canvas").first).to_be_attached(timeout=30_000)  # bokeh drew the plot
    page.wait_for_timeout(1000)
    page.screenshot(path=str(output_dir / "dask-panel.png"))

    # the dashboard is alice's alone: her token gets it, bob's and nobody's do not
    status = f"dask/dashboard/{cluster['id']}/status"
    mine = lab_api(hub, "GET", status, alice)
    assert mine.status_code == 200 and "bokeh" in mine.text.lower(), mine.status_code
    check = lab_api(hub, "GET", "dask/dashboard-check/" + quote(cluster["dashboard_link"], safe=""), alice)
    assert check.json()["isActive"] is True and "individual-task-stream" in str(check.json()["plots"])
    for token in (bob, "not-a-token"):
        theirs = lab_api(hub, "GET", status, token, allow_redirects=False)
        assert theirs.status_code in (302, 403) and "bokeh" not in theirs.text.lower(), theirs.status_code
    nobody = requests.get(f"{hub.user_url(USER)}{status}", timeout=30, allow_redirects=False)
    assert nobody.status_code in (302, 403), nobody.status_code
    assert lab_api(hub, "GET", "dask/dashboard/no-such-cluster/status", alice).status_code == 404

    # SHUTDOWN: the worker's job is cancelled
    item.locator(".dask-ClusterListingItem-stop").click()
    expect(panel.locator(".dask-ClusterListingItem")).to_have_count(0, timeout=60_000)
    wait_for(
        lambda: api(hub, "GET", f"jobs/{jobs[0]['id']}", alice).json()["state"] in ("cancelled", "completed"),
        60,
        what="the worker's job to end",
    )
    page.close()
