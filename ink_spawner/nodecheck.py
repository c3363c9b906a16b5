"""What a batch node needs for each of INK's apps, checked on the node itself (``ink
node-check``), so that a site finds out before its users do.

Each app needs INK's Python environment (the one that runs the job wrapper) and its own parts:
code-server for VS Code; Xvnc, openbox, xterm, websockify and noVNC for the desktop (INK writes
the X cookie itself, no xauth);
OpenSSH's sshd and ssh-keygen, and a devpts that gives terminals to the tty group, for the SSH
node; JSROOT and uproot for the ROOT browser. Programs are looked up on the PATH a job gets
(INK's bin folder, /usr/local/bin, /usr/bin, /bin, plus /usr/sbin for sshd). Experiments'
set-up scripts must exist and be readable.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .jobscript.in_image import ImageProblem, check_image

SBIN = "/usr/sbin:/sbin"


@dataclass
class NodeReport:
    missing: dict[str, list[str]] = field(default_factory=dict)  # app or "all" -> what lacks

    @property
    def ok(self) -> bool:
        return not any(self.missing.values())

    def lines(self) -> list[str]:
        out = []
        for app, lacking in self.missing.items():
            out.append(f"{app}: ok" if not lacking else f"{app}: missing {'; '.join(lacking)}")
        return out


def job_path(prefix: str) -> str:
    """The PATH a job runs with (InkSpawner.job_env), and the system's sbin for daemons."""
    return os.pathsep.join(
        [os.path.join(prefix, "bin"), "/usr/local/bin", "/usr/bin", "/bin", *SBIN.split(":")]
    )


def pty_problem(mounts_file: str = "/proc/self/mounts") -> str:
    """sshd run as a user can give a terminal only where devpts hands new terminals to the tty
    group, as Linux systems mount it by default (gid=5,mode=620)."""
    try:
        mounts = Path(mounts_file).read_text().splitlines()
    except OSError:
        return ""
    options = [
        f[3].split(",") for f in map(str.split, mounts) if len(f) > 3 and f[1:3] == ["/dev/pts", "devpts"]
    ]
    if options and "gid=5" not in options[-1]:  # the last mount on /dev/pts is the one in use
        return (
            "this node mounts /dev/pts without gid=5: commands and file copies work, "
            "interactive terminals (ssh without a command) do not"
        )
    return ""


def check_node(
    apps: list[str],
    setup_scripts: dict[str, str] | None = None,
    prefix: str = sys.prefix,
    path: str | None = None,
    novnc: str = "/usr/share/novnc",
    mounts_file: str = "/proc/self/mounts",
    images: dict[str, str] | None = None,
) -> NodeReport:
    """What the node lacks per app, per set-up script, and per OS image (``images``: name ->
    the unpacked root filesystem a job runs in, ``jobscript/in_image.py``)."""
    path = job_path(prefix) if path is None else path

    def program(name: str) -> list[str]:
        return [] if shutil.which(name, path=path) else [f"{name} (not on {path})"]

    def module(name: str, what: str) -> list[str]:
        return [] if importlib.util.find_spec(name) else [f"{what} (Python module {name} in {prefix})"]

    report = NodeReport()
    common = module("jupyterhub", "jupyterhub-singleuser") + module(
        "jupyter_server_proxy", "jupyter-server-proxy"
    )
    common += program("klist")  # the Kerberos tools users need with the tickets INK delivers
    report.missing["all apps"] = common
    for app in apps:
        lacking: list[str] = []
        if app == "jupyterlab":
            lacking += module("jupyterlab", "JupyterLab")
        elif app == "vscode":
            bin_dir = Path(prefix) / "code-server" / "node_modules" / ".bin"
            for name, what in (("code-server", "code-server"), ("node", "its Node.js")):
                if not (bin_dir / name).exists():
                    lacking.append(f"{what} ({bin_dir / name}: scripts/install-code-server)")
        elif app == "desktop":
            for name in ("Xvnc", "openbox", "xterm"):
                lacking += program(name)
            if not (Path(prefix) / "bin" / "websockify").exists():
                lacking.append(f"websockify ({prefix}/bin/websockify)")
            if not (Path(novnc) / "vnc.html").exists():
                lacking.append(f"noVNC ({novnc}/vnc.html)")
        elif app == "sshnode":
            lacking += program("sshd") + program("ssh-keygen")
            problem = pty_problem(mounts_file)
            if problem:
                lacking.append(problem)
        elif app == "rootbrowser":
            if not (Path(prefix) / "node_modules" / "jsroot").is_dir():
                lacking.append(f"JSROOT ({prefix}/node_modules/jsroot)")
            lacking += module("uproot", "uproot")
        report.missing[app] = lacking
    for name, script in (setup_scripts or {}).items():
        if script and not os.access(script, os.R_OK):
            report.missing.setdefault("experiments", []).append(f"{name}'s set-up script {script}")
    if setup_scripts is not None:
        report.missing.setdefault("experiments", [])
    interpreter = os.path.realpath(os.path.join(prefix, "bin", "python"))
    for name, rootfs in (images or {}).items():
        lacking = program("bwrap")
        try:
            check_image(rootfs, interpreter, bwrap=False)
        except ImageProblem as e:
            lacking.append(str(e))
        report.missing[f"image {name}"] = lacking
    return report
