"""The `ink` command.

Anywhere (a laptop needs only this light client: ``pip install ink-workbench``): `ink login
HUB_URL` stores a hub API token; `ink jobs ...` and `ink files ...` use INK's REST APIs with
it; `ink ssh-proxy USER` is ssh's ProxyCommand to an SSH node job. On the hub host and the
batch nodes, INK's hub install adds commands through the ``ink.commands`` entry points (`ink
up`, `ink check`, `ink node-check`: ``ink_services/admin.py``). `--json` prints
machine-readable answers. Exit codes: 0 done, 1 failed, 2 usage, 3 not logged in or not
allowed, 4 not found, 5 conflict (already exists, not empty), 6 refused (bad input, too large,
too many requests), 7 hub unreachable or failing.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import itertools
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from . import api, sshproxy

HUB_INSTALL = "this command is part of INK's hub install: pip install 'ink-workbench[hub]'"


def commands_of_installs() -> dict:
    """Commands other parts of INK add (entry point group ``ink.commands``): name -> the
    command (``help``, ``arguments(parser)``, ``run(args)``), or the ImportError that keeps it
    out of this install."""
    found = {}
    for point in entry_points(group="ink.commands"):
        try:
            found[point.name] = point.load()
        except ImportError as e:
            found[point.name] = e
    return found


def emit(args, value, text: str) -> None:
    print(json.dumps(value, indent=1) if args.json else text)


def cmd_login(args) -> int:
    hub = args.hub_url.rstrip("/")
    token = (
        args.token
        or os.environ.get("INK_TOKEN")
        or getpass.getpass(f"API token for {hub} (make one on {hub}/hub/token): ")
    )
    me = api.Client(hub, token, progress=False).whoami()
    api.save_token(hub, token)
    emit(args, {"hub": hub, "user": me["name"]}, f"logged in to {hub} as {me['name']}")
    return 0


MAX_SWEEP = 1000


def tasks_of(job: dict) -> str:
    """An array's task counts for `ink jobs ls`: ' [array 0-19: 15 completed, 5 running]'."""
    counts = job.get("task_counts")
    if not job.get("array") or not counts:
        return ""
    return f" [array {job['array']}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + "]"


