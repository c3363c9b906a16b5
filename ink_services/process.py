"""How an INK service process runs: until the hub stops it, then a clean exit (no traceback)."""

import signal

from tornado import ioloop


def serve_forever(log) -> None:
    loop = ioloop.IOLoop.current()

    def stop(signum, _frame):
        log.info("stopping (signal %d)", signum)
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.start()
