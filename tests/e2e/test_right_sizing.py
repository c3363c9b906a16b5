"""Right-sizing and usage history: alice runs two JupyterLab sessions that allocate 300 and
600 MiB; each session's record keeps the peak its monitor agent saw, the spawn menu tells her
what would do (and fills it in), and the admin statistics page counts what the records hold."""

import os
import pwd
import subprocess
from pathlib import Path

from playwright.sync_api import expect

from ink_core.units import format_memory
from ink_spawner.history import format_mb, suggest_memory_mb
from tests.helpers.browser import open_as
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_monitor import samples

USER = "inkt_alice"
STEP_MB = 100


def run_a_session(hub, token, home: Path, steps: int) -> int:
    """One memhog session: settle, allocate ``steps`` x 100 MiB, stop; the peak it sampled."""
    for old in home.glob("memhog.*"):
        old.unlink()
    spawn_and_wait(hub, USER, token, {"experiment": "memhog", "memory": "2G"})

    def series():
        return samples(hub, token)["servers"].get("", [])

    def settled():
        rss = [s["rss_bytes"] for s in series()][-3:]
        return len(rss) == 3 and max(rss) - min(rss) < 5 * 2**20

    wait_for(settled, 60, interval=1, what="the job's memory to settle")
    account = pwd.getpwnam(USER)
    go = home / "memhog.go"
    go.write_text(str(steps))
    os.chown(go, account.pw_uid, account.pw_gid)
    last = home / f"memhog.step{steps}"
    wait_for(last.exists, 60, what="every allocation step")
    done_at = last.stat().st_mtime
    final = wait_for(lambda: (s := series()) and s[-1]["t"] > done_at + 2 and s, 30, what="a sample after")
    assert hub.api("DELETE", f"/users/{USER}/server", token=token).status_code in (202, 204)
    hub.wait_stopped(USER, token)
    return max(s["rss_bytes"] for s in final)


def test_two_sessions_teach_the_spawn_menu_and_the_statistics(make_hub, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"})
    alice, bob = hub.user_token(USER), hub.user_token("inkt_bob")
    home = Path(pwd.getpwnam(USER).pw_dir)
    summaries_before = set((home / ".ink" / "logs").glob("*.usage.json"))  # other tests' sessions
    peaks = [run_a_session(hub, alice, home, steps) / 2**20 for steps in (3, 6)]

    r = hub.api("GET", f"/ink/users/{USER}/history", token=alice)
    assert r.status_code == 200, r.text
    newest_first = r.json()["sessions"]
    assert len(newest_first) == 2, newest_first
    records = newest_first[::-1]
    for record, peak in zip(records, peaks, strict=True):
        assert (record["app"], record["experiment"], record["memory_mb"], record["backend"]) == (
            "jupyterlab",
            "memhog",
            2048,
            "local",
        )
        assert record["end_reason"] == "stopped" and record["started"] and record["ended"] > record["started"]
        # the record keeps the highest sample the agent took (the dashboard saw the same ones)
        assert abs(record["peak_memory_mb"] - peak) <= 0.02 * peak, (record, peak)
    grown = records[1]["peak_memory_mb"] - records[0]["peak_memory_mb"]
    assert abs(grown - 3 * STEP_MB) < 0.15 * 3 * STEP_MB, records
    # bob may not read alice's history
    assert hub.api("GET", f"/ink/users/{USER}/history", token=bob).status_code == 404

    # the spawn menu: what her last two sessions peaked at, and what would do
    peak = max(r["peak_memory_mb"] for r in records)
    suggestion = suggest_memory_mb(peak)
    page = open_as(browser, hub, USER, unix_users[USER], output_dir, "spawn")
    hint = page.locator(".ink-hint[data-app=jupyterlab]")
    expect(hint).to_contain_text(
        f"your last 2 JupyterLab sessions peaked at {format_mb(peak)} of 2 GB; {format_mb(suggestion)} would do"
    )
    page.locator(".ink-card[data-app=rootbrowser]").click()
    hint.locator("button", has_text="use this").click()
    expect(page.locator("#ink-memory")).to_have_value(format_memory(suggestion))
    expect(page.locator("input[name=app][value=jupyterlab]")).to_be_checked()
    page.screenshot(path=str(output_dir / "spawn-hint.png"), full_page=True)

    # her own history, from the hub's menu: newest first, what each used and why it ended
    page.click("#ink-nav-history")
    rows = page.locator("#ink-sessions tbody tr")
    expect(rows).to_have_count(2)
    for row, record in zip((rows.nth(0), rows.nth(1)), newest_first, strict=True):
        expect(row.locator(".ink-peak")).to_have_text(f"{record['peak_memory_mb']:.0f} MB")
        expect(row.locator(".ink-reason")).to_have_text("stopped")
    page.screenshot(path=str(output_dir / "history.png"), full_page=True)
    page.close()

    # the admin's figures are the records'; others may not see them
    carol = open_as(browser, hub, "inkt_carol", unix_users["inkt_carol"], output_dir, "home")
    carol.click("#ink-nav-statistics")  # admins find the page in the hub's menu
    expect(carol.locator("#ink-total")).to_have_text("2")
    expect(carol.locator("#ink-per-day tr[data-app=jupyterlab]")).to_have_attribute("data-sessions", "2")
    expect(carol.locator("#ink-memory tr[data-by=app][data-name=jupyterlab] td").nth(3)).to_have_text("4.0")
    carol.screenshot(path=str(output_dir / "statistics.png"), full_page=True)
    csv_text = carol.evaluate("async () => (await fetch(document.getElementById('ink-csv').href)).text()")
    assert csv_text.count("\n") == 3 and csv_text.startswith("id,user,server,app"), csv_text
    carol.close()
    bobs = open_as(browser, hub, "inkt_bob", unix_users["inkt_bob"], output_dir, "ink/statistics")
    expect(bobs.locator("body")).to_contain_text("403")
    expect(bobs.locator("#ink-nav-statistics")).to_have_count(0)
    # bob's History page holds his sessions only (none), whatever he asks for
    bobs.goto(f"{hub.url}/hub/ink/history?user={USER}&since=2020-01-01")
    expect(bobs.locator("#ink-no-sessions")).to_be_visible()
    expect(bobs.locator("#ink-sessions tbody tr")).to_have_count(0)
    bobs.close()
    # alice's usage summaries (beside her job logs) are hers alone: bob's shell cannot read them
    summaries = sorted(set((home / ".ink" / "logs").glob("*.usage.json")) - summaries_before)
    assert len(summaries) == 2, summaries
    for summary_file in summaries:
        assert summary_file.stat().st_mode & 0o777 == 0o600
        as_bob = subprocess.run(
            ["runuser", "-u", "inkt_bob", "--", "cat", str(summary_file)], capture_output=True, text=True
        )
        assert as_bob.returncode != 0 and "Permission denied" in as_bob.stderr, as_bob
