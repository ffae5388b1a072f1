"""The deprecated ``*_async`` twins: one helper, visible signatures, a warning, the right result."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest

import tinkex
from tinkex import types
from tinkex._futures import APIFuture
from tinkex.clients._holder import ClientHolder
from tinkex.types import ClientConfigResponse

from .conftest import FakeTinker, datum

CLIENTS = [
    tinkex.ServiceClient,
    tinkex.TrainingClient,
    tinkex.SamplingClient,
    tinkex.RestClient,
    tinkex.AdminClient,
]


#: Twins that are not ``async_twin(method)``: this one asks a RestClient for the capabilities.
HAND_WRITTEN = {("ServiceClient", "get_server_capabilities_async")}


def twins(cls: type) -> list[str]:
    return sorted(n for n in vars(cls) if n.endswith("_async") and not n.startswith("_"))


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_twins_are_coroutines_with_the_methods_signature(cls: type) -> None:
    names = twins(cls)
    assert names, f"{cls.__name__} declares no async twins"
    for name in names:
        twin = getattr(cls, name)
        assert inspect.iscoroutinefunction(twin), name
        assert twin.__name__ == name and twin.__qualname__ == f"{cls.__name__}.{name}"
        if (cls.__name__, name) in HAND_WRITTEN:
            continue
        base = getattr(cls, name.removesuffix("_async"))
        assert twin.__wrapped__ is base, f"{name} is not async_twin({base.__name__})"
        assert inspect.signature(twin) == inspect.signature(base), name
        assert "DEPRECATED" in (twin.__doc__ or "")


def test_sampling_twin_warns_and_awaits_the_result(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
    prompt = types.ModelInput.from_ints([1, 2])
    with pytest.warns(FutureWarning, match=r"SamplingClient\.sample_async is deprecated"):
        result = asyncio.run(sampler.sample_async(prompt, 1, types.SamplingParams(max_tokens=1)))
    assert isinstance(result, types.SampleResponse)
    with pytest.warns(FutureWarning, match="get_base_model_async"):
        assert asyncio.run(sampler.get_base_model_async()) == "tiny-base"


def test_training_twins_return_the_future_as_tinker_does(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    async def run() -> object:
        return await training.forward_backward_async([datum([1, 2])], "cross_entropy")

    with pytest.warns(FutureWarning, match=r"TrainingClient\.forward_backward_async"):
        future = asyncio.run(run())
    assert isinstance(future, APIFuture)
    assert future.result(timeout=10).metrics["loss:sum"] == 1.0
    with pytest.warns(FutureWarning, match="get_info_async"):
        assert asyncio.run(training.get_info_async()) is training.get_info()


def test_service_twin_awaits_the_client(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    with pytest.warns(FutureWarning, match="create_lora_training_client_async"):
        client = asyncio.run(service.create_lora_training_client_async("tiny-base", rank=4))
    assert isinstance(client, tinkex.TrainingClient)


def test_capabilities_twin_fetches_the_client_config_off_the_callers_loop(
    fake: FakeTinker, service: tinkex.ServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin's RestClient fetches the client config (a blocking round trip, retried while
    the server is down): on a worker thread, so the caller's event loop keeps running."""
    fetched_on: list[int] = []
    fetch = ClientHolder._fetch_client_config

    def recording(holder: ClientHolder) -> ClientConfigResponse:
        fetched_on.append(threading.get_ident())
        return fetch(holder)

    monkeypatch.setattr(ClientHolder, "_fetch_client_config", recording)
    fake.reply("GET", "/api/v1/get_server_capabilities", (200, {"supported_models": []}))

    async def run() -> tuple[int, types.GetServerCapabilitiesResponse]:
        return threading.get_ident(), await service.get_server_capabilities_async()

    with pytest.warns(FutureWarning, match="get_server_capabilities_async"):
        loop_thread, capabilities = asyncio.run(run())
    assert capabilities.supported_models == []
    assert fetched_on and loop_thread not in fetched_on
