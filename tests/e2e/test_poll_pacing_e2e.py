"""Poll pacing against the real LocalServer over loopback (parity rows 1.8, 8.2): a server
that keeps answering "not yet" (the ``paused_capacity`` fault) ends the call with
``PollTimeoutError`` after ``poll_timeout``, on the training path (threaded poller) and on
both sampling paths, and nothing is resubmitted; the back-off spaces the polls out."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import tinkex
from tinkex import types
from tinkex.local import LocalServer

pytestmark = pytest.mark.e2e

NOT_YET = "retrieve_future:paused_capacity:100000"
PROMPT = types.ModelInput.from_ints([5, 6, 7])
PARAMS = types.SamplingParams(max_tokens=2, seed=1)


def _wait_idle(server: LocalServer) -> None:
    deadline = time.monotonic() + 30
    while server.pending_requests() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_training_past_the_deadline_fails_with_poll_timeout(
    tinker_server_factory: Callable[..., LocalServer],
) -> None:
    server = tinker_server_factory(faults=NOT_YET)
    with tinkex.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, poll_timeout=1.0
    ) as service:
        started = time.monotonic()
        with pytest.raises(tinkex.PollTimeoutError, match="after 1 s of polling"):
            service.create_lora_training_client("tinkex/tiny", rank=2).result(timeout=60)
        assert time.monotonic() - started < 30


@pytest.mark.parametrize("sampling_io", ["asyncio", "threads"])
def test_a_sample_past_the_deadline_fails_once_and_is_not_resubmitted(
    tinker_server_factory: Callable[..., LocalServer],
    monkeypatch: pytest.MonkeyPatch,
    sampling_io: str,
) -> None:
    monkeypatch.setenv("TINKEX_SAMPLING_IO", sampling_io)
    monkeypatch.setenv("TINKEX_POLL_TIMEOUT", "1")
    server = tinker_server_factory(faults=NOT_YET)
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        sampler = service.create_sampling_client(base_model="tinkex/tiny").result(timeout=30)
        started = time.monotonic()
        with pytest.raises(tinkex.PollTimeoutError, match=r"request .* after 1 s"):
            sampler.sample(PROMPT, 1, PARAMS).result(timeout=60)
        assert time.monotonic() - started < 30
    _wait_idle(server)
    samples = {k: n for k, n in server.finished_requests().items() if k[0] == "Sample"}
    assert sum(samples.values()) == 1, samples  # ran once: the deadline ends the call


def test_the_backoff_spaces_out_the_polls(
    tinker_server_factory: Callable[..., LocalServer],
) -> None:
    server = tinker_server_factory(faults="retrieve_future:paused_capacity:3")
    with tinkex.ServiceClient(
        base_url=server.base_url,
        api_key=server.api_key,
        poll_backoff=("exponential", 0.2, 0.4),
    ) as service:
        started = time.monotonic()
        service.create_lora_training_client("tinkex/tiny", rank=2).result(timeout=60)
        waited = time.monotonic() - started
    assert server.injected_faults.count(("retrieve_future", "paused_capacity")) == 3
    assert waited >= 0.2 + 0.4 + 0.4  # three "not yet" answers, three pauses
