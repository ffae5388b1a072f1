"""One way for tests to serve an ``http.server`` handler on 127.0.0.1: :class:`LoopbackServer`.

Every stand-in of the suite (recording and forward proxies, the CLI's route tables, a stand-in
Hugging Face Hub, the transport tests' scripted sites) binds a port the OS picks, serves from a
daemon thread and must stop cleanly; this module does that once. ``pytest`` finds it through
``pythonpath = ["tests"]`` in pyproject.toml (``from _loopback import LoopbackServer``), and it
needs only the standard library, so it also works in the minimum-versions venv.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Callable
from typing import Any, Self

__all__ = ["LoopbackServer"]

# How often the serving thread checks for shutdown: close() waits at most this long.
POLL_INTERVAL = 0.01
JOIN_TIMEOUT = 5.0

HandlerFactory = Callable[[Any, Any, socketserver.BaseServer], socketserver.BaseRequestHandler]


class LoopbackServer:
    """``handler`` served by a ``ThreadingHTTPServer`` on ``127.0.0.1:<free port>``.

    The server thread starts at construction and is stopped and joined by :meth:`close` (or the
    ``with`` block's end); request threads are daemon threads, so a client that keeps a
    connection open never blocks the shutdown. ``url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, handler: HandlerFactory, *, name: str = "loopback-http") -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(POLL_INTERVAL,), name=name, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL clients are pointed at."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Stop serving, close the listening socket and join the thread (idempotent)."""
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(JOIN_TIMEOUT)
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
