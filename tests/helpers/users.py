"""Real Unix users for the tests, named with the prefix ``inkt`` so they are recognizable."""

import pwd
import secrets
import subprocess

PREFIX = "inkt"


def ensure_user(name: str) -> str:
    """Create (or reset) a test user with a home; return its new password."""
    assert name.startswith(PREFIX)
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    password = secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    return password


def remove_user(name: str) -> None:
    assert name.startswith(PREFIX)
    subprocess.run(["pkill", "-KILL", "-u", name], check=False)
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
