"""Dispatch knobs of a client's samplers (parity row 6.9, Elixir Tinkex's ``dispatch_concurrency``,
``throttled_dispatch_concurrency`` and ``byte_budget``): ``ServiceClient`` options that lower the
server's limits, never raise them."""

from __future__ import annotations

import threading
import time

import pytest

import tinkex
from tinkex import types

from .conftest import API_KEY, BASE_URL, FakeTinker

PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=1)


def _service(**options: int) -> tinkex.ServiceClient:
    return tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY, **options)  # type: ignore[arg-type]


def test_sample_concurrency_bounds_the_samples_in_flight(fake: FakeTinker) -> None:
    fake.config["sample_max_concurrent_requests"] = 8
    in_flight, peak, lock = [0], [0], threading.Lock()
    normal = fake.sample_result

    def slow(body: dict[str, object]) -> object:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return normal(body)  # type: ignore[arg-type]

    fake.sample_result = slow
    with _service(sample_concurrency=2) as service:
        sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
        futures = [sampler.sample(PROMPT, 1, PARAMS) for _ in range(8)]
        assert all(len(f.result(timeout=30).sequences) == 1 for f in futures)
    assert peak[0] <= 2


def test_the_servers_limits_stay_the_ceiling(fake: FakeTinker) -> None:
    fake.config["sample_max_concurrent_requests"] = 3
    fake.config["sample_dispatch_bytes_semaphore_size"] = 1000
    with _service(sample_concurrency=50, sample_byte_budget=10**9) as service:
        sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
        assert sampler._limit == 3
        assert service.holder.sample_bytes().capacity == 1000


def test_byte_budget_and_throttled_concurrency(fake: FakeTinker) -> None:
    fake.config["sample_dispatch_bytes_semaphore_size"] = 10**6
    with _service(sample_byte_budget=4096, sample_throttled_concurrency=3) as service:
        assert service.holder.sample_bytes().capacity == 4096
        assert service.holder.sample_backoff().throttled_concurrency == 3


def test_defaults_are_the_servers_and_the_official_throttle(fake: FakeTinker) -> None:
    fake.config["sample_max_concurrent_requests"] = 7
    with _service() as service:
        sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
        assert sampler._limit == 7
        assert service.holder.sample_backoff().throttled_concurrency == 10


@pytest.mark.parametrize(
    "option", ["sample_concurrency", "sample_throttled_concurrency", "sample_byte_budget"]
)
def test_knobs_must_be_positive(option: str) -> None:
    with pytest.raises(tinkex.TinkerError, match=f"ClientSettings.{option} must be >= 1, got 0"):
        _service(**{option: 0})
