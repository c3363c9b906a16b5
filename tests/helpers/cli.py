"""The `ink` command as a user runs it, in a subprocess."""

import os
import subprocess
import sys


def ink(env, *args, check=True, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "ink_client.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def token_env(hub, token: str, config_dir) -> dict:
    """The environment of a user who holds ``token`` for ``hub`` (as in a session INK started:
    INK_HUB and the token; no stored login)."""
    return {**os.environ, "XDG_CONFIG_HOME": str(config_dir), "INK_HUB": hub.url, "INK_TOKEN": token}
