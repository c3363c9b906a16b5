from pathlib import Path

import pytest
import yaml
from traitlets.config import Config, PyFileConfigLoader

from ink_client.cli import main as ink
from ink_spawner import origins
from ink_spawner.configurer import SiteConfigError, apply_site_config, check, load_site_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, data) -> Path:
    path = tmp_path / "ink.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_default_config_is_valid():
    assert check(REPO / "etc" / "ink.yaml") == []


def test_site_yaml_maps_onto_traitlets(tmp_path):
    path = write(
        tmp_path,
        {
            "hub": {"port": 8123},
            "authenticator": {"type": "pam", "admin_users": ["root2"], "allow_all": True},
            "backend": {
                "type": "slurm",
                "options": {"partition": "ink", "slurm_conf": "/etc/slurm/slurm.conf"},
            },
            "experiments": {
                "juno": {"members": ["alice"], "allowance": {"apps": ["jupyterlab"], "max_cpus": 4}}
            },
            "users": {"carol": {"allowance": {"max_memory": "64G"}}},
            "paths": {"profiles": str(REPO / "profiles"), "state": str(tmp_path / "state")},
        },
    )
    c = Config()
    apply_site_config(c, path)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123/"
    assert c.JupyterHub.spawner_class == "ink_spawner.spawner.InkSpawner"
    assert c.InkSpawner.backend == "slurm"
    assert c.SlurmBackend.partition == "ink"
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.Authenticator.admin_users == {"root2"}
    assert c.JupyterHub.cleanup_servers is False
    groups = c.JupyterHub.load_groups
    assert groups["juno"]["users"] == ["alice"]
    assert groups["juno"]["properties"]["ink"]["max_cpus"] == 4
    assert groups["ink-user-carol"]["properties"]["ink"]["max_memory"] == "64G"
    assert [route for route, _ in c.JupyterHub.extra_handlers] == [
        "/api/ink/job-ready",
        "/api/ink/users/([^/]+)/extend",
        "/api/ink/users/([^/]+)/servers/([^/]+)/extend",
        "/api/ink/users/([^/]+)/history",
        "/ink/statistics",
        "/ink/history",
    ]
    assert "sqlite:///" in c.JupyterHub.db_url and str(tmp_path / "state") in c.JupyterHub.db_url
    # per-user origins: users on *.localhost, the hub and INK's services only on localhost
    assert c.JupyterHub.subdomain_host == "http://localhost:8123"
    assert c.JupyterHub.public_url == "http://localhost:8123/"
    assert c.JupyterHub.hub_routespec == "localhost/"
    hook = c.JupyterHub.subdomain_hook
    assert hook("alice", "localhost", "user") == "alice.localhost"
    assert hook("inkt_alice", "localhost", "user").endswith(".localhost") and "_" not in hook(
        "inkt_alice", "localhost", "user"
    )
    assert hook("ink-files", "localhost", "service") == "localhost"
    assert c.InkSpawner.monitor_url == "http://localhost:8123/services/ink-dashboard/api/samples"


@pytest.mark.parametrize(
    "hub, subdomain_host, public_url, user_url",
    [
        ({}, "http://localhost:8000", "http://localhost:8000/", "http://alice.localhost:8000/user/alice/"),
        (
            {"ip": "0.0.0.0", "public_url": "https://ink.example.org"},
            "https://ink.example.org",
            "https://ink.example.org/",
            "https://alice.ink.example.org/user/alice/",
        ),
        (
            {"base_url": "/ink/", "public_url": "https://ink.example.org:8443/ink/"},
            "https://ink.example.org:8443",
            "https://ink.example.org:8443/ink/",
            "https://alice.ink.example.org:8443/ink/user/alice/",
        ),
        (
            {"ip": "10.1.2.3", "per_user_origins": False},
            "",
            "http://10.1.2.3:8000/",
            "http://10.1.2.3:8000/user/alice/",
        ),
    ],
)
def test_where_users_reach_the_hub_and_their_servers(hub, subdomain_host, public_url, user_url):
    assert origins.subdomain_host(hub) == subdomain_host
    assert origins.public_url(hub) == public_url
    assert origins.user_url(hub, "alice") == user_url


