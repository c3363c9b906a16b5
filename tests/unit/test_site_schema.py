"""The site YAML's one schema: the configuration reference is generated from it, and a wrong
key, type or choice stops `ink check` naming the file, the key and what was expected."""

from pathlib import Path

import pytest
import yaml

from ink_client.cli import main as ink
from ink_spawner.configurer import SiteConfigError, load_site_config
from ink_spawner.site_schema import SCHEMA, reference

REPO = Path(__file__).resolve().parents[2]


def test_the_reference_is_generated_from_the_schema():
    written = (REPO / "docs" / "configuration.md").read_text()
    assert written == reference(), "regenerate: python -m ink_spawner.site_schema > docs/configuration.md"
    for name in SCHEMA:
        assert f"## `{name}`" in written


def test_the_shipped_site_file_is_valid():
    load_site_config(REPO / "etc" / "ink.yaml")


@pytest.mark.parametrize(
    "site, key, expected",
    [
        ({"spawner": {"monitor_intervall": 5}}, "spawner.monitor_intervall", "monitor_interval"),
        ({"spawner": {"monitor_interval": "often"}}, "spawner.monitor_interval", "a float"),
        ({"hub": {"port": 70000}}, "hub.port", "a port number"),
        ({"hub": {"per_user_origins": "yes"}}, "hub.per_user_origins", "true or false"),
        (
            {"files": {"max_concurrent_uploads": "many"}},
            "files.max_concurrent_uploads",
            "a whole number >= 1",
        ),
        ({"files": {"max_upload": "lots"}}, "files.max_upload", "a size"),
        ({"sessions": {"idle_timeout": "soon"}}, "sessions.idle_timeout", "a duration"),
        ({"shell": {"mode": "telnet"}}, "shell.mode", "one of local, ssh"),
        ({"backend": {"type": "pbs"}}, "backend.type", "one of local, slurm, htcondor"),
        (
            {"backend": {"type": "htcondor", "options": {"identity": "kerberose"}}},
            "backend.options.identity",
            "",
        ),
        ({"credentials": {"renew_fraction": 0}}, "credentials.renew_fraction", "a number >= 0.01"),
        ({"dashbord": {}}, "dashbord", "one of accounts, api"),
        ({"jobs": "on"}, "jobs", "a mapping"),
    ],
)
def test_a_wrong_key_type_or_choice_is_named(tmp_path, capsys, site, key, expected):
    path = tmp_path / "ink.yaml"
    path.write_text(yaml.safe_dump(site))
    with pytest.raises(SiteConfigError) as e:
        load_site_config(path)
    assert e.value.field == key and expected in e.value.expected, str(e.value)
    assert ink(["--config", str(path), "check"]) == 1
    assert f"{path}: field '{key}'" in capsys.readouterr().err
