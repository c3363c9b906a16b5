"""The site YAML's schema: every section and setting declared once, with its type, default and
meaning. ``check_sections`` stops ``ink check`` and the hub on an unknown key, a wrong type or
an unknown value, naming the file, the key and what was expected; ``reference()`` writes the
configuration reference (``docs/configuration.md``, kept equal by a test:
``python -m ink_spawner.site_schema > docs/configuration.md``).

The spawner section and each backend's options are the classes' own traitlets (their help
text is the reference); the allowances of experiments and users are ``allowances.py``'s."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ink_core.units import parse_duration_s, parse_memory_mb


@dataclass(frozen=True)
class Setting:
    kind: str  # text, bool, int, number, port, duration, size, list, mapping, choice
    default: object
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def problem(self, value) -> str:
        """What was expected, when ``value`` is not a value of this setting ("" when it is).
        A null (``key:`` with nothing) means the default."""
        if value is None:
            return ""
        if self.kind == "text":
            return "" if isinstance(value, str) else "text"
        if self.kind == "bool":
            return "" if isinstance(value, bool) else "true or false"
        if self.kind in ("int", "port"):
            low = 1 if self.kind == "port" else self.minimum
            high = 65535 if self.kind == "port" else None
            ok = isinstance(value, int) and not isinstance(value, bool)
            ok = ok and (low is None or value >= low) and (high is None or value <= high)
            if self.kind == "port":
                return "" if ok else "a port number (1-65535)"
            return "" if ok else "a whole number" + (f" >= {low:g}" if low is not None else "")
        if self.kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and (self.minimum is None or value >= self.minimum)
            return "" if ok else "a number" + (f" >= {self.minimum:g}" if self.minimum is not None else "")
        if self.kind == "duration":
            try:
                parse_duration_s(value)
            except (TypeError, ValueError):
                return "a duration such as 90m, 2h or 3600"
            return ""
        if self.kind == "size":
            try:
                parse_memory_mb(str(value))
            except (TypeError, ValueError):
                return "a size such as 512M or 100G"
            return ""
        if self.kind == "list":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            return "" if ok else "a list of text"
        if self.kind == "mapping":
            return "" if isinstance(value, dict) else "a mapping"
        if self.kind == "choice":
            return "" if value in self.choices else f"one of {', '.join(self.choices)}"
        raise ValueError(f"no such kind of setting: {self.kind}")


@dataclass(frozen=True)
class Section:
    help: str
    settings: dict[str, Setting]
    # its keys are the site's own names (experiments, users), or its settings are a class's
    # traitlets (spawner, backend.options) or an allowance: checked by their own code
    free: str = ""


AUTHENTICATOR_TYPES = ("auto", "pam", "shared-password", "generic-oauth", "kerberos")

SCHEMA: dict[str, Section] = {
    "hub": Section(
        "Where the hub and its proxy listen, and where users and jobs reach them.",
        {
            "ip": Setting("text", "127.0.0.1", "Address the proxy (the users' entry) listens on."),
            "port": Setting("port", 8000, "Port the proxy listens on."),
            "base_url": Setting("text", "/", "URL prefix of everything the hub serves."),
            "public_url": Setting(
                "text",
                None,
                "Where users and jobs reach the hub, e.g. https://ink.example.org/ "
                "(default: http://localhost:PORT/ on loopback). With per-user origins, "
                "*.HOST must reach it too.",
            ),
            "per_user_origins": Setting(
                "bool", True, "Each user's own server on its own host (USER.HOST), never on the hub's origin."
            ),
            "ssl_cert": Setting(
                "text",
                None,
                "TLS: the site's certificate (PEM, with its chain) the hub's proxy serves; "
                "per-user origins need it valid for *.HOST too. Without it: plain HTTP, for a "
                "TLS front proxy or loopback.",
            ),
            "ssl_key": Setting("text", None, "TLS: the certificate's private key (PEM, mode 600)."),
            "hub_ip": Setting("text", "127.0.0.1", "Address of the hub's own API (jobs report to it)."),
            "hub_port": Setting("port", None, "Port of the hub's own API (default: JupyterHub's 8081)."),
            "db_url": Setting(
                "text",
                None,
                "The hub's database, e.g. postgresql://... in production (default: SQLite "
                "in the state folder). INK's session history lives there too.",
            ),
            "internal_ssl": Setting(
                "bool", False, "TLS with the hub's own CAs between hub, proxy, services and jobs."
            ),
        },
    ),
    "authenticator": Section(
        "How users log in.",
        {
            "type": Setting(
                "choice",
                "auto",
                "auto: PAM when the hub runs as root, else one shared admin password.",
                AUTHENTICATOR_TYPES,
            ),
            "allow_all": Setting("bool", None, "Every user the authenticator accepts may use INK."),
            "admin_users": Setting("list", [], "Hub admins."),
            "allowed_users": Setting("list", [], "Users allowed besides the experiments' members."),
            "options": Setting(
                "mapping", {}, "Settings of the authenticator class (e.g. GenericOAuthenticator's)."
            ),
            "groups_claim": Setting(
                "text",
                None,
                "generic-oauth: the provider's claim listing the user's groups (e.g. groups). "
                "Each login then puts the user in those groups, plus the experiments the YAML "
                "lists them in; an experiment's allowance applies to its group's members.",
            ),
            "allowed_groups": Setting(
                "list", [], "generic-oauth with groups_claim: members of these groups may log in."
            ),
            "admin_groups": Setting(
                "list", [], "generic-oauth with groups_claim: members of these groups are hub admins."
            ),
        },
    ),
    "backend": Section(
        "The batch system the sessions and jobs run on.",
        {
            "type": Setting(
                "text",
                "local",
                "local (this machine), slurm, htcondor, a name an installed package "
                "registers (entry points ink.backends), or the import path of a Backend subclass.",
            ),
            "options": Setting("mapping", {}, "The backend's settings (its traitlets, listed below)."),
            "title": Setting("text", "Cluster", "Its name in the dashboard's overview."),
        },
    ),
    "clusters": Section(
        "Several batch systems in one hub, instead of `backend`: name -> {title, type, options}"
        " (type and options as in `backend`), e.g. `htc: {title: HTC cluster, type: htcondor}` and"
        " `hpc: {title: HPC cluster, type: slurm}`. The spawn menu and the jobs API take a `cluster`;"
        " allowances name the clusters they grant (`clusters: [hpc]`, default all) and may set other"
        " limits on one (`per_cluster: {hpc: {max_cpus: 64}}`).",
        {},
        free="names",
    ),
    "spawner": Section("How sessions are started and watched (InkSpawner's traitlets).", {}, free="spawner"),
    "accounts": Section(
        "Which Unix accounts INK acts as.",
        {
            "min_uid": Setting(
                "int",
                None,
                "The lowest uid INK acts as (default: UID_MIN of /etc/login.defs, else 1000).",
                minimum=1,
            ),
            "deny": Setting("list", [], "User names INK never acts as."),
        },
    ),
    "credentials": Section(
        "Kerberos: login against the KDC, tickets renewed and delivered into jobs.",
        {
            "enabled": Setting("bool", False, "Run the credentials service."),
            "realm": Setting("text", "", "The Kerberos realm of the site's users."),
            "krb5_config": Setting("text", "", "A krb5.conf for INK (relative to this file)."),
            "port": Setting("port", 8082, "Loopback port of the credentials service."),
            "renew_fraction": Setting(
                "number", 0.5, "Renew a ticket when this fraction of its lifetime is gone.", minimum=0.01
            ),
            "interval": Setting("number", 5, "Seconds between two looks at the tickets.", minimum=0.1),
            "retry_base": Setting("number", 5, "First retry after a failed renewal, seconds.", minimum=0.1),
            "retry_max": Setting("number", 300, "Longest wait between retries, seconds.", minimum=1),
            "store": Setting("text", None, "Folder of the tickets (default: STATE/credentials)."),
            "job_url": Setting("text", None, "The ticket endpoint as jobs reach it (default: the hub's)."),
        },
    ),
    "dashboard": Section(
        "The dashboard of jobs and cluster load.",
        {
            "port": Setting("port", 8083, "Loopback port of the dashboard service."),
            "refresh": Setting("number", 5, "Seconds between two looks at the queue.", minimum=1),
        },
    ),
    "jobs": Section(
        "The REST API for batch jobs.",
        {
            "enabled": Setting("bool", True, "Run the jobs service."),
            "port": Setting("port", 8086, "Loopback port of the jobs service."),
            "sweep_interval": Setting(
                "int",
                60,
                "Seconds between the service's own looks at unfinished jobs, so that their "
                "ends reach the usage history when nobody lists them (0: only when listed).",
                minimum=0,
            ),
        },
    ),
    "api": Section(
        "Limits of INK's REST APIs, per token.",
        {
            "rate_per_minute": Setting("number", 600, "Requests per minute (0: no limit).", minimum=0),
            "burst": Setting("int", 120, "Requests allowed at once above the rate.", minimum=1),
        },
    ),
    "files": Section(
        "The file service.",
        {
            "enabled": Setting("bool", True, "Run the file service."),
            "port": Setting("port", 8085, "Loopback port of the file service."),
            "areas": Setting(
                "mapping",
                {"home": "{home}"},
                "Storage areas: name -> a folder ({home}, {username} "
                "expand) or an XRootD area ({kind: xrootd, url: root://..., path: ...}).",
            ),
            "max_upload": Setting("size", "100G", "Largest upload."),
            "max_concurrent_uploads": Setting("int", 8, "Uploads of one user at once.", minimum=1),
            "preview_memory": Setting("size", "1G", "Memory one preview (ROOT, FITS) may use."),
            "preview_seconds": Setting("int", 30, "CPU seconds one preview may use.", minimum=1),
            "pull_allow_hosts": Setting(
                "list",
                [],
                "Hosts inside the site's network that a transfer may fetch from (by default only "
                "public addresses are fetched).",
            ),
            "pull_ca_file": Setting("text", "", "CA bundle for https:// fetches (empty: the system's)."),
        },
    ),
    "shell": Section(
        "The web shell.",
        {
            "enabled": Setting("bool", True, "Run the web shell service."),
            "port": Setting("port", 8084, "Loopback port of the shell service."),
            "mode": Setting(
                "choice", "local", "local: a shell on the hub host; ssh: on a login node.", ("local", "ssh")
            ),
            "hosts": Setting("list", [], "Login nodes (ssh mode)."),
            "ssh_options": Setting("list", [], "Extra ssh -o options (ssh mode)."),
            "keep_sessions": Setting("bool", False, "Shells survive a closed tab."),
            "max_per_user": Setting("int", 8, "Shells of one user at once.", minimum=1),
        },
    ),
    "sessions": Section(
        "Idle culling and several sessions per user.",
        {
            "idle_timeout": Setting("duration", 0, "Stop a session idle this long (0: never)."),
            "idle_timeout_per_app": Setting("mapping", {}, "App name -> its own idle timeout."),
            "idle_check_interval": Setting("duration", 60, "How often the culler looks."),
            "activity_interval": Setting("duration", 300, "How often the hub reads the proxy's activity."),
            "named_servers": Setting("int", 0, "Sessions a user may run at once (0: one).", minimum=0),
        },
    ),
    "paths": Section(
        "Folders, relative to this file.",
        {
            "profiles": Setting("text", None, "The profiles (apps, images, resources, experiments)."),
            "templates": Setting("text", None, "The hub's page templates."),
            "state": Setting("text", None, "INK's state (default: /var/lib/ink as root)."),
        },
    ),
    "default_allowance": Section("What a user in no experiment may run.", {}, free="allowance"),
    "experiments": Section("Experiments: name -> {members: [...], allowance: {...}}.", {}, free="names"),
    "users": Section("Per-user allowances: name -> {allowance: {...}}.", {}, free="names"),
}


class SchemaError(ValueError):
    def __init__(self, key: str, expected: str):
        self.key, self.expected = key, expected
        super().__init__(f"{key}: expected {expected}")


def check_sections(data: dict) -> None:
    """SchemaError for the first unknown section or key, value of a wrong type, unknown choice."""
    for section in data:
        if section not in SCHEMA:
            raise SchemaError(str(section), f"one of {', '.join(sorted(SCHEMA))}")
    for name, section in SCHEMA.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise SchemaError(name, "a mapping")
        if section.free:
            continue
        for key, setting_value in value.items():
            setting = section.settings.get(key)
            if setting is None:
                raise SchemaError(f"{name}.{key}", f"one of {', '.join(sorted(section.settings))}")
            expected = setting.problem(setting_value)
            if expected:
                raise SchemaError(f"{name}.{key}", expected)


def default_of(section: str, key: str):
    return SCHEMA[section].settings[key].default


def with_defaults(section: str, values: dict | None) -> dict:
    """A section's settings as the site gave them, each one left out (or null) at its default:
    what a service reads of its own section."""
    values = values or {}
    return {
        key: values[key] if values.get(key) is not None else setting.default
        for key, setting in SCHEMA[section].settings.items()
    }


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _shown(value) -> str:
    if value is None or value == "":
        return "-"
    if value == sys.executable:  # the same reference on every machine
        return "INK's Python"
    return f"`{value}`" if not isinstance(value, dict | list) or value else "-"


def _trait_rows(cls, keys=None) -> list[str]:
    rows = []
    traits = cls.class_traits(config=True)
    for key in sorted(keys or traits):
        trait = traits[key]
        kind = type(trait).__name__.lower()
        help_text = " ".join((trait.help or "").split())
        rows.append(f"| `{key}` | {kind} | {_shown(trait.default_value)} | {_cell(help_text)} |")
    return rows


def reference() -> str:
    """The configuration reference, in Markdown."""
    from traitlets.utils.importstring import import_item

    from .backends import BUILT_IN
    from .configurer import SPAWNER_KEYS

    lines = [
        "# Configuration reference",
        "",
        "Generated from `ink_spawner/site_schema.py` (`python -m ink_spawner.site_schema`); a test keeps",
        "it equal. One file, `etc/ink.yaml` (or `$INK_CONFIG`). An unknown key, a value of the wrong",
        "type or an unknown choice stops `ink check` and the hub with the file, the key and what was",
        "expected. A key left out (or null) takes its default. The hub applies the file in one",
        "configurator (`ink_spawner/configurer.py`); each of INK's services reads its own section",
        "of the same file (`INK_CONFIG`), so no setting travels as a command-line flag.",
        "",
    ]
    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, section in SCHEMA.items():
        lines += [f"## `{name}`", "", section.help, ""]
        if section.free == "spawner":
            from .spawner import InkSpawner

            lines += header + _trait_rows(InkSpawner, SPAWNER_KEYS) + [""]
        elif section.free == "allowance":
            lines += [
                "Keys as in `ink_spawner/allowances.py`: apps, images, max_cpus, max_memory,",
                "max_walltime, max_gpus, max_batch_jobs, max_batch_cpus; with `clusters:`, also",
                "clusters (the names it grants, default all) and per_cluster (other limits on one).",
                "",
            ]
        elif not section.free:
            rows = [
                f"| `{key}` | {s.kind}{' (' + ', '.join(s.choices) + ')' if s.choices else ''} "
                f"| {_shown(s.default)} | {_cell(s.help)} |"
                for key, s in section.settings.items()
            ]
            lines += header + rows + [""]
        if name == "backend":
            for kind, path in BUILT_IN.items():
                lines += [f"### `backend.options` of `{kind}`", ""]
                lines += header + _trait_rows(import_item(path)) + [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