@pytest.mark.parametrize(
    "hub, field, words",
    [
        ({"ip": "0.0.0.0"}, "hub.public_url", "not an IP address"),
        ({"public_url": "https://10.0.0.1/"}, "hub.public_url", "wildcard DNS"),
        ({"public_url": "ftp://ink.example.org/"}, "hub.public_url", "http:// or https://"),
        ({"public_url": "https://ink.example.org/jhub/"}, "hub.public_url", "base_url '/'"),
        ({"per_user_origins": "yes"}, "hub.per_user_origins", "true or false"),
        ({"subdomain_host": "x"}, "hub.subdomain_host", "public_url"),
    ],
)
def test_hubs_that_cannot_have_per_user_origins_stop_check(tmp_path, hub, field, words):
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, {"hub": hub}))
    assert err.value.field == field and words in err.value.expected


def test_one_origin_is_a_warning(tmp_path, capsys):
    path = write(
        tmp_path, {"hub": {"per_user_origins": False}, "paths": {"profiles": str(REPO / "profiles")}}
    )
    assert ink(["--config", str(path), "check"]) == 0
    assert "per_user_origins is off" in capsys.readouterr().err
    c = Config()
    apply_site_config(c, path)
    assert c.JupyterHub.subdomain_host == "" and "hub_routespec" not in c.JupyterHub


def test_config_file_is_loadable_with_load_subconfig(tmp_path, monkeypatch):
    site = write(
        tmp_path,
        {
            "paths": {"profiles": str(REPO / "profiles"), "state": str(tmp_path / "s")},
            "backend": {"type": "local"},
        },
    )
    monkeypatch.setenv("INK_CONFIG", str(site))
    outer = tmp_path / "site_config.py"
    outer.write_text(
        f"load_subconfig({str(REPO / 'jupyterhub_config.py')!r})\nc.InkSpawner.job_ip = '10.0.0.1'\n"
    )
    config = PyFileConfigLoader(outer.name, path=str(tmp_path)).load_config()
    assert config.InkSpawner.backend == "local"
    assert config.InkSpawner.job_ip == "10.0.0.1"


def test_non_root_embedded_default_generates_an_admin_password(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        {
            "authenticator": {"type": "shared-password", "admin_users": ["boss"]},
            "paths": {"profiles": str(REPO / "profiles"), "state": str(tmp_path / "st")},
        },
    )
    c = Config()
    apply_site_config(c, path)
    password = c.SharedPasswordAuthenticator.admin_password
    assert len(password) >= 32
    assert (tmp_path / "st" / "admin-password").stat().st_mode & 0o777 == 0o600
    c2 = Config()
    apply_site_config(c2, path)
    assert c2.SharedPasswordAuthenticator.admin_password == password, "kept, not regenerated"


@pytest.mark.parametrize(
    "data, field",
    [
        ({"backend": {"type": "pbs"}}, "backend.type"),
        ({"authenticator": {"type": "dummy"}}, "authenticator.type"),
        ({"hub": {"port": "eighty"}}, "hub.port"),
        ({"experiments": {"juno": {"allowance": {"max_cpus": -2}}}}, "experiments.juno.allowance"),
        ({"experiments": {"juno": {"members": "alice"}}}, "experiments.juno.members"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_site_config_names_the_field(tmp_path, data, field):
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, data))
    assert err.value.field == field


def test_ink_check_reports_problems_and_exits_non_zero(tmp_path, capsys):
    good = write(tmp_path, {"paths": {"profiles": str(REPO / "profiles")}})
    assert ink(["--config", str(good), "check"]) == 0
    bad = write(
        tmp_path, {"default_allowance": {"apps": ["notepad"]}, "paths": {"profiles": str(REPO / "profiles")}}
    )
    assert ink(["--config", str(bad), "check"]) == 1
    assert "unknown app 'notepad'" in capsys.readouterr().err
    broken = tmp_path / "profiles"
    broken.mkdir()
    (broken / "resources.yaml").write_text("defaults: {cpus: x}\n")
    bad = write(tmp_path, {"paths": {"profiles": str(broken)}})
    assert ink(["--config", str(bad), "check"]) == 1
    assert "resources.yaml: field 'defaults.cpus'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "section, expected",
    [
        ({"spawner": {"monitor_intervall": 5}}, "spawner.monitor_intervall"),
        ({"backend": {"type": "htcondor", "options": {"identity": "kerberose"}}}, "backend.options.identity"),
        ({"backend": {"type": "htcondor", "options": {"identiti": "owner"}}}, "backend.options.identiti"),
        ({"backend": {"type": "slurm", "options": {"partition": 5}}}, "backend.options.partition"),
        ({"credentials": {"enabled": True, "renew_fracton": 0.5}}, "credentials.renew_fracton"),
        ({"authenticator": {"admin_user": ["alice"]}}, "authenticator.admin_user"),
        ({"dashboard": {"refesh": 5}}, "dashboard.refesh"),
        ({"jobs": {"enable": False}}, "jobs.enable"),
        ({"api": {"rate": 5}}, "api.rate"),
        ({"paths": {"profile": "/x"}}, "paths.profile"),
        ({"backend": {"type": "local", "option": {}}}, "backend.option"),
        ({"hub": {"public_ulr": "https://x.org/"}}, "hub.public_ulr"),
    ],
)
def test_mistyped_keys_and_values_stop_check_naming_them(tmp_path, section, expected, capsys):
    path = write(tmp_path, {"paths": {"profiles": str(REPO / "profiles")}, **section})
    problems = check(path)
    assert len(problems) == 1 and f"field '{expected}'" in problems[0], problems
    assert ink(["--config", str(path), "check"]) == 1
    assert expected in capsys.readouterr().err


