from pathlib import Path

import pytest
import yaml
from traitlets.config import Config, PyFileConfigLoader

from ink_services.cli import main as ink
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
    assert [route for route, _ in c.JupyterHub.extra_handlers] == ["/api/ink/job-ready"]
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
    assert [w.split(":", 2)[1].split()[0] for w in owner] == ["FILESYSTEM_DOMAIN", "identity", "identity"]
    assert "QUEUE_SUPER_USER_MAY_IMPERSONATE" in owner[2]
    fallback = HTCondorBackend(identity="kerberos").site_warnings(
        {**default, "SEC_CLIENT_AUTHENTICATION_METHODS": "KERBEROS, FS"}
    )
    assert "falls back after KERBEROS" in fallback[-1]
    good = {
        "FULL_HOSTNAME": "hub.ihep.ac.cn",
        "FILESYSTEM_DOMAIN": "ihep.ac.cn",
        "SEC_CLIENT_AUTHENTICATION_METHODS": "KERBEROS",
    }
    assert HTCondorBackend(identity="kerberos").site_warnings(good) == []
    assert HTCondorBackend(identity="kerberos", shared_filesystem=False).site_warnings(default | good) == []
