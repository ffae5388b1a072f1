"""JWT refreshes on the asyncio path run off the I/O loop, one at a time for every caller.

A loopback stand-in server answers the token exchange (``POST /api/v1/auth/token``) only
when the test opens its gate, so a refresh is "in flight" for as long as a test needs. While
it is, other coroutines on the same loop must keep doing I/O (issue 13: the exchange used to
run blocking on the loop thread, stalling every in-flight sample), and every caller that needs
a JWT — threads and coroutines alike — waits for that one exchange.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from _loopback import LoopbackServer

from tinkex._config import ClientSettings
from tinkex._exceptions import AuthenticationError
from tinkex._ioloop import IOLoop
from tinkex._transport import Transport
from tinkex._transport.aio import AsyncTransport
from tinkex._transport.auth import JwtCredential

API_KEY = "tml-jwt-refresh-key"
#: How long the stand-in holds an exchange when nobody opens the gate (a stalled loop).
GATE_TIMEOUT = 3.0


def make_jwt(n: int) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = time.time()
    claims = {"sub": f"u{n}", "iat": now, "exp": now + 3600}
    return f"{part({'alg': 'HS256'})}.{part(claims)}.sig"


class StandIn(LoopbackServer):
    """Token exchanges behind a gate; ``/x`` accepts only the newest JWT; ``/ping`` answers."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.exchange_started = threading.Event()
        self.tokens: list[str] = []
        self.gate_opened_in_time: list[bool] = []
        self.fail_exchange = False
        self.lock = threading.Lock()
        super().__init__(functools.partial(_Handler, stand_in=self), name="jwt-stand-in")


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, *args: Any, stand_in: StandIn) -> None:
        self.stand_in = stand_in
        super().__init__(*args)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.stand_in
        if self.path == "/api/v1/auth/token":
            self._exchange(server)
        elif self.path == "/api/v1/x":
            with server.lock:
                newest = server.tokens[-1] if server.tokens else None
            if self.headers["X-API-Key"] == newest:
                self._answer(200, {"key": newest})
            else:
                challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                self._answer(401, {"detail": "token expired"}, challenge)
        else:  # /api/v1/ping: another in-flight request's I/O
            self._answer(200, {})

    def _exchange(self, server: StandIn) -> None:
        server.exchange_started.set()
        server.gate_opened_in_time.append(server.gate.wait(GATE_TIMEOUT))
        if server.fail_exchange:
            self._answer(401, {"detail": "bad key"})
            return
        with server.lock:
            token = make_jwt(len(server.tokens) + 1)
            server.tokens.append(token)
        self._answer(200, {"jwt": token})

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[StandIn]:
    with StandIn() as httpd:
        yield httpd
        httpd.gate.set()


@pytest.fixture
def jwt_transport(server: StandIn) -> Iterator[Transport]:
    """A transport that sends JWTs, none exchanged yet."""
    settings = ClientSettings(base_url=server.url, api_key=API_KEY, max_retries=0)
    transport = Transport(settings)
    transport.set_credential_provider(JwtCredential(transport, settings))
    yield transport
    transport.close()


def _plain(server: StandIn) -> Transport:
    return Transport(ClientSettings(base_url=server.url, api_key=API_KEY, max_retries=0))


async def _ping_while_exchanging(server: StandIn, plain: Transport) -> None:
    """Once the exchange is on the wire, do other I/O on this loop, then open the gate."""
    while not server.exchange_started.is_set():
        await asyncio.sleep(0.01)
    other = AsyncTransport(plain, 2)
    await other.request("POST", "/api/v1/ping", json={})
    await other.close()
    server.gate.set()


def test_an_exchange_does_not_stall_other_requests_on_the_loop(
    server: StandIn, jwt_transport: Transport
) -> None:
    server.gate.clear()
    plain = _plain(server)

    async def main() -> Any:
        aio = AsyncTransport(jwt_transport, 4)
        sample = asyncio.create_task(aio.request("POST", "/api/v1/x", json={}))
        await _ping_while_exchanging(server, plain)
        answer = await sample
        await aio.close()
        return answer

    answer = asyncio.run(main())
    plain.close()
    # The ping ran (and opened the gate) while the exchange was in flight: before the fix the
    # exchange blocked the loop until the gate timed out.
    assert server.gate_opened_in_time == [True]
    assert answer.json() == {"key": server.tokens[0]}


