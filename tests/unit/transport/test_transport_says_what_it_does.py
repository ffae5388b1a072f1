"""A client that says what it is doing (issue 11, "A client that says what it is doing"), against
real sockets on 127.0.0.1: warnings while retrying, failing fast where retrying cannot help,
``TINKER_LOG``."""

from __future__ import annotations

import asyncio
import http.server
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from _loopback import LoopbackServer

import tinkex
from tinkex._config import ClientSettings, configure_logging
from tinkex._exceptions import APIConnectionError, APIError, APIResponseValidationError
from tinkex._server_check import NotATinkerAPIError
from tinkex._transport import NO_RETRY, RateLimiter, Response, RetryPolicy, Transport
from tinkex._transport.aio import AsyncTransport
from tinkex._transport.diagnose import PermanentConnectionError
from tinkex._transport.retry import holder_retry_policy, http_retry_policy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def plain_web_server() -> Iterator[str]:
    """Python's own http.server: answers GET with a directory listing, POST with 501 HTML."""
    handler = http.server.SimpleHTTPRequestHandler
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    with LoopbackServer(handler) as server:
        yield server.url


def make(base_url: str) -> Transport:
    return Transport(ClientSettings(base_url=base_url, api_key="tml-x"), rate_limiter=RateLimiter())


def test_a_web_server_that_is_not_a_tinker_api_fails_at_once(plain_web_server: str) -> None:
    started = time.monotonic()
    with (
        tinkex.ServiceClient(base_url=plain_web_server, api_key="tml-x") as service,
        pytest.raises(NotATinkerAPIError) as info,
    ):
        service.create_lora_training_client("Qwen/Qwen3-8B").result(timeout=60)
    assert time.monotonic() - started < 10  # was: ~6 minutes of silent retries (501 is a 5xx)
    message = str(info.value)
    assert f"{plain_web_server}: this is not a Tinker API (got 501 text/html)" in message
    assert "POST /api/v1/client/config was answered by another kind of web server" in message
    assert "TINKER_BASE_URL" in message
    assert not holder_retry_policy().is_retryable(info.value)
    assert not http_retry_policy(10).is_retryable(info.value)


def test_an_html_page_with_200_says_the_url_is_not_a_tinker_api(plain_web_server: str) -> None:
    with make(plain_web_server) as transport:
        response = transport.request("GET", "/", retry=NO_RETRY)
    with pytest.raises(APIResponseValidationError, match=r"HTML page.*not a Tinker API"):
        response.json()


def test_dns_failure_fails_fast_naming_the_host() -> None:
    with (
        make("http://no-such-host.invalid") as transport,
        pytest.raises(PermanentConnectionError) as info,
    ):
        transport.request("POST", "/api/v1/client/config", json={})
    assert "Cannot resolve the host of http://no-such-host.invalid" in str(info.value)
    assert isinstance(info.value, APIConnectionError)  # still what tinker raises
    assert not http_retry_policy(10).is_retryable(info.value)
    assert not holder_retry_policy().is_retryable(info.value)


def test_tls_to_a_plain_http_server_fails_fast_with_the_fix(plain_web_server: str) -> None:
    tls_url = plain_web_server.replace("http://", "https://")
    started = time.monotonic()
    with make(tls_url) as transport, pytest.raises(PermanentConnectionError) as info:
        transport.request("POST", "/api/v1/client/config", json={})
    assert time.monotonic() - started < 10
    assert f"Use {plain_web_server} as base_url" in str(info.value)


class SleepClock:
    """A monotonic clock that moves only when the transport's retries sleep on it."""

    def __init__(self, scale: float) -> None:
        self.now, self.scale = 0.0, scale
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds * self.scale


def unreachable(clock: SleepClock) -> tuple[str, Transport]:
    url = f"http://127.0.0.1:{free_port()}"
    settings = ClientSettings(base_url=url, api_key="tml-x")
    return url, Transport(settings, rate_limiter=RateLimiter(), sleep=clock.sleep, clock=clock)


def fail_for_a_while(transport: Transport) -> None:
    policy = holder_retry_policy(max_elapsed=240.0)
    with pytest.raises(APIConnectionError):
        policy.call(
            transport.request,
            "POST",
            "/api/v1/client/config",
            json={},
            sleep=lambda s: None,
            clock=iter(range(0, 10_000, 30)).__next__,
        )


def test_retrying_warns_once_per_interval_with_url_cause_and_time_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tinkex")
    clock = SleepClock(scale=1.0)  # time passes as the HTTP layer's back-off says
    url, transport = unreachable(clock)
    with transport:
        fail_for_a_while(transport)
    warnings = [r for r in caplog.records if r.name == "tinkex.transport"]
    assert len(clock.sleeps) >= 40  # the HTTP layer's retries, each failing at once
    assert clock.now > 100
    # one warning per 10 s of failures, not one per attempt
    assert 2 <= len(warnings) <= clock.now / 10 + 1
    assert len(warnings) < len(clock.sleeps)
    message = warnings[0].getMessage()
    assert message.startswith(f"cannot reach {url} (POST /api/v1/client/config)")
    assert "connection refused" in message
    assert "retrying for 4 minutes more" in message


def test_a_short_blip_stays_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tinkex")
    clock = SleepClock(scale=0.0)  # every retry at once: no time passes
    _, transport = unreachable(clock)
    with transport:
        fail_for_a_while(transport)
    assert [r for r in caplog.records if r.name == "tinkex.transport"] == []


