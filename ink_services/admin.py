"""The `ink` command's hub-side commands, added to the light client's `ink` through the
``ink.commands`` entry points: `ink up` runs the hub on the site config, `ink check` validates
it, `ink node-check` (on a batch node) says, per app, what the node lacks, `ink upgrade-db`
migrates INK's tables, `ink install-service` writes the hub's systemd unit, `ink front-config` nginx's
config for the production front. Their heavy imports
(JupyterHub, the configurator) happen only when one of them runs."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

# what these commands import when they run: missing, the light client says which install has them
HUB_MODULES = ("jupyterhub", "yaml", "traitlets")


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable
    arguments: Callable = lambda parser: None
    requires: tuple[str, ...] = HUB_MODULES


def report_problems(config) -> bool:
    """Print what ``ink check`` finds; True when something is wrong."""
    from ink_spawner.configurer import check

    problems = check(config)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return bool(problems)


def cmd_check(args) -> int:
    from ink_spawner.configurer import load_site_config, site_warnings

    if report_problems(args.config):
        return 1
    for warning in site_warnings(args.config):
        print(f"warning: {warning}", file=sys.stderr)
    site = load_site_config(args.config)
    print(f"ok: {site.path} and profiles in {site.profiles_dir}")
    return 0


def cmd_node_check(args) -> int:
    """Per app of the site's profiles, what this node lacks; exit 1 when anything does."""
    from ink_spawner.configurer import SiteConfigError, load_site_config
    from ink_spawner.nodecheck import check_node
    from ink_spawner.profiles import load_profiles

    try:
        site = load_site_config(args.config)
        profiles = load_profiles(site.profiles_dir)
    except (SiteConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    apps = args.apps.split(",") if args.apps else list(profiles.apps)
    unknown = [a for a in apps if a not in profiles.apps]
    if unknown:
        print(
            f"error: no app {unknown[0]!r} in {site.profiles_dir} (apps: {', '.join(profiles.apps)})",
            file=sys.stderr,
        )
        return 2
    scripts = {f"image {i.name}": i.setup for i in profiles.images.values() if i.setup}
    scripts |= {f"experiment {e.name}": e.setup for e in profiles.experiments.values() if e.setup}
    images = {i.name: i.rootfs for i in profiles.images.values() if i.rootfs}
    report = check_node(apps, scripts, images=images)
    if args.json:
        print(json.dumps({"ok": report.ok, "missing": report.missing}))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_up(args) -> int:
    from ink_spawner import origins
    from ink_spawner.configurer import (
        SiteConfigError,
        admin_password_file,
        ensure_admin_password,
        load_site_config,
        share_dir,
    )

    if report_problems(args.config):
        return 1
    if args.config:
        os.environ["INK_CONFIG"] = os.path.abspath(args.config)
    try:
        site = load_site_config(args.config)
    except SiteConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    site.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    print(f"INK is starting at {site.public_url}")
    if origins.subdomain_host(site.hub):
        print(f"Each user's own server has its own origin, e.g. {origins.user_url(site.hub, 'alice')}")
    else:
        print(f"warning: {origins.ONE_ORIGIN_WARNING}", file=sys.stderr)
    if site.auth_type == "shared-password":
        admins = site.authenticator.get("admin_users") or [os.environ.get("USER") or "admin"]
        password, created = ensure_admin_password(site)
        print(f"Log in as {admins[0]!r}", end=" ")
        if created:
            print(f"with this generated password (shown once; kept in {admin_password_file(site)}):")
            print(f"    {password}")
        else:
            print(f"with the password kept in {admin_password_file(site)}")
    elif site.auth_type == "pam":
        print("Log in with an account of this machine (PAM).")
        if os.geteuid() == 0:
            print("No account to log in with yet? As root: useradd --create-home NAME && passwd NAME")
    else:
        print(f"Log in through {site.auth_type}.")
    sys.stdout.flush()
    config_file = share_dir() / "jupyterhub_config.py"
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(config_file)]
    os.chdir(site.state_dir)
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_upgrade_db(args) -> int:
    """INK's tables in the hub's database to the newest migration (or back to ``--downgrade-to``
    before reinstalling an older INK); a SQLite file is copied aside first."""
    import shutil
    import time

    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url

    from ink_spawner import history
    from ink_spawner.configurer import SiteConfigError, hub_db_url, load_site_config

    try:
        url = hub_db_url(load_site_config(args.config))
    except SiteConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    database = make_url(url).database if url.startswith("sqlite") else None
    if database and os.path.exists(database):
        backup = f"{database}.{time.strftime('%Y%m%d-%H%M%S')}.bak"
        shutil.copy2(database, backup)
        print(f"copied {database} to {backup}")
    with history.session(url) as db:
        before = history.revision(db)
        try:
            if args.downgrade_to:
                command.downgrade(history.alembic_config(db.connection()), args.downgrade_to)
                db.commit()
            else:
                history.upgrade(db)
        except CommandError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"INK's tables: revision {before or 'none'} -> {history.revision(db)}")
    return 0


