"""JobSpec: everything a backend needs to start one job, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from ink_core.names import USERNAME  # noqa: E402  (re-exported: the hub side names it here)

from .accounts import check_not_system


@dataclass
class JobSpec:
    username: str
    name: str  # a job name the scheduler shows, e.g. ink-alice-jupyterlab
    app: str
    cpus: int
    memory_mb: int
    walltime_s: int
    gpus: int
    image: str
    experiment: str
    # the command the job runs (the wrapper); argument list, never a shell string
    command: list[str]
    # the job's environment (includes the server's token: never log it)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    log_path: str = ""
    # backend-specific extras chosen by the profiles (container image, OpSysAndVer, account)
    container_image: str = ""  # an unpacked image (rootfs) or a registry's, for container schedulers
    image_binds: tuple = ()  # host folders the image gets inside (beside the home and INK's)
    opsys: str = ""
    accounting_group: str = ""
    # a native job array (ink_core.arrays, normalized: "0,1,2%2"); "" for one job
    array: str = ""

    def __post_init__(self):
        if not USERNAME.match(self.username):
            raise ValueError(f"refusing to submit for an unsafe username {self.username!r}")
        check_not_system(self.username, "submit a job")  # SystemAccountRefused
        if not self.command or not all(isinstance(a, str) for a in self.command):
            raise ValueError("command must be a non-empty list of strings")

    def public(self) -> dict:
        """What may be logged or shown: everything but the environment."""
        return {k: v for k, v in self.__dict__.items() if k != "env"}