def test_threads_and_coroutines_wait_for_one_exchange(
    server: StandIn, jwt_transport: Transport
) -> None:
    server.gate.clear()
    plain = _plain(server)
    threaded: list[Any] = []
    caller = threading.Thread(
        target=lambda: threaded.append(jwt_transport.request("POST", "/api/v1/x", json={}))
    )
    caller.start()  # this thread's request starts the exchange

    async def main() -> list[Any]:
        aio = AsyncTransport(jwt_transport, 4)
        samples = [asyncio.create_task(aio.request("POST", "/api/v1/x", json={})) for _ in range(3)]
        await _ping_while_exchanging(server, plain)
        answers = await asyncio.gather(*samples)
        await aio.close()
        return answers

    answers = asyncio.run(main())
    caller.join(10)
    plain.close()
    assert server.gate_opened_in_time == [True]
    assert len(server.tokens) == 1
    keys = [a.json()["key"] for a in [*threaded, *answers]]
    assert keys == [server.tokens[0]] * 4


def test_a_token_rejected_by_many_requests_is_replaced_once(
    server: StandIn, jwt_transport: Transport
) -> None:
    credential = jwt_transport.credential_provider
    assert isinstance(credential, JwtCredential)
    first = credential.token()
    with server.lock:
        server.tokens.append("revoked")  # from now on /x refuses the first JWT
    threaded: list[Any] = []
    callers = [
        threading.Thread(
            target=lambda: threaded.append(jwt_transport.request("POST", "/api/v1/x", json={}))
        )
        for _ in range(3)
    ]

    async def main() -> list[Any]:
        aio = AsyncTransport(jwt_transport, 8)
        answers = await asyncio.gather(
            *(aio.request("POST", "/api/v1/x", json={}) for _ in range(3))
        )
        await aio.close()
        return answers

    for thread in callers:
        thread.start()
    answers = asyncio.run(main())
    for thread in callers:
        thread.join(10)
    # Six requests were refused with the first JWT; one exchange replaced it for all of them.
    assert server.tokens[0] == first and len(server.tokens) == 3
    keys = {a.json()["key"] for a in [*threaded, *answers]}
    assert keys == {server.tokens[2]} and len(threaded) == 3


def test_a_refused_exchange_fails_its_waiters_and_the_next_call_tries_again(
    server: StandIn, jwt_transport: Transport
) -> None:
    plain = _plain(server)

    async def two() -> list[Any]:
        aio = AsyncTransport(jwt_transport, 4)
        calls = [asyncio.create_task(aio.request("POST", "/api/v1/x")) for _ in range(2)]
        await _ping_while_exchanging(server, plain)  # both are waiting when the answer comes
        answers = await asyncio.gather(*calls, return_exceptions=True)
        await aio.close()
        return answers

    server.fail_exchange = True
    server.gate.clear()
    refused = asyncio.run(two())
    assert [type(a) for a in refused] == [AuthenticationError, AuthenticationError]
    assert server.gate_opened_in_time == [True]  # one exchange answered both
    server.fail_exchange = False
    server.gate.clear()
    server.exchange_started.clear()
    assert [a.json()["key"] for a in asyncio.run(two())] == [server.tokens[0]] * 2
    assert server.gate_opened_in_time == [True, True]
    plain.close()


def test_closing_the_loop_during_an_exchange_is_clean(
    server: StandIn, jwt_transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    server.gate.clear()
    loop = IOLoop("tinkex-io-test")
    aio = AsyncTransport(jwt_transport, 4)
    future = loop.spawn(aio.request, "POST", "/api/v1/x")
    assert server.exchange_started.wait(5)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        loop.close()  # cancels the waiting request; the exchange goes on off the loop
        assert future.cancelled()
        assert time.monotonic() - started < GATE_TIMEOUT
        server.gate.set()
        credential = jwt_transport.credential_provider
        assert isinstance(credential, JwtCredential)
        assert credential.token() == server.tokens[0]  # the exchange's result is kept
        jwt_transport.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    workers = [t for t in threading.enumerate() if t.name.startswith("tinkex-jwt")]
    for worker in workers:
        worker.join(5)
    assert not any(w.is_alive() for w in workers)
