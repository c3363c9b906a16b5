"""Inside the job: sample the job's CPU, memory and I/O and send them to INK's dashboard.

The job is what ``processes.job_processes`` says (the wrapper, its descendants, and what set-up
scripts left in its group or session). Samples go to the
dashboard service with the server's own token; failures are logged once and never stop the app.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import psutil

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


class MonitorAgent(threading.Thread):
    def __init__(self, url: str, token: str, server: str, interval: float, log):
        super().__init__(daemon=True, name="ink-monitor-agent")
        self.url, self.token, self.server, self.interval, self.log = url, token, server, interval, log
        self.sampler = Sampler()
        self.stopping = threading.Event()
        self._complained = False

    def send(self, sample: dict) -> None:
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
            self.send(self.sampler.sample())


def start_monitor(env: dict, log) -> MonitorAgent | None:
    url = env.get("INK_MONITOR_URL")
    if not url:
        return None
    agent = MonitorAgent(
        url,
        env["JUPYTERHUB_API_TOKEN"],
        env.get("JUPYTERHUB_SERVER_NAME", ""),
        float(env.get("INK_MONITOR_INTERVAL", "5")),
        log,
    )
    agent.start()
    return agent
