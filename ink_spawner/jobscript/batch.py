"""What a batch job submitted through INK's jobs API runs, as the user, on any backend:

    python -m ink_spawner.jobscript.batch --dir OUTPUT_DIR -- COMMAND [ARGS...]

It opens OUTPUT_DIR/stdout.log and stderr.log itself (so the files are the user's, made with
the user's rights), runs the command in its own process group, passes SIGTERM on (cancel,
walltime), keeps the user's Kerberos ticket fresh when a session of the user submitted the job
(its Dask workers), and records what the scheduler may forget once the job is gone: host, start
and end times, exit code, CPU time and peak memory, in OUTPUT_DIR/ink-job.json (replaced
atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

from ink_core import jobsettings
from ink_core.arrays import ArraySpec, parse_array, with_index
from ink_core.private import write_private

from .credentials_agent import start_agent
from .wrapper import build_env, load_env_file

RECORD = "ink-job.json"


def record(folder: str, **facts) -> None:
    path = os.path.join(folder, RECORD)
    try:
        with open(path) as f:
            current = json.load(f)
    except (OSError, ValueError):
        current = {}
    current.update(facts)
    write_private(path, json.dumps(current).encode())
    os.chmod(path, 0o644)


INDEX_VARIABLE = "INK_ARRAY_INDEX"  # an array task's index, in its environment
CANCELLED = "cancelled"  # in a task's folder: the user cancelled this task alone


def forward_signals(send) -> None:
    """Pass what ends a job (cancel, walltime, a hangup) on: ``send(signum)``."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, lambda signum, _frame: send(signum))


def run_tasks(folder: str, spec: ArraySpec, command: list[str]) -> int:
    """An array where the backend has none (local): its tasks as children of this job, at most
    ``spec.at_once`` at a time, each a runner of its own (its folder, logs and record). A
    signal (cancel, walltime) stops starting new ones and reaches the running ones."""
    waiting, running, failed, stopping = list(spec.indices), {}, 0, []

    def send(signum):
        stopping.append(signum)
        for child in running.values():
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    forward_signals(send)
    runner = [sys.executable, "-m", "ink_spawner.jobscript.batch", "--dir", folder]
    runner += ["--index-from", INDEX_VARIABLE, "--", *command]
    while running or (waiting and not stopping):
        while waiting and not stopping and len(running) < spec.at_once:
            index = waiting.pop(0)
            if os.path.exists(os.path.join(folder, str(index), CANCELLED)):
                continue  # cancelled before its turn: it never starts
            env = {**os.environ, INDEX_VARIABLE: str(index)}
            running[index] = subprocess.Popen(runner, stdin=subprocess.DEVNULL, env=env)
        time.sleep(0.1)
        for index, child in list(running.items()):
            if child.poll() is not None:
                cancelled = os.path.exists(os.path.join(folder, str(index), CANCELLED))
                failed += child.returncode != 0 and not cancelled
                del running[index]
    return 1 if failed or stopping else 0


def cancel_task(folder: str, index: int) -> int:
    """One task of an array, as the user: mark it so it never starts (whichever runner starts
    it, on any backend), and end it if it runs on this host (its runner, found by its folder
    and index, gets SIGTERM and passes it on)."""
    task = os.path.join(folder, str(index))
    os.makedirs(task, mode=0o755, exist_ok=True)
    write_private(os.path.join(task, CANCELLED), b"")
    for proc in os.listdir("/proc"):
        if not proc.isdigit() or int(proc) == os.getpid():
            continue
        try:
            with open(f"/proc/{proc}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{proc}/environ", "rb") as f:
                environ = f.read().decode(errors="replace").split("\0")
        except OSError:  # gone, or not ours
            continue
        runner = "ink_spawner.jobscript.batch" in argv and "--index-from" in argv
        if runner and folder in argv and f"{INDEX_VARIABLE}={index}" in environ:
            try:
                os.kill(int(proc), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-batch")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tasks", help="an array to run here, e.g. 0-99%%4 (backends without arrays)")
    parser.add_argument("--index-from", metavar="VAR", help="an array task: its index is in VAR")
    parser.add_argument(
        "--cancel-task", type=int, metavar="INDEX", help="cancel one task of the array in --dir"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cancel_task is not None:
        return cancel_task(args.dir, args.cancel_task)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    # HTCondor: the environment comes in a private file, not in the job ad
    load_env_file(keep=args.index_from is not None)
    if args.tasks:
        return run_tasks(args.dir, parse_array(args.tasks), command)
    index = int(os.environ[args.index_from]) if args.index_from else None
    folder = args.dir
    if index is not None:  # an array task: its own folder, its index in its arguments
        folder = os.path.join(args.dir, str(index))
        command = with_index(command, index)
        os.environ[INDEX_VARIABLE] = str(index)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    if index is not None and os.path.exists(os.path.join(folder, CANCELLED)):
        record(folder, index=index, state="cancelled", ended=time.time())  # before its turn came
        return 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    stdout = os.open(os.path.join(folder, "stdout.log"), flags, 0o644)
    stderr = os.open(os.path.join(folder, "stderr.log"), flags, 0o644)
    facts = {"index": index} if index is not None else {}
    record(folder, host=socket.gethostname(), started=time.time(), state="running", pid=os.getpid(), **facts)
    base = dict(os.environ)
    # a job its session submitted: the user's Kerberos ticket, fetched now and kept fresh, as in
    # the session; the token that fetches it is the agent's alone
    agent = start_agent(base, lambda line: os.write(stderr, f"ink: {line}\n".encode()))
    for name in ("JUPYTERHUB_API_TOKEN", jobsettings.VARIABLE["credentials_url"]):
        base.pop(name, None)
    if agent is not None:
        record(folder, ticket="delivered" if agent.fetched else "not yet")
    try:  # the image's and the experiment's set-up, as a session gets them
        env = build_env(base)
    except (RuntimeError, OSError, ValueError) as e:
        os.write(stderr, f"ink: {e}\n".encode())
        record(folder, ended=time.time(), state="failed", exit_code=126, error=str(e))
        return 126
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True, env=env
        )
    except OSError as e:
        os.write(stderr, f"ink: cannot run {command[0]!r}: {e.strerror or e}\n".encode())
        record(folder, ended=time.time(), state="failed", exit_code=127, error=str(e.strerror or e))
        return 127

    def send(signum):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    forward_signals(send)
    code = child.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    exit_code = code if code >= 0 else 128 - code  # killed by signal N -> 128 + N, as shells say
    record(
        folder,
        ended=time.time(),
        state="completed" if code == 0 else "failed",
        exit_code=exit_code,
        signal=-code if code < 0 else None,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        max_rss_bytes=usage.ru_maxrss * 1024,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
