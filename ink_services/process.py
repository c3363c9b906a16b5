"""How an INK service process runs: until the hub stops it, then a clean exit (no traceback);
and never longer than the hub that started it.

A hub that dies uncleanly (``kill -9``, the OOM killer) cannot stop its managed services: they
would live on holding their ports, and the next hub's own services could not start. So every
service watches its parent and ends itself when the hub is gone. Services that are not INK's
code (jupyterhub-idle-culler) run under ``python -m ink_services.process MODULE ARGS...``,
which adds the same watch.
"""

import os
import runpy
import signal
import sys
import threading
import time

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
