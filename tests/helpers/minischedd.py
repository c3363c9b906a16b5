"""A stand-in HTCondor pool (schedd + negotiator + startd/starter on one host) that really runs
jobs, behind the calls INK's HTCondor backend makes.

No HTCondor daemons can be installed here. This process is never more lenient than HTCondor's
manual where INK depends on it; where the real bindings can do the work they do it:
- condor_submit: the real ``htcondor2.Submit`` expands the description (macros, ``$(DOLLAR)``);
  arguments and environment are read in the old or new syntax exactly as the manual says
  (``condor_syntax.py``), a bare ``"`` in the old syntax is refused; the requirements get the
  terms condor_submit adds (Arch, OpSys, Disk, Memory, Cpus, GPUs, FileSystemDomain or
  HasFileTransfer) unless the user's own requirements name the attribute.
- identity: each call authenticates by the configured methods, in order: KERBEROS (the
  ``KRB5CCNAME`` the client used: its principal, mapped to a user by stripping an accepted
  realm) then FS (the Unix user of the process at the other end of the connection, found from
  the socket, as HTCondor's FS method proves the uid; what the request says is ignored). Setting ``Owner`` to anyone but oneself
  needs QUEUE_SUPER_USERS *and* QUEUE_SUPER_USER_MAY_IMPERSONATE; jobs of root are refused;
  only the owner or a super user may remove, hold or edit a job; nobody edits the immutable
  attributes (IMMUTABLE_JOB_ATTRS: Owner, ClusterId, ProcId...) and only a super user edits the
  protected ones (PROTECTED_JOB_ATTRS, the pool's "protected_attrs").
- negotiation every ``negotiation_interval`` seconds with the real ``classad2`` matching
  against slot ads that advertise Arch, OpSys, Disk, FileSystemDomain and GPUs; periodic
  expressions every ``periodic_interval``.
- the starter runs as the owner: it opens the output as the owner, gives the job only the
  description's environment (no PATH) plus _CONDOR_SCRATCH_DIR/TMPDIR (a private scratch
  folder), and puts the job on hold with HTCondor's HoldReason and code when the program or
  the output cannot be opened; a job killed by a signal gets ExitBySignal/ExitSignal.
- ``queue N`` (count) makes N procs, ``queue VAR from (items)`` (itemdata) one per item with
  the item's value expanded into it; ``max_materialize`` keeps at most that many procs in the
  queue (late materialization); removing by ``ClusterId == N`` (the cluster's own ad matches it) also
  drops the procs not yet materialized. Removal returns at once and the job stays in state 3 until its processes are
  gone.
What it does not model: the shadow, file transfer, claims and preemption, user priorities,
the real wire protocol and its security negotiation (see etc/htcondor/README.md).

Server: ``python -m tests.helpers.minischedd --port P --pool FILE`` (FILE: JSON with "slots"
and the schedd's settings). Client: ``MiniScheddClient(url)`` and ``MiniCollectorClient(url)``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import classad2
import htcondor2
import psutil

from .condor_syntax import (
    SubmitSyntaxError,
    arguments_attributes,
    environment_attributes,
    job_argv_tail,
    job_environment,
)

# IMMUTABLE_JOB_ATTRS' defaults (condor_config_val -dump): no one, not even a super user
IMMUTABLE_ATTRS = {a.lower() for a in ("Owner", "ClusterId", "ProcId", "MyType", "TargetType", "User")}

# --- clients (used inside the hub, in place of htcondor2.Schedd / Collector) -------------


class SubmitResultLike:
    def __init__(self, cluster: int, procs: int):
        self._cluster, self._procs = cluster, procs

    def cluster(self) -> int:
        return self._cluster

    def num_procs(self) -> int:
        return self._procs


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise htcondor2.HTCondorException(json.loads(e.read()).get("error", str(e))) from None
    except urllib.error.URLError as e:
        raise htcondor2.HTCondorException(f"Failed to connect to schedd: {e.reason}") from None


def _caller() -> dict:
    """What a real client presents besides its socket (FS): its Kerberos cache (KERBEROS)."""
    return {"krb5ccname": os.environ.get("KRB5CCNAME", "")}


def _ads(answer) -> list:
    return [classad2.parseOne(text, classad2.ParserType.Old) for text in answer["ads"]]


def singularity_bind_expr() -> str:
    """SINGULARITY_BIND_EXPR of the execute-node configuration INK ships."""
    config = Path(__file__).resolve().parents[2] / "etc" / "htcondor" / "ink-slots.conf"
    for line in config.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "SINGULARITY_BIND_EXPR":
            return value.strip()
    raise RuntimeError(f"no SINGULARITY_BIND_EXPR in {config}")


class MiniScheddClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def submit(self, description, count: int = 0, spool: bool = False, itemdata=None, queue=None):
        if itemdata is None:
            text = str(description)
        else:  # as htcondor2.Schedd.submit writes it: QUEUE keys FROM ( one line per item )
            first = next(itemdata)
            keys = list(first)
            text = "".join(f"{key} = {value}\n" for key, value in description.items())
            text += f"\nQUEUE {','.join(keys)} FROM (\n"
            for item in (first, *itemdata):
                text += "\x1f".join(str(item[k]).strip() for k in keys) + "\n"
            text += ")\n"
        body = {"description": text, "count": count or 1, **_caller()}
        answer = _post(self.url + "/submit", body)
        return SubmitResultLike(answer["cluster"], answer["procs"])

    def query(self, constraint="true", projection=(), callback=None, limit=-1, opts=None):
        body = {"constraint": str(constraint), "projection": list(projection), **_caller()}
        if opts is not None:
            body["opts"] = int(opts)
        return _ads(_post(self.url + "/query", body))

    def history(self, constraint=None, projection=(), match=-1, since=None):
        body = {"constraint": str(constraint or "true"), "projection": list(projection), "match": match}
        return _ads(_post(self.url + "/history", {**body, **_caller()}))

    def edit(self, job_spec, attr, value, flags=None):
        body = {"constraint": str(job_spec), "attr": str(attr), "value": str(value), **_caller()}
        return _post(self.url + "/edit", body)["matched"]

    def act(self, action, job_spec, reason=None):
        name = action.name if hasattr(action, "name") else str(action)
        spec = str(job_spec).strip()
        if re.fullmatch(r"\d+", spec):  # as htcondor2's job_spec_hack sends a cluster id
            spec = f"ClusterID == {spec}"
        elif re.fullmatch(r"\d+\.\d+", spec):
            spec = "ClusterID == {} && ProcID == {}".format(*spec.split("."))
        body = {"action": name, "constraint": spec, "reason": reason, **_caller()}
        answer = _post(self.url + "/act", body)
        return classad2.ClassAd({"TotalSuccess": answer["matched"]})


class MiniCollectorClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def query(self, ad_type=None, constraint="true", projection=()):
        body = {"constraint": str(constraint), "projection": list(projection)}
        return _ads(_post(self.url + "/slots", body))


def connect(backend):
    """HTCondorBackend.schedd_factory for the tests."""
    return MiniScheddClient(os.environ["INK_TEST_SCHEDD"])


def connect_collector(backend):
    """HTCondorBackend.collector_factory for the tests."""
    return MiniCollectorClient(os.environ["INK_TEST_SCHEDD"])


# --- the pool ----------------------------------------------------------------------------

UNIVERSE = {"vanilla": 5, "container": 14}
# HoldReasonCode values from HTCondor's manual (job ClassAd attributes)
HOLD_USER, HOLD_POLICY, HOLD_EXEC, HOLD_OUTPUT = 1, 3, 6, 7
# condor_submit's added terms: (attribute a user clause may name, the term)
DEFAULT_TERMS = [
    ("Arch", 'TARGET.Arch == "{arch}"'),
    ("OpSys", 'TARGET.OpSys == "LINUX"'),
    ("Disk", "TARGET.Disk >= RequestDisk"),
    ("Memory", "TARGET.Memory >= RequestMemory"),
    ("Cpus", "TARGET.Cpus >= RequestCpus"),
]

# Runs as the job's owner: open the output, change to Iwd, exec the program. A failure is
# written to the status pipe (fd given in argv); a successful exec closes it (close-on-exec).
STARTER = r"""
import json, os, sys
status = int(sys.argv[1]); os.set_inheritable(status, False)
job = json.loads(sys.stdin.read())
def fail(code, reason, errno):
    os.write(status, json.dumps({"code": code, "reason": reason, "subcode": errno}).encode())
    os._exit(1)
