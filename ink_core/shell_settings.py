"""The web shell's settings (``shell:`` in the site YAML), checked when they are read: the site
configurator reports a bad login host or ssh option, and the shell service runs with them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")


@dataclass
class ShellSettings:
    mode: str = "local"  # local | ssh
    hosts: list[str] = field(default_factory=list)
    keep_sessions: bool = False
    ssh_options: list[str] = field(default_factory=list)
    credentials_store: str = ""  # the credentials service's ticket folder (ssh mode)
    max_per_user: int = 8

    def __post_init__(self):
        if self.mode not in ("local", "ssh"):
            raise ValueError(f"shell.mode: expected local or ssh, not {self.mode!r}")
        if self.mode == "ssh" and not self.hosts:
            raise ValueError("shell.hosts: ssh mode needs at least one login host")
        for host in self.hosts:
            if not isinstance(host, str) or not HOSTNAME.match(host):
                raise ValueError(f"shell.hosts: not a host name: {host!r}")
        for option in self.ssh_options:
            if not isinstance(option, str) or not re.match(r"^[A-Za-z]+=[^\s]*$", option):
                raise ValueError(f"shell.ssh_options: expected Name=value, not {option!r}")
