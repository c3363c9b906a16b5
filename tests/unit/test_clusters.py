"""Several clusters in one hub: the site YAML's clusters, allowances per cluster, the spawn
choice, the configuration each part gets, the dashboard's figures over all clusters."""

from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from ink_services.dashboard.service import all_clusters
from ink_spawner.allowances import AllowanceError, allowance_for_groups, parse_allowance
from ink_spawner.clusters import DEFAULT, usable_clusters
from ink_spawner.configurer import SiteConfigError, apply_site_config, load_site_config, site_backends
from ink_spawner.options import OptionsError, validate_options
from ink_spawner.profiles import load_profiles
from tests.conftest import site_config

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "tests" / "fixtures" / "profiles"


class Group:
    def __init__(self, name, allowance):
        self.name, self.properties = name, {"ink": allowance}


IHEP = {
    "clusters": {
        "htc": {"title": "HTC cluster", "type": "htcondor", "options": {"identity": "owner"}},
        "hpc": {"title": "HPC cluster", "type": "slurm", "options": {"partition": "gpu"}},
    },
    # the test site's default allowance (tests/conftest.py), on the HTC cluster only
    "default_allowance": {**site_config({})["default_allowance"], "clusters": ["htc"]},
    "experiments": {
        "juno": {
            "members": ["alice"],
            "allowance": {
                "apps": ["jupyterlab", "vscode"],
                "images": ["host"],
                "max_cpus": 4,
                "max_memory": "8G",
                "max_walltime": "1d",
                "per_cluster": {"hpc": {"max_cpus": 64, "max_walltime": "3d"}},
            },
        },
        # grants no application: it must not open a cluster for the default allowance's apps
        "klist": {"members": ["bob"], "allowance": {}},
    },
}


