""" "Run as batch job" on a notebook in the Files page, in Chromium: the notebook runs unattended
as alice through the jobs API, and its executed copy, beside the job's logs, reads in the
Files preview (cells, text output, an image; a cell's HTML stays text). Refusals: not a
notebook, another user's path, acting for someone else."""

import base64
import os
import pwd
import re
from pathlib import Path

import nbformat
import requests
from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.samples import png
from tests.integration.test_jobs_api import api, wait_state

USER = "inkt_alice"
FILES = "/services/ink-files/api/v1/"


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    image = base64.b64encode(png()).decode()
    nb.cells = [
        nbformat.v4.new_code_cell("values = [1, 2, 3]"),
        nbformat.v4.new_code_cell("print('sum =', sum(values))"),
        nbformat.v4.new_code_cell(
            f"import base64\nfrom IPython.display import Image, display\ndisplay(Image(data=base64.b64decode('{image}')))"
        ),
        nbformat.v4.new_markdown_cell("<img src=x onerror=\"document.title='pwned'\"> fits"),
    ]
    nbformat.write(nb, path)
    account = pwd.getpwnam(USER)
    os.chown(path, account.pw_uid, account.pw_gid)


def run(hub, token, path, **kwargs):
    return requests.post(
        f"{hub.url}{FILES}run/{path}", headers={"Authorization": f"token {token}"}, timeout=60, **kwargs
    )


def test_run_a_notebook_from_the_files_page(make_hub, unix_users, output_dir, browser):
    hub = make_hub({"type": "local"})
    home = Path(pwd.getpwnam(USER).pw_dir)
    write_notebook(home / "analysis.ipynb")
    (home / "notes.txt").write_text("not a notebook\n")
    token = hub.user_token(USER)

    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, hub, USER, unix_users[USER], output_dir, "alice")
    page.click("#ink-nav-files")
    row = page.locator("#ink-list tr[data-name='analysis.ipynb']")
    expect(row).to_be_visible(timeout=20_000)
    expect(
        page.locator("#ink-list tr[data-name='notes.txt'] button", has_text="run as batch job")
    ).to_have_count(0)
    row.locator("button", has_text="run as batch job").click()
    message = page.locator("#ink-run")
    expect(message).to_contain_text("Batch job j", timeout=30_000)
    job_id = re.search(r"Batch job (j\S+)", message.text_content()).group(1)
    page.screenshot(path=str(output_dir / "run-submitted.png"))

    done = wait_state(hub, token, job_id, ("completed", "failed"), timeout=180)
    assert done["state"] == "completed", api(hub, "GET", f"jobs/{job_id}/stderr", token).text
    assert done["notebook"] == os.path.join(done["output_dir"], "analysis.ipynb")
    assert Path(done["notebook"]).stat().st_uid == pwd.getpwnam(USER).pw_uid

    # its folder, then the executed copy in the preview
    message.locator("button", has_text="open its folder").click()
    executed = page.locator("#ink-list tr[data-name='analysis.ipynb']")
    expect(page.locator("#ink-list tr[data-name='stdout.log']")).to_be_visible(timeout=20_000)
    executed.locator("td.name a").click()
    view = page.locator("#ink-preview-notebook")
    expect(view.locator(".ink-output").first).to_contain_text("sum = 6")
    expect(view.locator("img.ink-output")).to_have_count(1)
    assert view.locator("img.ink-output").evaluate("img => img.naturalWidth") > 0
    expect(view.locator(".ink-cell-markdown pre")).to_contain_text("<img src=x")  # text, not HTML
    assert page.title() != "pwned"
    expect(view.locator(".ink-cell-label").nth(1)).to_have_text("In [2]:")
    page.screenshot(path=str(output_dir / "run-executed-notebook.png"), full_page=True)

    # what is refused, and why
    r = run(hub, token, "home/notes.txt")
    assert r.status_code == 400 and "notebook" in r.json()["message"], r.text
    bob = hub.user_token("inkt_bob")
    r = run(hub, bob, "home/analysis.ipynb")  # bob's own home has none
    assert r.status_code == 404, r.text
    r = run(hub, bob, "home/analysis.ipynb", params={"user": USER})
    assert r.status_code == 403, r.text
    jobs = api(hub, "GET", "jobs", token).json()["jobs"]
    assert [j["id"] for j in jobs] == [job_id], jobs
