"""Per-call options of ``SamplingClient.sample`` on the asyncio path (the default), against the
real LocalServer over loopback: ``timeout`` bounds the submission's read, ``telemetry_metadata``
reaches the events of the requests made on the I/O loop (parity row 6.2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tinkex
from tinkex import telemetry, types
from tinkex.lib.retry_handler import RetryConfig
from tinkex.local import LocalServer

pytestmark = pytest.mark.e2e

PROMPT = types.ModelInput.from_ints([5, 6, 7])
PARAMS = types.SamplingParams(max_tokens=2, seed=1)


@pytest.fixture
def sampler_on(
    tinker_server_factory: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], tinkex.SamplingClient]]:
    monkeypatch.setenv("TINKEX_SAMPLING_IO", "asyncio")
    services: list[tinkex.ServiceClient] = []

    def make(faults: str) -> tinkex.SamplingClient:
        server = tinker_server_factory(faults=faults)
        service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
        services.append(service)
        sampler: tinkex.SamplingClient = service.create_sampling_client(
            base_model="tinkex/null", retry_config=RetryConfig(enable_retry_logic=False)
        ).result(timeout=60)
        assert service.holder.io() is not None  # the asyncio path
        return sampler

    yield make
    for service in services:
        service.close()


def test_timeout_bounds_the_submission_read(
    sampler_on: Callable[[str], tinkex.SamplingClient],
) -> None:
    sampler = sampler_on("latency=0.4s")
    with pytest.raises(tinkex.APITimeoutError, match=r"0\.05 s.*asample"):
        sampler.sample(PROMPT, 1, PARAMS, timeout=0.05).result(timeout=60)
    assert len(sampler.sample(PROMPT, 1, PARAMS).result(timeout=60).sequences) == 1


def test_telemetry_metadata_reaches_the_io_loop_requests(
    sampler_on: Callable[[str], tinkex.SamplingClient],
) -> None:
    sampler = sampler_on("")
    events: list[dict[str, Any]] = []
    telemetry.attach(
        "e2e-sample-md", telemetry.HTTP_REQUEST_STOP, lambda e, m, md: events.append(dict(md))
    )
    try:
        sampler.sample(PROMPT, 1, PARAMS, telemetry_metadata={"trial": 7}).result(timeout=60)
    finally:
        telemetry.detach("e2e-sample-md")
    paths = {md["path"] for md in events if md.get("metadata") == {"trial": 7}}
    assert paths == {"/api/v1/asample", "/api/v1/retrieve_future"}
