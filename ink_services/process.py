"""How an INK service process runs: until the hub stops it, then a clean exit (no traceback);
and never longer than the hub that started it.

A hub that dies uncleanly (``kill -9``, the OOM killer) cannot stop its managed services: they
would live on holding their ports, and the next hub's own services could not start. So every
service watches its parent and ends itself when the hub is gone. Services that are not INK's
code (jupyterhub-idle-culler) run under ``python -m ink_services.process MODULE ARGS...``,
which adds the same watch.
"""

import logging
import os
import runpy
import signal
import sys
import threading
import time
from urllib.parse import urlparse

from tornado import ioloop

PARENT_CHECK_SECONDS = 1.0


def watch_parent(interval: float = PARENT_CHECK_SECONDS) -> None:
    """SIGTERM to this process once the process that started it (the hub) is gone: the
    orphan is then re-parented, so its parent's pid changes."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                print(f"the hub (pid {parent}) is gone: stopping", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, daemon=True, name="ink-watch-hub").start()


def serve_forever(log) -> None:
    loop = ioloop.IOLoop.current()

    def stop(signum, _frame):
        log.info("stopping (signal %d)", signum)
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watch_parent()
    loop.start()


def start_logging(name: str) -> None:
    """Every service's log lines: level, time, the service's name, the message."""
    logging.basicConfig(level=logging.INFO, format=f"[%(levelname)1.1s %(asctime)s {name}] %(message)s")


def service_prefix(name: str) -> str:
    """The URL prefix the hub gave the service (``/services/NAME/`` when run by hand)."""
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{name}/")


def run_service(
    app, log, default_port: int, max_body_size: int, background=(), about: str = "", **listen
) -> None:
    """Listen where the hub said (JUPYTERHUB_SERVICE_URL), start the ``background`` coroutine
    functions on the loop, and serve until the hub stops the service (or is gone)."""
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{default_port}"))
    app.listen(url.port, url.hostname, max_body_size=max_body_size, **listen)
    loop = ioloop.IOLoop.current()
    for task in background:
        loop.spawn_callback(task)
    log.info("serving %s on %s%s", app.settings.get("prefix", "/"), url.geturl(), about)
    serve_forever(log)


def main(argv=None) -> None:
    """``python -m ink_services.process MODULE ARGS...``: run MODULE as ``python -m`` would,
    ending with the hub."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m ink_services.process MODULE [ARGS...]")
    watch_parent()
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
