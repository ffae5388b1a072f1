"""A loopback HTTP forward proxy (the kind ``HTTP_PROXY`` names) that records what it is asked.

A client configured with ``http://127.0.0.1:PORT`` as its proxy sends each request for an
``http://`` server to it in absolute form (``GET http://host:port/path HTTP/1.1``), with the
proxy's own headers (``Proxy-Authorization`` ...). The proxy records the request, forwards it to
the origin in origin form without the ``Proxy-*`` headers, and returns the origin's answer.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from _loopback import HOP_BY_HOP, LoopbackServer, QuietHandler, relay

__all__ = ["ForwardProxy", "Proxied", "forward_proxy"]


@dataclass(frozen=True)
class Proxied:
    """One request as the proxy received it; ``headers`` keys are lower-case."""

    method: str
    url: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path


class ForwardProxy(LoopbackServer):
    """Records and forwards absolute-form requests; ``url`` is what to set as the proxy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[Proxied] = []
        super().__init__(self._handler_class(), name="forward-proxy")

    def seen(self) -> list[Proxied]:
        """The requests received so far, in arrival order."""
        with self._lock:
            return list(self._seen)

    def _handler_class(self) -> type[QuietHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _forward(self) -> None:
                body = self.read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with proxy._lock:
                    proxy._seen.append(Proxied(self.command, self.path, headers))
                target = urllib.parse.urlsplit(self.path)
                if not target.hostname:  # origin form: not a proxy request
                    self.send_error(400, "absolute-form request expected")
                    return
                forwarded = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in HOP_BY_HOP and not k.lower().startswith("proxy-")
                }
                origin = target.path + (f"?{target.query}" if target.query else "")
                relay(self, (target.hostname, target.port), origin, body, forwarded)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        return Handler


@contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    """A running :class:`ForwardProxy` for the ``with`` block."""
    proxy = ForwardProxy()
    try:
        yield proxy
    finally:
        proxy.close()
