"""The hub as a systemd service: the unit ``ink install-service`` writes.

The hub is the unit's main process (``ink up`` replaces itself with JupyterHub); INK's services
stay hub-managed and end with it by themselves. ``KillMode=process``: stopping or restarting the
unit signals the hub alone, so sessions of the local backend (children of the hub's jobs, in the
unit's cgroup) keep running across a restart, as batch jobs do; the new hub finds them. Logs go
to the journal, which rotates them (``journalctl -u ink``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

UNIT = """\
# INK's hub (written by `ink install-service`; edit the site file, not this unit)
[Unit]
Description=INK, the Interactive aNalysis worKbench (JupyterHub)
Documentation=file://{docs}
After=network-online.target{after}
Wants=network-online.target

[Service]
Type=simple
Environment=INK_CONFIG={config}
WorkingDirectory={state}
ExecStart={ink} up
# the hub alone: users' sessions and INK's services are not the unit's to kill
KillMode=process
TimeoutStopSec=60
Restart=on-failure
RestartSec=5
# a crash loop stops after 5 starts in 10 minutes (`systemctl status ink` says why)
StartLimitIntervalSec=600
StartLimitBurst=5
LimitNOFILE=65536
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
"""


def unit_text(ink: Path, config: Path, state: Path, docs: Path, after: str = "") -> str:
    """The unit for a site file ``config`` whose state folder is ``state``; ``after``: more
    units to start after (e.g. postgresql.service when the database is on this machine)."""
    for path in (ink, config, state):
        if not path.is_absolute() or any(c.isspace() for c in str(path)):
            raise ValueError(f"{path}: expected an absolute path without spaces")
    return UNIT.format(
        ink=shlex.quote(str(ink)),
        config=config,
        state=state,
        docs=docs,
        after=f" {after}" if after else "",
    )
