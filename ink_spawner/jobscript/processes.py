"""What belongs to this job, seen from inside it (the wrapper's process): the one definition
the monitor samples and the wrapper ends on stop.

A job is the wrapper's descendants plus every other process of the same user in the wrapper's
process group or session: a set-up script's double-forked daemon is reparented to init, so a
tree walk misses it, but it keeps the group and the session. The wrapper's ancestors (a batch
script) are not part of it.
"""

from __future__ import annotations

import os

import psutil


def job_processes(include_self: bool = False) -> list[psutil.Process]:
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True)}
    if include_self:
        found[me.pid] = me
    skip = {me.pid, *(p.pid for p in me.parents())}
    uid = os.getuid()
    group, session = os.getpgid(0), os.getsid(0)
    for proc in psutil.process_iter(["uids"]):
        if proc.pid in skip or proc.pid in found:
            continue
        try:
            if not proc.info["uids"] or proc.info["uids"].real != uid:
                continue
            if os.getpgid(proc.pid) == group or (session != 1 and os.getsid(proc.pid) == session):
                found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    return list(found.values())