def test_tinker_log_configures_the_tinkex_logger() -> None:
    logger = logging.getLogger("tinkex")
    saved = (logger.level, list(logger.handlers))
    try:
        logger.handlers.clear()
        settings = ClientSettings.resolve(
            base_url="http://127.0.0.1:1",
            api_key="tml-x",
            telemetry_enabled=False,
            environ={"TINKER_LOG": "debug"},
        )
        assert settings.log_level == "debug"
        from tinkex.clients._holder import ClientHolder

        ClientHolder(settings, with_session=False).close()  # each client applies TINKER_LOG
        assert logger.level == logging.DEBUG
        assert len(logger.handlers) == 1
        configure_logging("debug")  # once per client: still one handler
        assert len(logger.handlers) == 1
    finally:
        logger.handlers[:] = saved[1]
        logger.setLevel(saved[0])


class TickClock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def sample_like_policy(max_elapsed: float | None) -> RetryPolicy:
    """What ``RetryPolicy.from_retry_config`` builds for samples, without the real waits."""
    return RetryPolicy(
        name="sample",
        max_retries=None,
        max_elapsed=max_elapsed,
        retry_connection_errors=False,
        retry_exceptions=(APIConnectionError,),
        backoff_initial=0.0,
        jitter=0.0,
    )


def retry_asample_over_asyncio(url: str, clock: TickClock, policy: RetryPolicy) -> int:
    """Run ``POST /api/v1/asample`` over the asyncio transport under ``policy`` (as
    ``SamplingClient._sample_async`` does) until it gives up; the number of attempts."""
    transport = Transport(
        ClientSettings(base_url=url, api_key="tml-x"), rate_limiter=RateLimiter(), clock=clock
    )
    attempts = 0

    async def main() -> None:
        aio = AsyncTransport(transport, 4)

        async def attempt() -> Response:
            nonlocal attempts
            attempts += 1
            return await aio.request("POST", "/api/v1/asample", json={})

        try:
            with pytest.raises(APIError):
                await policy.arun(attempt, describe="POST /api/v1/asample", clock=clock)
        finally:
            await aio.close()

    with transport:
        asyncio.run(main())
    return attempts


def transport_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tinkex.transport"]


def test_asyncio_requests_warn_while_retrying_with_url_cause_and_time_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tinkex")
    url = f"http://127.0.0.1:{free_port()}"
    attempts = retry_asample_over_asyncio(url, TickClock(3.0), sample_like_policy(240.0))
    warnings = transport_warnings(caplog)
    assert attempts >= 20
    assert 2 <= len(warnings) < attempts  # once per 10 s of failures, not once per attempt
    assert warnings[0].startswith(f"cannot reach {url} (POST /api/v1/asample)")
    assert "connection refused" in warnings[0]
    assert "retrying for 4 minutes more" in warnings[0]


async def _cancel_other_tasks(server: asyncio.Server) -> None:
    server.close()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()


def test_asyncio_server_errors_warn_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tinkex")
    body = b'{"detail": "overloaded"}'
    answer = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        attempts = retry_asample_over_asyncio(url, TickClock(3.0), sample_like_policy(60.0))
    finally:
        # A kept-alive connection's handler still waits for a request: cancel it, or it is
        # "destroyed but pending" when the closed loop is collected.
        asyncio.run_coroutine_threadsafe(_cancel_other_tasks(server), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    warnings = transport_warnings(caplog)
    assert 1 <= len(warnings) < attempts
    assert warnings[0].startswith(f"server error from {url} (POST /api/v1/asample): HTTP 503")
    assert "; retrying for" in warnings[0]


def test_asyncio_requests_nothing_retries_stay_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tinkex")
    url = f"http://127.0.0.1:{free_port()}"
    # No time-bounded loop around it and none retrying: no "retrying" to announce.
    attempts = retry_asample_over_asyncio(url, TickClock(20.0), NO_RETRY)
    assert attempts == 1
    assert transport_warnings(caplog) == []


def aio_request_once(url: str) -> BaseException:
    """What ``POST /api/v1/asample`` over the asyncio transport raises against ``url``."""

    async def main() -> BaseException:
        aio = AsyncTransport(make(url), 4)
        try:
            await aio.request("POST", "/api/v1/asample", json={})
        except Exception as exc:
            return exc
        finally:
            await aio.close()
        raise AssertionError("the request succeeded")

    return asyncio.run(main())


def test_asyncio_dns_failure_fails_fast_naming_the_host() -> None:
    error = aio_request_once("http://no-such-host.invalid")
    assert isinstance(error, PermanentConnectionError)  # as the threaded transport's
    assert "Cannot resolve the host of http://no-such-host.invalid" in str(error)
    assert not http_retry_policy(10).is_retryable(error)


def test_asyncio_tls_to_a_plain_http_server_fails_fast_with_the_fix(
    plain_web_server: str,
) -> None:
    error = aio_request_once(plain_web_server.replace("http://", "https://"))
    assert isinstance(error, PermanentConnectionError)
    assert f"Use {plain_web_server} as base_url" in str(error)


def test_asyncio_connection_errors_read_as_the_threaded_ones() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = aio_request_once(url)
    with make(url) as transport, pytest.raises(APIConnectionError) as threaded:
        transport.request("POST", "/api/v1/asample", json={}, retry=NO_RETRY)
    assert type(error) is APIConnectionError
    assert str(error).startswith("Connection error on POST /api/v1/asample: connection refused")
    assert str(error).split(" (")[0] == str(threaded.value).split(" (")[0]
