"""What every backend promises, checked for each of INK's own and for the walk-through's toy
backend (docs/extending.md): its registry name, the four calls INK needs, help on every
setting, and that a job id which is not one of its own is refused before anything runs (no
command is ever built from it). Each scheduler backend's parsing is also run on outputs
recorded from that scheduler (Slurm's squeue, HTCondor's job ads)."""

import asyncio
from pathlib import Path

import classad2
import pytest
from traitlets.utils.importstring import import_item

from ink_spawner.backends import BUILT_IN, Backend, BackendError, JobState, JobStatus, backend_class
from ink_spawner.backends.htcondor import status_from_ad
from ink_spawner.backends.slurm import parse_squeue

TOY = "tests.helpers.toy_backend.ToyBackend"
BACKENDS = {**BUILT_IN, "toy": TOY}
RECORDED = Path(__file__).resolve().parents[1] / "fixtures"
NOT_IDS = ["", "1; rm -rf /", "$(id)", "../../etc/passwd", "12 13", "-1", "1\n2", "12.5.x"]


@pytest.mark.parametrize("name", BACKENDS)
def test_the_calls_ink_needs_are_there(name):
    cls = backend_class(BACKENDS[name])
    assert issubclass(cls, Backend) and cls.name == name
    for call in ("submit", "status", "cancel", "queue_stats"):
        assert getattr(cls, call) is not getattr(Backend, call), f"{name} does not implement {call}"
    assert cls.array_index_env is None or isinstance(cls.array_index_env, str)
    for key, trait in cls.class_traits(config=True).items():
        assert (trait.help or "").strip(), f"{name}.{key} has no help text (it is the reference)"


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("job_id", NOT_IDS)
def test_a_job_id_not_its_own_is_refused_before_anything_runs(name, job_id, monkeypatch):
    backend = import_item(BACKENDS[name])()

    async def no_commands(*args, **kwargs):  # nothing may reach a scheduler or a shell
        raise AssertionError(f"{name} ran a command for job id {job_id!r}")

    monkeypatch.setattr("ink_spawner.backends.base.run_command", no_commands)
    for module in ("slurm", "local", "htcondor"):
        monkeypatch.setattr(f"ink_spawner.backends.{module}.run_command", no_commands, raising=False)
    monkeypatch.setattr(backend, "_call", no_commands, raising=False)
    for call in (backend.cancel, backend.status):
        with pytest.raises(BackendError):
            asyncio.run(call(job_id))


def recorded_statuses(name) -> list[JobStatus]:
    if name == "slurm":
        return [
            status
            for status, _ in parse_squeue((RECORDED / "slurm" / "squeue_mixed.txt").read_text()).values()
        ]
    if name == "htcondor":
        return [
            status_from_ad(ad) for ad in classad2.parseAds((RECORDED / "htcondor" / "queue.ads").read_text())
        ]
    return []


@pytest.mark.parametrize("name", ["slurm", "htcondor"])
def test_recorded_scheduler_outputs_become_statuses(name):
    statuses = recorded_statuses(name)
    assert len(statuses) >= 5  # queued, held, ended (and running, where the recording has one)
    assert all(isinstance(s, JobStatus) and isinstance(s.state, JobState) for s in statuses)
    assert JobState.PENDING in {s.state for s in statuses} and len({s.state for s in statuses}) >= 3
    running = [s for s in statuses if s.state == JobState.RUNNING]
    assert all(s.host for s in running), running
