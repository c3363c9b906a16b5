"""The site's YAML (etc/ink.yaml or $INK_CONFIG) mapped onto traitlets, in this one place."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from traitlets import TraitError

from ink_core.areas import parse_areas
from ink_core.names import USERNAME
from ink_core.scopes import CUSTOM_SCOPES, FILES_READ, FILES_WRITE, JOBS_READ, JOBS_SUBMIT
from ink_core.units import parse_duration_s, parse_memory_mb

from . import origins
from .accounts import settings_env
from .allowances import ALL, PROPERTY_KEY, AllowanceError, parse_allowance
from .backends import Backend, backend_class, backend_path
from .clusters import DEFAULT, Cluster, make_backend, parse_clusters
from .culling import timeouts_env
from .historyapi import (
    HISTORY_ROUTE,
    MY_HISTORY_ROUTE,
    STATISTICS_ROUTE,
    HistoryHandler,
    MyHistoryHandler,
    StatisticsHandler,
)
from .hubapi import EXTEND_ROUTES, ROUTE, ExtendHandler, JobReadyHandler
from .profiles import NAME, ProfileError, load_profiles
from .site_schema import SchemaError, check_sections, default_of, with_defaults
from .sso_groups import USER_GROUP_PREFIX, group_sync_hook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AUTHENTICATORS = {
    # type in the YAML -> (JupyterHub entry point name, traitlets class section)
    "pam": ("pam", "PAMAuthenticator"),
    "shared-password": ("shared-password", "SharedPasswordAuthenticator"),
    "generic-oauth": ("generic-oauth", "GenericOAuthenticator"),
    "kerberos": ("ink_spawner.kerberos.authenticator.KerberosAuthenticator", "KerberosAuthenticator"),
}
CREDENTIALS_SERVICE = "ink-credentials"
DASHBOARD_SERVICE = "ink-dashboard"
SHELL_SERVICE = "ink-shell"
FILES_SERVICE = "ink-files"
JOBS_SERVICE = "ink-jobs"
# the spawner section's keys, each an InkSpawner traitlet of the same name
SPAWNER_KEYS = (
    "job_ip",
    "job_python",
    "log_dir",
    "hub_callback_url",
    "start_timeout",
    "http_timeout",
    "poll_interval",
    "status_interval",
    "monitor_interval",
    "ssl_alt_names",
)


# sessions: a duration each, and what it is when the site says nothing (0: no culling)
SESSION_DEFAULTS = {"idle_timeout": 0, "idle_check_interval": 60, "activity_interval": 300}
IDLE_CULLER_SERVICE = "ink-idle-culler"


class SiteConfigError(ValueError):
    def __init__(self, path, field_name, expected):
        self.path, self.field, self.expected = str(path), field_name, expected
        super().__init__(f"{path}: field '{field_name}': expected {expected}")


def share_dir() -> Path:
    """Where profiles/, templates/ and etc/ live: the checkout, or the installed share/ink."""
    if (ROOT / "templates" / "ink_spawn_form.html").exists():
        return ROOT
    return Path(sys.prefix) / "share" / "ink"


def default_config_path() -> Path:
    return Path(os.environ.get("INK_CONFIG") or share_dir() / "etc" / "ink.yaml")


@dataclass
class SiteConfig:
    path: Path
    hub: dict
    authenticator: dict
    backend: dict
    clusters: dict  # name -> clusters.Cluster (the one backend is "default")
    spawner: dict
    accounts: dict
    credentials: dict
    dashboard: dict
    shell: dict
    files: dict
    default_allowance: dict
    experiments: dict
    users: dict
    profiles_dir: Path
    templates_dir: Path
    state_dir: Path
    raw: dict = field(default_factory=dict)

    @property
    def auth_type(self) -> str:
        kind = self.authenticator.get("type", "auto")
        if kind == "auto":
            return "pam" if os.geteuid() == 0 else "shared-password"
        return kind

    @property
    def url(self) -> str:
        """Where the proxy listens (JupyterHub's bind_url)."""
        scheme = origins.scheme(self.hub)
        return f"{scheme}://{self.hub.get('ip', '127.0.0.1')}:{self.hub.get('port', 8000)}{self.hub.get('base_url', '/')}"

    @property
    def public_url(self) -> str:
        """Where users (and jobs) reach the hub and INK's services (ends with the base URL)."""
        return origins.public_url(self.hub)

    def service_public_url(self, name: str) -> str:
        return f"{self.public_url}services/{name}/"

    def groups(self) -> dict:
        """load_groups for the hub: experiments (members + allowance) and per-user allowances."""
        groups = {}
        for name, spec in self.experiments.items():
            groups[name] = {
                "users": list(spec.get("members") or []),
                "properties": {PROPERTY_KEY: parse_allowance(spec.get("allowance")).to_properties()},
            }
        for name, spec in self.users.items():
            groups[f"{USER_GROUP_PREFIX}{name}"] = {
                "users": [name],
                "properties": {PROPERTY_KEY: parse_allowance(spec.get("allowance")).to_properties()},
            }
        return groups


def check_traits(path, prefix: str, cls, values: dict, keys=None, what: str = "") -> None:
    """Every key of ``values`` is a configurable traitlet of ``cls`` (among ``keys``, when
    given) with a value it accepts: the spawner section and a backend's options."""
    traits = cls.class_traits(config=True)
    known = sorted(keys or traits)
    instance = cls()
    for key, value in values.items():
        if key not in known:
            raise SiteConfigError(path, f"{prefix}.{key}", f"one of {', '.join(known)}{what}")
        try:
            traits[key].validate(instance, value)
        except TraitError as e:
            expected = str(e).split("expected", 1)[-1].strip() if "expected" in str(e) else str(e)
            raise SiteConfigError(path, f"{prefix}.{key}", expected) from None


def check_backend_options(path, backend_type: str, options: dict, prefix: str = "backend") -> None:
    """The backend exists, and every option is a setting of it with a value it accepts."""
    try:
        cls = backend_class(backend_type)
    except ValueError as e:
        raise SiteConfigError(path, f"{prefix}.type", str(e)) from None
    check_traits(path, f"{prefix}.options", cls, options, what=f" ({backend_type})")


def load_clusters(path, data: dict) -> dict[str, Cluster]:
    """``clusters:`` (or the one ``backend:``), each cluster's backend and options checked."""
    try:
        clusters = parse_clusters(data)
    except ValueError as e:
        key, expected = str(e).split("|", 1)
        raise SiteConfigError(path, key, expected) from None
    for name, cluster in clusters.items():
        prefix = "backend" if "clusters" not in data else f"clusters.{name}"
        check_backend_options(path, cluster.type, cluster.options, prefix)
    return clusters


def auth_groups_claim(site: SiteConfig) -> str:
    """The SSO's group claim, when the site's experiments come from it ("" otherwise)."""
    return site.authenticator.get("groups_claim") or ""


def check_cluster_names(allowance, clusters: dict) -> None:
    """An allowance names only the site's clusters (a typo would silently grant nothing)."""
    named = set(allowance.per_cluster) | (set() if allowance.clusters == ALL else set(allowance.clusters))
    unknown = sorted(named - set(clusters))
    if unknown:
        raise AllowanceError(f"no cluster {unknown[0]!r} (clusters: {', '.join(clusters)})")


def cluster_options(site: SiteConfig, cluster: Cluster) -> dict:
    """A cluster's backend settings: what it takes from the rest of the site, then its own."""
    options = backend_class(cluster.type).site_defaults(credentials_store(site))
    options.update(cluster.options)
    return options


def _section(path, data, key) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise SiteConfigError(path, key, "a mapping")
    return value


def load_site_config(path=None) -> SiteConfig:
    path = Path(path or default_config_path()).resolve()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise SiteConfigError(path, "(file)", f"a readable file ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise SiteConfigError(path, "(file)", f"valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise SiteConfigError(path, "(top level)", "a mapping")
    try:  # every section's keys, types and choices (site_schema.py)
        check_sections(data)
    except SchemaError as e:
        raise SiteConfigError(path, e.key, e.expected) from None
    hub = _section(path, data, "hub")
    try:
        origins.check_hub_section(hub)
    except origins.OriginError as e:
        raise SiteConfigError(path, e.field, e.expected) from None
    auth = _section(path, data, "authenticator")
    if (auth.get("groups_claim") or auth.get("allowed_groups") or auth.get("admin_groups")) and auth.get(
        "type"
    ) != "generic-oauth":
        raise SiteConfigError(path, "authenticator.groups_claim", "type: generic-oauth (a provider's claim)")
    if (auth.get("allowed_groups") or auth.get("admin_groups")) and not auth.get("groups_claim"):
        raise SiteConfigError(
            path, "authenticator.groups_claim", "the claim allowed_groups/admin_groups read"
        )
    backend = _section(path, data, "backend")
    clusters = load_clusters(path, data)
    accounts = _section(path, data, "accounts")
    if not all(USERNAME.match(n) for n in accounts.get("deny") or []):
        raise SiteConfigError(path, "accounts.deny", "a list of user names INK never acts as")
    spawner = _section(path, data, "spawner")
    from .spawner import InkSpawner

    check_traits(path, "spawner", InkSpawner, spawner, SPAWNER_KEYS)
    experiments = _section(path, data, "experiments")
    users = _section(path, data, "users")
    for section, entries in (("experiments", experiments), ("users", users)):
        for name, spec in entries.items():
            if not isinstance(name, str) or not NAME.match(name):
                raise SiteConfigError(path, f"{section}.{name}", "a lower-case name")
            if not isinstance(spec, dict):
                raise SiteConfigError(path, f"{section}.{name}", "a mapping with members/allowance")
            try:
                check_cluster_names(parse_allowance(spec.get("allowance")), clusters)
            except AllowanceError as e:
                raise SiteConfigError(path, f"{section}.{name}.allowance", str(e)) from None
            members = spec.get("members", [])
            if section == "experiments" and (
                not isinstance(members, list) or not all(isinstance(m, str) for m in members)
            ):
                raise SiteConfigError(path, f"{section}.{name}.members", "a list of user names")
    try:
        check_cluster_names(parse_allowance(data.get("default_allowance")), clusters)
    except AllowanceError as e:
        raise SiteConfigError(path, "default_allowance", str(e)) from None
    shell = _section(path, data, "shell")
    try:
        shell_settings(shell)
    except (TypeError, ValueError) as e:
        raise SiteConfigError(path, "shell", str(e)) from None
    files = _section(path, data, "files")
    try:
        files_settings(files)
    except (TypeError, ValueError) as e:
        raise SiteConfigError(path, "files", str(e)) from None
    sessions = _section(path, data, "sessions")
    for app, value in (sessions.get("idle_timeout_per_app") or {}).items():
        try:
            parse_duration_s(value)
        except ValueError:
            raise SiteConfigError(
                path, f"sessions.idle_timeout_per_app.{app}", "a duration such as 4h"
            ) from None
    paths = _section(path, data, "paths")
    base = path.parent

    def resolve(key, fallback):
        value = paths.get(key)
        return (base / value).resolve() if value else fallback

    state_default = Path("/var/lib/ink") if os.geteuid() == 0 else Path.home() / ".local/share/ink"
    return SiteConfig(
        path=path,
        hub=hub,
        authenticator=auth,
        backend=backend,
        clusters=clusters,
        spawner=spawner,
        accounts=accounts,
        credentials=_section(path, data, "credentials"),
        dashboard=_section(path, data, "dashboard"),
        shell=shell,
        files=files,
        default_allowance=data.get("default_allowance") or {},
        experiments=experiments,
        users=users,
        profiles_dir=resolve("profiles", share_dir() / "profiles"),
        templates_dir=resolve("templates", share_dir() / "templates"),
        state_dir=Path(os.environ.get("INK_STATE_DIR") or resolve("state", state_default)),
        raw=data,
    )


def shell_settings(shell: dict):
    """The web shell's settings, checked (ink check reports a bad login host or ssh option)."""
    from ink_core.shell_settings import ShellSettings

    return ShellSettings(
        mode=shell.get("mode", "local"),
        hosts=list(shell.get("hosts") or []),
        keep_sessions=bool(shell.get("keep_sessions", False)),
        ssh_options=list(shell.get("ssh_options") or []),
    )


def files_settings(files: dict) -> dict:
    """The file service's settings (their types checked by the schema), defaults filled in and
    the areas parsed."""

    def get(key):
        value = files.get(key)
        return default_of("files", key) if value is None else value

    areas = get("areas")
    parse_areas(areas)
    max_upload = parse_memory_mb(str(get("max_upload"))) * 1024 * 1024
    concurrent = get("max_concurrent_uploads")
    preview_memory = parse_memory_mb(str(get("preview_memory")))
    seconds = get("preview_seconds")
    return {
        "areas": areas,
        "max_upload": int(max_upload),
        "max_concurrent_uploads": concurrent,
        "pull_allow_hosts": get("pull_allow_hosts"),
        "pull_ca_file": get("pull_ca_file") or None,
        # each preview's own limits (ink_core/previews.py), read by the user's workers
        "preview_env": {"INK_PREVIEW_MEMORY_MB": str(preview_memory), "INK_PREVIEW_SECONDS": str(seconds)},
    }


def check(path=None) -> list[str]:
    """Every problem ``ink check`` reports (empty when all is well)."""
    try:
        site = load_site_config(path)
    except SiteConfigError as e:
        return [str(e)]
    problems = []
    try:
        profiles = load_profiles(site.profiles_dir)
    except ProfileError as e:
        return [str(e)]
    for name, spec in list(site.experiments.items()) + [
        ("default_allowance", {"allowance": site.default_allowance})
    ]:
        allowance = parse_allowance(spec.get("allowance"))
        for kind, known in (("apps", profiles.apps), ("images", profiles.images)):
            names = getattr(allowance, kind)
            if names != "*":
                for missing in sorted(set(names) - set(known)):
                    problems.append(f"{site.path}: {name}: allowance names unknown {kind[:-1]} {missing!r}")
    return problems + tls_problems(site)


def tls_problems(site: SiteConfig) -> list[str]:
    """The site's certificate and key: readable files, the key for the hub's account alone."""
    problems = []
    for key in ("ssl_cert", "ssl_key"):
        path = site.hub.get(key)
        if path and not os.access(path, os.R_OK):
            problems.append(f"{site.path}: hub.{key}: {path} is not a readable file")
        elif path and key == "ssl_key" and os.stat(path).st_mode & 0o077:
            problems.append(f"{site.path}: hub.ssl_key: {path} may be read by others (chmod 600 it)")
    return problems


def site_warnings(path=None) -> list[str]:
    """What ``ink check`` reports as warnings: the scheduler's own settings as the hub host sees
    them (INK still starts)."""
    try:
        site = load_site_config(path)
    except SiteConfigError:
        return []
    warnings = [] if origins.subdomain_host(site.hub) else [origins.ONE_ORIGIN_WARNING]
    for name, cluster in site.clusters.items():
        shown = "" if "clusters" not in site.raw else f"cluster {name}: "
        backend = backend_class(cluster.type)(**cluster.options)
        warnings += [shown + warning for warning in backend.site_warnings()]
    return warnings


def admin_password_file(site: SiteConfig) -> Path:
    return site.state_dir / "admin-password"


def ensure_admin_password(site: SiteConfig) -> tuple[str, bool]:
    """The embedded default's generated admin password: (password, created now)."""
    target = admin_password_file(site)
    if target.exists():
        return target.read_text().strip(), False
    password = secrets.token_urlsafe(24)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password, True


def proxy_command() -> list[str]:
    """configurable-http-proxy through INK's ``proxy.js`` (a clear 400, not a 500, for a path
    that is not valid percent-encoded UTF-8); the stock proxy if node or the wrapper is missing."""
    local = Path(sys.prefix) / "node_modules" / ".bin" / "configurable-http-proxy"
    chp = str(local) if local.exists() else shutil.which("configurable-http-proxy")
    node = shutil.which("node")
    if chp and node:  # proxy.js loads the proxy's lib/ beside its real bin/
        return [node, str(Path(__file__).with_name("proxy.js")), os.path.realpath(chp)]
    return [chp or "configurable-http-proxy"]


def apply_site_config(c, path=None) -> SiteConfig:
    """Set the hub's traitlets from the site YAML. Profiles are validated here: a bad file stops the hub."""
    site = load_site_config(path)
    load_profiles(site.profiles_dir)  # raises ProfileError naming file and field
    os.environ.update(account_rule_env(site))
    site.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    hub = site.hub

    c.JupyterHub.bind_url = site.url
    # each user's server on its own origin (ink_spawner/origins.py); INK's services on the hub's
    c.JupyterHub.subdomain_host = origins.subdomain_host(hub)
    if c.JupyterHub.subdomain_host:
        c.JupyterHub.public_url = site.public_url
        c.JupyterHub.subdomain_hook = origins.subdomain_hook
        c.JupyterHub.hub_routespec = origins.hub_routespec(hub)
    c.JupyterHub.hub_ip = hub.get("hub_ip", "127.0.0.1")
    if hub.get("hub_port"):
        c.JupyterHub.hub_port = hub["hub_port"]
    c.JupyterHub.db_url = hub_db_url(site)
    if hub.get("ssl_cert"):  # the proxy serves the site's certificate
        c.JupyterHub.ssl_cert = hub["ssl_cert"]
        c.JupyterHub.ssl_key = hub["ssl_key"]
    c.JupyterHub.cookie_secret_file = str(site.state_dir / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(site.state_dir / "proxy.pid")
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.JupyterHub.template_paths = [str(site.templates_dir)]
    if hub.get("internal_ssl"):
        # TLS with certificates of the hub's own CAs between the hub, proxy, services and jobs
        c.JupyterHub.internal_ssl = True
        c.JupyterHub.internal_certs_location = str(site.state_dir / "internal-ssl")
    # a hub restart (upgrade, crash) must not kill physicists' running jobs
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.extra_handlers = [
        (ROUTE, JobReadyHandler),
        *((r, ExtendHandler) for r in EXTEND_ROUTES),
        (HISTORY_ROUTE, HistoryHandler),
        (STATISTICS_ROUTE, StatisticsHandler),
        (MY_HISTORY_ROUTE, MyHistoryHandler),
    ]
    kind = site.auth_type
    if auth_groups_claim(site):  # the SSO's group claim manages groups (sso_groups.py)
        c.GenericOAuthenticator.manage_groups = True
        c.GenericOAuthenticator.auth_state_groups_key = f"oauth_user.{site.authenticator['groups_claim']}"
        c.Authenticator.post_auth_hook = group_sync_hook(site.groups())
        for key in ("allowed_groups", "admin_groups"):
            if site.authenticator.get(key):
                setattr(c.GenericOAuthenticator, key, set(site.authenticator[key]))
    else:
        c.JupyterHub.load_groups = site.groups()

    entry, section = AUTHENTICATORS[kind]
    c.JupyterHub.authenticator_class = entry
    auth = site.authenticator
    admins = set(auth.get("admin_users") or [])
    if kind == "shared-password":
        password, _ = ensure_admin_password(site)
        c.SharedPasswordAuthenticator.admin_password = password
        admins = admins or {os.environ.get("USER") or "admin"}
    c.Authenticator.admin_users = admins
    if "allow_all" in auth:
        c.Authenticator.allow_all = bool(auth["allow_all"])
    members = {m for spec in site.experiments.values() for m in spec.get("members") or []}
    allowed = set(auth.get("allowed_users") or []) | members | set(site.users)
    if allowed:
        c.Authenticator.allowed_users = allowed
    for key, value in (auth.get("options") or {}).items():
        setattr(getattr(c, section), key, value)

    # every INK service checks per user what it serves; users may reach them and hold INK's
    # own scopes (a token can be made with fewer)
    c.JupyterHub.custom_scopes = CUSTOM_SCOPES
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "access:services", *CUSTOM_SCOPES]}]
    c.JupyterHub.services = []
    c.JupyterHub.template_vars = {"ink_public_url": site.public_url}
    # what a job's own token may do: report activity, be reached, talk to INK's services, and
    # read and extend its own server (the time-left banner in the session's apps)
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "servers!server"]
    apply_credentials(c, site)
    apply_dashboard(c, site)
    apply_shell(c, site)
    apply_files(c, site)
    apply_jobs(c, site)
    apply_sessions(c, site)

    spawner = site.spawner
    c.JupyterHub.spawner_class = "ink_spawner.spawner.InkSpawner"
    c.InkSpawner.backend = site.backend.get("type", "local")
    c.InkSpawner.profiles_dir = str(site.profiles_dir)
    c.InkSpawner.form_template_dir = str(site.templates_dir)
    c.InkSpawner.default_allowance = site.default_allowance
    c.InkSpawner.history_db_url = c.JupyterHub.db_url  # INK's ink_* tables beside JupyterHub's
    for key in SPAWNER_KEYS:
        if key in spawner:
            setattr(c.InkSpawner, key, spawner[key])
    if "job_ip" not in spawner and all(backend_class(k.type).same_host for k in site.clusters.values()):
        c.InkSpawner.job_ip = "127.0.0.1"  # jobs on the hub's own host: loopback is enough
    if "clusters" in site.raw:  # several: each its own backend instance with its own options
        c.InkSpawner.clusters = {
            name: {"title": k.title, "type": k.type, "options": cluster_options(site, k)}
            for name, k in site.clusters.items()
        }
        return site
    # one: the backend's options are its class's configuration (as a jupyterhub_config.py sets it)
    cluster = site.clusters[DEFAULT]
    backend_section = backend_path(cluster.type).rsplit(".", 1)[1]
    for key, value in cluster_options(site, cluster).items():
        setattr(getattr(c, backend_section), key, value)
    return site


