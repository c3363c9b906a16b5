"""What the hub tells a session's job, as one typed object.

The hub (``InkSpawner.job_env``) builds a ``JobSettings`` and sends it in the job's environment
(the one channel every batch system carries, and which HTCondor keeps in a private file); the
job's wrapper and agents read it back with ``JobSettings.from_env``. Each field has one
variable; ``INTERNAL`` are the ones the wrapper removes before the user's server and code start
(they see only ``INK_APP``, ``INK_HUB``, ``INK_IMAGE``, ``INK_EXPERIMENT`` and ``INK_CLUSTER``,
which INK's Python client reads). A site's own ``INK_*`` variables (an experiment's ``env``) are not INK's
settings and reach the user's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields


@dataclass
class JobSettings:
    app: str = ""  # the app's name (INK_APP)
    app_title: str = ""  # its display name, for the launcher's pages
    image: str = ""  # the image the user picked (INK_IMAGE)
    experiment: str = ""  # the experiment, "" for none (INK_EXPERIMENT)
    cluster: str = ""  # the site's cluster it runs on, "" on a site with one (INK_CLUSTER)
    setup: list[str] = field(default_factory=list)  # set-up scripts to source, in order
    job_ip: str = ""  # the address the server binds to and reports ("" the node's own)
    callback_url: str = ""  # the hub's job-ready endpoint
    server_command: list[str] = field(default_factory=list)  # the single-user server's command
    app_args: list[str] = field(default_factory=list)  # the app's extra arguments to it
    server_proxy: dict = field(default_factory=dict)  # the app's jupyter-server-proxy entry
    hub: str = ""  # the hub as users reach it, for INK's client in the session (INK_HUB)
    credentials_url: str = ""  # where the ticket agent fetches the user's ticket
    monitor_url: str = ""  # where the monitor agent sends its samples
    monitor_interval: float = 5.0  # seconds between two samples
    usage: str = ""  # the file the monitor agent keeps the session's usage in
    log: str = ""  # the wrapper's own log file (local backend)


# each field's variable; what a JSON value is
VARIABLE = {f.name: f"INK_{f.name.upper()}" for f in fields(JobSettings)}
JSON_FIELDS = {"setup", "server_command", "app_args", "server_proxy"}
FOR_USER_CODE = {VARIABLE[name] for name in ("app", "hub", "image", "experiment", "cluster")}
INTERNAL = set(VARIABLE.values()) - FOR_USER_CODE


DEFAULTS = JobSettings()


def to_env(settings: JobSettings) -> dict[str, str]:
    """The variables of the settings that differ from the defaults (the reader fills those in)."""
    env = {}
    for name, variable in VARIABLE.items():
        value = getattr(settings, name)
        if value == getattr(DEFAULTS, name):
            continue
        env[variable] = json.dumps(value) if name in JSON_FIELDS else str(value)
    return env


def from_env(env) -> JobSettings:
    """The settings the hub sent (a missing variable is the field's default)."""
    values = {}
    for item in fields(JobSettings):
        raw = env.get(VARIABLE[item.name])
        if raw is None or raw == "":
            continue
        if item.name in JSON_FIELDS:
            values[item.name] = json.loads(raw)
        elif item.name == "monitor_interval":
            values[item.name] = float(raw)
        else:
            values[item.name] = raw
    return JobSettings(**values)
