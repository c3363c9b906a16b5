"""The web shell's pieces: settings, preferences, and the commands it runs (argument lists built
from checked names, never a shell string from the request)."""

import os
import pwd

import pytest

from ink_core.shell_settings import ShellSettings
from ink_services.shell import terminals
from ink_services.shell.prefs import DEFAULTS, PrefsError, PrefsStore, validate
from ink_services.shell.terminals import ShellRefused
from ink_spawner.configurer import SiteConfigError, load_site_config


def me() -> pwd.struct_passwd:
    return pwd.getpwuid(os.geteuid())


@pytest.mark.parametrize(
    "body, field",
    [
        ({"font_size": 7}, "font_size"),
        ({"font_size": 33}, "font_size"),
        ({"font_size": "14"}, "font_size"),
        ({"font_size": True}, "font_size"),
        ({"theme": "neon"}, "theme"),
        ({"colour": "red"}, "colour"),
        ([], "JSON object"),
    ],
)
def test_bad_preferences_are_refused_naming_the_field(body, field):
    with pytest.raises(PrefsError, match=field):
        validate(body)


def test_preferences_are_kept_per_user(tmp_path):
    store = PrefsStore(tmp_path)
    assert store.get("alice") == DEFAULTS
    assert store.update("alice", {"font_size": 18}) == {"font_size": 18, "theme": "dark"}
    assert store.update("alice", {"theme": "solarized"}) == {"font_size": 18, "theme": "solarized"}
    assert PrefsStore(tmp_path).get("alice") == {"font_size": 18, "theme": "solarized"}
    assert store.get("bob") == DEFAULTS
    assert oct((tmp_path / "alice.json").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(PrefsError):
        store.update("../alice", {"theme": "dark"})
    (tmp_path / "carol.json").write_text("{not json")
    assert store.get("carol") == DEFAULTS  # a damaged file falls back, it does not break the page


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "telnet"}, "mode"),
        ({"mode": "ssh"}, "at least one login host"),
        ({"mode": "ssh", "hosts": ["login01; rm -rf /"]}, "not a host name"),
        ({"mode": "ssh", "hosts": ["-oProxyCommand=x"]}, "not a host name"),
        ({"ssh_options": ["ProxyCommand sh -c x"]}, "Name=value"),
    ],
)
def test_bad_shell_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        ShellSettings(**settings)


def test_site_config_reports_shell_problems(tmp_path):
    site = tmp_path / "ink.yaml"
    site.write_text("shell: {mode: ssh}\n")
    with pytest.raises(SiteConfigError, match="shell.*login host"):
        load_site_config(site)
    site.write_text("shell: {hostz: [a]}\n")
    with pytest.raises(SiteConfigError, match="shell.hostz': expected one of enabled, hosts"):
        load_site_config(site)


@pytest.mark.parametrize("name", ["../root", "alice; id", "-l", "", "Alice", None])
def test_user_names_are_checked_before_any_command(name):
    with pytest.raises(ShellRefused):
        terminals.account(name)


def test_local_command_runs_as_the_user():
    user = me()
    argv = terminals.local_command(ShellSettings(), user)
    if os.geteuid() == 0:
        assert argv == ["runuser", "-l", user.pw_name]
        kept = terminals.local_command(ShellSettings(keep_sessions=True), user)
        assert kept == ["runuser", "-l", user.pw_name, "-c", "tmux new-session -A -s ink-web"]
    else:
        assert argv[-1] == "-l"


def test_ssh_command_uses_the_session_ticket_and_options():
    user = me()
    settings = ShellSettings(mode="ssh", hosts=["login01.example.org"], ssh_options=["Port=2222"])
    argv = terminals.ssh_command(settings, user, "/tmp/krb5cc_x")
    assert "KRB5CCNAME=FILE:/tmp/krb5cc_x" in argv
    ssh = argv[argv.index("ssh") :]
    assert ssh[-2:] == ["--", "login01.example.org"]
    assert ["-l", user.pw_name] == ssh[2:4] and "GSSAPIDelegateCredentials=yes" in ssh and "Port=2222" in ssh
    if os.geteuid() == 0:
        assert argv[:4] == ["runuser", "-u", user.pw_name, "--"]


def test_ssh_mode_needs_a_ticket(tmp_path):
    settings = ShellSettings(mode="ssh", hosts=["login01"], credentials_store=str(tmp_path))
    with pytest.raises(ShellRefused, match="no Kerberos ticket"):
        terminals.session_ticket(settings, me())
    (tmp_path / f"{me().pw_name}.ccache").write_bytes(b"ticket")
    copy = terminals.session_ticket(settings, me())
    try:
        assert open(copy, "rb").read() == b"ticket"
        assert oct(os.stat(copy).st_mode & 0o777) == "0o600"
    finally:
        os.unlink(copy)


def test_a_terminal_never_gets_the_service_environment(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret")
    env = terminals.UserTermManager(ShellSettings()).make_term_env(width=100, height=30)
    assert "JUPYTERHUB_API_TOKEN" not in env and env["COLUMNS"] == "100" and env["TERM"] == "xterm-256color"


def test_shell_limits_are_per_user_not_a_global_pool(monkeypatch):
    """30 users with 8 shells each: each user meets only his own limit."""
    from types import SimpleNamespace

    import terminado.management

    manager = terminals.UserTermManager(ShellSettings(mode="local", max_per_user=8))
    counter = iter(range(10**6))

    class FakePty(SimpleNamespace):  # terminado's own new_terminal (and its checks) run
        def __init__(self, argv, env, cwd):
            fd = next(counter)
            super().__init__(ptyproc=SimpleNamespace(pid=fd, fd=fd), clients=[])

    monkeypatch.setattr(terminado.management, "PtyWithClients", FakePty)
    monkeypatch.setattr(manager, "start_reading", lambda t: manager.ptys_by_fd.__setitem__(t.ptyproc.fd, t))
    me = pwd.getpwuid(os.geteuid())
    monkeypatch.setattr(
        terminals,
        "account",
        lambda name: SimpleNamespace(pw_name=name, pw_uid=me.pw_uid, pw_dir="/", pw_shell="/bin/sh"),
    )
    for user in range(30):
        for _ in range(8):
            manager.open_for(f"user{user}")
    with pytest.raises(ShellRefused, match="8 shells open"):
        manager.open_for("user3")
    manager.open_for("user30")  # a newcomer still gets a shell
