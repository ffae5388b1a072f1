"""Request bodies through the local server's HTTP layer (tinkex.local.http.HTTPServer).

Large ``Content-Length`` bodies are read into one buffer of their announced size; these tests
pin what that must keep: the body arrives whole and in order however the client cuts it,
pipelined requests on one connection stay apart, and a body cut short ends the connection
without reaching the handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tinkex.local.http import MAX_HEADER_BYTES, HTTPServer, Request, Response


class _EchoDigest:
    """An HTTPServer on a loop thread whose handler answers the body's length and digest."""

    def __init__(self) -> None:
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._server = HTTPServer(self._handle)
        self._loop.run_until_complete(self._server.start())
        self.port = self._server.port
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, request: Request) -> Response:
        self.calls += 1
        digest = hashlib.sha256(request.body).hexdigest()
        body = json.dumps({"length": len(request.body), "sha256": digest}).encode()
        return Response(body=body)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def echo() -> Iterator[_EchoDigest]:
    server = _EchoDigest()
    yield server
    server.close()


def _post_head(length: int) -> bytes:
    return f"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode()


def _read_answers(sock: socket.socket, count: int) -> list[dict[str, object]]:
    data = b""
    answers: list[dict[str, object]] = []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1")
            length = int(head.lower().split("content-length:", 1)[1].split("\r\n", 1)[0])
            if len(data) >= head_end + 4 + length:
                answers.append(json.loads(data[head_end + 4 : head_end + 4 + length]))
                data = data[head_end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(answers)} answers"
        data += chunk
    return answers


def _body(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


def test_a_large_body_sent_in_odd_pieces_arrives_whole(echo: _EchoDigest) -> None:
    body = _body(3 * MAX_HEADER_BYTES + 12345, 1)
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(_post_head(len(body)) + body[:100])
        for start in range(100, len(body), 70001):
            time.sleep(0.005)  # the server sees the body arrive in several reads
            sock.sendall(body[start : start + 70001])
        (answer,) = _read_answers(sock, 1)
    assert answer == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_pipelined_requests_of_every_size_stay_apart(echo: _EchoDigest) -> None:
    sizes = [0, 10, MAX_HEADER_BYTES, MAX_HEADER_BYTES + 1, 5 * MAX_HEADER_BYTES, 3]
    bodies = [_body(size, seed) for seed, size in enumerate(sizes)]
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(b"".join(_post_head(len(b)) + b for b in bodies))  # all at once
        answers = _read_answers(sock, len(bodies))
    assert answers == [{"length": len(b), "sha256": hashlib.sha256(b).hexdigest()} for b in bodies]


def test_a_large_body_cut_short_ends_the_connection_without_a_call(echo: _EchoDigest) -> None:
    announced = 4 * MAX_HEADER_BYTES
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(_post_head(announced) + _body(announced // 2, 2))
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""  # closed, nothing answered
    assert echo.calls == 0
