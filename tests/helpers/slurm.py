"""A real one-node Slurm cluster (Debian slurm-wlm + munge) in a temporary folder."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from .net import free_port, wait_for

MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")


def _pid(path: Path):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.started_munge = None
        # more CPUs than the machine has (slurmd accepts the configured count): a session and
        # its two Dask workers fit at once on the 2-core test machine
        self.cpus = max(4, os.cpu_count() or 1)

    def write_config(self):
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        memory_mb = int(psutil.virtual_memory().total / 1024 / 1024 * 0.5)
        cpus = self.cpus
        r = self.root
        self.conf.write_text(
            f"""ClusterName=inktest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=2
MinJobAge=60
KillWait=5
SlurmdParameters=config_overrides
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=ink Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )

    def start_munge(self):
        if MUNGE_SOCKET.exists():
            try:
                subprocess.run(["munge", "-n"], check=True, capture_output=True, timeout=5)
                return  # a munged already answers
            except (subprocess.SubprocessError, OSError):
                pass
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o400)
        for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            os.makedirs(folder, exist_ok=True)
            shutil.chown(folder, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"], check=True)
        wait_for(MUNGE_SOCKET.exists, 10, what="munged")
        self.started_munge = _pid(Path("/run/munge/munged.pid"))

    def start(self):
        self.write_config()
        self.start_munge()
        subprocess.run(["slurmctld", "-f", str(self.conf)], env=self.env, check=True)
        wait_for(lambda: self.run(["sinfo"]).returncode == 0, 30, what="slurmctld")
        subprocess.run(["slurmd", "-f", str(self.conf)], env=self.env, check=True)
        wait_for(lambda: "idle" in self.run(["sinfo", "-h", "-o", "%t"]).stdout, 60, what="slurmd idle")
        return self

    def run(self, argv, **kwargs):
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30, **kwargs)

    def squeue(self):
        out = self.run(["squeue", "-h", "-o", "%i|%u|%T|%j"]).stdout
        return [line.split("|") for line in out.splitlines() if line.strip()]

    def stop(self):
        self.run(["scancel", "--full", "--quiet", "--state=RUNNING"])
        for name in ("slurmd", "slurmctld"):
            pid = _pid(self.root / f"{name}.pid")
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    psutil.Process(pid).wait(15)
                except (psutil.Error, psutil.TimeoutExpired):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if self.started_munge:
            try:
                os.kill(self.started_munge, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
