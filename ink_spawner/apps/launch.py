"""Runs one app for jupyter-server-proxy and turns a failed start into a page the user can read.

    python -m ink_spawner.apps.launch --unix-socket SOCKET --title TITLE -- COMMAND ARGS...

jupyter-server-proxy waits for an app's socket to answer and, when the app died at start, keeps
the user on a spinning page until its timeout, then shows "could not start". The job wrapper
puts every app behind this launcher instead: the app's output goes to the job's log as before,
its last lines are kept, and when the app exits before (or after) answering, the launcher
answers on the app's socket itself with "TITLE could not start (exit code N)" and those lines.
"""

from __future__ import annotations

import argparse
import collections
import html
import os
import signal
import subprocess
import sys
import threading
import time

from tornado import web

from ink_core import pagelook
from ink_spawner.apps import serve_on_unix_socket

TAIL_LINES = 40
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}: not running</title>
{head}
<style>main {{ max-width: 60rem; margin: 0 auto; padding: 0 1rem }}
pre {{ background: #1d2433; color: #e8ecf2; padding: 1rem; overflow-x: auto; font-size: 13px }}</style>
</head><body>{bar}<main><h1 id="ink-app-failed" class="h3">{title} {what} (exit code {code})</h1>
<p>{hint}</p><p>Its last output:</p><pre id="ink-app-log">{tail}</pre>
<p>The whole log is in your job's log under <code>~/.ink/logs</code>. Stop this server on the
hub's home page and start it again, or pick another app.</p></main></body></html>
"""


class Output:
    """The app's output, credentials replaced by [hidden]: copied to our stderr (the job's
    log), the last lines kept for the failure page."""

    def __init__(self, stream, secrets: list[str]):
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.secrets = [s for s in secrets if s]
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            for secret in self.secrets:
                line = line.replace(secret, "[hidden]")
            sys.stderr.write(line + "\n")  # the job's log: never a credential either
            sys.stderr.flush()
            self.lines.append(line)

    def tail(self) -> str:
        self.thread.join(2)
        return "\n".join(self.lines)


def explain(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (out of memory, or the job's memory limit)" if code == -signal.SIGKILL else ""
        return f"It was killed by {name}{hint}."
    if code == 127:
        return "A program it needs was not found: the site may not have installed it on this node."
    return "It reported the reason below."


def serve_failure(sock: str, title: str, what: str, code: int, tail: str) -> None:
    hub, user = pagelook.in_job()
    page = PAGE.format(
        head=pagelook.hub_look(hub),
        bar=pagelook.nav_bar(hub, user),
        title=html.escape(title),
        what=what,
        code=code,
        hint=html.escape(explain(code)),
        tail=html.escape(tail),
    )

    class Failed(web.RequestHandler):
        def get(self, _path=""):
            self.set_status(502)
            self.set_header("Cache-Control", "no-store")
            self.finish(page)

        post = put = delete = get

    serve_on_unix_socket(web.Application([(r"/(.*)", Failed)]), sock)  # replaces the dead app's socket


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-launch")
    parser.add_argument("--unix-socket", required=True, help="the app's socket (from the proxy)")
    parser.add_argument("--title", default="The app", help="the app's name, for the page")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the app's command after --")
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as e:
        print(f"ink-launch: {command[0]}: {e.strerror}", file=sys.stderr, flush=True)
        serve_failure(args.unix_socket, args.title, "could not start", 127, f"{command[0]}: {e.strerror}")
        return 0
    output = Output(child.stdout, [os.environ.get("JUPYTERHUB_API_TOKEN", "")])

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not (started := os.path.exists(args.unix_socket)) and child.poll() is None:
        time.sleep(0.1)
    code = child.wait()
    what = "stopped" if started else "could not start"
    print(f"ink-launch: {args.title} {what}: exit code {code}", file=sys.stderr, flush=True)
    serve_failure(args.unix_socket, args.title, what, code, output.tail())
    return 0


if __name__ == "__main__":
    sys.exit(main())
