"""What a user may run: the union of their groups' allowances (and their own).

Allowances live in hub group properties under the key ``ink``, so an admin changes them with
the hub's admin page or ``PATCH /hub/api/groups/{name}`` and the next spawn sees the change.

A site with several clusters (``clusters:`` in the site YAML) names in an allowance the
clusters it grants (``clusters``, default all) and may set other limits on one of them
(``per_cluster: {hpc: {max_cpus: 64}}``). What a user may do on a cluster is the union of what
each of their groups grants *on that cluster* (``allowance_for_groups(..., cluster=)``), so a
group that grants no application cannot open a cluster for another group's applications.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from ink_core.units import format_duration_human, format_memory, parse_duration_s, parse_memory_mb

PROPERTY_KEY = "ink"
ALL = "*"
_FIELDS = {"apps", "images", "max_cpus", "max_memory", "max_walltime", "max_gpus"}
_FIELDS |= {"max_batch_jobs", "max_batch_cpus"}  # batch jobs (and Dask workers) at once
_LIMITS = frozenset(_FIELDS)  # what a per_cluster entry may set
_FIELDS |= {"clusters", "per_cluster"}

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
    clusters: frozenset | str = ALL  # names, or "*"
    # cluster name -> the fields this allowance sets otherwise there (attribute names)
    per_cluster: dict = field(default_factory=dict, hash=False)

    def on_cluster(self, name: str) -> Allowance:
        """What this allowance grants on the cluster ``name``: nothing when it does not name it."""
        if not (self.clusters == ALL or name in self.clusters):
            return NOTHING
        other = self.per_cluster.get(name)
        return replace(self, **other) if other else self

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
            clusters=_union(self.clusters, other.clusters),
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
            **({} if self.clusters == ALL else {"clusters": sorted(self.clusters)}),
            **(
                {"per_cluster": {name: _limits_to_properties(o) for name, o in self.per_cluster.items()}}
                if self.per_cluster
                else {}
            ),
        }


def _limits_to_properties(fields: dict) -> dict:
    """A per_cluster entry (attribute names) as the YAML writes it."""
    shown = {}
    for key, value in fields.items():
        if key == "max_memory_mb":
            shown["max_memory"] = format_memory(value)
        elif key == "max_walltime_s":
            shown["max_walltime"] = format_duration_human(value)
        elif key in ("apps", "images"):
            shown[key] = value if value == ALL else sorted(value)
        else:
            shown[key] = value
    return shown


# YAML key -> Allowance attribute, where they differ
_ATTRIBUTE = {"max_memory": "max_memory_mb", "max_walltime": "max_walltime_s"}


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
            clusters=_names(data.get("clusters", ALL), "clusters"),
            per_cluster=_per_cluster(data.get("per_cluster")),
        )
    except AllowanceError:
        raise
    except ValueError as e:
        raise AllowanceError(str(e)) from None


def _per_cluster(data) -> dict:
    """``per_cluster``: cluster name -> limits set otherwise there (checked as an allowance)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AllowanceError("'per_cluster' must map cluster names to limits")
    found = {}
    for name, limits in data.items():
        if not isinstance(limits, dict) or not isinstance(name, str):
            raise AllowanceError(f"'per_cluster.{name}' must be a mapping of limits")
        unknown = set(limits) - _LIMITS
        if unknown:
            raise AllowanceError(
                f"'per_cluster.{name}' may set {', '.join(sorted(_LIMITS))}; not '{sorted(unknown)[0]}'"
            )
        parsed = parse_allowance(limits)
        found[name] = {_ATTRIBUTE.get(key, key): getattr(parsed, _ATTRIBUTE.get(key, key)) for key in limits}
    return found


def allowance_for_groups(groups, default: Allowance = NOTHING, cluster: str | None = None) -> Allowance:
    """Union of ``default`` and every group's ``ink`` property; with ``cluster``, of what each
    grants on that cluster.

    ``groups`` are hub group objects (anything with ``name`` and ``properties``). A group whose
    stored allowance is malformed grants nothing and is logged, so an admin's typo never
    widens access.
    """

    def on(allowance: Allowance) -> Allowance:
        return allowance if cluster is None else allowance.on_cluster(cluster)

    result = on(default)
    for group in groups:
        properties = getattr(group, "properties", None) or {}
        if PROPERTY_KEY not in properties:
            continue
        try:
            result = result.union(on(parse_allowance(properties[PROPERTY_KEY])))
        except AllowanceError as e:
            log.warning("Ignoring group %s's allowance: %s", group.name, e)
    return result