def session_settings(site: SiteConfig) -> dict:
    """The sessions section in seconds, defaults filled in."""
    sessions = site.raw.get("sessions") or {}
    return {key: parse_duration_s(sessions.get(key, default)) for key, default in SESSION_DEFAULTS.items()}


def apply_sessions(c, site: SiteConfig) -> None:
    """Activity and idle culling: every app's traffic goes through the hub's proxy, whose
    per-route activity the hub reads every ``activity_interval``; jupyterhub-idle-culler (a
    hub-managed service) stops servers idle for longer than ``idle_timeout``."""
    named = int((site.raw.get("sessions") or {}).get("named_servers", 0))
    if named:  # sessions besides the default one, e.g. a JupyterLab and a desktop at once
        c.JupyterHub.allow_named_servers = True
        c.JupyterHub.named_server_limit_per_user = named
    settings = session_settings(site)
    activity = max(1, settings["activity_interval"])
    c.JupyterHub.last_activity_interval = activity
    # the single-user server's own report (kernels, terminals) at the same pace
    c.Spawner.environment.update({"JUPYTERHUB_ACTIVITY_INTERVAL": str(activity)})
    per_app = {
        app: parse_duration_s(value)
        for app, value in ((site.raw.get("sessions") or {}).get("idle_timeout_per_app") or {}).items()
    }
    c.InkSpawner.idle_timeouts = {"default": settings["idle_timeout"], "apps": per_app}
    if not settings["idle_timeout"] and not any(per_app.values()):
        return
    command = [
        sys.executable,
        "-m",
        "ink_services.process",  # ends with the hub, like INK's own services
        "jupyterhub_idle_culler",
        f"--config={HERE / 'idle_culler_config.py'}",
        # the culler's own limit is the shortest: INK's arbiter decides per app
        f"--timeout={min(t for t in (settings['idle_timeout'], *per_app.values()) if t)}",
        f"--cull-every={max(1, settings['idle_check_interval'])}",
    ]
    if site.hub.get("internal_ssl"):
        command += ["--ssl-enabled=true", f"--internal-certs-location={site.state_dir / 'internal-ssl'}"]
    environment = {**_passthrough_env(), **timeouts_env(settings["idle_timeout"], per_app)}
    c.JupyterHub.services.append(
        {"name": IDLE_CULLER_SERVICE, "command": command, "environment": environment, "display": False}
    )
    c.JupyterHub.load_roles.append(
        {
            "name": IDLE_CULLER_SERVICE,
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": [IDLE_CULLER_SERVICE],
        }
    )


