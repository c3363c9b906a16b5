"""The `ink` command: `ink up` runs the hub on the site config, `ink check` validates it."""

from __future__ import annotations

import argparse
import os
import sys

from ink_spawner.configurer import (
    SiteConfigError,
    admin_password_file,
    check,
    ensure_admin_password,
    load_site_config,
    share_dir,
)


def report_problems(config) -> bool:
    """Print what ``ink check`` finds; True when something is wrong."""
    problems = check(config)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return bool(problems)


def cmd_check(args) -> int:
    if report_problems(args.config):
        return 1
    site = load_site_config(args.config)
    print(f"ok: {site.path} and profiles in {site.profiles_dir}")
    return 0


def cmd_up(args) -> int:
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
    print(f"INK is starting at {site.url}")
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
    else:
        print(f"Log in through {site.auth_type}.")
    sys.stdout.flush()
    config_file = share_dir() / "jupyterhub_config.py"
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(config_file)]
    os.chdir(site.state_dir)
    os.execv(sys.executable, argv)
    return 0  # not reached


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink", description="INK, the Interactive aNalysis worKbench")
    parser.add_argument("--config", help="site YAML (default: $INK_CONFIG or etc/ink.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the hub on the site config (embedded default: this machine)")
    sub.add_parser("check", help="validate the site config and profiles; non-zero exit when wrong")
    args = parser.parse_args(argv)
    return {"up": cmd_up, "check": cmd_check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
