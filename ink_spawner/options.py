"""One validation for the spawn form and the JSON of ``POST /hub/api/users/{name}/server``.

Fields: app, cpus, memory, walltime, gpus, image, experiment, and on a site with several
clusters, cluster. Missing fields take the app's defaults (the cluster: the first the user may
use); anything unknown, out of limits or not allowed is refused naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from ink_core.units import format_duration_human, format_memory, parse_duration_s, parse_memory_mb

from .allowances import Allowance
from .clusters import DEFAULT, ClusterError, pick_cluster
from .profiles import App, Experiment, Image, Profiles

FIELDS = ("app", "cpus", "memory", "walltime", "gpus", "image", "experiment", "cluster")


class OptionsError(ValueError):
    """A user's choice is refused; the message names the field and the limit."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True)
class Choice:
    app: App
    cpus: int
    memory_mb: int
    walltime_s: int
    gpus: int
    image: Image
    experiment: Experiment | None
    cluster: str = DEFAULT

    def spec_fields(self) -> dict:
        """The JobSpec fields this choice fixes (resources, image, experiment and their extras)."""
        return {
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "walltime_s": self.walltime_s,
            "gpus": self.gpus,
            "image": self.image.name,
            "experiment": self.experiment.name if self.experiment else "",
            "container_image": self.image.container_image or self.image.rootfs,
            "image_binds": self.image.binds,
            "opsys": self.image.opsys,
            "accounting_group": self.experiment.accounting_group if self.experiment else "",
        }

    def to_options(self) -> dict:
        """Canonical user_options (JSON) for this choice."""
        return {
            "app": self.app.name,
            "cpus": self.cpus,
            "memory": format_memory(self.memory_mb),
            "walltime": format_duration_human(self.walltime_s),
            "gpus": self.gpus,
            "image": self.image.name,
            "experiment": self.experiment.name if self.experiment else "",
            **({"cluster": self.cluster} if self.cluster != DEFAULT else {}),
        }


def unpack_form(formdata: dict) -> dict:
    """Form posts give lists of strings; keep one value per field, drop empty ones."""
    options = {}
    for key, values in formdata.items():
        value = values[0] if isinstance(values, list) and values else values
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value in ("", None, []):
            continue
        options[key] = value
    return options


def _int(field_name, value) -> int:
    if isinstance(value, bool):
        raise OptionsError(field_name, f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise OptionsError(field_name, f"expected a whole number, got {value!r}")


def _within(field_name, value, minimum, maximum, shown):
    if value < minimum:
        raise OptionsError(field_name, f"{shown(value)} is below the minimum of {shown(minimum)}")
    if value > maximum:
        raise OptionsError(field_name, f"{shown(value)} exceeds your limit of {shown(maximum)}")


def allowed_experiments(profiles: Profiles, group_names) -> list[Experiment]:
    """Experiments are hub groups: a user may pick those of their groups that have a profile."""
    return [profiles.experiments[g] for g in sorted(group_names) if g in profiles.experiments]


def validate_options(
    options, profiles: Profiles, allowance: Allowance, group_names=(), clusters=None
) -> Choice:
    """``clusters``: on a site with several, {name: the allowance there} of those the user may
    use and the site's cluster names (``usable, known``); ``allowance`` is then not used."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OptionsError("options", "expected a JSON object")
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        raise OptionsError(unknown[0], f"unknown field (known fields: {', '.join(FIELDS)})")
    cluster = DEFAULT
    if clusters is not None:
        usable, known = clusters
        try:
            cluster = pick_cluster(options.get("cluster"), usable, known)
        except ClusterError as e:
            raise OptionsError("cluster", str(e)) from None
        allowance = usable[cluster]
    elif options.get("cluster") not in (None, "", DEFAULT):
        raise OptionsError("cluster", f"this site has one cluster; unknown cluster {options['cluster']!r}")

    app_names = [name for name in profiles.apps if allowance.allows_app(name)]
    if not app_names:
        raise OptionsError("app", "your groups allow no application; ask your site's admin")
    app_name = options.get("app", app_names[0])
    if not isinstance(app_name, str) or app_name not in profiles.apps:
        raise OptionsError("app", f"unknown application {app_name!r}")
    if not allowance.allows_app(app_name):
        raise OptionsError("app", f"{app_name!r} is not allowed for you (allowed: {', '.join(app_names)})")
    app = profiles.apps[app_name]

    ceiling = profiles.ceiling

    def resource(field_name, key, parse, minimum, ceiling_value, allowed, shown):
        """The user's value (or the app's default, capped) checked against their limit."""
        maximum = min(allowed, ceiling_value)
        try:
            value = parse(options[field_name]) if field_name in options else min(app.defaults[key], maximum)
        except OptionsError:
            raise
        except ValueError as e:
            raise OptionsError(field_name, str(e)) from None
        _within(field_name, value, minimum, maximum, shown)
        return value

    cpus = resource("cpus", "cpus", lambda v: _int("cpus", v), 1, ceiling.cpus, allowance.max_cpus, str)
    gpus = resource("gpus", "gpus", lambda v: _int("gpus", v), 0, ceiling.gpus, allowance.max_gpus, str)
    memory = resource(
        "memory", "memory_mb", parse_memory_mb, 1, ceiling.memory_mb, allowance.max_memory_mb, format_memory
    )
    walltime = resource(
        "walltime",
        "walltime_s",
        parse_duration_s,
        60,
        ceiling.walltime_s,
        allowance.max_walltime_s,
        format_duration_human,
    )

    image_names = [name for name in profiles.images if allowance.allows_image(name)]
    if not image_names:
        raise OptionsError("image", "your groups allow no OS image; ask your site's admin")
    default_image = profiles.default_image if profiles.default_image in image_names else image_names[0]
    image_name = options.get("image", default_image)
    if not isinstance(image_name, str) or image_name not in profiles.images:
        raise OptionsError("image", f"unknown image {image_name!r}")
    if not allowance.allows_image(image_name):
        raise OptionsError(
            "image", f"{image_name!r} is not allowed for you (allowed: {', '.join(image_names)})"
        )

    image = profiles.images[image_name]
    if not image.serves(app.name):
        raise OptionsError(
            "image",
            f"{image.display_name} cannot run {app.display_name} (it runs {', '.join(image.apps) or 'no app'})",
        )

    experiments = {e.name: e for e in allowed_experiments(profiles, group_names)}
    experiment_name = options.get("experiment", "")
    if not isinstance(experiment_name, str):
        raise OptionsError("experiment", f"expected an experiment name, got {experiment_name!r}")
    experiment = None
    if experiment_name:
        if experiment_name not in profiles.experiments:
            raise OptionsError("experiment", f"unknown experiment {experiment_name!r}")
        if experiment_name not in experiments:
            raise OptionsError("experiment", f"you are not a member of {experiment_name!r}")
        experiment = experiments[experiment_name]

    return Choice(
        app=app,
        cpus=cpus,
        memory_mb=memory,
        walltime_s=walltime,
        gpus=gpus,
        image=profiles.images[image_name],
        experiment=experiment,
        cluster=cluster,
    )
