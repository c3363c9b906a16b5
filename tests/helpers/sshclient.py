"""The user's own computer, for the SSH node: an `ink login` (its token store), an SSH key,
and ssh's config holding the stanza the node's page gives."""

import subprocess
import sys
from pathlib import Path

INK = Path(sys.prefix) / "bin" / "ink"


class Laptop:
    """The user's own computer: an `ink login` (its token store), an SSH key, ssh's config."""

    def __init__(self, root: Path, hub, token: str, stanza: str):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": f"{INK.parent}:/usr/bin:/bin",
            "HOME": str(root),
            "XDG_CONFIG_HOME": str(root / "config"),
            "LANG": "C.UTF-8",
        }
        login = subprocess.run(
            [str(INK), "login", hub.url, "--token", token], env=self.env, capture_output=True, text=True
        )
        assert login.returncode == 0, login.stderr
        if not (root / "id_ed25519").exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "id_ed25519")], check=True
            )
        self.config = root / "ssh_config"
        self.config.write_text(
            stanza
            + f"\n    IdentityFile {root / 'id_ed25519'}\n    IdentitiesOnly yes\n"
            + f"    UserKnownHostsFile {root / 'known_hosts'}\n    StrictHostKeyChecking accept-new\n"
            + "    BatchMode yes\n"
        )

    def ssh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-F", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def scp(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["scp", "-F", str(self.config), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
