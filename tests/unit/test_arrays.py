"""Job arrays: the spec parser shared by the API, the CLI and the runner, and how an array's
tasks are read back from their own records."""

import pytest

from ink_core.arrays import MAX_TASKS, ArrayError, parse_array, with_index
from ink_services.jobs.service import task_rows


@pytest.mark.parametrize(
    "text, indices, throttle, normal",
    [
        ("0-99%10", list(range(100)), 10, "0-99%10"),
        ("1,5,7-9", [1, 5, 7, 8, 9], 0, "1,5,7-9"),
        ("0-20:5", [0, 5, 10, 15, 20], 0, "0,5,10,15,20"),
        ("0-9,5-12%3", list(range(13)), 3, "0-12%3"),
    ],
)
def test_slurm_style_specs(text, indices, throttle, normal):
    spec = parse_array(text)
    assert (list(spec.indices), spec.throttle, str(spec)) == (indices, throttle, normal)
    assert parse_array(str(spec)) == spec  # what sbatch --array gets parses back the same


@pytest.mark.parametrize("bad", ["", "a", "5-1", f"0-{MAX_TASKS}", "1%0", "0-5:0", "-1", "1;rm", 7])
def test_bad_specs_say_array(bad):
    with pytest.raises(ArrayError, match="^array: "):
        parse_array(bad)


def test_bounds_and_index_substitution():
    assert parse_array("0-99").bounded(4).at_once == 4
    assert parse_array("0-99%2").bounded(4).at_once == 2  # the tighter of the two
    assert parse_array("3").at_once == 1
    assert with_index(["fit.py", "--part", "{index}", "out-{index}.root"], 7) == [
        "fit.py",
        "--part",
        "7",
        "out-7.root",
    ]


def test_tasks_come_from_their_records_and_only_known_indices_count():
    notes = [
        {"index": 0, "exit_code": 0, "host": "n1"},
        {"index": 1, "exit_code": 3, "host": "n1"},
        {"index": 2, "host": "n2"},  # started, not ended
        {"index": 99, "exit_code": 0},  # not in the array: written by hand, ignored
        {"index": "3", "exit_code": 0},  # not a number: ignored
    ]
    running = task_rows((0, 1, 2, 3), notes, ended=False, cancelled=False)
    assert [t["state"] for t in running] == ["completed", "failed", "running", "pending"]
    assert running[2]["node"] == "n2"
    after_cancel = task_rows((0, 1, 2, 3), notes, ended=True, cancelled=True)
    assert [t["state"] for t in after_cancel] == ["completed", "failed", "cancelled", "cancelled"]
