"""Transport against a real HTTP server on 127.0.0.1 (no mocks between us and the socket)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _loopback import LoopbackServer, QuietHandler

from tinkex._config import ClientSettings
from tinkex._exceptions import APIConnectionError, APITimeoutError, NotFoundError
from tinkex._transport import NO_RETRY, RateLimiter, Transport

SEEN: list[dict[str, Any]] = []


class Handler(QuietHandler):
    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes; without this Nagle + delayed ACK add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "loop-1")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def do_POST(self) -> None:
        body = self.read_body()
        SEEN.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "port": self.client_address[1],
            }
        )
        if self.path == "/api/v1/slow":
            time.sleep(0.5)
        if self.path == "/api/v1/missing":
            self._reply(404, b'{"detail": "no such thing"}')
            return
        self._reply(200, json.dumps({"echo": json.loads(body or b"null")}).encode())

    def do_GET(self) -> None:
        SEEN.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": b"",
                "port": self.client_address[1],
            }
        )
        self._reply(200, b'{"status": "ok"}')


@pytest.fixture
def server() -> Iterator[str]:
    SEEN.clear()
    with LoopbackServer(Handler) as loopback:
        yield loopback.url


def make(base_url: str, **kwargs: Any) -> Transport:
    settings = ClientSettings(base_url=base_url, api_key="tml-loop", **kwargs)
    return Transport(settings, rate_limiter=RateLimiter())


def test_round_trip_and_connection_reuse(server: str) -> None:
    with make(server) as t:
        for i in range(5):
            assert t.request("POST", "/api/v1/echo", json={"i": i}).json() == {"echo": {"i": i}}
        assert t.request("GET", "/api/v1/healthz").json() == {"status": "ok"}
    assert [s["body"] for s in SEEN[:2]] == [b'{"i":0}', b'{"i":1}']
    assert SEEN[0]["headers"]["X-API-Key"] == "tml-loop"
    assert SEEN[0]["headers"]["Content-Length"] == "7"
    assert len({s["port"] for s in SEEN}) == 1  # one kept-alive connection


def test_status_error_from_real_server(server: str) -> None:
    with make(server) as t, pytest.raises(NotFoundError) as info:
        t.request("POST", "/api/v1/missing", json={})
    assert info.value.request_id == "loop-1"
    assert info.value.body == {"detail": "no such thing"}


def test_read_timeout(server: str) -> None:
    with make(server, timeout=0.1) as t, pytest.raises(APITimeoutError) as info:
        t.request("POST", "/api/v1/slow", json={}, retry=NO_RETRY)
    assert "POST /api/v1/slow" in str(info.value)


def test_connection_refused() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with make(f"http://127.0.0.1:{port}") as t, pytest.raises(APIConnectionError) as info:
        t.request("GET", "/api/v1/healthz", retry=NO_RETRY)
    assert not isinstance(info.value, APITimeoutError)
    assert "GET /api/v1/healthz" in str(info.value)


def test_base_url_path_prefix_is_kept(server: str) -> None:
    with make(server + "/services/tinker") as t:
        t.request("GET", "/api/v1/healthz")
    assert SEEN[0]["path"] == "/services/tinker/api/v1/healthz"