def cmd_install_service(args) -> int:
    """Write the hub's systemd unit (and enable and start it where systemd runs)."""
    import shutil
    import subprocess
    from pathlib import Path

    from ink_spawner.configurer import SiteConfigError, default_config_path, hub_db_url, load_site_config

    from .service_unit import unit_text

    if report_problems(args.config):
        return 1
    try:
        site = load_site_config(args.config)
    except SiteConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    ink = Path(shutil.which("ink") or Path(sys.prefix) / "bin" / "ink")
    local_postgres = any(h in hub_db_url(site) for h in ("@localhost", "@127.0.0.1", "@/", "host=/"))
    try:
        text = unit_text(
            ink=ink.resolve(),
            config=Path(args.config or default_config_path()).resolve(),
            state=site.state_dir.resolve(),
            docs=Path(sys.prefix) / "share" / "ink",
            after="postgresql.service" if local_postgres else "",
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$", args.name):
        print(f"error: --name: {args.name!r} is not a unit name (letters, digits, _.@-)", file=sys.stderr)
        return 2
    site.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    unit = Path(args.unit_dir) / f"{args.name}.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(text)
    print(f"wrote {unit}")
    if not Path("/run/systemd/system").is_dir():
        print(
            "systemd is not running on this machine: the unit is written but not enabled; where "
            f"systemd runs: systemctl daemon-reload && systemctl enable --now {args.name}"
        )
        return 0
    if args.no_start:
        print(f"to start it: systemctl daemon-reload && systemctl enable --now {args.name}")
        return 0
    for argv in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", args.name]):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"error: {' '.join(argv)}: {done.stderr.strip()}", file=sys.stderr)
            return 1
    print(f"enabled and started: systemctl status {args.name}, journalctl -u {args.name}")
    return 0


def install_service_arguments(parser) -> None:
    parser.add_argument("--name", default="ink", help="the unit's name (default: ink)")
    parser.add_argument("--unit-dir", default="/etc/systemd/system", help="where to write the unit")
    parser.add_argument("--no-start", action="store_true", help="write the unit only")


def cmd_front_config(args) -> int:
    """Print nginx's server blocks for the site (ink_services/front.py)."""
    from ink_spawner.configurer import SiteConfigError, load_site_config

    from .front import nginx_site

    try:
        print(nginx_site(load_site_config(args.config), args.cert or "", args.key or "", args.listen or ""))
    except (SiteConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def front_config_arguments(parser) -> None:
    parser.add_argument("--cert", help="the site's TLS certificate (PEM, with its chain)")
    parser.add_argument("--key", help="its private key")
    parser.add_argument("--listen", help="nginx's listen address (default: 443 with TLS, else 80)")


def upgrade_db_arguments(parser) -> None:
    parser.add_argument("--downgrade-to", metavar="REVISION", help="go back to this revision (e.g. 0001)")


def node_check_arguments(parser) -> None:
    parser.add_argument("--apps", help="comma-separated apps (default: every app of the profiles)")


UP = Command("start the hub on the site config (embedded default: this machine)", cmd_up)
CHECK = Command("validate the site config and profiles; non-zero exit when wrong", cmd_check)
NODE_CHECK = Command(
    "on a batch node: what each app needs that this node lacks", cmd_node_check, node_check_arguments
)
UPGRADE_DB = Command(
    "migrate INK's tables in the hub's database (they also migrate at the hub's start)",
    cmd_upgrade_db,
    upgrade_db_arguments,
)
INSTALL_SERVICE = Command(
    "write the hub's systemd unit and enable it (production)", cmd_install_service, install_service_arguments
)
FRONT_CONFIG = Command(
    "print nginx's config for a TLS front that sends file transfers straight to the file service",
    cmd_front_config,
    front_config_arguments,
)
