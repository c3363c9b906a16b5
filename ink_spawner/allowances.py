"""What a user may run: the union of their groups' allowances (and their own).

Allowances live in hub group properties under the key ``ink``, so an admin changes them with
the hub's admin page or ``PATCH /hub/api/groups/{name}`` and the next spawn sees the change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ink_core.units import format_duration_human, format_memory, parse_duration_s, parse_memory_mb

PROPERTY_KEY = "ink"
ALL = "*"
_FIELDS = {"apps", "images", "max_cpus", "max_memory", "max_walltime", "max_gpus"}
_FIELDS |= {"max_batch_jobs", "max_batch_cpus"}  # batch jobs (and Dask workers) at once

log = logging.getLogger("ink.allowances")


class AllowanceError(ValueError):
    pass


@dataclass(frozen=True)
class Allowance:
    apps: frozenset | str = frozenset()  # names, or "*"
    images: frozenset | str = frozenset()
    max_cpus: int = 0
    max_memory_mb: int = 0
    max_walltime_s: int = 0
    max_gpus: int = 0
    # batch jobs (and Dask workers) pending or running at once; None: not limited by this one
    max_batch_jobs: int | None = None
    max_batch_cpus: int | None = None

    def allows_app(self, name: str) -> bool:
        return self.apps == ALL or name in self.apps

    def allows_image(self, name: str) -> bool:
        return self.images == ALL or name in self.images

    def union(self, other: Allowance) -> Allowance:
        return Allowance(
            apps=_union(self.apps, other.apps),
            images=_union(self.images, other.images),
            max_cpus=max(self.max_cpus, other.max_cpus),
            max_memory_mb=max(self.max_memory_mb, other.max_memory_mb),
            max_walltime_s=max(self.max_walltime_s, other.max_walltime_s),
            max_gpus=max(self.max_gpus, other.max_gpus),
            max_batch_jobs=_widest_limit(self.max_batch_jobs, other.max_batch_jobs),
            max_batch_cpus=_widest_limit(self.max_batch_cpus, other.max_batch_cpus),
        )

    def to_properties(self) -> dict:
        """The JSON stored in a group's properties (what an admin edits)."""
        return {
            "apps": self.apps if self.apps == ALL else sorted(self.apps),
            "images": self.images if self.images == ALL else sorted(self.images),
            "max_cpus": self.max_cpus,
            "max_memory": format_memory(self.max_memory_mb),
            "max_walltime": format_duration_human(self.max_walltime_s),
            "max_gpus": self.max_gpus,
            **{
                k: v
                for k, v in (("max_batch_jobs", self.max_batch_jobs), ("max_batch_cpus", self.max_batch_cpus))
                if v
            },
        }


NOTHING = Allowance()


def _widest_limit(a: int | None, b: int | None) -> int | None:
    """Of two batch limits the wider; an allowance that does not set one grants nothing here."""
    return b if a is None else a if b is None else max(a, b)


def _union(a, b):
    if a == ALL or b == ALL:
        return ALL
    return frozenset(a) | frozenset(b)


def _names(value, field_name):
    if value == ALL:
        return ALL
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AllowanceError(f"'{field_name}' must be a list of names or \"*\"")
    return frozenset(value)


def parse_allowance(data) -> Allowance:
    """Validate an allowance written in YAML or stored in group properties."""
    if data is None:
        return NOTHING
    if not isinstance(data, dict):
        raise AllowanceError("an allowance must be a mapping")
    unknown = set(data) - _FIELDS
    if unknown:
        raise AllowanceError(
            f"unknown allowance field '{sorted(unknown)[0]}' (known: {', '.join(sorted(_FIELDS))})"
        )
    try:
        cpus = data.get("max_cpus", 0)
        gpus = data.get("max_gpus", 0)
        batch_jobs = data.get("max_batch_jobs")
        batch_cpus = data.get("max_batch_cpus")
        for key, value in (("max_batch_jobs", batch_jobs), ("max_batch_cpus", batch_cpus)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise AllowanceError(f"'{key}' must be a whole number >= 1 (leave it out for no limit)")
        for key, value in (("max_cpus", cpus), ("max_gpus", gpus)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AllowanceError(f"'{key}' must be a whole number >= 0")
        return Allowance(
            apps=_names(data.get("apps"), "apps"),
            images=_names(data.get("images"), "images"),
            max_cpus=cpus,
            max_memory_mb=parse_memory_mb(data.get("max_memory", 0)),
            max_walltime_s=parse_duration_s(data.get("max_walltime", 0)),
            max_gpus=gpus,
            max_batch_jobs=batch_jobs,
            max_batch_cpus=batch_cpus,
        )
    except AllowanceError:
        raise
    except ValueError as e:
        raise AllowanceError(str(e)) from None


def allowance_for_groups(groups, default: Allowance = NOTHING) -> Allowance:
    """Union of ``default`` and every group's ``ink`` property.

    ``groups`` are hub group objects (anything with ``name`` and ``properties``). A group whose
    stored allowance is malformed grants nothing and is logged, so an admin's typo never
    widens access.
    """
    result = default
    for group in groups:
        properties = getattr(group, "properties", None) or {}
        if PROPERTY_KEY not in properties:
            continue
        try:
            result = result.union(parse_allowance(properties[PROPERTY_KEY]))
        except AllowanceError as e:
            log.warning("Ignoring group %s's allowance: %s", group.name, e)
    return result
