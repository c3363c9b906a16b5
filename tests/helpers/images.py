"""A test OS image built here from Debian's packages (mmdebstrap): a minimal Debian 12 with
Python 3.11 (what INK's environment runs on), ps and bash, the desktop's programs (TigerVNC,
openbox, xterm, noVNC), the libraries code-server's modules load, and a /etc/os-release of its own, so a test can tell a job that runs in
the image from one on the host. Built once per test session (about a minute) in a folder every
test user can read, removed after."""

import shutil
import subprocess
import tempfile
from pathlib import Path

PRETTY_NAME = "INK test image (Debian 12 minbase)"
# the machine's own Debian sources (its mirror, as apt uses it), else Debian's default mirror
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# INK's Python, ps; the desktop's programs; what code-server's native modules load
PACKAGES = ",".join(
    ["python3", "libpython3.11", "procps", "tigervnc-standalone-server", "openbox", "xterm", "x11-utils"]
    + ["novnc", "libkrb5-3", "libgssapi-krb5-2", "libsecret-1-0", "libxkbfile1"]
)


def build_image(root: Path) -> Path:
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    rootfs = root / "rootfs"
    hook = (
        f'sed -i \'s/^PRETTY_NAME=.*/PRETTY_NAME="{PRETTY_NAME}"/\' "$1/usr/lib/os-release"; '
        'echo INK_TEST_IMAGE=1 >> "$1/usr/lib/os-release"'
    )
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            f"--include={PACKAGES}",
            f"--customize-hook={hook}",
            "bookworm",
            str(rootfs),
            mirror(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return rootfs


def mirror() -> str:
    if HOST_SOURCES.exists() and "bookworm" in HOST_SOURCES.read_text():
        return str(HOST_SOURCES)
    return "http://deb.debian.org/debian"


def image_folder() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ink-image-"))
    root.chmod(0o755)
    return root


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