def test_spawner_settings_all_take_effect(tmp_path):
    spawner = {"monitor_interval": 2, "status_interval": 3, "start_timeout": 99, "log_dir": "/x/{username}"}
    path = write(
        tmp_path,
        {"spawner": spawner, "paths": {"profiles": str(REPO / "profiles"), "state": str(tmp_path / "s")}},
    )
    c = Config()
    apply_site_config(c, path)
    assert {key: c.InkSpawner[key] for key in spawner} == spawner


def test_htcondor_pool_warnings_from_the_hub_hosts_config():
    from ink_spawner.backends.htcondor import HTCondorBackend

    default = {"FULL_HOSTNAME": "hub.ihep.ac.cn", "FILESYSTEM_DOMAIN": "hub.ihep.ac.cn"}
    owner = HTCondorBackend(identity="owner").site_warnings(
        {**default, "QUEUE_SUPER_USERS": "condor", "QUEUE_SUPER_USER_MAY_IMPERSONATE": ""}
    )
    assert [w.split(":", 2)[1].split()[0] for w in owner] == [
        "FILESYSTEM_DOMAIN",
        "PROTECTED_JOB_ATTRS",
        "identity",
        "identity",
    ]
    assert "InkWalltime, PeriodicRemove" in owner[1] and "QUEUE_SUPER_USER_MAY_IMPERSONATE" in owner[3]
    fallback = HTCondorBackend(identity="kerberos").site_warnings(
        {**default, "SEC_CLIENT_AUTHENTICATION_METHODS": "KERBEROS, FS"}
    )
    assert "falls back after KERBEROS" in fallback[-1]
    good = {
        "FULL_HOSTNAME": "hub.ihep.ac.cn",
        "FILESYSTEM_DOMAIN": "ihep.ac.cn",
        "SEC_CLIENT_AUTHENTICATION_METHODS": "KERBEROS",
        "PROTECTED_JOB_ATTRS": "InkWalltime PeriodicRemove",
    }
    assert HTCondorBackend(identity="kerberos").site_warnings(good) == []
    # a site's own walltime attribute must be protected as well
    (site_attribute,) = HTCondorBackend(walltime_attribute="MaxWallTime").site_warnings(good)
    assert "PROTECTED_JOB_ATTRS lacks MaxWallTime" in site_attribute
    assert HTCondorBackend(identity="kerberos", shared_filesystem=False).site_warnings(default | good) == []


