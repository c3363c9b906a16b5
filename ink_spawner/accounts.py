"""One rule for every place INK acts as a Unix user: never as a system account.

The hub, the backends, the file service, the web shell and the jobs API all resolve a hub name
to a Unix account through ``user_account``. An account whose uid is below the site's minimum
(``accounts.min_uid`` in the site YAML, default: UID_MIN of /etc/login.defs, else 1000), or
whose name is on the deny list, is refused and the refusal is logged: a hub admin's token, a
crafted OAuth name or a typo cannot make INK act as root, daemon or a service account.
The site's settings reach INK's services as INK_MIN_UID and INK_DENY_USERS.
"""

from __future__ import annotations

import functools
import grp
import logging
import os
import pwd
import re

log = logging.getLogger("ink.accounts")
ALWAYS_DENIED = frozenset({"root", "nobody"})


class SystemAccountRefused(PermissionError):
    """The name is a system account (or denied by the site): INK does not act as it."""


@functools.lru_cache(maxsize=4)
def login_defs(path: str = "/etc/login.defs") -> dict[str, str]:
    """The settings of login.defs, read once."""
    settings = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and not parts[0].startswith("#"):
                    settings[parts[0]] = parts[1]
    except OSError:
        pass
    return settings


def login_defs_min_uid(path: str = "/etc/login.defs") -> int:
    """UID_MIN of login.defs (every API request asks through ``min_uid``)."""
    value = login_defs(path).get("UID_MIN", "")
    return int(value) if value.isdigit() else 1000


def login_umask(account: pwd.struct_passwd, path: str = "/etc/login.defs") -> int:
    """The umask a login of this account gets (pam_umask's rule): ``umask=`` in the account's
    GECOS field, else login.defs' UMASK (022); with USERGROUPS_ENAB, a user whose primary group
    is his own gets the group bits of his user bits (022 -> 002)."""
    defs = login_defs(path)
    mask = None
    for field in account.pw_gecos.split(","):
        key, _, value = field.strip().partition("=")
        if key == "umask" and re.fullmatch(r"0?[0-7]{3}", value):
            mask = int(value, 8)
    if mask is None:
        value = defs.get("UMASK", "022")
        mask = int(value, 8) if re.fullmatch(r"0?[0-7]{3}", value) else 0o022
        try:
            own_group = grp.getgrgid(account.pw_gid).gr_name == account.pw_name
        except KeyError:
            own_group = False
        if defs.get("USERGROUPS_ENAB", "yes").lower() == "yes" and account.pw_uid != 0 and own_group:
            mask = (mask & ~0o070) | ((mask & 0o700) >> 3)
    return mask


def min_uid() -> int:
    value = os.environ.get("INK_MIN_UID", "")
    return int(value) if value.isdigit() else login_defs_min_uid()


def denied_names() -> frozenset[str]:
    extra = {n.strip() for n in os.environ.get("INK_DENY_USERS", "").split(",") if n.strip()}
    return ALWAYS_DENIED | extra


def refusal(account: pwd.struct_passwd) -> str:
    """Why INK must not act as this account (empty when it may)."""
    if account.pw_name in denied_names():
        return f"{account.pw_name!r} is on the site's list of accounts INK never acts as"
    if account.pw_uid < min_uid():
        return f"{account.pw_name!r} is a system account (uid {account.pw_uid} < {min_uid()})"
    return ""


def user_account(name: str, what: str = "act") -> pwd.struct_passwd:
    """The Unix account of ``name``; KeyError when there is none, SystemAccountRefused (logged)
    when it is a system or denied account."""
    account = pwd.getpwnam(name)
    why = refusal(account)
    if why:
        log.warning("refused to %s: %s", what, why)
        raise SystemAccountRefused(f"INK never acts as a system account: {why}")
    return account


def check_not_system(name: str, what: str = "act") -> None:
    """Refuse a system account; a name with no local account passes (the scheduler decides)."""
    try:
        user_account(name, what)
    except KeyError:
        pass


def settings_env(min_uid_setting: int | None, deny: list[str]) -> dict:
    """The environment that carries the site's account rule to INK's services."""
    env = {}
    if min_uid_setting is not None:
        env["INK_MIN_UID"] = str(min_uid_setting)
    if deny:
        env["INK_DENY_USERS"] = ",".join(deny)
    return env
