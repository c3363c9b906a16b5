"""Inside the job: sample the job's CPU, memory and I/O and send them to INK's dashboard.

The job is what ``processes.job_processes`` says (the wrapper, its descendants, and what set-up
scripts left in its group or session). Samples go to the
dashboard service with the server's own token; failures are logged once and never stop the app.
The session's usage so far (peak memory, mean and peak CPU) is also kept in ``INK_USAGE``, a
mode-600 file beside the job's log that the hub reads when the session ends (its history and
the spawn menu's right-sizing hints).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import urllib.request

import psutil

from ink_core import jobsettings

from .processes import job_processes


class Sampler:
    """CPU as a percentage of one core (summed over the job), resident memory, I/O bytes."""

    def __init__(self):
        self._cpu_seen: dict[int, float] = {}
        self._last = time.monotonic()

    def sample(self) -> dict:
        now = time.monotonic()
        elapsed = max(now - self._last, 1e-3)
        self._last = now
        cpu_delta = rss = read = write = 0
        seen = {}
        for proc in job_processes(include_self=True):
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    total = times.user + times.system
                    rss += proc.memory_info().rss
                    try:
                        io = proc.io_counters()
                        read += io.read_bytes
                        write += io.write_bytes
                    except (psutil.AccessDenied, AttributeError):
                        pass
            except psutil.Error:
                continue
            seen[proc.pid] = total
            cpu_delta += total - self._cpu_seen.get(proc.pid, total)
        self._cpu_seen = seen
        return {
            "t": time.time(),
            "cpu_percent": round(100 * cpu_delta / elapsed, 1),
            "rss_bytes": rss,
            "read_bytes": read,
            "write_bytes": write,
            "processes": len(seen),
        }


class Usage:
    """The session's usage so far, summed from its samples."""

    def __init__(self, path: str):
        self.path = path
        self.totals = {"samples": 0, "peak_rss_bytes": 0, "cpu_percent_sum": 0.0, "peak_cpu_percent": 0.0}

    def add(self, sample: dict) -> None:
        t = self.totals
        t["samples"] += 1
        t["peak_rss_bytes"] = max(t["peak_rss_bytes"], sample["rss_bytes"])
        t["cpu_percent_sum"] += sample["cpu_percent"]
        t["peak_cpu_percent"] = max(t["peak_cpu_percent"], sample["cpu_percent"])

    def save(self) -> None:
        """Atomically: the hub never reads half a file."""
        folder = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".usage-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.totals, f)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


class MonitorAgent(threading.Thread):
    def __init__(self, url: str, token: str, server: str, interval: float, log, usage_path: str = ""):
        super().__init__(daemon=True, name="ink-monitor-agent")
        self.url, self.token, self.server, self.interval, self.log = url, token, server, interval, log
        self.sampler = Sampler()
        self.usage = Usage(usage_path) if usage_path else None
        self.stopping = threading.Event()
        self._complained = False
        self._usage_complained = False

    def keep(self, sample: dict) -> None:
        if self.usage is None:
            return
        self.usage.add(sample)
        try:
            self.usage.save()
        except OSError as e:
            if not self._usage_complained:
                self.log(f"cannot keep the session's usage in {self.usage.path} ({e})")
                self._usage_complained = True

    def send(self, sample: dict) -> None:
        if not self.url:
            return
        body = json.dumps({"server": self.server, **sample}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                self._complained = False
        except OSError as e:
            if not self._complained:
                self.log(f"cannot send resource samples to INK ({e}); will keep trying")
                self._complained = True

    def run(self):
        self.sampler.sample()  # a baseline for the CPU deltas
        while not self.stopping.wait(self.interval):
            sample = self.sampler.sample()
            self.keep(sample)
            self.send(sample)


def start_monitor(env: dict, log) -> MonitorAgent | None:
    settings = jobsettings.from_env(env)
    url, usage_path = settings.monitor_url, settings.usage
    if not url and not usage_path:
        return None
    agent = MonitorAgent(
        url,
        env.get("JUPYTERHUB_API_TOKEN", ""),
        env.get("JUPYTERHUB_SERVER_NAME", ""),
        settings.monitor_interval,
        log,
        usage_path,
    )
    agent.start()
    return agent
