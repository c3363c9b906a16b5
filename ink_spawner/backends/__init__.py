"""Batch system backends: one module each, one interface (base.Backend).

A backend is named in the site YAML's ``backend.type``: one of INK's own (``BUILT_IN``), one a
package registers in the entry point group ``ink.backends`` (``pbs = mysite.pbs:PBSBackend``),
or the import path of a ``Backend`` subclass. ``docs/extending.md`` walks through adding one."""

from __future__ import annotations

from importlib.metadata import entry_points

from traitlets.utils.importstring import import_item

from .base import Backend, BackendError, InvalidSubmission, JobState, JobStatus, QueueStats

BUILT_IN = {
    "local": "ink_spawner.backends.local.LocalBackend",
    "slurm": "ink_spawner.backends.slurm.SlurmBackend",
    "htcondor": "ink_spawner.backends.htcondor.HTCondorBackend",
}


def registered() -> dict[str, str]:
    """Backend name -> import path: INK's own and those of installed packages."""
    found = dict(BUILT_IN)
    for point in entry_points(group="ink.backends"):
        found.setdefault(point.name, point.value.replace(":", "."))
    return found


BACKENDS = registered()


def backend_path(name: str) -> str:
    """The import path of the backend ``name`` (a registered name or an import path)."""
    return BACKENDS.get(name, name)


def backend_class(name: str) -> type[Backend]:
    """The backend class named ``name``; ValueError saying what is known when there is none."""
    path = backend_path(name)
    try:
        cls = import_item(path) if "." in path else None
    except (ImportError, AttributeError):
        cls = None
    if not isinstance(cls, type) or not issubclass(cls, Backend):
        raise ValueError(f"one of {', '.join(BACKENDS)}, or the import path of a Backend subclass")
    return cls


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "InvalidSubmission",
    "JobState",
    "JobStatus",
    "QueueStats",
    "backend_class",
    "backend_path",
]