def credentials_store(site: SiteConfig) -> str:
    return str(Path(site.credentials.get("store") or site.state_dir / "credentials"))


def credentials_url(site: SiteConfig) -> str:
    """Where a job fetches its user's ticket ("" when INK delivers none)."""
    creds = site.credentials
    if not creds.get("enabled"):
        return ""
    return creds.get("job_url") or site.service_public_url(CREDENTIALS_SERVICE) + "api/ticket"


def apply_credentials(c, site: SiteConfig) -> None:
    """The Kerberos credentials service (hub-managed), the login that feeds it, ticket delivery."""
    creds = site.credentials
    # every INK service checks per user what it serves; users may reach them
    if not creds.get("enabled"):
        return
    store = credentials_store(site)
    realm = creds.get("realm", "")
    if creds.get("krb5_config"):
        os.environ["KRB5_CONFIG"] = str((site.path.parent / creds["krb5_config"]).resolve())
    port = int(creds.get("port", 8082))
    environment = {"KRB5_CONFIG": os.environ["KRB5_CONFIG"]} if "KRB5_CONFIG" in os.environ else {}
    command = [sys.executable, "-m", "ink_services.credentials"]  # it reads its own section
    add_service(c, site, CREDENTIALS_SERVICE, port, command, environment=environment)
    c.Spawner.server_token_scopes.append(f"access:services!service={CREDENTIALS_SERVICE}")
    c.KerberosAuthenticator.realm = realm
    c.KerberosAuthenticator.store_dir = store
    c.InkSpawner.credentials_url = credentials_url(site)
    c.JupyterHub.template_vars["ink_credentials_url"] = service_url(site, CREDENTIALS_SERVICE)