def parameter_value(text: str):
    """``1`` -> 1, ``0.5`` -> 0.5, ``true`` -> True, ``[1,2]`` -> a list; anything else: text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parameter_sweep(pairs: list[list[str]]) -> list[dict]:
    """``-p run 1 2 3 -p cut 0.5`` -> one run per combination of the values given."""
    names, choices = [], []
    for name, *values in pairs:
        if not values:
            raise api.ClientError(f"-p {name}: give at least one value", api.USAGE)
        names.append(name)
        choices.append([parameter_value(v) for v in values])
    runs = [dict(zip(names, combination, strict=True)) for combination in itertools.product(*choices)]
    if len(runs) > MAX_SWEEP:
        raise api.ClientError(f"{len(runs)} runs: at most {MAX_SWEEP} at once", api.USAGE)
    return runs


def cmd_jobs(args, c: api.Client) -> int:
    if args.action == "submit":
        body = {"name": args.name}
        keys = ("cpus", "memory", "walltime", "gpus", "image", "experiment", "cluster", "output_dir", "array")
        for key in keys:
            if getattr(args, key) is not None:
                body[key] = getattr(args, key)
        if args.env:
            body["env"] = dict(pair.split("=", 1) for pair in args.env)
        if args.notebook:
            body["notebook"] = args.notebook
            runs = parameter_sweep(args.parameter)
            jobs = [c.submit({**body, "parameters": p}) for p in runs]
            lines = [f"{j['id']}  {json.dumps(p)}" for j, p in zip(jobs, runs, strict=True)]
            emit(
                args, jobs if len(jobs) > 1 else jobs[0], "\n".join(lines) if len(jobs) > 1 else jobs[0]["id"]
            )
            return 0
        if args.parameter:
            raise api.ClientError("-p is for --notebook runs", api.USAGE)
        if args.script:
            body["script"] = Path(args.script).read_text()
        else:
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise api.ClientError("give a command after --, --script FILE or --notebook PATH", api.USAGE)
            body["command"] = command
        job = c.submit(body)
        emit(args, job, job["id"])
    elif args.action == "ls":
        jobs = c.jobs(args.state or "")
        lines = [f"{j['id']}  {j['state']:<10} {j['node'] or '-':<12} {j['name']}{tasks_of(j)}" for j in jobs]
        emit(args, jobs, "\n".join(lines) or "no jobs")
    elif args.action == "show":
        job = c.job(args.job_id)
        emit(args, job, "\n".join(f"{k}: {v}" for k, v in job.items()))
    elif args.action == "logs":
        c.output(args.job_id, "stderr" if args.stderr else "stdout", args.tail, sys.stdout.buffer, args.task)
    elif args.action == "cancel":
        job = c.cancel(args.job_id, args.task)
        emit(args, job, f"{job['id']}: {job['state']}{tasks_of(job)}")
    return 0


def cmd_files(args, c: api.Client) -> int:
    if args.action == "ls":
        listing = c.ls(args.path, args.all)
        lines = [f"{e['type'][0]} {e['mode']:04o} {e['size']:>14}  {e['name']}" for e in listing["entries"]]
        emit(args, listing, "\n".join(lines))
    elif args.action == "get":
        dest = Path(args.dest or args.path.rstrip("/").rsplit("/", 1)[-1])
        if dest.is_dir():
            dest = dest / args.path.rstrip("/").rsplit("/", 1)[-1]
        result = c.get(args.path, dest)
        emit(args, result, f"{result['dest']} ({result['size']} bytes)")
    elif args.action == "put":
        source = Path(args.source)
        if not source.is_file():
            raise api.ClientError(f"{source}: not a file", api.USAGE)
        target = args.path if not args.path.endswith("/") else args.path + source.name
        result = c.put(source, target, args.overwrite)
        emit(args, result, f"{result['path']} ({result['size']} bytes)")
    elif args.action == "rm":
        c.rm(args.path, args.recursive)
        emit(args, {"deleted": args.path}, f"deleted {args.path}")
    elif args.action == "mkdir":
        entry = c.mkdir(args.path, args.parents)
        emit(args, entry, entry["path"])
    elif args.action == "share":
        link = c.share(args.path, int(args.days * 86400))
        emit(args, link, link["url"])
    return 0


def parser(added: dict | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ink",
        description="INK, the Interactive aNalysis worKbench",
        epilog="exit codes: 0 done, 1 failed, 2 usage, 3 not logged in/allowed, 4 not found, "
        "5 conflict, 6 refused, 7 hub unreachable",
    )
    p.add_argument("--config", help="site YAML (default: $INK_CONFIG or etc/ink.yaml)")
    p.add_argument("--hub", help="hub URL (default: the last `ink login`, or $INK_HUB)")
    p.add_argument("--json", action="store_true", help="print JSON answers for scripts")
    p.add_argument(
        "--progress", action="store_true", default=None, help="progress bars even when not a terminal"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, command in sorted((commands_of_installs() if added is None else added).items()):
        if isinstance(command, ImportError):
            sub.add_parser(name, help=f"({HUB_INSTALL})", add_help=False).add_argument("rest", nargs="*")
        else:
            command.arguments(sub.add_parser(name, help=command.help))
    login = sub.add_parser("login", help="store an API token for a hub")
    login.add_argument("hub_url")
    login.add_argument("--token", help="the token (default: $INK_TOKEN, or asked for)")

    jobs = sub.add_parser("jobs", help="batch jobs").add_subparsers(dest="action", required=True)
    submit = jobs.add_parser(
        "submit", help="submit: ink jobs submit [options] -- COMMAND ARGS... | --script FILE"
    )
    submit.add_argument("--name", default="job")
    submit.add_argument("--cpus", type=int)
    submit.add_argument("--memory")
    submit.add_argument("--walltime")
    submit.add_argument("--gpus", type=int)
    submit.add_argument("--image")
    submit.add_argument("--experiment")
    submit.add_argument(
        "--cluster", help="on a site with several clusters, which one (default: the first yours)"
    )
    submit.add_argument("--output-dir", dest="output_dir")
    submit.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    submit.add_argument("--script", help="a bash script to run")
    submit.add_argument(
        "--array", help="run once per index, e.g. 0-99%%10 ({index} in an argument is the task's index)"
    )
    submit.add_argument("--notebook", help="a notebook in your home to run unattended (path from your home)")
    submit.add_argument(
        "-p",
        "--parameter",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter; several values run the notebook once per value (and combination)",
    )
    submit.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS")
    ls = jobs.add_parser("ls", help="my jobs")
    ls.add_argument("--state")
    jobs.add_parser("show").add_argument("job_id")
    cancel = jobs.add_parser("cancel", help="cancel a job, or one task of an array (--task)")
    cancel.add_argument("job_id")
    cancel.add_argument("--task", type=int, help="an array's task (its index); the others go on")
    logs = jobs.add_parser("logs", help="a job's stdout (or --stderr)")
    logs.add_argument("job_id")
    logs.add_argument("--task", type=int, help="an array's task (its index)")
    logs.add_argument("--stderr", action="store_true")
    logs.add_argument("--tail", type=int)

    files = sub.add_parser("files", help="files in your storage areas").add_subparsers(
        dest="action", required=True
    )
    fls = files.add_parser("ls")
    fls.add_argument("path")
    fls.add_argument("-a", "--all", action="store_true", help="hidden files too")
    get = files.add_parser("get", help="download (resumes an interrupted one)")
    get.add_argument("path")
    get.add_argument("dest", nargs="?")
    put = files.add_parser("put", help="upload (resumes an interrupted one)")
    put.add_argument("source")
    put.add_argument("path", help="target path, or a folder ending in /")
    put.add_argument("--overwrite", action="store_true")
    rm = files.add_parser("rm")
    rm.add_argument("path")
    rm.add_argument("-r", "--recursive", action="store_true")
    mkdir = files.add_parser("mkdir")
    mkdir.add_argument("path")
    mkdir.add_argument("-p", "--parents", action="store_true")
    share = files.add_parser("share", help="a read-only link to a file or folder")
    share.add_argument("path")
    share.add_argument("--days", type=float, default=7)

    ssh = sub.add_parser(
        "ssh-proxy",
        help="ssh's ProxyCommand to your SSH node job through the hub (see the node's page)",
    )
    ssh.add_argument("target", metavar="USER[/SERVER]", help="whose node: your name, or name/server")
    return p


def main(argv=None) -> int:
    added = commands_of_installs()
    args = parser(added).parse_args(argv)
    if args.command in added:
        command = added[args.command]
        missing = [str(command)] if isinstance(command, ImportError) else []
        missing += [m for m in getattr(command, "requires", ()) if importlib.util.find_spec(m) is None]
        if missing:
            print(f"ink {args.command}: {HUB_INSTALL} (missing: {', '.join(missing)})", file=sys.stderr)
            return 2
        return command.run(args)
    try:
        if args.command == "login":
            return cmd_login(args)
        if args.command == "ssh-proxy":
            return sshproxy.run(args.hub, args.target)
        c = api.Client(args.hub, progress=args.progress)
        return {"jobs": cmd_jobs, "files": cmd_files}[args.command](args, c)
    except api.ClientError as e:
        print(f"ink: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("ink: interrupted (run the same command again to resume a transfer)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