os.umask(0o022)
fds = []
for stream, path in (("output", job["out"]), ("error", job["err"])):
    try:
        fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    except OSError as e:
        fail(7, f"Failed to open '{path}' as standard {stream}: {e.strerror} (errno {e.errno})", e.errno)
try:
    os.chdir(job["cwd"])
except OSError as e:
    fail(6, f"Failed to change to the job's initial working directory '{job['cwd']}': {e.strerror}", e.errno)
null = os.open("/dev/null", os.O_RDONLY)
os.dup2(null, 0); os.dup2(fds[0], 1); os.dup2(fds[1], 2)
try:
    os.execve(job["cmd"], [job["cmd"], *job["args"]], job["env"])
except OSError as e:
    fail(6, f"Failed to execute '{job['cmd']}': (errno={e.errno}: '{e.strerror}')", e.errno)
"""


class ScheddRefusal(Exception):
    """Refused with HTCondor's words; the client sees the text."""


def size_kib(text: str) -> int:
    match = re.match(r"^\s*(\d+)\s*([KMGT]?)", text, re.I)
    if not match:
        raise SubmitSyntaxError(f"request_disk: not a size: {text!r}")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}[unit]


class Pool:
    def __init__(self, config: dict):
        self.config = {
            "super_users": ["root", "condor"],
            "may_impersonate": "",  # QUEUE_SUPER_USER_MAY_IMPERSONATE (a regex; empty: nobody)
            "auth_methods": ["FS"],  # SEC_CLIENT_AUTHENTICATION_METHODS, in order
            "kerberos_realms": [],  # realms the map file accepts (empty: any)
            "protected_attrs": [],  # PROTECTED_JOB_ATTRS: only super users edit these
            "filesystem_domain": "ink.test",  # FILESYSTEM_DOMAIN of the submit host
            "negotiation_interval": 1.0,
            "periodic_interval": 1.0,
            "kill_timeout": 5.0,
            "leave_after": 5.0,
            **config,
        }
        self.slots = []
        for spec in config.get("slots", []):
            slot = classad2.ClassAd({k: v for k, v in spec.items() if k != "Requirements"})
            slot["Requirements"] = classad2.ExprTree(str(spec.get("Requirements", "true")))
            slot["State"] = "Unclaimed"
            self.slots.append(slot)
        # like /var/lib/condor/execute: root's, searchable, one private folder per job inside
        self.execute = tempfile.mkdtemp(prefix="ink-condor-execute-")
        os.chmod(self.execute, 0o755)
        self.jobs: dict[str, classad2.ClassAd] = {}  # "cluster.proc" -> ad
        self.history: list[classad2.ClassAd] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.scratch: dict[str, str] = {}
        self.submissions: list[dict] = []
        self.factories: dict[int, dict] = {}  # late materialization: cluster -> procs not yet in the queue
        self.next_cluster = 1
        self.lock = threading.RLock()
        self.last_negotiation = 0.0
        self.last_periodic = 0.0

    # --- identity ------------------------------------------------------------------------
    def authenticate(self, body: dict) -> str:
        for method in self.config["auth_methods"]:
            if method == "KERBEROS":
                user = self._kerberos_user(body.get("krb5ccname", ""), body.get("client_user", ""))
                if user:
                    return user
            elif method == "FS" and body.get("client_user"):
                return body["client_user"]
        raise ScheddRefusal("AUTHENTICATE:1003:Failed to authenticate with any method")

    def _kerberos_user(self, krb5ccname: str, peer: str) -> str:
        """The principal of a ticket cache the connecting process itself can read (as with
        GSSAPI, where the client must hold the ticket: naming someone else's cache is no use)."""
        if not krb5ccname or not peer:
            return ""
        cache = krb5ccname.removeprefix("FILE:")
        as_peer = [] if peer == "root" else ["runuser", "-u", peer, "--"]
        if subprocess.run([*as_peer, "klist", "-s", "-c", cache], check=False).returncode != 0:
            return ""  # missing, expired or not the caller's: KERBEROS fails, the next method is tried
        out = subprocess.run(
            [*as_peer, "klist", "-c", cache], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"Default principal:\s*(\S+)@(\S+)", out)
        if not match:
            return ""
        name, realm = match.groups()
        if self.config["kerberos_realms"] and realm not in self.config["kerberos_realms"]:
            return ""
        return name

    def may_act_for(self, identity: str, owner: str) -> bool:
        return identity == owner or identity in self.config["super_users"]

    # --- condor_submit + the schedd's side of submit -------------------------------------
    def job_ad(
        self, description: str, identity: str, cluster: int, macros: dict | None = None
    ) -> classad2.ClassAd:
        """``macros``: a proc's own values (its item's variables, ProcId), expanded into it as
        condor_submit does for each proc."""
        submit = htcondor2.Submit(description)
        for name, value in (macros or {}).items():
            submit[name] = str(value)
        keys = {k.lower(): k for k in submit.keys()}

        def value(name, default=None):
            key = keys.get(name)
            return submit.expand(key) if key else default

        now = int(time.time())
        ad = classad2.ClassAd()
        for key in submit.keys():
            if key.lower().startswith("my.") or key.startswith("+"):
                name = key.split(".", 1)[1] if "." in key else key[1:]
                ad[name] = classad2.ExprTree(submit.expand(key))
        owner = identity
        if "Owner" in ad:
            requested = str(ad.eval("Owner"))
            impersonate = self.config["may_impersonate"]
            allowed = identity in self.config["super_users"] and bool(
                impersonate and re.fullmatch(impersonate, requested)
            )
            if requested != identity and not allowed:
                raise ScheddRefusal(
                    f'SetAttribute security violation: setting owner to "{requested}" '
                    f'when active owner is "{identity}"'
                )
            owner = requested
        if owner == "root":
            raise ScheddRefusal(
                "ERROR: Submitting jobs as user/owner 'root' is not allowed for this HTCondor pool."
            )
        try:
            account = pwd.getpwnam(owner)
        except KeyError:
            raise ScheddRefusal(f"ERROR: the owner {owner!r} has no account on the pool") from None
        ad["Owner"] = owner
        ad["User"] = f"{owner}@{self.config['filesystem_domain']}"
        ad["ClusterId"] = cluster
        ad["JobStatus"] = 1
        ad["QDate"] = now
        ad["EnteredCurrentStatus"] = now
        ad["FileSystemDomain"] = self.config["filesystem_domain"]
        executable = value("executable")
        if not executable:
            raise ScheddRefusal("ERROR: No 'executable' parameter was provided")
        ad["Cmd"] = executable
        for attr, val in arguments_attributes(value("arguments", "")).items():
            ad[attr] = val
        for attr, val in environment_attributes(value("environment", "")).items():
            ad[attr] = val
        ad["Iwd"] = value("initialdir", account.pw_dir)
        ad["Out"] = value("output", "/dev/null")
        ad["Err"] = value("error", "/dev/null")
        ad["JobUniverse"] = UNIVERSE.get(value("universe", "vanilla").lower(), 5)
        ad["RequestCpus"] = int(value("request_cpus", "1"))
        ad["RequestMemory"] = int(value("request_memory", "128"))
        ad["RequestDisk"] = size_kib(value("request_disk", "1M"))
        ad["RequestGPUs"] = int(value("request_gpus", "0"))
        if value("container_image"):
            ad["ContainerImage"] = value("container_image")
        if value("accounting_group"):
            ad["AcctGroup"] = value("accounting_group")
            ad["AcctGroupUser"] = value("accounting_group_user", owner)
        if value("batch_name"):
            ad["JobBatchName"] = value("batch_name")
        for name, attr in (("periodic_remove", "PeriodicRemove"), ("periodic_hold", "PeriodicHold")):
            if value(name):
                ad[attr] = classad2.ExprTree(value(name))
        if value("periodic_hold_reason"):
            ad["PeriodicHoldReason"] = classad2.ExprTree(value("periodic_hold_reason"))
        transfer = value("should_transfer_files", "IF_NEEDED").upper()
        ad["ShouldTransferFiles"] = transfer
        ad["Requirements"] = classad2.ExprTree(self.requirements(value("requirements", ""), ad))
        return ad

    @staticmethod
    def requirements(user: str, ad) -> str:
        """The user's requirements and the terms condor_submit adds (unless the user named them)."""
        mentioned = user.lower()
        terms = [f"({user})"] if user.strip() else []
        for attr, term in DEFAULT_TERMS:
            if attr.lower() not in mentioned:
                terms.append(f"({term.format(arch=platform.machine().upper())})")
        if ad["RequestGPUs"] > 0 and "gpus" not in mentioned:
            terms.append("(TARGET.GPUs >= RequestGPUs)")
        if ad["JobUniverse"] == 14:
            terms.append("(TARGET.HasContainer)")
        if ad["ShouldTransferFiles"] == "NO":
            if "filesystemdomain" not in mentioned:
                terms.append("(TARGET.FileSystemDomain == MY.FileSystemDomain)")
        else:
            terms.append("(TARGET.HasFileTransfer)")
        return " && ".join(terms)

    def submit(self, body: dict) -> dict:
        """``queue N`` (count) or ``queue VARS from (items)``: one proc per item, each expanded
        with its item's values; ``max_materialize`` (late materialization) keeps at most that
        many procs of the cluster in the queue, the next item materializing as one leaves."""
        identity = self.authenticate(body)
        text = body["description"]
        parsed = htcondor2.Submit(text)
        from_items = " from " in f" {parsed.getQArgs().lower()} "
        items = (
            list(parsed.itemdata() or []) if from_items else [{} for _ in range(int(body.get("count") or 1))]
        )
        if not items:
            raise ScheddRefusal("ERROR: the queue statement has no items")
        limit = int(parsed.expand("max_materialize") or 0) if "max_materialize" in parsed else 0
        with self.lock:
            cluster = self.next_cluster
            # every proc is checked at submit (a bad one refuses the whole cluster), as condor_submit does
            ads = [
                self.job_ad(text, identity, cluster, {**item, "ProcId": proc})
                for proc, item in enumerate(items)
            ]
            for proc, ad in enumerate(ads):
                ad["ProcId"] = proc
            self.next_cluster += 1
            now = ads if not limit else ads[:limit]
            for ad in now:
                self.jobs[f"{cluster}.{ad['ProcId']}"] = ad
            if limit and len(ads) > limit:
                self.factories[cluster] = {"waiting": ads[limit:], "limit": limit}
            self.submissions.append({"cluster": cluster, "description": text, "identity": identity})
        return {"cluster": cluster, "procs": len(ads)}

    def _remove_factories(self, identity: str, constraint: str) -> int:
        """Late materialization's factories whose cluster ad (ClusterId, Owner: no proc's
        attributes) matches the constraint are removed, with the procs they had yet to queue."""
        expr, removed = classad2.ExprTree(constraint), 0
        for cluster, factory in list(self.factories.items()):
            owner = str(factory["waiting"][0]["Owner"])
            if expr.eval(classad2.ClassAd({"ClusterId": cluster, "Owner": owner})) is not True:
                continue
            if not self.may_act_for(identity, owner):
                raise ScheddRefusal(f"Permission denied: {identity} may not act on cluster {cluster}")
            removed += len(factory["waiting"])
            del self.factories[cluster]
        return removed

    def _materialize(self):
        """Late materialization: a cluster's next procs enter the queue while fewer than its
        max_materialize are there. Call with the lock."""
        for cluster, factory in list(self.factories.items()):
            present = sum(1 for ad in self.jobs.values() if ad["ClusterId"] == cluster)
            while factory["waiting"] and present < factory["limit"]:
                ad = factory["waiting"].pop(0)
                now = int(time.time())
                ad["QDate"] = ad["EnteredCurrentStatus"] = now
                self.jobs[f"{cluster}.{ad['ProcId']}"] = ad
                present += 1
            if not factory["waiting"]:
                del self.factories[cluster]

    @staticmethod
    def _select(ads, constraint: str, projection: list[str], limit: int = -1) -> list[str]:
        expr = classad2.ExprTree(constraint or "true")
        found = []
        for ad in ads:
            if expr.eval(ad) is True:
                if projection:
                    ad = classad2.ClassAd({k: ad.lookup(k) for k in projection if k in ad})
                found.append(ad.printOld())
                if 0 < limit <= len(found):
                    break
        return found

    def query(self, body: dict) -> dict:
        self.authenticate(body)  # READ needs an authenticated caller too
        with self.lock:
            ads = list(self.jobs.values())
            if int(body.get("opts", 0)) & int(htcondor2.QueryOpt.IncludeClusterAd):
                ads += self._cluster_ads()
            return {"ads": self._select(ads, body["constraint"], body["projection"])}

    def _cluster_ads(self) -> list:
        """Each cluster's own ad (no ProcId), there while the cluster has procs in the queue
        or procs still to materialize. Call with the lock."""
        first = {}
        for ad in [*self.jobs.values(), *(f["waiting"][0] for f in self.factories.values())]:
            first.setdefault(ad["ClusterId"], ad)
        shared = ("ClusterId", "Owner", "QDate", "InkApp", "InkTasks", "JobBatchName")
        return [classad2.ClassAd({k: ad.lookup(k) for k in shared if k in ad}) for ad in first.values()]

    def history_query(self, body: dict) -> dict:
        self.authenticate(body)
        with self.lock:
            ads = list(reversed(self.history))
            return {"ads": self._select(ads, body["constraint"], body["projection"], body.get("match", -1))}

    def slot_query(self, body: dict) -> dict:
        with self.lock:
            return {"ads": self._select(self.slots, body["constraint"], body["projection"])}

    def _owned(self, identity: str, constraint: str, verb: str):
        """The queued jobs matching ``constraint``, each one the caller may ``verb`` (the owner or
        a super user; anyone else is refused outright, as the schedd does). Call with the lock."""
        expr = classad2.ExprTree(constraint)
        for key, ad in list(self.jobs.items()):
            if expr.eval(ad) is not True:
                continue
            if not self.may_act_for(identity, str(ad["Owner"])):
                raise ScheddRefusal(f"Permission denied: {identity} may not {verb} job {key}")
            yield key, ad

    def act(self, body: dict) -> dict:
        identity = self.authenticate(body)
        action, reason = body["action"], body.get("reason")
        constraint = body["constraint"]
        matched = 0
        with self.lock:
            if action in ("Remove", "RemoveX"):  # a constraint that matches a cluster's own ad
                matched += self._remove_factories(identity, constraint)  # (ClusterId == N) ends its factory
            for key, ad in self._owned(identity, constraint, "act on"):
                status = ad["JobStatus"]
                if action in ("Remove", "RemoveX") and status not in (3, 4):
                    self._stop(key, 3, RemoveReason=reason or f"via condor_rm (by user {identity})")
                elif action == "Hold" and status in (1, 2):
                    why = reason or f"via condor_hold (by user {identity})"
                    self._stop(key, 5, HoldReason=why, HoldReasonCode=HOLD_USER)
                elif action == "Release" and status == 5:
                    self._set(key, 1)
                else:
                    continue
                matched += 1
        return {"matched": matched}

    def edit(self, body: dict) -> dict:
        """condor_qedit: the value is a ClassAd expression (a syntax error is refused)."""
        identity = self.authenticate(body)
        attr = body["attr"]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", attr):
            raise ValueError(f"not an attribute name: {attr!r}")
        value = classad2.ExprTree(body["value"])
        if attr.lower() in IMMUTABLE_ATTRS:
            raise ScheddRefusal(f"Permission denied: {attr} is immutable")
        protected = {a.lower() for a in self.config["protected_attrs"]}
        if attr.lower() in protected and identity not in self.config["super_users"]:
            raise ScheddRefusal(f"Permission denied: {attr} is protected (super users only)")
        matched = 0
        with self.lock:
            for _, ad in self._owned(identity, body["constraint"], "edit"):
                ad[attr] = value
                matched += 1
        return {"matched": matched}

    # --- state changes -------------------------------------------------------------------
    def _set(self, key: str, status: int, **attrs):
        ad = self.jobs[key]
        ad["JobStatus"] = status
        ad["EnteredCurrentStatus"] = int(time.time())
        for name, val in attrs.items():
            ad[name] = val

    def _release_slot(self, key: str):
        for slot in self.slots:
            if slot.get("InkClaimedBy") == key:
                del slot["InkClaimedBy"]
                slot["State"] = "Unclaimed"

    def _stop(self, key: str, status: int, **attrs):
        """Remove or hold: the new state at once; the job's processes end in the background
        (SIGTERM, then SIGKILL after kill_timeout), as the shadow and starter do."""
        self._set(key, status, **attrs)
        proc = self.procs.get(key)
        if proc is None:
            self._release_slot(key)
            if status == 3:
                self.jobs[key]["CompletionDate"] = int(time.time())
            return
        threading.Thread(target=self._kill, args=(key, proc), daemon=True).start()

    def _kill(self, key: str, proc: subprocess.Popen):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(self.config["kill_timeout"])
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        with self.lock:
            self._reaped(key)
            if key in self.jobs and self.jobs[key]["JobStatus"] == 3:
                self.jobs[key]["CompletionDate"] = int(time.time())

    def _reaped(self, key: str):
        self.procs.pop(key, None)
        self._release_slot(key)
        scratch = self.scratch.pop(key, None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    def _start(self, key: str, slot: classad2.ClassAd):
        ad = self.jobs[key]
        account = pwd.getpwnam(str(ad["Owner"]))
        scratch = os.path.join(self.execute, f"dir_{key.replace('.', '_')}_{int(time.time() * 1000)}")
        os.mkdir(scratch, 0o700)
        os.chown(scratch, account.pw_uid, account.pw_gid)
        self.scratch[key] = scratch
        slot["InkClaimedBy"] = key
        slot["State"] = "Claimed"
        try:
            env = job_environment(ad)
        except SubmitSyntaxError as e:
            self._hold_at_start(key, slot, HOLD_EXEC, str(e), 0)
            return
        env.update(
            {
                "_CONDOR_SCRATCH_DIR": scratch,
                "TMPDIR": scratch,
                "_CONDOR_SLOT": str(slot["Name"]).split("@")[0],
                "_CONDOR_JOB_IWD": str(ad["Iwd"]),
                "BATCH_SYSTEM": "HTCondor",
            }
        )
        cwd = str(ad["Iwd"]) if ad["ShouldTransferFiles"] == "NO" else scratch
        cmd, args = str(ad["Cmd"]), job_argv_tail(ad)
        if ad["JobUniverse"] == 14:
            # the container universe: the starter runs the job inside its image, as the owner,
            # with the scratch folder and what the job asks bound in (INK's runner, bubblewrap,
            # where a real starter runs Apptainer on the unpacked image)
            image = str(ad["ContainerImage"])
            # the binds as the shipped execute-node config says (SINGULARITY_BIND_EXPR of
            # etc/htcondor/ink-slots.conf, the slot as MY and the job as TARGET)
            bound = classad2.ExprTree(singularity_bind_expr()).eval(slot, ad)
            binds = [b for b in str(bound).split(",") if b] if isinstance(bound, str) else []
            runner = [
                sys.executable,
                "-m",
                "ink_spawner.jobscript.in_image",
                "--image",
                image,
                "--rootfs",
                image,
            ]
            for bind in [scratch, *binds]:
                runner += ["--bind", bind]
            cmd, args = runner[0], [*runner[1:], "--", cmd, *args]
        job = {
            "cmd": cmd,
            "args": args,
            "env": env,
            "out": str(ad["Out"]),
            "err": str(ad["Err"]),
            "cwd": cwd,
        }
        status_read, status_write = os.pipe()
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-c", STARTER, str(status_write)],
            stdin=subprocess.PIPE,
            pass_fds=(status_write,),
            env={},
            cwd="/",
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=os.getgrouplist(account.pw_name, account.pw_gid),
            start_new_session=True,
        )
        os.close(status_write)
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
        with os.fdopen(status_read, "rb") as pipe:
            failure = pipe.read()
        if failure:
            proc.wait()
            problem = json.loads(failure)
            self._hold_at_start(key, slot, problem["code"], problem["reason"], problem["subcode"])
            return
        self.procs[key] = proc
        now = int(time.time())
        self._set(key, 2, RemoteHost=slot["Name"], JobCurrentStartDate=now, JobStartDate=now)

    def _hold_at_start(self, key, slot, code, reason, subcode):
        self._reaped(key)
        self._set(
            key,
            5,
            HoldReason=f"Error from {slot['Name']}: {reason}",
            HoldReasonCode=code,
            HoldReasonSubCode=subcode,
        )

    def cycle(self):
        """Reap ended jobs; every periodic_interval the periodic expressions; every
        negotiation_interval a negotiation cycle."""
        with self.lock:
            now = time.time()
            periodic = now - self.last_periodic >= self.config["periodic_interval"]
            negotiate = now - self.last_negotiation >= self.config["negotiation_interval"]
            if periodic:
                self.last_periodic = now
            if negotiate:
                self.last_negotiation = now
            for key, ad in list(self.jobs.items()):
                status = ad["JobStatus"]
                proc = self.procs.get(key)
                if status == 2 and proc is not None and proc.poll() is not None:
                    self._reaped(key)
                    code = proc.returncode
                    if code < 0:
                        self._set(key, 4, ExitBySignal=True, ExitSignal=-code)
                    else:
                        self._set(key, 4, ExitBySignal=False, ExitCode=code)
                    ad["CompletionDate"] = int(now)
                    continue
                if periodic and status in (1, 2) and self._periodic(key, ad):
                    continue
                if negotiate and status == 1:
                    self._negotiate(key, ad, now)
                if status in (3, 4) and key not in self.procs:
                    if now - ad["EnteredCurrentStatus"] > self.config["leave_after"]:
                        self.history.append(self.jobs.pop(key))
            self._materialize()

    def _periodic(self, key, ad) -> bool:
        if "PeriodicRemove" in ad and ad.eval("PeriodicRemove") is True:
            expr = str(ad.lookup("PeriodicRemove"))
            why = f"The job attribute PeriodicRemove expression '{expr}' evaluated to TRUE"
            self._stop(key, 3, RemoveReason=why)
            return True
        if "PeriodicHold" in ad and ad.eval("PeriodicHold") is True:
            reason = ad.eval("PeriodicHoldReason") if "PeriodicHoldReason" in ad else None
            expr = str(ad.lookup("PeriodicHold"))
            why = (
                str(reason)
                if reason
                else f"The job attribute PeriodicHold expression '{expr}' evaluated to TRUE"
            )
            self._stop(key, 5, HoldReasonCode=HOLD_POLICY, HoldReason=why)
            return True
        return False

    def _negotiate(self, key, ad, now):
        free = [s for s in self.slots if s["State"] == "Unclaimed"]
        # a.matches(b) evaluates b's Requirements against a: both sides must agree
        match = next((s for s in free if s.matches(ad) and ad.matches(s)), None)
        if match is None:
            ad["LastRejMatchReason"] = "no match found "
            ad["LastRejMatchTime"] = int(now)
            ad["NumJobMatches"] = ad.get("NumJobMatches", 0)
        else:
            self._start(key, match)

    def run_forever(self):
        while True:
            try:
                self.cycle()
            except Exception as e:  # keep scheduling; the tests read the log
                print(f"cycle error: {e!r}", flush=True)
            time.sleep(0.2)

    def shutdown(self):
        with self.lock:
            for key, proc in list(self.procs.items()):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
                self._reaped(key)
        shutil.rmtree(self.execute, ignore_errors=True)