def apply_dashboard(c, site: SiteConfig) -> None:
    """The dashboard service: the user's jobs, per-app counts, cluster load (on the home page)."""
    port = int(site.dashboard.get("port", 8083))
    command = [sys.executable, "-m", "ink_services.dashboard"]  # it reads its own section
    jobs_url = jobs_api_url(site)  # each session's workers, asked with the caller's own token
    add_service(
        c,
        site,
        DASHBOARD_SERVICE,
        port,
        command,
        # an admin's page session may read every user's servers (the admin view); others'
        # sessions get only their own (the hub filters the scope by what the user holds);
        # "servers" (the caller's own) lets the page's Extend button ask the hub as the caller
        oauth_client_allowed_scopes=["read:servers", "servers"]
        + ([f"access:services!service={JOBS_SERVICE}", JOBS_READ] if jobs_url else []),
    )
    # it reads users' servers and the job id INK keeps in the server state
    c.JupyterHub.load_roles.append(
        {
            "name": DASHBOARD_SERVICE,
            "scopes": ["read:users", "list:users", "read:servers", "admin:server_state"],
            "services": [DASHBOARD_SERVICE],
        }
    )
    c.Spawner.server_token_scopes.append(f"access:services!service={DASHBOARD_SERVICE}")
    c.InkSpawner.monitor_url = site.service_public_url(DASHBOARD_SERVICE) + "api/samples"
    c.JupyterHub.template_vars["ink_dashboard_url"] = service_url(site, DASHBOARD_SERVICE)


