"""How the transport reads answer bodies, against a raw socket server on 127.0.0.1: large
bodies whole and on a kept-alive connection, broken ones as tinkex errors naming the request
(never a raw urllib3/requests exception)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tinkex._config import ClientSettings
from tinkex._exceptions import APIConnectionError
from tinkex._transport import NO_RETRY, RateLimiter, Transport

Answer = Callable[[socket.socket, int], None]


def _read_request(conn: socket.socket) -> bool:
    """Read one request (headers + Content-Length body); False when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return True


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], tuple[str, list[int]]]]:
    """Start a server answering every request with ``answer(conn, n)`` (n: the request's
    number on its connection); yields its URL and the list of accepted connections' ports."""
    sockets: list[socket.socket] = []

    def start(answer: Answer) -> tuple[str, list[int]]:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sockets.append(listener)
        ports: list[int] = []

        def handle(conn: socket.socket) -> None:
            with conn:
                n = 0
                while _read_request(conn):
                    answer(conn, n)
                    n += 1

        def accept() -> None:
            while True:
                try:
                    conn, address = listener.accept()
                except OSError:
                    return
                ports.append(address[1])
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}", ports

    yield start
    for listener in sockets:
        listener.close()


def _head(length: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def _transport(base_url: str, **kwargs: float) -> Transport:
    settings = ClientSettings(base_url=base_url, api_key="tml-loop", **kwargs)  # type: ignore[arg-type]
    return Transport(settings, rate_limiter=RateLimiter())


BIG = bytes(range(256)) * 12_000  # ~3 MB


def test_large_bodies_arrive_whole_on_one_kept_alive_connection(
    serve: Callable[..., tuple[str, list[int]]],
) -> None:
    def answer(conn: socket.socket, n: int) -> None:
        body = BIG[n:]
        conn.sendall(_head(len(body)) + body)

    url, ports = serve(answer)
    with _transport(url) as transport:
        for n in range(3):
            response = transport.request("POST", "/api/v1/retrieve_future", json={}, retry=NO_RETRY)
            assert response.content == BIG[n:]
    assert len(ports) == 1


def test_a_body_cut_short_is_a_connection_error_naming_the_request(
    serve: Callable[..., tuple[str, list[int]]],
) -> None:
    def answer(conn: socket.socket, n: int) -> None:
        conn.sendall(_head(len(BIG)) + BIG[:1000])
        conn.shutdown(socket.SHUT_RDWR)

    url, _ = serve(answer)
    with _transport(url) as transport, pytest.raises(APIConnectionError) as info:
        transport.request("POST", "/api/v1/retrieve_future", json={}, retry=NO_RETRY)
    assert "POST /api/v1/retrieve_future" in str(info.value)


def test_a_body_that_stalls_past_the_read_timeout_is_an_api_error(
    serve: Callable[..., tuple[str, list[int]]],
) -> None:
    release = threading.Event()

    def answer(conn: socket.socket, n: int) -> None:
        conn.sendall(_head(len(BIG)) + BIG[:1000])
        release.wait(5)

    url, _ = serve(answer)
    started = time.monotonic()
    try:
        with _transport(url, timeout=0.3) as transport, pytest.raises(APIConnectionError) as info:
            transport.request("POST", "/api/v1/retrieve_future", json={}, retry=NO_RETRY)
    finally:
        release.set()
    assert "POST /api/v1/retrieve_future" in str(info.value)
    assert time.monotonic() - started < 4
