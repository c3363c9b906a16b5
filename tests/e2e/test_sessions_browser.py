"""In Chromium, on real Slurm: a session that cannot get the node's CPUs says why it waits and
when it should start, on the spawn page and the dashboard; once running, the dashboard's
Extend button raises the job's time limit in Slurm."""

import pytest
from playwright.sync_api import expect

from tests.helpers.browser import open_as, open_home_frame
from tests.helpers.net import wait_for
from tests.integration.test_dashboard import summary
from tests.integration.test_sessions import job_state, slurm_time_limit


@pytest.mark.slurm
def test_a_queued_session_says_why_then_extends_from_the_dashboard(
    make_hub, slurm, browser, unix_users, output_dir
):
    hub = make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    alice = hub.user_token("inkt_alice")
    # someone else's job holds every CPU of the node for 10 minutes
    blocker = slurm.run(
        [
            "sbatch",
            "--parsable",
            f"--cpus-per-task={slurm.cpus}",
            "--mem=100M",
            "--time=10",
            "--output=/dev/null",
            "--wrap",
            "sleep 600",
        ]
    )
    blocker_id = blocker.stdout.strip().split(";")[0]
    assert blocker_id.isdigit(), blocker.stdout + blocker.stderr
    try:
        wait_for(
            lambda: [j for j in slurm.squeue() if j[0] == blocker_id and j[2] == "RUNNING"],
            30,
            what="the blocking job to run",
        )
        page = open_as(browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "spawn")
        page.fill("#ink-memory", "1G")
        page.fill("#ink-walltime", "1h")
        page.select_option("#ink-experiment", "juno")
        page.click("#spawn_form button[type=submit]")
        message = page.locator("#progress-message")
        expect(message).to_contain_text("no free CPUs, memory or GPUs for it right now", timeout=60_000)
        expect(message).to_contain_text("(Slurm: Resources)")
        expect(message).to_contain_text("number 1 of 1 waiting jobs in partition ink")
        # Slurm's backfill pass estimates the start: the blocker's end, within its 10 minutes
        expect(message).to_contain_text("expected to start around", timeout=120_000)
        page.screenshot(path=str(output_dir / "queued-why.png"))

        (row,) = summary(hub, alice)["servers"]
        assert "(Slurm: Resources)" in row["waiting"] and "expected to start around" in row["waiting"], row
        home, frame = open_home_frame(
            browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "ink-dashboard"
        )
        expect(frame.locator(".ink-waiting")).to_contain_text("Why queued: the nodes it can run on")
        home.screenshot(path=str(output_dir / "dashboard-queued.png"), full_page=True)
        home.close()
    finally:
        slurm.run(["scancel", blocker_id])

    # the CPUs free again, the session starts; its card extends it in Slurm
    page.wait_for_url("**/lab**", timeout=120_000)
    job_id = job_state(hub, "inkt_alice")["job_id"]
    assert slurm_time_limit(slurm, job_id) == "01:00:00"
    home, frame = open_home_frame(
        browser, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "ink-dashboard"
    )
    frame.locator("button", has_text="Extend +2h").click()
    expect(frame.locator("#ink-message")).to_contain_text("time limit now 3h")
    assert slurm_time_limit(slurm, job_id) == "03:00:00"
    # 3h + 8h + 8h = 19h; juno's 1d from the start stops the next
    for answer in (
        "time limit now 11h",
        "time limit now 19h",
        "Not extended: you may run a session for at most 1d",
    ):
        frame.locator("button", has_text="Extend +8h").click()
        expect(frame.locator("#ink-message")).to_contain_text(answer)
    assert slurm_time_limit(slurm, job_id) == "19:00:00"
    home.screenshot(path=str(output_dir / "dashboard-extend.png"), full_page=True)
