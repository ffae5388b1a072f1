"""The asyncio transport's HTTP/1.1 framing against a raw loopback server (exact wire bytes).

The real LocalServer answers with ``Content-Length`` on keep-alive connections; these answers
are the other framings a server (or a proxy in front of one) may use: chunked bodies,
``Connection: close``, a body read to EOF, gzip. Each must give the same :class:`Response`
(or exception) as the threaded transport, and a connection must be reused only when safe.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import gzip
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tinkex._config import ClientSettings
from tinkex._exceptions import APIConnectionError, BadRequestError
from tinkex._transport import Transport
from tinkex._transport import aio as aio_module
from tinkex._transport._aio_connection import ProtocolConnection, SocketConnection, selector_loop
from tinkex._transport.aio import AsyncTransport, supports


class RawServer:
    """Answers each request on a connection with the next scripted raw answer."""

    def __init__(self, answers: list[bytes], *, keep_alive: bool = True) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while self.answers:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.decode().split("\r\n"):
                        if line.lower().startswith("content-length:"):
                            length = int(line.split(":", 1)[1])
                    self.requests.append(head + await reader.readexactly(length))
                    answer = self.answers.pop(0)
                    writer.write(answer)
                    await writer.drain()
                    framed = b"Content-Length" in answer or b"chunked" in answer
                    if b"Connection: close" in answer or not framed or not keep_alive:
                        break
            except asyncio.IncompleteReadError:
                pass
            writer.close()

        async def start() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop)
        ready.wait(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


Serve = Callable[..., tuple[RawServer, Transport]]


# An IP address is connected to with a socket on the loop's selector (SocketConnection), a
# host name through asyncio's resolver and transports (ProtocolConnection): both must frame
# every answer alike.
@pytest.fixture(params=["127.0.0.1", "localhost"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    servers: list[RawServer] = []

    def start(*answers: bytes, keep_alive: bool = True) -> tuple[RawServer, Transport]:
        server = RawServer(list(answers), keep_alive=keep_alive)
        servers.append(server)
        url = f"http://{request.param}:{server.port}"
        return server, Transport(ClientSettings(base_url=url, api_key="tml-k"))

    yield start
    for server in servers:
        server.close()


def _run(transport: Transport, calls: int) -> list[Any]:
    """``calls`` requests in a row on one AsyncTransport: each Response or exception."""

    async def main() -> list[Any]:
        aio = AsyncTransport(transport, 4)
        results: list[Any] = []
        for _ in range(calls):
            try:
                results.append(await aio.request("POST", "/api/v1/x", json={"a": 1}))
            except Exception as exc:
                results.append(exc)
        await aio.close()
        return results

    return asyncio.run(main())


def test_chunked_and_content_length_answers_share_one_connection(serve: Serve) -> None:
    server, transport = serve(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b'\r\n4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n"
        b'X-Request-Id: r-2\r\n\r\n{"b": 2}',
    )
    first, second = _run(transport, 2)
    assert first.json() == {"a": 1}
    assert second.json() == {"b": 2}
    assert second.request_id == "r-2"
    assert server.connections == 1
    head = server.requests[0].decode()
    assert head.startswith("POST /api/v1/x HTTP/1.1\r\n")
    assert "X-API-Key: tml-k\r\n" in head and "Content-Length: 7\r\n" in head
    assert server.requests[0].endswith(b'{"a":1}')


def test_connection_close_and_eof_bodies_open_a_new_connection(serve: Serve) -> None:
    body = gzip.compress(json.dumps({"z": 1}).encode())
    server, transport = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + body,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
    )
    first, second, third = _run(transport, 3)
    assert first.json() == {}
    assert second.json() == {"z": 1}
    assert third.json() == []
    assert server.connections == 3


def test_a_connection_is_a_selector_socket_for_an_ip_address_else_a_transport(
    serve: Serve,
) -> None:
    _, transport = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def main() -> type:
        aio = AsyncTransport(transport, 4)
        await aio.request("POST", "/api/v1/x", json={})
        (idle,) = aio._idle
        await aio.close()
        return type(idle)

    kind = asyncio.run(main())
    by_ip = transport.base_url.startswith("http://127.0.0.1:")
    assert kind is (SocketConnection if by_ip else ProtocolConnection)


def test_only_a_selector_loop_gets_socket_connections() -> None:
    # BaseEventLoop has no add_reader, like Windows' default proactor loop.
    proactor_like = asyncio.base_events.BaseEventLoop()
    with pytest.raises(NotImplementedError):
        proactor_like.add_reader(0, print)
    selector = asyncio.SelectorEventLoop()
    try:
        assert selector_loop(selector)
        assert not selector_loop(proactor_like)
    finally:
        selector.close()


def test_an_ip_address_on_a_loop_without_a_selector_uses_a_transport(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aio_module, "selector_loop", lambda loop: False)
    _, transport = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def main() -> type:
        aio = AsyncTransport(transport, 4)
        assert (await aio.request("POST", "/api/v1/x", json={})).json() == {}
        (idle,) = aio._idle
        await aio.close()
        return type(idle)

    assert asyncio.run(main()) is ProtocolConnection


def test_a_connection_the_server_closed_while_idle_is_not_reused(serve: Serve) -> None:
    # A keep-alive answer, then the server closes the connection (its idle timeout): the next
    # request must not be written into the closed connection.
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server, transport = serve(ok, ok, keep_alive=False)

    async def main() -> list[Any]:
        aio = AsyncTransport(transport, 4)
        first = await aio.request("POST", "/api/v1/x", json={})
        await asyncio.sleep(0.2)  # the server's EOF arrives on the idle connection
        second = await aio.request("POST", "/api/v1/x", json={})
        await aio.close()
        return [first, second]

    first, second = asyncio.run(main())
    assert first.json() == {} and second.json() == {}
    assert server.connections == 2


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def _waves(transport: Transport, waves: int, wide: int, linger: float) -> list[int]:
    """``waves`` rounds of ``wide`` requests at once on one AsyncTransport with a pool of 1;
    the idle connections after each round, then after ``linger`` seconds."""

    async def main() -> list[int]:
        aio = AsyncTransport(transport, 1)
        idle = []
        for _ in range(waves):
            await asyncio.gather(*(aio.request("POST", "/api/v1/x", json={}) for _ in range(wide)))
            idle.append(sum(c.reusable() for c in aio._idle))
        await asyncio.sleep(linger)
        idle.append(sum(c.reusable() for c in aio._idle))
        await aio.close()
        await asyncio.sleep(0.1)  # the server's handlers see the close and end
        return idle

    return asyncio.run(main())


def test_idle_connections_beyond_the_pool_serve_the_next_wave_then_close(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aio_module, "SPARE_IDLE_SECONDS", 0.3)
    server, transport = serve(*[OK] * 9)
    # Three in flight at once need three connections; the next wave reuses them all, and
    # once idle for SPARE_IDLE_SECONDS only the pool's one is left.
    assert _waves(transport, 2, 3, linger=0.8) == [3, 3, 1]
    assert server.connections == 3


def test_idle_connections_are_at_most_half_the_open_file_limit(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aio_module, "_open_file_limit", lambda: 4)
    server, transport = serve(*[OK] * 9)
    assert _waves(transport, 2, 3, linger=0.0) == [2, 2, 2]
    assert server.connections == 4  # the wave's third connection each time


_CALLER: contextvars.ContextVar[object] = contextvars.ContextVar("test_caller")


class _Caller:
    """Stands for what a caller's context holds (its client, telemetry metadata)."""


