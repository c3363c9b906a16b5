"""OS images: which command a job gets on each backend, how the runner lays the image out, and
what images.yaml accepts."""

import os
import pwd
from pathlib import Path

import pytest

from ink_spawner.backends.htcondor import HTCondorBackend
from ink_spawner.backends.local import LocalBackend
from ink_spawner.backends.slurm import SlurmBackend
from ink_spawner.images import ImageError, in_image, runs_on
from ink_spawner.jobscript.in_image import account_files, bwrap_argv, image_mounts
from ink_spawner.profiles import Image, ProfileError, load_images

WRAPPER = ["/opt/ink/bin/python", "-m", "ink_spawner.jobscript", "--app", "jupyterlab"]
HOST = Image("host", "Cluster default OS")
DEBIAN = Image(
    "debian12", "Debian 12", rootfs="/cvmfs/unpacked/debian12", binds=("/cvmfs", "/data:/mnt/data")
)
CENTOS = Image("centos7", "CentOS 7", container_image="docker://centos:7")


def test_the_command_on_each_backend():
    for backend in (LocalBackend(), SlurmBackend()):
        assert in_image(HOST, backend, "/opt/ink/bin/python", WRAPPER) == WRAPPER
        assert in_image(DEBIAN, backend, "/opt/ink/bin/python", WRAPPER) == [
            "/opt/ink/bin/python",
            "-m",
            "ink_spawner.jobscript.in_image",
            "--image",
            "debian12",
            "--rootfs",
            "/cvmfs/unpacked/debian12",
            "--bind",
            "/cvmfs",
            "--bind",
            "/data:/mnt/data",
            "--",
            *WRAPPER,
        ]
        assert not runs_on(CENTOS, backend)
        with pytest.raises(ImageError, match="CentOS 7 is a container image .* does not run"):
            in_image(CENTOS, backend, "/opt/ink/bin/python", WRAPPER)
    # HTCondor runs the image itself (container universe): the command stays the wrapper
    condor = HTCondorBackend(identity="owner")
    assert in_image(DEBIAN, condor, "/opt/ink/bin/python", WRAPPER) == WRAPPER
    assert runs_on(CENTOS, condor)


def has(argv: list[str], *seq: str) -> bool:
    """``seq`` appears in ``argv`` as consecutive arguments."""
    return any(argv[i : i + len(seq)] == list(seq) for i in range(len(argv)))


def make_rootfs(root: Path) -> Path:
    for folder in ("usr/bin", "usr/lib", "etc", "home", "opt/vendor", "tmp", "var/lib"):
        (root / folder).mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "os-release").write_text('PRETTY_NAME="Test"\n')
    return root


def test_the_image_is_laid_out_read_only_around_what_is_bound_in(tmp_path):
    root = make_rootfs(tmp_path / "rootfs")
    argv = image_mounts(root, {"/home/alice", "/opt/ink", "/etc/passwd", "/etc/group"})
    assert has(argv, "--symlink", "usr/bin", "/bin")
    assert has(argv, "--ro-bind", str(root / "usr"), "/usr")  # nothing bound under it: whole
    # a folder that holds a bind is made anew, its entries bound one by one
    assert has(argv, "--dir", "/home") and has(argv, "--dir", "/opt") and has(argv, "--dir", "/etc")
    assert has(argv, "--ro-bind", str(root / "opt" / "vendor"), "/opt/vendor")
    assert has(argv, "--ro-bind", str(root / "etc" / "os-release"), "/etc/os-release")
    assert str(root / "etc" / "passwd") not in argv  # the user's own passwd is bound there
    assert "/tmp" not in argv and "/proc" not in argv  # made fresh by bwrap


def test_the_user_is_in_the_images_passwd(tmp_path):
    root = make_rootfs(tmp_path / "rootfs")
    passwd, group = account_files(root)
    me = pwd.getpwuid(os.getuid())
    lines = passwd.decode().splitlines()
    assert lines[0].startswith("root:x:0:0:") and lines[-1].startswith(f"{me.pw_name}:x:{me.pw_uid}:")
    assert group.decode().splitlines()[-1].endswith(f":{os.getgid()}:")
    argv, data = bwrap_argv(str(root), ["/data:/mnt/data"], "/opt/ink", me.pw_dir, me.pw_dir)
    assert argv[:2] == ["bwrap", "--die-with-parent"] and "--unshare-pid" in argv
    assert has(argv, "--ro-bind", "/opt/ink", "/opt/ink") and has(argv, "--bind", me.pw_dir, me.pw_dir)
    assert has(argv, "--bind-try", "/data", "/mnt/data") and has(argv, "--tmpfs", "/tmp")
    assert has(argv, "--ro-bind-data", "{passwd}", "/etc/passwd")
    assert data == [passwd, group]


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"rootfs": "relative/path"}, "images.x.rootfs"),
        ({"rootfs": "/srv/../etc"}, "images.x.rootfs"),
        ({"rootfs": "/srv/x", "container_image": "docker://a"}, "images.x.rootfs"),
        ({"binds": ["/cvmfs"]}, "images.x.binds"),  # binds of an image without a rootfs
        ({"rootfs": "/srv/x", "binds": ["cvmfs"]}, "images.x.binds"),
        ({"rootfs": "/srv/x", "binds": "/cvmfs"}, "images.x.binds"),
        ({"rootfs": "/srv/x", "apps": "jupyterlab"}, "images.x.apps"),
    ],
)
def test_images_yaml_mistakes_name_the_field(tmp_path, spec, field):
    path = tmp_path / "images.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"images": {"x": {"display_name": "X", **spec}}}))
    with pytest.raises(ProfileError) as error:
        load_images(path)
    assert field in str(error.value)
