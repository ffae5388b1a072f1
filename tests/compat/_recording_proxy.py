"""A loopback HTTP proxy that records every request before forwarding it to an upstream server.

Put it in front of ``tinkex.local.LocalServer`` and point a client (tinkex or the official SDK)
at ``proxy.base_url``: each request is stored as a :class:`Recorded` (method, path, query,
headers, body) and forwarded unchanged; the upstream answer goes back unchanged too. The
recording is what the client put on the wire, so two clients running the same script can be
compared request by request.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from _loopback import HOP_BY_HOP, LoopbackServer, QuietHandler, relay

__all__ = ["Recorded", "RecordingProxy", "recording_proxy"]


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived at the proxy; ``headers`` keys are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def endpoint(self) -> str:
        """``"POST /api/v1/asample"``."""
        return f"{self.method} {self.path}"


class RecordingProxy(LoopbackServer):
    """Records and forwards requests to ``upstream`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._lock = threading.Lock()
        self._records: list[Recorded] = []
        super().__init__(self._handler_class(), name="recording-proxy")

    @property
    def base_url(self) -> str:
        """Where to point the client: the proxy's ``url``."""
        return self.url

    def records(self) -> list[Recorded]:
        """What was recorded so far, in arrival order."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def _record(self, record: Recorded) -> None:
        with self._lock:
            self._records.append(record)

    def _handler_class(self) -> type[QuietHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _forward(self) -> None:
                body = self.read_body()
                path, _, query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy._record(Recorded(self.command, path, query, headers, body))
                forwarded = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                relay(self, proxy._upstream, self.path, body, forwarded)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        return Handler


@contextmanager
def recording_proxy(upstream: str) -> Iterator[RecordingProxy]:
    """A :class:`RecordingProxy` in front of ``upstream`` for the ``with`` block."""
    proxy = RecordingProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
