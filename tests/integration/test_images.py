"""OS images for real (issue 21): a session started with the test image (a Debian root
filesystem built by mmdebstrap, with an os-release of its own) runs inside it, as the user, on
the local backend, on real Slurm and on the stand-in HTCondor pool's container universe; a
missing image says so at once; an image serves only the apps it lists."""

import json
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest
import yaml
from playwright.sync_api import expect

from tests.conftest import condor_backend
from tests.helpers.browser import login, open_as
from tests.helpers.hub import spawn_and_wait
from tests.helpers.images import PRETTY_NAME
from tests.helpers.kernel import Kernel
from tests.integration.test_htcondor import start_failure_text

USER = "inkt_alice"

INSIDE = """
import json, os, subprocess
release = dict(l.split("=", 1) for l in open("/etc/os-release").read().split() if "=" in l)
procs = subprocess.run(["ps", "-eo", "user:20,pid,comm", "--no-headers"], capture_output=True, text=True).stdout
print(json.dumps({
    "pretty": open("/etc/os-release").read().split("PRETTY_NAME=", 1)[1].split("\\n", 1)[0].strip('"'),
    "marker": release.get("INK_TEST_IMAGE"),
    "uid": os.getuid(),
    "home": sorted(os.listdir(os.path.expanduser("~"))),
    "user": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
    "host_sbatch": os.path.exists("/usr/bin/sbatch"),
    "host_tmp": os.path.exists("/tmp/ink-host-only"),
    "storage": sorted(os.listdir("/data")) if os.path.isdir("/data") else None,
    "owners": sorted({line.split()[0] for line in procs.splitlines()}),
    "pid": os.getpid(),
}))
"""


@pytest.fixture
def profiles(tmp_path, profiles_dir, test_image):
    """The test profiles with the test image (and a storage area of the site's bound into it at
    /data, readable by every user), an image offering more apps, and one no node has."""
    storage = Path(tempfile.mkdtemp(prefix="ink-storage-"))
    storage.chmod(0o755)
    (storage / "dataset.txt").write_text("events")
    yield with_images(tmp_path, profiles_dir, test_image, storage)
    shutil.rmtree(storage, ignore_errors=True)


def with_images(tmp_path, profiles_dir, rootfs, storage):
    folder = tmp_path / "profiles"
    shutil.copytree(profiles_dir, folder)
    images = yaml.safe_load((folder / "images.yaml").read_text())
    images["images"]["testimage"] = {
        "display_name": PRETTY_NAME,
        "rootfs": str(rootfs),
        "binds": [f"{storage}:/data"],
        "apps": ["jupyterlab"],
    }
    # the same image offered with the desktop and VS Code too (their programs are in it)
    images["images"]["testdesktop"] = {
        **images["images"]["testimage"],
        "apps": ["jupyterlab", "desktop", "vscode"],
    }
    images["images"]["gone"] = {"display_name": "An image this node lacks", "rootfs": "/nonexistent/image"}
    (folder / "images.yaml").write_text(yaml.safe_dump(images))
    return folder


def allow_images(site):
    site["experiments"]["juno"]["allowance"]["images"] += ["testimage", "testdesktop", "gone"]
    return site


def check_inside(hub, token, home):
    (home / "made-on-the-host.txt").write_text("hello")
    kernel = Kernel(hub.user_url(USER), token)
    try:
        seen = json.loads(kernel.run(INSIDE).strip().splitlines()[-1])
    finally:
        kernel.shutdown()
    assert seen["pretty"] == PRETTY_NAME and seen["marker"] == "1", seen  # the image's OS, not the host's
    assert not seen["host_sbatch"] and not seen["host_tmp"]  # the host's programs and /tmp are not there
    assert seen["uid"] == int(subprocess.run(["id", "-u", USER], capture_output=True, text=True).stdout)
    assert seen["user"] == USER  # the image's passwd knows the user
    assert "made-on-the-host.txt" in seen["home"]  # the home is the user's own, read and written
    assert seen["storage"] == ["dataset.txt"]  # the image's binds: the site's storage at /data
    assert seen["owners"] == [USER], seen["owners"]  # nothing in the job runs as root
    return seen