def peer_user(client: tuple, server_port: int) -> str:
    """The Unix user of the process on the other end of a loopback connection ("" if unknown)."""
    for conn in psutil.net_connections("tcp"):
        if conn.pid and conn.laddr and conn.raddr and tuple(conn.laddr[:2]) == tuple(client[:2]):
            if conn.raddr[1] == server_port:
                try:
                    return pwd.getpwuid(psutil.Process(conn.pid).uids().real).pw_name
                except (psutil.Error, KeyError):
                    return ""
    return ""


def make_handler(pool: Pool):
    routes = {
        "/submit": pool.submit,
        "/query": pool.query,
        "/history": pool.history_query,
        "/act": pool.act,
        "/edit": pool.edit,
        "/slots": pool.slot_query,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            # FS authentication proves the caller's uid: take it from the connecting socket,
            # never from what the request says (any user of the node can reach this port)
            body["client_user"] = peer_user(self.client_address, self.server.server_address[1])
            try:
                answer, code = routes[self.path](body), 200
            except ScheddRefusal as e:
                answer, code = {"error": str(e)}, 403
            except (SubmitSyntaxError, ValueError, KeyError, RuntimeError) as e:
                answer, code = {"error": f"{type(e).__name__}: {e}"}, 400
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/submissions":
                data = json.dumps(pool.submissions).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", required=True, help="JSON file: slots and the schedd's settings")
    args = parser.parse_args()
    with open(args.pool) as f:
        pool = Pool(json.load(f))
    threading.Thread(target=pool.run_forever, daemon=True).start()

    def stop(signum, frame):  # a pool going away here takes its jobs with it
        pool.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"minischedd on port {args.port}, python {sys.version.split()[0]}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(pool)).serve_forever()


if __name__ == "__main__":
    main()
