"""/dev/pts remounted with given options for a test, and the old ones put back after."""

import contextlib
import subprocess
from pathlib import Path


def devpts_options() -> str:
    return next(
        line.split()[3]
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines())
        if line.split()[1:3] == ["/dev/pts", "devpts"]
    )


@contextlib.contextmanager
def devpts_mounted(wanted: str):
    """``wanted``: gid and mode, e.g. "gid=5,mode=620" (standard) or "gid=0,mode=600"."""
    options = devpts_options()
    old = [o for o in options.split(",") if o.split("=")[0] in ("gid", "mode")]
    restore = ",".join(old) if any(o.startswith("gid=") for o in old) else ",".join(["gid=0", *old])
    changed = sorted(old) != sorted(wanted.split(","))
    if changed:
        subprocess.run(["mount", "-o", f"remount,{wanted}", "/dev/pts"], check=True)
    try:
        yield
    finally:
        if changed:
            subprocess.run(["mount", "-o", f"remount,{restore}", "/dev/pts"], check=False)