def apply_shell(c, site: SiteConfig) -> None:
    """The web shell service: a terminal onto a login node, as the user (linked from the nav bar)."""
    shell = site.shell
    if not shell.get("enabled", True):
        return
    port = int(shell.get("port", 8084))
    command = [sys.executable, "-m", "ink_services.shell"]  # it reads its own section
    add_service(c, site, SHELL_SERVICE, port, command)
    c.JupyterHub.template_vars["ink_shell_url"] = service_url(site, SHELL_SERVICE)


def apply_files(c, site: SiteConfig) -> None:
    """The file service: the user's storage areas in the browser (linked from the nav bar)."""
    if not site.files.get("enabled", True):
        return
    settings = files_settings(site.files)
    port = int(site.files.get("port", 8085))
    command = [sys.executable, "-m", "ink_services.files"]  # it reads its own section
    jobs_url = jobs_api_url(site)  # "Run as batch job" on a notebook: with the caller's own token
    add_service(
        c,
        site,
        FILES_SERVICE,
        port,
        command,
        environment=settings["preview_env"],
        oauth_client_allowed_scopes=[FILES_READ, FILES_WRITE]
        + ([f"access:services!service={JOBS_SERVICE}", JOBS_SUBMIT] if jobs_url else []),
    )
    # share links die with their owner's hub account
    c.JupyterHub.load_roles.append(
        {"name": FILES_SERVICE, "scopes": ["read:users:name"], "services": [FILES_SERVICE]}
    )
    c.JupyterHub.template_vars["ink_files_url"] = service_url(site, FILES_SERVICE)


