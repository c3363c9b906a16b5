"""`ink node-check`'s findings on a made-up node: complete, then without Xvnc, without a readable
set-up script, and with a devpts that gives no terminals."""

import stat
from pathlib import Path

import pytest

from ink_spawner.nodecheck import check_node

APPS = ["jupyterlab", "rootbrowser", "desktop", "vscode", "sshnode"]
PROGRAMS = ["Xvnc", "openbox", "xterm", "sshd", "ssh-keygen", "klist"]
GOOD_PTS = "devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=000 0 0\n"


def executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def node(tmp_path):
    prefix, bin_dir, novnc = tmp_path / "ink", tmp_path / "bin", tmp_path / "novnc"
    executable(prefix / "bin" / "websockify")
    executable(prefix / "code-server" / "node_modules" / ".bin" / "code-server")
    executable(prefix / "code-server" / "node_modules" / ".bin" / "node")
    (prefix / "node_modules" / "jsroot").mkdir(parents=True)
    for name in PROGRAMS:
        executable(bin_dir / name)
    novnc.mkdir()
    (novnc / "vnc.html").write_text("<html>")
    mounts = tmp_path / "mounts"
    mounts.write_text(GOOD_PTS)
    setup = tmp_path / "juno-setup.sh"
    setup.write_text("export JUNO=1\n")
    return {
        "prefix": str(prefix),
        "path": str(bin_dir),
        "novnc": str(novnc),
        "mounts_file": str(mounts),
    }, setup


def test_a_complete_node_passes(node):
    where, setup = node
    report = check_node(APPS, {"experiment juno": str(setup)}, **where)
    assert report.ok, report.missing
    assert report.lines() == [f"{name}: ok" for name in ["all apps", *APPS, "experiments"]]


def test_what_a_node_lacks_is_named_per_app(node, tmp_path):
    where, setup = node
    (Path(where["path"]) / "Xvnc").unlink()
    (Path(where["prefix"]) / "code-server" / "node_modules" / ".bin" / "code-server").unlink()
    Path(where["mounts_file"]).write_text(GOOD_PTS.replace("gid=5,", ""))
    report = check_node(APPS, {"experiment juno": str(tmp_path / "gone.sh")}, **where)
    assert not report.ok
    assert report.missing["desktop"] == [f"Xvnc (not on {where['path']})"]
    assert report.missing["vscode"][0].startswith("code-server (")
    assert "interactive terminals" in report.missing["sshnode"][0]
    assert report.missing["jupyterlab"] == [] and report.missing["rootbrowser"] == []
    assert report.missing["experiments"] == [f"experiment juno's set-up script {tmp_path / 'gone.sh'}"]
    assert "desktop: missing Xvnc" in "\n".join(report.lines())


def test_each_os_image_is_checked_on_the_node(node, tmp_path):
    where, setup = node
    executable(Path(where["path"]) / "bwrap")
    interpreter = Path(where["prefix"]).resolve() / "bin" / "python"
    executable(interpreter)
    good = tmp_path / "good-image"
    for part in ("etc/os-release", "usr/bin/true", "bin/sh", str(interpreter).lstrip("/")):
        executable(good / part)
    report = check_node(
        APPS, {}, images={"good": str(good), "gone": str(tmp_path / "gone"), "bare": str(tmp_path)}, **where
    )
    assert report.missing["image good"] == []
    assert report.missing["image gone"] == [f"{tmp_path / 'gone'} is not on this node"]
    assert "is not an unpacked root filesystem" in report.missing["image bare"][0]
    (Path(where["path"]) / "bwrap").unlink()
    report = check_node(APPS, {}, images={"good": str(good)}, **where)
    assert report.missing["image good"] == [f"bwrap (not on {where['path']})"]
