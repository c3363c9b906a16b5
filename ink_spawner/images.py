"""The OS image a session or a batch job runs in, on every backend.

An image of ``profiles/images.yaml`` is the host's OS (none of the keys below), an unpacked root
filesystem (``rootfs``: the form sites keep on CVMFS), or a registry's image
(``container_image``). A backend whose scheduler runs containers (HTCondor's container universe,
``Backend.runs_containers``) gets the image in ``JobSpec.container_image`` and runs the job in
it itself; on the others (local, Slurm) the job's command is INK's runner
(``jobscript/in_image.py``: bubblewrap, as the user), which starts the wrapper and the app inside
the image. A registry's image needs a scheduler that runs containers: elsewhere it is not
offered, and a request for it is refused with the reason."""

from __future__ import annotations

from .backends import Backend
from .profiles import Image


class ImageError(ValueError):
    """The image cannot run on this cluster (a 400 with the sentence)."""


def runs_on(image: Image, backend: Backend) -> bool:
    """Whether ``backend``'s jobs can run in ``image``."""
    return not image.container_image or backend.runs_containers


def check_runs_on(image: Image, backend: Backend) -> None:
    if not runs_on(image, backend):
        raise ImageError(
            f"image: {image.display_name} is a container image ({image.container_image}), which the "
            f"{backend.name} backend does not run; your site can offer it as an unpacked image (rootfs)"
        )


def in_image(image: Image, backend: Backend, job_python: str, command: list[str]) -> list[str]:
    """The job's command: as it is, or through INK's runner inside the image's rootfs."""
    check_runs_on(image, backend)
    if not image.rootfs or backend.runs_containers:
        return list(command)
    runner = [
        job_python,
        "-m",
        "ink_spawner.jobscript.in_image",
        "--image",
        image.name,
        "--rootfs",
        image.rootfs,
    ]
    for bind in image.binds:
        runner += ["--bind", bind]
    return [*runner, "--", *command]