def test_sessions_section_runs_the_idle_culler_with_per_app_timeouts(tmp_path):
    import datetime
    import json
    import subprocess
    import sys

    from ink_spawner import culling

    state = str(tmp_path / "state")
    sessions = {
        "idle_timeout": "2h",
        "idle_timeout_per_app": {"desktop": "4h", "sshnode": 0},
        "activity_interval": "30s",
        "named_servers": 2,
    }
    c = Config()
    apply_site_config(c, write(tmp_path, {"sessions": sessions, "paths": {"state": state}}))
    (culler,) = [s for s in c.JupyterHub.services if s["name"] == "ink-idle-culler"]
    assert "--timeout=7200" in culler["command"] and "--cull-every=60" in culler["command"]
    assert json.loads(culler["environment"][culling.ENV]) == {
        "default": 7200,
        "apps": {"desktop": 14400, "sshnode": 0},
    }
    assert c.JupyterHub.last_activity_interval == 30 and c.JupyterHub.named_server_limit_per_user == 2
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "ink-idle-culler"]
    assert "delete:servers" in role["scopes"] and "admin:users" not in role["scopes"]

    # the culler itself loads INK's arbiter from its --config file
    config = next(a.split("=", 1)[1] for a in culler["command"] if a.startswith("--config="))
    probe = (
        "from traitlets.config import PyFileConfigLoader; import sys; "
        "c = PyFileConfigLoader(sys.argv[1]).load_config(); "
        "print(c.IdleCuller.cull_arbiter_hook.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", probe, config], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ink_spawner.culling"

    # the arbiter: each server's app from its user_options, 0 never culls
    env = {culling.ENV: culler["environment"][culling.ENV]}
    default, per_app = culling.load_timeouts(env)

    def culled(app, hours):
        server = {"user_options": {"app": app}}
        return hours * 3600 >= culling.idle_limit(server, default, per_app) > 0

    assert culled("jupyterlab", 2) and not culled("jupyterlab", 1.9)
    assert culled("desktop", 4) and not culled("desktop", 3)
    assert not culled("sshnode", 1000)
    inactive = datetime.timedelta(hours=5)
    # no INK_IDLE_TIMEOUTS in this process: nothing is ever culled by default
    assert (
        culling.arbiter(inactive=inactive, inactive_limit=1, server={"user_options": {"app": "desktop"}})
        is False
    )

    # no timeout at all: no culler
    c = Config()
    apply_site_config(c, write(tmp_path, {"paths": {"state": state}}))
    assert not [s for s in c.JupyterHub.services if s["name"] == "ink-idle-culler"]
    assert "allow_named_servers" not in c.JupyterHub


@pytest.mark.parametrize(
    ("sessions", "field"),
    [
        ({"idle_timeout": "soon"}, "sessions.idle_timeout"),
        ({"idle_timeout_per_app": ["desktop"]}, "sessions.idle_timeout_per_app"),
        ({"idle_timeout_per_app": {"desktop": "later"}}, "sessions.idle_timeout_per_app.desktop"),
        ({"named_servers": -1}, "sessions.named_servers"),
        ({"idle_timeut": "2h"}, "sessions.idle_timeut"),
    ],
)
def test_bad_sessions_settings_name_the_field(tmp_path, sessions, field):
    with pytest.raises(SiteConfigError) as e:
        load_site_config(write(tmp_path, {"sessions": sessions}))
    assert e.value.field == field


def test_sso_group_claim_manages_groups_instead_of_load_groups(tmp_path):
    sso = {
        "type": "generic-oauth",
        "groups_claim": "groups",
        "allowed_groups": ["juno"],
        "admin_groups": ["ink-admins"],
        "options": {"client_id": "ink", "username_claim": "preferred_username"},
    }
    data = {
        "authenticator": sso,
        "experiments": {"juno": {"members": ["alice"], "allowance": {"max_cpus": 4}}},
        "paths": {"profiles": str(REPO / "profiles"), "state": str(tmp_path / "state")},
    }
    c = Config()
    apply_site_config(c, write(tmp_path, data))
    oauth = c.GenericOAuthenticator
    assert oauth.manage_groups is True and oauth.auth_state_groups_key == "oauth_user.groups"
    assert oauth.allowed_groups == {"juno"} and oauth.admin_groups == {"ink-admins"}
    assert "load_groups" not in c.JupyterHub  # JupyterHub refuses both at once
    assert callable(c.Authenticator.post_auth_hook)


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "pam", "groups_claim": "groups"},  # a claim needs an OpenID Connect provider
        {"type": "generic-oauth", "allowed_groups": ["juno"]},  # groups of which claim?
    ],
)
def test_sso_group_settings_need_generic_oauth_and_a_claim(tmp_path, auth):
    with pytest.raises(SiteConfigError, match="authenticator.groups_claim"):
        load_site_config(write(tmp_path, {"authenticator": auth}))
