"""In-flight samples wait on the holder's I/O loop, not on a thread each (issue 13.1).

Against the real LocalServer over loopback: thousands of samples in flight at once with the
server adding latency to every request, while the client process's thread count stays flat;
the retry rows (5xx, 429, connection resets, 410) on that path; cancellation; close() with
samples in flight (every future ends, the I/O thread is gone, nothing hangs).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tinkex
from tinkex import types
from tinkex._transport.retry import RetryPolicy
from tinkex.local import LocalServer
from tinkex.local.http import HTTPServer

pytestmark = pytest.mark.e2e

NULL_MODEL = "tinkex/null"
PROMPT = types.ModelInput.from_ints([5, 6, 7, 8])
MAX_TOKENS = 4
PARAMS = types.SamplingParams(max_tokens=MAX_TOKENS, seed=1, temperature=1.0)
#: Threads a client may add while any number of samples are in flight: the I/O loop, the
#: heartbeat, a worker that created the sampler, the server's own threads (same process).
THREAD_ALLOWANCE = 24
#: Samples in flight at once in each wave of the connection-reuse test.
WAVE = 200


@pytest.fixture
def server_with(
    tinker_server_factory: Callable[..., LocalServer],
) -> Callable[[str], LocalServer]:
    def start(faults: str) -> LocalServer:
        server: LocalServer = tinker_server_factory(faults=faults)
        return server

    return start


@pytest.fixture
def client_for() -> Iterator[Callable[[LocalServer], tinkex.SamplingClient]]:
    services: list[tinkex.ServiceClient] = []

    def make(server: LocalServer) -> tinkex.SamplingClient:
        service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
        services.append(service)
        sampler: tinkex.SamplingClient = service.create_sampling_client(
            base_model=NULL_MODEL
        ).result(timeout=60)
        return sampler

    yield make
    for service in services:
        service.close()


def _io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tinkex-io" and t.is_alive()]


def _check(response: types.SampleResponse) -> None:
    assert len(response.sequences) == 1
    assert 0 < len(response.sequences[0].tokens) <= MAX_TOKENS


def test_thousands_of_in_flight_samples_hold_no_thread_each(
    server_with: Callable[[str], LocalServer],
    client_for: Callable[[LocalServer], tinkex.SamplingClient],
) -> None:
    server = server_with("latency=300ms")
    sampler = client_for(server)
    _check(sampler.sample(PROMPT, 1, PARAMS).result(timeout=60))
    before = threading.active_count()

    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(2000)]
    peak_threads = threading.active_count()
    peak_in_flight = 0
    io = sampler.holder.io()
    assert io is not None
    aio = io[1]
    deadline = time.monotonic() + 240
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        peak_threads = max(peak_threads, threading.active_count())
        peak_in_flight = max(peak_in_flight, aio.in_flight)
        time.sleep(0.05)
    for future in futures:
        _check(future.result(timeout=1))

    assert peak_threads - before <= THREAD_ALLOWANCE, (peak_threads, before)
    # The samples really were on the wire together (hundreds of requests at once) ...
    assert peak_in_flight >= 200, peak_in_flight
    # ... on one I/O thread.
    assert len(_io_threads()) == 1


def test_retry_rows_on_the_io_loop(
    server_with: Callable[[str], LocalServer],
    client_for: Callable[[LocalServer], tinkex.SamplingClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The decisions are the policies' own; only their back-off waits are zeroed.
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, retry_index: 0.0)
    server = server_with(
        "http_5xx=0.15,http_429=0.15,reset_before=0.1,reset_after=0.1,gone_410=0.1,seed=7"
    )
    sampler = client_for(server)
    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(150)]
    done, not_done = concurrent.futures.wait(futures, timeout=180)
    assert not not_done
    for future in done:
        _check(future.result())
    injected = server.injected_faults
    # Both requests of the path met faults: every kind on the submission, 410s on the poll.
    assert {endpoint for endpoint, _ in injected} >= {"asample", "retrieve_future"}, injected
    assert len({fault for _, fault in injected}) >= 4, injected


def test_cancelling_an_in_flight_sample(
    server_with: Callable[[str], LocalServer],
    client_for: Callable[[LocalServer], tinkex.SamplingClient],
) -> None:
    server = server_with("latency=500ms")
    sampler = client_for(server)
    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(10)]
    assert futures[0].cancel()
    assert futures[0].cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        futures[0].result(timeout=1)
    for future in futures[1:]:
        _check(future.result(timeout=60))


def test_close_with_samples_in_flight_ends_every_future_and_the_io_thread(
    server_with: Callable[[str], LocalServer],
) -> None:
    server = server_with("latency=2s")
    service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
    sampler = service.create_sampling_client(base_model=NULL_MODEL).result(timeout=60)
    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(300)]
    time.sleep(0.5)  # submissions are on the wire
    assert _io_threads()
    service.close()
    _, not_done = concurrent.futures.wait(futures, timeout=15)
    assert not not_done
    assert all(f.cancelled() for f in futures)
    assert not _io_threads()
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(PROMPT, 1, PARAMS)


def test_close_cancels_samples_in_flight_before_it_finishes_the_session(
    server_with: Callable[[str], LocalServer],
) -> None:
    # close() tells the server the session is over, a request that waits out the server's
    # latency too; samples in flight must be cancelled at once, not go on (and complete)
    # meanwhile. At +1 s the submissions are answered after ~1 s and their polls after ~2 s:
    # closing at 1.4 s, a close that finished the session first ended while polls completed.
    server = server_with("latency=1s")
    service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
    sampler = service.create_sampling_client(base_model=NULL_MODEL).result(timeout=60)
    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(50)]
    time.sleep(1.4)
    service.close()
    _, not_done = concurrent.futures.wait(futures, timeout=15)
    assert not not_done
    assert all(f.cancelled() for f in futures), [f for f in futures if not f.cancelled()][:3]


def test_the_servers_concurrency_limit_overrides_retry_config_max_connections(
    server_with: Callable[[str], LocalServer],
) -> None:
    # As in the official SDK: sample_max_concurrent_requests (client config) is the limit,
    # whatever RetryConfig.max_connections says.
    server = server_with("latency=300ms")
    service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
    try:
        sampler = service.create_sampling_client(
            base_model=NULL_MODEL, retry_config=tinkex.RetryConfig(max_connections=2)
        ).result(timeout=60)
        io = sampler.holder.io()
        assert io is not None
        futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(40)]
        peak = 0
        deadline = time.monotonic() + 60
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            peak = max(peak, io[1].in_flight)
            time.sleep(0.02)
        for future in futures:
            _check(future.result(timeout=1))
        assert peak > 2, peak
    finally:
        service.close()


def test_waves_of_in_flight_samples_reuse_the_connections_of_the_first(
    tinker_server_factory: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every sample of a wave is in flight at once (the server adds latency), so a wave needs
    # one connection per sample: its asample, then its retrieve_future on the same one. The
    # connections must outlive the wave even beyond the pool size (max_connections), or each
    # later wave sets all of them up again, on both sides.
    accepted: list[int] = []
    serve_connection = HTTPServer._on_connection

    async def counted(self: HTTPServer, *streams: Any) -> None:
        accepted.append(1)
        await serve_connection(self, *streams)

    monkeypatch.setattr(HTTPServer, "_on_connection", counted)
    server: LocalServer = tinker_server_factory(faults="latency=300ms")
    service = tinkex.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, max_connections=WAVE // 10
    )
    try:
        sampler = service.create_sampling_client(base_model=NULL_MODEL).result(timeout=60)
        for _ in range(3):
            for future in [sampler.sample(PROMPT, 1, PARAMS) for _ in range(WAVE)]:
                _check(future.result(timeout=120))
    finally:
        service.close()
    # (+ the few requests before the first wave: session, config, sampler)
    assert len(accepted) <= WAVE + 5, len(accepted)