def site_backends(path=None) -> tuple[SiteConfig, dict[str, Backend]]:
    """(site, its backends by cluster name): for INK's services, which talk to the schedulers
    themselves. The one ``backend:`` is the cluster "default"."""
    from traitlets.config import Config

    config = Config()
    site = apply_site_config(config, path)
    if "clusters" not in site.raw:
        return site, {DEFAULT: backend_class(config.InkSpawner.backend)(config=config)}
    return site, {
        name: make_backend(replace(k, options=cluster_options(site, k)), config)
        for name, k in site.clusters.items()
    }


def rate_limit(site: SiteConfig) -> tuple[float, int]:
    """The per-token rate limit of INK's APIs (site YAML ``api``): requests per minute, burst."""
    api = with_defaults("api", site.raw.get("api"))
    return float(api["rate_per_minute"]), int(api["burst"])


def hub_db_url(site: SiteConfig) -> str:
    """The hub's database (INK's usage history is in it too): the site's, or SQLite in the state
    folder."""
    return site.hub.get("db_url") or f"sqlite:///{site.state_dir / 'jupyterhub.sqlite'}"


def state_folder(site: SiteConfig, name: str) -> str:
    """A service's own folder in INK's state (job records, share links, preferences)."""
    return str(site.state_dir / name)


