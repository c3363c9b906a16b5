"""What a batch job submitted through INK's jobs API runs, as the user, on any backend:

    python -m ink_spawner.jobscript.batch --dir OUTPUT_DIR -- COMMAND [ARGS...]

It opens OUTPUT_DIR/stdout.log and stderr.log itself (so the files are the user's, made with
the user's rights), runs the command in its own process group, passes SIGTERM on (cancel,
walltime), and records what the scheduler may forget once the job is gone: host, start and end
times, exit code, CPU time and peak memory, in OUTPUT_DIR/ink-job.json (replaced atomically).
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

from .private_file import write_private
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-batch")
    parser.add_argument("--dir", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    load_env_file()  # HTCondor: the environment comes in a private file, not in the job ad
    os.makedirs(args.dir, mode=0o755, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    stdout = os.open(os.path.join(args.dir, "stdout.log"), flags, 0o644)
    stderr = os.open(os.path.join(args.dir, "stderr.log"), flags, 0o644)
    record(args.dir, host=socket.gethostname(), started=time.time(), state="running", pid=os.getpid())
    try:  # the image's and the experiment's set-up, as a session gets them
        env = build_env(dict(os.environ))
    except (RuntimeError, OSError, ValueError) as e:
        os.write(stderr, f"ink: {e}\n".encode())
        record(args.dir, ended=time.time(), state="failed", exit_code=126, error=str(e))
        return 126
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True, env=env
        )
    except OSError as e:
        os.write(stderr, f"ink: cannot run {command[0]!r}: {e.strerror or e}\n".encode())
        record(args.dir, ended=time.time(), state="failed", exit_code=127, error=str(e.strerror or e))
        return 127

    def forward(signum, _frame):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, forward)
    code = child.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    exit_code = code if code >= 0 else 128 - code  # killed by signal N -> 128 + N, as shells say
    record(
        args.dir,
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