def site_file(tmp_path, data) -> Path:
    path = tmp_path / "ink.yaml"
    data = {**data, "paths": {"profiles": str(PROFILES), "state": str(tmp_path / "state")}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def groups_of(site, user):
    return [
        Group(name, spec.get("allowance") or {})
        for name, spec in site["experiments"].items()
        if user in spec["members"]
    ]


def test_what_each_group_grants_is_counted_per_cluster():
    default = parse_allowance(IHEP["default_allowance"])
    alice, bob = groups_of(IHEP, "alice"), groups_of(IHEP, "bob")
    assert list(usable_clusters(["htc", "hpc"], bob, default)) == ["htc"]
    usable = usable_clusters(["htc", "hpc"], alice, default)
    assert list(usable) == ["htc", "hpc"]
    # on HPC juno's own limits there; on HTC juno's and the default's union
    assert (usable["hpc"].max_cpus, usable["hpc"].max_walltime_s) == (64, 3 * 86400)
    assert usable["hpc"].apps == {"jupyterlab", "vscode"}
    assert (usable["htc"].max_cpus, usable["htc"].max_memory_mb) == (4, 8192)
    # without a cluster (a site with one), per_cluster does not apply
    assert allowance_for_groups(alice, default).max_cpus == 4


def test_per_cluster_round_trips_through_group_properties():
    allowance = parse_allowance(IHEP["experiments"]["juno"]["allowance"] | {"clusters": ["hpc"]})
    stored = allowance.to_properties()
    assert stored["clusters"] == ["hpc"]
    assert stored["per_cluster"] == {"hpc": {"max_cpus": 64, "max_walltime": "3d"}}
    assert parse_allowance(stored) == allowance
    assert "clusters" not in parse_allowance({"apps": ["jupyterlab"]}).to_properties()


@pytest.mark.parametrize(
    "allowance, words",
    [
        ({"per_cluster": {"hpc": {"clusters": ["htc"]}}}, "'per_cluster.hpc' may set"),
        ({"per_cluster": {"hpc": {"max_cpus": -1}}}, "'max_cpus' must be a whole number >= 0"),
        ({"per_cluster": ["hpc"]}, "'per_cluster' must map cluster names to limits"),
        ({"clusters": "hpc"}, "'clusters' must be a list of names"),
    ],
)
def test_malformed_cluster_allowances_are_refused(allowance, words):
    with pytest.raises(AllowanceError, match=words):
        parse_allowance(allowance)


def test_the_spawn_choice_takes_a_cluster_and_its_limits():
    profiles = load_profiles(PROFILES)
    default = parse_allowance(IHEP["default_allowance"])
    alice = groups_of(IHEP, "alice")
    clusters = (usable_clusters(["htc", "hpc"], alice, default), ["htc", "hpc"])
    choice = validate_options({"cluster": "hpc", "cpus": 32}, profiles, default, ["juno"], clusters)
    assert (choice.cluster, choice.cpus) == ("hpc", 32)
    assert choice.to_options()["cluster"] == "hpc"
    assert validate_options({}, profiles, default, ["juno"], clusters).cluster == "htc"  # the first
    with pytest.raises(OptionsError, match="cpus: 32 exceeds your limit of 4"):
        validate_options({"cluster": "htc", "cpus": 32}, profiles, default, ["juno"], clusters)
    bob = (usable_clusters(["htc", "hpc"], groups_of(IHEP, "bob"), default), ["htc", "hpc"])
    with pytest.raises(OptionsError, match=r"cluster: 'hpc' is not allowed for you \(allowed: htc\)"):
        validate_options({"cluster": "hpc"}, profiles, default, [], bob)
    with pytest.raises(OptionsError, match="cluster: your groups allow no cluster"):
        validate_options({}, profiles, default, [], ({}, ["htc", "hpc"]))
    # a site with one cluster: no cluster field in the canonical options, no other cluster accepted
    one = validate_options({}, profiles, default, [])
    assert one.cluster == DEFAULT and "cluster" not in one.to_options()
    with pytest.raises(OptionsError, match="this site has one cluster"):
        validate_options({"cluster": "hpc"}, profiles, default, [])


def test_each_cluster_is_its_own_backend_with_its_own_options(tmp_path, monkeypatch):
    path = site_file(tmp_path, IHEP)
    c = Config()
    site = apply_site_config(c, path)
    assert list(site.clusters) == ["htc", "hpc"]
    assert c.InkSpawner.clusters["hpc"] == {
        "title": "HPC cluster",
        "type": "slurm",
        "options": {"partition": "gpu"},
    }
    assert c.InkSpawner.clusters["htc"]["options"]["identity"] == "owner"
    assert "partition" not in c.SlurmBackend  # not the class's: two Slurm clusters may differ
    monkeypatch.setenv("INK_CONFIG", str(path))
    _, backends = site_backends()
    assert {name: b.name for name, b in backends.items()} == {"htc": "htcondor", "hpc": "slurm"}
    assert backends["hpc"].partition == "gpu"


def test_one_backend_is_the_cluster_default(tmp_path, monkeypatch):
    path = site_file(tmp_path, {"backend": {"type": "slurm", "options": {"partition": "ink"}}})
    c = Config()
    apply_site_config(c, path)
    assert c.SlurmBackend.partition == "ink" and "clusters" not in c.InkSpawner
    monkeypatch.setenv("INK_CONFIG", str(path))
    _, backends = site_backends()
    assert list(backends) == [DEFAULT] and backends[DEFAULT].partition == "ink"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"backend": {"type": "slurm"}}, "clusters"),  # both at once
        ({"clusters": {"HPC!": {"type": "slurm"}}}, "clusters.HPC!"),
        ({"clusters": {"hpc": {"type": "pbs"}}}, "clusters.hpc.type"),
        (
            {"clusters": {"hpc": {"type": "slurm", "options": {"partiton": "x"}}}},
            "clusters.hpc.options.partiton",
        ),
        ({"clusters": {"hpc": {"type": "slurm", "queue": "x"}}}, "clusters.hpc.queue"),
        ({"default_allowance": {"clusters": ["hpcc"]}}, "default_allowance"),
        (
            {"experiments": {"juno": {"members": [], "allowance": {"per_cluster": {"gpu": {}}}}}},
            "experiments.juno",
        ),
    ],
)
def test_cluster_mistakes_stop_the_hub_naming_the_key(tmp_path, change, field):
    with pytest.raises(SiteConfigError) as error:
        load_site_config(site_file(tmp_path, {**IHEP, **change}))
    assert error.value.field.startswith(field), str(error.value)


def test_the_dashboard_adds_the_clusters_up():
    def summary(name, running, queued, lab, age_s, error=""):
        per_app = {"jupyterlab": {"running": lab}}
        return {"name": name, "title": name.upper(), "running": running, "queued": queued} | {
            "per_app": per_app,
            "age_s": age_s,
            "error": error,
        }

    htc = summary("htc", 3, 1, 2, 1.0)
    hpc = summary("hpc", 5, 0, 1, 4.0, "squeue timed out")
    total = all_clusters([htc, hpc])
    assert (total["running"], total["queued"], total["age_s"]) == (8, 1, 4.0)
    assert total["per_app"] == {"jupyterlab": {"running": 3}}
    assert total["error"] == "HPC: squeue timed out"
    assert all_clusters([{**hpc, "running": None}, htc])["running"] is None  # not yet known
    assert all_clusters([htc]) is htc