def service_records(site: SiteConfig, name: str):
    """Where a service keeps its records (``name``: jobs, shares, shell-prefs): the hub's
    database when the site names one (``hub.db_url``; files left in the state folder by an
    earlier version are brought in once), else files in the state folder."""
    if not site.hub.get("db_url"):
        return state_folder(site, name)
    from .dbrecords import DBRecords

    records = DBRecords(site.hub["db_url"], name)
    records.import_folder(state_folder(site, name))
    return records


def jobs_api_url(site: SiteConfig) -> str:
    """The jobs API as the hub and the other services reach it ("" when the site has none)."""
    jobs = site.raw.get("jobs") or {}
    if not jobs.get("enabled", True):
        return ""
    base_url = site.hub.get("base_url", "/")
    return f"http://127.0.0.1:{int(jobs.get('port', 8086))}{base_url}services/{JOBS_SERVICE}/api/v1/jobs"


def apply_jobs(c, site: SiteConfig) -> None:
    """The jobs API service: batch jobs submitted as the user to the site's backend."""
    jobs = site.raw.get("jobs") or {}
    if not jobs.get("enabled", True):
        return
    port = int(jobs.get("port", 8086))
    command = [sys.executable, "-m", "ink_services.jobs"]  # it reads its own section
    add_service(
        c,
        site,
        JOBS_SERVICE,
        port,
        command,
        oauth_client_allowed_scopes=[JOBS_READ, JOBS_SUBMIT],
    )
    # it reads each user's groups to apply their experiments' allowances
    c.JupyterHub.load_roles.append(
        {"name": JOBS_SERVICE, "scopes": ["read:users", "read:groups"], "services": [JOBS_SERVICE]}
    )
    # a session submits batch jobs (Dask workers) as its user with its own token; its end
    # cancels the ones tied to it
    c.Spawner.server_token_scopes += [
        f"access:services!service={JOBS_SERVICE}",
        f"{JOBS_READ}!user",
        f"{JOBS_SUBMIT}!user",
    ]
    c.InkSpawner.jobs_api_url = jobs_api_url(site)
    c.InkSpawner.client_hub_url = site.public_url.rstrip("/")


