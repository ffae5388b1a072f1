"""Samples collected through the session futures poller (issue 13.1), against the real
LocalServer over loopback: one ``retrieve_futures`` long poll per sampling client reports many
completions; a server that advertises it but answers 404 (or keeps failing) makes every sample
poll ``retrieve_future`` itself; cancellation and ``close()`` end the long poll, leaving no task
or thread behind."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tinkex
from tinkex import types
from tinkex.clients import _session_poller
from tinkex.local import LocalServer

pytestmark = pytest.mark.e2e

NULL_MODEL = "tinkex/null"
PROMPT = types.ModelInput.from_ints([5, 6, 7, 8])
PARAMS = types.SamplingParams(max_tokens=4, seed=1, temperature=1.0)


@pytest.fixture
def sampler_on(
    tinker_server_factory: Callable[..., LocalServer],
) -> Iterator[Callable[..., tuple[LocalServer, tinkex.SamplingClient]]]:
    services: list[tinkex.ServiceClient] = []

    def start(**options: Any) -> tuple[LocalServer, tinkex.SamplingClient]:
        options.setdefault("session_futures", True)
        server: LocalServer = tinker_server_factory(**options)
        service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
        services.append(service)
        sampler: tinkex.SamplingClient = service.create_sampling_client(
            base_model=NULL_MODEL
        ).result(timeout=60)
        return server, sampler

    yield start
    for service in services:
        service.close()


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> Callable[[], Counter[str]]:
    """Requests the server logged so far, by endpoint."""
    caplog.set_level(logging.INFO, logger="tinkex.local.access")

    def counts() -> Counter[str]:
        found: Counter[str] = Counter()
        for record in caplog.records:
            if record.name == "tinkex.local.access":
                found[str(record.args[1]).rsplit("/", 1)[-1]] += 1  # type: ignore[index]
        return found

    return counts


def _check(response: types.SampleResponse) -> None:
    assert len(response.sequences) == 1 and 0 < len(response.sequences[0].tokens) <= 4


def _poller(sampler: tinkex.SamplingClient) -> _session_poller.SessionFuturesPoller:
    poller = sampler._poller
    assert poller is not None, "the sampler did not use the session futures poller"
    return poller


def test_many_samples_complete_through_one_session_poll(
    sampler_on: Callable[..., tuple[LocalServer, tinkex.SamplingClient]],
    access: Callable[[], Counter[str]],
) -> None:
    server, sampler = sampler_on(faults="latency=200ms", delivered_result_ttl=600)
    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(600)]
    for future in futures:
        _check(future.result(timeout=120))
    poller = _poller(sampler)
    assert poller.fallback is None and poller.waiting == 0
    counts = access()
    assert counts["asample"] == 600 and counts["retrieve_future"] == 600
    # a handful of session polls reported all 600 (each sample alone would have long-polled)
    assert 1 <= counts["retrieve_futures"] <= 60, counts
    # the acknowledgements reached the server: it freed the results before their TTL
    deadline = time.monotonic() + 20
    while server.memory.held("results") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.memory.held("results") == 0


def test_a_server_that_answers_404_makes_each_sample_poll_itself(
    sampler_on: Callable[..., tuple[LocalServer, tinkex.SamplingClient]],
    access: Callable[[], Counter[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # advertised, but every retrieve_futures fails as on a server without the endpoint
    _, sampler = sampler_on(faults="retrieve_futures:404:1000")
    for future in [sampler.sample(PROMPT, 1, PARAMS) for _ in range(50)]:
        _check(future.result(timeout=60))
    poller = _poller(sampler)
    assert poller.fallback is not None and "HTTP 404" in poller.fallback
    assert access()["retrieve_futures"] == 1
    _check(sampler.sample(PROMPT, 1, PARAMS).result(timeout=30))
    assert access()["retrieve_futures"] == 1  # not asked again
    assert "each sample polls retrieve_future itself" in caplog.text


def test_transient_poll_failures_are_retried(
    sampler_on: Callable[..., tuple[LocalServer, tinkex.SamplingClient]],
    access: Callable[[], Counter[str]],
) -> None:
    _, sampler = sampler_on(faults="retrieve_futures:503:2")
    for future in [sampler.sample(PROMPT, 1, PARAMS) for _ in range(20)]:
        _check(future.result(timeout=60))
    assert _poller(sampler).fallback is None
    assert access()["retrieve_futures"] >= 3


def test_a_server_without_the_flag_is_polled_per_request(
    sampler_on: Callable[..., tuple[LocalServer, tinkex.SamplingClient]],
    access: Callable[[], Counter[str]],
) -> None:
    _, sampler = sampler_on(session_futures=False)
    for future in [sampler.sample(PROMPT, 1, PARAMS) for _ in range(10)]:
        _check(future.result(timeout=60))
    assert sampler._poller is None and access()["retrieve_futures"] == 0


def test_cancelled_samples_leave_the_poll_and_close_ends_it(
    sampler_on: Callable[..., tuple[LocalServer, tinkex.SamplingClient]],
) -> None:
    # the server holds a poll for 20 s: close() must not wait for it
    _, sampler = sampler_on(faults="latency=1s", long_poll_seconds=20.0)
    futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(20)]
    deadline = time.monotonic() + 30
    while (sampler._poller is None or sampler._poller.waiting < 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    poller = _poller(sampler)
    assert poller.waiting == 20
    assert futures[0].cancel()
    deadline = time.monotonic() + 10
    while poller.waiting > 19 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert poller.waiting == 19
    for future in futures[1:]:
        _check(future.result(timeout=60))
    # now one more sample waits on a held poll when the client closes
    pending = sampler.sample(PROMPT, 1, PARAMS)
    deadline = time.monotonic() + 10
    while poller.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    io = sampler.holder.io()
    assert io is not None
    started = time.monotonic()
    sampler.holder.close()
    assert time.monotonic() - started < 8
    concurrent.futures.wait([pending], timeout=5)
    assert pending.cancelled()
    assert not io[0].thread.is_alive()
    assert not poller._running