def test_an_idle_connection_keeps_nothing_of_its_requests_context(serve: Serve) -> None:
    # asyncio keeps a copy of the current context with each callback (a socket's reader, a
    # timer): set up while a request ran, they would keep what its context refers to alive.
    _, transport = serve(OK)

    async def main() -> tuple[bool, int]:
        aio = AsyncTransport(transport, 4)

        async def call() -> weakref.ref[_Caller]:
            caller = _Caller()
            _CALLER.set(caller)
            await aio.request("POST", "/api/v1/x", json={})
            return weakref.ref(caller)

        caller = await asyncio.get_running_loop().create_task(call())
        await asyncio.sleep(0)  # the finished task's wake-up of this one has run
        gc.collect()
        idle = len(aio._idle)
        alive = caller() is not None
        await aio.close()
        await asyncio.sleep(0.1)
        return alive, idle

    assert asyncio.run(main()) == (False, 1)


def test_a_body_larger_than_the_socket_takes_at_once_is_sent_whole(serve: Serve) -> None:
    body = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than a loopback send takes at once
    server, transport = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def main() -> Any:
        aio = AsyncTransport(transport, 4)
        answer = await aio.request("POST", "/api/v1/x", content=body, timeout=10)
        await aio.close()
        return answer

    assert asyncio.run(main()).json() == {}
    (received,) = server.requests
    assert f"Content-Length: {len(body)}\r\n".encode() in received
    assert received.endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_connection_not_set_up_within_connect_timeout_times_out(host: str) -> None:
    # A listener whose accept queue is full drops new SYNs: the connection stays unanswered.
    import socket

    from tinkex._exceptions import APITimeoutError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    settings = ClientSettings(base_url=f"http://{host}:{port}", api_key="k", connect_timeout=0.3)
    try:
        (failed,) = _run(Transport(settings), 1)
    finally:
        for sock in [listener, *fillers]:
            sock.close()
    assert isinstance(failed, APITimeoutError), failed
    assert "Connecting timed out after 0.3 s: POST /api/v1/x" in str(failed)


