"""Start and stop the stand-in HTCondor pool (tests/helpers/minischedd.py) as its own process."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .net import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
NODE = socket.gethostname().split(".")[0]
DOMAIN = "ink.test"  # the pool's shared FILESYSTEM_DOMAIN (etc/htcondor/ink-pool.conf)


def slot(number: int, **attrs) -> dict:
    """A partitionable-slot-like ad with what a startd advertises and INK's START policy."""
    return {
        "Name": f"slot{number}@{NODE}",
        "Machine": NODE,
        "Arch": "X86_64",
        "OpSys": "LINUX",
        "OpSysAndVer": "AlmaLinux9",
        "Cpus": 2,
        "Memory": 8192,
        "Disk": 20 * 1024 * 1024,  # KiB
        "GPUs": 0,
        "FileSystemDomain": DOMAIN,
        "UidDomain": DOMAIN,
        "HasFileTransfer": True,
        "HasContainer": True,
        # the pool's START expression for INK slots (etc/htcondor/ink-slots.conf)
        "Requirements": "TARGET.InkApp =!= undefined",
        **attrs,
    }


def pool_config(**settings) -> dict:
    """The schedd of the tests: the hub (root) is a queue super user that may impersonate the
    test users (owner mode); other settings as the test says."""
    return {
        "slots": [slot(1), slot(2)],
        "super_users": ["root"],
        "may_impersonate": "inkt_.*",
        "auth_methods": ["FS"],
        "filesystem_domain": DOMAIN,
        # etc/htcondor/ink-schedd.conf: owners may not lengthen their own walltime
        "protected_attrs": ["InkWalltime", "PeriodicRemove"],
        **settings,
    }


class MiniPoolProcess:
    def __init__(self, workdir: Path, **settings):
        self.workdir = workdir
        self.settings = pool_config(**settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        config = self.workdir / "pool.json"
        config.write_text(json.dumps(self.settings))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = open(self.workdir / "schedd.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.minischedd",
                "--port",
                str(self.port),
                "--pool",
                str(config),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1), 20, what="test schedd"
        )
        return self

    def client(self):
        from .minischedd import MiniScheddClient

        return MiniScheddClient(self.url)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.log.close()
