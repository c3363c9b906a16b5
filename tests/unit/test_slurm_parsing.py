"""Slurm output parsing against outputs recorded from the real Slurm 22.05 test cluster."""

import datetime
from pathlib import Path

import pytest

from ink_spawner.backends.base import BackendError, JobState
from ink_spawner.backends.slurm import (
    SlurmBackend,
    batch_script,
    parse_nodes,
    parse_pending,
    parse_sbatch,
    parse_squeue,
)
from ink_spawner.backends.slurm_reasons import explain_reason
from tests.helpers.specs import job_spec

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"


def test_squeue_states_reasons_nodes_and_app():
    jobs = parse_squeue((RECORDED / "squeue_mixed.txt").read_text())
    assert (
        jobs["1"][0].state == JobState.DONE
        and jobs["1"][0].reason == "COMPLETED"
        and jobs["1"][0].host == "vm"
    )
    assert jobs["2"][0].state == JobState.DONE and jobs["2"][0].reason == "FAILED (BadConstraints)"
    assert jobs["4"][0].state == JobState.PENDING and jobs["4"][0].reason == "Resources"
    assert jobs["5"][0].reason == "Priority"
    assert jobs["3"][0].state == JobState.HELD and jobs["3"][1] == "jupyterlab"


def test_sbatch_parsable():
    assert parse_sbatch((RECORDED / "sbatch_parsable.txt").read_text()) == "1"
    assert parse_sbatch("42;cluster\n") == "42"
    with pytest.raises(BackendError):
        parse_sbatch((RECORDED / "sbatch_mem_refused.stderr").read_text())


def spec(**kw):
    return job_spec(**{"walltime_s": 86400 + 30 * 60, "env": {"TOKEN": "a'b; rm -rf /"}, **kw})


def test_sbatch_arguments_from_jobspec():
    backend = SlurmBackend(partition="ink", account="hep")
    args = backend.sbatch_args(spec())
    for expected in [
        "--cpus-per-task=2",
        "--mem=6144M",
        "--time=1-00:30:00",
        "--gres=gpu:1",
        "--partition=ink",
        "--account=hep",
        "--export=NONE",
        "--comment=ink:app=jupyterlab",
        "--output=/home/alice/.ink/logs/x.log",
        "--chdir=/home/alice",
    ]:
        assert expected in args
    assert "--account=juno-acct" in backend.sbatch_args(spec(accounting_group="juno-acct"))


def test_batch_script_quotes_values():
    script = batch_script(spec())
    assert "export TOKEN='a'\"'\"'b; rm -rf /'" in script
    assert script.rstrip().endswith("exec /opt/ink/bin/python -m ink_spawner.jobscript --app jupyterlab")


def test_unsafe_usernames_are_refused():
    with pytest.raises(ValueError):
        spec(username="alice; rm -rf /")
    with pytest.raises(ValueError):
        spec(username="../root")


@pytest.mark.asyncio
async def test_job_ids_are_checked_before_any_command():
    backend = SlurmBackend()
    for bad in ["1; rm -rf /", "-1", "", "1 2"]:
        with pytest.raises(BackendError):
            await backend.status(bad)
        with pytest.raises(BackendError):
            await backend.cancel(bad)


def test_pending_jobs_in_order_with_reason_start_and_place():
    """``squeue --states=PENDING --sort=-p,i --format '%i|%P|%r|%S'``: places count per partition."""
    output = (
        "17|ink|Resources|2026-12-01T22:10:00\n"
        "18|ink|Priority|N/A\n"
        "21|gpu|QOSMaxCpuPerUserLimit|N/A\n"
        "19|ink|ReqNodeNotAvail, UnavailableNodes:node3|N/A\n"
    )
    pending = parse_pending(output)
    first = pending["17"]
    assert (first.position, first.waiting, first.where) == (1, 3, "partition ink")
    assert first.expected_start == datetime.datetime(2026, 12, 1, 22, 10).timestamp()
    assert "no free CPUs, memory or GPUs" in first.sentence and "(Slurm: Resources)" in first.sentence
    assert (pending["18"].position, pending["18"].expected_start) == (2, None)
    assert (pending["19"].position, pending["21"].position, pending["21"].waiting) == (3, 1, 1)
    assert "unavailable" in pending["19"].sentence and "(Slurm: ReqNodeNotAvail)" in pending["19"].sentence
    text = first.text(now=first.expected_start - 25 * 60)
    assert text.endswith(
        "expected to start around 22:10 (in 25 min); number 1 of 3 waiting jobs in partition ink"
    )


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("QOSMaxCpuPerUserLimit", "you already use as much CPUs as your QOS allows"),
        ("AssocGrpMemLimit", "your account's group already uses all the memory it may"),
        ("QOSGrpCPUMinutesLimit", "all the CPU time it may use"),
        ("PartitionTimeLimit", "it will not start by itself"),
        ("SomethingNew", "Slurm gives the reason SomethingNew"),
        ("None", "Slurm has not considered it yet"),
    ],
)
def test_slurm_reasons_in_plain_words(reason, words):
    assert words in explain_reason(reason)


def test_the_node_list_of_sinfo():
    assert parse_nodes("2|12052\n64|515000+\nbad line\n") == [(2, 12052), (64, 515000)]
