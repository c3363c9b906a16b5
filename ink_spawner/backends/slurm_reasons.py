"""Slurm's pending reasons (squeue's %r) in words a physicist reads.

The names are Slurm's (``man squeue``, JOB REASON CODES); a reason not listed here is shown as
Slurm gives it. Sentences say what the job waits for and, where it can never start by itself,
that too.
"""

from __future__ import annotations

NEVER = "it will not start by itself: stop it and ask for less, or ask your site"

REASONS = {
    "Priority": "jobs with a higher priority wait ahead of it",
    "Resources": "the nodes it can run on have no free CPUs, memory or GPUs for it right now",
    "Dependency": "it waits for another job to end",
    "DependencyNeverSatisfied": f"the job it depends on failed; {NEVER}",
    "BeginTime": "it was asked to start later",
    "ReqNodeNotAvail": "the nodes it can run on are unavailable right now (down, drained or reserved)",
    "NodeDown": "a node it needs is down",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition does not start jobs right now",
    "PartitionNodeLimit": f"it asks for more nodes than its partition allows; {NEVER}",
    "PartitionTimeLimit": f"it asks for more time than its partition allows; {NEVER}",
    "PartitionConfig": f"its partition cannot run a job of this size; {NEVER}",
    "Reservation": "it waits for its reservation to begin",
    "Licenses": "it waits for a free licence",
    "JobHeldUser": "it is held by its owner",
    "JobHeldAdmin": "it is held by an administrator",
    "BadConstraints": f"its constraints match no node; {NEVER}",
    "InvalidQOS": f"its QOS is not allowed for your account; {NEVER}",
    "InvalidAccount": f"its account is not valid; {NEVER}",
    "Cleaning": "its previous run is still being cleaned up",
    "Prolog": "it is starting: the node's prolog runs",
    "SystemFailure": "Slurm itself has failed; ask your site",
    "FrontEndDown": "no front end node is available",
}

# limits of the kind QOSMaxCpuPerUserLimit, AssocGrpMemLimit: whose limit, and of what
SCOPES = (
    ("QOSMax", "PerUser", "you already use as much {what} as your QOS allows at once"),
    ("QOSMax", "PerAccount", "your account already uses as much {what} as its QOS allows at once"),
    ("QOSGrp", "", "the jobs of your QOS already use all the {what} it may use at once"),
    ("AssocMax", "", "your account already uses as much {what} as it may at once"),
    ("AssocGrp", "", "your account's group already uses all the {what} it may at once"),
)
WHAT = (
    ("CPUMinutes", "CPU time"),
    ("CPURunMinutes", "CPU time in running jobs"),
    ("Cpu", "CPUs"),
    ("CPU", "CPUs"),
    ("Mem", "memory"),
    ("Node", "nodes"),
    ("Jobs", "jobs"),
    ("Job", "jobs"),
    ("Submit", "queued jobs"),
    ("Wall", "run time"),
    ("GRES", "GPUs or other devices"),
)


def reason_code(reason: str) -> str:
    """``ReqNodeNotAvail, UnavailableNodes:n1`` -> ``ReqNodeNotAvail``."""
    return reason.split(",", 1)[0].split("(", 1)[0].strip()


def explain_reason(reason: str) -> str:
    """A Slurm pending reason as a sentence, with Slurm's own word in brackets."""
    code = reason_code(reason)
    if not code or code in ("None", "(null)"):
        return "Slurm has not considered it yet"
    sentence = REASONS.get(code)
    if sentence is None:
        for prefix, infix, template in SCOPES:
            if code.startswith(prefix) and infix in code:
                rest = code[len(prefix) :]
                what = next((words for key, words in WHAT if rest.startswith(key)), "resources")
                sentence = template.format(what=what) + "; it starts when some of those jobs end"
                break
    return f"{sentence} (Slurm: {code})" if sentence else f"Slurm gives the reason {code}"
