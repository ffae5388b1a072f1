"""The samplers' back-off after a 429 without a hint (issue 11.5; docs/protocol.md, "Sampling")."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

import tinkex
from tinkex import types
from tinkex._transport import BytesSemaphore
from tinkex.clients import _sample_backoff
from tinkex.clients._sample_backoff import SampleBackoff

from .conftest import FakeTinker

PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_back_off_is_1_s_or_5_s_for_large_prompts_then_throttles_for_10_s() -> None:
    clock = Clock()
    backoff = SampleBackoff(clock)
    assert not backoff.throttled() and backoff.remaining() == 0
    assert backoff.back_off(128 * 1024) == 1.0
    assert backoff.remaining() == 1.0 and backoff.throttled()
    assert backoff.back_off(128 * 1024 + 1) == 5.0
    assert backoff.remaining() == 5.0
    clock.now += 5.0 + 9.9
    assert backoff.remaining() == 0 and backoff.throttled()
    clock.now += 0.2
    assert not backoff.throttled()


def test_throttled_dispatch_counts_bytes_x20_and_allows_10_at_once() -> None:
    clock = Clock()
    backoff = SampleBackoff(clock)
    budget = BytesSemaphore(1000)
    with backoff.dispatch(10, budget):
        assert budget.in_flight == 10
    backoff.back_off(10)
    with backoff.dispatch(10, budget):
        assert budget.in_flight == 200
    held = [backoff.dispatch(1, budget) for _ in range(10)]
    for slot in held:
        slot.__enter__()
    eleventh = threading.Thread(target=lambda: backoff.dispatch(1, budget).__enter__())
    eleventh.start()
    eleventh.join(0.2)
    assert eleventh.is_alive()  # waits for one of the 10 throttled slots
    held[0].__exit__(None, None, None)
    eleventh.join(5)
    assert not eleventh.is_alive()


def test_wait_ends_with_cancelled_error_on_close() -> None:
    backoff = SampleBackoff()
    backoff.back_off(1)
    stop = threading.Event()
    stop.set()
    with pytest.raises(CancelledError, match="closing"):
        backoff.wait(stop)


def test_an_unhinted_429_holds_the_holders_samples_and_resends_the_same_seq_id(
    fake: FakeTinker, sampler: tinkex.SamplingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sample_backoff, "BACKOFF_SMALL", 0.05)
    fake.reply("POST", "/api/v1/asample", (429, {"detail": "slow down"}), None)
    result = sampler.sample(PROMPT, 1, PARAMS).result(timeout=10)
    assert len(result.sequences) == 1
    assert [c.json["seq_id"] for c in fake.requests_to("/api/v1/asample")] == [0, 0]
    backoff = sampler.holder.sample_backoff()
    assert backoff.throttled()  # the next 10 s of samples are throttled


def test_a_hinted_429_follows_the_hint_without_throttling(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    fake.reply(
        "POST", "/api/v1/asample", (429, {"detail": "slow down"}, {"retry-after-ms": "20"}), None
    )
    assert sampler.sample(PROMPT, 1, PARAMS).result(timeout=10).sequences
    assert not sampler.holder.sample_backoff().throttled()