@pytest.mark.parametrize("backend", ["local", "slurm", "htcondor"])
def test_jupyterlab_runs_in_the_image(backend, request, make_hub, profiles, test_image):
    host_only = Path("/tmp/ink-host-only")  # a file of the host's /tmp, not to be seen inside
    host_only.touch()
    request.addfinalizer(lambda: host_only.unlink(missing_ok=True))
    if backend == "slurm":
        slurm = request.getfixturevalue("slurm")
        options = {"type": "slurm", "options": {"slurm_conf": str(slurm.conf)}}
    elif backend == "htcondor":
        request.getfixturevalue("schedd")
        options = condor_backend()
    else:
        options = {"type": "local"}
    hub = make_hub(options, adjust=allow_images, profiles=profiles)
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token, {"app": "jupyterlab", "image": "testimage"})
    check_inside(hub, token, Path(pwd.getpwnam(USER).pw_dir))
    # another user can neither signal the session's processes nor enter its root (from the host)
    server = user_process(lambda _, cmdline: "jupyterhub.singleuser" in cmdline).pid
    bob = subprocess.run(
        ["runuser", "-u", "inkt_bob", "--", "kill", "-0", str(server)], capture_output=True, text=True
    )
    assert bob.returncode != 0 and "not permitted" in bob.stderr, bob.stderr
    bob = subprocess.run(
        ["runuser", "-u", "inkt_bob", "--", "ls", f"/proc/{server}/root/tmp"], capture_output=True, text=True
    )
    assert bob.returncode != 0 and "denied" in bob.stderr, bob.stderr
    if backend == "htcondor":  # the scheduler ran it in its container universe
        ad = request.getfixturevalue("schedd").client().query(f'Owner == "{USER}"', [])[0]
        assert ad["JobUniverse"] == 14 and ad["ContainerImage"] == str(test_image)


def test_a_missing_image_is_named_at_once(make_hub, profiles):
    hub = make_hub({"type": "local"}, adjust=allow_images, profiles=profiles)
    token = hub.user_token(USER)
    text = start_failure_text(hub, USER, token, {"app": "jupyterlab", "image": "gone"})
    assert "INK: cannot start in the OS image 'gone' (/nonexistent/image)" in text, text
    assert "is not on this node" in text


def test_an_image_serves_only_its_apps(make_hub, profiles, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"}, adjust=allow_images, profiles=profiles)
    token = hub.user_token(USER)
    r = hub.api("POST", f"/users/{USER}/server", token=token, json={"app": "desktop", "image": "testimage"})
    assert r.status_code == 400 and "cannot run Linux desktop (it runs jupyterlab)" in r.text, r.text
    # the spawn menu: with the image picked, only its apps' cards are there
    page = open_as(browser, hub, USER, unix_users[USER], output_dir, "spawn")
    expect(page.locator(".ink-card:visible")).to_have_count(5)
    page.select_option("#ink-image", "testdesktop")
    expect(page.locator(".ink-card:visible")).to_have_count(3)
    page.select_option("#ink-image", "testimage")
    expect(page.locator(".ink-card:visible")).to_have_count(1)
    expect(page.locator(".ink-card[data-app=jupyterlab]")).to_be_visible()
    page.screenshot(path=str(output_dir / "spawn-menu-with-the-image.png"), full_page=True)
    page.select_option("#ink-image", "host")
    expect(page.locator(".ink-card:visible")).to_have_count(5)


def user_process(matches) -> psutil.Process:
    """A process of the test user's whose name or command line ``matches``."""
    found = [
        p
        for p in psutil.process_iter(["username", "name", "cmdline"])
        if p.info["username"] == USER and matches(p.info["name"] or "", " ".join(p.info["cmdline"] or []))
    ]
    assert found, "no such process of the user's"
    return found[0]


def app_in_the_image(hub, app, path, works, browser, password, output_dir, matches):
    """Start ``app`` in the image, open it in Chromium, and show its server's root is the image's."""
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token, {"app": app, "image": "testdesktop"})
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, hub, USER, password, output_dir, "alice")
    page.goto(hub.user_url(USER) + path)
    expect(page.locator(works)).to_have_count(1, timeout=90_000)
    page.wait_for_timeout(2000)  # let it draw
    page.screenshot(path=str(output_dir / f"{app}-in-the-image.png"))
    server = user_process(matches)
    assert PRETTY_NAME in Path(f"/proc/{server.pid}/root/etc/os-release").read_text()
    assert PRETTY_NAME not in Path("/etc/os-release").read_text()


def test_the_desktop_runs_in_the_image(make_hub, profiles, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"}, adjust=allow_images, profiles=profiles)
    app_in_the_image(
        hub,
        "desktop",
        "desktop/",
        "html.noVNC_connected",
        browser,
        unix_users[USER],
        output_dir,
        lambda name, _: name in ("Xvnc", "Xtigervnc"),  # the image's X server
    )


def test_vscode_runs_in_the_image(make_hub, profiles, browser, unix_users, output_dir):
    hub = make_hub({"type": "local"}, adjust=allow_images, profiles=profiles)
    app_in_the_image(
        hub,
        "vscode",
        "vscode/",
        ".monaco-workbench",
        browser,
        unix_users[USER],
        output_dir,
        lambda _, cmdline: "code-server" in cmdline,  # on INK's Node.js, inside the image
    )