def add_service(c, site: SiteConfig, name: str, port: int, command: list[str], **extra) -> None:
    """One of INK's hub-managed services on a loopback port; ``extra`` adds to its definition
    (environment, oauth_client_allowed_scopes, ...)."""
    # every service reads its own section of the site file (INK_CONFIG)
    environment = {
        "INK_CONFIG": str(site.path),
        **_passthrough_env(),
        **account_rule_env(site),
        **extra.pop("environment", {}),
    }
    service = {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": command,
        "environment": environment,
        "oauth_no_confirm": True,
        "display": False,
    }
    service.update(extra)
    c.JupyterHub.services.append(service)


def account_rule_env(site: SiteConfig) -> dict:
    """The site's no-system-accounts rule (ink_spawner/accounts.py) for the hub and services."""
    return settings_env(site.accounts.get("min_uid"), site.accounts.get("deny", []))


def service_url(site: SiteConfig, name: str) -> str:
    """Where pages link to a service (the hub's base URL, then services/NAME/)."""
    return f"{site.hub.get('base_url', '/')}services/{name}/"


def _passthrough_env() -> dict:
    """Settings the hub's environment gives INK's services (tests point at their test schedd)."""
    return {k: v for k, v in os.environ.items() if k in ("INK_TEST_SCHEDD", "PYTHONPATH", "KRB5_CONFIG")}
