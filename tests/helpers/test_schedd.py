"""A test schedd: the calls INK's HTCondor backend makes, answered by a process that really
runs the jobs.

No HTCondor daemons can be installed here, so this stands in for a schedd + negotiator +
startd on one host. It takes the real ``htcondor2.Submit`` description, builds the job ad the
way a schedd does (Cmd, Arguments, RequestMemory, Requirements, PeriodicRemove, My.* ...),
matches it against slot ads and evaluates periodic expressions with the real ``classad2``
engine, runs the executable as the job's Owner, and moves JobStatus through 1 -> 2 -> 4/3/5
with RemoteHost, EnteredCurrentStatus, HoldReason, RemoveReason, LastRejMatchReason.

Server: ``python -m tests.helpers.test_schedd --port P --slots FILE``.
Client: ``TestScheddClient(url)`` with ``submit``, ``query``, ``history``, ``act`` as in htcondor2.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import classad2
import htcondor2

# --- client (used inside the hub, in place of htcondor2.Schedd) -------------------------


class SubmitResultLike:
    def __init__(self, cluster: int, procs: int):
        self._cluster, self._procs = cluster, procs

    def cluster(self) -> int:
        return self._cluster

    def num_procs(self) -> int:
        return self._procs


class TestScheddClient:
    __test__ = False  # not a pytest test class

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise htcondor2.HTCondorException(json.loads(e.read()).get("error", str(e))) from None
        except urllib.error.URLError as e:
            raise htcondor2.HTCondorException(f"Failed to connect to schedd: {e.reason}") from None

    def submit(self, description, count: int = 1, spool: bool = False, itemdata=None, queue=None):
        body = {
            "description": str(description),
            "count": count or 1,
            "submitter": pwd.getpwuid(os.geteuid()).pw_name,
            "krb5ccname": os.environ.get("KRB5CCNAME", ""),
        }
        answer = self._post("/submit", body)
        return SubmitResultLike(answer["cluster"], answer["procs"])

    def _ads(self, answer) -> list:
        return [classad2.parseOne(text, classad2.ParserType.Old) for text in answer["ads"]]

    def query(self, constraint="true", projection=(), callback=None, limit=-1, opts=None):
        return self._ads(
            self._post("/query", {"constraint": str(constraint), "projection": list(projection)})
        )

    def history(self, constraint=None, projection=(), match=-1, since=None):
        body = {"constraint": str(constraint or "true"), "projection": list(projection), "match": match}
        return self._ads(self._post("/history", body))

    def act(self, action, job_spec, reason=None):
        name = action.name if hasattr(action, "name") else str(action)
        answer = self._post("/act", {"action": name, "constraint": str(job_spec), "reason": reason})
        return classad2.ClassAd({"TotalSuccess": answer["matched"]})


def connect(backend):
    """HTCondorBackend.schedd_factory for the tests."""
    return TestScheddClient(os.environ["INK_TEST_SCHEDD"])


# --- server ---------------------------------------------------------------------------

_ARGUMENT = re.compile(r"'((?:[^']|'')*)'|(\S+)")
UNIVERSE = {"vanilla": 5, "container": 14}


def split_new_syntax(text: str) -> list[str]:
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1]
    return [
        m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
        for m in _ARGUMENT.finditer(text)
    ]


def size_kib(text: str) -> int:
    match = re.match(r"^\s*(\d+)\s*([KMGT]?)", text, re.I)
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}[unit]


class Schedd:
    def __init__(self, slots: list[dict], leave_after: float = 5.0):
        self.slots = [classad2.ClassAd(slot) for slot in slots]
        for slot in self.slots:
            if "Requirements" in slot:
                slot["Requirements"] = classad2.ExprTree(str(slot["Requirements"]))
        self.claimed: dict[str, int] = {}  # slot name -> cluster
        self.jobs: dict[int, classad2.ClassAd] = {}
        self.history: list[classad2.ClassAd] = []
        self.procs: dict[int, subprocess.Popen] = {}
        self.submissions: list[dict] = []
        self.next_cluster = 1
        self.leave_after = leave_after
        self.lock = threading.RLock()

    # the schedd's side of submit: the job ad from the description
    def job_ad(self, description: str, submitter: str, cluster: int) -> classad2.ClassAd:
        submit = htcondor2.Submit(description)
        keys = {k.lower(): k for k in submit.keys()}

        def value(name, default=None):
            key = keys.get(name)
            return submit.expand(key) if key else default

        now = int(time.time())
        owner = submitter
        ad = classad2.ClassAd()
        for key in submit.keys():
            if key.lower().startswith("my.") or key.startswith("+"):
                ad[key.split(".", 1)[1] if "." in key else key[1:]] = classad2.ExprTree(submit.expand(key))
        if "Owner" in ad:
            requested = str(ad.eval("Owner"))
            if submitter != "root":  # only a queue super user may submit for someone else
                raise PermissionError(f"{submitter} may not set Owner to {requested}")
            owner = requested
        ad["Owner"] = owner
        ad["User"] = f"{owner}@test.pool"
        ad["ClusterId"] = cluster
        ad["ProcId"] = 0
        ad["JobStatus"] = 1
        ad["QDate"] = now
        ad["EnteredCurrentStatus"] = now
        ad["Cmd"] = value("executable")
        ad["Arguments"] = value("arguments", "")
        ad["Environment"] = value("environment", "").strip('"')
        ad["Iwd"] = value("initialdir", pwd.getpwnam(owner).pw_dir)
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
        ad["ShouldTransferFiles"] = value("should_transfer_files", "IF_NEEDED")
        # what condor_submit adds to the user's requirements
        user_requirements = value("requirements", "true")
        ad["Requirements"] = classad2.ExprTree(
            f"({user_requirements}) && (TARGET.Cpus >= RequestCpus) && (TARGET.Memory >= RequestMemory)"
            + (" && (TARGET.HasContainer =?= true)" if ad["JobUniverse"] == 14 else "")
        )
        return ad

    def submit(self, body: dict) -> dict:
        with self.lock:
            cluster = self.next_cluster
            ad = self.job_ad(body["description"], body["submitter"], cluster)
            self.next_cluster += 1
            self.jobs[cluster] = ad
            self.submissions.append(
                {
                    "cluster": cluster,
                    "description": body["description"],
                    "krb5ccname": body.get("krb5ccname", ""),
                }
            )
        return {"cluster": cluster, "procs": 1}

    @staticmethod
    def _select(ads, constraint: str, projection: list[str], limit: int = -1) -> list[str]:
        expr = classad2.ExprTree(constraint or "true")
        found = []
        for ad in ads:
            if expr.eval(ad) is True:
                if projection:
                    ad = classad2.ClassAd({k: ad[k] for k in projection if k in ad})
                found.append(ad.printOld())
                if 0 < limit <= len(found):
                    break
        return found

    def query(self, body: dict) -> dict:
        with self.lock:
            return {"ads": self._select(list(self.jobs.values()), body["constraint"], body["projection"])}

    def history_query(self, body: dict) -> dict:
        with self.lock:
            return {
                "ads": self._select(
                    list(reversed(self.history)),
                    body["constraint"],
                    body["projection"],
                    body.get("match", -1),
                )
            }

    def act(self, body: dict) -> dict:
        action, reason = body["action"], body.get("reason")
        expr = classad2.ExprTree(body["constraint"])
        matched = 0
        with self.lock:
            for cluster, ad in list(self.jobs.items()):
                if expr.eval(ad) is not True:
                    continue
                status = ad["JobStatus"]
                if action in ("Remove", "RemoveX") and status not in (3, 4):
                    self._end(cluster, 3, RemoveReason=reason or "via condor_rm (by user root)")
                elif action == "Hold" and status in (1, 2):
                    self._end(
                        cluster, 5, HoldReason=reason or "via condor_hold (by user root)", HoldReasonCode=1
                    )
                elif action == "Release" and status == 5:
                    self._set(cluster, 1)
                else:
                    continue
                matched += 1
        return {"matched": matched}

    # state changes
    def _set(self, cluster: int, status: int, **attrs):
        ad = self.jobs[cluster]
        ad["JobStatus"] = status
        ad["EnteredCurrentStatus"] = int(time.time())
        for key, val in attrs.items():
            ad[key] = val

    def _end(self, cluster: int, status: int, **attrs):
        proc = self.procs.pop(cluster, None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for slot, owner in list(self.claimed.items()):
            if owner == cluster:
                del self.claimed[slot]
        self._set(cluster, status, **attrs)
        if status in (3, 4):
            self.jobs[cluster]["CompletionDate"] = int(time.time())

    def _start(self, cluster: int, slot: classad2.ClassAd):
        ad = self.jobs[cluster]
        account = pwd.getpwnam(ad["Owner"])
        env = {
            "PATH": "/usr/bin:/bin",
            "_CONDOR_SCRATCH_DIR": ad["Iwd"],
            "_CONDOR_SLOT": slot["Name"].split("@")[0],
        }
        for item in split_new_syntax(ad["Environment"]):
            key, _, val = item.partition("=")
            env[key] = val
        out = open(ad["Out"], "ab") if ad["Out"] != "/dev/null" else subprocess.DEVNULL
        if out is not subprocess.DEVNULL:
            os.fchown(out.fileno(), account.pw_uid, account.pw_gid)
        proc = subprocess.Popen(
            [ad["Cmd"], *split_new_syntax(ad["Arguments"])],
            env=env,
            cwd=ad["Iwd"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=os.getgrouplist(account.pw_name, account.pw_gid),
            start_new_session=True,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        self.procs[cluster] = proc
        self.claimed[slot["Name"]] = cluster
        now = int(time.time())
        self._set(cluster, 2, RemoteHost=slot["Name"], JobCurrentStartDate=now, JobStartDate=now)

    def cycle(self):
        """One negotiation + periodic-expression + reaping pass."""
        with self.lock:
            now = time.time()
            for cluster, ad in list(self.jobs.items()):
                status = ad["JobStatus"]
                if status == 2:
                    proc = self.procs.get(cluster)
                    if proc is not None and proc.poll() is not None:
                        self.procs.pop(cluster)
                        self._end(cluster, 4, ExitCode=proc.returncode)
                        continue
                if status in (1, 2):
                    if "PeriodicRemove" in ad and ad.eval("PeriodicRemove") is True:
                        expr = str(ad.lookup("PeriodicRemove"))
                        self._end(
                            cluster,
                            3,
                            RemoveReason=f"The job attribute PeriodicRemove expression '{expr}' evaluated to TRUE",
                        )
                        continue
                    if "PeriodicHold" in ad and ad.eval("PeriodicHold") is True:
                        reason = ad.eval("PeriodicHoldReason") if "PeriodicHoldReason" in ad else None
                        expr = str(ad.lookup("PeriodicHold"))
                        self._end(
                            cluster,
                            5,
                            HoldReasonCode=3,
                            HoldReason=str(reason)
                            if reason
                            else f"The job attribute PeriodicHold expression '{expr}' evaluated to TRUE",
                        )
                        continue
                if status == 1:
                    free = [s for s in self.slots if s["Name"] not in self.claimed]
                    match = next((s for s in free if ad.matches(s) and s.matches(ad)), None)
                    if match is None:
                        ad["LastRejMatchReason"] = "no match found "
                        ad["LastRejMatchTime"] = int(now)
                    else:
                        self._start(cluster, match)
                if status in (3, 4) and now - ad["EnteredCurrentStatus"] > self.leave_after:
                    self.history.append(self.jobs.pop(cluster))

    def run_forever(self):
        while True:
            try:
                self.cycle()
            except Exception as e:  # keep scheduling; the tests read the log
                print(f"cycle error: {e!r}", flush=True)
            time.sleep(0.3)


def make_handler(schedd: Schedd):
    routes = {
        "/submit": schedd.submit,
        "/query": schedd.query,
        "/history": schedd.history_query,
        "/act": schedd.act,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            try:
                answer, code = routes[self.path](body), 200
            except PermissionError as e:
                answer, code = {"error": f"Permission denied: {e}"}, 403
            except Exception as e:
                answer, code = {"error": f"{type(e).__name__}: {e}"}, 400
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/submissions":
                data = json.dumps(schedd.submissions).encode()
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
    parser.add_argument("--slots", required=True, help="JSON file: a list of slot ads")
    args = parser.parse_args()
    with open(args.slots) as f:
        schedd = Schedd(json.load(f))
    threading.Thread(target=schedd.run_forever, daemon=True).start()

    def shutdown(signum, frame):  # a schedd going away here takes its jobs with it
        with schedd.lock:
            for cluster in list(schedd.procs):
                schedd._end(cluster, 3, RemoveReason="test schedd shut down")
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(schedd)).serve_forever()


if __name__ == "__main__":
    main()
