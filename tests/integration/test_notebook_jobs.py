"""Notebooks as batch jobs, through the `ink` command, on the local backend and real Slurm:
`-p run 1 2` runs the notebook once per value, as the user, with the value injected after its
`parameters` cell; each executed copy lands beside its job's logs; a failing cell fails the job,
and its log names the cell."""

import json
import os
import pwd
from pathlib import Path

import nbformat
import pytest

from tests.helpers.cli import ink, token_env
from tests.helpers.net import wait_for
from tests.integration.test_jobs_api import api

USER = "inkt_alice"


def notebook(path: Path, *cells: str, tag_first: bool = True, kernel: str = "") -> None:
    nb = nbformat.v4.new_notebook()
    if kernel:  # as JupyterLab saves them; without one the runner takes Python's
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    if tag_first:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    account = pwd.getpwnam(USER)
    os.chown(path, account.pw_uid, account.pw_gid)


@pytest.fixture(params=["local", "slurm"])
def notebook_hub(request, make_hub):
    if request.param == "slurm":
        slurm = request.getfixturevalue("slurm")
        return make_hub({"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}})
    return make_hub({"type": "local"})


def test_notebooks_run_as_batch_jobs_with_parameters(notebook_hub, unix_users, tmp_path):
    hub = notebook_hub
    token = hub.user_token(USER)
    home = Path(pwd.getpwnam(USER).pw_dir)
    folder = home / "nb-test"
    folder.mkdir(exist_ok=True)
    os.chown(folder, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
    notebook(
        folder / "fit.ipynb",
        "run = 0\ncut = 'none'",  # the parameters cell: its defaults
        "import getpass, os\nresult = {'run': run, 'cut': cut, 'user': getpass.getuser(), 'cwd': os.getcwd()}\nprint(result)",
        kernel="python3",
    )
    notebook(folder / "broken.ipynb", "x = 1", "y = x + 1", "raise ValueError(f'bad run {y}')")

    env = token_env(hub, token, tmp_path / "config")
    submit = ("--json", "jobs", "submit", "--notebook")
    sweep = ink(env, *submit, "nb-test/fit.ipynb", "-p", "run", "1", "2", "-p", "cut", "tight", timeout=120)
    jobs = json.loads(sweep.stdout)
    assert [j["name"] for j in jobs] == ["job", "job"] and all(j["notebook"] for j in jobs), jobs
    broken = ink(env, *submit, "nb-test/broken.ipynb")
    failing = json.loads(broken.stdout)

    def ended(job_id):
        job = api(hub, "GET", f"jobs/{job_id}", token).json()
        return job if job["state"] in ("completed", "failed") else None

    for job, run in zip(jobs, (1, 2), strict=True):
        done = wait_for(lambda j=job: ended(j["id"]), 180, what=f"notebook run {run}")
        assert done["state"] == "completed", (done, api(hub, "GET", f"jobs/{job['id']}/stderr", token).text)
        executed = Path(done["notebook"])
        assert executed.parent == Path(done["output_dir"]) and executed.name == "fit.ipynb"
        assert executed.stat().st_uid == pwd.getpwnam(USER).pw_uid  # written as alice
        cells = nbformat.read(executed, as_version=4).cells
        injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and cells.index(injected[0]) == 1, [c.source for c in cells]
        printed = "".join(o.get("text", "") for o in cells[-1].outputs)
        expected = {"run": run, "cut": "tight", "user": USER, "cwd": str(folder)}
        assert printed.strip() == repr(expected), printed
        log = api(hub, "GET", f"jobs/{job['id']}/stdout", token).text
        assert repr(expected) in log, log  # the cells' output in the job's log, as it came

    done = wait_for(lambda: ended(failing["id"]), 180, what="the failing notebook")
    assert (done["state"], done["exit_code"]) == ("failed", 1), done
    err = api(hub, "GET", f"jobs/{failing['id']}/stderr", token).text
    assert "the notebook failed in cell 3 (In [3]): ValueError: bad run 2" in err, err
    executed = nbformat.read(done["notebook"], as_version=4)  # kept, with the traceback
    errors = [
        o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert [e["ename"] for e in errors] == ["ValueError"], executed.cells

    # bad requests say what is wrong
    for body, field in (
        ({"notebook": "../etc/x.ipynb"}, "notebook"),
        ({"notebook": "nb-test/fit.py"}, "notebook"),
        ({"notebook": "nb-test/fit.ipynb", "parameters": {"class": 1}}, "parameters"),
        ({"command": ["true"], "parameters": {"run": 1}}, "parameters"),
    ):
        r = api(hub, "POST", "jobs", token, json=body)
        assert r.status_code == 400 and r.json()["message"].startswith(field), (body, r.text)
