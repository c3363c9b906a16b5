"""Small web apps INK runs inside a job, behind jupyter-server-proxy."""

from __future__ import annotations

import signal
from collections.abc import Callable

from tornado import ioloop, web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_unix_socket


def serve_on_unix_socket(app: web.Application, path: str, on_stop: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on ``path`` (mode 600: only this user connects; a stale socket there is
    replaced) until SIGTERM or SIGINT, then run ``on_stop``."""
    server = HTTPServer(app)
    server.add_socket(bind_unix_socket(path, mode=0o600))
    loop = ioloop.IOLoop.current()

    def stop(*_):
        if on_stop is not None:
            on_stop()
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.start()