def test_error_status_and_malformed_answers(serve: Serve) -> None:
    _, transport = serve(
        b'HTTP/1.1 400 Bad Request\r\nContent-Length: 16\r\n\r\n{"detail": "no"}',
        b"garbage\r\n\r\n",
    )
    bad, broken = _run(transport, 2)
    assert isinstance(bad, BadRequestError) and bad.body == {"detail": "no"}
    assert isinstance(broken, APIConnectionError)
    assert "POST /api/v1/x" in str(broken)


def test_a_body_cut_short_and_an_endless_head_are_connection_errors(serve: Serve) -> None:
    _, transport = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (70 * 1024) + b"\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
    )
    short, endless, fine = _run(transport, 3)
    assert isinstance(short, APIConnectionError), short
    assert isinstance(endless, APIConnectionError), endless
    assert fine.json() == []


def test_supports_names_why_not() -> None:
    settings = ClientSettings(base_url="http://127.0.0.1:9", api_key="tml-k")
    assert supports(Transport(settings)) is None


def test_every_encoding_it_accepts_is_decoded(serve: Serve) -> None:
    # The asyncio transport sends the threaded one's headers, Accept-Encoding included: each
    # encoding it offers (gzip, deflate, zstd) must come back decoded, and a body that does not
    # decode is an error naming the request, as on the threaded path.
    import zlib

    import zstandard

    payload = json.dumps({"z": 1}).encode()
    encoded = {
        "gzip": gzip.compress(payload),
        "deflate": zlib.compress(payload),
        "zstd": zstandard.ZstdCompressor().compress(payload),
    }
    answers = [
        f"HTTP/1.1 200 OK\r\nContent-Encoding: {name}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        for name, body in encoded.items()
    ]
    answers.append(b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 3\r\n\r\nabc")
    server, transport = serve(*answers)
    *decoded, broken = _run(transport, 4)
    assert [r.json() for r in decoded] == [{"z": 1}] * 3
    assert "zstd" in server.requests[0].decode().split("Accept-Encoding: ")[1].split("\r\n")[0]
    assert isinstance(broken, Exception) and "POST /api/v1/x" in str(broken)
    assert "zstd" in str(broken)


def test_the_dump_covers_asyncio_requests_with_secrets_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # TINKEX_DUMP_HEADERS=1 must show the samples too (they go through this transport).
    import logging

    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: r-9\r\n\r\n{}"])
    try:
        settings = ClientSettings.resolve(
            base_url=f"http://127.0.0.1:{server.port}",
            api_key="tml-very-secret-key",
            environ={"TINKEX_DUMP_HEADERS": "1"},
        )
        caplog.set_level(logging.INFO, logger="tinkex.wire")
        (answer,) = _run(Transport(settings), 1)
    finally:
        server.close()
    assert answer.json() == {}
    (record,) = [r for r in caplog.records if r.name == "tinkex.wire"]
    dump = record.getMessage()
    assert dump.startswith(f"> POST http://127.0.0.1:{server.port}/api/v1/x (attempt 0)")
    assert ">   X-API-Key: ***" in dump and "tml-very-secret-key" not in dump
    assert (
        ">   (7 bytes)" in dump and "< 200 in " in dump and "<   x-request-id: r-9" in dump.lower()
    )
