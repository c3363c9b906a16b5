"""Slurm output parsing against outputs recorded from the real Slurm 22.05 test cluster."""

from pathlib import Path

import pytest

from ink_spawner.backends.base import BackendError, JobState
from ink_spawner.backends.slurm import SlurmBackend, batch_script, parse_sbatch, parse_squeue
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
