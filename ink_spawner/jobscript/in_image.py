"""Run a job's command inside an OS image: an unpacked root filesystem (the form sites keep on
CVMFS, e.g. ``/cvmfs/unpacked.cern.ch/...``), as the user, unprivileged.

    python -m ink_spawner.jobscript.in_image --image NAME --rootfs PATH [--bind SRC[:DST]]... -- CMD...

It runs on the batch node (local and Slurm jobs; the stand-in HTCondor pool's container
universe) with INK's own Python and ``exec``s bubblewrap (Debian's ``bwrap``, a user namespace:
no setuid, no daemon, nothing as root). Inside: the image's files read-only, the user's home,
INK's environment read-only (its wrapper, agents and apps run from there on the image's own
system libraries), the image's ``binds`` (CVMFS, storage areas), the host's resolv.conf, hosts
and krb5.conf, a private ``/tmp``, ``/proc`` of its own PID namespace (the user's processes
only), and the image's passwd and group files with the user's own entry added (so ``id`` and
shells know the user). The network is the node's: the server reports to the hub as any job.

An image that is not on the node, or cannot run INK, ends the job at once with a sentence that
names the image (on stderr and in the job's INK log), not a timeout.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shutil
import sys
from pathlib import Path

EXIT_NO_IMAGE = 125
HOST_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/krb5.conf")


class ImageProblem(Exception):
    pass


def check_image(rootfs: str, interpreter: str, bwrap: bool = True) -> None:
    """ImageProblem saying what keeps the image from running INK's environment here."""
    root = Path(rootfs)
    if not root.is_dir():
        raise ImageProblem(f"{rootfs} is not on this node")
    for needed in ("etc/os-release", "usr/bin", "bin/sh"):
        if not os.path.lexists(root / needed):
            raise ImageProblem(f"{rootfs} has no /{needed}: it is not an unpacked root filesystem")
    inside = root / interpreter.lstrip("/")
    if not os.path.lexists(inside):
        raise ImageProblem(
            f"it has no {interpreter}, the Python INK's environment runs on: build the image with it"
        )
    if bwrap and shutil.which("bwrap") is None:
        raise ImageProblem("bubblewrap (bwrap) is not installed on this node")


def image_mounts(rootfs: Path, targets: set[str], inside: str = "/") -> list[str]:
    """bwrap arguments that show the image read-only at ``/`` on an empty root, leaving room
    for ``targets`` (the binds): a folder that holds a target is made anew and its entries
    bound one by one, so that no folder of the image needs to be written to."""
    argv = []
    for entry in sorted(os.listdir(rootfs)):
        source = rootfs / entry
        target = os.path.join(inside, entry)
        if (entry in ("proc", "dev", "tmp") and inside == "/") or target in targets:
            continue  # its own (/proc, /dev, /tmp), or bound from the host instead
        if source.is_symlink():
            argv += ["--symlink", os.readlink(source), target]
        elif source.is_dir() and any(t.startswith(target + "/") for t in targets):
            argv += ["--dir", target, *image_mounts(source, targets, target)]
        elif source.is_dir() or source.is_file():
            argv += ["--ro-bind", str(source), target]
    return argv


def account_files(rootfs: Path) -> tuple[bytes, bytes]:
    """The image's passwd and group with the user's own entries (the host's) added."""
    user = pwd.getpwuid(os.getuid())
    try:
        group = grp.getgrgid(os.getgid())
        group_line = f"{group.gr_name}:x:{group.gr_gid}:\n"
    except KeyError:
        group_line = f"{user.pw_name}:x:{os.getgid()}:\n"
    shell = user.pw_shell if os.path.lexists(rootfs / user.pw_shell.lstrip("/")) else "/bin/sh"
    passwd_line = f"{user.pw_name}:x:{user.pw_uid}:{user.pw_gid}::{user.pw_dir}:{shell}\n"

    def lines(name: str, own: str) -> bytes:
        try:
            text = (rootfs / "etc" / name).read_text()
        except OSError:
            text = ""
        kept = [
            line for line in text.splitlines(keepends=True) if not line.startswith(own.split(":")[0] + ":")
        ]
        return ("".join(kept).rstrip("\n") + "\n" + own).lstrip("\n").encode()

    return lines("passwd", passwd_line), lines("group", group_line)


def bwrap_argv(
    rootfs: str, binds: list[str], prefix: str, home: str, workdir: str
) -> tuple[list[str], list[bytes]]:
    """The bwrap command line (up to ``--``) and the data of the file descriptors it reads."""
    root = Path(rootfs)
    pairs = [(prefix, prefix), (home, home)]
    for bind in binds:
        source, _, target = bind.partition(":")
        if (target or source) not in (prefix, home):  # those are bound already (INK's: read-only)
            pairs.append((source, target or source))
    argv = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-cgroup-try"]
    host_files = [path for path in HOST_FILES if os.path.exists(path)]
    targets = {target for _, target in pairs} | set(host_files) | {"/etc/passwd", "/etc/group"}
    argv += ["--tmpfs", "/", *image_mounts(root, targets)]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    argv += ["--ro-bind", prefix, prefix, "--bind", home, home]
    for source, target in pairs[2:]:
        argv += ["--bind-try", source, target]
    for path in host_files:
        argv += ["--ro-bind", path, path]
    passwd, group = account_files(root)
    argv += ["--ro-bind-data", "{passwd}", "/etc/passwd", "--ro-bind-data", "{group}", "/etc/group"]
    argv += ["--chdir", workdir]
    return argv, [passwd, group]


def say(image: str, rootfs: str, reason: str) -> None:
    """The sentence a user sees on the spawn page (the job's log) and in the scheduler's output."""
    line = f"INK: cannot start in the OS image {image!r} ({rootfs}): {reason}.\n"
    sys.stderr.write(line)
    log = os.environ.get("INK_LOG")
    if log:
        try:
            os.makedirs(os.path.dirname(log), mode=0o700, exist_ok=True)
            with open(log, "a") as f:
                f.write(line)
        except OSError:
            pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ink_spawner.jobscript.in_image")
    parser.add_argument("--image", required=True)
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--bind", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run inside the image (after --)")
    prefix = sys.prefix
    interpreter = os.path.realpath(sys.executable)
    try:
        check_image(args.rootfs, interpreter)
    except ImageProblem as e:
        say(args.image, args.rootfs, str(e))
        return EXIT_NO_IMAGE
    home = pwd.getpwuid(os.getuid()).pw_dir
    cwd = os.getcwd()
    workdir = cwd if cwd == home or cwd.startswith(home + "/") else home
    argv, data = bwrap_argv(args.rootfs, args.bind, prefix, home, workdir)
    fds = []
    for blob in data:  # small files (an image's passwd): each a pipe bwrap reads to its end
        read, write = os.pipe()
        os.write(write, blob)
        os.close(write)
        os.set_inheritable(read, True)
        fds.append(read)
    argv = [str(fds[0]) if a == "{passwd}" else str(fds[1]) if a == "{group}" else a for a in argv]
    os.execvp(shutil.which("bwrap"), [*argv, "--", *command])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
