"""Load and validate profiles/*.yaml into dataclasses.

A bad file stops the hub with one sentence naming the file, the field and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ink_core.units import parse_duration_s, parse_memory_mb

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProfileError(ValueError):
    """A profile file is wrong: which file, which field, what was expected."""

    def __init__(self, path, field_name: str, expected: str):
        self.path = str(path)
        self.field = field_name
        self.expected = expected
        super().__init__(f"{self.path}: field '{field_name}': expected {expected}")


@dataclass(frozen=True)
class App:
    name: str
    display_name: str
    description: str = ""
    icon: str = ""
    default_url: str = "/lab"
    # extra arguments for jupyterhub-singleuser (JupyterLab needs none)
    args: tuple[str, ...] = ()
    # a jupyter-server-proxy entry (ServerProxy.servers[name]) the job serves, or None
    server_proxy: dict | None = None
    # resources this app starts with when the user does not choose
    defaults: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Resources:
    cpus: int
    memory_mb: int
    walltime_s: int
    gpus: int = 0


@dataclass(frozen=True)
class Image:
    name: str
    display_name: str
    description: str = ""
    setup: str = ""  # a shell script sourced before the app starts
    container_image: str = ""  # batch systems that run containers (HTCondor container_image)
    opsys: str = ""  # HTCondor OpSysAndVer requirement instead of a container
    env: dict = field(default_factory=dict)
    # an unpacked root filesystem (the form sites keep on CVMFS): the job runs inside it on
    # every backend (ink_spawner/images.py), as the user, with the home, INK's environment and
    # ``binds`` bound in
    rootfs: str = ""
    binds: tuple = ()  # more host folders inside the image: "/cvmfs", "/data:/data"
    apps: tuple | None = None  # the apps it can serve (None: every app)

    def serves(self, app: str) -> bool:
        return self.apps is None or app in self.apps


@dataclass(frozen=True)
class Experiment:
    name: str
    display_name: str
    description: str = ""
    setup: str = ""
    kernels_path: str = ""
    env: dict = field(default_factory=dict)
    accounting_group: str = ""


@dataclass(frozen=True)
class Profiles:
    apps: dict[str, App]
    defaults: Resources
    ceiling: Resources  # site-wide maximum, whatever a group allows
    presets: dict[str, Resources]
    images: dict[str, Image]
    default_image: str
    experiments: dict[str, Experiment]
    source: str = ""


def _mapping(path, data, field_name) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(path, field_name, "a mapping (key: value)")
    return data


def _string(path, data, key, prefix, required=False, default="") -> str:
    value = data.get(key, default)
    if value is None:
        value = default
    if required and not value:
        raise ProfileError(path, f"{prefix}.{key}", "a non-empty string")
    if not isinstance(value, str):
        raise ProfileError(path, f"{prefix}.{key}", "a string")
    return value


def _env(path, data, prefix) -> dict:
    env = _mapping(path, data.get("env"), f"{prefix}.env")
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            raise ProfileError(path, f"{prefix}.env", f"variable names like FOO_BAR, got {key!r}")
        if not isinstance(value, (str, int, float)):
            raise ProfileError(path, f"{prefix}.env.{key}", "a string value")
    return {k: str(v) for k, v in env.items()}


def _check_name(path, name, field_name):
    if not isinstance(name, str) or not NAME.match(name):
        raise ProfileError(
            path, field_name, f"a lower-case name of letters, digits, '-', '_', '.'; got {name!r}"
        )


def _resources(path, data, prefix, base: Resources | None = None) -> Resources:
    data = _mapping(path, data, prefix)
    unknown = set(data) - {"cpus", "memory", "walltime", "gpus"}
    if unknown:
        raise ProfileError(path, f"{prefix}.{sorted(unknown)[0]}", "one of cpus, memory, walltime, gpus")
    values = {}
    for key, parse, attr in (
        ("cpus", int, "cpus"),
        ("memory", parse_memory_mb, "memory_mb"),
        ("walltime", parse_duration_s, "walltime_s"),
        ("gpus", int, "gpus"),
    ):
        if key in data:
            raw = data[key]
            try:
                if key in ("cpus", "gpus") and (isinstance(raw, bool) or not isinstance(raw, int)):
                    raise ValueError
                value = parse(raw)
            except (TypeError, ValueError):
                expected = {
                    "cpus": "a whole number of cores",
                    "gpus": "a whole number of GPUs",
                    "memory": "a memory size such as 6G",
                    "walltime": "a duration such as 24h or 1-00:00:00",
                }[key]
                raise ProfileError(path, f"{prefix}.{key}", expected) from None
            if value < 0 or (key == "cpus" and value < 1):
                raise ProfileError(path, f"{prefix}.{key}", "a positive value")
            values[attr] = value
        elif base is not None:
            values[attr] = getattr(base, attr)
        elif key == "gpus":
            values[attr] = 0
        else:
            raise ProfileError(path, f"{prefix}.{key}", "a value (it has no default)")
    return Resources(**values)


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ProfileError(path, "(file)", f"valid YAML ({e})") from None
    except OSError as e:
        raise ProfileError(path, "(file)", f"a readable file ({e.strerror})") from None
    return _mapping(path, data, "(top level)")


# an app's keys; a server_proxy entry's keys (jupyter-server-proxy's, those INK's apps use)
APP_KEYS = {"display_name", "description", "icon", "default_url", "args", "server_proxy", "defaults"}
SERVER_PROXY_KEYS = {
    "command",
    "timeout",
    "unix_socket",
    "launcher_entry",
    "absolute_url",
    "environment",
    "new_browser_tab",
}


def _unknown(path, spec: dict, known: set, prefix: str) -> None:
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ProfileError(path, f"{prefix}.{unknown[0]}", f"one of {', '.join(sorted(known))}")


def load_apps(path: Path, defaults: Resources) -> dict[str, App]:
    """The apps: data, every key checked. An app its job serves through jupyter-server-proxy
    (``server_proxy``) is reached at ``/<name>/``: its ``default_url`` is that, unless the site
    names a page below it."""
    data = _load_yaml(path)
    apps = {}
    for name, spec in _mapping(path, data.get("apps"), "apps").items():
        prefix = f"apps.{name}"
        _check_name(path, name, prefix)
        spec = _mapping(path, spec, prefix)
        _unknown(path, spec, APP_KEYS, prefix)
        args = spec.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ProfileError(path, f"{prefix}.args", "a list of strings")
        proxy = spec.get("server_proxy")
        if proxy is not None:
            proxy = _mapping(path, proxy, f"{prefix}.server_proxy")
            _unknown(path, proxy, SERVER_PROXY_KEYS, f"{prefix}.server_proxy")
            command = proxy.get("command")
            if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
                raise ProfileError(path, f"{prefix}.server_proxy.command", "a non-empty list of strings")
        default_url = _string(path, spec, "default_url", prefix, default=f"/{name}/" if proxy else "/lab")
        if not default_url.startswith("/") or ".." in default_url:
            raise ProfileError(path, f"{prefix}.default_url", "a path starting with / (e.g. /lab)")
        if proxy is not None and not default_url.startswith(f"/{name}/"):
            raise ProfileError(
                path, f"{prefix}.default_url", f"/{name}/ or a page below it (the job serves the app there)"
            )
        res = _resources(path, spec.get("defaults"), f"{prefix}.defaults", base=defaults)
        apps[name] = App(
            name=name,
            display_name=_string(path, spec, "display_name", prefix, required=True),
            description=_string(path, spec, "description", prefix),
            icon=_string(path, spec, "icon", prefix),
            default_url=default_url,
            args=tuple(args),
            server_proxy=proxy,
            defaults={
                "cpus": res.cpus,
                "memory_mb": res.memory_mb,
                "walltime_s": res.walltime_s,
                "gpus": res.gpus,
            },
        )
    if not apps:
        raise ProfileError(path, "apps", "at least one application")
    return apps


def _absolute(path, data, key, prefix) -> str:
    value = _string(path, data, key, prefix)
    if value and (not value.startswith("/") or "/../" in f"{value}/" or "\x00" in value):
        raise ProfileError(path, f"{prefix}.{key}", "an absolute path without '..'")
    return value.rstrip("/") if value != "/" else value


def _binds(path, data, prefix) -> tuple:
    value = data.get("binds") or []
    if not isinstance(value, list):
        raise ProfileError(path, f"{prefix}.binds", "a list of folders, e.g. [/cvmfs, /data:/mnt/data]")
    binds = []
    for bind in value:
        parts = bind.split(":") if isinstance(bind, str) else []
        if not 1 <= len(parts) <= 2 or not all(
            p.startswith("/") and "/../" not in f"{p}/" and p != "/" for p in parts
        ):
            raise ProfileError(
                path, f"{prefix}.binds", f"absolute folders (SOURCE or SOURCE:TARGET), got {bind!r}"
            )
        binds.append(bind)
    return tuple(binds)


def _app_names(path, data, prefix) -> tuple | None:
    value = data.get("apps")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(path, f"{prefix}.apps", "a list of app names")
    return tuple(value)


def load_images(path: Path) -> tuple[dict[str, Image], str]:
    data = _load_yaml(path)
    images = {}
    for name, spec in _mapping(path, data.get("images"), "images").items():
        prefix = f"images.{name}"
        _check_name(path, name, prefix)
        spec = _mapping(path, spec, prefix)
        images[name] = Image(
            name=name,
            display_name=_string(path, spec, "display_name", prefix, required=True),
            description=_string(path, spec, "description", prefix),
            setup=_string(path, spec, "setup", prefix),
            container_image=_string(path, spec, "container_image", prefix),
            opsys=_string(path, spec, "opsys", prefix),
            env=_env(path, spec, prefix),
            rootfs=_absolute(path, spec, "rootfs", prefix),
            binds=_binds(path, spec, prefix),
            apps=_app_names(path, spec, prefix),
        )
        if images[name].rootfs and images[name].container_image:
            raise ProfileError(path, f"{prefix}.rootfs", "either rootfs or container_image, not both")
        if images[name].binds and not images[name].rootfs:
            raise ProfileError(path, f"{prefix}.binds", "binds of an image with a rootfs")
    if not images:
        raise ProfileError(path, "images", "at least one image")
    default = data.get("default", next(iter(images)))
    if default not in images:
        raise ProfileError(path, "default", f"one of the images {sorted(images)}")
    return images, default


def load_experiment(path: Path) -> Experiment:
    data = _load_yaml(path)
    name = data.get("name", path.stem)
    _check_name(path, name, "name")
    return Experiment(
        name=name,
        display_name=_string(path, data, "display_name", "experiment", default=name) or name,
        description=_string(path, data, "description", "experiment"),
        setup=_string(path, data, "setup", "experiment"),
        kernels_path=_string(path, data, "kernels_path", "experiment"),
        env=_env(path, data, "experiment"),
        accounting_group=_string(path, data, "accounting_group", "experiment"),
    )


def load_profiles(directory) -> Profiles:
    """Read apps.yaml, resources.yaml, images.yaml and experiments/*.yaml from one folder."""
    directory = Path(directory)
    res_path = directory / "resources.yaml"
    res = _load_yaml(res_path)
    defaults = _resources(res_path, res.get("defaults"), "defaults")
    ceiling = _resources(res_path, res.get("limits"), "limits")
    for attr in ("cpus", "memory_mb", "walltime_s", "gpus"):
        if getattr(defaults, attr) > getattr(ceiling, attr):
            raise ProfileError(res_path, f"defaults.{attr.split('_')[0]}", "a value within limits")
    presets = {}
    for name, spec in _mapping(res_path, res.get("presets"), "presets").items():
        _check_name(res_path, name, f"presets.{name}")
        presets[name] = _resources(res_path, spec, f"presets.{name}", base=defaults)
    apps = load_apps(directory / "apps.yaml", defaults)
    images, default_image = load_images(directory / "images.yaml")
    for image in images.values():
        unknown = sorted(set(image.apps or ()) - set(apps))
        if unknown:
            raise ProfileError(
                directory / "images.yaml",
                f"images.{image.name}.apps",
                f"app names of apps.yaml, not {unknown[0]!r}",
            )
    experiments = {}
    exp_dir = directory / "experiments"
    if exp_dir.is_dir():
        for path in sorted(exp_dir.glob("*.yaml")):
            experiment = load_experiment(path)
            if experiment.name in experiments:
                raise ProfileError(path, "name", f"a name not used by another experiment ({experiment.name})")
            experiments[experiment.name] = experiment
    return Profiles(
        apps=apps,
        defaults=defaults,
        ceiling=ceiling,
        presets=presets,
        images=images,
        default_image=default_image,
        experiments=experiments,
        source=str(directory),
    )
