"""The one rule for system accounts, and every place that acts as a user goes through it."""

import asyncio
import pwd

import pytest

from ink_services.files.storage import StorageError
from ink_services.shell.terminals import ShellRefused, account
from ink_spawner.accounts import SystemAccountRefused, check_not_system, login_defs_min_uid, user_account
from ink_spawner.backends.base import BackendError
from ink_spawner.backends.local import LocalBackend
from tests.helpers.specs import job_spec


def test_system_accounts_are_refused_and_logged(monkeypatch, caplog):
    monkeypatch.delenv("INK_MIN_UID", raising=False)
    for name in ("root", "daemon", "nobody", "bin"):
        with pytest.raises(SystemAccountRefused):
            user_account(name)
    assert "refused to act: 'daemon' is a system account (uid 1 < 1000)" in caplog.text
    with pytest.raises(KeyError):
        user_account("no-such-user-here")
    check_not_system("no-such-user-here")  # unknown here: the scheduler decides


def test_the_sites_minimum_and_deny_list(monkeypatch, tmp_path):
    defs = tmp_path / "login.defs"
    defs.write_text("# comment\nUID_MIN\t\t 5000\n")
    assert login_defs_min_uid(str(defs)) == 5000
    assert login_defs_min_uid(str(tmp_path / "missing")) == 1000
    monkeypatch.setenv("INK_MIN_UID", "2")
    with pytest.raises(SystemAccountRefused):
        user_account("daemon")
    assert user_account("bin").pw_name == "bin"  # uid 2 passes a minimum of 2
    monkeypatch.setenv("INK_DENY_USERS", "bin,sys")
    with pytest.raises(SystemAccountRefused, match="list of accounts"):
        user_account("bin")


def test_every_place_that_acts_as_a_user_refuses_them(monkeypatch):
    monkeypatch.delenv("INK_MIN_UID", raising=False)
    with pytest.raises(ShellRefused, match="system account"):
        account("daemon")
    from ink_services.files.storage import Storage

    with pytest.raises(StorageError) as err:
        Storage({"home": "{home}"}).user("root")
    assert err.value.status == 403
    with pytest.raises(BackendError, match="system account"):
        LocalBackend(submit_as="runuser").as_user("daemon", ["id"])
    with pytest.raises(SystemAccountRefused):
        job_spec(username="daemon")
    if __import__("os").geteuid() == 0:
        with pytest.raises(SystemAccountRefused):
            asyncio.run(LocalBackend().submit(job_spec(username="root")))


def test_acting_for_another_user_is_logged_and_never_for_a_system_account(caplog, monkeypatch):
    import logging
    from types import SimpleNamespace

    from tornado import web

    from ink_services.scopes import acting_user

    monkeypatch.delenv("INK_MIN_UID", raising=False)

    def handler(me, scopes, user):
        return SimpleNamespace(
            current_user={"name": me, "scopes": scopes},
            get_argument=lambda name, default: user if user is not None else default,
            request=SimpleNamespace(method="GET", path="/services/ink-files/api/v1/list/home"),
        )

    caplog.set_level(logging.INFO)
    assert acting_user(handler("carol", ["admin:users"], "nobody-here")) == "nobody-here"
    assert "carol acts for nobody-here (GET /services/ink-files/api/v1/list/home)" in caplog.text
    for name in ("root", "daemon"):
        with pytest.raises(web.HTTPError) as err:
            acting_user(handler("carol", ["admin:users"], name))
        assert err.value.status_code == 403
    with pytest.raises(web.HTTPError) as err:
        acting_user(handler("bob", [], "alice"))
    assert err.value.status_code == 403 and "admin:users" in err.value.log_message


@pytest.mark.parametrize(
    "defs, gecos, own_group, expected",
    [
        ("UMASK 022\nUSERGROUPS_ENAB yes\n", "Alice", True, 0o002),  # Debian's default for a private group
        ("UMASK 022\nUSERGROUPS_ENAB yes\n", "Alice", False, 0o022),
        ("UMASK 077\nUSERGROUPS_ENAB no\n", "", True, 0o077),
        ("UMASK 027\n", "Alice,,,,umask=0077", True, 0o077),  # pam_umask's GECOS field wins
        ("", "", False, 0o022),
        ("UMASK bogus\n", "umask=9", False, 0o022),
    ],
)
def test_uploads_get_the_umask_of_the_users_login(tmp_path, monkeypatch, defs, gecos, own_group, expected):
    import grp

    from ink_spawner import accounts

    path = tmp_path / "login.defs"
    path.write_text(defs)
    account = pwd.struct_passwd(("alice", "x", 5000, 5000, gecos, "/home/alice", "/bin/bash"))
    group = grp.struct_group(("alice" if own_group else "physics", "x", 5000, []))
    monkeypatch.setattr(accounts.grp, "getgrgid", lambda gid: group)
    assert accounts.login_umask(account, str(path)) == expected
