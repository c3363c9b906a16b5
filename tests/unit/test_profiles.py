import shutil
from pathlib import Path

import pytest

from ink_spawner.profiles import ProfileError, load_profiles

REPO = Path(__file__).resolve().parents[2]


def test_shipped_profiles_load():
    profiles = load_profiles(REPO / "profiles")
    assert "jupyterlab" in profiles.apps
    lab = profiles.apps["jupyterlab"]
    assert lab.default_url == "/lab" and lab.defaults["memory_mb"] == 4096
    assert profiles.default_image == "host"
    assert profiles.images["alma9"].opsys == "AlmaLinux9"
    assert profiles.experiments["juno"].env["INK_EXPERIMENT_NAME"] == "JUNO"
    assert profiles.ceiling.walltime_s == 7 * 86400


@pytest.fixture
def profiles_copy(tmp_path):
    target = tmp_path / "profiles"
    shutil.copytree(REPO / "profiles", target)
    return target


@pytest.mark.parametrize(
    "filename, text, field, expected",
    [
        ("apps.yaml", "apps:\n  lab:\n    description: x\n", "apps.lab.display_name", "non-empty string"),
        ("apps.yaml", "apps:\n  Lab X:\n    display_name: x\n", "apps.Lab X", "lower-case name"),
        (
            "apps.yaml",
            "apps:\n  lab:\n    display_name: x\n    defaults: {memory: lots}\n",
            "apps.lab.defaults.memory",
            "memory size",
        ),
        (
            "apps.yaml",
            "apps:\n  lab:\n    display_name: x\n    default_url: lab\n",
            "apps.lab.default_url",
            "starting with /",
        ),
        (
            "apps.yaml",
            "apps:\n  lab:\n    display_name: x\n    server_proxy: {command: code-server}\n",
            "apps.lab.server_proxy.command",
            "list of strings",
        ),
        ("apps.yaml", "apps: {}\n", "apps", "at least one application"),
        (
            "resources.yaml",
            "defaults: {cpus: 1, memory: 1G, walltime: 1h}\nlimits: {cpus: 0, memory: 1G, walltime: 1h}\n",
            "limits.cpus",
            "positive",
        ),
        (
            "resources.yaml",
            "defaults: {cpus: 1, memory: 1G}\nlimits: {cpus: 1, memory: 1G, walltime: 1h}\n",
            "defaults.walltime",
            "no default",
        ),
        (
            "resources.yaml",
            "defaults: {cpus: 1, memory: 1G, walltime: 1h, disks: 2}\nlimits: {cpus: 1, memory: 1G, walltime: 1h}\n",
            "defaults.disks",
            "one of cpus",
        ),
        (
            "images.yaml",
            "default: nope\nimages:\n  host: {display_name: Host}\n",
            "default",
            "one of the images",
        ),
        (
            "images.yaml",
            "images:\n  host: {display_name: Host, env: {'1BAD': x}}\n",
            "images.host.env",
            "variable names",
        ),
        ("experiments/juno.yaml", "name: juno\nenv: [a, b]\n", "experiment.env", "mapping"),
        ("apps.yaml", "apps: [unclosed\n", "(file)", "valid YAML"),
    ],
)
def test_bad_profile_names_file_field_and_expectation(profiles_copy, filename, text, field, expected):
    (profiles_copy / filename).write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profiles(profiles_copy)
    assert err.value.field == field
    assert err.value.path.endswith(filename)
    assert expected in err.value.expected
    assert filename.split("/")[-1] in str(err.value)


def test_duplicate_experiment_names_are_refused(profiles_copy):
    (profiles_copy / "experiments" / "juno2.yaml").write_text("name: juno\n")
    with pytest.raises(ProfileError, match="not used by another experiment"):
        load_profiles(profiles_copy)


def test_missing_file_is_reported(profiles_copy):
    (profiles_copy / "images.yaml").unlink()
    with pytest.raises(ProfileError, match="images.yaml.*readable file"):
        load_profiles(profiles_copy)
