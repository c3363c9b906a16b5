from pathlib import Path
from types import SimpleNamespace

import pytest

from ink_spawner.allowances import AllowanceError, allowance_for_groups, parse_allowance
from ink_spawner.options import OptionsError, unpack_form, validate_options
from ink_spawner.profiles import load_profiles

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROFILES = load_profiles(FIXTURES / "profiles")
JUNO = parse_allowance(
    {
        "apps": ["jupyterlab", "rootbrowser"],
        "images": ["host", "alma9"],
        "max_cpus": 2,
        "max_memory": "4G",
        "max_walltime": "1d",
    }
)
BASIC = parse_allowance(
    {"apps": ["jupyterlab"], "images": ["host"], "max_cpus": 1, "max_memory": "2G", "max_walltime": "2h"}
)


def group(name, allowance):
    return SimpleNamespace(name=name, properties={"ink": allowance})


def refuse(options, allowance=JUNO, groups=("juno",)):
    with pytest.raises(OptionsError) as err:
        validate_options(options, PROFILES, allowance, groups)
    return err.value


def test_defaults_fill_missing_fields_within_limits():
    choice = validate_options({}, PROFILES, BASIC)
    assert choice.app.name == "jupyterlab"
    assert (choice.cpus, choice.memory_mb, choice.walltime_s, choice.gpus) == (1, 2048, 7200, 0)
    assert choice.image.name == "host" and choice.experiment is None
    assert choice.to_options() == {
        "app": "jupyterlab",
        "cpus": 1,
        "memory": "2G",
        "walltime": "2h",
        "gpus": 0,
        "image": "host",
        "experiment": "",
    }


def test_form_and_json_give_the_same_choice():
    form = unpack_form(
        {
            "app": ["jupyterlab"],
            "cpus": ["2"],
            "memory": ["3G"],
            "walltime": ["12h"],
            "image": ["alma9"],
            "experiment": ["juno"],
            "gpus": [""],
        }
    )
    as_json = {
        "app": "jupyterlab",
        "cpus": 2,
        "memory": "3G",
        "walltime": "12:00:00",
        "image": "alma9",
        "experiment": "juno",
    }
    assert validate_options(form, PROFILES, JUNO, ["juno"]) == validate_options(
        as_json, PROFILES, JUNO, ["juno"]
    )


@pytest.mark.parametrize(
    "options, field, words",
    [
        ({"cpus": 3}, "cpus", "exceeds your limit of 2"),
        ({"cpus": 0}, "cpus", "below the minimum"),
        ({"cpus": "two"}, "cpus", "whole number"),
        ({"cpus": True}, "cpus", "whole number"),
        ({"memory": "5G"}, "memory", "exceeds your limit of 4G"),
        ({"memory": "lots"}, "memory", "memory size"),
        ({"walltime": "2d"}, "walltime", "exceeds your limit of 1d"),
        ({"walltime": "10s"}, "walltime", "below the minimum"),
        ({"gpus": 1}, "gpus", "exceeds your limit of 0"),
        ({"app": "no-such-app"}, "app", "unknown application"),
        ({"image": "centos7"}, "image", "not allowed"),
        ({"image": "solaris"}, "image", "unknown image"),
        ({"experiment": "lhaaso"}, "experiment", "not a member"),
        ({"experiment": "atlas"}, "experiment", "unknown experiment"),
        ({"exec_prefix": "sudo"}, "exec_prefix", "unknown field"),
    ],
)
def test_every_limit_is_refused_naming_the_field(options, field, words):
    err = refuse(options)
    assert err.field == field
    assert words in str(err)


def test_not_a_dict_is_refused():
    assert refuse(["app"]).field == "options"


def test_forbidden_app_for_default_users():
    err = refuse({"app": "rootbrowser"}, BASIC, ())
    assert err.field == "app" and "not allowed" in str(err)


def test_union_of_two_groups_takes_the_larger_of_each():
    bigmem = {"max_memory": "12G", "images": ["centos7"]}
    union = allowance_for_groups([group("juno", JUNO.to_properties()), group("bigmem", bigmem)], BASIC)
    choice = validate_options(
        {"memory": "12G", "cpus": 2, "image": "centos7", "app": "rootbrowser"},
        PROFILES,
        union,
        ["juno", "bigmem"],
    )
    assert (choice.memory_mb, choice.cpus, choice.image.name, choice.app.name) == (
        12288,
        2,
        "centos7",
        "rootbrowser",
    )
    assert refuse({"memory": "13G"}, union).field == "memory"


def test_batch_limits_take_the_widest_set_one_and_only_whole_numbers():
    basic = parse_allowance({"max_cpus": 1})
    assert (basic.max_batch_jobs, basic.max_batch_cpus) == (None, None)  # no limit of its own
    fits = {"max_batch_jobs": 10, "max_batch_cpus": 20}
    union = allowance_for_groups([group("juno", {"max_batch_jobs": 4}), group("fits", fits)], basic)
    assert (union.max_batch_jobs, union.max_batch_cpus) == (10, 20)
    # a group that sets no batch limit does not lift another's
    only = allowance_for_groups([group("juno", {"max_batch_jobs": 4}), group("plain", {"max_cpus": 2})])
    assert (only.max_batch_jobs, only.max_batch_cpus) == (4, None)
    assert parse_allowance(only.to_properties()) == only  # what an admin sees and edits
    for bad in (0, -1, "8", True, 2.5):
        with pytest.raises(AllowanceError, match="max_batch_jobs"):
            parse_allowance({"max_batch_jobs": bad})


def test_site_ceiling_caps_any_allowance():
    everything = parse_allowance(
        {
            "apps": "*",
            "images": "*",
            "max_cpus": 1000,
            "max_memory": "10T",
            "max_walltime": "365d",
            "max_gpus": 100,
        }
    )
    assert "exceeds your limit of 64" in str(refuse({"cpus": 65}, everything))
    assert validate_options({"cpus": 64, "gpus": 8}, PROFILES, everything).gpus == 8


def test_malformed_group_allowance_grants_nothing():
    bad = group("typo", {"max_cpus": "lots", "apps": "*"})
    assert allowance_for_groups([bad], BASIC) == BASIC


def test_no_allowance_means_no_app():
    err = refuse({}, allowance_for_groups([]), ())
    assert err.field == "app" and "allow no application" in str(err)


@pytest.mark.parametrize(
    "data", [{"max_cpus": -1}, {"apps": "jupyterlab"}, {"max_memory": "x"}, {"color": "red"}, []]
)
def test_bad_allowances_are_refused(data):
    with pytest.raises(AllowanceError):
        parse_allowance(data)
