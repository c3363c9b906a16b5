"""Batch system backends: one module each, one interface (base.Backend)."""

from .base import Backend, BackendError, InvalidSubmission, JobState, JobStatus, QueueStats

BACKENDS = {
    "local": "ink_spawner.backends.local.LocalBackend",
    "slurm": "ink_spawner.backends.slurm.SlurmBackend",
    "htcondor": "ink_spawner.backends.htcondor.HTCondorBackend",
}

__all__ = ["BACKENDS", "Backend", "BackendError", "InvalidSubmission", "JobState", "JobStatus", "QueueStats"]
