"""Start and stop the test schedd (tests/helpers/test_schedd.py) as its own process."""

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


def slot(number: int) -> dict:
    return {
        "Name": f"slot{number}@{NODE}",
        "Machine": NODE,
        "Cpus": 2,
        "Memory": 8192,
        "OpSysAndVer": "AlmaLinux9",
        "HasContainer": True,
        # the pool's START expression for INK slots (etc/htcondor/ink-slots.conf)
        "Requirements": "TARGET.InkApp =!= undefined",
    }


SLOTS = [slot(1), slot(2)]


class TestScheddProcess:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        slots = self.workdir / "slots.json"
        slots.write_text(json.dumps(SLOTS))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = open(self.workdir / "schedd.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.test_schedd",
                "--port",
                str(self.port),
                "--slots",
                str(slots),
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
        from .test_schedd import TestScheddClient

        return TestScheddClient(self.url)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.log.close()
