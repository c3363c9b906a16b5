"""The site's batch systems by name: one ``backend:``, or several ``clusters:`` in one hub.

A site with one batch system writes ``backend: {type, options}``; it is the cluster
``default``. A site with several (IHEP's HTCondor HTC cluster and Slurm HPC cluster) writes

    clusters:
      htc: {title: HTC cluster, type: htcondor, options: {...}}
      hpc: {title: HPC cluster, type: slurm, options: {...}}

Each cluster is its own Backend instance with its own options (two clusters of the same type
may differ), made from the hub's configuration plus the cluster's options. The spawner, the
jobs service and the dashboard all take their backends from here, so a cluster's name means
the same thing everywhere: in the spawn menu, in a job record, in the dashboard's overview.
Allowances say who may use which (``allowances.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .allowances import Allowance, allowance_for_groups
from .backends import Backend, backend_class

DEFAULT = "default"
CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ClusterError(ValueError):
    """The job or session names a cluster that is not there (or not the caller's)."""


@dataclass(frozen=True)
class Cluster:
    name: str
    title: str
    type: str  # a backend name or import path (backends.backend_class)
    options: dict = field(default_factory=dict, hash=False)  # the backend's traitlets


def parse_clusters(data: dict) -> dict[str, Cluster]:
    """The site YAML's ``clusters:`` or ``backend:`` as clusters by name, in the file's order.
    ValueError naming the key when a cluster is malformed."""
    clusters = data.get("clusters")
    if clusters is None:
        backend = data.get("backend") or {}
        return {
            DEFAULT: Cluster(
                DEFAULT,
                str(backend.get("title") or "Cluster"),
                str(backend.get("type") or "local"),
                dict(backend.get("options") or {}),
            )
        }
    if data.get("backend"):
        raise ValueError("clusters|either backend (one cluster) or clusters (several), not both")
    if not isinstance(clusters, dict) or not clusters:
        raise ValueError("clusters|a mapping of cluster names to {title, type, options}")
    found = {}
    for name, spec in clusters.items():
        if not isinstance(name, str) or not CLUSTER_NAME.match(name):
            raise ValueError(f"clusters.{name}|a lower-case name (letters, digits, - and _)")
        if not isinstance(spec, dict):
            raise ValueError(f"clusters.{name}|a mapping with type and options")
        unknown = set(spec) - {"title", "type", "options"}
        if unknown:
            raise ValueError(f"clusters.{name}.{sorted(unknown)[0]}|one of title, type, options")
        options = spec.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError(f"clusters.{name}.options|a mapping")
        title = spec.get("title") or name
        if not isinstance(title, str):
            raise ValueError(f"clusters.{name}.title|text")
        found[name] = Cluster(name, title, str(spec.get("type") or "local"), dict(options))
    return found


def make_backend(cluster: Cluster, config, log=None) -> Backend:
    """The cluster's backend: the hub's configuration, then the cluster's own options."""
    cls = backend_class(cluster.type)
    kwargs = {"config": config, **cluster.options}
    if log is not None:
        kwargs["log"] = log
    return cls(**kwargs)


def usable_clusters(names, groups, default: Allowance) -> dict[str, Allowance]:
    """Of the clusters ``names``, those where the user (``groups``, ``default`` allowance) may
    run at least one application, each with what they may do there."""
    found = {}
    for name in names:
        allowance = allowance_for_groups(groups, default, cluster=name)
        if allowance.apps:
            found[name] = allowance
    return found


def pick_cluster(wanted, usable: dict[str, Allowance], known) -> str:
    """The cluster a request names (or the first usable one); ClusterError saying which may be
    used when it is unknown or not the caller's."""
    if not usable:
        raise ClusterError("your groups allow no cluster; ask your site's admin")
    if wanted in (None, ""):
        return next(iter(usable))
    if not isinstance(wanted, str) or wanted not in known:
        raise ClusterError(f"unknown cluster {wanted!r} (clusters: {', '.join(known)})")
    if wanted not in usable:
        raise ClusterError(f"{wanted!r} is not allowed for you (allowed: {', '.join(usable)})")
    return wanted
