"""One way for tests to serve an ``http.server`` handler on 127.0.0.1: :class:`LoopbackServer`.

Every stand-in of the suite (recording and forward proxies, the CLI's route tables, a stand-in
Hugging Face Hub, the transport tests' scripted sites) binds a port the OS picks, serves from a
daemon thread and must stop cleanly; this module does that once. ``pytest`` finds it through
``pythonpath = ["tests"]`` in pyproject.toml (``from _loopback import LoopbackServer``), and it
needs only the standard library, so it also works in the minimum-versions venv.
"""

from __future__ import annotations

import http.client
import http.server
import socketserver
import threading
from collections.abc import Callable, Mapping
from typing import Any, Self

__all__ = ["HOP_BY_HOP", "LoopbackServer", "QuietHandler", "relay"]

# How often the serving thread checks for shutdown: close() waits at most this long.
POLL_INTERVAL = 0.01
JOIN_TIMEOUT = 5.0

#: Headers that belong to one connection and are not passed on (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
)

HandlerFactory = Callable[[Any, Any, socketserver.BaseServer], socketserver.BaseRequestHandler]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """The base of the stand-ins' handlers: HTTP/1.1 (connections kept alive, as clients
    expect), no request log on stderr, and :meth:`read_body`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged."""

    def read_body(self) -> bytes:
        """The request body: ``Content-Length`` bytes (none without the header)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


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


def relay(
    handler: http.server.BaseHTTPRequestHandler,
    upstream: tuple[str, int | None],
    target: str,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    """Send ``handler``'s request (``target``, ``body``, ``headers`` as given) to ``upstream``
    and its answer back through ``handler``, without hop-by-hop headers; when the upstream
    drops the connection (an injected reset), ``handler``'s connection is dropped too."""
    connection = http.client.HTTPConnection(*upstream, timeout=120)
    try:
        connection.request(handler.command, target, body=body or None, headers=dict(headers))
        answer = connection.getresponse()
        payload = answer.read()
    except (OSError, http.client.HTTPException):
        handler.close_connection = True
        handler.connection.close()
        return
    finally:
        connection.close()
    handler.send_response_only(answer.status, answer.reason)
    for key, value in answer.getheaders():
        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
            handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
